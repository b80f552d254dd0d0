"""What the solutions of the arora2019 exercises say, computed.

Each test reruns, with the library functions the notebook uses, the computation that one
exercise of notebooks/arora2019-*.ipynb asks for, at the configuration its solution names or
at a smaller one where the same behaviour shows, and asserts what the solution states.
The image pages (Figures 1 and 2, Theorem 4.1) read MNIST and CIFAR-10 from the local mirror
$TWOLAYER_DATA only; without it those tests are skipped.
"""

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from twolayer.data import span_coordinates, two_class_subset
from twolayer.data.synthetic import sphere
from twolayer.fitting import power_law
from twolayer.kernels import h_infinity
from twolayer.model import Replica, TwoLayerReLU
from twolayer.rng import derive_seed, generator
from twolayer.spectral import (
    complexity_measure,
    interpolant_norm,
    label_projections,
    predicted_movement,
    predicted_residual,
    spectrum,
    worst_case_labels,
)
from twolayer.training import gradient_descent

MIRROR = Path(os.environ.get("TWOLAYER_DATA", "/nonexistent"))
needs_images = pytest.mark.skipif(
    not all((MIRROR / key).is_dir() for key in ("mnist", "cifar10")),
    reason="needs the local mirror of the official files (TWOLAYER_DATA)",
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PORTIONS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]  # arora2019-figure2's portions of random labels


