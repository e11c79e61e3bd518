"""FISTA: accelerated forward-backward splitting for ``min_x E(x) + lam R(x)``."""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Sequence

from .. import backend, checks
from ..backend import Array
from ..functionals import SmoothFunctional, lipschitz_constant
from ..regularizers.base import Bounds, Regularizer, check_bounds, check_prox_result, project
from .chunks import holds_weights_per_image, joined, pieces, stopped_alone
from .loop import Report, iterate
from .result import Result
from ..stopping import (Defaults, Progress, StoppingRule, check_callback, check_finite_iterate, diverged,
                        relative_change)

#: Iterations and relative change at which FISTA stops by default.
DEFAULTS = Defaults(max_iter=500, tol=1e-5)


def _extrapolate(new: Any, old: Any, beta: Array) -> Any:
    """``new + beta (new - old)``, term by term for the tuples of a sum of smooth terms; ``beta`` holds one
    weight per image of the batch (the leading axes of each term)."""
    if isinstance(new, tuple):
        return tuple(_extrapolate(a, b, beta) for a, b in zip(new, old))
    out = new - old  # one temporary, updated in place: these are 32-channel responses for the ridge models
    out *= backend.per_image(beta, out)
    out += new
    return out


def next_momentum(t: Any, z: Array, x_next: Array, change: Array, batch_ndim: int = 0,
                  restart: bool = True) -> tuple[Array, Array]:
    r"""FISTA's next :math:`t` and extrapolation weight :math:`\beta` of each image of a batch:
    ``z_next = x_next + beta * change``.

    :math:`t_{k+1} = (1 + \sqrt{1 + 4 t_k^2}) / 2` and :math:`\beta = (t_k - 1) / t_{k+1}`,
    or, with ``restart``, ``(1, 0)`` for an image whose momentum points uphill,
    :math:`\mathrm{Re} \langle z - x_{k+1}, x_{k+1} - x_k \rangle > 0` (O'Donoghue &
    Candès, 2015, gradient scheme); ``z`` is the point the step started from and
    ``change`` is :math:`x_{k+1} - x_k`.  The ``batch_ndim`` leading axes index
    independent images, each with its own :math:`t` and restarts, so that a batch
    follows its images' own paths; ``t`` (a float to start) and the returned arrays
    have the batch's shape and stay on the images' device.
    """
    xp = backend.namespace(x_next)
    t = xp.asarray(t, dtype=xp.float64)
    t_next = 0.5 * (1.0 + xp.sqrt(1.0 + 4.0 * t * t))
    beta = (t - 1.0) / t_next
    if restart:
        uphill = backend.real_inners(z - x_next, change, batch_ndim) > 0
        t_next, beta = xp.where(uphill, 1.0, t_next), xp.where(uphill, 0.0, beta)
    shape = tuple(x_next.shape[:batch_ndim])
    return xp.broadcast_to(t_next, shape), xp.broadcast_to(beta, shape)


Prox = Callable[[Array, float], tuple[Array, int, Any]]


def _prox(reg: Regularizer | None, lam: float, bounds: Bounds | None, state: Any, tol: float,
          max_iter: int, check: bool) -> Prox:
    """``(v, L) -> (prox of lam/L R + i_C at v, inner iterations, state)``: the projection without ``reg``; with
    ``check``, its results are checked (:func:`check_prox_result`)."""
    def prox(v: Array, L: float) -> tuple[Array, int, Any]:
        if reg is None:
            return project(v, bounds), 0, state
        # a step longer than the inverse curvature makes v overflow before the iterate does: say so here rather
        # than let the prox refuse a v its caller never saw (one norm, beside the prox's passes)
        if not math.isfinite(float(backend.namespace(v).linalg.vector_norm(v))):
            raise diverged("fista")
        out = reg.prox(v, lam / L, bounds=bounds, warm_start=state, tol=tol, max_iter=max_iter)
        if check:
            check_prox_result(reg, out, v, bounds, "fista")
        return out.x, out.iterations, out.state

    return prox


