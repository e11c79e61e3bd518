"""The intensity scale of adareg's images, [0, 1], and the tests that tell data on another scale.

The learned models are trained on images with intensities in [0, 1] (and noise levels
on that scale), and the image writers and the noise protocol take that range; data in
other units (8-bit or 16-bit values, scanner units) give wrong results without an error.
The readers, the writers, :func:`adareg.solve` and the training package share these
thresholds, so that one rule tells another scale everywhere.
"""

from __future__ import annotations

import numpy as np

from . import backend
from .backend import Array

#: For a learned model, a noisy image (denoising) or a reconstruction beyond this magnitude is taken to be on
#: another intensity scale than the models' [0, 1]: a [0, 1] image with noise of sigma <= 30/255 stays far
#: inside it.
INTENSITY_LIMIT = 4.0
#: ... and data whose peak is positive and below this, on a much smaller scale (e.g. a 12-bit image in a
#: 16-bit file, whose values read as fractions of 65535 peak at 0.0625): a [0, 1] image with a visible
#: bright part reaches beyond it.
INTENSITY_FLOOR = 0.1
#: ... and more than this share of the values more than half the span beyond [0, 1], i.e. outside
#: [-0.5, 1.5] (:func:`far_outside`): noise of sigma <= 30/255 puts a pixel there with probability ~1e-5.
OUTSIDE_SHARE = 0.01


def far_outside(image: Array, low: float = 0.0, high: float = 1.0) -> int:
    """How many values of the real ``image`` lie more than half the span beyond ``[low, high]`` (by default
    outside [-0.5, 1.5]) where more than :data:`OUTSIDE_SHARE` of them do (another intensity scale), else 0."""
    outside = int(outside_counts(image, image.ndim, low, high))
    return outside if outside > OUTSIDE_SHARE * image.size else 0


def clipped_on_writing(image: np.ndarray, bits: int) -> int:
    """How many values of the real ``image`` lie beyond [0, 1] by more than one grey level of a ``bits``-bit output
    (``1 / (2**bits - 1)``), which clipping to [0, 1] changes visibly, where more than :data:`OUTSIDE_SHARE` of them
    do, else 0."""
    step = 1.0 / (2**bits - 1)
    clipped = int(np.count_nonzero((image < -step) | (image > 1.0 + step)))
    return clipped if clipped > OUTSIDE_SHARE * image.size else 0


def outside_counts(images: Array, image_ndim: int, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """How many values of each image of ``images`` (its ``image_ndim`` trailing axes; the leading ones a batch)
    lie more than half the span beyond ``[low, high]``: a host array of the batch's shape."""
    xp = backend.namespace(images)
    margin = 0.5 * (high - low)
    axes = tuple(range(images.ndim - image_ndim, images.ndim))
    return backend.to_numpy(xp.count_nonzero((images < low - margin) | (images > high + margin), axis=axes))
