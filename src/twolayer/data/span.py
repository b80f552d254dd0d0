"""Inputs written in an orthonormal basis of their own span.

Gradient descent on the first layer of a two-layer network moves each w_r by combinations
of the inputs x_i (du2019 eq. (3), arora2019 eq. (5)), and the preactivations w_r^T x_i
only see the part of w_r inside span{x_1, ..., x_n}. With Q (d, r) an orthonormal basis of
that span, training on the coordinates x_i^T Q in R^r instead of x_i in R^d therefore gives
the same outputs u(k) at every step, the same activation patterns and the same distances
||W(k) - W(0)||_F, when the initial weights are W(0) Q. For w_r(0) ~ N(0, kappa^2 I_d),
W(0) Q has independent N(0, kappa^2) entries again (the Gaussian is rotation invariant), so
a network initialized directly in R^r with the same kappa is the same random experiment.
When n < d this turns the m d n cost of a step into m r n with r <= n.
"""

from __future__ import annotations

import torch


def span_coordinates(
    X: torch.Tensor, *, return_basis: bool = False
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Coordinates X Q of the rows of ``X`` (n, d) in an orthonormal basis Q of their span.

    Q comes from the reduced QR decomposition X^T = Q R, so X Q = R^T, of shape
    (n, min(n, d)), in float64. Inner products, norms and hence H∞ are unchanged:
    (X Q)(X Q)^T = X X^T. With ``return_basis=True`` the result is ``(X Q, Q)``.
    When n >= d nothing is gained and Q is the identity.
    """
    X = X.to(torch.float64)
    n, d = X.shape
    if n >= d:
        Q = torch.eye(d, dtype=X.dtype, device=X.device)
        return (X, Q) if return_basis else X
    Q, R = torch.linalg.qr(X.T, mode="reduced")  # Q (d, n), R (n, n)
    coordinates = R.T.contiguous()
    return (coordinates, Q) if return_basis else coordinates
