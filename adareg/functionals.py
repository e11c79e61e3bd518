"""Smooth terms ``E(x) = g(Hx)``: the data fidelity (and the check of its weights), and sums of smooth terms.

:class:`SmoothFunctional` is the contract FISTA and L-BFGS rely on.  Because ``H``
is linear, FISTA keeps ``H x_k`` and gets ``H z_k`` at its extrapolated points by the
same linear combination, so each iteration applies ``H`` and ``H^H`` once, and the
objective comes for free.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Iterable

import numpy as np

from . import backend, checks
from .backend import Array
from .operators.base import LinearOperator, broadcasts_to
from .operators.basic import Identity


class SmoothFunctional(ABC):
    r"""A smooth term :math:`E(x) = g(K x)` with :math:`K` linear, split at :math:`u = K x`.

    Subclasses give ``forward(x) = Kx``, ``value_of_forward(u) = g(u)`` and
    ``grad_of_forward(u, x) = K^H \nabla g(u)`` (the gradient at ``x`` where
    ``u = Kx``); :meth:`value_and_grad_of_forward` may share work between the two.
    The solvers also read ``lipschitz``, a Lipschitz constant of :math:`\nabla E`.
    """

    @abstractmethod
    def forward(self, x: Array) -> Any:
        """``K x`` (a tuple of arrays for a sum of terms)."""

    @abstractmethod
    def value_of_forward(self, u: Any) -> float:
        """``g(u)``: ``E(x)`` from ``u = Kx``."""

    @abstractmethod
    def grad_of_forward(self, u: Any, x: Array) -> Array:
        """``grad E(x)`` from ``u = Kx`` (real for a real ``x``)."""

    def value_and_grad_of_forward(self, u: Any, x: Array) -> tuple[float, Array]:
        """``(E(x), grad E(x))`` from ``u = Kx``."""
        return self.value_of_forward(u), self.grad_of_forward(u, x)

    def values_of_forward(self, u: Any, batch_ndim: int) -> Array:
        """``E(x_i)`` for each image of a batch (the ``batch_ndim`` leading axes of ``x`` and of ``u = Kx``), a float64
        array on ``u``'s device; this default calls :meth:`value_of_forward` image by image."""
        xp = backend.namespace(u)
        shape = tuple(u.shape[:batch_ndim])
        values = [self.value_of_forward(u[index]) for index in np.ndindex(*shape)]
        return xp.reshape(xp.asarray(values, dtype=xp.float64), shape)

    def values_and_grad_of_forward(self, u: Any, x: Array, batch_ndim: int) -> tuple[Array, Array]:
        """``(E(x_i) for each image, grad E(x))`` from ``u = Kx``: what L-BFGS needs of a batch."""
        return self.values_of_forward(u, batch_ndim), self.grad_of_forward(u, x)

    def value(self, x: Array) -> float:
        """``E(x)``."""
        return self.value_of_forward(self.forward(x))

    def grad(self, x: Array) -> Array:
        """``grad E(x)``."""
        return self.grad_of_forward(self.forward(x), x)


def lipschitz_constant(smooth: SmoothFunctional, who: str) -> float:
    """``smooth.lipschitz``, checked: a positive finite number, or an error naming ``who``'s argument.

    A learned regularizer at its noise level computes its constant for an image shape
    (``lipschitz(image_shape)``): the error says to give it with the data term in a
    :class:`SmoothSum`, as :func:`adareg.solve` does.
    """
    lipschitz = getattr(smooth, "lipschitz", None)
    if lipschitz is None:
        raise TypeError(f"{who} must be a SmoothFunctional (e.g. LeastSquares(H, y)), got {type(smooth).__name__}")
    if callable(lipschitz):
        raise TypeError(f"{who}: {smooth!r} computes its Lipschitz constant for an image shape, "
                        "lipschitz(image_shape): give it in a SmoothSum, e.g. SmoothSum([(1.0, data), (lam, R)], "
                        "data.lipschitz + lam * R.lipschitz(image_shape))")
    return checks.positive(lipschitz, f"{who}: its Lipschitz constant")


