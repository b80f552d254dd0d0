"""Test set-up shared by the unit tests and the nbval notebook tests.

Notebook kernels inherit this process's environment. Before each reference notebook
starts its kernel, ``TWOLAYER_RUN_DIR`` points at a fresh temporary directory for that
notebook, so nothing is written into the repository, and progress bars are off.

The fixture ``smoke_runs`` executes a book notebook at the smoke profile through the runner
at most once per test session, for every test that needs that run as it is written: the
real book build (test_book.py) and the unmutated baselines of the claim-power tests. The
fixture ``smoke_book`` builds the real book from those runs once per session, for the build
test and the browser test.

The tests run on several processes with pytest-xdist (``make test`` passes ``-n`` and
``--dist loadscope``: the cells of one reference notebook, which share a kernel, stay together
in one process, as do the tests of one module or class). The smoke runs and the smoke book
are then shared by every worker: a file lock makes the first worker that needs one make it,
and the others reuse it. Kernels start one at a time on the machine (the runner's
kernel-start lock, taken here for nbval's kernels too).
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


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item):
    if item.path.suffix != ".ipynb":
        return (yield)
    os.environ["TWOLAYER_RUN_DIR"] = str(_scratch / item.path.stem)
    if getattr(item.parent, "kernel", None) is not None:  # nbval's kernel is already up
        return (yield)
    from twolayer.companion.run import kernel_start_lock

    with kernel_start_lock():  # nbval starts the notebook's kernel in its first cell's setup
        return (yield)


class SmokeRuns:
    """Each notebook of notebooks/ run once at the smoke profile, on first request.

    ``root`` may be shared by several test processes: a lock per notebook lets the first
    one run it, and the others find the finished run (the runner's ``reuse``).
    """

    def __init__(self, root: Path) -> None:
        self.root = root  # results tree: root/smoke/<name>/
        self._directories: dict[str, Path] = {}

    def directory(self, name: str) -> Path:
        """The run directory of ``name`` (executed now if no process has run it yet)."""
        if name not in self._directories:
            from filelock import FileLock

            from twolayer.companion.run import run

            self.root.mkdir(parents=True, exist_ok=True)
            with FileLock(self.root / f"{name}.lock"):
                [outcome] = run(
                    [notebooks_dir() / f"{name}.ipynb"], "smoke", {}, out_root=self.root, reuse=True
                )
            assert outcome.status in ("succeeded", "skipped"), f"{name} at smoke: {outcome.error}"
            self._directories[name] = outcome.directory
        return self._directories[name]


def _session_directory(factory: pytest.TempPathFactory, name: str) -> Path:
    """A fresh directory of this test session, the same one in every xdist worker."""
    if "PYTEST_XDIST_WORKER" not in os.environ:  # one process
        return factory.mktemp(name, numbered=False)
    # the workers of one xdist session share their base directory's parent
    return factory.getbasetemp().parent / name


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory) -> SmokeRuns:
    return SmokeRuns(_session_directory(tmp_path_factory, "smoke-runs"))


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def smoke_book(smoke_runs: SmokeRuns, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML directory of the real book built from every chapter's smoke run."""
    from filelock import FileLock

    from twolayer.companion.book import build_html, stage, toc_notebooks
    from twolayer.companion.paths import repo_root

    book = repo_root() / "book"
    for name in toc_notebooks(book / "_toc.yml"):
        smoke_runs.directory(name)  # executed once per session, shared with the power tests
    build = _session_directory(tmp_path_factory, "smoke-book")
    build.mkdir(parents=True, exist_ok=True)
    done = build / "html-directory.txt"
    with FileLock(build / "build.lock"):
        if not done.is_file():  # the first worker to get here builds; the others reuse it
            source = stage(book, smoke_runs.root, build / "_build", "smoke")
            done.write_text(str(build_html(source, build / "_build").parent))
    return Path(done.read_text())


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module, restored afterwards: on the small matrices of the
    solution tests a second thread mostly waits on a shared two-core machine."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
