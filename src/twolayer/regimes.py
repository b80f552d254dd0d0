"""From the lazy to the mean-field regime with one knob: the output scale m^-beta.

The network is f(x) = m^-beta sum_{r=1}^m a_r relu(w_r^T x) with both layers trained by
full-batch gradient descent on the mean square loss L = (1/2n) sum_i (f(x_i) - y_i)^2.
beta = 1/2 is the kernel scaling of du2019 and arora2019, beta = 1 the mean-field one of
bach2022; every beta in between is allowed, one per replica.

Step rule. The tangent kernel of the network is K = sum_p grad_p f grad_p f^T, a sum of m
terms of size m^-2beta, so K = m^(1 - 2beta) K_m with K_m of order one (at initialization
K_m tends to H∞ + G∞). One step changes the predictions by about -eta K (u - y) / n, so the
step

    eta = eta0 m^(2beta - 1)

makes the first steps move the predictions at a speed that does not depend on m: the
kernel regime's constant step at beta = 1/2 and the mean-field step eta0 m at beta = 1
(the m-fold speed-up of bach2022's code). Each neuron then moves by about
eta m^-beta = eta0 m^(beta - 1) per unit of time, so the first layer's relative distance
||W - W(0)||_F / ||W(0)||_F scales like m^(beta - 1): m^-1/2 in the kernel regime, order
one in the mean-field regime.

Initialization. Paired neurons (w, a) and (w, -a) make f = 0 at the start for every beta
(Chizat, Oyallon and Bach, "On lazy training", 2019); without them the starting output
would be of size m^(1/2 - beta), which depends on m for beta > 1/2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from twolayer.kernels import tangent_kernel
from twolayer.model import Replica, TwoLayerReLU


def regime_network(
    d: int,
    betas: Sequence[float],
    widths: Sequence[int],
    seed: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> TwoLayerReLU:
    """One replica per (beta, width), beta outermost, both layers trained.

    w_r ~ N(0, I_d) and a_r = ±1 (du2019's initialization), paired so that f = 0 at the
    start; c_m = m^-beta. Replicas of one width share their initial weights across beta
    (each draws from the stream of its (seed, width)), so beta alone differs between them.
    """
    if not betas or not widths:
        raise ValueError("need at least one beta and one width")
    replicas = [Replica(int(m), int(seed)) for _ in betas for m in widths]
    exponents = [float(b) for b in betas for _ in widths]
    return TwoLayerReLU.initialize(
        d,
        replicas,
        scaling=exponents,
        first_init="gaussian",
        output_init="sign",
        paired=True,
        trained="both",
        dtype=dtype,
        device=device,
    )


def step_sizes(model: TwoLayerReLU, eta0: float) -> torch.Tensor:
    """eta = eta0 m^(2beta - 1) of every replica, shape (R,), float64 on the CPU."""
    if not eta0 > 0:
        raise ValueError(f"eta0 must be > 0, got {eta0}")
    widths = torch.tensor([r.width for r in model.replicas], dtype=torch.float64)
    exponents = torch.tensor(model.exponents, dtype=torch.float64)
    return eta0 * widths ** (2.0 * exponents - 1.0)


def relative_distance(model: TwoLayerReLU) -> torch.Tensor:
    """||W - W(0)||_F / ||W(0)||_F of the first layer of every replica, (R,), float64."""
    W, W0 = model.W.to(torch.float64), model.W0.to(torch.float64)
    moved = model.neuron_sum(((W - W0) ** 2).sum(dim=1)).sqrt()
    start = model.neuron_sum((W0**2).sum(dim=1)).sqrt()
    return moved / start


def initial_network(model: TwoLayerReLU) -> TwoLayerReLU:
    """A copy of the replicas at their starting weights W(0), a(0)."""
    return TwoLayerReLU(
        model.W0.clone(),
        model.a0.clone(),
        model.replicas,
        scaling=model.scaling,
        trained=model.trained,
    )


def kernel_change(model: TwoLayerReLU, X: torch.Tensor) -> torch.Tensor:
    """||K(now) - K(0)||_F / ||K(0)||_F of the empirical tangent kernel on X, (R,).

    K is the kernel of the layers that train (:func:`twolayer.kernels.tangent_kernel`); the
    ratio does not depend on the factor m^(1 - 2beta) that beta puts in front of it.
    """
    K0 = tangent_kernel(initial_network(model), X)
    K = tangent_kernel(model, X)
    return (K - K0).flatten(1).norm(dim=1) / K0.flatten(1).norm(dim=1)


def relative_risk(predictions: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """mean (f - y)^2 / mean (y - mean y)^2 on a test set, per row of ``predictions``.

    1 is the risk of predicting the labels' mean, 0 that of the teacher itself.
    """
    p = predictions.to(torch.float64)
    y = y.to(device=p.device, dtype=torch.float64)
    return ((p - y) ** 2).mean(dim=-1) / ((y - y.mean()) ** 2).mean()
