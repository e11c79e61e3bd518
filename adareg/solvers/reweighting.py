"""The reweighting (majorise-minimise) loop of the spatially adaptive regularizers."""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

from .. import backend, checks
from ..backend import Array
from ..functionals import LeastSquares, check_weights, is_denoising
from ..operators.base import LinearOperator, batch_shape, check_measurements_of, check_start_shape, zero_image
from ..regularizers.analysis import DualState, WeightedL1Analysis
from ..regularizers.base import PROX_DEFAULTS, Bounds, Reweighted
from .chunks import batch_chunks, joined
from .fista import next_momentum
from .loop import Report, iterate
from .result import Result
from ..stopping import Defaults, Progress, StoppingRule, check_callback, check_finite_iterate, relative_change

#: Reweighting steps and fixed-point residual at which :func:`~adareg.solvers.reweighting` stops by default
#: (for denoising the residual is :data:`DENOISING_TOL`).  For a general ``H`` the residual
#: is about the distance to the fixed point where ``lam`` holds the directions ``H`` barely
#: sees (not for an ill-conditioned ``H`` with a small ``lam``: docs/roadmap.md), and the PSNR
#: moves little past this one (measured in docs/results.md).
DEFAULTS = Defaults(max_iter=100, tol=3e-3)
#: The default fixed-point residual for denoising; past it the PSNR moves by thousandths of
#: a dB while the steps go on (measured in docs/learned.md).
DENOISING_TOL = 1.5e-3
#: Accelerated proximal-gradient iterations per reweighting step for a general ``H``
#: (see :func:`~adareg.solvers.reweighting`).
GENERAL_STEP_ITERATIONS = 10
#: Dual iterations of each prox in a general-``H`` step, the first budget (see :func:`~adareg.solvers.reweighting`).
GENERAL_PROX_ITERATIONS = 2
#: For a general ``H``, the largest mean rate of decrease of the residual per step at which
#: the budget stays (see :func:`~adareg.solvers.reweighting`).
GENERAL_SLOWEST_RATE = 0.8
#: The most a step's budget grows to, this many times the first (see :func:`~adareg.solvers.reweighting`).
BUDGET_GROWTH_LIMIT = 64
#: Steps at one budget over which :func:`~adareg.solvers.reweighting` measures the residual's rate of decrease.
RATE_WINDOW = 3
#: For denoising, the budget grows where the residual's rate would bring it to ``tol`` in more than
#: the steps left divided by this, so that the steps left can also measure the larger budgets' rates
#: (see :func:`~adareg.solvers.reweighting`).
STEPS_LEFT_MARGIN = 2.0
#: For a general ``H``, a residual below ``tol`` stops the loop only where the step before
#: it was below this many times ``tol`` (see :func:`~adareg.solvers.reweighting`).
GENERAL_CONFIRMATION = 3.0


