"""Built-in test images (scikit-image's bundled photographs, generated phantoms) and the denoising protocol.

Nothing is downloaded: :func:`image` reads files that ship inside scikit-image
(``pip install adareg[examples]``), :func:`shepp_logan` computes its phantom.
:func:`protocol_noisy` is the reproducible noise of the reference denoising
benchmarks (Set12, BSD68), shared by ``benchmarks/denoise.py`` and ``adareg_train``.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

#: Grey images bundled with scikit-image that :func:`image` can load.
IMAGES = ("camera", "moon", "coins", "brick", "grass", "gravel", "text", "page")

# Modified Shepp-Logan phantom (Toft, 1996): intensity, semi-axes (a, b), centre
# (x0, y0) and rotation (degrees) of each ellipse, on the square [-1, 1]^2.
_SHEPP_LOGAN = (
    (1.0, 0.69, 0.92, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.874, 0.0, -0.0184, 0.0),
    (-0.2, 0.11, 0.31, 0.22, 0.0, -18.0),
    (-0.2, 0.16, 0.41, -0.22, 0.0, 18.0),
    (0.1, 0.21, 0.25, 0.0, 0.35, 0.0),
    (0.1, 0.046, 0.046, 0.0, 0.1, 0.0),
    (0.1, 0.046, 0.046, 0.0, -0.1, 0.0),
    (0.1, 0.046, 0.023, -0.08, -0.605, 0.0),
    (0.1, 0.023, 0.023, 0.0, -0.606, 0.0),
    (0.1, 0.023, 0.046, 0.06, -0.605, 0.0),
)


def image(name: str = "camera", *, shape: tuple[int, int] | None = None, dtype: Any = np.float64) -> np.ndarray:
    """A bundled grey test image with values in [0, 1].

    Parameters
    ----------
    name
        One of :data:`IMAGES`.
    shape
        Resize to ``(H, W)`` (with anti-aliasing); default: the original size.
    dtype
        Floating dtype of the result.

    Examples
    --------
    >>> import numpy as np
    >>> from adareg.data import image
    >>> camera = image("camera", shape=(64, 64), dtype=np.float32)
    >>> camera.shape, camera.dtype
    ((64, 64), dtype('float32'))
    >>> bool(0 <= camera.min() and camera.max() <= 1)
    True
    """
    if name not in IMAGES:
        raise ValueError(f"image: unknown image {name!r}; choose one of {', '.join(IMAGES)}")
    try:
        skimage_data = importlib.import_module("skimage.data")
    except ImportError:
        raise ImportError(
            "adareg.data.image needs scikit-image for its bundled images: pip install adareg[examples]"
        ) from None
    picture = getattr(skimage_data, name)().astype(np.float64) / 255.0
    if shape is not None:
        transform = importlib.import_module("skimage.transform")
        picture = transform.resize(picture, tuple(shape), anti_aliasing=True, mode="reflect")
    return np.clip(picture, 0.0, 1.0).astype(dtype)


def shepp_logan(shape: tuple[int, int] = (256, 256), dtype: Any = np.float64) -> np.ndarray:
    """The modified Shepp-Logan head phantom (values in [0, 1]), sampled at pixel centres.

    The phantom fills the square [-1, 1]^2; the first array axis runs from top
    (y = 1) to bottom (y = -1), the second from left (x = -1) to right.

    Examples
    --------
    >>> from adareg.data import shepp_logan
    >>> phantom = shepp_logan((128, 128))
    >>> phantom.shape, float(phantom.min()), float(phantom.max())
    ((128, 128), 0.0, 1.0)
    """
    h, w = (int(n) for n in shape)
    if h < 1 or w < 1:
        raise ValueError(f"shepp_logan: shape must be positive, got {shape}")
    y = 1.0 - (2.0 * np.arange(h) + 1.0) / h
    x = (2.0 * np.arange(w) + 1.0) / w - 1.0
    xx, yy = np.meshgrid(x, y)
    phantom = np.zeros((h, w))
    for value, a, b, x0, y0, degrees in _SHEPP_LOGAN:
        c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
        u = (xx - x0) * c + (yy - y0) * s
        v = -(xx - x0) * s + (yy - y0) * c
        phantom[(u / a) ** 2 + (v / b) ** 2 <= 1.0] += value
    return np.clip(phantom, 0.0, 1.0).astype(dtype)


def protocol_noisy(clean: np.ndarray, level: int, index: int) -> np.ndarray:
    r"""Image ``index`` of a test set with the reference denoising protocol's noise at ``level`` / 255.

    The images are numbered from 0 in file-name order (:func:`adareg.io.read_folder`),
    have values in [0, 1], and get white Gaussian noise of standard deviation
    :math:`s / 255` drawn by ``numpy.random.default_rng(1000 s + index)`` for the whole
    image, without clipping; PSNR is then taken with data range 1.

    Parameters
    ----------
    clean
        The clean image (float, values in [0, 1]).
    level
        The noise level :math:`s` on the 0-255 scale (an integer, e.g. 5, 15, 25).
    index
        The image's 0-based position in its set.

    Examples
    --------
    >>> import numpy as np
    >>> from adareg.data import protocol_noisy
    >>> noisy = protocol_noisy(np.zeros((256, 256)), 25, 0)
    >>> round(float(noisy.std() * 255))
    25
    """
    if not (isinstance(level, (int, np.integer)) and level >= 0):
        raise ValueError(f"protocol_noisy: level must be a non-negative int (0-255 scale), got {level!r}")
    if not (isinstance(index, (int, np.integer)) and index >= 0):
        raise ValueError(f"protocol_noisy: index must be a non-negative int, got {index!r}")
    clean = np.asarray(clean)
    return clean + np.random.default_rng(1000 * int(level) + int(index)).standard_normal(clean.shape) * level / 255
