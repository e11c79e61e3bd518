"""The reweighting (majorise-minimise) loop of the spatially adaptive regularizers."""

from __future__ import annotations

import math
import time
from typing import Any, Callable

from tqdm.auto import tqdm

from .. import backend
from ..backend import Array
from ..functionals import LeastSquares
from ..operators.base import LinearOperator
from ..operators.basic import Identity
from ..regularizers.adaptive import AdaptiveRegularizer
from ..regularizers.base import Bounds
from .fista import fista
from .result import History, Result
from .stopping import MaxIterations, RelativeChange


def reweighting(H: LinearOperator, y: Array, reg: AdaptiveRegularizer, *, lam: float, sigma: float,
                x0: Array | None = None, weights: Array | None = None, bounds: Bounds | None = None,
                max_iter: int = 50, tol: float = 1e-4, inner_tol: float | None = None,
                inner_max_iter: int | None = None,
                callback: Callable[[int, Array], Any] | None = None, progress: bool = False) -> Result:
    r"""Fixed-point iteration of a spatially adaptive regularizer (the paper's eq. 4).

    .. math::

        x_{k+1} = \arg\min_{x \in C} \tfrac12 \|H x - y\|_w^2
                  + \lambda \sum_c \langle \Lambda_c(x_k, \sigma), |W_c x| \rangle

    Every step is convex and solved without smoothing: for denoising (``H`` the
    identity, no data weights) it is the prox of the weighted :math:`\ell_1` term,
    by dual FISTA warm-started from the previous step's dual; otherwise FISTA on
    the data term with that prox inside, started from :math:`x_k`.

    For denoising, each step is by default a fixed budget of
    ``reg.step_iterations`` dual iterations (5 for ``sa-cnn``, 20 for ``sa-b``),
    not a certified solve.  Inexact steps do not move the fixed point: the dual
    iterate :math:`p` and FISTA's momentum carry over from step to step (the
    steps are one dual FISTA run whose weights change every few iterations), so
    where the iteration converges, :math:`p` converges to a point that projected
    gradient steps for the limit weights :math:`\Lambda(x)` leave unchanged,
    i.e. a minimiser, and :math:`x = y - \lambda W^T p` is the exact solution of
    its own step.  Certifying every step instead costs some forty times more
    dual iterations for a change of a few thousandths of a dB (measured in
    docs/learned.md).
    With ``inner_tol`` set, every step is certified
    instead, to the tolerance ``max(min(inner_tol, 0.1 * residual), 0.1 * tol)``:
    loose while the weights still change a lot, never tighter than a tenth of the
    outer tolerance (a step certified to that relative error moves the residual
    test by at most ``0.1 * tol``).  For a general ``H`` the steps are always
    solved to that tolerance (``inner_tol`` 1e-3 by default).
    The loop stops when the fixed-point residual
    :math:`\|x_{k+1} - x_k\| / \|x_k\|` falls below ``tol``.

    Parameters
    ----------
    H, y, weights
        Forward operator, measurements and optional data weights.
    reg
        The adaptive regularizer.
    lam, sigma
        Regularisation weight and the noise level given to the weights.
    x0
        First estimate (default: ``y`` for denoising, zeros otherwise).
    bounds
        Box constraint on ``x``.
    max_iter, tol
        Outer iterations and fixed-point tolerance.
    inner_tol, inner_max_iter
        Tolerance and iteration cap of each step (dual iterations for
        denoising, default ``None`` and ``reg.step_iterations``: a fixed budget; FISTA iterations
        otherwise, default 1e-3 and 500).
    callback
        ``callback(k, x_k)`` after each outer step; returning ``True`` stops.
    progress
        Show a progress bar over the outer steps.

    Returns
    -------
    Result
        History columns ``iteration, residual, inner_iterations`` (dual iterations
        for denoising, FISTA iterations otherwise), ``dual_iterations`` (all dual
        iterations of the step) and ``seconds``.
    """
    denoising = isinstance(H, Identity) and weights is None
    if inner_max_iter is None:
        inner_max_iter = reg.step_iterations if denoising else 500
    if inner_tol is None and not denoising:
        inner_tol = 1e-3
    xp = backend.namespace(y)
    data = None if denoising else LeastSquares(H, y, weights)
    if x0 is None:
        x = y if denoising else xp.zeros_like(H.H(y))
    else:
        x = x0
    history = History("iteration", "residual", "inner_iterations", "dual_iterations", "seconds")
    dual = None
    residual = math.inf
    start = time.perf_counter()
    converged, message = False, ""
    bar = tqdm(total=max_iter, disable=not progress, desc="reweighting", unit="step")
    k = 0
    while k < max_iter:
        k += 1
        step = reg.step(x, sigma)
        step_tol = None if inner_tol is None else max(min(inner_tol, 0.1 * residual), 0.1 * tol)
        if denoising:
            out = step.prox(y, lam, bounds=bounds, warm_start=dual, tol=step_tol, max_iter=inner_max_iter)
            x_next, dual, inner = out.x, out.state, out.iterations
            dual_total = inner
        else:
            out = fista(data, x, reg=step, lam=lam, bounds=bounds,
                        stop=MaxIterations(inner_max_iter) | RelativeChange(step_tol), track_objective=False)
            x_next, inner = out.x, out.iterations
            dual_total = int(out.history["inner_iterations"].sum())
        size = float(xp.linalg.vector_norm(x))
        residual = float(xp.linalg.vector_norm(x_next - x)) / size if size > 0 else math.inf
        x = x_next
        history.append(iteration=k, residual=residual, inner_iterations=inner, dual_iterations=dual_total,
                       seconds=time.perf_counter() - start)
        bar.update()
        bar.set_postfix(residual=f"{residual:.2e}", refresh=False)
        if callback is not None and callback(k, x) is True:
            message = "stopped by the callback"
            break
        if residual <= tol:
            converged = True
            message = f"fixed-point residual {residual:.3g} <= {tol:g} after {k} reweighting steps"
            break
    bar.close()
    if not message:
        message = f"stopped after {k} reweighting steps with fixed-point residual {residual:.3g}"
    return Result(x=x, converged=converged, iterations=k, history=history, message=message)
