"""The interface between regularizers and solvers."""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from .. import backend, checks
from ..backend import Array
from ..operators.base import Shape, broadcasts_to
from ..stopping import Defaults, Residual

Bounds = tuple[float | None, float | None]

#: Iterations and certified relative error at which iterative proxes stop by default.
PROX_DEFAULTS = Defaults(max_iter=500, tol=1e-3, measure=Residual)


@dataclass
class ProxResult:
    """Output of :meth:`Regularizer.prox`.

    Attributes
    ----------
    x
        The (approximate) proximal point.
    state
        What a later call with a nearby input can start from (``warm_start``),
        e.g. the dual variable; ``None`` for closed-form proxes.
    iterations
        Inner iterations spent (0 for closed forms).
    gap
        Certified duality gap of the returned point (0 for closed forms); the
        distance to the exact prox is at most ``sqrt(2 * gap)``.
    converged
        Whether the requested tolerance was certified.
    """

    x: Array
    state: Any = None
    iterations: int = 0
    gap: float = 0.0
    converged: bool = True


class Regularizer(backend.KeepsReadOnly, ABC):
    """A regularizer ``R`` on images of shape :attr:`shape` (leading batch axes allowed).

    Solvers need :meth:`value` and :meth:`prox`; the prox may be computed
    iteratively, starting from ``warm_start`` and returning the state to start
    the next call from.  Its parameters are fixed when it is built
    (:class:`~adareg.backend.KeepsReadOnly`).
    """

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("shape",)

    #: How solvers minimise it, by its prox (a learned regularizer's ``at(sigma)`` says
    #: ``"smooth"`` or ``"reweighting"`` instead).
    minimisation = "prox"

    #: Shape of one image (without batch axes).
    shape: Shape

    #: The batch axes of the regularizer's own parameters (e.g. one weight map per image); the images it is
    #: applied to must have batch axes that these broadcast to, or it enlarges their batch.
    batch_shape: Shape = ()

    @abstractmethod
    def value(self, x: Array) -> float:
        """``R(x)`` (summed over batch axes)."""

    @abstractmethod
    def prox(self, v: Array, tau: float, *, bounds: Bounds | None = None, warm_start: Any = None,
             tol: float | None = PROX_DEFAULTS.tol, max_iter: int = PROX_DEFAULTS.max_iter,
             max_time: float | None = None, callback: Callable[[int, Array], Any] | None = None,
             record: Callable[..., None] | None = None,
             progress: bool = False) -> ProxResult:
        r"""The proximal point :math:`\arg\min_{x \in C} \tfrac12 \|x - v\|^2 + \tau R(x)`.

        ``C`` is the box ``bounds = (lower, upper)`` (either may be ``None``), or
        everything when ``bounds`` is ``None``.  Iterative proxes stop once
        ``||x - x*|| <= tol * ||v||`` is certified, after ``max_iter`` iterations or
        ``max_time`` seconds, or when ``callback(k, x_k)`` returns ``True``; they may
        report their progress through ``record(**row)`` and a progress bar.
        """

    def check_image(self, x: Array, what: str) -> None:
        """Raise a clear error unless ``x`` has shape ``batch + self.shape`` and a supported dtype."""
        backend.check_array(x, self.shape, f"{type(self).__name__}: {what}")

    def check_batch(self, batch: Shape, who: str, what: str) -> None:
        """Raise a ``ValueError`` (``who``: the caller) unless :attr:`batch_shape` broadcasts to the batch
        ``batch`` of ``what`` without enlarging it: a solver's iterates would otherwise change shape."""
        if not broadcasts_to(self.batch_shape, batch):
            raise ValueError(f"{who}: reg's weights are for a batch of shape {self.batch_shape}, but {what} holds a "
                             f"batch of shape {tuple(batch)}: give one weight map per image of {what}, or one for "
                             "all")