def reweighting(H: LinearOperator, y: Array, reg: Reweighted, *, lam: float, x0: Array | None = None,
                weights: Array | None = None, bounds: Bounds | None = None, max_iter: int | None = None,
                tol: float | None = None, max_time: float | None = None, inner_tol: float | None = None,
                inner_max_iter: int | None = None,
                callback: Callable[[int, Array], Any] | None = None, progress: bool = False) -> Result:
    r"""Fixed-point iteration of a spatially adaptive regularizer (the paper's eq. 4).

    .. math::

        x_{k+1} = \arg\min_{x \in C} \tfrac12 \|H x - y\|_w^2
                  + \lambda \sum_c \langle \Lambda_c(x_k, \sigma), |W_c x| \rangle

    Every step is convex and its absolute value is not smoothed.  The steps are
    budgets of one iteration whose weights change from step to step, so that the
    iterates of the inner solver and any momentum carry over:

    * for denoising (``H`` the identity, no data weights) each step is the prox of
      the weighted :math:`\ell_1` term, ``reg.step_iterations`` iterations of dual
      FISTA (the model's class sets them) warm-started from the previous
      step's dual point and momentum.  Where the iteration converges, the dual
      converges to a point that projected gradient steps for the limit weights
      :math:`\Lambda(x)` leave unchanged, i.e. a minimiser, and
      :math:`x = y - \lambda W^T p` is the exact solution of its own step.  With
      ``inner_tol`` set, every step is certified instead by its duality gap, to
      ``max(min(inner_tol, 0.1 * residual), 0.1 * tol)``: a step that reaches its cap
      uncertified doubles the cap of the next (up to :data:`~adareg.solvers.reweighting.BUDGET_GROWTH_LIMIT` times
      the first), and the loop stops on its residual only after a certified step.

      A budgeted step is inexact and the next steps inherit its error; once that
      error is what moves the iterate, the residual stops falling (a floor above a
      tight ``tol`` rather than a fixed point) or falls too slowly to reach ``tol``.
      So the budget grows: the next steps get twice the iterations, up to
      :data:`~adareg.solvers.reweighting.BUDGET_GROWTH_LIMIT` times the first budget, after every step whose
      residual :math:`r_k` is no smaller than those of all earlier steps at its
      budget, and after every step at which the residual's mean rate over the last
      :data:`~adareg.solvers.reweighting.RATE_WINDOW` steps at its budget, :math:`q = (r_k / r_{k-3})^{1/3}`,
      would not take it to ``tol`` within a share of the steps left,
      :math:`\log(\mathrm{tol} / r_k) / \log q > (K - k) / m` (``K`` = ``max_iter``,
      :math:`m` = :data:`~adareg.solvers.reweighting.STEPS_LEFT_MARGIN`): each larger budget needs
      :data:`~adareg.solvers.reweighting.RATE_WINDOW` + 1 steps to show its own rate, so a budget grown only when
      the steps left just suffice comes too late near the cap.
      Only steps of one budget are compared, as a longer step moves the iterate
      further.  While the residual falls fast enough the steps cost what the first
      did; near a tight ``tol`` they approach exact steps, whose reweighting
      converges linearly;
    * otherwise each step is :data:`~adareg.solvers.reweighting.GENERAL_STEP_ITERATIONS` iterations of FISTA
      on the data term (one ``H`` and ``H^H`` each, adaptive restart as in
      :func:`~adareg.solvers.fista`), each prox a budget of warm-started dual FISTA
      iterations of the step's weighted :math:`\ell_1` term, as in denoising; the
      primal momentum and the dual iterates carry over from step to step, so that
      the whole reweighting is one accelerated run whose weights are refreshed
      every :data:`~adareg.solvers.reweighting.GENERAL_STEP_ITERATIONS` iterations.  At a fixed point of the
      whole iteration the weights are those of ``x``, the prox is exact and ``x``
      solves its own step.  The prox budget starts at
      :data:`~adareg.solvers.reweighting.GENERAL_PROX_ITERATIONS` dual iterations and doubles, up to
      :data:`~adareg.solvers.reweighting.BUDGET_GROWTH_LIMIT` times, after a step whose residual stalls (as
      above) or falls by less than a factor :data:`~adareg.solvers.reweighting.GENERAL_SLOWEST_RATE` a step
      on average over the last :data:`~adareg.solvers.reweighting.RATE_WINDOW` steps at its budget, but at
      most once per halving of the residual: the prox's accuracy follows the
      outer progress, as in :func:`~adareg.solvers.fista`, so that an ill-posed
      problem whose iterate moves slowly for other reasons (e.g. a small ``lam``
      on CT) does not buy ever longer proxes.  The exception is a floor: where
      none of the last :data:`~adareg.solvers.reweighting.RATE_WINDOW` steps at a budget lowered the residual
      below that budget's earlier steps, it doubles regardless, since only more
      exact proxes lift such a floor (e.g. a large ``lam`` with a small
      ``sigma``, whose prox is hard).  (PD3O,
      :func:`~adareg.solvers.primal_dual.primal_dual`, with the same refreshes is
      slower to the same distance from the fixed point: docs/results.md.)

    The loop stops when the fixed-point residual
    :math:`r_k = \|x_{k+1} - x_k\| / \|x_k\|` (of a batch: the largest of its images')
    falls below ``tol`` (its
    :class:`~adareg.solvers.RelativeChange` rule; by default :data:`~adareg.solvers.reweighting.DENOISING_TOL`
    for denoising and ``DEFAULTS.tol`` otherwise).  For a general ``H`` the rule
    sees :math:`\max(r_k, r_{k-1} / c)`, :math:`c` = :data:`~adareg.solvers.reweighting.GENERAL_CONFIRMATION`:
    while the residual falls steadily it measures the distance to the fixed
    point, but on ill-conditioned data terms (e.g. widely spread data weights)
    it can drop several-fold in a step and rise again after it, far from the
    fixed point, so a residual below ``tol`` counts only after one below
    :math:`c \cdot` ``tol`` (docs/roadmap.md, "Stopping on widely spread data
    weights"), the first step's too: a run from a given ``x0`` takes two steps at
    least.  On the host, a batch steps in chunks of images that each stop on
    their own residual (and budget their own steps), so that an image of a chunk of its
    own comes out as it would alone, at the cost in time of one call; images whose duals
    are smaller than :data:`adareg.solvers.chunks.CHUNK_BYTES` (e.g. below 128 x 128 in float32
    with 32 filters) share a chunk, which stops on its largest residual.

    Parameters
    ----------
    H, y
        Forward operator and measurements.
    reg
        The adaptive regularizer at its noise level (``adaptive.at(sigma)``), or any
        object that declares ``minimisation = "reweighting"`` with the members of
        :class:`~adareg.regularizers.Reweighted`.
    lam
        Regularisation weight.
    x0
        First estimate (default: ``y`` for denoising, zeros otherwise, whose
        first weights are those of a flat image).
    weights
        Optional data weights (the ``w`` of the data term).
    bounds
        Box constraint on ``x``.
    max_iter, tol, max_time
        Reweighting steps, fixed-point tolerance (default :data:`~adareg.solvers.reweighting.DEFAULTS`, and
        :data:`~adareg.solvers.reweighting.DENOISING_TOL` for denoising) and seconds (checked after each step).
    inner_tol
        Denoising only: certify every step to this tolerance (see above).
    inner_max_iter
        Iterations per step: dual FISTA iterations for denoising (default
        ``reg.step_iterations``, the first budget, which grows as above; with
        ``inner_tol`` the most a certified step may take, by default the prox's own
        cap, ``PROX_DEFAULTS.max_iter``: a step stopped by it is not certified), dual
        iterations per prox otherwise (default :data:`~adareg.solvers.reweighting.GENERAL_PROX_ITERATIONS`), the
        first budget of each prox.
    callback
        ``callback(k, x_k)`` after each outer step; returning ``True`` stops.
    progress
        Show a progress bar over the outer steps.

    Returns
    -------
    Result
        History columns ``iteration, residual, inner_iterations`` (the dual FISTA
        iterations of the step, over all its proxes) and ``seconds``.
    """
    declared = getattr(reg, "minimisation", None)
    declares = isinstance(declared, str) and declared == "reweighting"
    if declares and not isinstance(reg, Reweighted):
        raise TypeError(f"reweighting: {type(reg).__name__} declares minimisation 'reweighting' but lacks what the "
                        "loop needs (adareg.regularizers.Reweighted): step(x), step_iterations and channels")
    if not declares:
        hint = " at its noise level: reg.at(sigma)" if callable(getattr(reg, "at", None)) else ""
        raise TypeError(f"reweighting: reg must be an adaptive regularizer{hint}, got {type(reg).__name__}")
    checks.count(reg.step_iterations, f"reweighting: reg.step_iterations ({type(reg).__name__}'s)")
    checks.count(reg.channels, f"reweighting: reg.channels ({type(reg).__name__}'s)")
    check_measurements_of(H, y, "reweighting", inspect=False)
    weights = check_weights(weights, y, "reweighting: weights")
    if x0 is not None:
        backend.check_iterate(x0, "reweighting: x0")
        check_start_shape(x0, H, y, "reweighting")
    settings = _reweighting_settings(H, reg, weights, lam=lam, max_iter=max_iter, tol=tol, max_time=max_time,
                                     inner_tol=inner_tol, inner_max_iter=inner_max_iter, callback=callback,
                                     progress=progress)
    denoising, tol = settings.denoising, settings.tol
    if x0 is None:
        x0 = y if denoising else zero_image(H, y)
    if denoising:
        deadline = None if settings.max_time is None else time.perf_counter() + settings.max_time
        step = _dual_fista_steps(y, reg, settings.lam, bounds, tol, settings.inner_tol, deadline, settings.new_budget)
    else:
        step = _accelerated_steps(H, y, weights, reg, settings.lam, x0, bounds, tol, settings.new_budget)
    batch_ndim = y.ndim - len(H.shape_out)
    x = x0
    # no residual before the first step's to confirm it: a warm start (x0 given) stops after two steps at least
    residual, previous, certified = math.inf, math.inf, True

    def reweight(k: int, elapsed: Callable[[], float]) -> Report:
        nonlocal x, residual, previous, certified
        x_next, inner, certified = step(x, residual)
        residual = relative_change(x_next, x, batch_ndim)
        check_finite_iterate(residual, x_next, "reweighting")
        x = x_next
        seconds = elapsed()
        measure = residual if denoising else max(residual, previous / GENERAL_CONFIRMATION)
        if not certified:  # an uncertified step (inner_tol) is no evidence of a fixed point
            measure = math.inf
        previous = residual
        return Report(dict(iteration=k, residual=residual, inner_iterations=inner, seconds=seconds),
                      {"residual": f"{residual:.2e} (tol {tol:g})"},
                      Progress(iteration=k, seconds=seconds, relative_change=measure))

    # no total on the progress bar: the steps end on the residual
    result = iterate(reweight, lambda: x, stop=settings.stop, callback=settings.callback,
                     columns=("iteration", "residual", "inner_iterations", "seconds"), desc="reweighting",
                     unit="step", progress=settings.progress, counted="reweighting steps")
    if not certified:
        result.message += ("; its last step's prox was not certified to inner_tol before its dual iterations or the "
                           "time ran out (a step tolerance near or below sqrt(eps), 3e-4 in float32, may not be "
                           "certifiable: precision='float64')")
    return result