def _forward_backward(data: SmoothFunctional, prox: Prox, z: Array, Hz: Any, L: float,
                      backtracking: bool) -> tuple[Array, Any, float, int, Any]:
    r"""``x = prox(z - grad E(z) / L)`` and ``Hx``; with backtracking, ``L`` doubles until
    :math:`E(x) \le E(z) + \mathrm{Re}\langle \nabla E(z), x - z \rangle + \tfrac{L}{2} \|x - z\|^2`.

    Returns ``(x, Hx, L, inner iterations, prox state)``.
    """
    grad_z = data.grad_of_forward(Hz, z)
    f_z = data.value_of_forward(Hz) if backtracking else math.nan
    while True:
        x, inner, state = prox(z - grad_z / L, L)
        Hx = data.forward(x)
        if not backtracking:
            return x, Hx, L, inner, state
        d = x - z
        bound = f_z + backend.real_inner(grad_z, d) + 0.5 * L * backend.real_inner(d, d)
        f_x = data.value_of_forward(Hx)
        # near convergence both sides agree to the rounding of E, in the coarser of x's and H x's precision (a
        # float32 projector rounds a float64 iterate's); a test finer than it doubled L on rounding noise alone
        rounding = backend.rounding(x.dtype, *([Hx.dtype] if backend.is_array(Hx) else []))
        if f_x <= bound + rounding * (abs(f_z) + abs(f_x)):
            return x, Hx, L, inner, state
        L *= 2.0


