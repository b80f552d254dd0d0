"""Every reproduction claim can fail: deliberately wrong implementations make it fail.

A *mutation* is a realistic bug in the mathematics (a Gram matrix without its inner-product
factor, a forgotten 1/sqrt(m), a step size halved by mistake, ...). Each case runs a book
notebook twice with the same parameters, once as it is and once with the mutation applied
in a cell placed before everything else, and checks that the named claims hold in the first
run and fail in the second. A last test makes sure that every claim a notebook marks as
``kind="reproduction"`` is broken by at least one mutation here.
"""

from __future__ import annotations

import ast
import functools
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from twolayer.companion.run import run

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

MUTATIONS = {
    # H_inf_ij = (pi - theta_ij) / (2 pi): the x_i^T x_j factor of du2019 Assumption 3.1 dropped
    "h-infinity-without-inner-products": """
import math
import torch
import twolayer.kernels as kernels

def h_infinity(X):
    X = X.to(torch.float64)
    X = X / X.norm(dim=1, keepdim=True)
    return (math.pi - torch.arccos((X @ X.T).clamp(-1.0, 1.0))) / (2 * math.pi)

kernels.h_infinity = h_infinity
""",
    # the angle taken as arccos of the clamped cosine, which loses precision near theta = 0
    "arccos-angle": """
import math
import torch
import twolayer.kernels as kernels

def h_infinity(X):
    X = X.to(torch.float64)
    norms = X.norm(dim=1)
    cos = ((X @ X.T) / (norms[:, None] * norms[None, :])).clamp(-1.0, 1.0)
    return norms[:, None] * norms[None, :] * cos * (math.pi - torch.arccos(cos)) / (2 * math.pi)

kernels.h_infinity = h_infinity
""",
    # f = sum_r a_r relu(w_r^T x): the 1/sqrt(m) of du2019 eq. (1) forgotten
    "no-output-scaling": """
import twolayer.model as model

model.SCALINGS["ntk"] = lambda m: 1.0
""",
    # f = (1/m) sum_r ...: the mean-field scaling where the kernel scaling belongs
    "mean-field-in-place-of-ntk": """
import twolayer.model as model

model.SCALINGS["ntk"] = lambda m: 1.0 / m
""",
    # gradient descent takes half the step the notebook asks for
    "halved-step": """
import torch
import twolayer.training as training

_gradient_descent = training.gradient_descent

def gradient_descent(*args, lr, **kwargs):
    return _gradient_descent(*args, lr=torch.as_tensor(lr, dtype=torch.float64) / 2, **kwargs)

training.gradient_descent = gradient_descent
""",
    # G_inf with 1/pi in place of 1/(2 pi): the arc-cosine kernel of degree one, twice the
    # E[relu(w^T x_i) relu(w^T x_j)] that the 1/m-normalized G(t) of du2019 eq. (13) tends to
    "g-infinity-arc-cosine-normalization": """
import math
import torch
import twolayer.kernels as kernels

def g_infinity(X):
    X = X.to(torch.float64)
    norms = X.norm(dim=1)
    cos = ((X @ X.T) / (norms[:, None] * norms[None, :])).clamp(-1.0, 1.0)
    theta = torch.arccos(cos)
    outer = norms[:, None] * norms[None, :]
    return outer * (torch.sin(theta) + (math.pi - theta) * cos) / math.pi

kernels.g_infinity = g_infinity
""",
    # one initialization scale per replica collapsed to the first one given
    "one-kappa-for-all-replicas": """
import twolayer.model as model

_initialize = model.TwoLayerReLU.initialize.__func__

def initialize(cls, d, replicas, *, first_scale=1.0, **kwargs):
    if isinstance(first_scale, (list, tuple)):
        first_scale = first_scale[0]
    return _initialize(cls, d, replicas, first_scale=first_scale, **kwargs)

model.TwoLayerReLU.initialize = classmethod(initialize)
""",
    # the label components taken on the rows of V, whose columns are the eigenvectors
    "eigenvectors-as-rows": """
import torch
import twolayer.spectral as spectral

def label_projections(eigenvectors, y, *, normalize=False):
    V = eigenvectors.to(torch.float64)
    y = y.to(device=V.device, dtype=torch.float64)
    if normalize:
        y = y / torch.linalg.vector_norm(y, dim=-1, keepdim=True)
    return y @ V.T

spectral.label_projections = label_projections
""",
    # y^T H y where y^T H^-1 y belongs: the complexity measure of arora2019 eq. (10) and the
    # leading term of Lemma 5.3 formed with the Gram matrix instead of its inverse
    "quadratic-form-without-inverse": """
import torch
import twolayer.spectral as spectral

def inverse_quadratic_form(H, y):
    H = H.to(torch.float64)
    Y = y.to(device=H.device, dtype=torch.float64)
    values = ((Y.reshape(-1, H.shape[0]) @ H) * Y.reshape(-1, H.shape[0])).sum(dim=1)
    return values[0] if Y.dim() == 1 else values

spectral.inverse_quadratic_form = inverse_quadratic_form
""",
    # akiyama2021 Algorithm 1 with a plain subgradient step: eta_j = alpha for every node,
    # the norm-dependent factor |a_j| ||w_j|| / (a_j^2 + ||w_j||^2) of eq. (11) forgotten
    "step-without-norm-factor": """
import torch
import twolayer.norm_gd as norm_gd
norm_gd.step_sizes = lambda a, W, alpha: alpha * torch.ones_like(a)
""",
}

