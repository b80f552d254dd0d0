"""Test set-up shared by the unit tests and the nbval notebook tests.

Notebook kernels inherit this process's environment. Before each reference notebook
starts its kernel, ``TWOLAYER_RUN_DIR`` points at a fresh temporary directory for that
notebook, so nothing is written into the repository, and progress bars are off.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

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


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_scratch, ignore_errors=True)
