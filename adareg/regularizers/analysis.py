r"""Weighted :math:`\ell_1` analysis regularizers and their exact dual prox.

This is the convex problem solved at every step of the spatially adaptive models
(DESIGN.md §1): :math:`R(x) = \sum_c \langle \Lambda_c, |W_c x| \rangle`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from .. import backend
from ..backend import Array
from ..operators.base import LinearOperator
from .base import Bounds, ProxResult, Regularizer, check_bounds, project


@dataclass(frozen=True)
class DualState:
    r"""Where dual FISTA stopped (:attr:`ProxResult.state` of :meth:`WeightedL1Analysis.prox`).

    Attributes
    ----------
    point
        The dual iterate :math:`p` (the returned primal point is :math:`P_C(v - \tau W^H p)`).
    extrapolated
        FISTA's extrapolated point :math:`q` (``point`` itself after a restart).
    t
        FISTA's momentum parameter :math:`t_k`.
    """

    point: Array
    extrapolated: Array
    t: float


class WeightedL1Analysis(Regularizer):
    r"""Weighted :math:`\ell_1` norm of the responses of an analysis operator.

    .. math::

        R(x) = \sum_c \langle \Lambda_c, |W_c x| \rangle
             = \sum_c \sum_i \Lambda_{c,i} \, |(W_c x)_i|

    With ``group_channels=True`` the channels at each pixel form one group,
    :math:`R(x) = \sum_i \Lambda_i \, \| ((W x)_{c,i})_c \|_2` (isotropic TV for
    ``W`` the gradient).  No smoothing is applied anywhere.

    The prox is computed exactly, by FISTA on the dual problem (Beck & Teboulle's
    fast gradient projection, with box constraints and adaptive restart):

    .. math::

        x(p) = P_C(v - \tau W^H p), \qquad
        \min_{|p_c| \le \Lambda_c} \; \tfrac12 \|v - \tau W^H p\|^2 - \tfrac12 \|x(p) - (v - \tau W^H p)\|^2

    and stops on the duality gap
    :math:`G(p) = \tau \sum (\Lambda |W x(p)| - \mathrm{Re}(\bar p \, W x(p))) \ge 0`,
    which bounds the distance to the exact prox: :math:`\|x(p) - x^*\|^2 \le 2 G(p)`.

    Parameters
    ----------
    W
        Analysis operator, e.g. a filter bank ``(H, W) -> (C, H, W)``.
    weights
        :math:`\Lambda \ge 0`: a number, or an array that broadcasts to
        ``W.shape_out`` (to ``(1, *W.shape_out[1:])`` when channels are grouped);
        extra leading axes are batch axes, one weight map per image of a batch.
    group_channels
        Group the channels (the first axis of ``W.shape_out``) at each pixel.
    """

    def __init__(self, W: LinearOperator, weights: float | Array = 1.0, *, group_channels: bool = False):
        if not isinstance(W, LinearOperator):
            raise TypeError(f"{type(self).__name__}: W must be a LinearOperator, got {type(W).__name__}")
        if group_channels and len(W.shape_out) < 2:
            raise ValueError(f"{type(self).__name__}: group_channels needs a channel axis in W.shape_out={W.shape_out}")
        self.W = W
        self.shape = W.shape_in
        self.group_channels = group_channels
        self._set_weights(weights)

    def _set_weights(self, weights: float | Array) -> None:
        name = type(self).__name__
        target = (1, *self.W.shape_out[1:]) if self.group_channels else self.W.shape_out
        if backend.is_array(weights):
            backend.check_dtype(weights, f"{name}: weights")
            if weights.dtype.kind == "c":
                raise TypeError(f"{name}: weights must be real, got dtype {weights.dtype}")
            n = min(weights.ndim, len(target))
            tail = tuple(weights.shape[weights.ndim - n :])
            try:
                ok = np.broadcast_shapes(tail, target[len(target) - n :]) == target[len(target) - n :]
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"{name}: weights of shape {tuple(weights.shape)} do not broadcast to {target}")
            xp = backend.namespace(weights)
            if not bool(xp.all(xp.isfinite(weights))) or bool(xp.any(weights < 0)):
                raise ValueError(f"{name}: weights must be finite and non-negative")
            self._weights = backend.DeviceCache(weights) if not backend.is_cupy(weights) else weights
        else:
            value = float(weights)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name}: weights must be finite and non-negative, got {weights!r}")
            self._weights = value
        self.weights = weights

    def with_weights(self, weights: float | Array) -> WeightedL1Analysis:
        """The same regularizer (same ``W``, norm estimate shared) with new weights."""
        new = copy.copy(self)
        new._set_weights(weights)
        return new

    # ----------------------------------------------------------- evaluation
    def _weights_like(self, x: Array) -> float | Array:
        dtype = backend.real_dtype(x.dtype)
        if isinstance(self._weights, float):
            return self._weights
        if isinstance(self._weights, backend.DeviceCache):
            return self._weights.like(x, dtype)
        return self._weights.astype(dtype, copy=False)

    def magnitude(self, z: Array) -> Array:
        """``|z|``, or the channel-wise Euclidean norm (keeping the axis) when grouped."""
        xp = backend.namespace(z)
        if not self.group_channels:
            return xp.abs(z)
        axis = -len(self.W.shape_out)
        return xp.sqrt(xp.sum(xp.real(z * xp.conj(z)), axis=axis, keepdims=True))

    def value(self, x: Array) -> float:
        self.check_image(x, "x")
        return float(backend.namespace(x).sum(self._weights_like(x) * self.magnitude(self.W(x))))

    def _shrink(self, p: Array, weights: float | Array) -> Array:
        """The factor ``min(1, Lambda / |p|)`` that projects ``p`` onto the ball of each group (or complex entry)."""
        xp = backend.namespace(p)
        size = self.magnitude(p)
        return xp.minimum(1.0, weights / xp.maximum(size, np.finfo(size.dtype).tiny))

    def _project_dual(self, p: Array, weights: float | Array) -> Array:
        """Projection onto ``{|p_c| <= Lambda_c}`` (per group when grouped)."""
        if not self.group_channels and p.dtype.kind == "f":
            return backend.namespace(p).clip(p, -weights, weights)
        return p * self._shrink(p, weights)

    def _dual_projector(self, weights: float | Array) -> Callable[[Array], Array]:
        """:meth:`_project_dual` done in place on its argument, which must have the full dual shape."""
        def project_in_place(p: Array) -> Array:
            xp = backend.namespace(p)
            if self.group_channels or p.dtype.kind != "f":
                p *= self._shrink(p, weights)
                return p
            if isinstance(weights, float):
                return p.clip(-weights, weights, out=p)
            # minimum then maximum: two passes, faster than NumPy's clip with array bounds
            xp.minimum(p, weights, out=p)
            return xp.maximum(p, lower, out=p)

        lower = weights if isinstance(weights, float) else -weights
        return project_in_place

    def prox(self, v: Array, tau: float, *, bounds: Bounds | None = None, warm_start: Any = None,
             tol: float | None = 1e-4, max_iter: int = 1000, check_every: int = 10,
             record: Callable[..., None] | None = None, progress: bool = False) -> ProxResult:
        r"""Exact prox :math:`\arg\min_{x \in C} \tfrac12\|x - v\|^2 + \tau R(x)` by dual FISTA.

        Parameters
        ----------
        v
            Input, of shape ``self.shape`` or ``batch + self.shape``.
        tau
            Positive step (``lam`` for denoising with ``E = ||x - y||^2 / 2``).
        bounds
            Box ``(lower, upper)`` for ``x`` (either may be ``None``).
        warm_start
            A :class:`DualState` returned earlier as ``ProxResult.state``, or a
            dual variable: the iteration starts from its dual point (projected
            onto the new weights' box).  For a budgeted call (``tol=None``) it
            also continues the state's momentum, so that a sequence of such calls,
            e.g. the steps of the reweighting loop whose weights change between
            calls, is one FISTA run; a certified call restarts the momentum.
        tol
            Stop when ``sqrt(2 * gap) <= tol * ||v||`` (a certified relative error).
            The gap is computed to about machine precision, so tolerances near
            ``sqrt(eps)`` (1e-8 in float64, 3e-4 in float32) may not be certifiable.
            ``None``: run ``max_iter`` iterations without computing the gap (an
            inexact, uncertified step: ``gap`` is ``inf``), as the reweighting
            loop does with its warm-started steps.
        max_iter
            Maximal number of dual iterations.
        check_every
            Iterations between duality-gap evaluations (each costs one extra
            application of ``W`` and ``W^H``); after a warm start the gap is
            also checked after the first iteration.
        record
            Called at each gap check with keywords ``iteration``, ``objective``
            (of the prox problem), ``gap`` and ``seconds`` (e.g. ``History.append``).
        progress
            Show a progress bar.
        """
        self.check_image(v, "v")
        tau = float(tau)
        if not tau > 0 or not math.isfinite(tau):
            raise ValueError(f"{type(self).__name__}.prox: tau must be positive and finite, got {tau}")
        bounds = check_bounds(bounds)
        xp = backend.namespace(v)
        W = self.W
        weights = self._weights_like(v)
        # the norm estimate runs in v's precision and on its device (float32: about half the time of float64)
        norm = W.norm_bound(like=v)
        step = 1.0 / (tau * norm**2) if norm > 0 else 1.0  # W = 0 (e.g. differences of one pixel): any step
        batch = tuple(v.shape[: v.ndim - len(self.shape)])
        dual_shape = (*batch, *W.shape_out)
        dtype = backend.result_dtype(v.dtype, W.dtype)
        if warm_start is None:
            # weights with batch axes of their own give the dual (and x) those axes
            shape = dual_shape if isinstance(weights, float) else np.broadcast_shapes(dual_shape, weights.shape)
            p = xp.zeros(shape, dtype=dtype)
        else:
            point = warm_start.point if isinstance(warm_start, DualState) else warm_start
            if tuple(point.shape) != dual_shape:
                raise ValueError(
                    f"{type(self).__name__}.prox: warm_start has shape {tuple(point.shape)}, expected {dual_shape}"
                )
            p = self._project_dual(point.astype(dtype, copy=False), weights)
        v_norm = float(xp.linalg.vector_norm(v))
        start = time.perf_counter()

        def primal(p: Array) -> Array:
            return project(v - tau * W.H(p), bounds)

        project_dual = self._dual_projector(weights)

        # The loop owns p, q and p_next and updates them in place: every full-size temporary
        # costs an allocation and a pass over all channels, which add up to the cost of W.
        q, t = p, 1.0
        if tol is None and isinstance(warm_start, DualState):  # continue the run's momentum
            t = warm_start.t
            if warm_start.extrapolated is not warm_start.point:
                q = warm_start.extrapolated.astype(dtype, copy=True)
        gap, converged, x = math.inf, False, None
        real = dtype.kind == "f"
        bar = tqdm(total=max_iter, disable=not progress, desc="dual FISTA", leave=False)
        k = 0
        while k < max_iter:
            k += 1
            # the step scales the image, not the C channels of its response; the sum is a new
            # contiguous array (W's output may be a strided view, slow to update in place)
            p_next = W(step * primal(q)) + q
            if p_next.dtype != dtype:
                p_next = p_next.astype(dtype)
            p_next = project_dual(p_next)
            # adaptive restart (O'Donoghue & Candes): drop the momentum when it points uphill,
            # Re <q - p_next, p_next - p> > 0; when q is p that is -||p_next - p||^2 <= 0: no restart
            restart, differenced = False, q is not p
            if differenced:
                q -= p_next
                p -= p_next  # p now holds p - p_next
                restart = float(xp.real(xp.vdot(q, p))) < 0
            if restart:
                t, q = 1.0, p_next
            else:
                t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
                beta = (t - 1.0) / t_next
                if beta == 0.0:
                    q = p_next
                else:
                    # q = p_next + beta (p_next - p), in the buffer of the old p
                    if not differenced:
                        p -= p_next
                    p *= -beta
                    p += p_next
                    q = p
                t = t_next
            p = p_next
            bar.update()
            # a warm start is often nearly optimal: check it once straight away
            if tol is not None and (k % check_every == 0 or k == max_iter or (k == 1 and warm_start is not None)):
                x = primal(p)
                Wx = W(x)
                weighted = weights * self.magnitude(Wx)
                # per group, Lambda |Wx| >= Re <p, Wx> since |p| <= Lambda: a sum of non-negative terms
                pairing = p * Wx if real else xp.real(xp.conj(p) * Wx)
                if self.group_channels:
                    pairing = xp.sum(pairing, axis=-len(W.shape_out), keepdims=True)
                gap = max(tau * float(xp.sum(weighted - pairing)), 0.0)
                if record is not None:
                    objective = 0.5 * float(xp.sum(xp.abs(x - v) ** 2)) + tau * float(xp.sum(weighted))
                    record(iteration=k, objective=objective, gap=gap, seconds=time.perf_counter() - start)
                if math.sqrt(2.0 * gap) <= tol * v_norm:
                    converged = True
                    break
        bar.close()
        if x is None:  # max_iter == 0, or no gap checks
            x = primal(p)
        return ProxResult(x=x, state=DualState(p, q, t), iterations=k, gap=gap, converged=converged)
