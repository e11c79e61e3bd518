r"""Weighted :math:`\ell_1` analysis regularizers and their exact dual prox.

This is the convex problem solved at every step of the spatially adaptive models
(DESIGN.md §1): :math:`R(x) = \sum_c \langle \Lambda_c, |W_c x| \rangle`.
"""

from __future__ import annotations

import copy
import math
import numbers
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from .. import backend, caches, checks, threads
from ..backend import Array
from ..operators.base import LinearOperator
from ..stopping import Progress, Residual, check_callback, default_rule, largest_ratio, stops
from .base import PROX_DEFAULTS, Bounds, ProxResult, Regularizer, check_bounds, project


@dataclass(frozen=True)
class DualState:
    r"""Where dual FISTA stopped (the ``state`` of the :class:`ProxResult` of :meth:`WeightedL1Analysis.prox`).

    Attributes
    ----------
    point
        The dual iterate :math:`p` (the returned primal point is :math:`P_C(v - \tau W^H p)`).
    extrapolated
        FISTA's extrapolated point :math:`q` (equal to ``point`` after a restart).
    t
        FISTA's momentum parameter :math:`t_k`, one per image of a batch (an array of the
        batch's shape, 0-d for one image; ``1.0`` before any step).
    adjoint_point
        :math:`W^H p`, so that a budgeted call continuing from this state needs no
        extra application of :math:`W^H`.
    adjoint_extrapolated
        :math:`W^H q`, likewise.
    """

    point: Array
    extrapolated: Array
    t: Any
    adjoint_point: Array
    adjoint_extrapolated: Array


