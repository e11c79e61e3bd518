"""Image quality: PSNR and SSIM, and fastMRI's NMSE, volume PSNR and volume SSIM, on NumPy or CuPy arrays."""

from __future__ import annotations

import math
import warnings
from typing import Any

from . import backend, checks
from .backend import Array


def _check_pair(x: Array, reference: Array, name: str) -> None:
    for what, a in (("x", x), ("reference", reference)):
        if not backend.is_array(a):
            raise TypeError(f"{name}: {what} must be a NumPy or CuPy array, got {type(a).__name__}")
        backend.check_plain(a, f"{name}: {what}")
    if tuple(x.shape) != tuple(reference.shape):
        raise ValueError(f"{name}: x has shape {tuple(x.shape)} but reference has shape {tuple(reference.shape)}")
    if x.dtype.kind == "c" or reference.dtype.kind == "c":
        raise TypeError(f"{name}: complex images are not supported; compare magnitudes, e.g. abs(x)")
    for what, a in (("x", x), ("reference", reference)):
        if a.dtype.kind not in "iuf":  # bool (a mask?), object, strings, dates
            raise TypeError(f"{name}: {what} has dtype {a.dtype}; expected real intensities (integer or "
                            f"floating-point), e.g. {what}.astype(float)")
    if x.size == 0:
        raise ValueError(f"{name}: the images are empty (shape {tuple(x.shape)})")
    backend.check_finite(x, f"{name}: x")
    backend.check_finite(reference, f"{name}: reference")


def _check_range(x: Array, reference: Array, data_range: Any, name: str) -> float:
    """``data_range`` checked (positive), with a warning where the reference spans more than twice it, or ``x``
    (which noise and artefacts may stretch) more than ten times, or where a reference that is not constant spans
    less than a fiftieth of it (e.g. intensities in [0, 1] with ``data_range=255``, which adds 48 dB)."""
    data_range = checks.positive(data_range, f"{name}: data_range")
    spans = [float(xp.max(a)) - float(xp.min(a))  # in float64: no integer overflow
             for a, xp in ((reference, backend.namespace(reference)), (x, backend.namespace(x)))]
    if 0 < spans[0] < data_range / 50:
        warnings.warn(f"{name}: the reference spans only {spans[0]:.4g}, less than a fiftieth of data_range = "
                      f"{data_range:g}; put both arrays on one scale and give its data range (e.g. data_range=1 for "
                      "intensities in [0, 1])", stacklevel=3)
    for what, span, factor, words in (("the reference", spans[0], 2, "twice"), ("x", spans[1], 10, "ten times")):
        if span > factor * data_range:
            warnings.warn(f"{name}: {what} spans {span:.4g}, more than {words} data_range = {data_range:g}; "
                          "put both arrays on one scale and give its data range (e.g. data_range=255 for 8-bit "
                          "values)", stacklevel=3)
            break
    return data_range


def psnr(x: Array, reference: Array, data_range: float = 1.0) -> float:
    r"""Peak signal-to-noise ratio in dB, over the whole array.

    .. math:: \mathrm{PSNR} = 10 \log_{10} \frac{\mathrm{range}^2}{\mathrm{mean}\,(x - x_{\mathrm{ref}})^2}

    ``inf`` for identical arrays.  ``data_range`` must be positive; a reference that spans
    more than twice it, or an ``x`` more than ten times, gets a warning (another intensity
    scale, e.g. 8-bit values with the default range 1), and so does a reference that is not
    constant but spans less than a fiftieth of it (e.g. ``data_range=255`` for [0, 1]
    images).  Both arrays must be non-empty, finite and real (integer or floating-point;
    bool is refused); everything is computed in float64.

    Examples
    --------
    >>> import numpy as np
    >>> from adareg.metrics import psnr
    >>> reference = np.zeros((8, 8))
    >>> psnr(reference + 0.1, reference)  # mean squared error 0.01, range 1
    20.0
    >>> psnr(reference, reference)
    inf
    """
    _check_pair(x, reference, "psnr")
    return _psnr(x, reference, _check_range(x, reference, data_range, "psnr"))


def _psnr(x: Array, reference: Array, data_range: float) -> float:
    """:func:`psnr` of checked arrays, in float64 and in units of ``data_range`` (so that no square of a value
    over- or underflows where the PSNR itself is a moderate number)."""
    xp = backend.namespace(x, reference)
    diff = xp.astype(x, xp.float64) / data_range - xp.astype(reference, xp.float64) / data_range
    mse = float(xp.mean(diff * diff))
    return math.inf if mse == 0 else -10.0 * math.log10(mse)


