r"""PD3O: a primal-dual splitting for a smooth data term plus a weighted :math:`\ell_1` analysis term.

It solves, for a general forward operator ``H``,

.. math::

    \min_{x \in C} \; E(x) + \lambda \sum_c \langle \Lambda_c, |W_c x| \rangle,
    \qquad E(x) = \tfrac12 \|H x - y\|_w^2,

with the primal-dual three-operator splitting of Yan (2018), which uses the
gradient of ``E``, the projection onto the box ``C`` and the projection onto the
dual ball :math:`\{|p_c| \le \Lambda_c\}`, and applies ``H``, ``H^H``, ``W`` and
``W^H`` once per iteration; no inner loop and no smoothing of the absolute value.
With the dual scaled so that :math:`|p_c| \le \Lambda_c` (the dual of
:class:`~adareg.regularizers.WeightedL1Analysis`' prox):

.. math::

    x_k &= P_C(z_k) \\
    g_k &= \nabla E(x_k) \\
    p_{k+1} &= P_{|p| \le \Lambda}\Big(p_k + \tfrac{\delta}{\lambda}
              W\big(2 x_k - z_k - \gamma g_k - \gamma \lambda W^H p_k\big)\Big) \\
    z_{k+1} &= x_k - \gamma g_k - \gamma \lambda W^H p_{k+1}

It converges for :math:`\gamma < 2 / L` (``L`` the Lipschitz constant of
:math:`\nabla E`) and :math:`\gamma \delta \|W\|^2 \le 1`.  Compared with
Condat-Vu's condition :math:`\gamma (L/2 + \delta \|W\|^2) \le 1` this allows
both the largest primal and the largest dual step at once.  At a fixed point
:math:`x = P_C(z)` satisfies :math:`0 \in \nabla E(x) + \lambda W^H p + N_C(x)`
with :math:`p \in \partial (\sum_c \Lambda_c |\cdot|)(W x)`: the optimality
conditions of the problem.  The iteration stops once the primal and the dual
iterates change by at most ``tol`` (relative) between two iterations.

The weights :math:`\Lambda` can be replaced between iterations
(:meth:`PD3O.set_weights`), primal and dual carried over, so that one PD3O run can
follow weights that are refreshed every few iterations.  (The reweighting of the
adaptive models for a general ``H``, :func:`~adareg.solvers.reweighting`, did so until
accelerated steps with budgeted proxes proved faster.)
"""

from __future__ import annotations

import math
from typing import Any, Callable

from .. import backend, checks
from ..backend import Array
from ..functionals import LeastSquares
from ..regularizers.analysis import WeightedL1Analysis, row_part
from ..regularizers.base import Bounds, check_bounds, project
from .loop import Report, iterate
from .result import Result
from ..stopping import Defaults, Progress, StoppingRule, check_callback, relative_change

#: Iterations and relative change (primal or dual) at which :func:`primal_dual` stops by default.
DEFAULTS = Defaults(max_iter=1000, tol=1e-5)