@dataclass(frozen=True)
class DualBall:
    r"""The dual set :math:`\{p : |p_c| \le \Lambda_c\}` of a :class:`WeightedL1Analysis` for images of one
    shape, dtype and device (:meth:`WeightedL1Analysis.dual_ball`): what a dual or primal-dual solver needs of it.

    Attributes
    ----------
    shape
        The dual's shape: ``batch + W.shape_out``, with any batch axes of the weights.
    weights
        :math:`\Lambda` in the images' real precision and on their device: a number or an array.
    project
        ``project(p)`` projects all of ``p`` (of shape ``shape``) onto the set in place, per group when
        channels are grouped; ``project(p, block)`` only its rows ``block`` (axis -2). Returns ``p``.
    blocks
        ``blocks(function, p)`` calls ``function(block)`` over blocks of the rows of ``p`` (axis -2;
        :func:`adareg.threads.blockwise`), or ``function(None)`` once where a group spans the rows,
        and returns the list of what the calls return.
    """

    shape: tuple[int, ...]
    weights: float | Array
    project: Callable[..., Array]
    blocks: Callable[[Callable[[slice | None], Any], Array], list]


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

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("W", "group_channels")

    def __init__(self, W: LinearOperator, weights: float | Array = 1.0, *, group_channels: bool = False):
        if not isinstance(W, LinearOperator):
            raise TypeError(f"{type(self).__name__}: W must be a LinearOperator, got {type(W).__name__}")
        if not isinstance(group_channels, (bool, np.bool_)):
            raise TypeError(f"{type(self).__name__}: group_channels must be True or False, got {group_channels!r}")
        if group_channels and len(W.shape_out) < 2:
            raise ValueError(f"{type(self).__name__}: group_channels needs a channel axis in W.shape_out={W.shape_out}")
        self.W = W
        self.shape = W.shape_in
        self.group_channels = group_channels
        self._set_weights(weights)

    def _set_weights(self, weights: float | Array) -> None:
        name = type(self).__name__
        target = (1, *self.W.shape_out[1:]) if self.group_channels else self.W.shape_out
        if isinstance(weights, (list, tuple)):  # nested lists of numbers: a float64 array
            listed = backend.as_array(weights, f"{name}: weights")
            if listed.dtype.kind in "biufO":  # objects: e.g. ints beyond int64, Fractions (or None, refused)
                try:
                    listed = listed.astype(np.float64)
                except (TypeError, ValueError):
                    raise TypeError(f"{name}: weights must be an array or nested lists of numbers, got "
                                    f"{weights!r:.60}") from None
            weights = listed
        elif backend.is_foreign_array(weights):  # e.g. a torch tensor: as the NumPy array of its dtype
            weights = backend.as_array(weights, f"{name}: weights")
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
            # contiguous, as every dual iteration reads them (a strided view, e.g. a convolution's
            # unpadded output, makes the projection several times slower)
            weights = xp.ascontiguousarray(weights)
            if not backend.is_cupy(weights):
                # the read-only copy is the one kept: holding the caller's array too doubled the weights' memory
                # (an adaptive model builds a step's weights anew each time)
                self._weights = caches.DeviceCache(weights)
                weights = self._weights.host
            else:  # a copy: the caller's array may change later (a NumPy one's copy is the cache's read-only host)
                self._weights = weights.copy()
        else:
            if isinstance(weights, bool) or not isinstance(weights, numbers.Real):
                raise TypeError(f"{name}: weights must be a number or an array, got {weights!r:.60}")
            value = float(weights)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name}: weights must be finite and non-negative, got {weights!r}")
            self._weights = value
        self._batch_shape = tuple(np.shape(weights)[: max(0, np.ndim(weights) - len(target))])

    @property
    def weights(self) -> float | Array:
        r"""The weights :math:`\Lambda`, a number or a read-only copy of the array given (a copy on the GPU)."""
        return self._weights.host if isinstance(self._weights, caches.DeviceCache) else self._weights

    @property
    def batch_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """The batch axes of the weights (one weight map per image), ``()`` for one map."""
        return self._batch_shape

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
        if isinstance(self._weights, caches.DeviceCache):
            return self._weights.like(x, dtype)
        return self._weights.astype(dtype, copy=False)

    def dual_ball(self, x: Array) -> DualBall:
        """The dual set for images of ``x``'s shape (batch axes included), dtype and device.

        Raises
        ------
        ValueError
            If ``x`` is not of shape ``batch + self.shape``, or the weights' batch axes do not
            broadcast with its batch.
        TypeError
            If ``x`` is not an array of a supported dtype.
        """
        self.check_image(x, "x")
        weights = self._weights_like(x)
        return DualBall(self._dual_shape(x, weights), weights, self._dual_projector(weights), self._dual_blocks)

    def _dual_shape(self, x: Array, weights: float | Array) -> tuple[int, ...]:
        """The dual's shape for images ``x``: ``batch + W.shape_out``, with any batch axes of the weights."""
        batch = tuple(x.shape[: x.ndim - len(self.shape)])
        shape = (*batch, *self.W.shape_out)
        if isinstance(weights, float):
            return shape
        try:
            return np.broadcast_shapes(shape, tuple(weights.shape))
        except ValueError:
            raise ValueError(f"{type(self).__name__}: weights of shape {tuple(weights.shape)} do not broadcast "
                             f"with the responses {shape} of images of shape {tuple(x.shape)}") from None

    def magnitude(self, z: Array) -> Array:
        """``|z|``, or the channel-wise Euclidean norm (keeping the axis) when grouped."""
        xp = backend.namespace(z)
        if not self.group_channels:
            return xp.abs(z)
        axis = -len(self.W.shape_out)
        return xp.sqrt(xp.sum(xp.real(z * xp.conj(z)), axis=axis, keepdims=True))

    def value(self, x: Array) -> float:
        self.check_image(x, "x")
        weights = self._weights_like(x)
        self._dual_shape(x, weights)  # weights of another batch are named, as prox names them
        return float(backend.namespace(x).sum(weights * self.magnitude(self.W(x))))

    def _shrink(self, p: Array, weights: float | Array) -> Array:
        """The factor ``min(1, Lambda / |p|)`` that projects ``p`` onto the ball of each group (or complex entry)."""
        xp = backend.namespace(p)
        # Lambda / max(|p|, Lambda): the same factor, without Lambda / tiny overflowing where p = 0 (tiny: a
        # factor 0 where Lambda = 0)
        bound = xp.maximum(self.magnitude(p), weights)
        return weights / xp.maximum(bound, np.finfo(bound.dtype).tiny, out=bound)

    def _project_dual(self, p: Array, weights: float | Array) -> Array:
        """Projection onto ``{|p_c| <= Lambda_c}`` (per group when grouped)."""
        if not self.group_channels and p.dtype.kind == "f":
            return p.clip(-weights, weights)  # the array's own (see regularizers.base.project)
        return p * self._shrink(p, weights)

    def _dual_projector(self, weights: float | Array) -> Callable[..., Array]:
        """:meth:`_project_dual` done in place: ``project(p)`` on all of ``p``, which must have the full dual
        shape, or ``project(p, block)`` on its rows ``block`` (axis -2; see :meth:`_dual_blocks`)."""
        def project_in_place(p: Array, block: slice | None = None) -> Array:
            xp = backend.namespace(p)
            part, bound = _rows(p, block), _rows(weights, block)
            if self.group_channels or p.dtype.kind != "f":
                part *= self._shrink(part, bound)
            elif isinstance(bound, float):
                part.clip(-bound, bound, out=part)
            else:
                # minimum then maximum: two passes, faster than NumPy's clip with array bounds
                xp.minimum(part, bound, out=part)
                xp.maximum(part, _rows(lower, block), out=part)
            return p

        lower = weights if isinstance(weights, float) else -weights
        return project_in_place

    def _dual_blocks(self, function: Callable[[slice | None], Any], dual: Array) -> list:
        """``function(block)`` over blocks of the dual's rows (axis -2; :func:`adareg.threads.blockwise`),
        or ``function(None)`` once on all of it where a group spans the rows."""
        if len(self.W.shape_out) < 2 or (self.group_channels and len(self.W.shape_out) == 2):
            return [function(None)]
        return threads.blockwise(function, dual.shape[-2], dual.nbytes, like=dual)

    def prox(self, v: Array, tau: float, *, bounds: Bounds | None = None, warm_start: Any = None,
             tol: float | None = PROX_DEFAULTS.tol, max_iter: int = PROX_DEFAULTS.max_iter, check_every: int = 10,
             max_time: float | None = None, callback: Callable[[int, Array], Any] | None = None,
             record: Callable[..., None] | None = None, progress: bool = False) -> ProxResult:
        r"""Exact prox :math:`\arg\min_{x \in C} \tfrac12\|x - v\|^2 + \tau R(x)` by dual FISTA.

        Parameters
        ----------
        v
            Input, of shape ``self.shape`` or ``batch + self.shape``.  A real ``v`` gives the
            prox over real images, also for a complex ``W``.
        tau
            Positive step (``lam`` for denoising with ``E = ||x - y||^2 / 2``).
        bounds
            Box ``(lower, upper)`` for ``x`` (either may be ``None``).
        warm_start
            A :class:`DualState` returned earlier as ``ProxResult.state`` by a
            call with the same ``W``, or a dual variable: the iteration starts
            from its dual point, projected onto the new weights' box.  A budgeted
            call (``tol=None``) from a :class:`DualState` instead continues the
            state's iterates and momentum as they are (its first step projects
            onto the new box), so that a sequence of such calls, e.g. the steps
            of the reweighting loop whose weights change between calls, is one
            FISTA run; a certified call restarts the momentum.
        tol
            Stop when ``sqrt(2 * gap) <= tol * ||v||`` (a certified relative error),
            for every image of a batch (each with its own gap and ``||v||``).
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
        max_time
            Stop (not converged) after the iteration that passes this many seconds.
        callback
            ``callback(k, x_k)`` at each gap check, ``k`` the dual iterations so far and
            ``x_k`` the primal point; returning ``True`` stops (not converged).  Refused
            for a budgeted call (``tol=None``), which checks no gap.
        record
            Called at each gap check with keywords ``iteration``, ``objective``
            (of the prox problem), ``gap`` and ``seconds`` (e.g. ``History.append``);
            refused for a budgeted call, as ``callback`` is.
        progress
            Show a progress bar.

        Raises
        ------
        ValueError
            For a certified call (``tol`` not ``None``), if ``v`` holds NaN or Inf: one
            such pixel spreads through :math:`W^H W` to the whole image and the gap never
            certifies.  Budgeted calls leave this to their caller (one host
            synchronisation per call saved inside iterations).
        """
        self.check_image(v, "v")
        name = f"{type(self).__name__}.prox"
        xp = backend.namespace(v)
        v_norms = None  # per image, for the certified error: budgeted calls need none
        if tol is not None:  # (budgeted calls run inside solvers, which check their iterates' residuals)
            v_norms = xp.linalg.vector_norm(v, axis=tuple(range(v.ndim - len(self.shape), v.ndim)))
            if not bool(xp.all(xp.isfinite(v_norms))):  # NaN or Inf in v, or a norm past the float range
                backend.check_finite(v, f"{name}: v")
        tau = checks.positive(tau, f"{name}: tau")
        stop = default_rule(max_iter, tol, max_time, measure=Residual, who=name)  # (checks them)
        if tol is None and (callback is not None or record is not None):
            raise ValueError(f"{name}: callback and record are called at each duality-gap check, which a budgeted "
                             "call (tol=None) makes none of: give a tol")
        check_every = checks.count(check_every, f"{name}: check_every")
        progress = checks.flag(progress, f"{name}: progress")
        callback = check_callback(callback, f"{name}: callback")
        ball = self.dual_ball(v)
        dual = _DualFISTA(self, v, tau, ball, check_bounds(bounds), warm_start, keep_momentum=tol is None)
        warm = warm_start is not None
        del warm_start  # copied: a caller that handed its state over (see reweighting) frees its buffers now
        start = time.perf_counter()
        gap, x = math.inf, None
        with tqdm(total=max_iter, disable=not progress, desc="dual FISTA", leave=False) as bar:
            k = 0
            while True:
                k += 1
                dual.step()
                bar.update()
                residual = math.inf
                # a warm start is often nearly optimal: check it once straight away
                checked = tol is not None and (k % check_every == 0 or k == max_iter or (k == 1 and warm))
                if checked:
                    x = dual.primal()
                    gaps, penalty = self._gaps_and_penalty(x, dual.p, tau, ball.weights)
                    gap, residual = float(xp.sum(gaps)), _certified_error(gaps, v_norms)
                    if record is not None:
                        objective = 0.5 * float(backend.namespace(x).sum(abs(x - v) ** 2)) + tau * float(penalty)
                        record(iteration=k, objective=objective, gap=gap, seconds=time.perf_counter() - start)
                    if callback is not None and stops(callback(k, x)):
                        converged = False
                        break
                fired = stop.check(Progress(iteration=k, seconds=time.perf_counter() - start, residual=residual))
                if fired is not None:
                    converged = fired.converged
                    break
        if not checked:  # stopped by the time between gap checks (its gap, one more pass), or a budgeted call
            x = dual.primal()
            gap = math.inf if tol is None else float(xp.sum(self._gaps_and_penalty(x, dual.p, tau, ball.weights)[0]))
        return ProxResult(x=x, state=dual.state(), iterations=k, gap=gap, converged=converged)

    def duality_gap(self, x: Array, p: Array, tau: float) -> float:
        r"""The gap :math:`G = \tau \sum (\Lambda |W x| - \mathrm{Re}(\bar p \, W x))` of the prox problem.

        For :math:`x = P_C(v - \tau W^H p)` and :math:`|p_c| \le \Lambda_c` it is the
        primal objective at ``x`` minus the dual objective at ``p`` (each term is
        non-negative), so :math:`\|x - x^*\|^2 \le 2 G`.

        Raises
        ------
        ValueError
            If ``p`` lies outside the dual set, is not of the dual's shape (one that
            broadcasts would leave the set where it is paired with ``W x``), or ``tau`` is
            not positive: the clipped sum would then read as a certificate that it is not.
        """
        name = f"{type(self).__name__}.duality_gap"
        tau = checks.positive(tau, f"{name}: tau")
        backend.check_array(x, self.shape, f"{name}: x")
        weights = self._weights_like(x)
        shape = self._dual_shape(x, weights)
        backend.check_array(p, shape, f"{name}: p")
        if tuple(p.shape) != shape:
            raise ValueError(f"{name}: p has shape {tuple(p.shape)}; expected {shape}, the shape of W x")
        xp = backend.namespace(x)
        backend.check_finite(p, f"{name}: p")
        slack = backend.rounding(p.dtype)  # a projection's rounding
        excess = float(xp.max(self.magnitude(p) - weights * (1 + slack)))
        if excess > 0:
            raise ValueError(f"{name}: p must satisfy |p_c| <= Lambda_c (the dual set); "
                             f"it exceeds it by up to {excess:.3g} (project it first)")
        return float(xp.sum(self._gaps_and_penalty(x, p, tau, weights)[0]))

    def _gaps_and_penalty(self, x: Array, p: Array, tau: float, weights: float | Array) -> tuple[Array, Array]:
        """The duality gap of each image (an array of the batch's shape) and :math:`R(x)` of all (0-d, on the
        device: read only where recorded), from one ``W``."""
        xp = backend.namespace(x)
        Wx = self.W(x)
        weighted = weights * self.magnitude(Wx)
        # per group, Lambda |Wx| >= Re <p, Wx> since |p| <= Lambda: a sum of non-negative terms
        pairing = p * Wx if p.dtype.kind == "f" else xp.real(xp.conj(p) * Wx)
        if self.group_channels:
            pairing = xp.sum(pairing, axis=-len(self.W.shape_out), keepdims=True)
        image_axes = tuple(range(Wx.ndim - len(self.W.shape_out), Wx.ndim))
        gaps = xp.maximum(tau * xp.sum(weighted - pairing, axis=image_axes), 0.0)
        return gaps, xp.sum(weighted)