def fista(data: SmoothFunctional | Sequence[tuple[slice, SmoothFunctional]], x0: Array, *,
          reg: Regularizer | None = None, lam: float = 1.0,
          bounds: Bounds | None = None, stop: StoppingRule | None = None, restart: bool = True,
          backtracking: bool = False, lipschitz: float | None = None, inner_tol: float = 1e-3,
          inner_max_iter: int = 100, track_objective: bool = True, batch_ndim: int = 0,
          callback: Callable[[int, Array], Any] | None = None, progress: bool = False) -> Result:
    r"""Minimise :math:`E(x) + \lambda R(x)` over the box ``bounds`` by FISTA.

    Each iteration takes a gradient step on the smooth ``E`` from the extrapolated
    point ``z`` and a proximal step on :math:`\lambda R` (Beck & Teboulle, 2009):

    .. math::

        x_{k+1} = \mathrm{prox}_{s \lambda R + \iota_C}\big(z_k - s \nabla E(z_k)\big), \quad
        z_{k+1} = x_{k+1} + \tfrac{t_k - 1}{t_{k+1}} (x_{k+1} - x_k), \quad
        t_{k+1} = \tfrac{1 + \sqrt{1 + 4 t_k^2}}{2}

    with step :math:`s = 1/L`.  ``H x_k`` is kept and ``H z_k`` obtained by the same
    extrapolation, so an iteration applies ``H`` and ``H^H`` once each.  An iterative prox (e.g. the dual solver of
    :class:`~adareg.regularizers.WeightedL1Analysis`) is warm-started from its
    previous state, and its tolerance tightens with the outer progress
    (``min(inner_tol, 0.1 * relative change)``), so inexact inner solves do not
    bias the limit while ``inner_max_iter`` lets them reach it; a prox cut short by
    the cap is not checked, so a low cap (10 or fewer dual steps) can end the run,
    "converged", many times ``tol`` from the minimiser.

    A batch given in chunks (``data`` a list of ``(images, objective)`` pairs) runs each
    chunk as a FISTA of its own (its step, momentum, prox state and inner tolerance), all
    stepped at every iteration: a chunk stops where the rule's tolerance holds for its own
    relative change and keeps its images from then on, and the batch stops when its last
    chunk does, so that an image of a one-image chunk comes out as it would alone
    (:mod:`adareg.solvers.chunks`; ``solve`` cuts a batch so on the host,
    :func:`~adareg.solvers.chunks.objective_in_chunks`).

    Parameters
    ----------
    data
        Smooth term ``E(x) = g(Hx)`` with ``forward``, ``value_of_forward``,
        ``grad_of_forward`` and ``lipschitz`` (see :mod:`adareg.functionals`).  For a batch,
        it may come in chunks: ``(images, objective)`` pairs, ``images`` consecutive slices
        that cut the batch's images (its axes flattened) in order, each objective that of its
        images alone (e.g. :meth:`~adareg.functionals.LeastSquares.images`).
    x0
        Starting point (its shape, dtype and device are kept).
    reg, lam
        Regularizer and its weight :math:`\lambda > 0`; without ``reg`` the prox is
        the projection onto the box (projected accelerated gradient).
    bounds
        Box ``(lower, upper)``, e.g. ``(0, None)`` for non-negativity.
    stop
        Stopping rule on the relative change between iterates (default ``DEFAULTS.rule()``).
    restart
        Adaptive restart (O'Donoghue & Candès, 2015, gradient scheme): reset the
        momentum when it points uphill.
    backtracking
        Find the step by backtracking (Beck & Teboulle), starting from
        ``lipschitz`` (by default ``data.lipschitz``) and doubling ``L`` until the quadratic
        upper bound holds: a bound that understates the curvature (e.g. a custom
        operator's wrong norm) is corrected; ``L`` never decreases.  Without it the step
        is ``1 / lipschitz``, by default ``1 / data.lipschitz``.
    lipschitz
        A Lipschitz constant :math:`L` of :math:`\nabla E` (a positive number) to use instead
        of ``data.lipschitz`` (for a batch in chunks, for every chunk): the step is
        ``1 / lipschitz``, or with ``backtracking`` the first :math:`L` tried.
    inner_tol, inner_max_iter
        Tolerance and iteration cap of an iterative prox.
    track_objective
        Record :math:`E(x_k) + \lambda R(x_k)` (``E`` is free; ``R`` costs one evaluation).
    batch_ndim
        Leading axes of ``x0`` that index independent problems (a batch): each image
        has its own momentum and restarts (:func:`~adareg.solvers.fista.next_momentum`), and the relative
        change is the largest of its images' (see :func:`~adareg.stopping.relative_change`).
    callback
        ``callback(k, x_k)`` after each iteration; returning ``True`` stops the run.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    Result
        With history columns ``iteration, objective, relative_change,
        inner_iterations, step, seconds`` (``objective`` is NaN when not tracked); of a
        batch in chunks, the objective's sum over the chunks and the largest relative change
        and inner iterations and smallest step over the chunks still running.
    """
    stop = DEFAULTS.rule_or(stop, "fista: stop")
    callback = check_callback(callback, "fista: callback")
    bounds = check_bounds(bounds)
    lam = checks.positive(lam, "fista: lam")
    restart = checks.flag(restart, "fista: restart")
    backtracking = checks.flag(backtracking, "fista: backtracking")
    track_objective = checks.flag(track_objective, "fista: track_objective")
    progress = checks.flag(progress, "fista: progress")
    inner_tol = checks.non_negative(inner_tol, "fista: inner_tol")
    inner_max_iter = checks.count(inner_max_iter, "fista: inner_max_iter")
    if lipschitz is not None:
        lipschitz = checks.positive(lipschitz, "fista: lipschitz")
    backend.check_iterate(x0, "fista: x0")
    batch_ndim = checks.batch_axes(batch_ndim, x0.ndim, "fista: batch_ndim")
    if reg is not None and not callable(getattr(reg, "prox", None)):
        raise TypeError(f"fista: reg must be a Regularizer with a prox, got {type(reg).__name__} (a smooth "
                        "learned model at its noise level runs in adareg.solve, by L-BFGS)")
    if isinstance(reg, Regularizer):
        shape = getattr(reg, "shape", None)
        if shape is not None and tuple(x0.shape[batch_ndim:]) != tuple(shape):  # else named by the first prox, as v
            raise ValueError(f"fista: x0's images have shape {tuple(x0.shape[batch_ndim:])}, but reg is for "
                             f"images of shape {tuple(shape)}")
        reg.check_batch(x0.shape[:batch_ndim], "fista", "x0")
    settings = _Settings(reg, lam, bounds, restart, backtracking, inner_tol, inner_max_iter, track_objective)
    first = lipschitz  # the first L; None: each data term's bound (backtracking raises an understated one)
    runs = [_Run(part, start, ndim, first, settings)
            for _, part, start, ndim in pieces(data, x0, batch_ndim, "fista: data")]
    if len(runs) > 1 and isinstance(reg, Regularizer) and holds_weights_per_image(reg):
        # each chunk's prox would take the weights of every image (adareg.solve runs such a batch as one piece)
        raise ValueError(f"fista: reg holds weights for each image of a batch {reg.batch_shape}: give data as one "
                         "objective for the whole batch, not in chunks")

    def whole() -> Array:
        return joined([run.x for run in runs], x0.shape)

    def step(k: int, elapsed: Callable[[], float]) -> Report:
        running = [run for run in runs if not run.stopped]
        for run in running:
            run.iterate()
        seconds = elapsed()
        for run in running if len(runs) > 1 else ():
            run.stopped = stopped_alone(stop, k, run.relative, seconds) is not None
        relative = max(run.relative for run in running)
        row = dict(iteration=k, objective=sum(run.objective for run in runs), relative_change=relative,
                   inner_iterations=max(run.inner for run in running), step=min(1.0 / run.L for run in running),
                   seconds=seconds)
        return Report(row, {"change": f"{relative:.2e}"},
                      Progress(iteration=k, relative_change=max(run.relative for run in runs), seconds=seconds))

    return iterate(step, whole, stop=stop, callback=callback,
                   columns=("iteration", "objective", "relative_change", "inner_iterations", "step", "seconds"),
                   desc="FISTA", unit="it", progress=progress)


