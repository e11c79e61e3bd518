"""The conventions every reader applies to stored pixels: intensities, grey, orientation and byte order.

Integer pixels ``p`` of ``b`` bits (uint8, uint16) are intensities ``p / (2**b - 1)`` in
[0, 1], with an :class:`IntensityWarning` where uint16 values stay below 4096 (12-bit
data stored in 16-bit samples, which this reads in [0, 1/16]); float pixels are taken
as stored, finite, with an :class:`IntensityWarning` where more than 1% of them lie
outside [-0.5, 1.5]; other types are refused.  Values
that are not intensities (sinograms) are taken as stored (:func:`stored_values`).  The
image reader (:mod:`adareg.io.images`), the volume readers (:mod:`adareg.io.volumes`)
and the TIFF reader (:mod:`adareg.io.tiff`) build on this module.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from ..intensities import far_outside

#: The most elements an ``.npy`` or TIFF file may declare (16 GiB of float64).
MAX_ELEMENTS = 2**31

#: The EXIF and TIFF tag Orientation (1 means as stored; see :func:`oriented`).
ORIENTATION_TAG = 274

#: uint16 values all below this (and not all 0) are probably 12-bit data stored in 16-bit samples.
TWELVE_BITS = 4096


class IntensityWarning(UserWarning):
    """Image values on another intensity scale than [0, 1]: float values far outside it, 12-bit data in 16-bit
    samples, or values clipped to it on writing."""


#: Each Orientation's turn or flip of (rows, columns, ...) pixels as stored into the image as shown: 2 mirrored,
#: 3 turned half round, 4 upside down, 5 transposed, 6 to be turned a quarter clockwise, 7 transversed, 8 to be
#: turned a quarter anticlockwise.
_SHOWN = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.swapaxes(a[::-1, ::-1], 0, 1),
    8: lambda a: np.rot90(a, 1),
}


def oriented(pixels: np.ndarray, orientation: Any) -> np.ndarray:
    """``pixels`` (rows, columns[, samples]) as shown under the EXIF/TIFF ``orientation`` (1, or an unknown value:
    as stored)."""
    shown = _SHOWN.get(int(orientation)) if isinstance(orientation, (int, np.integer)) else None
    return pixels if shown is None else np.ascontiguousarray(shown(pixels))


def grey(pixels: np.ndarray, path: Path) -> np.ndarray:
    """``pixels`` as one grey plane: colour pixels must have three equal channels."""
    if pixels.ndim != 3:
        return pixels
    if np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 0], pixels[..., 2]):
        return pixels[..., 0]
    raise ValueError(f"{path}: a colour image; adareg reads grey images (convert it to grey first, e.g. "
                     "Pillow's Image.convert('L'))")


def intensities(data: np.ndarray, path: Path) -> tuple[np.ndarray, int | None]:
    """uint8/uint16 scaled to [0, 1] with their depth (12-bit data in 16 bits warned of); floats as stored (finite,
    range-checked); others refused."""
    if data.dtype in (np.uint8, np.uint16):
        bits = 8 * data.dtype.itemsize
        if bits == 16:
            _warn_on_twelve_bits(data, path)
        return data / float(2**bits - 1), bits
    if data.dtype.kind == "f":
        image = data.astype(np.float64)
        check_finite(image, path)
        _warn_on_scale(image, path)
        return image, None
    raise ValueError(f"{path}: pixels of type {data.dtype} have no intensity convention; adareg reads uint8 "
                     "(scaled by 1/255), uint16 (by 1/65535) or float (as stored): convert the data first")


def stored_values(data: np.ndarray, path: Path) -> np.ndarray:
    """Real values as stored, not taken as intensities (sinograms): finite, no scale, no range check."""
    if data.dtype.kind not in "biuf":
        raise ValueError(f"{path}: values of type {data.dtype} are not real numbers")
    check_finite(data, path)
    return data


@contextlib.contextmanager
def memory_as_value_error(path: Path) -> Iterator[None]:
    try:
        yield
    except MemoryError:
        raise ValueError(f"{path}: too large to read into memory") from None


def native(array: np.ndarray) -> np.ndarray:
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


def check_finite(array: np.ndarray, path: Path) -> None:
    """Refuse NaN and infinite values of a float or complex ``array`` read from ``path``."""
    if array.dtype.kind in "fc":  # integers are always finite
        backend.check_finite(array, str(path))


def _warn_on_scale(image: np.ndarray, path: Path) -> None:
    """An :class:`IntensityWarning` when more than 1% of the values lie outside [-0.5, 1.5]."""
    outside = far_outside(image)
    if not outside:
        return
    top = float(image.max())
    if np.array_equal(image, np.round(image)) and image.min() >= 0 and top <= 65535:
        kind, scale = ("an 8-bit", 255) if top <= 255 else ("a 16-bit", 65535)
        cause = f"values are integers up to {top:g}: {kind} image stored as float? divide by {scale}"
    else:
        cause = f"values span [{float(image.min()):g}, {top:g}]: rescale them to [0, 1]"
    warnings.warn(f"{path}: {outside} of {image.size} float values lie outside [-0.5, 1.5], adareg's intensities "
                  f"are in [0, 1]; {cause}", IntensityWarning, stacklevel=_outside_the_package())


def _warn_on_twelve_bits(data: np.ndarray, path: Path) -> None:
    """An :class:`IntensityWarning` when uint16 ``data`` are not all 0 and all below :data:`TWELVE_BITS`."""
    top = int(data.max()) if data.size else 0
    if not 0 < top < TWELVE_BITS:
        return
    warnings.warn(f"{path}: uint16 values up to {top}, below {TWELVE_BITS}: 12-bit data stored in 16 bits? adareg "
                  f"scales uint16 by 1/65535, so they are read in [0, {top / 65535:.3g}] (a noise level sigma is on "
                  "the scale of the full 16-bit range); multiply them by 65535/4095 or save them as float in [0, 1]",
                  IntensityWarning, stacklevel=_outside_the_package())


def _outside_the_package() -> int:
    """The ``stacklevel`` with which its caller's :func:`warnings.warn` points at the first line outside adareg:
    the user's call to a reader, however deep in the package (read_image, read_folder, read_volume) it warns."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "adareg":
        frame, level = frame.f_back, level + 1
    return level
