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
from collections import deque
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from .. import backend, checks
from ..backend import Array
from ..functionals import SmoothFunctional, lipschitz_constant
from ..regularizers.base import Bounds, check_bounds, project
from .chunks import joined, pieces, stopped_alone
from .loop import Report, iterate
from .result import Result
from ..stopping import Defaults, Progress, StoppingRule, check_callback, relative_change

#: Iterations and relative step length (see :func:`~adareg.solvers.lbfgs`) at which L-BFGS stops by default.
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


class _Step(NamedTuple):
    """An iteration's step, image by image: the point, its objectives and gradient, the accepted fraction of the
    L-BFGS step (0 for a gradient step), whether a fraction passed the line search, and the evaluations made."""

    x: Array
    values: Array
    g: Array
    fractions: Array
    taken: Array
    evaluations: int


def _inners(a: Array, b: Array, batch_ndim: int) -> Array:
    """The images' ``Re <a_i, b_i>`` in float64: the solver's scalars are kept in double precision."""
    return backend.real_inners(a, b, batch_ndim).astype(np.float64)


class _Model:
    r"""The L-BFGS inverse-Hessian models of a batch, one per image (the ``batch_ndim`` leading axes).

    The images' objectives are independent, so the batch's Hessian is block diagonal: each
    image keeps its own curvature pairs' weights :math:`\rho_i = 1 / \mathrm{Re}\langle s_i, y_i\rangle`
    (0 where a pair's curvature is not positive for that image) and its own initial scale
    :math:`\gamma_i = \langle s_i, y_i \rangle / \langle y_i, y_i \rangle` from its last pair of
    positive curvature (Nocedal & Wright, eq. 7.20), as if each ran its own L-BFGS.  A model
    shared by the batch (one :math:`\gamma`, pairs of the summed inner products) can make one
    image's steps short far from its minimiser, and so stop it early.  An image without a
    pair of its own takes the gradient step :math:`-\nabla F_i / L`.
    """

    def __init__(self, memory: int, batch_ndim: int, lipschitz: float):
        self.pairs: deque = deque(maxlen=memory)  # (s, y, rho), rho one value per image
        self.batch_ndim, self.lipschitz = batch_ndim, lipschitz
        self.gamma: Array | None = None

    def add(self, s: Array, y: Array) -> None:
        r"""Keep the pair ``(s, y)`` for the images whose curvature :math:`\mathrm{Re}\langle s_i, y_i \rangle`
        is positive."""
        xp = backend.namespace(s)
        curvature = self._inners(s, y)
        positive = curvature > 0
        if not bool(xp.any(positive)):
            return
        safe = xp.where(positive, curvature, 1.0)
        scale = safe / xp.where(positive, self._inners(y, y), 1.0)
        self.gamma = xp.where(positive, scale, 1.0 / self.lipschitz if self.gamma is None else self.gamma)
        self.pairs.append((s, y, xp.where(positive, 1.0 / safe, 0.0)))

    def clear(self) -> None:
        self.pairs.clear()
        self.gamma = None

    def direction(self, g: Array, held: Array | None) -> Array | None:
        """The L-BFGS direction ``-B g`` (zero on ``held``), or ``None`` without a model or where it descends for
        no image (the memory is cleared); an image for which it does not descend forgets its pairs and takes
        ``-g / L`` there."""
        if not self.pairs:
            return None
        d = self._two_loop(g, held)
        xp = backend.namespace(g)
        descends = self._inners(g, d) < 0
        if bool(xp.all(descends)):
            return d
        self.forget(~descends)  # the model is stale there
        if not self.pairs:
            return None
        gradient = -g / self.lipschitz if held is None else (-g / self.lipschitz) * ~held
        return xp.where(backend.per_image(descends, g).astype(bool), d, gradient)

    def forget(self, images: Array) -> None:
        """Drop the pairs of ``images`` (a mask over the batch), which then take gradient steps; all of them: clear."""
        xp = backend.namespace(images)
        if bool(xp.all(images)):
            self.clear()
            return
        kept = ~images
        self.pairs = deque(((s, y, rho * kept) for s, y, rho in self.pairs), maxlen=self.pairs.maxlen)
        self.gamma = xp.where(kept, self.gamma, 1.0 / self.lipschitz)

    def _inners(self, a: Array, b: Array) -> Array:
        return _inners(a, b, self.batch_ndim)

    def _two_loop(self, g: Array, held: Array | None) -> Array:
        r"""``-B g`` by the two-loop recursion, image by image, zero on ``held``."""
        # zero on held by a product, not a boolean-mask write (a host synchronisation on CuPy)
        q = g.copy() if held is None else g * ~held
        alphas = []
        for s, y, rho in reversed(self.pairs):
            alpha = rho * self._inners(s, q)
            q -= backend.per_image(alpha, q) * y
            alphas.append(alpha)
        q *= backend.per_image(self.gamma, q)
        for (s, y, rho), alpha in zip(self.pairs, reversed(alphas)):
            q += backend.per_image(alpha - rho * self._inners(y, q), q) * s
        if held is not None:
            q *= ~held
        q *= -1
        return q


