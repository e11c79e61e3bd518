"""Stopping rules: when an iterative solver ends, and whether that counts as converged.

Rules combine with ``|``: ``MaxIterations(500) | RelativeChange(1e-5)`` stops at the
first rule that fires.  A rule that measures progress (:class:`RelativeChange`,
:class:`Residual`) marks the run converged; a budget (:class:`MaxIterations`,
:class:`WallTime`) does not.  Every iterative solver of adareg stops through them,
and each declares its default cap and tolerance once, as a :class:`Defaults`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import backend, checks
from .backend import Array


@dataclass(frozen=True)
class Progress:
    """What the rules look at after each iteration.

    ``relative_change`` is the solver's measure of its last step (see each solver) and
    ``residual`` its measure of the distance to a solution (a relative residual, or a
    certified relative error); either is ``inf`` where the solver does not compute it.
    """

    iteration: int
    seconds: float
    relative_change: float = math.inf
    residual: float = math.inf


class StoppingRule:
    """Base class: ``check(progress)`` returns the rule that fires, or ``None``."""

    #: Whether stopping on this rule means the iteration converged.
    converged: bool = False

    def check(self, progress: Progress) -> StoppingRule | None:
        raise NotImplementedError

    def __or__(self, other: StoppingRule) -> StoppingRule:
        if not isinstance(other, StoppingRule):
            return NotImplemented
        return AnyOf(self, other)


class MaxIterations(StoppingRule):
    """Stop after ``n`` iterations."""

    def __init__(self, n: int):
        self.n = checks.count(n, "MaxIterations: n")

    def check(self, progress: Progress) -> StoppingRule | None:
        return self if progress.iteration >= self.n else None

    def __repr__(self) -> str:
        return f"MaxIterations({self.n})"


class Tolerance(StoppingRule):
    """Stop, converged, once the measure of progress named by ``measure`` (a :class:`Progress` field) is ``<= tol``."""

    converged = True
    measure: str

    def __init__(self, tol: float):
        self.tol = checks.non_negative(tol, f"{type(self).__name__}: tol")  # 0 stops only where nothing moved

    def check(self, progress: Progress) -> StoppingRule | None:
        return self if getattr(progress, self.measure) <= self.tol else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.tol:g})"


class RelativeChange(Tolerance):
    r"""Stop when :math:`\|x_{k+1} - x_k\| \le \mathrm{tol} \, \|x_k\|` (converged)."""

    measure = "relative_change"


class Residual(Tolerance):
    """Stop when the solver's residual (e.g. a relative residual or certified error) is ``<= tol`` (converged)."""

    measure = "residual"


class WallTime(StoppingRule):
    """Stop once ``seconds`` of wall-clock time have passed."""

    def __init__(self, seconds: float):
        self.seconds = checks.positive(seconds, "WallTime: seconds")

    def check(self, progress: Progress) -> StoppingRule | None:
        return self if progress.seconds >= self.seconds else None

    def __repr__(self) -> str:
        return f"WallTime({self.seconds:g} s)"


class AnyOf(StoppingRule):
    """Stop when any of the rules fires (the first one listed wins a tie)."""

    def __init__(self, *rules: StoppingRule):
        if not rules:  # it would never fire: a solver given it alone would run forever
            raise ValueError("AnyOf: give at least one rule (e.g. AnyOf(MaxIterations(100), RelativeChange(1e-4)))")
        self.rules: tuple[StoppingRule, ...] = ()
        for rule in rules:
            if not isinstance(rule, StoppingRule):
                raise TypeError(f"AnyOf: rules must be stopping rules (e.g. MaxIterations(100)), "
                                f"got {rule!r} ({type(rule).__name__})")
            self.rules += rule.rules if isinstance(rule, AnyOf) else (rule,)

    def check(self, progress: Progress) -> StoppingRule | None:
        for rule in self.rules:
            if rule.check(progress) is not None:
                return rule
        return None

    def __repr__(self) -> str:
        return " | ".join(map(repr, self.rules))


