"""Built-in test images (photographs, real CT and MR slices, phantoms) and the denoising protocol.

Nothing is downloaded: :func:`image` reads files that ship inside scikit-image,
:func:`medical_slice` DICOM files that ship inside pydicom (both with
``pip install adareg[examples]``), :func:`shepp_logan` computes its phantom.
:func:`protocol_noisy` is the reproducible noise of the reference denoising
benchmarks (Set12, BSD68), shared by ``benchmarks/denoise.py`` and ``adareg_train``.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from . import backend, checks
from .intensities import far_outside

#: Grey images bundled with scikit-image that :func:`image` can load.
IMAGES = ("camera", "moon", "coins", "brick", "grass", "gravel", "text", "page")

#: Real slices among pydicom's test files that :func:`medical_slice` can load, with modality and file name.
#: The CT head slices are JPEG 2000 coded (Pillow's decoder reads them).
SLICES = {
    "ct-head": ("CT", "J2K_pixelrep_mismatch.dcm"),   # 512 x 512 head at the skull base
    "ct-head-2": ("CT", "693_J2KI.dcm"),             # 512 x 512 head at the vertex, another patient
    "ct-spine": ("CT", "CT_small.dcm"),              # 128 x 128 crop of a thoracic vertebra
    "mr-abdomen": ("MR", "examples_overlay.dcm"),    # 300 x 484 axial abdomen
}

#: The window of CT numbers mapped onto [0, 1] by :func:`medical_slice` (air to dense bone).
CT_WINDOW = (-1000.0, 1000.0)

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


def _float_dtype(dtype: Any, caller: str) -> np.dtype:
    """``dtype`` if it is float32 or float64 (the images hold values in [0, 1], and adareg computes in those two),
    else a ``TypeError`` naming ``caller``."""
    checked = checks.as_dtype(dtype)
    if checked is None or checked not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{caller}: dtype must be float32 or float64 (the values lie in [0, 1]; adareg's operators "
                        f"and solvers take those two), got {dtype!r}")
    return checked


def _image_shape(shape: Any, caller: str) -> tuple[int, int]:
    """``shape`` as ``(H, W)`` of positive ints, or an error naming ``caller``."""
    try:
        h, w = shape
    except (TypeError, ValueError):
        h = w = None
    if not all(checks.integral(n) for n in (h, w)):
        raise TypeError(f"{caller}: shape must be a pair (H, W) of ints, got {shape!r}")
    h, w = int(h), int(w)
    if h < 1 or w < 1:
        raise ValueError(f"{caller}: shape must be positive, got {shape}")
    return h, w


def image(name: str = "camera", *, shape: tuple[int, int] | None = None, dtype: Any = np.float64) -> np.ndarray:
    """A bundled grey test image with values in [0, 1].

    Parameters
    ----------
    name
        One of :data:`IMAGES`.
    shape
        Resize to ``(H, W)`` (with anti-aliasing); default: the original size.
    dtype
        float32 or float64, the dtype of the result.

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
    dtype = _float_dtype(dtype, "image")
    shape = None if shape is None else _image_shape(shape, "image")
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


def medical_slice(name: str = "ct-head", *, shape: tuple[int, int] | None = None,
                  dtype: Any = np.float64) -> np.ndarray:
    r"""A real CT or MR slice from pydicom's test files, as a square image with values in [0, 1].

    CT slices are converted to Hounsfield units (``RescaleSlope``, ``RescaleIntercept``)
    and mapped linearly from :data:`CT_WINDOW` onto [0, 1], so intensities are
    proportional to the attenuation above that of air.  MR magnitudes are divided by
    their 99.5th percentile.  A non-square slice is cropped to its central square,
    which is resized to ``shape`` and then clipped to [0, 1].  The clip comes after the
    resize: where a CT file pads the scan's field of view with values far below air
    (-2000 HU in ``ct-head``), the resize blends them into the tissue beside it, which
    the clip then makes air (some dozens of edge pixels at 128 x 128; the images of the
    examples, benchmarks and presets are made so).

    Parameters
    ----------
    name
        One of :data:`SLICES`.
    shape
        Resize to ``(N, N)`` (with anti-aliasing); default: the cropped original size.
    dtype
        float32 or float64, the dtype of the result.
    """
    if name not in SLICES:
        raise ValueError(f"medical_slice: unknown slice {name!r}; choose one of {', '.join(SLICES)}")
    dtype = _float_dtype(dtype, "medical_slice")
    shape = None if shape is None else _image_shape(shape, "medical_slice")
    if shape is not None and shape[0] != shape[1]:  # the square crop would be stretched
        raise ValueError(f"medical_slice: shape must be square (N, N), got {tuple(shape)}: the slice is the central "
                         "square of the scan")
    try:
        pydicom_data = importlib.import_module("pydicom.data")
        pydicom = importlib.import_module("pydicom")
    except ImportError:
        raise ImportError("adareg.data.medical_slice reads pydicom's test files: "
                          "pip install adareg[examples]") from None
    modality, file = SLICES[name]
    path = pydicom_data.get_testdata_file(file, download=False)  # shipped with pydicom: nothing is downloaded
    if path is None:
        raise FileNotFoundError(f"medical_slice: {name!r} is pydicom's test file {file}, which pydicom "
                                f"{pydicom.__version__} does not ship; pip install 'pydicom>=3.0.1'")
    dataset = pydicom.dcmread(path)
    pixels = dataset.pixel_array.astype(np.float64)
    if modality == "CT":
        hounsfield = pixels * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
        low, high = CT_WINDOW
        picture = (hounsfield - low) / (high - low)
    else:
        picture = pixels / np.percentile(pixels, 99.5)
    rows, columns = picture.shape
    side = min(rows, columns)
    top, left = (rows - side) // 2, (columns - side) // 2
    picture = picture[top:top + side, left:left + side]
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
    h, w = _image_shape(shape, "shepp_logan")
    dtype = _float_dtype(dtype, "shepp_logan")
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
    if not (checks.is_int(level) and 0 <= level <= 255):
        raise ValueError(f"protocol_noisy: level must be an int from 0 to 255 (the 0-255 scale), got {level!r}")
    if not (checks.is_int(index) and index >= 0):
        raise ValueError(f"protocol_noisy: index must be a non-negative int, got {index!r}")
    backend.check_plain(clean, "protocol_noisy: clean")  # the conversion would drop a mask unseen
    clean = backend.to_numpy(clean)  # a CuPy image is copied to the host: the noise is drawn there
    if clean.ndim != 2:  # a stack would get one draw for all its images, none of them the protocol's
        raise ValueError(f"protocol_noisy: clean must be one image (H, W), got shape {clean.shape}; give each image "
                         "of a stack with its own index")
    if clean.dtype.kind != "f":
        raise TypeError(f"protocol_noisy: clean must be a float image with values in [0, 1], got dtype {clean.dtype}"
                        " (divide 8-bit values by 255)")
    if not np.all(np.isfinite(clean)):
        raise ValueError("protocol_noisy: clean contains NaN or Inf")
    outside = far_outside(clean)
    if outside:
        raise ValueError(f"protocol_noisy: {outside} of {clean.size} values of clean lie outside [-0.5, 1.5]; the "
                         "protocol's images have values in [0, 1] (divide 0-255 values by 255)")
    noise = np.random.default_rng(1000 * int(level) + int(index)).standard_normal(clean.shape) * level / 255
    return (clean + noise).astype(clean.dtype, copy=False)  # the draws in float64, the image in its own precision