def _stalled(k: int, stationary: bool, safeguards: int) -> tuple[bool, str] | None:
    """The ends that no stopping rule measures: ``(converged, message)``, or ``None`` to go on."""
    if stationary:  # e.g. zero data: the gradient vanishes, or holds every pixel at its bound
        return True, f"stationary after {k} iterations (its projected gradient step is zero)"
    if safeguards == 2:  # two model steps in a row found no decrease: F is flat to rounding here
        return False, (f"stopped after {k} iterations: no decrease of the objective beyond its rounding "
                       "(the working precision's limit, or a gradient that does not match the objective's values)")
    return None


def _line_search(evaluate: Callable[[Array], tuple[Array, Array]], x: Array, values: Array, g: Array, d: Array,
                 bounds: Bounds | None, rounding: float, batch_ndim: int) -> tuple[_Step, float]:
    """For each image, the first of ``P_C(x + 2^-j d)``, ``j < MAX_HALVINGS``, that decreases its objective enough.

    Returns the step (``taken`` false for an image where none decreases its objective enough: its
    entries are then those of the full step, for the caller to replace) and ``r``, the relative length of the full step
    ``P_C(x + d) - x`` (the largest of a batch's images', ``batch_ndim`` leading axes).
    """
    xp = backend.namespace(x)
    fraction, relative, step = 1.0, math.inf, None
    for halvings in range(MAX_HALVINGS):
        x_next = project(x + fraction * d, bounds)
        if halvings == 0:  # the full quasi-Newton step: about x* - x near the minimiser
            relative = relative_change(x_next, x, batch_ndim)
        values_next, g_next = evaluate(x_next)
        decrease = _inners(g, x_next - x, batch_ndim)
        enough = values_next <= values + ARMIJO * decrease + rounding * xp.abs(values)
        if step is None:
            step = _Step(x_next, values_next, g_next, xp.where(enough, fraction, 0.0), enough, 1)
        else:  # the images that pass now take this point; those that passed before keep theirs
            new = enough & ~step.taken
            keep = backend.per_image(new, x).astype(bool)
            step = _Step(xp.where(keep, x_next, step.x), xp.where(new, values_next, step.values),
                         xp.where(keep, g_next, step.g), xp.where(new, fraction, step.fractions),
                         step.taken | enough, halvings + 1)
        if bool(xp.all(step.taken)):
            break
        fraction *= 0.5
    return step, relative


