r"""L-BFGS for smooth objectives, with an optional box: the ridge models' solver.

A limited-memory quasi-Newton method (Nocedal, 1980) builds a model of the inverse
Hessian from the last ``memory`` steps and gradient changes; on the smooth ridge
objectives it reaches FISTA's accuracy in fewer iterations of the same operator
passes (figures on the results page).  A box is handled by the
projected quasi-Newton rule of Kim, Sra & Dhillon (2010): the variables held at a
bound by the gradient are fixed for the step, the quasi-Newton direction is taken on
the others, and the step is projected back onto the box.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from .. import backend, checks
from ..backend import Array
from ..functionals import SmoothFunctional
from ..regularizers.base import Bounds, check_bounds, project
from .result import History, Result
from ..stopping import Defaults, Progress, StoppingRule, check_callback, relative_change, verdict

#: Iterations and relative step length (see :func:`lbfgs`) at which L-BFGS stops by default.
DEFAULTS = Defaults(max_iter=500, tol=1e-5)
#: Sufficient-decrease constant of the Armijo rule.
ARMIJO = 1e-4
#: Halvings of the step before the safeguarded gradient step is taken instead.
MAX_HALVINGS = 6
#: Consecutive iterations whose quasi-Newton steps must all be short for the run to stop.
WINDOW = 3


def _binding(x: Array, g: Array, bounds: Bounds | None) -> Array | None:
    """The variables that the gradient pushes against their bound (``None`` without a box)."""
    if bounds is None:
        return None
    xp = backend.namespace(x)
    lower, upper = bounds
    held = xp.zeros(x.shape, dtype=bool)
    if lower is not None:
        held |= (x <= lower) & (g > 0)
    if upper is not None:
        held |= (x >= upper) & (g < 0)
    return held


def _direction(g: Array, pairs: deque, held: Array | None) -> Array:
    r"""``-B g`` by the two-loop recursion, :math:`B` the L-BFGS inverse-Hessian model, zero on ``held``."""
    # zero on held by a product, not a boolean-mask write (a host synchronisation on CuPy)
    q = g.copy() if held is None else g * ~held
    alphas = []
    for s, y, rho in reversed(pairs):
        alpha = rho * backend.real_inner(s, q)
        q -= alpha * y
        alphas.append(alpha)
    s, y, _ = pairs[-1]
    # the initial model gamma I (Nocedal & Wright, eq. 7.20)
    q *= backend.real_inner(s, y) / backend.real_inner(y, y)
    for (s, y, rho), alpha in zip(pairs, reversed(alphas)):
        q += (alpha - rho * backend.real_inner(y, q)) * s
    if held is not None:
        q *= ~held
    q *= -1
    return q


def _descent_direction(g: Array, pairs: deque, held: Array | None) -> Array | None:
    """The L-BFGS direction, or ``None`` without a model or where it does not descend (the memory is cleared)."""
    if not pairs:
        return None
    d = _direction(g, pairs, held)
    if backend.real_inner(g, d) < 0:
        return d
    pairs.clear()  # the model is stale
    return None


def _stalled(k: int, stationary: bool, safeguards: int) -> tuple[bool, str] | None:
    """The ends that no stopping rule measures: ``(converged, message)``, or ``None`` to go on."""
    if stationary:  # e.g. zero data: the gradient vanishes, or holds every pixel at its bound
        return True, f"stationary after {k} iterations (its projected gradient step is zero)"
    if safeguards == 2:  # two model steps in a row found no decrease: F is flat to rounding here
        return False, (f"stopped after {k} iterations: no decrease of the objective beyond its rounding "
                       "(the working precision's limit)")
    return None


def _line_search(evaluate: Callable[[Array], tuple[float, Array]], x: Array, value: float, g: Array, d: Array,
                 bounds: Bounds | None, rounding: float,
                 batch_ndim: int) -> tuple[tuple[Array, float, Array, float, int] | None, float]:
    """The first of ``P_C(x + 2^-j d)``, ``j < MAX_HALVINGS``, with sufficient decrease.

    Returns ``((x_next, F(x_next), grad F(x_next), 2^-j, evaluations of F), r)``, or ``(None, r)`` where
    none decreases :math:`F` enough, with ``r`` the relative length of the full step
    ``P_C(x + d) - x`` (the largest of a batch's images', ``batch_ndim`` leading axes).
    """
    fraction, relative = 1.0, math.inf
    for halvings in range(MAX_HALVINGS):
        x_next = project(x + fraction * d, bounds)
        if halvings == 0:  # the full quasi-Newton step: about x* - x near the minimiser
            relative = relative_change(x_next, x, batch_ndim)
        value_next, g_next = evaluate(x_next)
        if value_next <= value + ARMIJO * backend.real_inner(g, x_next - x) + rounding * abs(value):
            return (x_next, value_next, g_next, fraction, halvings + 1), relative
        fraction *= 0.5
    return None, relative


def lbfgs(smooth: SmoothFunctional, x0: Array, *, bounds: Bounds | None = None, memory: int = 8,
          stop: StoppingRule | None = None, batch_ndim: int = 0, callback: Callable[[int, Array], Any] | None = None,
          progress: bool = False) -> Result:
    r"""Minimise a smooth :math:`F(x) = g(K x)` over the box ``bounds`` by (projected) L-BFGS.

    Each iteration takes the L-BFGS direction :math:`d_k = -B_k \nabla F(x_k)`
    (zero on the variables the gradient holds at a bound), then the first of the
    steps :math:`x_{k+1} = P_C(x_k + 2^{-j} d_k)`, :math:`j = 0, 1, \dots`, with
    sufficient decrease

    .. math::

        F(x_{k+1}) \le F(x_k) + c \, \mathrm{Re} \langle \nabla F(x_k), x_{k+1} - x_k \rangle

    (:math:`c` = :data:`ARMIJO`, plus a few units of rounding of :math:`F`).  Where
    none of :data:`MAX_HALVINGS` halvings decreases :math:`F` enough (the model is
    poor, or rounding dominates near the minimiser), the projected gradient step
    :math:`P_C(x_k - \nabla F(x_k) / L)` is taken, which the Lipschitz constant
    :math:`L` makes a descent step, and the memory is cleared.

    The run stops on the relative length of the full quasi-Newton step,

    .. math:: r_k = \| P_C(x_k + d_k) - x_k \| \, / \, \|x_k\|,

    once it is at most ``tol`` in :data:`WINDOW` consecutive iterations.  With a good
    model :math:`r_k` estimates :math:`\|x^* - x_k\| / \|x_k\|` (Newton's step reaches
    the minimiser of a quadratic); with a poor one, or while the set of variables at
    a bound changes, single steps can be short far from the minimiser, which the
    window guards against.  Iterations that take a gradient step (the first, and the
    safeguards) report :math:`r_k = \infty`.  A point that its projected gradient
    step leaves unchanged is stationary: the run stops there, converged.  Two
    safeguards in a row mean that :math:`F` no longer decreases beyond its rounding:
    the run stops there, not converged.

    Parameters
    ----------
    smooth
        The objective ``g(K x)``: ``forward(x) = K x``, ``value_and_grad_of_forward(Kx, x)``
        returning ``(F(x), grad F(x))``, and ``lipschitz``, a Lipschitz constant of the
        gradient (see :class:`~adareg.functionals.SmoothSum`).
    x0
        Starting point (its shape, dtype and device are kept).
    bounds
        Box ``(lower, upper)`` (either may be ``None``), real images only.
    memory
        Number of step pairs kept for the inverse-Hessian model.
    stop
        Stopping rule; its :class:`~adareg.solvers.RelativeChange` reads the largest
        :math:`r_k` of the last :data:`WINDOW` iterations (default ``DEFAULTS.rule()``).
    batch_ndim
        Leading axes of ``x0`` that index independent problems (a batch, whose
        objective is the sum of theirs): :math:`r_k` is the largest of its images'.
    callback
        ``callback(k, x_k)`` after each iteration; returning ``True`` stops the run.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    Result
        With history columns ``iteration, objective, relative_change, evaluations, step,
        seconds``: :math:`F(x_{k})` after the step, :math:`r_k`, the evaluations of :math:`F` and its
        gradient in the iteration, and the accepted fraction :math:`2^{-j}` of the
        L-BFGS step (0 for a safeguarded gradient step).
    """
    stop = DEFAULTS.rule_or(stop, "lbfgs: stop")
    callback = check_callback(callback, "lbfgs: callback")
    bounds = check_bounds(bounds)
    memory = checks.count(memory, "lbfgs: memory")
    if not backend.is_array(x0):
        raise TypeError(f"lbfgs: x0 must be a NumPy or CuPy array, got {type(x0).__name__}")
    backend.check_dtype(x0, "lbfgs: x0")
    backend.check_finite(x0, "lbfgs: x0")
    batch_ndim = checks.batch_axes(batch_ndim, x0.ndim, "lbfgs: batch_ndim")
    L = float(smooth.lipschitz)
    if not (L > 0 and math.isfinite(L)):
        raise ValueError(f"lbfgs: the Lipschitz constant must be positive and finite, got {L}")
    x = project(x0, bounds)
    rounding = 10 * float(np.finfo(backend.real_dtype(x.dtype)).eps)

    def evaluate(x: Array) -> tuple[float, Array]:
        return smooth.value_and_grad_of_forward(smooth.forward(x), x)

    history = History("iteration", "objective", "relative_change", "evaluations", "step", "seconds")
    pairs: deque = deque(maxlen=memory)
    recent: deque = deque(maxlen=WINDOW)
    value, g = evaluate(x)
    gradient_step = project(x - g / L, bounds)
    start = time.perf_counter()
    bar = tqdm(disable=not progress, desc="L-BFGS", unit="it")
    k, safeguards = 0, 0
    while True:
        k += 1
        d = _descent_direction(g, pairs, _binding(x, g, bounds))
        accepted, relative = (None, math.inf) if d is None else _line_search(evaluate, x, value, g, d, bounds,
                                                                             rounding, batch_ndim)
        if accepted is not None:
            x_next, value_next, g_next, fraction, evaluations = accepted
        else:  # no model yet, or no sufficient decrease: the projected gradient step
            x_next, (value_next, g_next), fraction = gradient_step, evaluate(gradient_step), 0.0
            evaluations = 1 if d is None else MAX_HALVINGS + 1
            pairs.clear()
        safeguards = safeguards + 1 if fraction == 0.0 and k > 1 else 0
        s, y = x_next - x, g_next - g
        curvature = backend.real_inner(s, y)
        if curvature > 0:
            pairs.append((s, y, 1.0 / curvature))
        x, value, g = x_next, value_next, g_next
        gradient_step = project(x - g / L, bounds)
        stationary = not bool(backend.namespace(x).any(gradient_step != x))
        recent.append(relative)
        seconds = time.perf_counter() - start
        history.append(iteration=k, objective=value, relative_change=relative, evaluations=evaluations,
                       step=fraction, seconds=seconds)
        bar.update()
        bar.set_postfix(change=f"{relative:.2e}", refresh=False)
        settled = max(recent) if len(recent) == WINDOW else math.inf
        ended = _stalled(k, stationary, safeguards) or verdict(
            stop, Progress(iteration=k, relative_change=settled, seconds=seconds), callback, x)
        if ended is not None:
            converged, message = ended
            break
    bar.close()
    return Result(x=x, converged=converged, iterations=k, history=history, message=message)
