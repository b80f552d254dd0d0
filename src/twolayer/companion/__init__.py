"""The machinery that runs, checks and publishes the notebooks (not the papers' mathematics).

A notebook needs three names from here; everything else is for the command-line tools::

    from twolayer.companion import params as p, setup

    nb = setup("du2019-figure1", globals(), n=p.integer(min=2))   # after the parameters cell
    nb.claims.check(...)                                           # the Claims section
    print(nb.provenance())                                         # the closing line

Command-line entry points (the Makefile calls them):

- ``python -m twolayer.companion.run``: execute notebooks with papermill into results/;
- ``python -m twolayer.companion.book``: build the HTML book from executed notebooks;
- ``python -m twolayer.companion.references``: refresh the nbval references;
- ``python -m twolayer.companion.timings``: measure every notebook's wall time.
- ``python -m twolayer.companion.paper_runs``: record paper-profile runs made on a GPU.
- ``python -m twolayer.companion.browser``: open every page of a built book in Chromium.

The mathematics (``twolayer.model``, ``twolayer.kernels``, ...) never imports from here.
Names are loaded on first use, so the command-line tools start without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twolayer.companion.claims import Claims
    from twolayer.companion.notebook import NotebookRun, setup
    from twolayer.companion.params import ParameterError

__all__ = ["Claims", "NotebookRun", "ParameterError", "params", "setup"]

_HOMES = {
    "Claims": "twolayer.companion.claims",
    "NotebookRun": "twolayer.companion.notebook",
    "setup": "twolayer.companion.notebook",
    "ParameterError": "twolayer.companion.params",
    "params": "twolayer.companion.params",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'twolayer.companion' has no attribute {name!r}")
    module = importlib.import_module(_HOMES[name])
    return module if name == "params" else getattr(module, name)