@pytest.fixture(scope="module")
def image_cache(tmp_path_factory):
    """Decode the images into a fresh cache, so that only the mirror is read."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TWOLAYER_CACHE", str(tmp_path_factory.mktemp("image-cache")))
        yield


def span_network(X, replicas, scales):
    """The notebook's network, drawn in pixel space, on the coordinates of X in its span.

    ``W(0) Q`` with Q an orthonormal basis of the span of the images gives the same outputs
    at every step as the network trained on the raw images (tests/test_span.py), for the
    same draw of the weights, at the cost of n instead of d coordinates.
    """
    coords, Q = span_coordinates(X, return_basis=True)
    full = TwoLayerReLU.initialize(X.shape[1], replicas, first_scale=scales)
    reduced = TwoLayerReLU(full.W0 @ Q.to(full.dtype), full.a.clone(), full.replicas)
    return full, reduced, coords, Q.to(full.dtype)


def resolved_log_ratio(measured, predicted, norm_y):
    """max_k |log(measured / eq. (8))| where eq. (8) is above 1e-3 ||y|| (as the notebook)."""
    keep = predicted >= 1e-3 * norm_y
    return float(np.abs(np.log(measured[keep] / predicted[keep])).max())


# ------------------------------------------------------------------------ arora2019-figure1

# name: (width m, kappa, step factor, label sets trained: true, random[, worst case])
FIGURE1_RUNS = {
    "eta 1": (1000, 0.01, 1.0, 3),
    "eta 0.5": (1000, 0.01, 0.5, 3),
    "eta 2.05": (1000, 0.01, 2.05, 3),
    "m 4000": (4000, 0.01, 1.0, 2),
    "kappa 0.1": (1000, 0.1, 1.0, 2),
}


@pytest.fixture(scope="module")
def figure1(image_cache):
    """arora2019-figure1 on MNIST at n = 200 (the exercises' -p n 200), 100 steps, seed 0.

    Every run of FIGURE1_RUNS trains as replicas of one batch: each replica with its own
    width, kappa and step size, the replicas of one width from the same draw of the weights
    (a replica's draw does not depend on its kappa), exactly as each run of the notebook.
    """
    n, steps = 200, 100
    sample = two_class_subset("mnist", (0, 1), n, seed=0)
    randomized = two_class_subset("mnist", (0, 1), n, seed=0, random_labels=1.0)
    eigenvalues, V = spectrum(h_infinity(sample.X))
    worst = worst_case_labels(eigenvalues, V) * math.sqrt(n)
    Y = torch.stack([sample.y, randomized.y, worst])
    projections = label_projections(V, Y)
    lam_max = float(eigenvalues[0])
    replicas, scales, rates, labels = [], [], [], []
    for width, kappa, factor, count in FIGURE1_RUNS.values():
        replicas += [Replica(width, 0)] * count
        scales += [kappa] * count
        rates += [factor / lam_max] * count
        labels += list(Y[:count])
    _, model, coords, _ = span_network(sample.X, replicas, scales)
    history = gradient_descent(
        model,
        coords,
        torch.stack(labels),
        lr=rates,
        steps=steps,
        record={"residual_norm": "all", "pattern_change": [steps]},
        progress=False,
    )
    measured, flipped = history["residual_norm"], history["pattern_change"][-1]
    norm_y = Y.norm(dim=1).numpy()
    runs, first = {}, 0
    for name, (_, _, factor, count) in FIGURE1_RUNS.items():
        predicted = predicted_residual(eigenvalues, projections[:count], factor / lam_max, steps)
        runs[name] = {
            "measured": measured[:, first : first + count],
            "predicted": predicted.numpy(),
            "norm_y": norm_y[:count],
            "flipped": flipped[first : first + count],
        }
        first += count
    for run in runs.values():
        m, p, y = run["measured"], run["predicted"], run["norm_y"]
        run["log ratio"] = np.array(
            [resolved_log_ratio(m[:, j], p[:, j], y[j]) for j in range(len(y))]
        )
        run["remaining"] = m[-1] ** 2 / y**2
        run["remaining eq8"] = p[-1] ** 2 / y**2
    return runs


@needs_images
@pytest.mark.solution("arora2019-figure1-ex-width")
def test_figure1_wider_or_larger_kappa_hardly_closes_the_gap(figure1):
    """The gap to eq. (8) barely closes with m = 4000 or kappa = 0.1 (MNIST, n = 200).

    This is the solution's own configuration: MNIST at n = 200, 100 steps, seed 0, width 1000
    and 4000 at kappa = 0.01, and width 1000 at kappa = 0.1, trained on the span coordinates
    of the images (the same trajectories as on the pixels).
    """
    base, wide, large = figure1["eta 1"], figure1["m 4000"], figure1["kappa 0.1"]
    true, random = 0, 1
    # m = 1000: true 0.21, random 0.18; random labels leave 0.61 of ||y||^2 against 0.42
    assert base["log ratio"][true] == pytest.approx(0.21, abs=0.015)
    assert base["log ratio"][random] == pytest.approx(0.18, abs=0.015)
    assert base["remaining"][random] == pytest.approx(0.61, abs=0.02)
    assert base["remaining eq8"][random] == pytest.approx(0.42, abs=0.02)
    # m = 4000 lowers the true labels' value to 0.15, leaves the random labels' at 0.18
    assert wide["log ratio"][true] == pytest.approx(0.15, abs=0.015)
    assert wide["log ratio"][random] == pytest.approx(0.18, abs=0.015)
    assert abs(wide["log ratio"][random] - base["log ratio"][random]) <= 0.02
    assert wide["remaining"][random] == pytest.approx(0.61, abs=0.02)
    # kappa = 0.1: true 0.10, random 0.17
    assert large["log ratio"][true] == pytest.approx(0.10, abs=0.015)
    assert large["log ratio"][random] == pytest.approx(0.17, abs=0.015)
    # hardly: the random labels' gap stays above 0.15 in every run, and patterns flip in all
    for run in (base, wide, large):
        assert run["log ratio"][random] > 0.15
        assert (run["flipped"] > 0.1).all()


@needs_images
@pytest.mark.solution("arora2019-figure1-ex-step")
def test_figure1_half_step_stretches_and_beyond_the_limit_eq8_blows_up(figure1):
    """Halving eta stretches eq. (8) and the networks twofold; at 2.05 / lambda_max eq. (8)
    blows up while the networks converge a little faster than at 1 / lambda_max.

    The solution's configuration: MNIST at n = 200, width 1000, kappa = 0.01, 100 steps, seed 0,
    with the three label sets (true, random, worst case) at each step size.
    """
    one, half, beyond = figure1["eta 1"], figure1["eta 0.5"], figure1["eta 2.05"]
    k = np.arange(5, 51)  # after the first steps, where (1 - eta lambda_1)^k is gone for both
    stretch_eq8 = np.abs(np.log(half["predicted"][2 * k] / one["predicted"][k])).max()
    stretch_net = np.abs(np.log(half["measured"][2 * k] / one["measured"][k])).max()
    same_k_net = np.abs(np.log(half["measured"][k] / one["measured"][k])).max()
    assert stretch_eq8 < 0.03  # eq. (8) at 2k with eta / 2 is eq. (8) at k with eta (0.019)
    assert stretch_net < 0.05  # the networks nearly so (0.020)
    assert same_k_net > 0.2  # while at the same k they are far apart (0.33)
    for run in (one, half):
        true, random, worst = run["remaining"]
        assert true < random < worst  # the order of the three label sets stays
    # beyond the limit eq. (8) ends above 200 ||y||^2 for the true labels ...
    assert beyond["remaining eq8"][0] > 200
    assert (np.diff(beyond["predicted"][50:, 0]) > 0).all()  # the top component takes over
    # ... while the networks converge, a little faster than at eta = 1 / lambda_max
    assert np.isfinite(beyond["measured"]).all()
    assert beyond["remaining"][0] < 0.01
    assert (beyond["remaining"] < one["remaining"]).all()
    assert (beyond["remaining"] > 0.5 * one["remaining"]).all()


# ------------------------------------------------------------------------ arora2019-figure2


@pytest.fixture(scope="module")
def figure2(image_cache):
    """arora2019-figure2 at n = 200 (the exercise's -p n 200), width 200, 2000 test images.

    One run of 1000 steps per data set, every portion a replica of one network as in the
    notebook; the weights are kept at step 100 as well, so that both runs of the exercise
    (-p steps 100 and -p steps 1000) come from one training. The default width is 500; at
    width 200 the numbers of the solution come out within 0.02, for a third of the cost.
    """
    n, n_test, width, checks = 200, 2000, 200, (100, 1000)
    results = {}
    for key in ("mnist", "cifar10"):
        train = [two_class_subset(key, (0, 1), n, seed=0, random_labels=q) for q in PORTIONS]
        test = [
            two_class_subset(key, (0, 1), n_test, split="test", seed=0, random_labels=q)
            for q in PORTIONS
        ]
        X, X_test = train[0].X, test[0].X
        Y = torch.stack([s.y for s in train])
        Y_test = torch.stack([s.y for s in test])
        H = h_infinity(X)
        eigenvalues, _ = spectrum(H)
        network, reduced, coords, Q = span_network(X, [Replica(width, 0)] * len(PORTIONS), 0.01)
        kept = {}

        def keep(k, model, kept=kept):
            if k in checks:
                kept[k] = model.W.clone()

        history = gradient_descent(
            reduced,
            coords,
            Y,
            lr=1.0 / float(eigenvalues[0]),
            steps=checks[-1],
            record={"residual_norm": list(checks)},
            callback=keep,
            progress=False,
        )
        kept[checks[-1]] = reduced.W.clone()
        entry = {"measure": complexity_measure(H, Y).numpy()}
        for i, k in enumerate(checks):
            network.W = network.W0 + (kept[k] - reduced.W0) @ Q.T  # back to pixel space
            with torch.no_grad():
                signs = torch.sign(network(X_test.to(network.dtype)).double())
            entry[k] = {
                "remaining": history["residual_norm"][i] ** 2 / Y.norm(dim=1).numpy() ** 2,
                "error": (signs != Y_test).double().mean(dim=1).numpy(),
                "error true labels": (signs != test[0].clean).double().mean(dim=1).numpy(),
            }
        results[key] = entry
    return results


@needs_images
@pytest.mark.solution("arora2019-figure2-ex-steps")
def test_figure2_training_longer_fits_random_labels_and_costs_on_true_ones(figure2):
    """From 100 to 1000 steps: random labels get fitted, test errors rise, ranks stay.

    At n = 200 as the exercise asks, with width 200 instead of the default 500 (the
    fixture's docstring); eq. (10) is computed from the training labels before any training,
    so it is the same number for both runs by construction.
    """
    mnist, cifar = figure2["mnist"], figure2["cifar10"]
    p04, p06, p1 = PORTIONS.index(0.4), PORTIONS.index(0.6), PORTIONS.index(1.0)
    # training loss left for fully random labels: MNIST 0.61 -> 0.14, CIFAR-10 0.81 -> 0.36
    assert mnist[100]["remaining"][p1] == pytest.approx(0.61, abs=0.025)
    assert mnist[1000]["remaining"][p1] == pytest.approx(0.14, abs=0.025)
    assert cifar[100]["remaining"][p1] == pytest.approx(0.81, abs=0.025)
    assert cifar[1000]["remaining"][p1] == pytest.approx(0.36, abs=0.025)
    # MNIST, p = 0.4: true labels 0.03 -> 0.15, noisy 0.21 -> 0.30
    assert mnist[100]["error true labels"][p04] == pytest.approx(0.03, abs=0.02)
    assert mnist[1000]["error true labels"][p04] == pytest.approx(0.15, abs=0.02)
    assert mnist[100]["error"][p04] == pytest.approx(0.21, abs=0.02)
    assert mnist[1000]["error"][p04] == pytest.approx(0.30, abs=0.02)
    # MNIST, p = 0.6: true 0.13 -> 0.26, noisy 0.33 -> 0.40
    assert mnist[100]["error true labels"][p06] == pytest.approx(0.13, abs=0.02)
    assert mnist[1000]["error true labels"][p06] == pytest.approx(0.26, abs=0.02)
    assert mnist[100]["error"][p06] == pytest.approx(0.33, abs=0.02)
    assert mnist[1000]["error"][p06] == pytest.approx(0.40, abs=0.02)
    # CIFAR-10, p = 0.4: a smaller rise against the true labels, 0.24 -> 0.28
    rise_cifar = cifar[1000]["error true labels"][p04] - cifar[100]["error true labels"][p04]
    rise_mnist = mnist[1000]["error true labels"][p04] - mnist[100]["error true labels"][p04]
    assert 0 < rise_cifar < rise_mnist / 2
    assert cifar[1000]["error true labels"][p04] == pytest.approx(0.28, abs=0.02)
    # the rank agreement of eq. (10) with the test error is 1.00 on both, at both lengths
    for entry in (mnist, cifar):
        for k in (100, 1000):
            assert spearmanr(entry["measure"], entry[k]["error"])[0] == pytest.approx(1.0)


@needs_images
@pytest.mark.solution("arora2019-figure2-ex-inverse")
def test_figure2_quadratic_form_without_inverse_falls_with_the_portion(image_cache, figure2):
    """sqrt(2 y^T H_inf y / n) falls with the portion of random labels, on both data sets.

    The values are those of the default profile (n = 500, seed 0): only H_inf is needed,
    no training, so the test computes them at the solution's own size. The expected value
    for fully random labels is exactly 1 (tr H_inf = n/2). With the quantity in place of
    eq. (10), the first two claims of the page fail: it falls with the portion, and its rank
    correlation with the test error (of the n = 200 runs of the fixture ``figure2``) is
    negative.
    """
    n = 500
    stated = {
        "mnist": [8.14, 6.85, 5.55, 4.00, 2.77, 1.45],
        "cifar10": [1.81, 1.67, 1.44, 1.49, 0.99, 0.64],
    }
    for key, values in stated.items():
        train = [two_class_subset(key, (0, 1), n, seed=0, random_labels=q) for q in PORTIONS]
        h = h_infinity(train[0].X)
        y = torch.stack([s.y for s in train])
        quantity = (2 * ((y @ h) * y).sum(1) / n).sqrt().numpy()
        np.testing.assert_allclose(quantity, values, atol=0.006)
        # fully random labels: 2 y^T H y / n is 1 on average (tr H = n / 2), with a standard
        # deviation sqrt(2 sum_{i != j} H_ij^2) * 2 / n of 0.5 (MNIST) and 1.0 (CIFAR-10)
        assert float(torch.trace(h)) == pytest.approx(n / 2)
        off_diagonal = h - torch.diag(torch.diag(h))
        spread = float((2 * off_diagonal.square().sum()).sqrt()) * 2 / n
        assert spread == pytest.approx({"mnist": 0.5, "cifar10": 1.0}[key], abs=0.05)
        assert abs(quantity[-1] ** 2 - 1) < 2.5 * spread
        assert spearmanr(quantity, PORTIONS)[0] <= -0.9  # falls: claim 1 (>= 0.9) fails
        assert quantity[-1] < quantity[0] / 1.2
        # the same quantity at n = 200 against the test error of the trained networks
        small = [two_class_subset(key, (0, 1), 200, seed=0, random_labels=q) for q in PORTIONS]
        y_small = torch.stack([s.y for s in small])
        h_small = h_infinity(small[0].X)
        wrong = (2 * ((y_small @ h_small) * y_small).sum(1) / 200).sqrt().numpy()
        assert spearmanr(wrong, figure2[key][100]["error"])[0] < 0  # claim 2 (>= 0.9) fails


# -------------------------------------------------------------------- arora2019-theorem4-1


def gap_sweep(n, steps, points, repeats, step_factor=1.0):
    """The notebook's batch: MNIST 0/1, every (width, kappa) of ``points`` with ``repeats``
    initializations, trained on span coordinates with eta = step_factor / lambda_max.

    Returns, per point, the gaps max_k | ||y - u(k)|| - eq. (8) | / ||y|| of its replicas,
    the iterations where they are reached and the share of activation patterns changed at
    the end, as arrays over the replicas.
    """
    sample = two_class_subset("mnist", (0, 1), n, seed=0)
    X = span_coordinates(sample.X)
    eigenvalues, V = spectrum(h_infinity(sample.X))
    eta = step_factor / float(eigenvalues[0])
    predicted = predicted_residual(eigenvalues, label_projections(V, sample.y), eta, steps)
    replicas = [Replica(m, r) for m, _ in points for r in range(repeats)]
    scales = [k for _, k in points for _ in range(repeats)]
    model = TwoLayerReLU.initialize(X.shape[1], replicas, first_scale=scales)
    history = gradient_descent(
        model,
        X,
        sample.y,
        lr=eta,
        steps=steps,
        record={"residual_norm": "all", "pattern_change": [steps]},
        progress=False,
    )
    deviation = np.abs(history["residual_norm"] - predicted.numpy()[:, None])
    gaps, where = deviation.max(axis=0) / math.sqrt(n), deviation.argmax(axis=0)
    flipped = history["pattern_change"][-1]
    blocks = [slice(j * repeats, (j + 1) * repeats) for j in range(len(points))]
    return {
        point: {"gap": gaps[b], "at": where[b], "flipped": flipped[b]}
        for point, b in zip(points, blocks, strict=True)
    }


def fitted_exponent(sweep, points, along):
    """Power law of the gap of every replica against m (along=0) or kappa (along=1)."""
    xs = [point[along] for point in points for _ in sweep[point]["gap"]]
    return power_law(xs, np.concatenate([sweep[point]["gap"] for point in points]))


@needs_images
@pytest.mark.solution("arora2019-theorem4-1-ex-collapse")
def test_theorem4_1_gap_depends_on_kappa_sqrt_m_only(image_cache):
    """kappa = 0.005 with m = 4000 and 16 000 gives the gaps and changed patterns of
    kappa = 0.01 with m = 1000 and 4000, the points with the same kappa sqrt(m).

    Smoke size of the page (n = 40, 60 steps, 2 initializations) instead of the default
    (n = 100, 100 steps, 3): the gap is reached at the first step at every point of both
    sizes, and at n = 40 the four gaps and shares of changed patterns come within 0.01 and
    0.015 of the default's (0.140, 0.089, 0.131, 0.085; 42%, 39%, 42%, 39%).
    """
    points = [(1000, 0.01), (4000, 0.01), (4000, 0.005), (16000, 0.005)]
    sweep = gap_sweep(40, 60, points, repeats=2)
    gap = {point: float(sweep[point]["gap"].mean()) for point in points}
    flipped = {point: float(sweep[point]["flipped"].mean()) for point in points}
    for point in points:
        assert (sweep[point]["at"] == 1).all()  # the early gap, at the first step
    # same kappa sqrt(m): the same gap within a few percent, the same share of flipped patterns
    for old, new in [((1000, 0.01), (4000, 0.005)), ((4000, 0.01), (16000, 0.005))]:
        assert gap[new] == pytest.approx(gap[old], rel=0.06)
        assert flipped[new] == pytest.approx(flipped[old], abs=0.01)
    # while the two values of kappa sqrt(m) (0.32 and 0.63) are far apart
    assert gap[(1000, 0.01)] > 1.4 * gap[(4000, 0.01)]
    # the numbers of the solution, within the difference between n = 40 and n = 100
    stated = {points[0]: 0.140, points[1]: 0.089, points[2]: 0.131, points[3]: 0.085}
    for point, value in stated.items():
        assert gap[point] == pytest.approx(value, abs=0.012)
    for point, share in zip(points, [0.42, 0.39, 0.42, 0.39], strict=True):
        assert flipped[point] == pytest.approx(share, abs=0.02)


@needs_images
@pytest.mark.solution("arora2019-theorem4-1-ex-step")
def test_theorem4_1_larger_step_loses_the_width_exponent(image_cache):
    """At eta = 1.9 / lambda_max the gap is reached at k = 1 to 3 and falls only like
    m^-0.13, from 0.128 at m = 1000 to 0.070 at m = 64 000; the width and kappa^-4 claims fail.

    The default profile (n = 100, 3 initializations, the page's widths and kappa paths) for
    the first 5 steps instead of 100: every gap is reached by k = 3, and after that the
    network stays within about 1% of ||y|| of eq. (8), far below the gaps, so the gaps of
    5 steps are those of the full run (the two agree to 4 digits).
    """
    widths = [1000, 4000, 16000, 64000]
    path4 = [(250, 0.04), (4000, 0.02), (64000, 0.01)]  # m ~ kappa^-4 from m = 250
    points = sorted({(m, 0.01) for m in widths} | set(path4))
    sweep = gap_sweep(100, 5, points, repeats=3, step_factor=1.9)
    for point in points:
        assert ((sweep[point]["at"] >= 1) & (sweep[point]["at"] <= 3)).all()
    assert sweep[(1000, 0.01)]["gap"].mean() == pytest.approx(0.128, abs=0.003)
    assert sweep[(64000, 0.01)]["gap"].mean() == pytest.approx(0.070, abs=0.003)
    width_fit = fitted_exponent(sweep, [(m, 0.01) for m in widths], along=0)
    assert width_fit.slope == pytest.approx(-0.13, abs=0.03)
    # the claims: width exponent in [-0.75, -0.3]; kappa^-4 exponent in [0.5, 2]
    assert not -0.75 <= width_fit.slope <= -0.3
    kappa_fit = fitted_exponent(sweep, path4, along=1)
    assert not (0.5 <= kappa_fit.slope <= 2 and kappa_fit.slope - 2 * kappa_fit.stderr > 0)


@needs_images
@pytest.mark.solution("arora2019-theorem4-1-ex-late")
def test_theorem4_1_late_lag_falls_slowly_with_width(image_cache):
    """n = 40, kappa = 0.05, m = 4000 and 64 000: two initializations of three reach the gap
    late, where it falls like m^-0.3; the third reaches it at the start, at the same size at
    both widths; the mean goes from 0.0137 to 0.0088 of ||y||, patterns changed 16% -> 5%.

    The exercise's configuration (n = 40, 3 initializations, seed 0), the two widths of its
    sweep at fixed kappa only (the kappa paths it also trains are other replicas), for 75
    steps instead of 100: every gap is reached by k = 72, so the gaps are those of the full
    run, and the shares of changed patterns move by less than 0.003 from k = 75 to k = 100.
    """
    points = [(4000, 0.05), (64000, 0.05)]
    sweep = gap_sweep(40, 75, points, repeats=3)
    small, large = sweep[points[0]], sweep[points[1]]
    late = [entry["at"] >= 50 for entry in (small, large)]
    assert [int(mask.sum()) for mask in late] == [2, 2]  # at k = 56 to 72
    assert ((small["at"] <= 2) | late[0]).all() and ((large["at"] <= 2) | late[1]).all()
    late_gap = [entry["gap"][mask].mean() for entry, mask in zip((small, large), late, strict=True)]
    assert math.log(late_gap[1] / late_gap[0]) / math.log(16) == pytest.approx(-0.3, abs=0.06)
    early_gap = [entry["gap"][~mask][0] for entry, mask in zip((small, large), late, strict=True)]
    assert early_gap[1] == pytest.approx(early_gap[0], rel=0.1)  # does not fall with m
    assert max(late_gap[1], 0.013) < min(early_gap) and max(early_gap) < 0.05 / math.sqrt(2)
    # the means over the three, and the exponents the page computes from them
    assert small["gap"].mean() == pytest.approx(0.0137, abs=0.0005)
    assert large["gap"].mean() == pytest.approx(0.0088, abs=0.0005)
    between_means = math.log(large["gap"].mean() / small["gap"].mean()) / math.log(16)
    assert between_means == pytest.approx(-0.16, abs=0.02)
    fit = fitted_exponent(sweep, points, along=0)
    assert fit.slope == pytest.approx(-0.21, abs=0.03)
    assert not -0.75 <= fit.slope <= -0.3  # the width claim fails in this run
    assert small["flipped"].mean() == pytest.approx(0.16, abs=0.01)
    assert large["flipped"].mean() == pytest.approx(0.05, abs=0.01)


# -------------------------------------------------------------------- arora2019-theorem6-1


def unit_directions(d, seed=0):
    """beta and beta_1..3 of the page, drawn once per dimension."""
    B = torch.randn(4, d, generator=generator(seed, "beta", d), dtype=torch.float64)
    return B / B.norm(dim=1, keepdim=True)


def random_signs(n, key, seed=0):
    bits = torch.randint(0, 2, (n,), generator=generator(seed, "signs", *key))
    return 2.0 * bits.to(torch.float64) - 1.0


def movement_run(train_n, widths, kappa, steps, train_d=50, seed=0):
    """The page's Lemma 5.3 batch: linear, quadratic and random labels (||y|| = sqrt(n)) at
    every width, from one draw per width; the movement ||W(k) - W(0)||_F against eq. (11)."""
    X = sphere(train_n, train_d, seed=derive_seed(seed, "theorem6-1 training inputs"))
    t = X @ unit_directions(train_d, seed)[0]
    Y = torch.stack([t, t**2, random_signs(train_n, ("training",), seed)])
    Y = Y / Y.norm(dim=1, keepdim=True) * math.sqrt(train_n)
    H = h_infinity(X)
    eigenvalues, V = spectrum(H)
    eta = 1.0 / float(eigenvalues[0])
    leading = interpolant_norm(H, Y).numpy()
    predicted = predicted_movement(eigenvalues, label_projections(V, Y), eta, steps).numpy()
    model = TwoLayerReLU.initialize(
        train_d, [Replica(m, seed) for m in widths for _ in range(3)], first_scale=kappa
    )
    history = gradient_descent(
        model,
        X,
        Y.repeat(len(widths), 1),
        lr=eta,
        steps=steps,
        record={"frobenius_distance": "all"},
        progress=False,
    )
    movement = history["frobenius_distance"].reshape(steps + 1, len(widths), 3)
    gap = np.abs(movement[1:] / predicted[1:, None, :] - 1.0).max(axis=0)  # (widths, labels)
    per_neuron = movement[-1] / (
        kappa * np.sqrt(np.asarray(widths, dtype=float)[:, None] * train_d)
    )
    return {
        "gap": gap,
        "per neuron": per_neuron,
        "lead ratio": movement[-1] / leading[None, :],
        "exponents": [power_law(widths, gap[:, j]).slope for j in range(3)],
    }


def tracking_claim_holds(run):
    """The page's claim movement-tracks-kernel-prediction."""
    gap = run["gap"]
    return bool((gap[-1] <= 0.15).all() and (gap[-1] < gap[0]).all())


@pytest.mark.solution("arora2019-theorem6-1-ex-kappa")
def test_theorem6_1_small_kappa_leaves_the_kernel_regime():
    """At kappa = 0.01 every neuron moves farther than its initial size, the gap to eq. (11)
    hardly shrinks with m and the tracking claim fails; at the page's kappa = 0.1 it holds.

    Smoke size of the page (n = 60 points in d = 50, widths 100, 800, 3200, 30 steps)
    instead of the default (n = 200, widths 100 to 10 000, 200 steps), where the solution's
    numbers were measured: the per-neuron ratio, the near-zero exponent of the gap and the
    final distance above the leading term show at both sizes, with the same contrast to
    kappa = 0.1.
    """
    widths = [100, 800, 3200]
    small = movement_run(60, widths, kappa=0.01, steps=30)
    page = movement_run(60, widths, kappa=0.1, steps=30)
    # every neuron moves farther than kappa sqrt(d): ratio > 1, tens at m = 100
    assert (small["per neuron"] > 1).all()
    assert (small["per neuron"][0] > 10).all()
    assert (page["per neuron"][-1] < 0.5).all()
    # the gap shrinks with m with an exponent near zero (about -0.07), the claim fails
    assert all(-0.2 <= slope <= 0.1 for slope in small["exponents"])
    assert np.mean(small["exponents"]) == pytest.approx(-0.07, abs=0.05)
    assert not tracking_claim_holds(small)
    assert tracking_claim_holds(page)
    assert np.mean(page["exponents"]) < np.mean(small["exponents"]) - 0.2
    # the final distance is 1.13 to 1.34 times Lemma 5.3's leading term at the largest width
    assert ((small["lead ratio"][-1] >= 1.1) & (small["lead ratio"][-1] <= 1.4)).all()


def random_label_study(dims, sizes, draws, seed=0):
    """The kernel part of the page for random signs and linear labels, per dimension:
    the fitted exponent of sqrt(y^T H^-1 y) of random signs against n, and at the largest n
    the linear labels' ratio to Theorem 6.1's 3 ||beta||, lambda_min and tr H^-1 / (2n)."""
    out = {}
    for d in dims:
        root_q = np.empty((len(sizes), draws))
        linear = np.empty((len(sizes), draws))
        lam_min, trace_ratio = np.empty((len(sizes), draws)), np.empty(draws)
        for b, n in enumerate(sizes):
            for c in range(draws):
                X = sphere(n, d, seed=derive_seed(seed, "theorem6-1 inputs", c))
                H = h_infinity(X)
                Y = torch.stack([X @ unit_directions(d, seed)[0], random_signs(n, (d, c), seed)])
                values = interpolant_norm(H, Y).numpy()
                linear[b, c], root_q[b, c] = values[0] / 3.0, values[1]
                lam = torch.linalg.eigvalsh(H)
                lam_min[b, c], trace_ratio[c] = float(lam[0]), float((1 / lam).sum()) / (2 * n)
        out[d] = {
            "exponent": power_law(sizes, root_q.mean(axis=1)).slope,
            "linear max": float(linear.max()),
            "linear last": float(linear[-1].min()),
            "lambda_min": float(lam_min[-1].mean()),
            "lambda_min fall": float(lam_min[0].mean() / lam_min[-1].mean()),
            "trace over 2n": float(trace_ratio.mean()),
        }
    return out


@pytest.mark.solution("arora2019-theorem6-1-ex-dims")
def test_theorem6_1_random_labels_in_three_dimensions():
    """d = 3 against d = 5: a larger exponent for random signs, a much smaller lambda_min and
    tr H^-1 far above 2n; linear labels at 2/3 of Theorem 6.1's bound in both.

    Sizes 100 to 800 with the page's 3 draws instead of 100 to 1600 (the solution's numbers,
    measured at the default sizes): the exponents are fitted over one doubling fewer and
    come within 0.05 of the default's, and the ordering of d = 3, 5 and 20, the lambda_min
    and trace contrast and the linear ratio show the same.
    """
    study = random_label_study([3, 5, 20], [100, 200, 400, 800], draws=3)
    low, high = study[3], study[5]
    assert low["exponent"] > high["exponent"] + 0.05
    assert low["exponent"] == pytest.approx(0.74, abs=0.05)
    assert high["exponent"] == pytest.approx(0.65, abs=0.05)
    assert low["lambda_min"] < high["lambda_min"] / 10
    assert low["lambda_min fall"] > 2 * high["lambda_min fall"]  # falls faster with n
    assert low["trace over 2n"] > 3 * high["trace over 2n"] > 3
    # the dimension alone does not order the exponents: d = 20 lies above d = 5
    assert study[20]["exponent"] > high["exponent"]
    for entry in (low, high):
        assert entry["linear max"] <= 2 / 3 + 1e-9
        assert entry["linear last"] >= 0.666