class LeastSquares(backend.KeepsReadOnly, SmoothFunctional):
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
        Measurements: a float or complex array of shape ``H.shape_out`` or
        ``batch + H.shape_out`` (nothing is broadcast), finite.
    weights
        Optional real, non-negative weights broadcastable to ``y``.
    """

    #: Attributes fixed once set (backend.KeepsReadOnly): the gradient applies the adjoint of ``H`` made with it.
    _fixed = ("H",)

    def __init__(self, H: LinearOperator, y: Array, weights: Array | None = None):
        backend.check_array(y, H.shape_out, f"LeastSquares: y (measurements of {H!r})")
        backend.check_finite(y, "LeastSquares: y")
        self.H, self.y = H, y
        self._H_adjoint = H.H  # held: H keeps its adjoint weakly, and making one per gradient costs
        weights = _as_weights(weights, y, "LeastSquares: weights")
        self.weights = None if weights is None else weights.astype(backend.real_dtype(y.dtype), copy=False)

    def forward(self, x: Array) -> Array:
        """``H x``."""
        return self.H(x)

    def value_of_forward(self, Hx: Array) -> float:
        """``E(x)`` from ``Hx``."""
        xp = backend.namespace(Hx)
        r = Hx - self.y
        squares = xp.real(r * xp.conj(r))
        if self.weights is not None:
            squares = self.weights * squares
        return 0.5 * float(xp.sum(squares))

    def grad_of_forward(self, Hx: Array, x: Array) -> Array:
        """``grad E(x)`` from ``Hx`` (real for a real ``x``)."""
        return self._adjoint(self._residuals(Hx)[1], x)

    def _residuals(self, Hx: Array) -> tuple[Array, Array]:
        """The residual ``r = Hx - y`` and the weighted one ``w r``."""
        r = Hx - self.y
        return r, r if self.weights is None else self.weights * r

    def _adjoint(self, weighted: Array, x: Array) -> Array:
        """``H^H`` of the weighted residual, its real part for a real ``x``, in ``x``'s dtype (a solver's
        iterates keep their start's)."""
        g = self._H_adjoint(weighted)
        if tuple(g.shape) != tuple(x.shape):  # y's batch axes broadcast an image (e.g. a start) that lacks them
            raise ValueError(f"LeastSquares: an image of shape {tuple(x.shape)} does not match y of shape "
                             f"{tuple(self.y.shape)}: images (and a solver's x0) need y's batch axes, shape "
                             f"{tuple(g.shape)}")
        if g.dtype.kind == "c" and x.dtype.kind == "f":
            g = backend.namespace(g).real(g)
        return g.astype(x.dtype, copy=False) if x.dtype.kind in "fc" else g

    def value_and_grad_of_forward(self, Hx: Array, x: Array) -> tuple[float, Array]:
        """``(E(x), grad E(x))`` from ``Hx``, sharing the residual."""
        r, weighted = self._residuals(Hx)
        return 0.5 * backend.real_inner(r, weighted), self._adjoint(weighted, x)

    def values_of_forward(self, Hx: Array, batch_ndim: int) -> Array:
        return 0.5 * backend.real_inners(*self._residuals(Hx), batch_ndim).astype(np.float64)

    def values_and_grad_of_forward(self, Hx: Array, x: Array, batch_ndim: int) -> tuple[Array, Array]:
        r, weighted = self._residuals(Hx)
        return 0.5 * backend.real_inners(r, weighted, batch_ndim).astype(np.float64), self._adjoint(weighted, x)

    @property
    def lipschitz(self) -> float:
        """A Lipschitz constant of ``grad E``, the :func:`curvature` of ``H`` and the weights."""
        return curvature(self.H, self.weights, like=self.y)

    def images(self, index: slice) -> LeastSquares:
        """The data term of the images ``index`` of the batch (``y``'s batch axes flattened), as if given alone."""
        y = self.y.reshape(-1, *self.H.shape_out)
        weights = self.weights
        if weights is not None and weights.ndim > len(self.H.shape_out):  # weights of their own per image
            xp = backend.namespace(weights)
            weights = xp.reshape(xp.broadcast_to(weights, self.y.shape), y.shape)[index]
        return LeastSquares(self.H, y[index], weights)


class SmoothSum(SmoothFunctional):
    r"""A weighted sum :math:`\sum_i w_i E_i(x)` of smooth terms :math:`E_i(x) = g_i(K_i x)`.

    Its ``forward`` is the tuple of the terms' forwards, so FISTA extrapolates each
    of them by linearity, as for a single term.  Used for the data term plus a
    smooth regularizer: ``SmoothSum([(1, data), (lam, ridge)], lipschitz)``.

    Parameters
    ----------
    terms
        ``(weight, term)`` pairs of :class:`SmoothFunctional` terms.
    lipschitz
        A Lipschitz constant of the sum's gradient.
    """

    def __init__(self, terms: list[tuple[float, SmoothFunctional]], lipschitz: float):
        self.terms = []
        methods = ("forward", "value_of_forward", "grad_of_forward", "value_and_grad_of_forward")
        for pair in terms:  # a term need not subclass SmoothFunctional, but must have its methods
            if not (isinstance(pair, tuple) and len(pair) == 2 and all(callable(getattr(pair[1], m, None))
                                                                        for m in methods)):
                raise TypeError(f"SmoothSum: terms must be (weight, term) pairs, each term with the methods of a "
                                f"SmoothFunctional ({', '.join(methods)}), got {pair!r}")
            self.terms.append((checks.non_negative(pair[0], "SmoothSum: a term's weight"), pair[1]))
        if not self.terms:
            raise ValueError("SmoothSum: terms must hold at least one (weight, term) pair")
        self.lipschitz = checks.positive(lipschitz, "SmoothSum: lipschitz")

    def forward(self, x: Array) -> tuple[Array, ...]:
        return tuple(term.forward(x) for _, term in self.terms)

    def value_of_forward(self, forwards: tuple[Array, ...]) -> float:
        return sum(w * term.value_of_forward(u) for (w, term), u in zip(self.terms, forwards))

    def grad_of_forward(self, forwards: tuple[Array, ...], x: Array) -> Array:
        return sum(w * term.grad_of_forward(u, x) for (w, term), u in zip(self.terms, forwards))

    def value_and_grad_of_forward(self, forwards: tuple[Array, ...], x: Array) -> tuple[float, Array]:
        return self._weighted(term.value_and_grad_of_forward(u, x) for (_, term), u in zip(self.terms, forwards))

    def values_of_forward(self, forwards: tuple[Array, ...], batch_ndim: int) -> Array:
        return sum(w * term.values_of_forward(u, batch_ndim) for (w, term), u in zip(self.terms, forwards))

    def values_and_grad_of_forward(self, forwards: tuple[Array, ...], x: Array,
                                   batch_ndim: int) -> tuple[Array, Array]:
        return self._weighted(term.values_and_grad_of_forward(u, x, batch_ndim)
                              for (_, term), u in zip(self.terms, forwards))

    def _weighted(self, parts: Iterable[tuple[Any, Array]]) -> tuple[Any, Array]:
        """``(sum_i w_i v_i, sum_i w_i g_i)`` of the terms' ``(value, gradient)`` pairs, in the terms' order."""
        value, grad = 0.0, None
        for (w, _), (v, g) in zip(self.terms, parts):
            value = value + w * v
            grad = w * g if grad is None else grad + w * g
        return value, grad