# (notebook, mutation, parameter overrides at the smoke profile, claims the mutation breaks)
CASES = [
    ("akiyama2021-figure1", "step-without-norm-factor", {}, ["signs-kept"]),
    (
        "du2019-theorem3-1",
        "h-infinity-without-inner-products",
        {},
        ["lambda0-matches-finite-width", "entrywise-variance", "gram-concentration-rate"],
    ),
    ("du2019-theorem3-1", "arccos-angle", {}, ["lambda0-vanishes-when-parallel"]),
    (
        "du2019-figure1",
        "mean-field-in-place-of-ntk",
        {},
        [
            "linear-convergence",
            "faster-with-width",
            "gram-explains-rate",
            "pattern-changes-exponent",
            "distance-exponent",
        ],
    ),
    (
        "du2019-figure1",
        "no-output-scaling",
        {},
        ["linear-convergence", "pattern-changes-decrease", "distance-decreases"],
    ),
    (
        "du2019-theorem4-1",
        "halved-step",
        {},
        ["linear-rate-kernel", "infinite-width-dynamics", "both-layers-kernel"],
    ),
    (
        "du2019-theorem4-1",
        "h-infinity-without-inner-products",
        {},
        ["linear-rate-kernel", "infinite-width-dynamics", "both-layers-kernel"],
    ),
    ("du2019-theorem4-1", "g-infinity-arc-cosine-normalization", {}, ["both-layers-kernel"]),
    (
        "arora2019-figure1",
        "h-infinity-without-inner-products",
        {},
        ["spectral-decay", "eq8-predicts-residual"],
    ),
    (
        "arora2019-figure1",
        "eigenvectors-as-rows",
        {},
        ["labels-on-top-eigenvectors", "eq8-predicts-residual"],
    ),
    ("arora2019-figure1", "halved-step", {}, ["eq8-predicts-residual"]),
    (
        "arora2019-theorem4-1",
        "halved-step",
        {},
        ["gap-shrinks-with-width", "gap-shrinks-when-m-grows-like-kappa-to-the-fourth"],
    ),
    (
        "arora2019-theorem4-1",
        "h-infinity-without-inner-products",
        {},
        ["gap-shrinks-with-width", "gap-shrinks-when-m-grows-like-kappa-to-the-fourth"],
    ),
    (
        "arora2019-theorem4-1",
        "one-kappa-for-all-replicas",
        {},
        ["gap-constant-when-m-grows-like-kappa-squared"],
    ),
    (
        "arora2019-figure1",
        "mean-field-in-place-of-ntk",
        {},
        ["spectral-decay", "true-faster-than-random-faster-than-worst", "eq8-predicts-residual"],
    ),
    (
        "arora2019-figure1",
        "no-output-scaling",
        {},
        ["spectral-decay", "true-faster-than-random-faster-than-worst", "eq8-predicts-residual"],
    ),
    (
        "arora2019-figure2",
        "quadratic-form-without-inverse",
        {},
        ["measure-increases-with-random-labels", "measure-tracks-test-error"],
    ),
    ("arora2019-figure2", "mean-field-in-place-of-ntk", {}, ["finite-width-measure-converges"]),
    (
        "arora2019-figure2",
        "h-infinity-without-inner-products",
        {},
        ["finite-width-measure-converges"],
    ),
    (
        "arora2019-theorem6-1",
        "quadratic-form-without-inverse",
        {},
        ["section6-bounds-hold", "linear-labels-two-thirds", "random-labels-trace"],
    ),
    (
        "arora2019-theorem6-1",
        "h-infinity-without-inner-products",
        {},
        ["section6-bounds-hold", "linear-labels-two-thirds", "movement-tracks-kernel-prediction"],
    ),
    ("arora2019-theorem6-1", "halved-step", {}, ["movement-tracks-kernel-prediction"]),
    ("arora2019-theorem6-1", "no-output-scaling", {}, ["movement-tracks-kernel-prediction"]),
]


