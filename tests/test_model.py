"""The batched two-layer network: outputs, gradients, initialization and bookkeeping."""

import math

import pytest
import torch

from twolayer.data import gaussian_labels, sphere
from twolayer.losses import Loss
from twolayer.model import Replica, TwoLayerReLU, replica_grid


def _explicit_outputs(model, X):
    """Outputs computed replica by replica with a Python loop over neurons."""
    out = []
    for i, rep in enumerate(model.replicas):
        single = model.select(i)
        c = {"ntk": 1 / math.sqrt(rep.width), "mean_field": 1 / rep.width, "none": 1.0}[
            model.scaling
        ]
        total = torch.zeros(X.shape[0], dtype=X.dtype)
        for r in range(rep.width):
            total += c * single.a[r] * torch.relu(X @ single.W[r])
        out.append(total)
    return torch.stack(out)


@pytest.mark.parametrize("scaling", ["ntk", "mean_field", "none"])
def test_outputs_match_explicit_sum(scaling):
    X = sphere(6, 4, seed=0)
    model = TwoLayerReLU.initialize(
        4, [Replica(3, 0), Replica(5, 1), Replica(3, 2)], scaling=scaling, dtype=torch.float64
    )
    assert torch.allclose(model(X), _explicit_outputs(model, X), atol=1e-12)


@pytest.mark.parametrize("trained", ["first", "output", "both"])
@pytest.mark.parametrize("loss", [Loss("square", "sum"), Loss("square", "mean"), Loss("logistic")])
@pytest.mark.parametrize("scaling", ["ntk", "mean_field"])
def test_hand_written_gradients_match_autograd(trained, loss, scaling):
    X = sphere(9, 5, seed=1)
    y = torch.sign(gaussian_labels(9, seed=1)) if loss.name == "logistic" else gaussian_labels(9)
    model = TwoLayerReLU.initialize(
        5,
        replica_grid([4, 7], [0, 1]),
        trained=trained,
        scaling=scaling,
        output_init="gaussian",
        dtype=torch.float64,
    )
    W = model.W.clone().requires_grad_(True)
    a = model.a.clone().requires_grad_(True)
    model.W, model.a = W, a
    Z = model.preactivations(X)
    u = model.outputs(Z)
    loss.value(u, y).sum().backward()
    dW, da = model.gradients(X, Z.detach(), loss.derivative(u.detach(), y))
    if trained in ("first", "both"):
        assert torch.allclose(dW, W.grad, atol=1e-12)
    else:
        assert dW is None
    if trained in ("output", "both"):
        assert torch.allclose(da, a.grad, atol=1e-12)
    else:
        assert da is None


def test_du2019_gradient_formula():
    """dL/dw_r = (1/sqrt(m)) sum_i (f(x_i) - y_i) a_r x_i 1{w_r^T x_i >= 0}, eq. (4)."""
    X, y = sphere(5, 3, seed=2), gaussian_labels(5, seed=2)
    model = TwoLayerReLU.initialize(3, [Replica(4, 0)], dtype=torch.float64)
    Z = model.preactivations(X)
    u = model.outputs(Z)
    dW, _ = model.gradients(X, Z, Loss().derivative(u, y))
    for r in range(4):
        expected = sum(
            (u[0, i] - y[i]) * model.a[r] * X[i] * float(X[i] @ model.W[r] >= 0) for i in range(5)
        ) / math.sqrt(4)
        assert torch.allclose(dW[r], expected, atol=1e-12)


def test_initialization_does_not_depend_on_batching():
    reps = [Replica(50, 0), Replica(20, 3), Replica(50, 1)]
    batched = TwoLayerReLU.initialize(7, reps)
    for i, rep in enumerate(reps):
        alone = TwoLayerReLU.initialize(7, [rep])
        assert torch.equal(batched.select(i).W, alone.W)
        assert torch.equal(batched.select(i).a, alone.a)


def test_initialization_options():
    reps = [Replica(4000, 0)]
    gauss = TwoLayerReLU.initialize(10, reps, first_scale=0.01, dtype=torch.float64)
    assert abs(gauss.W.std().item() - 0.01) < 5e-4
    assert set(gauss.a.unique().tolist()) == {-1.0, 1.0}
    assert abs(gauss.a.mean().item()) < 0.05
    sph = TwoLayerReLU.initialize(10, reps, first_init="sphere", first_scale=2.0)
    assert torch.allclose(sph.W.norm(dim=1), torch.full((4000,), 2.0))
    bal = TwoLayerReLU.initialize(3, [Replica(5, 0)], output_init="balanced_sign", output_scale=0.4)
    assert bal.a.tolist() == pytest.approx([0.4, 0.4, 0.4, -0.4, -0.4])
    zero = TwoLayerReLU.initialize(3, [Replica(5, 0)], output_init="zero")
    assert not zero.a.any()


def test_one_initialization_scale_per_replica():
    reps = [Replica(6, 0), Replica(9, 1), Replica(6, 0)]
    kappas = [0.5, 0.01, 2.0]
    batched = TwoLayerReLU.initialize(4, reps, first_scale=kappas, dtype=torch.float64)
    for i, (rep, kappa) in enumerate(zip(reps, kappas, strict=True)):
        alone = TwoLayerReLU.initialize(4, [rep], first_scale=kappa, dtype=torch.float64)
        assert torch.equal(batched.select(i).W, alone.W)
        assert torch.equal(batched.select(i).a, alone.a)
    # the same draw at another scale: replicas 0 and 2 share width and seed
    assert torch.allclose(batched.select(2).W, 4.0 * batched.select(0).W)
    with pytest.raises(ValueError, match="first_scale has 2 values for 3 replicas"):
        TwoLayerReLU.initialize(4, reps, first_scale=[1.0, 2.0])