def ssim(x: Array, reference: Array, data_range: float = 1.0, sigma: float = 1.5) -> float:
    r"""Structural similarity of two grey images (Wang et al., 2004), averaged over the image.

    Local statistics use a Gaussian window of standard deviation ``sigma``
    (truncated at 3.5 sigma, image mirrored at the border):

    .. math::

        \mathrm{SSIM} = \frac{(2 \mu_x \mu_r + C_1)(2 \sigma_{xr} + C_2)}
                             {(\mu_x^2 + \mu_r^2 + C_1)(\sigma_x^2 + \sigma_r^2 + C_2)},
        \qquad C_1 = (0.01 R)^2, \; C_2 = (0.03 R)^2

    The map is averaged away from a border of half the window width, where
    the window would reach outside the image.  These are the settings of the
    original paper (and of ``skimage.metrics.structural_similarity`` with
    ``gaussian_weights=True, use_sample_covariance=False``).  Leading axes are
    batch axes; the mean runs over all of them (colour channels last, a last axis of at
    most 4 entries after a longer one, are refused).  ``data_range`` is checked as in
    :func:`psnr`.

    Examples
    --------
    >>> import numpy as np
    >>> from adareg.data import shepp_logan
    >>> from adareg.metrics import ssim
    >>> x = shepp_logan((64, 64))
    >>> ssim(x, x)
    1.0
    >>> noisy = x + 0.1 * np.random.default_rng(0).standard_normal(x.shape)
    >>> round(ssim(noisy, x), 2)
    0.48
    """
    _check_pair(x, reference, "ssim")
    data_range = _check_range(x, reference, data_range, "ssim")
    sigma = checks.positive(sigma, "ssim: sigma")
    if x.ndim < 2:
        raise ValueError(f"ssim: images must have at least 2 axes, got shape {tuple(x.shape)}")
    if x.ndim >= 3 and x.shape[-1] <= 4 < x.shape[-2]:  # its window would blur across the colours
        raise ValueError(f"ssim: images of shape {tuple(x.shape)} look like colour channels last (H, W, "
                         f"{x.shape[-1]}); ssim takes grey images in the last two axes (leading axes are batch "
                         "axes): move the channels first, numpy.moveaxis(x, -1, 0), for their mean")
    xp = backend.namespace(x, reference)
    nd = backend.ndimage(x)
    truncate = 3.5
    radius = int(truncate * sigma + 0.5)
    sigmas = (0,) * (x.ndim - 2) + (sigma, sigma)

    def blur(a: Array) -> Array:
        return nd.gaussian_filter(a, sigmas, mode="reflect", truncate=truncate)

    a = xp.astype(x, xp.float64) / data_range  # in units of the range, whose squares neither over- nor underflow
    b = xp.astype(reference, xp.float64) / data_range
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    inner = index[..., radius : index.shape[-2] - radius, radius : index.shape[-1] - radius]
    if inner.size == 0:
        raise ValueError(f"ssim: images of shape {tuple(x.shape[-2:])} (the last two axes of {tuple(x.shape)}; "
                         f"leading axes are batch axes) are smaller than the {2 * radius + 1}-pixel window")
    return float(xp.mean(inner))


# ------------------------------------------------------------------------------- fastMRI's conventions
# The three metrics of fastMRI's evaluation (fastmri/evaluate.py), so that numbers compare with
# the published ones: per volume, data range = the reference volume's maximum.


def _volume_range(reference: Array, name: str, data_range: float | None) -> float:
    """The data range of fastMRI's PSNR and SSIM: ``data_range`` where given (checked), else the reference's
    maximum.

    A given range is the whole volume's maximum: a warning where the reference's maximum exceeds it (beyond
    float32 rounding), or falls below a fiftieth of it (another intensity scale, e.g. ``data_range=1`` for
    fastMRI's scanner units of about 1e-4).
    """
    xp = backend.namespace(reference)
    largest = float(xp.max(reference))
    if data_range is not None:
        data_range = checks.positive(data_range, f"{name}: data_range")
        if largest > data_range * (1 + 1e-6) or 0 < largest < data_range / 50:
            warnings.warn(f"{name}: the reference's maximum is {largest:.4g}, but data_range = {data_range:g} "
                          "should be the whole volume's maximum (a fastMRI file's 'max' attribute), at least the "
                          "slices' own; put both on one scale or leave data_range out", stacklevel=3)
        return data_range
    data_range = largest
    if not data_range > 0:
        raise ValueError(f"{name}: the reference's maximum is {data_range:g}; fastMRI's data range is that maximum, "
                         "so it must be positive (magnitude images)")
    return data_range


def nmse(x: Array, reference: Array) -> float:
    r"""Normalised mean squared error over the whole array, as fastMRI reports it.

    .. math:: \mathrm{NMSE} = \frac{\|x - x_{\mathrm{ref}}\|_2^2}{\|x_{\mathrm{ref}}\|_2^2}

    (fastMRI's ``evaluate.nmse``; lower is better, 0 for identical arrays).

    Examples
    --------
    >>> import numpy as np
    >>> from adareg.metrics import nmse
    >>> reference = np.ones((4, 4))
    >>> nmse(1.5 * reference, reference)  # error 0.5 everywhere, relative energy 0.25
    0.25
    """
    _check_pair(x, reference, "nmse")
    xp = backend.namespace(x, reference)
    a = xp.astype(x, xp.float64)
    b = xp.astype(reference, xp.float64)
    energy = float(xp.sum(b * b))
    if energy == 0:
        raise ValueError("nmse: the reference is zero everywhere; NMSE divides by its energy")
    diff = a - b
    return float(xp.sum(diff * diff)) / energy