@dataclass(frozen=True)
class _Settings:
    """The settings of a :func:`reweighting` run, checked and resolved from its arguments.

    Attributes
    ----------
    denoising
        Whether the data term is ``1/2 ||x - y||^2`` (the steps are proxes).
    lam, tol, inner_tol
        The regularisation weight, the fixed-point tolerance (its default resolved) and ``inner_tol``.
    first_budget
        The dual iterations per prox of the first step (``inner_max_iter``, its default resolved).
    max_iter
        The step cap the budgets plan for (``max_iter``, or ``DEFAULTS.max_iter``).
    max_time
        ``max_time``, checked: a certified step's prox stops at it too.
    stop, callback, progress
        The stopping rule, the checked callback and whether to show a progress bar.
    """

    denoising: bool
    lam: float
    tol: float
    inner_tol: float | None
    first_budget: int
    max_iter: int
    max_time: float | None
    stop: StoppingRule
    callback: Callable[[int, Array], Any] | None
    progress: bool

    def new_budget(self) -> _Budget:
        """A prox budget for one chunk's run: for a general ``H`` one whose mean rate per step must stay below
        :data:`GENERAL_SLOWEST_RATE`, for denoising one that must reach ``tol`` within the steps left."""
        if self.denoising:
            return _Budget(self.first_budget, self.tol, self.max_iter)
        return _Budget(self.first_budget, self.tol, self.max_iter, slowest_rate=GENERAL_SLOWEST_RATE)