def reproduction_claims(notebook: str) -> set[str]:
    """Ids of the claims a notebook's source checks with ``kind="reproduction"``."""
    source = nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4)
    ids = set()
    for cell in source.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "check":
                keywords = {k.arg: k.value for k in node.keywords}
                kind, claim = keywords.get("kind"), keywords.get("id")
                if isinstance(kind, ast.Constant) and kind.value == "reproduction":
                    assert isinstance(claim, ast.Constant), f"{notebook}: claim id not a literal"
                    ids.add(claim.value)
    return ids


def mutated_copy(notebook: str, mutation: str | None, directory: Path) -> Path:
    """A copy of the notebook (and its profiles) with the mutation run before anything else."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(NOTEBOOKS / "profiles.yml", directory / "profiles.yml")
    source = nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4)
    if mutation is not None:
        source.cells.insert(0, nbformat.v4.new_code_cell(MUTATIONS[mutation]))
    path = directory / f"{notebook}.ipynb"
    nbformat.write(source, path)
    return path


def _holds(run_directory: Path) -> dict[str, bool]:
    records = json.loads((run_directory / "claims.json").read_text())
    return {record["id"]: record["holds"] for record in records}


@functools.cache
def _claims(notebook: str, mutation: str | None, overrides: str, scratch: str) -> dict[str, bool]:
    slug = "".join(ch if ch.isalnum() else "-" for ch in overrides).strip("-") or "as-written"
    directory = Path(scratch) / notebook / (mutation or "baseline") / slug
    path = mutated_copy(notebook, mutation, directory / "source")
    [outcome] = run([path], "smoke", json.loads(overrides), out_root=directory / "results")
    assert outcome.status == "succeeded", f"{notebook} with {mutation}: {outcome.error}"
    return _holds(outcome.directory)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("power"))


@pytest.mark.parametrize(
    ("notebook", "mutation", "overrides", "broken"),
    CASES,
    ids=[f"{case[0]}:{case[1]}" for case in CASES],
)
def test_a_wrong_implementation_fails_the_claims(
    notebook, mutation, overrides, broken, scratch, smoke_runs
):
    key = json.dumps(overrides, sort_keys=True)
    if overrides:
        baseline = _claims(notebook, None, key, scratch)
    else:  # the notebook as written at smoke: the session's shared run
        baseline = _holds(smoke_runs.directory(notebook))
    mutated = _claims(notebook, mutation, key, scratch)
    assert all(baseline[claim] for claim in broken), (
        f"{notebook}: the correct implementation must pass {broken} at these parameters: "
        f"{ {claim: baseline[claim] for claim in broken} }"
    )
    survived = [claim for claim in broken if mutated[claim]]
    assert not survived, f"{notebook}: {survived} still hold with the mutation {mutation!r}"


@pytest.mark.parametrize("notebook", sorted({case[0] for case in CASES}))
def test_every_reproduction_claim_has_a_mutation_that_breaks_it(notebook):
    covered = {claim for case in CASES if case[0] == notebook for claim in case[3]}
    missing = sorted(reproduction_claims(notebook) - covered)
    assert not missing, f"{notebook}: no mutation in CASES breaks {missing}"


def test_every_book_notebook_has_power_cases():
    book = {path.stem for path in NOTEBOOKS.glob("*.ipynb")}
    assert book <= {case[0] for case in CASES}, "add CASES for the new notebooks"