def lbfgs(smooth: SmoothFunctional | Sequence[tuple[slice, SmoothFunctional]], x0: Array, *,
          bounds: Bounds | None = None, memory: int = 8,
          stop: StoppingRule | None = None, batch_ndim: int = 0, precision: Any = None,
          callback: Callable[[int, Array], Any] | None = None, progress: bool = False) -> Result:
    r"""Minimise a smooth :math:`F(x) = g(K x)` over the box ``bounds`` by (projected) L-BFGS.

    Each iteration takes the L-BFGS direction :math:`d_k = -B_k \nabla F(x_k)`
    (zero on the variables the gradient holds at a bound), then the first of the
    steps :math:`x_{k+1} = P_C(x_k + 2^{-j} d_k)`, :math:`j = 0, 1, \dots`, with
    sufficient decrease

    .. math::

        F(x_{k+1}) \le F(x_k) + c \, \mathrm{Re} \langle \nabla F(x_k), x_{k+1} - x_k \rangle

    (:math:`c` = :data:`~adareg.solvers.lbfgs.ARMIJO`, plus a few units of rounding of :math:`F`).  Where
    none of :data:`~adareg.solvers.lbfgs.MAX_HALVINGS` halvings decreases :math:`F` enough (the model is
    poor, or rounding dominates near the minimiser), the projected gradient step
    :math:`P_C(x_k - \nabla F(x_k) / L)` is taken, which the Lipschitz constant
    :math:`L` makes a descent step, and the memory is cleared.

    The run stops on the relative length of the full quasi-Newton step,

    .. math:: r_k = \| P_C(x_k + d_k) - x_k \| \, / \, \|x_k\|,

    once it is at most ``tol`` in :data:`~adareg.solvers.lbfgs.WINDOW` consecutive iterations.  With a good
    model :math:`r_k` estimates :math:`\|x^* - x_k\| / \|x_k\|` (Newton's step reaches
    the minimiser of a quadratic); with a poor one, or while the set of variables at
    a bound changes, single steps can be short far from the minimiser, which the
    window guards against.  Iterations without a model (the first, and those after the
    model was cleared for not descending) take the gradient step and report
    :math:`r_k = \infty`; an image whose line search fails takes the gradient step too, and
    its iteration reports the :math:`r_k` of the model step it rejected.  A point that its
    projected gradient step leaves unchanged is stationary: the run stops there, converged.  Two
    safeguards in a row whose gradient steps lower no objective beyond its rounding mean
    that :math:`F` no longer decreases: the run stops there, not converged.  (Gradient steps
    taken while negative curvature, as on a weakly convex :math:`F`, leaves the model
    empty are no safeguards.)

    A batch (``batch_ndim`` leading axes) is that many independent problems run in step:
    each image has its own inverse-Hessian model, its own line search on its own objective
    (an image that finds no sufficient decrease takes its gradient step while the others
    take theirs) and so the iterates it would have alone, to rounding; the batch stops when
    its largest :math:`r_k` does, or when every image is stationary, or in two iterations in
    a row took safeguards.  A batch given in chunks (``smooth`` a list of ``(images,
    objective)`` pairs) runs each chunk as an L-BFGS of its own, all stepped at every
    iteration: a chunk stops on its own :math:`r_k` (the rule's tolerance), stationarity or
    safeguards and keeps its images from then on, and the batch stops when its last chunk
    does, so that an image of a one-image chunk comes out as it would alone (``solve`` cuts
    a batch so on the host, :func:`~adareg.solvers.chunks.objective_in_chunks`).

    Parameters
    ----------
    smooth
        The objective ``g(K x)``: ``forward(x) = K x``, ``value_and_grad_of_forward(Kx, x)``
        returning ``(F(x), grad F(x))``, and ``lipschitz``, a Lipschitz constant of the
        gradient (see :class:`~adareg.functionals.SmoothSum`).  For a batch, it may come in
        chunks: ``(images, objective)`` pairs, ``images`` consecutive slices that cut the
        batch's images (its axes flattened) in order, each objective that of its images alone
        (e.g. with the data term's :meth:`~adareg.functionals.LeastSquares.images`).
    x0
        Starting point (its shape, dtype and device are kept).
    bounds
        Box ``(lower, upper)`` (either may be ``None``), real images only.
    memory
        Number of step pairs kept for the inverse-Hessian model.
    stop
        Stopping rule; its :class:`~adareg.solvers.RelativeChange` reads the largest
        :math:`r_k` of the last :data:`~adareg.solvers.lbfgs.WINDOW` iterations (default ``DEFAULTS.rule()``).
    batch_ndim
        Leading axes of ``x0`` that index independent problems (a batch): :math:`r_k` is the largest
        of its images'.  ``smooth`` then gives ``values_and_grad_of_forward(Kx, x, batch_ndim)``, one
        objective per image (:class:`~adareg.functionals.SmoothFunctional` does).
    precision
        The dtype in which ``K x`` is computed where it is coarser than ``x``'s (e.g.
        ``H.precision``: ASTRA projects in float32), so that the line search allows the
        rounding of :math:`F` in it; default ``x``'s.
    callback
        ``callback(k, x_k)`` after each iteration; returning ``True`` stops the run.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    Result
        With history columns ``iteration, objective, relative_change, evaluations, step,
        seconds``: :math:`F(x_{k})` after the step (a batch's sum), :math:`r_k`, the evaluations of
        :math:`F` and its gradient in the iteration, and the accepted fraction :math:`2^{-j}` of the
        L-BFGS step (0 for a safeguarded gradient step; a batch's smallest); of a batch in chunks,
        the largest, most and smallest over the chunks still running.
    """
    stop = DEFAULTS.rule_or(stop, "lbfgs: stop")
    callback = check_callback(callback, "lbfgs: callback")
    bounds = check_bounds(bounds)
    memory = checks.count(memory, "lbfgs: memory")
    progress = checks.flag(progress, "lbfgs: progress")
    backend.check_iterate(x0, "lbfgs: x0")
    batch_ndim = checks.batch_axes(batch_ndim, x0.ndim, "lbfgs: batch_ndim")
    precision = _checked_precision(precision, x0.dtype)
    x = project(x0, bounds)
    # (a float64 x under a float32 projector: the line search halved its steps on the projector's rounding)
    rounding = backend.rounding(x.dtype, precision)
    parts = pieces(smooth, x, batch_ndim, "lbfgs: smooth")
    runs = [_Run(part, start, bounds, memory, ndim, rounding) for _, part, start, ndim in parts]
    chunks = [index for index, *_ in parts]
    xp = backend.namespace(x)

    def whole() -> Array:
        return joined([run.x for run in runs], x.shape)

    def step(k: int, elapsed: Callable[[], float]) -> Report:
        running = [run for run in runs if run.end is None]
        for run in running:
            run.iterate(k)
        seconds = elapsed()
        for run in running:
            run.check(stop if len(runs) > 1 else None, k, seconds)
        relative = max(run.relative for run in running)
        row = dict(iteration=k, objective=sum(float(xp.sum(run.values)) for run in runs), relative_change=relative,
                   evaluations=max(run.evaluations for run in running), step=min(run.fraction for run in running),
                   seconds=seconds)
        return Report(row, {"change": f"{relative:.2e}"},
                      Progress(iteration=k, relative_change=max(run.settled for run in runs), seconds=seconds))

    # _ends after the verdict, which calls the callback: it sees every iteration, the last included
    return iterate(step, whole, stop=stop, callback=callback,
                   columns=("iteration", "objective", "relative_change", "evaluations", "step", "seconds"),
                   desc="L-BFGS", unit="it", progress=progress, ends=lambda: _ends(runs, chunks))


