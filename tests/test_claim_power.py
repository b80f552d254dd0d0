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
    # akiyama2021 Algorithm 1 on a lambda sweep (one lambda per replica): the per-replica values
    # spread over the nodes by tiling the list instead of repeating each value over its
    # replica's block, so every replica's nodes get the whole grid in turn
    "lambda-tiled-over-replicas": """
import twolayer.norm_gd as norm_gd

def _per_node(model, lam_r):
    lam_r = lam_r.to(device=model.device, dtype=model.dtype)
    return lam_r.repeat(model.W.shape[0] // lam_r.numel() + 1)[: model.W.shape[0]]

norm_gd._per_node = _per_node
""",
    # akiyama2021 Section 4.1: the penalty part of g_j written lambda ||w_j||, the sgn(a_j) of
    # lambda sgn(a_j) ||w_j|| forgotten (the penalty then inflates the negative nodes)
    "l1-subgradient-without-sign": """
import twolayer.norm_gd as norm_gd

_penalty_subgradients = norm_gd.penalty_subgradients

def penalty_subgradients(a, W, lam, penalty):
    g, h = _penalty_subgradients(a, W, lam, penalty)
    return (g.abs() if penalty == "l1" else g), h

norm_gd.penalty_subgradients = penalty_subgradients
""",
    # akiyama2021 eq. (4): the w_j part of the L1 subgradient taken as lambda |a_j| w_j, the
    # division by ||w_j|| in lambda |a_j| w_j / ||w_j|| forgotten
    "l1-subgradient-without-w-normalization": """
import torch
import twolayer.norm_gd as norm_gd

_penalty_subgradients = norm_gd.penalty_subgradients

def penalty_subgradients(a, W, lam, penalty):
    if penalty != "l1":
        return _penalty_subgradients(a, W, lam, penalty)
    lam_col = lam[:, None] if isinstance(lam, torch.Tensor) else lam
    return lam * torch.sign(a) * W.norm(dim=1), lam_col * a.abs()[:, None] * W

norm_gd.penalty_subgradients = penalty_subgradients
""",
    # akiyama2021 eq. (13): the derivative of (lambda/2)(a_j^2 + ||w_j||^2) taken as
    # (lambda/2)(a_j, w_j), the factor 2 of the squares dropped
    "l2-subgradient-halved": """
import twolayer.norm_gd as norm_gd

_penalty_subgradients = norm_gd.penalty_subgradients

def penalty_subgradients(a, W, lam, penalty):
    g, h = _penalty_subgradients(a, W, lam, penalty)
    return (g / 2, h / 2) if penalty == "l2" else (g, h)

norm_gd.penalty_subgradients = penalty_subgradients
""",
    # bach2022 Section 5.5: the both-layers ascent on the smoothed margin moves only the output
    # weights, the input-layer update forgotten (the "both layers" network becomes random features)
    "margin-ascent-frozen-input-layer": """
import twolayer.implicit_bias as implicit_bias

_margin_step = implicit_bias.margin_step

def margin_step(model, X, y, step, weights=None, Z=None):
    W = model.W.clone()
    u = _margin_step(model, X, y, step, weights, Z)
    model.W.copy_(W)
    return u

implicit_bias.margin_step = margin_step
""",
    # bach2022 Section 5.5: the gradient of the smoothed margin S with the softmax weights
    # p_i = exp(-y_i f(x_i)) / sum_k exp(-y_k f(x_k)) replaced by 1/n (the mean margin's gradient)
    "margin-gradient-without-softmax": """
import torch
import twolayer.implicit_bias as implicit_bias

def margin_step(model, X, y, step, weights=None, Z=None):
    Z = model.preactivations(X) if Z is None else Z
    u = model.outputs(Z)
    p = torch.ones_like(u) if weights is None else weights.clone()
    p = p / p.sum(dim=1, keepdim=True)
    dW, da = model.gradients(X, Z, -(y * p))
    m = model.per_neuron(model.widths.to(model.dtype))
    speed = step * m
    if model.trained == "output":
        norms = model.neuron_sum(model.a * model.a).sqrt()
        beta = torch.clamp(norms / model.widths.to(model.dtype).sqrt(), min=1.0)
        speed = speed * model.per_neuron(beta)
    if dW is not None:
        model.W.sub_(speed[:, None] * dW)
    if da is not None:
        model.a.sub_(speed * da)
    return u

implicit_bias.margin_step = margin_step
""",
    # bach2022 eq. (3.3): the mean-field step W <- W - gamma m grad G taken without its factor m,
    # so that a particle of a width-m student moves m times too slowly
    "online-step-without-m": """
import twolayer.online_sgd as online_sgd

def sgd_step(student, X, y, lr, input_gradient="sum"):
    Z = student.preactivations(X)
    u = student.outputs(Z)
    dW, da = student.gradients(X, Z, (u - y) / X.shape[-2])
    factor = float(X.shape[-2]) if input_gradient == "sum" else 1.0
    student.a.sub_(lr * da)
    student.W.sub_(lr * factor * dW)

online_sgd.sgd_step = sgd_step
""",
    # bach2022 Figure 3: the input-layer gradient averaged over the batch although the notebook
    # says it follows the authors' code, which sums it (a step B = 100 times smaller)
    "online-input-gradient-averaged": """
import twolayer.online_sgd as online_sgd

_sgd_step = online_sgd.sgd_step

def sgd_step(student, X, y, lr, input_gradient="sum"):
    _sgd_step(student, X, y, lr, "mean")

online_sgd.sgd_step = sgd_step
""",
    # bach2022 Section 4.4: the teacher's input weights left Gaussian, the normalization onto
    # the unit sphere forgotten (every teacher unit about sqrt(d) times too large)
    "teacher-input-weights-not-normalized": """
import torch
import twolayer.online_sgd as online_sgd
from twolayer.model import Replica, TwoLayerReLU

def teacher_network(d, m0, seeds, *, dtype=torch.float64, device="cpu"):
    return TwoLayerReLU.initialize(
        d, [Replica(m0, int(s)) for s in seeds], scaling="none", first_init="gaussian",
        output_init="sign", trained="output", dtype=dtype, device=device,
    )

online_sgd.teacher_network = teacher_network
""",
    # the lazy-to-mean-field chapter: a step that ignores beta, eta0 at every scale instead of
    # eta0 m^(2 beta - 1)
    "step-ignores-beta": """
import torch
import twolayer.regimes as regimes

def step_sizes(model, eta0):
    return torch.full((model.num_replicas,), float(eta0), dtype=torch.float64)

regimes.step_sizes = step_sizes
""",
    # the first layer's gradient without the output factor c_m = m^-beta (only the output
    # layer's gradient keeps it)
    "first-layer-gradient-without-output-scale": """
from twolayer.model import TwoLayerReLU

_gradients = TwoLayerReLU.gradients

def gradients(self, X, Z, dloss_du):
    dW, da = _gradients(self, X, Z, dloss_du)
    if dW is not None:
        dW = dW / self.output_scale[:, None]
    return dW, da

TwoLayerReLU.gradients = gradients
""",
    # the limiting kernel of the first layer alone (H_inf) although both layers train
    "limiting-kernel-without-output-layer": """
import twolayer.kernels as kernels

_limiting = kernels.limiting_tangent_kernel

def limiting_tangent_kernel(X, Y=None, *, trained="both"):
    return _limiting(X, Y, trained="first")

kernels.limiting_tangent_kernel = limiting_tangent_kernel
""",
    # the first layer frozen at its random start (random features) although both should train
    "first-layer-frozen": """
import twolayer.regimes as regimes

_network = regimes.regime_network

def regime_network(*args, **kwargs):
    model = _network(*args, **kwargs)
    model.trained = "output"
    return model

regimes.regime_network = regime_network
""",
}

