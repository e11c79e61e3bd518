"""One grey image or one measurement array: PNG, TIFF (one grey page) and NPY.

Intensity conventions (every image read path: :func:`read_image`, :func:`read_folder`):

* Integer pixels are scaled by their type's range to [0, 1]: uint8 by 255, uint16 by
  65535, in PNG, TIFF and ``.npy`` alike; the bit depth (8 or 16) is returned so that an
  output can be written back at the same depth.  uint16 values all below 4096 (12-bit
  data stored in 16 bits, read in [0, 1/16]) give an :class:`~adareg.io.IntensityWarning`.
  Other integer types (signed, 32- and 64-bit) and bool arrays are refused: they have
  no agreed black and white level (CT numbers, offsets), so any scale would be a guess;
  convert them to uint8/uint16 or to float first.
* Palette, grey + alpha and bilevel images become grey (Pillow's luminance, alpha
  dropped); a colour image (RGB or palette with unequal channels) is refused rather
  than silently turned grey; one whose three channels are equal is grey.
* PNG is read with Pillow, which holds colour and grey + alpha PNGs at 8 bits per
  sample: a 16-bit RGB, RGBA or grey + alpha PNG is refused rather than read at 8 bits
  (save it as 16-bit grey PNG or as TIFF).
* TIFF is read with tifffile, page by page as :func:`adareg.io.read_volume` reads a
  stack (:mod:`adareg.io.tiff`): 8- and 16-bit grey, RGB and palette pages, float pages
  of any width; samples besides grey or RGB must be alpha.  Where tifffile is missing,
  or a compression needs ``imagecodecs`` (LZW, JPEG) that is not installed, Pillow
  reads the page, except one with more than 8 bits per colour sample (refused).
* Float pixels (``.npy``, float TIFF) are returned as stored, in float64, with bit depth
  ``None``; an :class:`~adareg.io.IntensityWarning` names the file when more than 1% of them lie
  outside [-0.5, 1.5] (another intensity scale, e.g. an 8-bit image stored as float).
* A multi-page TIFF (or animated PNG) is refused, not cut to its first page (read a
  stack with :func:`adareg.io.read_volume`).
* :func:`read_folder` refuses a folder holding two images of one stem (``a.png`` and
  ``a.tif``): the images are keyed, and outputs named, by stem.
* Big-endian data are converted to the native byte order.
* An EXIF or TIFF Orientation other than 1 is applied (turned or flipped as viewers
  show the image), so the array, and an output written from it without the tag, shows
  as the input does.
* NaN and infinite values are refused (images and arrays), with their count.

Every failure of the readers is a :class:`ValueError` (or :class:`FileNotFoundError`)
whose message starts with the file's path: corrupt, truncated or lying files included
(an ``.npy`` header or a TIFF's page sizes are checked before anything is allocated;
Pillow's decompression-bomb limit ``PIL.Image.MAX_IMAGE_PIXELS`` is an error for PNG).

Writing (:func:`write_image`) takes float intensities in [0, 1] (PNG and TIFF clip other
values, with a warning where more than 1% are clipped by more than a grey level); it is
atomic (:mod:`adareg.io.files`).

PNG and TIFF need Pillow (``pip install adareg[examples]``), and TIFF is best read with
tifffile (``pip install adareg[io]``); NPY files are read with
``allow_pickle=False``.
"""

from __future__ import annotations

import importlib
import io
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend, checks
from ..intensities import clipped_on_writing, far_outside
from . import tiff
from .files import check_output, write_atomically
from .pixels import (MAX_ELEMENTS, ORIENTATION_TAG, IntensityWarning, check_finite, grey, intensities,
                     memory_as_value_error, native, oriented)

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
ARRAY_SUFFIXES = (".npy",)
#: Suffixes of image formats that :func:`read_folder` does not read, and so names where it skips them.
UNREAD_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jp2", ".bmp", ".gif", ".webp", ".pgm", ".ppm", ".pbm", ".pnm", ".npy")

#: Pillow modes read as grey through ``convert("L")``: bilevel and grey + alpha.
_TO_GREY = ("1", "LA", "La")

#: Pillow modes whose pixels are taken as stored: 8/16/32-bit integer and float grey.
_AS_STORED = ("L", "I;16", "I;16L", "I;16B", "I;16N", "I;16S", "I", "F")