def _ends(runs: list[_Run], chunks: list[slice | None]) -> tuple[bool, str] | None:
    """Where every run has ended and one of them on no rule of ``stop`` (stationary, or flat to rounding):
    ``(converged, message)``; otherwise ``None``, and the stopping rule reads the runs' largest :math:`r_k`."""
    if any(run.end is None for run in runs) or not any(run.stalled for run in runs):
        return None
    converged = all(run.end[0] for run in runs)
    if chunks == [None]:  # the batch as one run
        return converged, runs[0].end[1]
    return converged, "; ".join(f"images {index.start}:{index.stop} {run.end[1]}" for index, run in zip(chunks, runs))


def _checked_precision(precision: Any, default: np.dtype) -> np.dtype:
    """``precision`` as a float or complex dtype (``default`` for ``None``), or a ``ValueError`` naming it."""
    dtype = default if precision is None else checks.as_dtype(precision)
    if dtype is None or dtype not in backend.SUPPORTED_DTYPES:  # (NumPy takes None for float64 in ==)
        raise ValueError(f"lbfgs: precision must be one of {', '.join(d.name for d in backend.SUPPORTED_DTYPES)} "
                         f"(or None, x0's), got {precision!r}")
    return dtype


class _Run:
    """One run of L-BFGS, on the batch or one of its chunks: its iterate, objectives, gradient, inverse-Hessian model
    and recent :math:`r_k`; after each iteration, the relative length of its step, its evaluations, its smallest
    accepted fraction, and ``end``: ``None`` while it runs, then ``(converged, message)``."""

    def __init__(self, smooth: SmoothFunctional, x: Array, bounds: Bounds | None, memory: int, batch_ndim: int,
                 rounding: float):
        self.L = lipschitz_constant(smooth, "lbfgs: smooth")
        self.smooth, self.bounds, self.batch_ndim, self.rounding = smooth, bounds, batch_ndim, rounding
        self.model = _Model(memory, batch_ndim, self.L)
        self.recent: deque = deque(maxlen=WINDOW)
        self.x = x
        self.values, self.g = self.evaluate(x)
        self.gradient_step = project(x - self.g / self.L, bounds)
        self.safeguards, self.stationary, self.end, self.stalled = 0, False, None, False
        self.relative, self.evaluations, self.fraction = math.inf, 0, 0.0

    def evaluate(self, x: Array) -> tuple[Array, Array]:
        """One objective per image (float64), and the gradient."""
        u = self.smooth.forward(x)
        if self.batch_ndim:
            return self.smooth.values_and_grad_of_forward(u, x, self.batch_ndim)
        value, grad = self.smooth.value_and_grad_of_forward(u, x)
        xp = backend.namespace(x)
        return xp.asarray(value, dtype=xp.float64), grad

    @property
    def settled(self) -> float:
        """The largest :math:`r_k` of the last :data:`WINDOW` iterations (infinite before there are as many)."""
        return max(self.recent) if len(self.recent) == WINDOW else math.inf

    def iterate(self, k: int) -> None:
        """Take iteration ``k``."""
        xp, x, g = backend.namespace(self.x), self.x, self.g
        d = self.model.direction(g, _binding(x, g, self.bounds))
        if d is None:  # no model yet: the projected gradient step
            values_next, g_next = self.evaluate(self.gradient_step)
            everyone = xp.ones(self.values.shape, dtype=bool)
            step = _Step(self.gradient_step, values_next, g_next, xp.zeros_like(self.values), everyone, 1)
            relative = math.inf
        else:
            step, relative = _line_search(self.evaluate, x, self.values, g, d, self.bounds, self.rounding,
                                          self.batch_ndim)
        failed = ~step.taken
        if bool(xp.any(failed)):  # no sufficient decrease there: those images take the projected gradient step
            x_next = xp.where(backend.per_image(failed, x).astype(bool), self.gradient_step, step.x)
            step = _Step(x_next, *self.evaluate(x_next), step.fractions, step.taken, MAX_HALVINGS + 1)
            self.model.forget(failed)
        # a safeguard: no model step taken, and the gradient steps lower no objective beyond its rounding (a model
        # left empty by negative curvature, as on a weakly convex F, takes gradient steps that do lower it)
        safeguard = k > 1 and not bool(xp.any(step.fractions)) and not bool(
            xp.any(step.values < self.values - self.rounding * xp.abs(self.values)))
        self.safeguards = self.safeguards + 1 if safeguard else 0
        self.model.add(step.x - x, step.g - g)
        self.x, self.values, self.g = step.x, step.values, step.g
        self.gradient_step = project(self.x - self.g / self.L, self.bounds)
        self.stationary = not bool(xp.any(self.gradient_step != self.x))
        self.recent.append(relative)
        self.relative, self.evaluations, self.fraction = relative, step.evaluations, float(xp.min(step.fractions))

    def check(self, stop: StoppingRule | None, k: int, seconds: float) -> None:
        """After iteration ``k``: end where the run is stationary, flat to rounding, or (a chunk) converged by
        ``stop``."""
        self.end = _stalled(k, self.stationary, self.safeguards)
        self.stalled = self.end is not None
        fired = None if self.end is not None or stop is None else stopped_alone(stop, k, self.settled, seconds)
        if fired is not None:
            self.end = True, f"stopped by {fired!r} after {k} iterations"