def _reweighting_settings(H: LinearOperator, reg: Reweighted, weights: Array | None, *, lam: Any, max_iter: Any,
                          tol: Any, max_time: Any, inner_tol: Any, inner_max_iter: Any, callback: Any,
                          progress: Any) -> _Settings:
    """:func:`reweighting`'s arguments but the data, start and box, checked in this order, with their defaults:
    ``tol`` :data:`DENOISING_TOL` for denoising, else ``DEFAULTS.tol``; ``inner_max_iter`` for a general ``H``
    :data:`GENERAL_PROX_ITERATIONS`, for denoising ``reg.step_iterations`` (with ``inner_tol``:
    ``PROX_DEFAULTS.max_iter``)."""
    if inner_tol is not None:
        inner_tol = checks.non_negative(inner_tol, "reweighting: inner_tol")
    denoising = is_denoising(H, weights)
    if tol is None:
        tol = DENOISING_TOL if denoising else DEFAULTS.tol
    tol = checks.non_negative(tol, "reweighting: tol")
    if max_iter is not None:
        max_iter = checks.count(max_iter, "reweighting: max_iter")
    stop = DEFAULTS.rule(max_iter, tol, max_time, who="reweighting")
    progress = checks.flag(progress, "reweighting: progress")
    callback = check_callback(callback, "reweighting: callback")
    if inner_tol is not None and not denoising:
        raise ValueError("reweighting: inner_tol (certified steps) applies to denoising only; for a general H "
                         "the steps are budgeted (inner_max_iter)")
    if inner_max_iter is None and not denoising:
        inner_max_iter = GENERAL_PROX_ITERATIONS
    elif inner_max_iter is None:  # a budget; a certified step takes what its gap needs, as a prox does
        inner_max_iter = reg.step_iterations if inner_tol is None else PROX_DEFAULTS.max_iter
    # a step of no iterations would leave x where it is: a zero residual, "converged" at the start
    inner_max_iter = checks.count(inner_max_iter, "reweighting: inner_max_iter")
    lam = checks.positive(lam, "reweighting: lam")
    return _Settings(denoising=denoising, lam=lam, tol=tol, inner_tol=inner_tol, first_budget=inner_max_iter,
                     max_iter=DEFAULTS.max_iter if max_iter is None else max_iter,
                     max_time=None if max_time is None else float(max_time), stop=stop, callback=callback,
                     progress=progress)