class PD3O:
    r"""The PD3O iteration for :math:`\min_{x \in C} E(x) + \lambda \sum_c \langle \Lambda_c, |W_c x| \rangle`.

    Parameters
    ----------
    data
        The smooth data term :math:`E(x) = \tfrac12 \|H x - y\|_w^2`.
    reg
        The weighted :math:`\ell_1` analysis term: its ``W``, weights :math:`\Lambda`
        and channel grouping.
    lam
        :math:`\lambda > 0`.
    x0
        Starting point (real or complex, as the image; its dtype is kept: a real image stays
        real for a complex ``W``, whose adjoint on real images is :math:`\mathrm{Re}(W^H p)`).
    bounds
        Box ``C`` on ``x``.
    primal_step
        :math:`\gamma L` in (0, 2): the primal step as a fraction of :math:`1/L`;
        the dual step is then the largest allowed, :math:`\delta = 1/(\gamma \|W\|^2)`.

    Attributes
    ----------
    x
        The current primal iterate :math:`x_k \in C`.
    dual
        The current dual iterate :math:`p_k`, :math:`|p_k| \le \Lambda`.
    """

    def __init__(self, data: LeastSquares, reg: WeightedL1Analysis, lam: float, x0: Array, *,
                 bounds: Bounds | None = None, primal_step: float = 1.9):
        if not isinstance(reg, WeightedL1Analysis):
            raise TypeError(f"PD3O: reg must be a WeightedL1Analysis (e.g. TV, or a reweighting step's), got "
                            f"{type(reg).__name__}")
        primal_step = checks.real_number(primal_step, "PD3O: primal_step")
        if not 0 < primal_step < 2:
            raise ValueError(f"PD3O: primal_step must lie in (0, 2) (a fraction of 1/L), got {primal_step}")
        self.data, self.reg, self.lam = data, reg, checks.positive(lam, "PD3O: lam")
        backend.check_array(x0, reg.shape, f"PD3O: x0 (an image for {type(reg).__name__} of shape {reg.shape})")
        backend.check_finite(x0, "PD3O: x0")
        self.bounds = check_bounds(bounds)
        L = data.lipschitz
        if not (L > 0 and math.isfinite(L)):
            raise ValueError(f"PD3O: the data term's Lipschitz constant must be positive and finite, got {L}")
        self.gamma = primal_step / L
        norm = reg.W.norm_bound(like=x0)
        # dual step in units of p = s / lam (|p| <= Lambda): delta / lam with gamma delta ||W||^2 = 1;
        # W = 0 (e.g. differences of a one-pixel image): the term vanishes and any step does
        self.dual_step = 1.0 / (self.gamma * self.lam * norm**2) if norm > 0 else 1.0
        xp = backend.namespace(x0)
        dtype = backend.result_dtype(x0.dtype, reg.W.dtype)
        self._ball = ball = reg.dual_ball(x0)
        shape = (*ball.shape[: len(ball.shape) - len(reg.W.shape_out)], *reg.shape)
        if tuple(x0.shape) != shape:  # x gets the weights' batch axes: one start per weight map
            x0 = xp.broadcast_to(x0, shape).copy()
        self.z = x0
        self.x = project(x0, self.bounds)
        self.dual = xp.zeros(ball.shape, dtype=dtype)
        self._real = x0.dtype.kind == "f"  # a real image stays real, also for a complex W
        self._W_adjoint = reg.W.H  # held: W keeps its adjoint weakly, and making one per step costs
        self._Wt_dual = self._adjoint(self.dual)

    def _adjoint(self, p: Array) -> Array:
        r""":math:`W^H p`, or for real images :math:`\mathrm{Re}(W^H p)`: the adjoint of ``W`` on real images."""
        image = self._W_adjoint(p)
        return image.real if self._real and image.dtype.kind == "c" else image

    def set_weights(self, weights: float | Array) -> None:
        r"""Replace :math:`\Lambda` (the dual is projected onto the new ball at the next step)."""
        reg = self.reg.with_weights(weights)
        reg.check_batch(self.x.shape[: self.x.ndim - len(reg.shape)], "PD3O.set_weights", "x")
        self.reg, self._ball = reg, reg.dual_ball(self.x)

    def step(self) -> None:
        r"""One iteration, from :math:`(x_k, p_k)` to :math:`(x_{k+1}, p_{k+1})`: new arrays, so earlier ones
        can be compared with them."""
        W, gamma, lam = self.reg.W, self.gamma, self.lam
        x = self.x  # x_k = P_C(z_k)
        forward = x - gamma * self.data.grad(x)  # x_k - gamma grad E(x_k)
        # the dual step scales the image rather than the C channels of its response; the sum
        # is a new contiguous array, projected in place, block by block (DualBall.blocks)
        response = W(self.dual_step * (forward + (x - self.z) - (gamma * lam) * self._Wt_dual))
        xp = backend.namespace(response)
        p = xp.empty(self.dual.shape, dtype=self.dual.dtype)

        def new_dual(block: slice | None) -> None:
            part = row_part(block)
            xp.add(response[part], self.dual[part], out=p[part])
            self._ball.project(p, block)

        self._ball.blocks(new_dual, p)
        response = None  # spent: freed before W^H allocates its temporaries
        Wt_p = self._adjoint(p)
        self.z = forward - (gamma * lam) * Wt_p
        self.x, self.dual, self._Wt_dual = project(self.z, self.bounds), p, Wt_p  # x_{k+1} = P_C(z_{k+1})

    def objective(self) -> float:
        """``E(x) + lam R(x)`` at the current iterate."""
        return self.data.value(self.x) + self.lam * self.reg.value(self.x)


def primal_dual(data: LeastSquares, reg: WeightedL1Analysis, lam: float, x0: Array, *,
                bounds: Bounds | None = None, stop: StoppingRule | None = None, primal_step: float = 1.9,
                track_objective: bool = True, callback: Callable[[int, Array], Any] | None = None,
                progress: bool = False) -> Result:
    r"""Minimise :math:`E(x) + \lambda \sum_c \langle \Lambda_c, |W_c x| \rangle` over a box by :class:`PD3O`.

    Parameters
    ----------
    data, reg, lam, x0, bounds
        As for :class:`PD3O`.
    stop
        Stopping rule on the larger of the primal and the dual relative change, of a
        batch the largest of its images' (default ``DEFAULTS.rule()``).
    primal_step
        As for :class:`PD3O`.
    track_objective
        Record the objective (one more application of ``W``, and of ``H``).
    callback
        ``callback(k, x_k)`` after each iteration; returning ``True`` stops.
    progress
        Show a progress bar.

    Returns
    -------
    Result
        History columns ``iteration, objective, relative_change, dual_change, seconds``.
    """
    stop = DEFAULTS.rule_or(stop, "primal_dual: stop")
    callback = check_callback(callback, "primal_dual: callback")
    track_objective = checks.flag(track_objective, "primal_dual: track_objective")
    progress = checks.flag(progress, "primal_dual: progress")
    solver = PD3O(data, reg, lam, x0, bounds=bounds, primal_step=primal_step)
    batch_ndim = solver.x.ndim - len(reg.shape)  # x0's batch axes or the weights'; the dual has the same

    def step(k: int, elapsed: Callable[[], float]) -> Report:
        x, dual = solver.x, solver.dual
        solver.step()
        primal_change = relative_change(solver.x, x, batch_ndim)
        dual_change = relative_change(solver.dual, dual, batch_ndim)
        seconds = elapsed()
        objective = solver.objective() if track_objective else math.nan
        change = max(primal_change, dual_change)
        return Report(dict(iteration=k, objective=objective, relative_change=primal_change, dual_change=dual_change,
                           seconds=seconds), {"change": f"{change:.2e}"},
                      Progress(iteration=k, relative_change=change, seconds=seconds))

    return iterate(step, lambda: solver.x, stop=stop, callback=callback,
                   columns=("iteration", "objective", "relative_change", "dual_change", "seconds"), desc="PD3O",
                   unit="it", progress=progress)