#: The TIFF tag BitsPerSample (one value per sample).
_BITS_PER_SAMPLE = 258
#: The TIFF tag PhotometricInterpretation (0: white is zero, 1: black is zero).
_PHOTOMETRIC = 262
#: PNG colour types that Pillow holds at 8 bits per sample even when the file stores 16.
_PNG_COLOUR_TYPES = {2: "RGB", 4: "grey + alpha", 6: "RGBA"}


def _pillow() -> Any:
    try:
        return importlib.import_module("PIL.Image")
    except ImportError:
        raise ImportError("reading and writing PNG/TIFF needs Pillow: pip install adareg[examples]") from None


def check_image_output(path: str | os.PathLike, suffixes: tuple[str, ...]) -> Path:
    """:func:`~adareg.io.check_output`, and for a PNG or TIFF that Pillow, which writes them, is installed: a
    missing library is named before the work, not after it."""
    path = check_output(path, suffixes)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        _pillow()
    return path


# ---------------------------------------------------------------------------------------------- reading


def read_array(path: str | os.PathLike) -> np.ndarray:
    """An ``.npy`` array (sinogram, k-space, mask, coil maps), in native byte order.

    Numeric dtypes only (bool, integer, float, complex), never unpickled; the header is
    checked before any allocation (at most :data:`~adareg.io.pixels.MAX_ELEMENTS` elements, no more bytes
    than the file holds).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Not an ``.npy`` file, corrupt or truncated, a non-numeric dtype, or NaN/Inf values;
        the message names ``path``.
    """
    path = Path(path)
    if path.suffix.lower() not in ARRAY_SUFFIXES:
        raise ValueError(f"{path}: expected an .npy file")
    with memory_as_value_error(path):
        array = native(_load_npy(path))
        check_finite(array, path)
    return array


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, int | None]:
    """A grey image as float64 and its bit depth: 8 or 16 for integer pixels, ``None`` for floats.

    Integer pixels (PNG, TIFF or ``.npy``; uint8 or uint16) are scaled to [0, 1]; float
    pixels are returned as stored, with an :class:`~adareg.io.IntensityWarning` when they seem to
    use another scale.  See the module's documentation for palette, colour, 16-bit colour
    PNG, multi-page and non-finite inputs.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        An unreadable, colour, multi-page, empty or non-finite image, or an unsupported
        pixel type; the message names ``path``.
    ImportError
        A PNG file without Pillow, or a TIFF file with neither tifffile nor Pillow.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ARRAY_SUFFIXES + IMAGE_SUFFIXES:
        raise ValueError(f"{path}: unsupported image type {suffix!r}; use PNG, TIFF or NPY")
    with memory_as_value_error(path):
        if suffix in ARRAY_SUFFIXES:
            data = _load_npy(path)
        elif suffix == ".png":
            _check_png_header(path)
            data = grey(_load_picture(path), path)
        else:
            data = _load_tiff_page(path)
        if data.ndim != 2 or data.size == 0:
            raise ValueError(f"{path}: expected a non-empty 2D grey image, got shape {data.shape}")
        return intensities(native(data), path)


def read_folder(folder: str | os.PathLike, count: int | None = None) -> dict[str, np.ndarray]:
    """The grey PNG/TIFF images of ``folder``, sorted by file name: ``{stem: image}``.

    Hidden files (names starting with ``.``) and subfolders are skipped; so are images in
    other formats (JPEG, BMP, PGM, NumPy arrays, ...: :data:`~adareg.io.images.UNREAD_IMAGE_SUFFIXES`), with a
    warning that names them, so that a folder of mixed formats is not read in part without a word.

    Each image is read by :func:`read_image` (so 8- and 16-bit images are in [0, 1]).
    ``count`` keeps the first ``count`` of them (e.g. of a data set whose protocol
    numbers the images in this order, :func:`adareg.data.protocol_noisy`).

    Raises
    ------
    FileNotFoundError, NotADirectoryError
        ``folder`` does not exist, or is a file.
    ValueError
        A folder without images, a bad ``count`` (or more than the folder holds), two
        images of one stem (``a.png`` and ``a.tif``: the result is keyed by stem), or an
        image :func:`read_image` refuses.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"read_folder: {str(folder)!r} is a file, not a folder of images")
    if not folder.is_dir():
        raise FileNotFoundError(f"read_folder: folder {str(folder)!r} does not exist")
    if count is not None and not (checks.is_int(count) and count > 0):
        raise ValueError(f"read_folder: count must be a positive int or None, got {count!r}")
    # hidden files (e.g. macOS's "._name.png" resource forks) are not images, nor are folders named like one
    files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file())
    paths = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    unread = [p.name for p in files if p.suffix.lower() in UNREAD_IMAGE_SUFFIXES]
    if unread:
        listed = ", ".join(unread[:5]) + (f" and {len(unread) - 5} more" if len(unread) > 5 else "")
        warnings.warn(f"read_folder: folder {str(folder)!r} holds {len(unread)} images in formats it does not read "
                      f"({listed}), skipped: only PNG and TIFF are read; convert them to include them", stacklevel=2)
    if not paths:
        raise ValueError(f"read_folder: folder {str(folder)!r} holds no .png or .tif images")
    if count is not None and count > len(paths):
        raise ValueError(f"read_folder: count is {count}, but folder {str(folder)!r} holds {len(paths)} images")
    names: dict[str, list[str]] = {}
    for path in paths:
        names.setdefault(path.stem, []).append(path.name)
    clashes = [" and ".join(same) for same in names.values() if len(same) > 1]
    if clashes:
        raise ValueError(f"read_folder: folder {str(folder)!r} holds images of one name in two files "
                         f"({'; '.join(clashes)}); images are keyed by name without the suffix: keep one of each")
    return {path.stem: read_image(path)[0] for path in paths[:count]}