#: A reweighting step: ``(x_k, residual) -> (x_{k+1}, dual iterations, certified)``, ``certified`` false where a
#: step asked to certify its prox (``inner_tol``) reached its cap instead.
Step = Callable[[Array, float], tuple[Array, int, bool]]


class _Budget:
    """Dual iterations per prox, doubled where the residual stalls or falls too slowly (see :func:`reweighting`).

    Too slowly: at a mean rate per step above ``slowest_rate`` where one is given, else at
    a rate that would not reach ``tol`` within the steps left to ``max_iter`` divided by
    :data:`STEPS_LEFT_MARGIN`.  With a
    ``slowest_rate`` the budget doubles at most once per halving of the residual,
    or where the residual has stopped falling (:meth:`_floored`).
    """

    def __init__(self, first: int, tol: float, max_iter: int, slowest_rate: float | None = None):
        self.first, self.iterations, self.tol, self.max_iter = first, first, tol, max_iter
        self.slowest_rate = slowest_rate
        self.steps = 0  # steps taken
        self.residuals: list[float] = []  # of the steps at the current budget
        self.grown_at = math.inf  # the residual of the step after which the budget last grew

    def after(self, residual: float) -> None:
        """Set the budget of the next step from the residual of the one just taken."""
        self.steps += 1
        stalled = bool(self.residuals) and residual >= min(self.residuals)
        self.residuals.append(residual)
        if not (stalled or self._too_slow(residual)):
            return
        if self.slowest_rate is not None and residual > 0.5 * self.grown_at and not self._floored():
            return  # at most once per halving of the residual, unless it has stopped falling
        self.grow()
        self.grown_at = residual

    def grow(self) -> None:
        """Double the budget, up to :data:`BUDGET_GROWTH_LIMIT` times the first; its rate is measured anew."""
        self.iterations = min(2 * self.iterations, BUDGET_GROWTH_LIMIT * self.first)
        self.residuals = []

    def _floored(self) -> bool:
        """Whether none of the last :data:`RATE_WINDOW` steps at this budget set a new lowest residual."""
        earlier, last = self.residuals[:-RATE_WINDOW], self.residuals[-RATE_WINDOW:]
        return bool(earlier) and min(last) >= min(earlier)

    def _too_slow(self, residual: float) -> bool:
        if len(self.residuals) <= RATE_WINDOW or residual <= self.tol:
            return False
        rate = (residual / self.residuals[-1 - RATE_WINDOW]) ** (1.0 / RATE_WINDOW)
        if self.slowest_rate is not None:
            return rate > self.slowest_rate
        if rate >= 1 or self.tol <= 0:  # tol 0 is never reached: every rate is too slow
            return True
        return math.log(self.tol / residual) / math.log(rate) > (self.max_iter - self.steps) / STEPS_LEFT_MARGIN


