"""Conjugate gradients for Hermitian positive (semi-)definite linear systems."""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from .. import backend
from ..backend import Array
from .result import History, Result
from ..stopping import Defaults, Progress, Residual

#: Iterations and relative residual at which conjugate gradients stop by default.
DEFAULTS = Defaults(max_iter=100, tol=1e-6, measure=Residual)


def conjugate_gradient(apply: Callable[[Array], Array], b: Array, *, x0: Array | None = None,
                       max_iter: int | None = None, tol: float | None = None) -> Result:
    r"""Solve :math:`M x = b` for a Hermitian positive definite :math:`M` by conjugate gradients.

    Hestenes & Stiefel's iteration with the inner product
    :math:`\mathrm{Re} \langle u, v \rangle`, which makes it exact for real and for
    complex unknowns alike (a real-linear ``M`` on complex arrays included), until
    :math:`\|b - M x_k\| \le \mathrm{tol} \, \|b\|`.  Runs on ``b``'s backend; only
    scalars leave the device.  Leading batch axes form one block-diagonal system.

    Parameters
    ----------
    apply
        ``x -> M x``.
    b
        Right-hand side.
    x0
        Starting point (default zeros), of ``b``'s shape.
    max_iter, tol
        Iteration cap and relative residual tolerance (default :data:`~adareg.solvers.cg.DEFAULTS`).

    Returns
    -------
    Result
        With history columns ``iteration, residual, seconds`` (``residual`` relative to ``||b||``: the
        recursively updated one, which rounding can take far below the true one; the message gives the true
        :math:`\|b - M x\| / \|b\|` of the returned ``x``).
        Where a search direction :math:`p` has :math:`\mathrm{Re} \langle p, M p \rangle \le 0`
        (a singular or indefinite ``M``, e.g. an inconsistent semi-definite system),
        the run stops there, not converged, with the last iterate (the next step
        would divide by that curvature: NaN or Inf).  A run whose recursively updated
        residual meets ``tol`` while the true one, :math:`\|b - M x\|`, does not (rounding,
        for ``tol`` near the machine precision times the condition number) is not converged.
    """
    if not callable(apply):
        raise TypeError(f"conjugate_gradient: apply must be callable as apply(x) = M x, got {type(apply).__name__}")
    for name, array in ({"b": b} if x0 is None else {"b": b, "x0": x0}).items():
        backend.check_iterate(array, f"conjugate_gradient: {name}")  # NaN would read as a breakdown of M
    xp = backend.namespace(b)
    stop = DEFAULTS.rule(max_iter, tol, who="conjugate_gradient")

    def true_residual(x: Array) -> float:
        """``||b - M x|| / ||b||``."""
        r = b - product(x)
        return math.sqrt(backend.real_inner(r, r)) / scale

    def product(x: Array) -> Array:
        """``apply(x)``, checked: one of another shape would broadcast, or fail inside numpy."""
        out = apply(x)
        if not backend.is_array(out) or tuple(out.shape) != tuple(b.shape):
            raise ValueError(f"conjugate_gradient: apply(x) must return an array of b's shape {tuple(b.shape)}, got "
                             f"{tuple(out.shape) if backend.is_array(out) else type(out).__name__}")
        return out

    if x0 is None:
        x, r = xp.zeros_like(b), b
    else:
        if tuple(x0.shape) != tuple(b.shape):
            raise ValueError(f"conjugate_gradient: x0 has shape {tuple(x0.shape)}, expected {tuple(b.shape)}")
        if x0.dtype.kind == "c" and b.dtype.kind == "f":  # the cast would drop its imaginary part
            raise TypeError(f"conjugate_gradient: x0 is complex ({x0.dtype}) but b is real ({b.dtype}): the "
                            "unknowns are real")
        x = x0.astype(b.dtype)
        r = b - product(x)
    history = History("iteration", "residual", "seconds")
    scale = math.sqrt(backend.real_inner(b, b))
    if scale == 0:
        return Result(x=xp.zeros_like(b), converged=True, iterations=0, history=history, message="b is zero: x = 0")
    start = time.perf_counter()
    p, rr = r, backend.real_inner(r, r)
    k, fired = 0, stop.check(Progress(iteration=0, seconds=0.0, residual=math.sqrt(rr) / scale))
    # M is numerically singular along p where its Rayleigh quotient falls below rounding of the largest seen
    eps, largest = float(np.finfo(backend.real_dtype(b.dtype)).eps), 0.0
    while fired is None:
        q = product(p)
        curvature, length = backend.real_inner(p, q), backend.real_inner(p, p)
        largest = max(largest, curvature / length) if length > 0 and math.isfinite(curvature) else largest
        if not curvature > eps * largest * length:  # singular along p (no solution, or no unique one), or indefinite
            message = (f"CG broke down after {k} iterations: <p, M p> = {curvature:.3g} along a search direction "
                       f"(M is singular or not positive definite there); relative residual {true_residual(x):.3g}")
            return Result(x=x, converged=False, iterations=k, history=history, message=message)
        k += 1
        alpha = rr / curvature
        x = x + alpha * p
        r = r - alpha * q
        rr_next = backend.real_inner(r, r)
        progress = Progress(iteration=k, seconds=time.perf_counter() - start, residual=math.sqrt(rr_next) / scale)
        history.append(iteration=k, residual=progress.residual, seconds=progress.seconds)
        fired = stop.check(progress)
        p = r + (rr_next / rr) * p
        rr = rr_next
    # the recursion's residual drifts from b - M x by rounding: the message gives the true one, and a stop on the
    # recursion's holds only where the true one meets it too
    residual = true_residual(x) if k > 0 else math.sqrt(rr) / scale
    if fired.converged and k > 0 and fired.check(Progress(iteration=k, seconds=history["seconds"][-1],
                                                          residual=residual)) is None:
        message = (f"relative residual {residual:.3g} after {k} CG iterations, where the recursion's reached "
                   f"{math.sqrt(rr) / scale:.3g} and {fired!r} fired: rounding limits CG here (loosen tol)")
        return Result(x=x, converged=False, iterations=k, history=history, message=message)
    message = f"relative residual {residual:.3g} after {k} CG iterations, stopped by {fired!r}"
    return Result(x=x, converged=fired.converged, iterations=k, history=history, message=message)
