"""``adareg.solve``: one call from measurements to a reconstruction."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import backend, caches, checks
from .backend import Array
from .diagnostics import (BEYOND_REACH, CURVATURE_RATIO, OFF_BOX_SHARE, OFFSET_SHARE, WEIGHT_SPREAD,
                          warn_beyond_reach, warn_curvature_ratio, warn_off_scale, warn_offset, warn_outside_bounds,
                          warn_unbounded, warn_weight_spread)
from .functionals import LeastSquares, SmoothSum, check_weights, is_denoising
from .operators.base import (LinearOperator, batch_shape, check_measurements_of, check_operator,
                             check_start_shape, zero_image)
from .operators.basic import Identity
from .precision import OR_FLOAT64, check_scales, working_precision
from .regularizers.learned import LearnedRegularizer
from .regularizers.ridge import RidgeObjective
from .regularizers.base import Bounds, Regularizer, check_bounds, check_prox_result
from .solvers.chunks import objective_in_chunks
from .solvers.fista import DEFAULTS as FISTA_DEFAULTS
from .solvers.fista import fista
from .solvers.lbfgs import DEFAULTS as LBFGS_DEFAULTS
from .solvers.lbfgs import lbfgs
from .solvers.result import History, Result
from .solvers.reweighting import reweighting
from .stopping import check_callback

#: The public names: :func:`solve`, :data:`MINIMISATIONS`, and the thresholds of solve's warnings, which live in
#: :mod:`adareg.diagnostics` and stay importable from here.
__all__ = ["solve", "MINIMISATIONS", "WEIGHT_SPREAD", "CURVATURE_RATIO", "OFFSET_SHARE", "OFF_BOX_SHARE",
           "BEYOND_REACH"]

#: The ways a regularizer may declare that it is minimised (its ``minimisation``): by its prox (FISTA, or the prox
#: itself for denoising), as a smooth term (L-BFGS), or by a reweighting of weighted-l1 steps.
MINIMISATIONS = ("prox", "smooth", "reweighting")


def solve(H: LinearOperator, y: Array, reg: Regularizer | LearnedRegularizer, *, lam: float | None = None,
          sigma: float | None = None, x0: Array | None = None,
          bounds: Bounds | None = None, weights: Array | float | None = None, max_iter: int | None = None,
          tol: float | None = None, max_time: float | None = None, restart: bool = True,
          backtracking: bool = False, inner_tol: float | None = None, inner_max_iter: int | None = None,
          precision: str | None = None, callback: Callable[[int, Array], Any] | None = None,
          progress: bool = False) -> Result:
    r"""Reconstruct :math:`x^* = \arg\min_{x \in C} \tfrac12 \|H x - y\|_w^2 + \lambda R(x)`.

    Learned regularizers (``adareg.load("sa-cnn")``, ...) need the noise level
    ``sigma``, and for denoising ``lam`` defaults to the trained
    :math:`\lambda(\sigma)`.  The algorithm follows ``reg.at(sigma).minimisation``:
    the spatially adaptive ones (``sa-cnn``, ``sa-b``) run the reweighting loop of
    :func:`~adareg.solvers.reweighting` (dual FISTA steps for denoising,
    accelerated proximal-gradient steps otherwise); the ridge ones (``crr``, ``wcrr``) run L-BFGS
    (:func:`~adareg.solvers.lbfgs`, projected onto ``bounds``) on the smooth sum
    of the data term and :math:`\lambda R_\sigma`.

    For denoising (``H`` an :class:`~adareg.operators.Identity`, no weights) the
    solution is the prox of :math:`\lambda R` at ``y``, computed directly by the
    regularizer's exact solver (dual FISTA for the :math:`\ell_1`-type
    regularizers) until ``||x - x*|| <= tol ||y||`` is certified by the duality gap.
    Otherwise FISTA runs on the data term with the regularizer's prox as a
    warm-started inner solve, until the relative change falls below ``tol``.

    Parameters
    ----------
    H
        Forward operator.
    y
        Measurements, shape ``H.shape_out`` (or ``batch + H.shape_out``); finite.
    reg
        Regularizer on images of shape ``H.shape_in``.
    lam
        Regularisation weight :math:`\lambda > 0`; required, except for learned
        regularizers in denoising, where it defaults to the trained value.
    sigma
        Noise level (standard deviation, intensities in [0, 1]) for learned
        regularizers; required by them, refused by the others.  Learned models are
        trained on images in [0, 1]: denoising data that reach beyond
        :data:`~adareg.intensities.INTENSITY_LIMIT` in magnitude (e.g. 8-bit values), or peak below
        :data:`~adareg.intensities.INTENSITY_FLOOR` (e.g. 12-bit values read from a 16-bit file), get a warning.
    x0
        Starting point (default: zeros; for denoising ``y``, and unused by the analysis regularizers
        such as TV, whose denoising is one exact prox); a real one of complex images (e.g. a
        magnitude image for ``CartesianMRI(..., real=False)``) starts as complex.
    bounds
        Box ``(lower, upper)`` on ``x``, e.g. ``(0, None)`` or ``(0, 1)``; real images only.
    weights
        Non-negative data weights ``w`` (e.g. inverse noise variances), broadcastable to ``y``:
        an array, or a number (a constant weight ``w`` is the same as ``lam / w`` without weights).
    max_iter, tol, max_time
        Stopping rules; the first that fires ends the run.  Each left ``None``
        takes the default of the algorithm that runs (its ``DEFAULTS``).  For
        denoising with a prox, ``tol`` is the certified relative error
        ``||x - x*|| / ||y||`` and ``max_iter`` caps the dual iterations
        (``adareg.regularizers.base.PROX_DEFAULTS``); for FISTA (``DEFAULTS`` of
        the module ``adareg.solvers.fista``, whose function of the same name hides
        it as an attribute: ``from adareg.solvers.fista import DEFAULTS``), the
        relative change between iterates; for L-BFGS (ridge models, ``DEFAULTS``
        of the module ``adareg.solvers.lbfgs``), the relative length of its last
        three steps; for spatially adaptive regularizers (``DEFAULTS`` of the
        module ``adareg.solvers.reweighting``, ``DENOISING_TOL`` for denoising;
        ``from adareg.solvers.reweighting import DEFAULTS`` as for FISTA),
        the fixed-point residual of the reweighting (what a tighter one buys is
        measured in docs/learned.md) and the reweighting steps.  ``max_time``
        (seconds) applies to every path.  A batch stops when ``tol`` holds for
        each of its images (the largest of their relative measures), so that a
        faint image solved beside bright ones is as converged as alone (on a GPU
        only where their data weights are alike: a batch run as one piece steps
        as its largest weight allows; docs/method.md).  A
        ``tol`` below the working precision's rounding (1.2e-7 in float32, the
        learned models' default) gets a warning: no measure resolves it.
    restart, backtracking
        Passed to :func:`~adareg.solvers.fista` (regularizers with a prox and an
        operator other than denoising's); refused, not ignored, where another
        algorithm runs (as are ``inner_tol`` and ``inner_max_iter`` for denoising
        with a prox and for the ridge models).
    inner_tol, inner_max_iter
        Tolerance and iteration cap of inner solves: the regularizer's prox inside
        FISTA (by default :func:`~adareg.solvers.fista`'s), or each reweighting step (in denoising, by
        default no tolerance and ``reg.step_iterations`` dual iterations, a budget, and
        with ``inner_tol`` up to the prox's ``max_iter``
        (:data:`~adareg.regularizers.base.PROX_DEFAULTS`); otherwise ``inner_max_iter`` dual
        iterations per prox, :data:`~adareg.solvers.reweighting.GENERAL_PROX_ITERATIONS` at first,
        and no ``inner_tol``; see
        :func:`~adareg.solvers.reweighting`).
    precision
        The floating-point precision of the computation, ``"float32"`` or
        ``"float64"`` (or the NumPy type).  By default learned regularizers compute in float32 (their
        parameters are trained in float32, and a float64 solve gives the same
        image to well below the default tolerances at a higher cost), and
        the others in the precision of ``y``.  ``y``, ``x0`` and ``weights`` are
        converted once; the solution is returned in the precision of ``y``.
    callback
        ``callback(k, x_k)`` after each FISTA or L-BFGS iteration or reweighting step, or, for
        denoising with a prox, at each duality-gap check (every 10 dual iterations; ``k`` counts
        them); returning ``True`` stops, not converged.  ``x_k`` is in the working ``precision``.
    progress
        Show a progress bar.

    Returns
    -------
    Result
        ``x`` (in the precision of ``y``), ``converged``, ``iterations`` and ``history``.  The
        history has columns ``iteration, objective, gap, seconds`` for denoising with a prox,
        those of :func:`~adareg.solvers.lbfgs` for the ridge models, of
        :func:`~adareg.solvers.reweighting` for the adaptive ones and of
        :func:`~adareg.solvers.fista` otherwise.

    Raises
    ------
    ValueError
        Where ``lam`` is left out but has no default (a regularizer that is not learned,
        or a learned one off denoising), or ``sigma`` is left out for a learned one.
        Where ``lam`` or the data term's curvature :math:`\max(w) \|H\|^2` lies
        outside ``[tiny / eps, max * eps]`` of the working ``precision`` (about
        1e-31 to 4e31 in float32), or the largest magnitude of ``y`` or ``x0``
        outside ``[sqrt(tiny) / eps, sqrt(max) * eps]`` (about 9e-13 to 2e12 in
        float32), so that the solvers' products, quotients and squares of them
        stay finite: rescale the problem, or compute in float64.

    Warns
    -----
    UserWarning
        With a learned model, where the noisy image (``H`` the identity) or the
        reconstruction (any other ``H``) peaks beyond :data:`~adareg.intensities.INTENSITY_LIMIT`, or
        where one of them that converged peaks, positive, below
        :data:`~adareg.intensities.INTENSITY_FLOOR`, or (``sa-cnn``, whose masks see the intensities)
        has more than :data:`~adareg.intensities.OUTSIDE_SHARE` of its values outside [-0.5, 1.5]:
        off the [0, 1] intensities the models are trained on.  Where ``y`` does
        not look like ``H``'s measurements
        (:meth:`~adareg.operators.LinearOperator.check_measurements`, e.g. k-space
        in numpy.fft's order for a ``CartesianMRI``), where data weights span
        more than :data:`~adareg.diagnostics.WEIGHT_SPREAD`, and where ``y`` and finite ``bounds``
        are on different scales: (denoising) more than :data:`~adareg.diagnostics.OFF_BOX_SHARE` of
        an image of ``y`` (of its pixels of positive weight) lies farther outside
        the box than the box is wide, or (any other ``H``) the data of an image
        pull it back, :math:`\|H^H y_+\|`, more than :data:`~adareg.diagnostics.BEYOND_REACH` times
        harder than any image in the box can.

    Examples
    --------
    Denoising (the exact prox of TV) and deblurring (FISTA) of a small phantom:

    >>> import numpy as np
    >>> import adareg
    >>> from adareg.operators import Blur, Identity
    >>> from adareg.regularizers import TV
    >>> x_true = adareg.data.shepp_logan((64, 64))
    >>> y = x_true + 0.1 * np.random.default_rng(0).standard_normal(x_true.shape)
    >>> result = adareg.solve(Identity(y.shape), y, TV(y.shape), lam=0.08, bounds=(0, 1))
    >>> result.converged
    True
    >>> adareg.psnr(result.x, x_true) > adareg.psnr(y, x_true) + 5
    True
    >>> H = Blur(np.ones((5, 5)) / 25, x_true.shape, boundary="reflect")
    >>> result = adareg.solve(H, H(x_true), TV(x_true.shape), lam=1e-4, bounds=(0, 1))
    >>> result.history.columns[:3]
    ('iteration', 'objective', 'relative_change')
    """
    weights = check_weights(weights, y)
    _check_types(H, reg)
    check_measurements_of(H, y, "solve", nonempty=True)  # (here: its warnings point at solve's caller)
    lam, sigma = _check_arguments(H, y, reg, lam, sigma, x0, weights)
    if weights is not None:
        warn_weight_spread(weights)
    learned = isinstance(reg, LearnedRegularizer)
    off_scale = learned and isinstance(H, Identity) and warn_off_scale(  # denoising: y is an image
        reg, y, len(H.shape_in), "y", "scale y to [0, 1] first (e.g. y / 255 for 8-bit data, y * 65535 / 4095 for a "
        "12-bit image read from a 16-bit file), with sigma likewise, and the result back")
    bounds = check_bounds(bounds)
    if bounds is not None and isinstance(H, Identity):
        if y.dtype.kind == "c":
            raise TypeError("solve: bounds apply to real images, but y is complex")
        if not off_scale:  # (the same mistake, told once)
            warn_outside_bounds(y, bounds, weights, len(H.shape_in))
    numbers = dict(max_iter=max_iter, tol=tol, max_time=max_time, inner_tol=inner_tol, inner_max_iter=inner_max_iter)
    controls = _Controls(**{name: _optional(CONTROL_CHECKS[name], value, f"solve: {name}")
                            for name, value in numbers.items()},
                         restart=checks.flag(restart, "solve: restart"),
                         backtracking=checks.flag(backtracking, "solve: backtracking"),
                         callback=check_callback(callback, "solve: callback"),
                         progress=checks.flag(progress, "solve: progress"))
    work = working_precision(precision, learned, y)
    if controls.tol is not None and 0 < controls.tol < np.finfo(work).eps:
        warnings.warn(f"solve: tol={controls.tol:g} is below {work}'s rounding ({np.finfo(work).eps:.2g}), which no "
                      "relative change or certificate resolves, so a run may report 'converged' short of it: give a "
                      f"larger tol{OR_FLOAT64[work.name]}", stacklevel=2)
    given = backend.real_dtype(y.dtype)
    check_scales(work, H, lam, y, x0, weights)
    y, x0, weights = (None if a is None else a.astype(backend.result_dtype(work, a.dtype), copy=False)
                      for a in (y, x0, weights))
    if x0 is not None and x0.dtype.kind == "f" and _complex_images(H, y):  # else the whole run would stay real
        x0 = x0.astype(backend.result_dtype(work, np.complex64))
    if bounds is not None and not isinstance(H, Identity):  # (after the cast: the solvers reuse the bound of ||H||)
        warn_beyond_reach(H, y, bounds, weights)
    minimised = reg.at(sigma) if isinstance(reg, LearnedRegularizer) else reg
    with caches.reused_buffers():  # the iterations' large temporaries, kept for the solve
        result = _minimise(H, y, minimised, lam, x0, bounds, weights, controls)
    result.x = result.x.astype(backend.result_dtype(given, result.x.dtype), copy=False)
    if learned and not isinstance(H, Identity):  # the image the model saw last (one stopped early may yet grow)
        warn_off_scale(reg, result.x, len(H.shape_in), "the reconstruction", "scale y so that the image lies in "
                       "[0, 1] (the reconstruction scales with its data), with lam for that scale, and the result back",
                       faint=result.converged)
    if result.converged and not isinstance(H, Identity):
        warn_offset(result.x, result.x.ndim - len(H.shape_in))
    return result


#: The checks of :func:`solve`'s numeric controls, by keyword (:func:`adareg.tune` checks its ``solve_options``
#: with them before any solve).
CONTROL_CHECKS = {"max_iter": checks.count, "tol": checks.non_negative, "max_time": checks.positive,
                  "inner_tol": checks.non_negative, "inner_max_iter": checks.count}


@dataclass(frozen=True)
class _Controls:
    """How :func:`solve` was asked to stop and report; ``None`` leaves a value to the algorithm's default."""

    max_iter: int | None
    tol: float | None
    max_time: float | None
    inner_tol: float | None
    inner_max_iter: int | None
    restart: bool
    backtracking: bool
    callback: Callable[[int, Array], Any] | None
    progress: bool


def _minimise(H: LinearOperator, y: Array, minimised: Any, lam: float, x0: Array | None, bounds: Bounds | None,
              weights: Array | None, c: _Controls) -> Result:
    """Run the algorithm that the regularizer ``minimised`` declares (its ``minimisation``) on checked arguments."""
    if minimised.minimisation not in MINIMISATIONS:  # any other would run FISTA on its prox, unasked
        raise ValueError(f"solve: {type(minimised).__name__}.minimisation must be one of "
                         f"{', '.join(map(repr, MINIMISATIONS))} (how solve minimises it), got "
                         f"{minimised.minimisation!r}")
    denoising = is_denoising(H, weights)
    if minimised.minimisation == "reweighting":
        _refuse_unused(c, ("inner_tol", "inner_max_iter"), "the reweighting of the adaptive models")
        return reweighting(H, y, minimised, lam=lam, x0=x0, weights=weights, bounds=bounds, max_iter=c.max_iter,
                           tol=c.tol, max_time=c.max_time, inner_tol=c.inner_tol, inner_max_iter=c.inner_max_iter,
                           callback=c.callback, progress=c.progress)
    if denoising and minimised.minimisation == "prox":
        _refuse_unused(c, (), "denoising, an exact prox (its stop: tol, max_iter)")
        return _denoise(y, minimised, lam, bounds, c)
    data = LeastSquares(H, y, weights)
    x0 = _start(H, y, x0, denoising, bounds)
    batch_ndim = y.ndim - len(H.shape_out)

    if minimised.minimisation == "smooth":  # L-BFGS on E + lam R_sigma, projected onto the box
        _refuse_unused(c, (), "the ridge models, which run L-BFGS")
        if isinstance(minimised, RidgeObjective):
            warn_unbounded(minimised.ridge, denoising, bounds)
        regularizer = lam * minimised.lipschitz(H.shape_in)
        warn_curvature_ratio(data.lipschitz, regularizer)
        smooth = objective_in_chunks(
            data, lambda data: SmoothSum([(1.0, data), (lam, minimised)], data.lipschitz + regularizer), minimised)
        return lbfgs(smooth, x0, bounds=bounds, stop=LBFGS_DEFAULTS.rule(c.max_iter, c.tol, c.max_time),
                     batch_ndim=batch_ndim, precision=H.precision, callback=c.callback, progress=c.progress)
    return fista(objective_in_chunks(data, lambda data: data, minimised), x0, reg=minimised, lam=lam, bounds=bounds,
                 stop=FISTA_DEFAULTS.rule(c.max_iter, c.tol, c.max_time), restart=c.restart, batch_ndim=batch_ndim,
                 backtracking=c.backtracking, callback=c.callback, progress=c.progress,
                 **_given(inner_tol=c.inner_tol, inner_max_iter=c.inner_max_iter))


def _refuse_unused(c: _Controls, taken: tuple[str, ...], algorithm: str) -> None:
    """A ``ValueError`` for options of FISTA or of inner solves given to an ``algorithm`` that takes none of them
    but ``taken``: such an option is refused, not ignored."""
    given = {"restart": not c.restart, "backtracking": c.backtracking, "inner_tol": c.inner_tol is not None,
             "inner_max_iter": c.inner_max_iter is not None}
    unused = [f"{name}={getattr(c, name)!r}" for name, on in given.items() if on and name not in taken]
    if unused:
        raise ValueError(f"solve: {', '.join(unused)}: not used by {algorithm}; restart and backtracking apply to "
                         "FISTA (a regularizer with a prox, an operator other than denoising's), inner_tol and "
                         "inner_max_iter to its prox and to the reweighting")


def _start(H: LinearOperator, y: Array, x0: Array | None, denoising: bool, bounds: Bounds | None) -> Array:
    """The starting image: ``x0``, else ``y`` for denoising and zeros of the image's dtype otherwise."""
    if x0 is None:
        x0 = y if denoising else zero_image(H, y)
    if bounds is not None and x0.dtype.kind == "c":
        raise TypeError("solve: bounds apply to real images, but the image is complex")
    return x0


def _check_each_image_weighted(weights: Array, y: Array, batch: tuple[int, ...]) -> None:
    """Refuse data ``weights`` that vanish over one image of the batch: nothing would tie it to its data."""
    xp = backend.namespace(y)
    weighted = xp.any(xp.broadcast_to(weights, y.shape) > 0, axis=tuple(range(len(batch), y.ndim)))
    if not bool(xp.all(weighted)):
        first = int(xp.argmin(xp.reshape(weighted, (-1,))))
        index = tuple(int(i) for i in np.unravel_index(first, batch))
        raise ValueError(f"solve: weights are zero over all of {checks.image_of_batch(index)} of shape {batch}: the "
                         f"data term vanishes there and nothing ties it to y")


def _complex_images(H: LinearOperator, y: Array) -> bool:
    """Whether the images of ``H`` with measurements ``y`` are complex (a complex ``y`` or ``H``, unless ``H``
    takes real images)."""
    return not H.real_in and (y.dtype.kind == "c" or H.dtype.kind == "c")


def _check_types(H: Any, reg: Any) -> None:
    """Refuse an ``H`` that is not a :class:`~adareg.operators.LinearOperator`, then a ``reg`` that is not a
    :class:`~adareg.regularizers.Regularizer` or a learned model (:func:`solve`'s first checks)."""
    check_operator(H, "solve")
    if not isinstance(reg, (Regularizer, LearnedRegularizer)):
        bound = " (a learned model at one noise level, from its at(sigma): give the model and sigma=... instead)"
        raise TypeError(f"solve: reg must be a Regularizer, got {type(reg).__name__}"
                        + (bound if hasattr(reg, "minimisation") else ""))


def _check_arguments(H: LinearOperator, y: Array, reg: Regularizer | LearnedRegularizer, lam: Any, sigma: Any,
                     x0: Array | None, weights: Array | None) -> tuple[float, float | None]:
    """Check the rest of what :func:`solve` was given (after :func:`_check_types` and the measurements' checks);
    return ``lam`` (the trained one where it defaults) and ``sigma``."""
    # the images are complex where y or H is, unless H takes real images (e.g. CartesianMRI(real=True))
    complex_images = _complex_images(H, y)
    batch = batch_shape(y, H.shape_out)
    if weights is not None and batch:
        _check_each_image_weighted(weights, y, batch)
    if x0 is not None:
        backend.check_array(x0, H.shape_in, "solve: x0")
        check_start_shape(x0, H, y, "solve")  # y's batch axes, one image each
        backend.check_finite(x0, "solve: x0")
        if x0.dtype.kind == "c" and not complex_images:
            why = "it takes real images" if H.real_in else f"it and y ({y.dtype}) are real"
            raise TypeError(f"solve: x0 is complex ({x0.dtype}) but the images of {H!r} are real ({why}); pass a "
                            "real x0 (e.g. its real part or magnitude)")
    learned = isinstance(reg, LearnedRegularizer)
    if learned and complex_images:
        raise TypeError(f"solve: {reg.family} acts on real images, but those of {H!r} with y of dtype {y.dtype} "
                        "are complex (for MRI, CartesianMRI(..., real=True) takes real images)")
    if learned and len(H.shape_in) != 2:
        raise ValueError(f"solve: {reg.family} acts on 2D images but {H!r} takes shape {H.shape_in} (for a stack "
                         "of images, give the operator of one image: its leading axes are batch axes)")
    if not learned and sigma is not None:
        raise ValueError(f"solve: sigma is a parameter of learned regularizers only; {type(reg).__name__} has "
                         "none (its strength is lam)")
    if not learned and reg.shape != H.shape_in:
        raise ValueError(f"solve: reg acts on images of shape {reg.shape} but {H!r} takes shape {H.shape_in}")
    if not learned:
        reg.check_batch(batch, "solve", "y")
    if learned:
        if sigma is None:
            raise ValueError(f"solve: the learned regularizer {reg.family} needs the noise level sigma")
        sigma = reg.check_sigma(checks.real_number(sigma, "solve: sigma"))
        if lam is None:
            lam = _default_lam(H, reg, sigma, weights)
    elif lam is None:
        raise ValueError(f"solve: lam is required for {type(reg).__name__}: only the learned models have a "
                         "default (their trained value, for denoising)")
    return checks.positive(lam, "solve: lam"), sigma


def _default_lam(H: LinearOperator, reg: LearnedRegularizer, sigma: float, weights: Array | None) -> float:
    r"""The trained :math:`\lambda(\sigma)` of ``reg`` at the checked ``sigma``, which :func:`solve` takes where
    ``lam`` is left out; a ``ValueError`` where it does not hold (it is trained for denoising,
    :math:`\tfrac12 \|x - y\|^2`, without data weights) or is not positive."""
    if isinstance(H, Identity) and weights is not None:
        raise ValueError(f"solve: lam is required with data weights; the trained lam(sigma) of {reg.family} "
                         "holds for 1/2 ||x - y||^2 without them (a single weight w with lam = w * "
                         "reg.lam(sigma) gives the same minimiser)")
    if not is_denoising(H, weights):
        raise ValueError(f"solve: lam is required for {H!r}; the trained value holds for denoising "
                         "only (adareg.tune finds one for your operator)")
    lam = reg.lam(sigma)
    if not lam > 0:  # e.g. a file whose lambda(sigma) is 0 at sigma 0: "lam must be positive" misled
        raise ValueError(f"solve: the trained lam(sigma) of {reg.family} is {lam:g} at sigma = {sigma:g} "
                         f"({sigma * 255:.3g}/255): the model does not regularise there (its denoiser "
                         "returns y); give lam, or a larger sigma")
    return lam


def _optional(check: Callable[[Any, str], Any], value: Any, name: str) -> Any:
    """``check(value, name)``, or ``None`` for an argument left to its default."""
    return None if value is None else check(value, name)


def _given(**options: Any) -> dict[str, Any]:
    """The options that are not ``None``: the others keep the called function's defaults."""
    return {name: value for name, value in options.items() if value is not None}


def _denoise(y: Array, reg: Regularizer, lam: float, bounds: Bounds | None, c: _Controls) -> Result:
    """``prox_{lam R}(y)``: the exact denoising solution."""
    history = History("iteration", "objective", "gap", "seconds")
    start = time.perf_counter()
    out = reg.prox(y, lam, bounds=bounds, record=history.append, progress=c.progress, max_time=c.max_time,
                   callback=c.callback, **_given(tol=c.tol, max_iter=c.max_iter))
    check_prox_result(reg, out, y, bounds, "solve")
    seconds = time.perf_counter() - start
    timed_out = c.max_time is not None and seconds >= c.max_time
    message = (f"duality gap {out.gap:.3g} certifies the tolerance after {out.iterations} iterations "
               f"({seconds:.2f} s)" if out.converged else
               f"stopped {f'by max_time ({c.max_time:g} s) ' if timed_out else ''}after {out.iterations} iterations "
               f"with duality gap {out.gap:.3g}, not converged")
    return Result(x=out.x, converged=out.converged, iterations=out.iterations, history=history, message=message)
