"""Test set-up shared by the unit tests and the nbval notebook tests.

Notebook kernels inherit this process's environment. Before each reference notebook
starts its kernel, ``TWOLAYER_RUN_DIR`` points at a fresh temporary directory for that
notebook, so nothing is written into the repository, and progress bars are off.

The fixture ``smoke_runs`` executes a book notebook at the smoke profile through the runner
at most once per test session, for every test that needs that run as it is written: the
real book build (test_book.py) and the unmutated baselines of the claim-power tests. The
fixture ``smoke_book`` builds the real book from those runs once per session, for the build
test and the browser test.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from twolayer.companion.paths import notebooks_dir

# Source fixtures are run through the runner by test_run.py; nbval checks the references.
collect_ignore_glob = ["fixtures/*.ipynb"]

_scratch = Path(tempfile.mkdtemp(prefix="twolayer-tests-"))


def pytest_configure(config: pytest.Config) -> None:
    os.environ["TWOLAYER_RUN_DIR"] = str(_scratch / "unnamed")
    os.environ["TWOLAYER_PROGRESS"] = "0"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.path.suffix == ".ipynb":
        os.environ["TWOLAYER_RUN_DIR"] = str(_scratch / item.path.stem)


class SmokeRuns:
    """Each notebook of notebooks/ run once at the smoke profile, on first request."""

    def __init__(self, root: Path) -> None:
        self.root = root  # results tree: root/smoke/<name>/
        self._directories: dict[str, Path] = {}

    def directory(self, name: str) -> Path:
        """The run directory of ``name`` (executed now if it has not run yet)."""
        if name not in self._directories:
            from twolayer.companion.run import run

            [outcome] = run([notebooks_dir() / f"{name}.ipynb"], "smoke", {}, out_root=self.root)
            assert outcome.status == "succeeded", f"{name} at smoke: {outcome.error}"
            self._directories[name] = outcome.directory
        return self._directories[name]


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory) -> SmokeRuns:
    return SmokeRuns(tmp_path_factory.mktemp("smoke-runs"))


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def smoke_book(smoke_runs: SmokeRuns, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML directory of the real book built from every chapter's smoke run."""
    from twolayer.companion.book import build_html, stage, toc_notebooks
    from twolayer.companion.paths import repo_root

    book = repo_root() / "book"
    for name in toc_notebooks(book / "_toc.yml"):
        smoke_runs.directory(name)  # executed once per session, shared with the power tests
    build = tmp_path_factory.mktemp("smoke-book")
    source = stage(book, smoke_runs.root, build / "_build", "smoke")
    return build_html(source, build / "_build").parent


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module, restored afterwards: on the small matrices of the
    solution tests a second thread mostly waits on a shared two-core machine."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