def curvature(H: LinearOperator, weights: Array | None, like: Array | None = None) -> float:
    r"""``max(w) ||H||^2`` with ``H.norm_bound(like=like)`` (see its rules): a Lipschitz constant of the
    gradient of :math:`\tfrac12 \|Hx - y\|_w^2`, with ``H`` applied as on ``like``'s device (e.g. ``y``)."""
    largest = 1.0 if weights is None else float(backend.namespace(weights).max(weights))
    return largest * H.norm_bound(like=like) ** 2


def is_denoising(H: LinearOperator, weights: Array | None) -> bool:
    """Whether ``1/2 ||Hx - y||_w^2`` is ``1/2 ||x - y||^2``: ``H`` the identity and no data weights."""
    return isinstance(H, Identity) and weights is None


def check_weights(weights: Any, y: Array, what: str = "solve: weights") -> Array | None:
    """``weights`` checked (real, finite, non-negative, broadcasting to ``y``, not all zero), numbers and lists as
    arrays.

    They are the data weights ``w`` of ``1/2 ||Hx - y||_w^2`` (:class:`LeastSquares`), as
    :func:`adareg.solve` and :func:`adareg.tune` take them.  A Python number or a nested
    list becomes a float64 array on ``y``'s backend (a single number scales the whole data
    term), as do integer and boolean arrays; a NumPy array moves to ``y``'s GPU.
    """
    weights = _as_weights(weights, y, what)
    if weights is not None and not bool(backend.namespace(weights).any(weights > 0)):
        raise ValueError(f"{what} are all zero: the data term vanishes and nothing ties x to y")
    return weights


def _as_weights(weights: Any, y: Array, what: str) -> Array | None:
    """:func:`check_weights` but for the all-zero test, which :class:`LeastSquares` leaves to its callers (an image
    of a batch may have no data weight of its own)."""
    if weights is None:
        return None
    xp = backend.namespace(y)
    if isinstance(weights, (bool, np.bool_)):  # a boolean array is a mask of the samples kept; True alone is a slip
        raise TypeError(f"{what} must be real numbers or an array, got {weights!r}")
    if backend.is_array(weights):
        backend.check_plain(weights, what)  # before asarray, which would drop a mask unseen
        if backend.is_cupy(weights) and not backend.is_cupy(y):
            raise TypeError(f"{what} are a CuPy array but y is a NumPy array; put both on one device")
        weights = xp.asarray(weights)  # a NumPy array goes to y's GPU, once
    else:
        try:
            host = np.asarray(weights)
        except (TypeError, ValueError) as err:  # e.g. ragged lists
            raise TypeError(f"{what} must be real numbers or an array, got {weights!r:.60}") from err
        if host.dtype.kind not in "biuf":  # strings, None, ints beyond int64 (object)
            raise TypeError(f"{what} must be real numbers or an array, got {weights!r:.60}")
        weights = xp.asarray(host)
    if weights.dtype.kind in "biu" or weights.dtype in (np.float16, np.longdouble):  # e.g. photon counts, a mask
        weights = weights.astype(np.float64)
    backend.check_dtype(weights, what)
    if weights.dtype.kind == "c":
        raise TypeError(f"{what} must be real, got dtype {weights.dtype}")
    if not broadcasts_to(weights.shape, y.shape):
        raise ValueError(f"{what} of shape {tuple(weights.shape)} do not broadcast to y of shape "
                         f"{tuple(y.shape)}")
    backend.check_finite(weights, what)
    if bool(xp.any(weights < 0)):
        raise ValueError(f"{what} must be non-negative")
    return weights