# (notebook, mutation, parameter overrides at the smoke profile, claims the mutation breaks)
CASES = [
    (
        "bach2022-figure3",
        "online-step-without-m",
        {},
        [
            "no-success-below-teacher-width",
            "rate-reaches-0.9-where-the-authors-does",
            "wide-students-succeed",
            "success-rates-match-the-authors",
        ],
    ),
    (
        "bach2022-figure3",
        "online-input-gradient-averaged",
        {},
        [
            "no-success-below-teacher-width",
            "rate-reaches-0.9-where-the-authors-does",
            "wide-students-succeed",
            "success-rates-match-the-authors",
        ],
    ),
    (
        "bach2022-figure3",
        "teacher-input-weights-not-normalized",
        {},
        ["narrow-students-fail-at-order-one"],
    ),
    (
        "bach2022-figure6",
        "margin-ascent-frozen-input-layer",
        {},
        ["both-layers-far-better-with-many-points"],
    ),
    (
        "bach2022-figure6",
        "margin-gradient-without-softmax",
        {},
        [
            "both-layers-better-at-every-n",
            "both-layers-far-better-with-many-points",
            "both-layers-better-in-higher-d",
        ],
    ),
    (
        "bach2022-figure2",
        "online-step-without-m",
        {},
        ["wide-students-succeed", "teacher-neurons-recovered"],
    ),
    (
        "bach2022-figure2",
        "online-input-gradient-averaged",
        {},
        ["wide-students-succeed", "teacher-neurons-recovered"],
    ),
    ("akiyama2021-figure1", "step-without-norm-factor", {}, ["signs-kept"]),
    (
        "akiyama2021-theorem3-5",
        "lambda-tiled-over-replicas",
        {},
        ["parameter-error-order", "function-error-order", "first-order-constant"],
    ),
    (
        "akiyama2021-theorem3-5",
        "l1-subgradient-without-sign",
        {},
        [
            "parameter-error-order",
            "function-error-order",
            "first-order-constant",
            "phase2-linear-rate",
        ],
    ),
    (
        "akiyama2021-figure2",
        "step-without-norm-factor",
        {},
        [
            "signs-kept",
            "wide-far-below-narrow",
            "wide-gap-small-in-absolute-terms",
            "stuck-share-falls-with-width",
        ],
    ),
    (
        "akiyama2021-figure3",
        "l1-subgradient-without-w-normalization",
        {},
        ["l1-keeps-the-imbalance"],
    ),
    (
        "akiyama2021-figure3",
        "l2-subgradient-halved",
        {},
        ["l2-balances-the-nodes", "end-points-agree"],
    ),
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
    (
        "bach2022-figure5",
        "margin-gradient-without-softmax",
        {},
        ["output-layer-moves-to-svm", "output-margin-approaches-svm"],
    ),
    (
        "bridge-lazy-to-mean-field",
        "step-ignores-beta",
        {},
        [
            "step-rule-same-first-decrease",
            "distance-exponent-is-beta-minus-one",
            "mean-field-moves-order-one",
            "movement-grows-with-beta",
        ],
    ),
    (
        "bridge-lazy-to-mean-field",
        "first-layer-gradient-without-output-scale",
        {},
        ["distance-exponent-is-beta-minus-one", "lazy-kernel-change-vanishes"],
    ),
    # in d = 8 the smoke profile's 200 points suffice for the mean-field network to find the
    # teacher, and its widths for the kernel-regime network to approach the kernel predictor
    (
        "bridge-lazy-to-mean-field",
        "limiting-kernel-without-output-layer",
        {"d": 8, "betas": [0.5, 1.0]},
        ["lazy-network-is-the-kernel-predictor"],
    ),
    (
        "bridge-lazy-to-mean-field",
        "first-layer-frozen",
        {"d": 8, "betas": [0.5, 1.0]},
        ["mean-field-finds-the-teacher", "mean-field-beats-the-kernel"],
    ),
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


def _check_case(notebook, mutation, overrides, broken, scratch, smoke_runs):
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


def _cases_class(notebook: str) -> type:
    """The cases of one notebook as a test class: pytest-xdist's loadscope distribution
    (make test) gives each class to one worker, so the notebooks' cases spread over the
    workers while each notebook's cases stay together."""
    cases = [case for case in CASES if case[0] == notebook]

    @pytest.mark.parametrize(
        ("notebook", "mutation", "overrides", "broken"),
        cases,
        ids=[f"{case[0]}:{case[1]}" for case in cases],
    )
    def test(self, notebook, mutation, overrides, broken, scratch, smoke_runs):
        _check_case(notebook, mutation, overrides, broken, scratch, smoke_runs)

    name = "TestPower_" + notebook.replace("-", "_")
    return type(name, (), {"test_a_wrong_implementation_fails_the_claims": test})


for _notebook in sorted({case[0] for case in CASES}):
    _class = _cases_class(_notebook)
    globals()[_class.__name__] = _class


@pytest.mark.parametrize("notebook", sorted({case[0] for case in CASES}))
def test_every_reproduction_claim_has_a_mutation_that_breaks_it(notebook):
    covered = {claim for case in CASES if case[0] == notebook for claim in case[3]}
    missing = sorted(reproduction_claims(notebook) - covered)
    assert not missing, f"{notebook}: no mutation in CASES breaks {missing}"


def test_every_book_notebook_has_power_cases():
    book = {path.stem for path in NOTEBOOKS.glob("*.ipynb")}
    assert book <= {case[0] for case in CASES}, "add CASES for the new notebooks"