def relative_change(new: Any, old: Any, batch_ndim: int = 0) -> float:
    r"""``||new - old|| / ||old||``: ``0`` where nothing changed (even at ``old = 0``), ``inf`` for a move from ``0``.

    A zero image that stays zero (e.g. the solution for all-zero data) has
    converged; dividing by ``||old|| = 0`` would instead never stop the run.
    With ``batch_ndim`` leading batch axes, the largest relative change of the
    images: a batch has converged when each of its images has, whatever their scales.
    """
    xp = backend.namespace(new)
    axes = tuple(range(batch_ndim, new.ndim))
    return largest_ratio(xp.linalg.vector_norm(new - old, axis=axes), xp.linalg.vector_norm(old, axis=axes))


def check_finite_iterate(change: float, x: Any, what: str) -> None:
    """Raise a ``FloatingPointError`` naming ``what`` where the iterate ``x`` holds NaN or Inf.

    Called with the :func:`relative_change` that produced ``x``: only a non-finite change
    can come from such an iterate, so a finite one costs no pass over ``x``.  A step
    longer than the inverse curvature (an operator whose ``norm_bound`` is too small)
    makes the iterates grow until they overflow.
    """
    if math.isfinite(change):
        return
    xp = backend.namespace(x)
    if not bool(xp.all(xp.isfinite(x))):
        raise diverged(what)


def diverged(what: str) -> FloatingPointError:
    """The error of a solver ``what`` whose iterates (or gradient steps) overflowed to NaN or Inf."""
    return FloatingPointError(f"{what}: the iterates diverged to NaN or Inf; the steps assume that the data term's "
                              "Lipschitz constant max(w) H.norm_bound()^2 bounds its curvature (check a custom "
                              "operator's norm)")


def largest_ratio(sizes: Array, scales: Array) -> float:
    """The largest ``sizes / scales`` over a batch's images: ``0`` for an image whose size is ``0`` (even at
    scale ``0``), ``inf`` for a positive size at scale ``0``."""
    xp = backend.namespace(sizes)
    ratios = xp.where(sizes == 0, 0.0, sizes / xp.where(scales > 0, scales, 1.0))
    return float(xp.max(xp.where((sizes > 0) & (scales == 0), math.inf, ratios)))


def default_rule(max_iter: int, tol: float | None, max_time: float | None = None,
                 measure: type[Tolerance] = RelativeChange, who: str | None = None) -> StoppingRule:
    """``MaxIterations(max_iter)``, with ``measure(tol)`` and ``WallTime(max_time)`` when given.

    The tolerance is listed first: a run that meets it on its last allowed iteration converged.
    A ``max_time`` of ``None`` or ``math.inf`` sets no time limit; ``WallTime`` refuses any
    other that is not positive (NaN and ``-inf`` too).  With ``who``, a bad value is named
    as that caller's argument (``"who: max_iter ..."``) rather than as the rule's.
    """
    if who is not None:
        max_iter = checks.count(max_iter, f"{who}: max_iter")
        tol = None if tol is None else checks.non_negative(tol, f"{who}: tol")
        if max_time is not None and not (isinstance(max_time, float) and max_time == math.inf):
            max_time = checks.positive(max_time, f"{who}: max_time")
    rule: StoppingRule = MaxIterations(max_iter)
    if tol is not None:
        rule = measure(tol) | rule
    if max_time is not None and not (isinstance(max_time, float) and max_time == math.inf):
        rule = rule | WallTime(max_time)
    return rule


