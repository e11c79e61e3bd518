"""Image quality: PSNR and SSIM, on NumPy or CuPy arrays."""

from __future__ import annotations

import math

from . import backend
from .backend import Array


def _check_pair(x: Array, reference: Array, name: str) -> None:
    for what, a in (("x", x), ("reference", reference)):
        if not backend.is_array(a):
            raise TypeError(f"{name}: {what} must be a NumPy or CuPy array, got {type(a).__name__}")
    if tuple(x.shape) != tuple(reference.shape):
        raise ValueError(f"{name}: x has shape {tuple(x.shape)} but reference has shape {tuple(reference.shape)}")
    if x.dtype.kind == "c" or reference.dtype.kind == "c":
        raise TypeError(f"{name}: complex images are not supported; compare magnitudes, e.g. abs(x)")
    backend.check_finite(x, f"{name}: x")
    backend.check_finite(reference, f"{name}: reference")


def psnr(x: Array, reference: Array, data_range: float = 1.0) -> float:
    r"""Peak signal-to-noise ratio in dB, over the whole array.

    .. math:: \mathrm{PSNR} = 10 \log_{10} \frac{\mathrm{range}^2}{\mathrm{mean}\,(x - x_{\mathrm{ref}})^2}

    ``inf`` for identical arrays.

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
    xp = backend.namespace(x, reference)
    diff = xp.astype(x, xp.float64) - xp.astype(reference, xp.float64)
    mse = float(xp.mean(diff * diff))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


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
    batch axes; the mean runs over all of them.

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
    if x.ndim < 2:
        raise ValueError(f"ssim: images must have at least 2 axes, got shape {tuple(x.shape)}")
    xp = backend.namespace(x, reference)
    nd = backend.ndimage(x)
    truncate = 3.5
    radius = int(truncate * sigma + 0.5)
    sigmas = (0,) * (x.ndim - 2) + (sigma, sigma)

    def blur(a: Array) -> Array:
        return nd.gaussian_filter(a, sigmas, mode="reflect", truncate=truncate)

    a = xp.astype(x, xp.float64)
    b = xp.astype(reference, xp.float64)
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    inner = index[..., radius : index.shape[-2] - radius, radius : index.shape[-1] - radius]
    if inner.size == 0:
        raise ValueError(f"ssim: images of shape {tuple(x.shape)} are smaller than the {2 * radius + 1}-pixel window")
    return float(xp.mean(inner))