@runtime_checkable
class Reweighted(Protocol):
    r"""What a regularizer that declares ``minimisation = "reweighting"`` gives the reweighting loop
    (:func:`adareg.solvers.reweighting`): each step from :math:`x_k` minimises the data term plus
    :math:`\lambda \sum_c \langle \Lambda_c(x_k), |W_c x| \rangle`, a weighted-:math:`\ell_1` problem.

    An adaptive model's ``at(sigma)`` is one (:class:`~adareg.regularizers.adaptive.ReweightedL1`);
    any object with these members is too.

    Attributes
    ----------
    minimisation
        ``"reweighting"``.
    step_iterations
        The dual iterations of a denoising step's prox, its budget.
    channels
        The channels of a step's dual per image (what a batch's chunk holds in memory).
    """

    minimisation: str
    step_iterations: int
    channels: int

    def step(self, x: Array) -> Regularizer:
        """The weighted-l1 problem of the step from ``x``: a
        :class:`~adareg.regularizers.WeightedL1Analysis` (its prox is what the loop calls)."""


def check_prox_result(reg: Regularizer, out: Any, v: Array, bounds: Bounds | None, who: str) -> None:
    """Raise, naming ``who`` and ``reg``'s class, where ``reg.prox(v, ...)`` gave no :class:`ProxResult` whose ``x``
    has ``v``'s shape and lies in the box ``bounds``: a user's prox that drops a keyword (``**kwargs``) would
    otherwise return an unconstrained point as the solution.  Solvers call it on their first prox."""
    name = f"{type(reg).__name__}.prox"
    if not isinstance(out, ProxResult):
        raise TypeError(f"{who}: {name} must return a ProxResult (x, state, iterations, gap, converged), got "
                        f"{type(out).__name__}")
    if not backend.is_array(out.x) or tuple(out.x.shape) != tuple(v.shape):
        got = f"shape {tuple(out.x.shape)}" if backend.is_array(out.x) else type(out.x).__name__
        raise ValueError(f"{who}: {name} gave x of {got} for v of shape {tuple(v.shape)}: the prox keeps v's shape")
    if bounds is not None and out.x.size:
        xp = backend.namespace(out.x)
        # the box in x's precision, as a clip rounds it (0.1 is 0.10000000149 in float32)
        lower, upper = (None if end is None else float(np.asarray(end, dtype=out.x.dtype)) for end in bounds)
        low, high = float(xp.min(out.x)), float(xp.max(out.x))
        if (lower is not None and low < lower) or (upper is not None and high > upper):
            raise ValueError(f"{who}: {name} gave x spanning [{low:.4g}, {high:.4g}] outside bounds={bounds}: the prox "
                             "minimises over the box bounds=(lower, upper), its keyword")


def check_bounds(bounds: Any) -> Bounds | None:
    """``bounds`` as ``(lower, upper)`` floats or ``None``s, or a ``ValueError``."""
    if bounds is None:
        return None
    try:
        lower, upper = bounds
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be a pair (lower, upper), got {bounds!r}") from None
    lower = None if lower is None else _bound(lower, "lower", bounds)
    upper = None if upper is None else _bound(upper, "upper", bounds)
    if lower is not None and upper is not None and lower > upper:
        raise ValueError(f"bounds: lower {lower} exceeds upper {upper}")
    if lower == math.inf or upper == -math.inf:  # no finite number lies in the box
        raise ValueError(f"bounds: {bounds!r} is an empty box (a lower bound of +inf or an upper bound of -inf)")
    return None if lower is None and upper is None else (lower, upper)


def _bound(value: Any, which: str, bounds: Any) -> float:
    """One end of a box: a real number (or a 0-d real array, as :func:`adareg.checks.real_number` takes), possibly
    infinite, never NaN."""
    value = checks.unwrapped(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ValueError(f"bounds: the {which} bound must be a real number or None, got {value!r} in {bounds!r}")
    return float(value)


def project(x: Array, bounds: Bounds | None) -> Array:
    """Projection onto the box ``bounds`` (identity when ``bounds`` is ``None``); real images only."""
    if bounds is None:
        return x
    if x.dtype.kind == "c":  # a clip of complex numbers would order them lexicographically
        raise TypeError("bounds apply to real images, but the image is complex")
    if bounds[0] is None and bounds[1] is None:
        return x
    # the array's own clip: array-api-compat's xp.clip is, for CuPy, generic Python with boolean-mask
    # indexing (host synchronisations and several passes per call)
    return x.clip(bounds[0], bounds[1])