def test_different_seeds_and_widths_give_different_weights():
    m = TwoLayerReLU.initialize(4, [Replica(6, 0), Replica(6, 1)])
    assert not torch.equal(m.select(0).W, m.select(1).W)


def test_neuron_reductions_with_repeated_and_interleaved_widths():
    reps = [Replica(3, 0), Replica(3, 1), Replica(5, 0), Replica(3, 2)]
    model = TwoLayerReLU.initialize(2, reps)
    values = torch.arange(14.0).reshape(14, 1).repeat(1, 2)  # (M, 2)
    bounds = [(0, 3), (3, 6), (6, 11), (11, 14)]
    assert model.neuron_sum(values)[:, 0].tolist() == [sum(range(a, b)) for a, b in bounds]
    assert model.neuron_max(values)[:, 1].tolist() == [b - 1 for a, b in bounds]
    assert model.per_neuron(torch.tensor([1.0, 2.0, 3.0, 4.0])).tolist() == (
        [1.0] * 3 + [2.0] * 3 + [3.0] * 5 + [4.0] * 3
    )
    factors = torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    scaled = model.scale_by_replica_(torch.ones(14, 2), factors)
    assert torch.equal(scaled, model.per_neuron(factors))


@pytest.mark.parametrize(
    ("option", "value"),
    [("scaling", "lazy"), ("trained", "second"), ("first_init", "uniform"), ("output_init", "one")],
)
def test_invalid_options_name_the_option(option, value):
    with pytest.raises(ValueError, match=f"{option} = '{value}'"):
        TwoLayerReLU.initialize(3, [Replica(2, 0)], **{option: value})


def test_state_round_trip():
    model = TwoLayerReLU.initialize(3, [Replica(4, 0)])
    other = TwoLayerReLU.initialize(3, [Replica(4, 1)])
    other.load_state_dict(model.state_dict())
    assert torch.equal(other.W, model.W) and torch.equal(other.a0, model.a0)


def test_grouped_inputs_feed_each_group_of_replicas_its_own_data():
    # two groups (e.g. two repetitions), each with widths 3 and 5: group g sees X[g] only
    replicas = [Replica(3, 0), Replica(5, 1), Replica(3, 2), Replica(5, 3)]
    model = TwoLayerReLU.initialize(
        4,
        replicas,
        scaling="mean_field",
        trained="both",
        output_init="gaussian",
        dtype=torch.float64,
    )
    X = torch.stack([sphere(7, 4, seed=10), sphere(7, 4, seed=11)])
    y = torch.stack([gaussian_labels(7, seed=1), gaussian_labels(7, seed=2)])
    y = y.repeat_interleave(2, dim=0)  # labels per replica, (R, n)
    loss = Loss("square", "mean")
    Z = model.preactivations(X)
    u = model.outputs(Z)
    dW, da = model.gradients(X, Z, loss.derivative(u, y))
    first = 0
    for i, rep in enumerate(replicas):
        single = model.select(i)
        data = X[i // 2]
        torch.testing.assert_close(u[i], single(data)[0])
        Zi = single.preactivations(data)
        ui = single.outputs(Zi)
        dWi, dai = single.gradients(data, Zi, loss.derivative(ui, y[i : i + 1]))
        torch.testing.assert_close(dW[first : first + rep.width], dWi)
        torch.testing.assert_close(da[first : first + rep.width], dai)
        first += rep.width


def test_input_groups_must_split_the_replicas_evenly():
    model = TwoLayerReLU.initialize(3, [Replica(3, 0), Replica(5, 1), Replica(4, 2)])
    with pytest.raises(ValueError, match="does not divide the 3 replicas"):
        model(torch.zeros(2, 4, 3))
    uneven = TwoLayerReLU.initialize(3, [Replica(3, 0), Replica(5, 1)])
    with pytest.raises(ValueError, match="different neuron counts"):
        uneven(torch.zeros(2, 4, 3))


def test_reductions_over_many_mixed_widths_use_the_padded_path_correctly():
    # widths 1..12 in each of 3 repetitions: 36 runs of one replica each
    replicas = [Replica(m, s) for s in range(3) for m in range(1, 13)]
    model = TwoLayerReLU.initialize(3, replicas, scaling="mean_field", dtype=torch.float64)
    assert len(model._blocks) > 8
    values = torch.randn(model.W.shape[0], 4, dtype=torch.float64) - 5.0  # all negative
    sums = model.neuron_sum(values)
    maxima = model.neuron_max(values)
    scaled = model.scale_by_replica_(values.clone(), torch.arange(36.0).double()[:, None] + 1)
    for i, block in enumerate(model.replica_blocks(values)):
        torch.testing.assert_close(sums[i], block.sum(dim=0))
        torch.testing.assert_close(maxima[i], block.amax(dim=0))
        torch.testing.assert_close(model.replica_blocks(scaled)[i], block * (i + 1))
    counts = model.neuron_sum(torch.ones(model.W.shape[0], dtype=torch.int64))
    assert counts.tolist() == [m for _ in range(3) for m in range(1, 13)]
