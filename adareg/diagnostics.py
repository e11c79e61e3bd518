"""The heuristics behind :func:`adareg.solve`'s warnings, and their thresholds.

Each tells a problem that a solve would answer without an error but wrongly: data on
another scale than the learned models' [0, 1] intensities or than ``bounds`` (the result
is then clipped to the box), and problems on which the stops on the relative change can
end far from the minimiser (data weights over decades, a large constant offset, a
regularizer's curvature that dwarfs the data term's), or a ridge objective that may have
no minimiser.  The warnings name ``solve``, whose caller they point at.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from . import backend, checks
from .backend import Array
from .functionals import LeastSquares
from .intensities import INTENSITY_FLOOR, INTENSITY_LIMIT, OUTSIDE_SHARE, outside_counts
from .operators.base import LinearOperator, zero_image
from .regularizers.base import Bounds
from .regularizers.learned import LearnedRegularizer
from .regularizers.ridge import Ridge

#: Data weights whose positive values span more than this factor get a warning; the stops on the relative
#: change (FISTA, L-BFGS, the reweighting) follow the largest weight and can end far from the minimiser.
WEIGHT_SPREAD = 1e3
#: The ridge models' ``lam R`` whose curvature exceeds the data term's by more than this factor gets a warning:
#: L-BFGS's steps, of the larger curvature's scale, move the part of x that only the data term fixes (e.g. the
#: mean, which the filters ignore) by so little that the stop on the relative change, or the rounding of a
#: float32 x, ends the run far from the minimiser (the examples' presets are near 1).
CURVATURE_RATIO = 1e4
#: A converged solve for a general ``H`` whose image varies about its mean by less than this share of its norm
#: (a large constant offset) gets a warning: the stops on the relative change, ``||x_k+1 - x_k|| <= tol ||x_k||``,
#: then allow moves of the image's structure that many times larger than ``tol`` says.
OFFSET_SHARE = 1 / 30
#: A noisy image (denoising) of which more than this share lies farther outside finite ``bounds`` than the box is
#: wide gets a warning: noise cannot put it there, so the image and the box are on different scales (e.g. 8-bit
#: values with ``bounds=(0, 1)``), and the result is mostly clipped to the box.
OFF_BOX_SHARE = 0.01
#: Measurements (a general ``H``) whose pull on an image, ``||H^H y||``, is more than this many times what any
#: image in finite ``bounds`` pulls back get a warning: noise on data of the box's scale stays far below that, so
#: the data and the box are on different scales (e.g. a blurred 8-bit image with ``bounds=(0, 1)``), and the
#: result is clipped to the box.
BEYOND_REACH = 2.0


def intensity_mismatch(reg: LearnedRegularizer, image: Array, image_ndim: int, faint: bool = True) -> str | None:
    """How an image of ``image`` (its ``image_ndim`` trailing axes; the leading ones a batch) lies off the [0, 1]
    intensities the learned models are trained on, else ``None``: a peak magnitude beyond
    :data:`~adareg.intensities.INTENSITY_LIMIT`, or (where ``faint``) positive and below
    :data:`~adareg.intensities.INTENSITY_FLOOR`, or for a model that sees the intensities themselves more than
    :data:`~adareg.intensities.OUTSIDE_SHARE` of its values outside [-0.5, 1.5].  Each image of a batch is judged
    on its own (one faint image beside a bright one is not seen in the batch's peak); the first found is named by
    its index, with the count of the others."""
    peaks = backend.peaks(image, image_ndim)
    outside = outside_counts(image, image_ndim) if reg.sees_intensities else np.zeros(peaks.shape, dtype=int)
    size = math.prod(image.shape[image.ndim - image_ndim:])
    trained = f"but {reg.family} is trained on intensities in [0, 1] (and sigma on that scale)"
    found = []
    for index in np.ndindex(peaks.shape):
        peak = float(peaks[index])
        if peak > INTENSITY_LIMIT:
            found.append((index, f"reaches {peak:.4g}, {trained}"))
        elif faint and 0 < peak < INTENSITY_FLOOR:
            found.append((index, f"peaks at {peak:.4g}, {trained}, where it takes such faint structure for noise"))
        elif outside[index] > OUTSIDE_SHARE * size:  # a shifted image, which such a model's masks misread
            found.append((index, f"has {100 * outside[index] / size:.3g} % of its values outside [-0.5, 1.5], "
                                 f"{trained}, and its masks see the intensities themselves"))
    if not found:
        return None
    index, mismatch = found[0]
    if not index:  # one image
        return mismatch
    others = f", and {len(found) - 1} more" if len(found) > 1 else ""
    return f"({checks.image_of_batch(index)}{others}) {mismatch}"


def warn_off_scale(reg: LearnedRegularizer, image: Array, image_ndim: int, what: str, advice: str,
                   faint: bool = True) -> bool:
    """Warn, naming ``what`` and giving ``advice``, where an image of ``image`` (its ``image_ndim`` trailing axes)
    lies off the learned models' intensities (:func:`intensity_mismatch`); return whether it warned."""
    mismatch = intensity_mismatch(reg, image, image_ndim, faint)
    if mismatch is not None:
        warnings.warn(f"solve: {what} {mismatch}: {advice}", stacklevel=3)
    return mismatch is not None


def warn_outside_bounds(y: Array, bounds: Bounds, weights: Array | None, image_ndim: int) -> None:
    """Warn where, in an image of the noisy batch ``y``, more than :data:`OFF_BOX_SHARE` of the pixels of positive
    weight lie farther outside ``bounds`` than the box is wide (one 8-bit image among a hundred [0, 1] ones, say;
    pixels of weight 0, such as an inpainting's placeholders, are not data)."""
    lower, upper = bounds
    if lower is None or upper is None or not 0 < upper - lower < math.inf:
        return
    xp = backend.namespace(y)
    width = upper - lower
    off = (y < lower - width) | (y > upper + width)
    axes = tuple(range(y.ndim - image_ndim, y.ndim))
    data = xp.ones(y.shape, dtype=bool) if weights is None else xp.broadcast_to(weights > 0, y.shape)
    shares = xp.sum(off & data, axis=axes) / xp.maximum(xp.sum(data, axis=axes), 1)
    share = float(xp.max(shares))
    if share > OFF_BOX_SHARE:
        which = "an image of y" if y.ndim > image_ndim else "y"
        values = y[data]  # of positive weight
        warnings.warn(f"solve: {share:.1%} of {which} lies farther outside bounds=({lower:g}, {upper:g}) than the box "
                      f"is wide (y spans [{float(xp.min(values)):.4g}, {float(xp.max(values)):.4g}] where it is "
                      "weighted), which only noise of a "
                      "deviation near the box's width would explain, and the result will be clipped to the box: give "
                      "y on the bounds' scale (e.g. y / 255 for 8-bit data) or bounds on y's", stacklevel=3)


def warn_beyond_reach(H: LinearOperator, y: Array, bounds: Bounds, weights: Array | None) -> None:
    r"""Warn where the data of an image pull more than :data:`BEYOND_REACH` times harder than any image in finite
    ``bounds`` can answer: for ``x`` in :math:`[l, u]^n`,
    :math:`\|H^H H x\| \le \|H\|^2 \max(|l|, |u|) \sqrt{n}`, against the pull :math:`\|H^H y_+\|` of ``y``'s
    data (``y_+``: its entries of positive weight; what ``H`` or the weights ignore, such as an inpainting's
    placeholders, does not pull; the weights' sizes are left out, as a scan's anti-correlate with its data)."""
    lower, upper = bounds
    if lower is None or upper is None:
        return
    reach = H.norm_bound(like=y) ** 2 * max(abs(lower), abs(upper)) * math.sqrt(math.prod(H.shape_in))
    if not reach > 0:  # a box of one point, x = 0: nothing to clip
        return
    xp = backend.namespace(y)
    data = LeastSquares(H, y, None if weights is None else weights > 0)
    pull = data.grad_of_forward(xp.zeros_like(y), zero_image(H, y))  # -H^H y_+, real for real images
    axes = tuple(range(pull.ndim - len(H.shape_in), pull.ndim))
    largest = float(xp.max(xp.linalg.vector_norm(pull, axis=axes)))
    if largest > BEYOND_REACH * reach:
        which = "an image of y" if y.ndim > len(H.shape_out) else "y"
        warnings.warn(f"solve: {which} lies beyond what H makes of any image in bounds=({lower:g}, {upper:g}): "
                      f"its data pull back by ||H^H y|| = {largest:.4g}, {largest / reach:.3g} times the most that an "
                      f"image x in the box does, ||H^H H x|| <= ||H||^2 max(|lower|, |upper|) sqrt(pixels) = "
                      f"{reach:.4g}, so the result will be clipped to the box: give y on the bounds' scale (e.g. "
                      "y / 255 for 8-bit data) or bounds on y's", stacklevel=3)


def warn_weight_spread(weights: Array) -> None:
    """Warn where the positive data weights span more than :data:`WEIGHT_SPREAD` (docs/method.md, "General
    forward operators")."""
    xp = backend.namespace(weights)
    positive = weights[weights > 0]
    spread = float(xp.max(positive)) / float(xp.min(positive))
    if spread > WEIGHT_SPREAD:
        warnings.warn(f"solve: the data weights span a factor {spread:.3g}; the step follows the largest, so the stop "
                      "on the relative change can end far from the minimiser: clip the largest weights, or check "
                      "the result against a smaller tol", stacklevel=3)


def warn_offset(x: Array, batch_ndim: int) -> None:
    """Warn where an image of ``x`` varies about its mean by less than :data:`OFFSET_SHARE` of its norm."""
    xp = backend.namespace(x)
    axes = tuple(range(batch_ndim, x.ndim))
    variation = xp.linalg.vector_norm(x - xp.mean(x, axis=axes, keepdims=True), axis=axes)
    if bool(xp.any(variation < OFFSET_SHARE * xp.linalg.vector_norm(x, axis=axes))):
        warnings.warn(f"solve: the image is mostly a constant offset (it varies about its mean by less than "
                      f"{OFFSET_SHARE:.2g} of its norm), and the stop on the relative change, measured against that "
                      "norm, can end far from the minimiser: subtract the offset first (y - H(c) for the constant "
                      "image c), or check the result against a smaller tol; where the data hold no offset, lam "
                      "flattened the image: it is too large for the data's scale (lam scales with the data)",
                      stacklevel=3)


def warn_curvature_ratio(data: float, regularizer: float) -> None:
    """Warn where ``lam R``'s curvature bound exceeds the data term's by more than :data:`CURVATURE_RATIO`."""
    ratio = regularizer / data
    if ratio > CURVATURE_RATIO:
        warnings.warn(f"solve: lam's curvature is {ratio:.3g} times the data term's: the steps barely move what "
                      "only the data fix (e.g. the image's mean), and the run can stop far from the minimiser; "
                      "lower lam, or check the result with a smaller tol", stacklevel=4)


def warn_unbounded(reg: Ridge, denoising: bool, bounds: Bounds | None) -> None:
    """Warn where a ridge objective may have no minimiser: unbounded potentials, a null space, no compact box."""
    compact = bounds is not None and all(b is not None and math.isfinite(b) for b in bounds)
    if not denoising and not reg.bounded_below and not compact:
        warnings.warn(f"solve: this {reg.family} has potentials that are unbounded below, so with an H that has "
                      "a null space the objective has no minimiser and the iterates drift; pass finite bounds, or "
                      "use a file trained with bounded ends (adareg_train, every shipped file)", stacklevel=4)