def _rows(a: float | Array, block: slice | None) -> float | Array:
    """Rows ``block`` (axis -2) of a dual-shaped array, or ``a`` itself: for ``block=None`` (all rows) or where it
    broadcasts along them."""
    if block is None or isinstance(a, float) or a.ndim < 2 or a.shape[-2] == 1:
        return a
    return a[..., block, :]


def row_part(block: slice | None) -> tuple:
    """The index of rows ``block`` (axis -2) of an array, all of it for ``None``: a block of
    :attr:`DualBall.blocks`."""
    return (...,) if block is None else (..., block, slice(None))


def _certified_error(gaps: Array, v_norms: Array) -> float:
    """The largest ``sqrt(2 gap) / ||v||`` over the images, each a certified relative distance to its exact prox.

    An image with a zero gap has none (0), one with ``||v|| = 0`` and a positive gap an unbounded one.
    """
    return largest_ratio(backend.namespace(gaps).sqrt(2.0 * gaps), v_norms)


class _DualFISTA:
    r"""Dual FISTA for the prox of a :class:`WeightedL1Analysis`, its buffers updated in place.

    One :meth:`step` is a projected gradient step on the dual from the extrapolated
    point, :math:`p_{k+1} = P_{|p| \le \Lambda}(q_k + s \, W x(q_k))`, :math:`s = 1 / (\tau \|W\|^2)`,
    then the momentum update with adaptive restart, image by image for a batch (each
    image keeps its own :math:`t` and restarts, so that it follows its own path and a
    batch needs no more iterations than its slowest image).  The images :math:`W^H p_k` and
    :math:`W^H q_k` are kept alongside (the latter by linearity,
    :math:`W^H q_{k+1} = W^H p_{k+1} + \beta (W^H p_{k+1} - W^H p_k)`), so that a step
    applies ``W`` and ``W^H`` once each and the primal point :math:`x(p_k)` costs no
    further pass of the bank.
    """

    def __init__(self, reg: WeightedL1Analysis, v: Array, tau: float, ball: DualBall,
                 bounds: Bounds | None, warm_start: Any, keep_momentum: bool):
        self.W, self.v, self.tau, self.bounds = reg.W, v, tau, bounds
        self.W_adjoint = reg.W.H  # held: W keeps its adjoint weakly, and making one per step costs
        self.xp = xp = backend.namespace(v)
        # the norm estimate runs in v's precision and on its device (float32 costs less than float64)
        norm = reg.W.norm_bound(like=v)
        self.step_size = 1.0 / (tau * norm**2) if norm > 0 else 1.0  # W = 0 (e.g. differences of one pixel): any step
        dual_shape = ball.shape  # x gets the weights' batch axes too
        image_dtype = backend.result_dtype(v.dtype, reg.W.dtype)
        # the dual lives where W's outputs do: real for a W that gives real arrays of complex images
        self.dtype = backend.real_dtype(image_dtype) if reg.W.real_out else image_dtype
        self.project_dual, self.dual_blocks = ball.project, ball.blocks
        self.batch_ndim = len(dual_shape) - len(reg.W.shape_out)  # each image has its own momentum and restarts
        self.t: Any = 1.0
        if warm_start is None:
            self.p = xp.zeros(dual_shape, dtype=self.dtype)
            image_shape = dual_shape[: len(dual_shape) - len(reg.W.shape_out)] + tuple(reg.W.shape_in)
            self.adjoint_p = xp.zeros(image_shape, dtype=image_dtype)
        else:
            point = warm_start.point if isinstance(warm_start, DualState) else warm_start
            if not backend.is_array(point):
                raise TypeError(f"{type(reg).__name__}.prox: warm_start must be a DualState or a dual array, "
                                f"got {type(point).__name__}")
            if tuple(point.shape) != dual_shape:
                raise ValueError(
                    f"{type(reg).__name__}.prox: warm_start has shape {tuple(point.shape)}, expected {dual_shape}"
                )
            if keep_momentum and isinstance(warm_start, DualState):  # continue the run as it stood
                self._continue(warm_start)
                return
            backend.check_finite(point, f"{type(reg).__name__}.prox: warm_start")
            self.p = reg._project_dual(point.astype(self.dtype, copy=False), ball.weights)
            self.adjoint_p = self.W_adjoint(self.p)
        self.q, self.adjoint_q = self.p, self.adjoint_p

    def _continue(self, state: DualState) -> None:
        """Take over a budgeted run's iterates (copied: :meth:`step` updates its buffers in place) and momentum."""
        self.p = state.point.astype(self.dtype, copy=True)
        self.adjoint_p, self.t = state.adjoint_point, state.t
        if state.extrapolated is state.point:
            self.q, self.adjoint_q = self.p, self.adjoint_p
        else:
            self.q = state.extrapolated.astype(self.dtype, copy=True)
            self.adjoint_q = state.adjoint_extrapolated

    def _primal(self, adjoint: Array) -> Array:
        r""":math:`P_C(v - \tau W^H p)` from :math:`W^H p`; for a real ``v`` and a complex ``W``, the prox over
        real images, whose adjoint is :math:`\mathrm{Re}(W^H p)`."""
        if adjoint.dtype.kind == "c" and self.v.dtype.kind == "f":
            adjoint = adjoint.real
        return project(self.v - self.tau * adjoint, self.bounds)

    def primal(self) -> Array:
        r""":math:`x(p) = P_C(v - \tau W^H p)` at the current dual point."""
        return self._primal(self.adjoint_p)

    def state(self) -> DualState:
        return DualState(self.p, self.q, self.t, self.adjoint_p, self.adjoint_q)

    def step(self) -> None:
        """One dual FISTA iteration; ``p``, ``q`` and the new point share two buffers.

        The elementwise work on the dual runs on blocks of its rows
        (:func:`adareg.threads.blockwise`): each block is summed, projected and
        differenced while it is in cache, on every core.
        """
        xp, p, q = self.xp, self.p, self.q
        # the step scales the image, not the C channels of its response
        response = self.W(self.step_size * self._primal(self.adjoint_q))
        p_next = xp.empty(q.shape, dtype=self.dtype)
        differenced = q is not p
        # t and beta: one per image of the batch (0-d for one image), on the device
        t = xp.asarray(self.t, dtype=xp.float64)
        t_next = 0.5 * (1.0 + xp.sqrt(1.0 + 4.0 * t * t))
        beta = xp.broadcast_to((t - 1.0) / t_next, tuple(p.shape[: self.batch_ndim]))
        # for W^H q below: scaled now, as p's buffer is reused (and W^H may return its argument)
        adjoint_p_scaled = backend.per_image(beta, self.adjoint_p) * self.adjoint_p
        image_axes = tuple(range(self.batch_ndim, p.ndim))

        def new_point(block: slice | None) -> Any:
            """p_next = P(q + response) on rows ``block``; when q is not p, there q - p_next and p - p_next,
            and their inner product per image (q is spent, and holds the products)."""
            part = row_part(block)
            xp.add(response[part], q[part], out=p_next[part])
            self.project_dual(p_next, block)
            if not differenced:
                return 0.0
            q_part, p_part = q[part], p[part]
            q_part -= p_next[part]
            p_part -= p_next[part]
            if q_part.dtype.kind == "c":
                xp.conj(q_part, out=q_part)
            q_part *= p_part
            return xp.real(xp.sum(q_part, axis=image_axes))

        # adaptive restart (O'Donoghue & Candes), image by image: drop the momentum where it points uphill,
        # Re <q - p_next, p_next - p> > 0; when q is p that is -||p_next - p||^2 <= 0: no restart
        inner = sum(self.dual_blocks(new_point, q))
        restart = xp.asarray(inner < 0) if differenced else xp.zeros(beta.shape, dtype=bool)
        # no host read: a restarted image takes beta = 0 (its q is p_next), the others their momentum
        t_next, beta = xp.where(restart, 1.0, t_next), xp.where(restart, 0.0, beta)
        response = None  # spent: freed before W^H allocates its temporaries

        def momentum(block: slice | None) -> None:
            """q = p_next + beta (p_next - p) on rows ``block``, in the buffer of the old p."""
            part = row_part(block)
            p_part = p[part]
            if not differenced:
                p_part -= p_next[part]
            p_part *= backend.per_image(-beta, p_part)
            p_part += p_next[part]

        self.dual_blocks(momentum, p)
        self.t = t_next
        # the spent buffers go before W^H allocates its temporaries (the peak memory of a step)
        self.p, self.q = p_next, p
        p = None
        adjoint_next = self.W_adjoint(p_next)
        # W^H q = (1 + beta) W^H p_next - beta W^H p, with beta = 0 for a restarted image
        adjoint_p_scaled *= backend.per_image(xp.where(restart, 0.0, 1.0), adjoint_p_scaled)
        self.adjoint_q = backend.per_image(1.0 + beta, adjoint_next) * adjoint_next - adjoint_p_scaled
        self.adjoint_p = adjoint_next
