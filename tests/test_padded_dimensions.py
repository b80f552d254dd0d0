"""Zero coordinates change nothing: a padded margin-ascent run is the unpadded one.

bach2022 Figure 6(c) trains networks of several input dimensions in one batch by padding the
inputs with zero coordinates up to the largest d. A zero coordinate adds nothing to w^T x and
its weights get a zero gradient (the input-layer gradient of neuron j is a sum of multiples
of the x_i), so the padded replica must follow the unpadded network exactly.
"""

from __future__ import annotations

import pytest
import torch

from twolayer.data import append_bias, cluster_task
from twolayer.implicit_bias import margin_ascent, margin_network
from twolayer.model import Replica, TwoLayerReLU


def _padded(X: torch.Tensor, d: int) -> torch.Tensor:
    """(x, 0, ..., 0, 1) with d - 1 real coordinates, as the notebook builds it."""
    return append_bias(torch.nn.functional.pad(X, (0, d - 1 - X.shape[-1])))


@pytest.mark.parametrize("trained", ["both", "output"])
def test_a_padded_replica_follows_the_unpadded_network(trained):
    small, large, n, width = 5, 9, 40, 12
    X, y = cluster_task(3, small - 1, seed=4).sample(n)
    alone = margin_network(small, [Replica(width, 3)], trained)
    W_small = alone.W.clone()
    # the same network padded to `large` inputs; its padding weights are NOT zero here, to
    # check that they neither act nor move (the notebook sets them to zero for clean norms)
    junk = torch.randn(width, large - small, generator=torch.Generator().manual_seed(1),
                       dtype=torch.float64)
    W_large = torch.cat([W_small[:, :-1], junk, W_small[:, -1:]], dim=1)
    padded = TwoLayerReLU(W_large, alone.a.clone(), alone.replicas, scaling="mean_field",
                          trained=trained)
    X_small, X_large = append_bias(X), _padded(X, large)
    run_small = margin_ascent(alone, X_small, y, steps=200, step_size=0.5, record_every=50,
                              progress=False)
    run_large = margin_ascent(padded, X_large, y, steps=200, step_size=0.5, record_every=50,
                              progress=False)
    torch.testing.assert_close(padded.W[:, small - 1 : large - 1], junk, rtol=0, atol=0)
    torch.testing.assert_close(padded.W[:, : small - 1], alone.W[:, :-1])
    torch.testing.assert_close(padded.W[:, -1], alone.W[:, -1])
    torch.testing.assert_close(padded.a, alone.a)
    torch.testing.assert_close(torch.from_numpy(run_large.smoothed),
                               torch.from_numpy(run_small.smoothed))
    if trained == "both":
        assert not torch.equal(alone.W, W_small)  # the input layer did move


def test_mixed_dimensions_in_one_batch_match_separate_runs():
    dims, n, width, large = [3, 6], 30, 8, 6
    draws = [cluster_task(2, d - 1, seed=2).sample(n, d) for d in dims]
    X = torch.stack([_padded(Xd, large) for Xd, _ in draws])  # (2, n, large)
    y = torch.stack([yd for _, yd in draws])
    batch = margin_network(large, [Replica(width, 0), Replica(width, 1)], "both")
    unused = torch.arange(large - 1) >= (torch.tensor(dims) - 1)[:, None]
    batch.W[:, :-1][batch.per_neuron(unused)] = 0.0
    assert int((batch.W == 0).sum()) == width * (large - dims[0])
    start = batch.W.clone()
    margin_ascent(batch, X, y, steps=100, step_size=0.5, record_every=100, progress=False)
    for r, (d, (Xd, yd)) in enumerate(zip(dims, draws, strict=True)):
        rows = slice(r * width, (r + 1) * width)
        W0 = torch.cat([start[rows, : d - 1], start[rows, -1:]], dim=1)
        single = TwoLayerReLU(W0, batch.a0[rows].clone(), [Replica(width, r)],
                              scaling="mean_field", trained="both")
        margin_ascent(single, append_bias(Xd), yd, steps=100, step_size=0.5, record_every=100,
                      progress=False)
        torch.testing.assert_close(batch.W[rows, : d - 1], single.W[:, :-1])
        torch.testing.assert_close(batch.W[rows, -1], single.W[:, -1])
        assert not batch.W[rows, d - 1 : large - 1].any()  # the padding weights stay zero
        torch.testing.assert_close(batch.a[rows], single.a)