@dataclass(frozen=True)
class Defaults:
    """A solver's default iteration cap and tolerance: the one place they are written.

    ``measure`` is the rule the tolerance applies to.  :func:`adareg.solve` passes
    what its caller gave and leaves the rest to these.
    """

    max_iter: int
    tol: float
    measure: type[Tolerance] = RelativeChange

    def rule(self, max_iter: int | None = None, tol: float | None = None,
             max_time: float | None = None, who: str | None = None) -> StoppingRule:
        """The stopping rule with the given values, these defaults for those left ``None`` (``who``: see
        :func:`~adareg.stopping.default_rule`)."""
        return default_rule(self.max_iter if max_iter is None else max_iter, self.tol if tol is None else tol,
                            max_time, self.measure, who)

    def rule_or(self, stop: Any, name: str) -> StoppingRule:
        """``stop`` as given, or the default rule for ``None``; a ``TypeError`` naming ``name`` otherwise (before
        any iteration runs, not when the first one ends), and a ``ValueError`` for a tolerance on another
        measure than the solver's, which would never fire."""
        if stop is None:
            return self.rule()
        if not isinstance(stop, StoppingRule):
            raise TypeError(f"{name} must be a stopping rule (e.g. MaxIterations(100) | RelativeChange(1e-5)) or "
                            f"None, got {stop!r} ({type(stop).__name__})")
        for rule in stop.rules if isinstance(stop, AnyOf) else (stop,):
            if isinstance(rule, Tolerance) and rule.measure != self.measure.measure:
                raise ValueError(f"{name}: {rule!r} would never fire, as this solver does not measure its "
                                 f"{rule.measure.replace('_', ' ')}; give {self.measure.__name__}(tol)")
        return stop


def stops(answer: Any) -> bool:
    """Whether a callback's return value asks to stop: ``True``, as Python's ``bool``, NumPy's
    ``bool_`` or a 0-d boolean array of any library (a comparison's result, e.g. ``xp.all(x >= 0)``,
    or a torch tensor's).

    Other values, ``None`` and numbers included, go on, so that a callback that returns
    whatever its last call gave (e.g. ``list.append``'s ``None``) never stops a run.
    """
    if answer is True or isinstance(answer, np.bool_):
        return bool(answer)
    return getattr(answer, "shape", None) == () and _is_boolean(getattr(answer, "dtype", None)) and bool(answer)


def _is_boolean(dtype: Any) -> bool:
    """Whether ``dtype`` is a boolean dtype: NumPy's (CuPy's, dask's) or another library's, whose name is
    ``"bool"`` (``torch.bool``, TensorFlow's ``tf.bool``)."""
    if dtype is None:
        return False
    try:
        return np.dtype(dtype) == np.bool_
    except (TypeError, ValueError):  # no NumPy dtype, e.g. torch.bool
        return getattr(dtype, "name", None) == "bool" or str(dtype) == "torch.bool"


def check_callback(callback: Any, name: str) -> Callable[[int, Any], Any] | None:
    """``callback``, checked to be callable (or ``None``) before any iteration runs; a ``TypeError`` naming
    ``name`` otherwise."""
    if callback is not None and not callable(callback):
        raise TypeError(f"{name} must be callable as callback(k, x_k), or None, got {callback!r} "
                        f"({type(callback).__name__})")
    return callback


def verdict(stop: StoppingRule, progress: Progress, callback: Callable[[int, Any], Any] | None,
            x: Any, unit: str = "iterations") -> tuple[bool, str] | None:
    """After an iteration: ``None`` to go on, or ``(converged, message)`` to stop.

    ``callback(k, x)`` is called first and stops the run by returning ``True``
    (:func:`stops`), converged only where a convergence rule of ``stop`` fired at the same
    iteration; otherwise the first rule of ``stop`` that fires ends it.  ``unit`` names
    what the solver counts in the message.
    """
    fired = stop.check(progress)
    if callback is not None and stops(callback(progress.iteration, x)):
        if fired is not None and fired.converged:
            return True, f"stopped by the callback, and by {fired!r}, after {progress.iteration} {unit}"
        return False, "stopped by the callback"
    if fired is not None:
        ending = "" if fired.converged else ", not converged"
        return fired.converged, f"stopped by {fired!r} after {progress.iteration} {unit}{ending}"
    return None