def volume_psnr(x: Array, reference: Array, data_range: float | None = None) -> float:
    r"""fastMRI's PSNR of a volume in dB: one MSE over the whole volume, data range its maximum.

    .. math::

        \mathrm{PSNR} = 10 \log_{10} \frac{\max(x_{\mathrm{ref}})^2}{\mathrm{mean}\,(x - x_{\mathrm{ref}})^2}

    with the maximum and the mean over every voxel of the volume (fastMRI's
    ``evaluate.psnr``, which calls ``skimage.metrics.peak_signal_noise_ratio(gt, pred,
    data_range=gt.max())``).  Compare with :func:`psnr`, whose data range is given.
    ``inf`` for identical arrays.  ``data_range``, where ``reference`` holds some slices of
    a volume, is the whole volume's maximum (a fastMRI file's ``max`` attribute), so that
    the figures do not depend on the slices chosen; by default the reference's maximum.
    A given range that is below the reference's maximum, or more than 50 times it (another
    intensity scale), gets a warning.

    Raises
    ------
    ValueError
        Shapes differ, non-finite values, or a reference whose maximum is not positive.
    """
    _check_pair(x, reference, "volume_psnr")
    return _psnr(x, reference, _volume_range(reference, "volume_psnr", data_range))


#: The window width and constants of fastMRI's SSIM (scikit-image's defaults).
_WINDOW, _K1, _K2 = 7, 0.01, 0.03


def volume_ssim(x: Array, reference: Array, data_range: float | None = None) -> float:
    r"""fastMRI's SSIM of a volume ``(slices, H, W)``: per-slice SSIM with data range the volume's maximum, averaged.

    Each slice is compared with the settings of ``skimage.metrics.structural_similarity``'s
    defaults, which fastMRI's ``evaluate.ssim`` uses: local means, variances and covariance
    over a 7 x 7 uniform window (:math:`N = 49` pixels), the variances and covariance
    with the sample normalisation :math:`N / (N - 1)`,

    .. math::

        \mathrm{SSIM} = \frac{(2 \mu_x \mu_r + C_1)(2 \sigma_{xr} + C_2)}
                             {(\mu_x^2 + \mu_r^2 + C_1)(\sigma_x^2 + \sigma_r^2 + C_2)},
        \qquad C_1 = (0.01 R)^2, \; C_2 = (0.03 R)^2,

    with :math:`R = \max(x_{\mathrm{ref}})` over the *whole volume*; the map is averaged
    over each slice without a border of 3 pixels (where the window leaves the slice), and
    the slices' values are averaged.  Computed in float64 (scikit-image keeps float32
    inputs in float32, which can differ in the 6th digit), with ``scipy.ndimage`` on NumPy
    and ``cupyx.scipy.ndimage`` on CuPy (:func:`adareg.backend.ndimage`).  Compare with
    :func:`ssim`, the Gaussian-window SSIM of the original paper.  ``data_range``: as
    for :func:`volume_psnr`.

    Raises
    ------
    ValueError
        Not 3D, slices smaller than 7 x 7, shapes differ, non-finite values, or a
        reference whose maximum is not positive.
    """
    _check_pair(x, reference, "volume_ssim")
    if x.ndim != 3:
        raise ValueError(f"volume_ssim: expected volumes of shape (slices, H, W), got shape {tuple(x.shape)}; "
                         "for one image use x[None] and reference[None]")
    if min(x.shape[1:]) < _WINDOW:
        raise ValueError(f"volume_ssim: slices of shape {tuple(x.shape[1:])} are smaller than the "
                         f"{_WINDOW}x{_WINDOW} window (the slices' axis comes first: (slices, H, W))")
    data_range = _volume_range(reference, "volume_ssim", data_range)
    xp = backend.namespace(x, reference)
    nd = backend.ndimage(x)

    def mean(a: Array) -> Array:  # the 7 x 7 box mean of each slice
        return nd.uniform_filter(a, size=(1, _WINDOW, _WINDOW), mode="reflect")

    a = xp.astype(x, xp.float64)
    b = xp.astype(reference, xp.float64)
    mu_a, mu_b = mean(a), mean(b)
    n = _WINDOW * _WINDOW
    cov_norm = n / (n - 1)
    var_a = cov_norm * (mean(a * a) - mu_a * mu_a)
    var_b = cov_norm * (mean(b * b) - mu_b * mu_b)
    cov = cov_norm * (mean(a * b) - mu_a * mu_b)
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2))
    pad = (_WINDOW - 1) // 2
    inner = index[:, pad : index.shape[1] - pad, pad : index.shape[2] - pad]
    per_slice = xp.mean(xp.reshape(inner, (inner.shape[0], -1)), axis=1)
    return float(xp.mean(per_slice))