def _dual_fista_steps(y: Array, reg: Reweighted, lam: float, bounds: Bounds | None, tol: float,
                      inner_tol: float | None, deadline: float | None, new_budget: Callable[[], _Budget]) -> Step:
    """Denoising steps (a :data:`Step`), dual FISTA warm-started; a certified step's prox stops at the
    ``deadline`` (of ``time.perf_counter``), if any, as well.

    The images of a batch are independent problems, so on the host a batch steps in
    chunks of a few images (:func:`adareg.solvers.chunks.batch_chunks`), whose duals stay in
    cache through a dual iteration where a large batch's would stream through memory at
    every pass.  Each chunk is a reweighting of its own (its budget, its residual, its
    stop at ``tol``), so that an image of one-image chunks comes out as it would alone
    (docs/results.md, "Speed against BM3D"); the steps go on until the last chunk stops.
    """
    images = y.reshape(-1, *y.shape[-2:])  # the images of any batch axes
    chunks = batch_chunks(len(images), reg.channels * images[0].nbytes, like=y)
    if len(chunks) == 1:  # y as it is, batch axes and all
        return _whole(_DualFistaRun(reg, lam, bounds, tol, inner_tol, deadline, y, new_budget()))
    return _in_chunks([_DualFistaRun(reg, lam, bounds, tol, inner_tol, deadline, images[chunk], new_budget())
                       for chunk in chunks], chunks, images.shape[1:])