class _Settings(NamedTuple):
    """What every run of one :func:`fista` call shares: the prox's regularizer, weight and box, and the options."""

    reg: Regularizer | None
    lam: float
    bounds: Bounds | None
    restart: bool
    backtracking: bool
    inner_tol: float
    inner_max_iter: int
    track_objective: bool


class _Run:
    """One run of FISTA, on the batch or one of its chunks: its data term, step ``1 / L``, iterate and extrapolated
    point (and their forwards), momentum, prox state, and after each iteration its relative change, inner
    iterations and objective, and whether it has stopped."""

    def __init__(self, data: SmoothFunctional, x0: Array, batch_ndim: int, lipschitz: float | None,
                 settings: _Settings):
        self.L = lipschitz_constant(data, "fista: data") if lipschitz is None else lipschitz
        self.data, self.batch_ndim, self.settings = data, batch_ndim, settings
        self.x = self.z = x0
        self.Hx = self.Hz = data.forward(x0)
        self.t: Any = 1.0
        self.state: Any = None
        self.relative, self.inner, self.objective, self.stopped = math.inf, 0, math.nan, False

    def iterate(self) -> None:
        """Take one iteration (the first checks what the prox gives)."""
        s = self.settings
        prox = _prox(s.reg, s.lam, s.bounds, self.state, min(s.inner_tol, 0.1 * self.relative), s.inner_max_iter,
                     check=self.relative == math.inf)
        x_next, Hx_next, self.L, self.inner, self.state = _forward_backward(self.data, prox, self.z, self.Hz,
                                                                            self.L, s.backtracking)
        change = x_next - self.x
        self.relative = relative_change(x_next, self.x, self.batch_ndim)
        check_finite_iterate(self.relative, x_next, "fista")
        self.t, beta = next_momentum(self.t, self.z, x_next, change, self.batch_ndim, s.restart)
        self.z = x_next + backend.per_image(beta, change) * change
        self.Hz = _extrapolate(Hx_next, self.Hx, beta)  # H z by linearity, without applying H
        self.x, self.Hx = x_next, Hx_next
        if s.track_objective:
            self.objective = self.data.value_of_forward(self.Hx) + (0.0 if s.reg is None else
                                                                    s.lam * s.reg.value(self.x))