def _load_npy(path: Path) -> np.ndarray:
    """``np.load`` of ``path`` once its header has passed :func:`_npy_problem`."""
    try:
        with open(path, "rb") as file:
            problem = _npy_problem(file)
            if problem is None:
                file.seek(0)
                return np.load(file, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except MemoryError:
        raise
    except Exception as err:  # numpy's header parser raises several kinds (e.g. tokenize.TokenError)
        raise ValueError(f"{path}: not a readable .npy array ({type(err).__name__}: {err})") from None
    raise ValueError(f"{path}: {problem}")


def _npy_problem(file: Any) -> str | None:
    """Why the ``.npy`` header of ``file`` is refused (``None`` if it is not), read without allocating."""
    version = np.lib.format.read_magic(file)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        return f"npy format version {version[0]}.{version[1]} is not read (1.0 and 2.0 are)"
    shape, _, dtype = readers[version](file)
    if dtype.hasobject:
        return f"an array of Python objects ({dtype}) is not read (it would need pickle)"
    if dtype.kind not in "biufc":
        return f"dtype {dtype} is not numeric (bool, integer, float or complex expected)"
    if any(n < 0 for n in shape):
        return f"the header declares an invalid shape {shape}"
    elements = math.prod(shape)
    if elements > MAX_ELEMENTS:
        return f"the header declares shape {shape}: {elements} elements, more than the {MAX_ELEMENTS} adareg reads"
    needed, held = elements * dtype.itemsize, os.fstat(file.fileno()).st_size - file.tell()
    if needed > held:
        return (f"the header declares shape {shape} of {dtype} ({needed} bytes) but the file holds {held} bytes "
                "of data: truncated or corrupt")
    return None


def _load_picture(path: Path) -> np.ndarray:
    """The pixels of a one-frame PNG through Pillow: 2D grey as stored, or 3D (H, W, 3) for colour modes."""
    Image = _pillow()
    try:
        with Image.open(path) as picture:  # reads the header only
            pages, too_many = getattr(picture, "n_frames", 1), _too_many_pixels(*picture.size)
            if pages == 1 and too_many is None:
                return oriented(_pixels(picture), picture.getexif().get(ORIENTATION_TAG, 1))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except Image.DecompressionBombError as err:
        raise ValueError(f"{path}: too many pixels to read safely ({err})") from None
    except MemoryError:
        raise
    except Exception as err:  # Pillow raises many kinds for corrupt files
        raise ValueError(f"{path}: not a readable image ({type(err).__name__}: {err})") from None
    if too_many is not None:  # e.g. a TIFF read by Pillow, or JPEG data named .png
        raise ValueError(f"{path}: {too_many}")
    raise ValueError(f"{path}: {pages} pages; adareg reads one 2D image per file (save each page as its own file)")


def _check_png_header(path: Path) -> None:
    """Refuse a PNG whose IHDR gives more pixels than Pillow's ``MAX_IMAGE_PIXELS`` (a decompression bomb), or
    16-bit colour or grey + alpha, which Pillow would read at 8 bits.

    The size is read here, not from Pillow's warning: a warnings filter is process-wide, and one set by reads in
    several threads at once was left behind (an error for the program's own large images).
    """
    try:
        with open(path, "rb") as file:
            header = file.read(26)  # signature, IHDR length and tag, width, height, bit depth (24), colour type (25)
    except OSError:
        return  # missing or unreadable: the reading below says which
    if len(header) < 26 or header[:8] != b"\x89PNG\r\n\x1a\n" or header[12:16] != b"IHDR":
        return  # not a PNG: Pillow's error names what it is
    too_many = _too_many_pixels(int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big"))
    if too_many is not None:
        raise ValueError(f"{path}: {too_many}")
    if header[24] == 16 and header[25] in _PNG_COLOUR_TYPES:
        raise ValueError(f"{path}: a 16-bit {_PNG_COLOUR_TYPES[header[25]]} PNG, which Pillow reads at 8 bits per "
                         "sample; adareg reads 16-bit grey PNGs: save it as 16-bit grey PNG or as TIFF")


def _too_many_pixels(width: int, height: int) -> str | None:
    """Why an image of ``width`` x ``height`` pixels is not read: above Pillow's decompression-bomb limit,
    ``PIL.Image.MAX_IMAGE_PIXELS`` (``None``: no limit); else ``None``."""
    limit = _pillow().MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        return f"too many pixels to read safely ({width} x {height}, above Pillow's MAX_IMAGE_PIXELS = {limit})"
    return None


def _load_tiff_page(path: Path) -> np.ndarray:
    """The one page of a TIFF file as grey pixels of their stored type (:mod:`adareg.io.tiff`).

    Without tifffile, or for a compression it decodes only with ``imagecodecs`` (LZW,
    JPEG), Pillow reads the page as before, unless it has more than 8 bits per colour
    sample, which Pillow would cut to 8, or is a white-is-zero page of more than 8 bits,
    which Pillow would not invert.
    """
    try:
        pages, _ = tiff.stack(path, one_page=True)
        return pages[0]
    except (ImportError, tiff.CodecMissing) as err:
        pixels = _load_picture(path)
        with _pillow().open(path) as picture:
            depths = picture.tag_v2.get(_BITS_PER_SAMPLE, (1,))
            photometric = picture.tag_v2.get(_PHOTOMETRIC)
            orientation = picture.tag_v2.get(ORIENTATION_TAG, 1)
        if orientation in (5, 6, 7, 8):  # Pillow gives such a page its shown size but the stored rows
            raise ValueError(f"{path}: a page stored turned a quarter (TIFF Orientation {orientation}), which Pillow "
                             f"misreads and tifffile cannot decode here ({checks.one_line(err)})") from None
        if len(depths) > 1 and max(depths) > 8:
            raise ValueError(f"{path}: {max(depths)}-bit colour, which Pillow reads at 8 bits per sample and "
                             f"tifffile cannot decode here ({checks.one_line(err)})") from None
        if photometric == 0 and max(depths) > 8:  # Pillow inverts 8-bit white-is-zero pages only
            raise ValueError(f"{path}: a {max(depths)}-bit white-is-zero page, which Pillow reads without inverting "
                             f"and tifffile cannot decode here ({checks.one_line(err)})") from None
        return grey(pixels, path)


def _pixels(picture: Any) -> np.ndarray:
    """Grey modes as stored (bilevel and grey + alpha through luminance), others as RGB."""
    mode = picture.mode
    if mode in _TO_GREY:
        return np.asarray(picture.convert("L"))
    if mode == "I" and picture.format == "PNG":  # older Pillow opens 16-bit grey PNGs as 32-bit "I"
        return np.asarray(picture).astype(np.uint16)
    if mode in _AS_STORED:
        return np.asarray(picture)
    transparent = mode == "P" and "transparency" in picture.info  # Pillow's advice: through RGBA
    return np.asarray(picture.convert("RGBA" if transparent else "RGB"))[..., :3]


def first_slice_outside(stack: np.ndarray, low: float = 0.0, high: float = 1.0) -> tuple[int, int] | None:
    """``(index, count)`` of the first slice of ``stack`` (its first axis) that
    :func:`~adareg.intensities.far_outside` finds on another scale, else ``None``: slice by slice, as one odd slice
    of many is under 1 % of all their values."""
    for index, image in enumerate(stack):
        outside = far_outside(image, low, high)
        if outside:
            return index, outside
    return None


# ---------------------------------------------------------------------------------------------- writing


def write_array(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write an ``.npy`` array atomically (see the module's documentation).

    Raises
    ------
    ValueError
        What :func:`read_array` would refuse: a non-numeric dtype (objects, strings,
        dates) or NaN/Inf values; the message names ``path``, and nothing is written.
    """
    path = check_output(path, ARRAY_SUFFIXES)
    backend.check_plain(array, f"write_array: {path}: the array")  # the values under a mask would be written
    array = backend.to_numpy(array)  # a CuPy array is copied to the host (NumPy's asarray refuses it)
    if array.dtype.kind not in "biufc":
        raise ValueError(f"write_array: {path}: expected a numeric array (bool, integer, float or complex), got "
                         f"dtype {array.dtype}")
    if array.dtype.kind in "fc":
        backend.check_finite(array, f"write_array: {path}: the array")

    def write(temporary: str) -> None:
        with open(temporary, "wb") as f:
            np.save(f, array, allow_pickle=False)

    write_atomically(path, write)


def write_image(path: str | os.PathLike, image: np.ndarray, bits: int | None = 8) -> None:
    """Write a grey image atomically: PNG/TIFF at ``bits`` (8 or 16; ``None`` is 8), or NPY as is.

    For PNG and TIFF, ``image`` is a 2D float array of intensities in [0, 1], as
    :func:`read_image` returns them: the values are clipped to [0, 1] and scaled by 255
    or 65535 (rounded), the inverse of :func:`read_image`; an :class:`~adareg.io.IntensityWarning`
    says so where more than 1% of them lie outside [-0.5, 1.5] (another scale), or else where
    more than 1% lie beyond [0, 1] by more than one grey level (1/255 or 1/65535), which
    the clip changes visibly.  Integer and bool arrays are refused rather than guessed at
    (divide a 0-255 image by 255 first).  ``bits`` is
    ignored for NPY, which stores ``image`` as it is.

    Raises
    ------
    ValueError
        NaN or Inf values (any format), a PNG/TIFF image that is not a 2D float array, or
        ``bits`` not 8, 16 or ``None``; the message names ``path``.
    """
    path = check_output(path, IMAGE_SUFFIXES + ARRAY_SUFFIXES)
    backend.check_plain(image, f"write_image: {path}: the image")  # the values under a mask would be written
    image = backend.to_numpy(image)  # a CuPy array is copied to the host (NumPy's asarray refuses it)
    if image.dtype.kind in "fc":
        backend.check_finite(image, f"write_image: {path}: the image")
    if path.suffix.lower() in ARRAY_SUFFIXES:
        write_array(path, image)
        return
    if bits not in (8, 16, None):
        raise ValueError(f"write_image: {path}: bits must be 8, 16 or None, got {bits!r}")
    if image.dtype.kind != "f" or image.ndim != 2 or image.size == 0:
        raise ValueError(f"write_image: {path}: expected a non-empty 2D float array of intensities in [0, 1], got "
                         f"{image.dtype} of shape {image.shape} (divide 8-bit integers by 255, 16-bit by 65535)")
    scale, dtype = (65535.0, np.uint16) if bits == 16 else (255.0, np.uint8)
    outside = far_outside(image)
    clipped = 0 if outside else clipped_on_writing(image, 16 if bits == 16 else 8)
    if outside:
        warnings.warn(f"write_image: {path}: {outside} of {image.size} values lie outside [-0.5, 1.5] and are "
                      "clipped to [0, 1]: rescale the image to [0, 1] first, or write .npy, which keeps the values",
                      IntensityWarning, stacklevel=2)
    elif clipped:
        warnings.warn(f"write_image: {path}: {clipped} of {image.size} values lie beyond [0, 1] by more than one "
                      f"grey level (1/{scale:g}) and are clipped to [0, 1]: rescale the image to [0, 1] first, or "
                      "write .npy, which keeps the values", IntensityWarning, stacklevel=2)
    Image = _pillow()
    data = np.round(np.clip(image.astype(np.float64), 0.0, 1.0) * scale).astype(dtype)
    file_format = Image.registered_extensions()[path.suffix.lower()]

    def write(temporary: str) -> None:
        # encoded in memory, then written by Python, which raises on a short write: Pillow's own TIFF writer
        # ignores one (a full disk left a truncated file without an error)
        encoded = io.BytesIO()
        Image.fromarray(data).save(encoded, format=file_format)
        Path(temporary).write_bytes(encoded.getbuffer())

    write_atomically(path, write)