def _accelerated_steps(H: LinearOperator, y: Array, weights: Array | None, reg: Reweighted, lam: float,
                       x0: Array, bounds: Bounds | None, tol: float, new_budget: Callable[[], _Budget]) -> Step:
    """General-``H`` steps: FISTA on the data term, its proxes budgeted dual FISTA warm-started, weights refreshed.

    As in denoising (:func:`_dual_fista_steps`), a batch steps on the host in chunks of a
    few images, each a reweighting of its own (its data term's step size, momentum,
    duals, budget, and stop at ``tol`` confirmed as the loop's, :data:`GENERAL_CONFIRMATION`),
    so that an image of a one-image chunk comes out as it would alone; the steps go on
    until the last chunk stops.
    """
    count = math.prod(batch_shape(y, H.shape_out))
    chunks = batch_chunks(count, reg.channels * (x0.nbytes // count), like=y)
    data = LeastSquares(H, y, weights)
    if len(chunks) == 1:  # y as it is, batch axes and all
        return _whole(_AcceleratedRun(reg, lam, bounds, tol, data, x0, new_budget()))
    starts = x0.reshape(count, *H.shape_in)
    return _in_chunks([_AcceleratedRun(reg, lam, bounds, tol, data.images(chunk), starts[chunk], new_budget())
                       for chunk in chunks], chunks, H.shape_in)


def _whole(run: _ChunkRun) -> Step:
    """The steps of a batch that is one chunk, ``run``."""

    def step(x: Array, residual: float) -> tuple[Array, int, bool]:
        return (*run.step(x, residual), run.certified)

    return step


def _in_chunks(runs: list[_ChunkRun], chunks: list[slice], shape_in: tuple[int, ...]) -> Step:
    """The steps of a batch whose images ``chunks`` (consecutive, over its flattened batch axes) each run their own
    reweighting ``runs``: a chunk that has stopped keeps its images as they stand (a zero change from then on) and
    frees its dual state."""

    def step(x: Array, residual: float) -> tuple[Array, int, bool]:
        parts, inner, x_images = [], 0, x.reshape(-1, *shape_in)
        for run, chunk in zip(runs, chunks):
            x_part = x_images[chunk]
            if run.stopped:
                run.states.clear()
                parts.append(x_part)
                continue
            x_next, iterations = run.step(x_part, run.residual)
            run.record(relative_change(x_next, x_part, batch_ndim=1))
            parts.append(x_next)
            inner = max(inner, iterations)
        return joined(parts, x.shape), inner, all(run.certified for run in runs)

    return step


class _ChunkRun(ABC):
    """One chunk's reweighting, stepped by :func:`_in_chunks` (or, as the whole batch, by the loop itself): the
    regularizer at its weight and box, the prox budget, the last prox's dual state (popped into the next prox call
    and not kept, so that its buffers are freed once the call has copied them), the last step's residual,
    whether that step was certified where asked to be (:data:`Step`), and whether the chunk has stopped at ``tol``."""

    def __init__(self, reg: Reweighted, lam: float, bounds: Bounds | None, tol: float, budget: _Budget):
        self.reg, self.lam, self.bounds, self.tol, self.budget = reg, lam, bounds, tol, budget
        self.states: list[DualState] = []
        self.residual, self.stopped, self.certified = math.inf, False, True  # no residual before the first step

    def problem(self, x: Array) -> WeightedL1Analysis:
        """The weighted-l1 problem of the step from ``x``, ``reg.step(x)``, refused unless it is one."""
        problem = self.reg.step(x)
        if not isinstance(problem, WeightedL1Analysis):
            raise TypeError(f"reweighting: {type(self.reg).__name__}.step(x) must return the WeightedL1Analysis of "
                            f"the step from x, got {type(problem).__name__}")
        return problem

    def record(self, residual: float) -> None:
        """Take a step's ``residual``: the chunk stops where it is at most ``tol`` after a certified step."""
        self.residual, self.stopped = residual, residual <= self.tol and self.certified

    @abstractmethod
    def step(self, x: Array, residual: float) -> tuple[Array, int]:
        """The step from ``x`` after a step of ``residual``: ``(x_next, dual iterations)``."""


class _DualFistaRun(_ChunkRun):
    """A chunk's denoising reweighting of its noisy images ``v``: each step one budgeted (or, with ``inner_tol``,
    certified) dual FISTA prox."""

    def __init__(self, reg: Reweighted, lam: float, bounds: Bounds | None, tol: float, inner_tol: float | None,
                 deadline: float | None, v: Array, budget: _Budget):
        super().__init__(reg, lam, bounds, tol, budget)
        self.inner_tol, self.deadline, self.v = inner_tol, deadline, v

    def step(self, x: Array, residual: float) -> tuple[Array, int]:
        if math.isfinite(residual):  # not the first step
            self.budget.after(residual)
        step_tol = None if self.inner_tol is None else max(min(self.inner_tol, 0.1 * residual), 0.1 * self.tol)
        # a certified step may take many dual iterations: it ends at the run's deadline too (a budgeted one is short)
        left = None if step_tol is None or self.deadline is None else max(self.deadline - time.perf_counter(), 1e-9)
        out = self.problem(x).prox(self.v, self.lam, bounds=self.bounds,
                                   warm_start=self.states.pop() if self.states else None, tol=step_tol,
                                   max_iter=self.budget.iterations, max_time=left)
        self.states.append(out.state)
        self.certified = step_tol is None or out.converged
        if not self.certified:  # it reached its cap: the next step gets twice the iterations
            self.budget.grow()
        return out.x, out.iterations


class _AcceleratedRun(_ChunkRun):
    """A chunk's general-``H`` reweighting: its data term and step size, and FISTA's extrapolated point and ``t``
    carried from step to step; it stops as the loop does, where a residual and the one before it over
    :data:`GENERAL_CONFIRMATION` are at most ``tol``."""

    def __init__(self, reg: Reweighted, lam: float, bounds: Bounds | None, tol: float, data: LeastSquares,
                 x0: Array, budget: _Budget):
        super().__init__(reg, lam, bounds, tol, budget)
        self.data, self.z, self.t = data, x0, 1.0
        self.L = checks.positive(data.lipschitz, "reweighting: the data term's Lipschitz constant")
        self.previous = math.inf  # as in the loop, nothing before the first step's residual confirms it

    def record(self, residual: float) -> None:
        self.stopped = max(residual, self.previous / GENERAL_CONFIRMATION) <= self.tol
        self.previous = self.residual = residual

    def step(self, x: Array, residual: float) -> tuple[Array, int]:
        if math.isfinite(residual):  # not the first step
            self.budget.after(residual)
        weighted = self.problem(x)
        inner, shape_in = 0, self.data.H.shape_in
        for _ in range(GENERAL_STEP_ITERATIONS):
            out = weighted.prox(self.z - self.data.grad(self.z) / self.L, self.lam / self.L, bounds=self.bounds,
                                warm_start=self.states.pop() if self.states else None, tol=None,
                                max_iter=self.budget.iterations)
            self.states.append(out.state)
            inner += out.iterations
            change = out.x - x
            self.t, beta = next_momentum(self.t, self.z, out.x, change, out.x.ndim - len(shape_in))  # t per image
            self.z = out.x + backend.per_image(beta, change) * change
            x = out.x
        return x, inner
