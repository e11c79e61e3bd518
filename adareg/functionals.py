"""Data-fidelity terms ``E(Hx, y)``: what the solvers minimise besides the regularizer."""

from __future__ import annotations

import numpy as np

from . import backend
from .backend import Array
from .operators.base import NORM_SAFETY, LinearOperator


class LeastSquares:
    r"""The (weighted) least-squares data term and its gradient.

    .. math::

        E(x) = \tfrac12 \, \| H x - y \|_w^2 = \tfrac12 \sum_i w_i \, |(H x)_i - y_i|^2,
        \qquad \nabla E(x) = H^H \big(w \odot (H x - y)\big)

    For a real ``x`` and a complex ``H`` (e.g. MRI on real images) the gradient
    is the real part, the gradient with respect to the real unknowns.  ``w``
    (non-negative, e.g. inverse noise variances) defaults to 1.

    Parameters
    ----------
    H
        Forward operator.
    y
        Measurements, of shape ``H.shape_out`` or ``batch + H.shape_out``.
    weights
        Optional non-negative weights broadcastable to ``y``.
    """

    def __init__(self, H: LinearOperator, y: Array, weights: Array | None = None):
        self.H, self.y = H, y
        if weights is not None:
            xp = backend.namespace(y)
            weights = xp.asarray(weights, dtype=backend.real_dtype(y.dtype))
            if tuple(np.broadcast_shapes(tuple(weights.shape), tuple(y.shape))) != tuple(y.shape):
                raise ValueError(
                    f"LeastSquares: weights of shape {tuple(weights.shape)} do not broadcast to y of shape "
                    f"{tuple(y.shape)}"
                )
            if not bool(xp.all(xp.isfinite(weights))) or bool(xp.any(weights < 0)):
                raise ValueError("LeastSquares: weights must be finite and non-negative")
        self.weights = weights

    def residual(self, x: Array) -> Array:
        """``H x - y``."""
        return self.H(x) - self.y

    def value(self, x: Array) -> float:
        """``E(x)``."""
        return self._value_of(self.residual(x))

    def grad(self, x: Array) -> Array:
        """``grad E(x)``."""
        return self.value_and_grad(x)[1]

    def value_and_grad(self, x: Array) -> tuple[float, Array]:
        """``(E(x), grad E(x))`` with one application of ``H`` and one of ``H^H``."""
        r = self.residual(x)
        g = self.H.H(r if self.weights is None else self.weights * r)
        if g.dtype.kind == "c" and x.dtype.kind == "f":
            g = backend.namespace(g).real(g)
        return self._value_of(r), g

    def _value_of(self, r: Array) -> float:
        xp = backend.namespace(r)
        squares = xp.real(r * xp.conj(r))
        if self.weights is not None:
            squares = self.weights * squares
        return 0.5 * float(xp.sum(squares))

    @property
    def lipschitz(self) -> float:
        """A Lipschitz constant of ``grad E``: ``max(w) ||H||^2`` (with a 1% margin)."""
        largest = 1.0 if self.weights is None else float(backend.namespace(self.weights).max(self.weights))
        return largest * (NORM_SAFETY * self.H.norm()) ** 2
