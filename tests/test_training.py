"""Gradient descent: batching, determinism, kernel dynamics, schedules and checkpoints."""

import numpy as np
import pytest
import torch

from twolayer.data import gaussian_labels, sphere
from twolayer.kernels import gram_first_layer
from twolayer.losses import Loss
from twolayer.model import Replica, TwoLayerReLU, replica_grid
from twolayer.training import gradient_descent, iterations

RECORD = {
    "loss": "all",
    "residual_norm": 2,
    "pattern_change": 3,
    "max_distance": "all",
    "frobenius_distance": [0, 7, 10],
    "output_distance": 5,
    "lambda_min": [0, 10],
}


def _data(n=12, d=6, seed=0):
    return sphere(n, d, seed), gaussian_labels(n, seed)


def _model(reps, d=6, trained="both", **kw):
    return TwoLayerReLU.initialize(d, reps, trained=trained, dtype=torch.float64, **kw)


def test_batched_replicas_equal_separate_runs():
    X, y = _data()
    reps = [Replica(30, 0), Replica(30, 1), Replica(80, 0), Replica(15, 4)]
    lrs = [0.2, 0.3, 0.2, 0.1]
    batched = _model(reps)
    hist = gradient_descent(batched, X, y, lr=lrs, steps=10, record=RECORD, progress=False)
    for i, rep in enumerate(reps):
        alone = _model([rep])
        single = gradient_descent(alone, X, y, lr=lrs[i], steps=10, record=RECORD, progress=False)
        for name in RECORD:
            np.testing.assert_allclose(hist[name][:, i], single[name][:, 0], rtol=1e-9, atol=1e-12)
            assert np.array_equal(hist.steps(name), single.steps(name))
        assert torch.allclose(batched.select(i).W, alone.W, atol=1e-12)


def test_per_replica_labels():
    X, y = _data()
    Y = torch.stack([y, -y])
    model = _model(replica_grid([20], [0, 0]))
    hist = gradient_descent(model, X, Y, lr=0.1, steps=3, progress=False)
    alone = gradient_descent(_model([Replica(20, 0)]), X, -y, lr=0.1, steps=3, progress=False)
    np.testing.assert_allclose(hist["loss"][:, 1], alone["loss"][:, 0], rtol=1e-12)


def test_same_seed_same_numbers():
    X, y = _data()
    runs = []
    for _ in range(2):
        model = TwoLayerReLU.initialize(6, replica_grid([40, 60], [3]))
        runs.append(gradient_descent(model, X, y, lr=0.2, steps=15, record=RECORD, progress=False))
    for name in RECORD:
        assert np.array_equal(runs[0][name], runs[1][name])
    other = gradient_descent(
        TwoLayerReLU.initialize(6, replica_grid([40, 60], [4])), X, y, lr=0.2, steps=15,
        progress=False,
    )
    assert not np.array_equal(runs[0]["loss"], other["loss"])


def test_one_small_step_follows_the_gram_matrix():
    """u(1) - u(0) = -eta H(0) (u(0) - y) + O(eta^2): the discrete form of du2019 eq. (7)."""
    X, y = _data(n=10, d=5)
    model = _model([Replica(500, 0)], d=5, trained="first")
    H = gram_first_layer(model, X)[0]
    u0 = model(X)[0]
    for eta in (1e-3, 1e-4):
        m = _model([Replica(500, 0)], d=5, trained="first")
        gradient_descent(m, X, y, lr=eta, steps=1, progress=False)
        step = m(X)[0] - u0
        predicted = -eta * H @ (u0 - y)
        assert (step - predicted).norm() < 1e-3 * predicted.norm()


def test_gradient_descent_drives_the_loss_down():
    X, y = _data(n=20, d=10)
    model = _model([Replica(2000, 0)], d=10, trained="first")
    hist = gradient_descent(model, X, y, lr=0.5, steps=300, progress=False)
    assert hist["loss"][-1, 0] < 1e-6 * hist["loss"][0, 0]
    logistic = _model([Replica(500, 0)], d=10, trained="both")
    hist = gradient_descent(
        logistic, X, torch.sign(y), lr=1.0, steps=200, loss=Loss("logistic"), progress=False
    )
    assert hist["loss"][-1, 0] < 0.2 * hist["loss"][0, 0]


def test_iteration_schedules():
    assert iterations("all", 3) == [0, 1, 2, 3]
    assert iterations(4, 10) == [0, 4, 8, 10]
    assert iterations([5, 0, 5], 10) == [0, 5]
    with pytest.raises(ValueError, match="0..10"):
        iterations([11], 10)
    with pytest.raises(ValueError):
        iterations("some", 10)


def test_bad_arguments():
    X, y = _data()
    model = _model([Replica(5, 0)])
    with pytest.raises(ValueError, match="unknown metrics"):
        gradient_descent(model, X, y, lr=0.1, steps=2, record={"accuracy": "all"})
    with pytest.raises(ValueError, match="lr"):
        gradient_descent(model, X, y, lr=-1.0, steps=2)
    with pytest.raises(ValueError, match="steps"):
        gradient_descent(model, X, y, lr=0.1, steps=-2)


class Interrupt(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_result(tmp_path):
    X, y = _data()
    reps = replica_grid([25, 40], [0, 1])
    reference = _model(reps)
    full = gradient_descent(reference, X, y, lr=0.3, steps=23, record=RECORD, progress=False)

    path = tmp_path / "run.pt"

    def stop_at_17(k, model):
        if k == 17:
            raise Interrupt

    interrupted = _model(reps)
    with pytest.raises(Interrupt):
        gradient_descent(interrupted, X, y, lr=0.3, steps=23, record=RECORD, progress=False,
                         checkpoint=path, checkpoint_every=5, callback=stop_at_17)
    seen = []
    resumed_model = _model(reps)
    resumed = gradient_descent(resumed_model, X, y, lr=0.3, steps=23, record=RECORD,
                               progress=False, checkpoint=path, checkpoint_every=5,
                               callback=lambda k, m: seen.append(k))
    assert seen[0] == 15  # resumed from the checkpoint written after iteration 15
    for name in RECORD:
        assert np.array_equal(resumed[name], full[name])
        assert np.array_equal(resumed.steps(name), full.steps(name))
    assert torch.equal(resumed_model.W, reference.W)
    assert torch.equal(resumed_model.a, reference.a)

    # a finished run is loaded, not recomputed
    calls = []
    again_model = _model(reps)
    again = gradient_descent(again_model, X, y, lr=0.3, steps=23, record=RECORD, progress=False,
                             checkpoint=path, callback=lambda k, m: calls.append(k))
    assert calls == []
    assert np.array_equal(again["loss"], full["loss"])
    assert torch.equal(again_model.W, reference.W)


def test_checkpoint_of_another_run_is_not_reused(tmp_path):
    X, y = _data()
    path = tmp_path / "run.pt"
    gradient_descent(_model([Replica(10, 0)]), X, y, lr=0.3, steps=4, checkpoint=path,
                     progress=False)
    calls = []
    with pytest.warns(UserWarning, match="different run"):
        gradient_descent(_model([Replica(10, 0)]), X, y, lr=0.2, steps=4, checkpoint=path,
                         progress=False, callback=lambda k, m: calls.append(k))
    assert calls == [0, 1, 2, 3]
