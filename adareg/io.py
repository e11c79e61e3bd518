"""Reading and writing images and measurement arrays: PNG, TIFF (grey, 8- or 16-bit) and NPY.

Images are returned as float arrays in [0, 1] (8-bit values / 255, 16-bit values /
65535), with their bit depth so that an output can be written back at the same
depth.  Writing is atomic: the data go to a temporary file in the target folder,
which then replaces the target, so a failed or interrupted write never leaves a
half-written file.  PNG and TIFF need Pillow (``pip install adareg[examples]``);
NPY files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")


def _pillow() -> Any:
    try:
        return importlib.import_module("PIL.Image")
    except ImportError:
        raise ImportError("reading and writing PNG/TIFF needs Pillow: pip install adareg[examples]") from None


def read_array(path: str | os.PathLike) -> np.ndarray:
    """An ``.npy`` array (never unpickled), with a clear error for a missing or corrupt file."""
    path = Path(path)
    if path.suffix.lower() != ".npy":
        raise ValueError(f"{path}: expected an .npy file")
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npy array ({err})") from None


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, int | None]:
    """A grey image as float64 in [0, 1], and its bit depth (8, 16, or ``None`` for NPY data).

    NPY files are returned as stored (2D, real), without rescaling.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        image = read_array(path)
        if image.ndim != 2 or image.dtype.kind not in "fiu":
            raise ValueError(f"{path}: expected a 2D real array, got shape {image.shape} and dtype {image.dtype}")
        return image.astype(np.float64), None
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"{path}: unsupported image type {suffix!r}; use PNG, TIFF or NPY")
    Image = _pillow()
    try:
        with Image.open(path) as picture:
            picture.load()
            data = np.asarray(picture)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except Exception as err:  # Pillow raises many kinds for corrupt files
        raise ValueError(f"{path}: not a readable image ({type(err).__name__}: {err})") from None
    if data.ndim != 2:
        raise ValueError(f"{path}: expected a grey image, got shape {data.shape} (convert colour images to grey)")
    if data.dtype == np.uint8:
        return data / 255.0, 8
    if data.dtype in (np.uint16, np.int32) and data.max(initial=0) <= 65535 and data.min(initial=0) >= 0:
        return data / 65535.0, 16
    raise ValueError(f"{path}: unsupported pixel type {data.dtype}; expected 8- or 16-bit grey")


def read_folder(folder: str | os.PathLike, count: int | None = None) -> dict[str, np.ndarray]:
    """The grey PNG/TIFF images of ``folder``, sorted by file name: ``{stem: image in [0, 1]}``.

    ``count`` keeps the first ``count`` of them (e.g. of a data set whose protocol
    numbers the images in this order, :func:`adareg.data.protocol_noisy`).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"read_folder: folder {str(folder)!r} does not exist")
    if count is not None and not (isinstance(count, int) and count > 0):
        raise ValueError(f"read_folder: count must be a positive int or None, got {count!r}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"read_folder: folder {str(folder)!r} holds no .png or .tif images")
    return {path.stem: read_image(path)[0] for path in paths[:count]}


def _write_atomically(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_array(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write an ``.npy`` array atomically."""
    path = Path(path)
    if path.suffix.lower() != ".npy":
        raise ValueError(f"{path}: the output must be an .npy file")

    def write(temporary: str) -> None:
        with open(temporary, "wb") as f:
            np.save(f, np.asarray(array), allow_pickle=False)

    _write_atomically(path, write)


def write_image(path: str | os.PathLike, image: np.ndarray, bits: int | None = 8) -> None:
    """Write a grey image atomically: PNG/TIFF at ``bits`` (8 or 16; values clipped to [0, 1]), or NPY as is."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        write_array(path, image)
        return
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"{path}: unsupported image type {suffix!r}; use PNG, TIFF or NPY")
    Image = _pillow()
    bits = 8 if bits is None else bits
    scale, dtype = (255.0, np.uint8) if bits == 8 else (65535.0, np.uint16)
    data = np.round(np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0) * scale).astype(dtype)
    _write_atomically(path, lambda temporary: Image.fromarray(data).save(temporary, format=Image.registered_extensions()[suffix]))
