"""Multi-page grey TIFF stacks (``.tif``, ``.tiff``) on tifffile.

Array convention: page ``p`` of the file, in file order, is ``data[p]`` of the
:class:`~adareg.io.Volume`, of shape (rows, columns); a one-page file is one slice.  Every page is
read: a file whose chain of pages is broken (truncated, corrupt), or that declares more
images than it has pages (ImageJ's files beyond 4 GB), is refused rather than read as
fewer pages, and so is an ImageJ or OME hyperstack of several axes (e.g. channels of each slice),
whose pages interleave them, and a tifffile page of 3 or 4 separate planes (what
``tifffile.imwrite`` makes of a stack of 3 or 4 slices).  Reduced-resolution pages
(thumbnails) are not slices and are skipped.

Intensities as :func:`adareg.io.read_image`'s (which reads a one-page TIFF with this
module): uint8 and uint16 pixels are scaled to [0, 1] (``metadata["bits"]`` 8 or 16; 12-bit
values in 16-bit samples, by 1/65535 too, with an :class:`~adareg.io.IntensityWarning`),
float pixels are returned as stored (``metadata["bits"]`` ``None``; NaN/Inf refused, an
:class:`~adareg.io.IntensityWarning` on another scale), other integer types are refused.
With ``as_stored=True`` (sinograms, other measurements) every real pixel type is
returned as stored, unscaled and without the warning (``metadata["bits"]`` ``None``),
after an ImageJ file's straight-line calibration ``c0 + c1 * stored`` (ImageJ's signed
16-bit stacks: uint16 offset by 32768).
A page's Orientation tag is applied (:func:`adareg.io.pixels.oriented`), as viewers
show the page.  Each page becomes grey as Pillow turns one page grey: bilevel pages are
0 or 255, white-is-zero pages are inverted (as the TIFF standard says), palette pages go
through their colour map, and RGB pages are read only when their three channels are equal.
Samples beyond the grey or RGB ones must be alpha, which is dropped; other extra samples
(unspecified: several channels of a grey page) are refused.  All pages must have one
shape and one pixel type, and a file declaring more than
:data:`~adareg.io.pixels.MAX_ELEMENTS` samples is refused before its pixels are read.

Writing stores one grey (min-is-black) page per slice, at the bit depth of the stack
read (float values clipped to [0, 1], with a warning where another scale is cut off
or more than 1% of the values are clipped by more than one grey level, scaled by 255 or
65535 and rounded: the inverse of reading), else as float32, with the
pixel density (XResolution, YResolution, ResolutionUnit) of the stack read; the first
page's ImageDescription says what was done.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .. import checks
from ..intensities import clipped_on_writing, far_outside
from .files import write_atomically
from .formats import Volume, as_float32, library
from .pixels import (MAX_ELEMENTS, ORIENTATION_TAG, IntensityWarning, grey, intensities, memory_as_value_error, native,
                     oriented, stored_values)

#: TIFF PhotometricInterpretation values read.
_MINISWHITE, _MINISBLACK, _RGB, _PALETTE = 0, 1, 2, 3

#: ImageJ's calibration function ``cf`` of a straight line, ``c0 + c1 * stored``.
_STRAIGHT_LINE = 0

#: TIFF ExtraSamples values that are alpha (associated, unassociated), dropped on reading.
_ALPHA = (1, 2)

#: TIFF Orientation values whose pixels are shown transposed, and ResolutionUnit's default (inch).
_TRANSPOSED, _INCH = (5, 6, 7, 8), 2
#: A pixel density of one pixel per unit of no unit: no density.
_NO_DENSITY = ((1, 1), (1, 1), 1)


class CodecMissing(ValueError):
    """A page compressed with a codec (LZW, JPEG) or a predictor (floating point) that tifffile decodes only with
    the ``imagecodecs`` package."""


def read(path: Path, as_stored: bool = False) -> Volume:
    """Every page of the TIFF file ``path`` as a volume (see the module's documentation).

    Parameters
    ----------
    path
        The TIFF file.
    as_stored
        Return the pixels' values as stored (any real type, unscaled) rather than as
        [0, 1] intensities.

    Raises
    ------
    ValueError
        A corrupt or truncated file, a colour page, pages of different shapes or pixel
        types, an unsupported pixel type, NaN/Inf values or values beyond float32's range; the message
        starts with ``path``.
    """
    with memory_as_value_error(path):
        pixels, facts = stack(path)
        data, bits = ((_calibrated(stored_values(pixels, path), facts.imagej, path), None) if as_stored else
                      intensities(pixels, path))
        metadata = {"bits": bits} if facts.resolution is None else {"bits": bits, "resolution": facts.resolution}
        return Volume(as_float32(data, str(path)), "tiff", metadata)


class Facts(NamedTuple):
    """What a TIFF file says beside its pixels: its ImageJ metadata (or ``None``), and its first page's pixel
    density ``(x, y, unit)`` as shown (``x`` and ``y`` rationals ``(numerator, denominator)`` per ``unit``, TIFF's
    ResolutionUnit; ``None`` where the page has none)."""

    imagej: dict[str, Any] | None
    resolution: tuple[tuple[int, int], tuple[int, int], int] | None


def _resolution(page: Any) -> tuple[tuple[int, int], tuple[int, int], int] | None:
    """The page's XResolution, YResolution and ResolutionUnit as :class:`Facts` keeps them: exchanged where its
    Orientation turns columns into rows (5 to 8), as the pixels are."""
    tags = page.tags
    x, y = tags.valueof("XResolution"), tags.valueof("YResolution")
    if x is None or y is None:
        return None
    x, y, unit = tuple(int(n) for n in x), tuple(int(n) for n in y), int(tags.valueof("ResolutionUnit", _INCH))
    if (x, y, unit) == _NO_DENSITY:  # also what tifffile writes without a resolution: nothing to keep
        return None
    return (y, x, unit) if tags.valueof(ORIENTATION_TAG, 1) in _TRANSPOSED else (x, y, unit)


def _calibrated(values: np.ndarray, metadata: dict[str, Any] | None, path: Path) -> np.ndarray:
    """The stored ``values`` of ``path`` after the straight-line value calibration ``c0 + c1 * stored`` of its
    ImageJ ``metadata``.

    ImageJ stores a signed 16-bit stack as uint16 with the calibration ``c0 = -32768,
    c1 = 1``; another calibration function (a polynomial, an exponential) is refused.
    """
    if not metadata or "cf" not in metadata:
        return values
    function = metadata["cf"]
    if function != _STRAIGHT_LINE or not {"c0", "c1"} <= set(metadata):
        raise ValueError(f"{path}: an ImageJ calibration of function cf={function}, which adareg does not apply; "
                         "save the calibrated values as 32-bit float in ImageJ")
    return float(metadata["c0"]) + float(metadata["c1"]) * values


def write(path: Path, data: np.ndarray, like: Volume | None, description: str) -> None:
    """Write ``data`` (slices, rows, columns) as a multi-page grey TIFF, one page per slice, atomically.

    Parameters
    ----------
    path
        Output ``.tif`` or ``.tiff`` file.
    data
        The volume, finite and within float32's range; float intensities in [0, 1] when
        written as integers (other values are clipped, with an
        :class:`~adareg.io.IntensityWarning` where more than 1% lie outside [-0.5, 1.5], or
        else where more than 1% lie beyond [0, 1] by more than one grey level; integer
        data are refused, as by :func:`~adareg.io.write_image`).
    like
        The TIFF or NPY volume the data were computed from: its bit depth (8, 16 or
        ``None``) is kept, and a TIFF's pixel density (XResolution, YResolution and
        ResolutionUnit); ``None`` writes float32 pages.
    description
        The first page's ImageDescription (non-ASCII characters escaped, as TIFF
        strings are ASCII).
    """
    tifffile = library("tiff")
    bits = None if like is None else like.metadata["bits"]
    if bits is not None:
        _check_intensities(data, path, bits)
    pixels = _stored(as_float32(data, f"{path}: the data to write"), bits)
    text = description.encode("ascii", "backslashreplace").decode("ascii")
    density = None if like is None else like.metadata.get("resolution")
    options = {} if density is None else {"resolution": density[:2], "resolutionunit": density[2]}
    write_atomically(path, lambda temporary: tifffile.imwrite(temporary, pixels, photometric="minisblack",
                                                              description=text, metadata=None, **options))


def _check_intensities(data: np.ndarray, path: Path, bits: int) -> None:
    """Refuse integer data for an integer output, and warn where the clip to [0, 1] would cut off another scale or
    change more than 1% of the values by more than one grey level, as :func:`adareg.io.write_image` does."""
    if data.dtype.kind in "biu":
        raise ValueError(f"{path}: a {bits}-bit TIFF is written from float intensities in [0, 1], got {data.dtype} "
                         f"data (divide 8-bit integers by 255, 16-bit by 65535)")
    outside = far_outside(data)
    clipped = 0 if outside else clipped_on_writing(data, bits)
    if outside:
        warnings.warn(f"{path}: {outside} of {data.size} values lie outside [-0.5, 1.5] and are clipped to [0, 1] "
                      f"for the {bits}-bit output: rescale the data to [0, 1] first, or write .npy or NIfTI, which "
                      "keep the values", IntensityWarning, stacklevel=4)
    elif clipped:
        warnings.warn(f"{path}: {clipped} of {data.size} values lie beyond [0, 1] by more than one grey level "
                      f"(1/{2**bits - 1}) and are clipped to [0, 1] for the {bits}-bit output: rescale the data to "
                      "[0, 1] first, or write .npy or NIfTI, which keep the values", IntensityWarning, stacklevel=4)


def _stored(data: np.ndarray, bits: int | None) -> np.ndarray:
    """``data`` clipped to [0, 1] and scaled to rounded uint8/uint16 at ``bits``, or as is for ``None``."""
    if bits is None:
        return data
    scaled = np.round(np.clip(data, 0.0, 1.0) * float(2**bits - 1))
    return scaled.astype(np.uint8 if bits == 8 else np.uint16)


def stack(path: Path, one_page: bool = False) -> tuple[np.ndarray, Facts]:
    """Every page of ``path`` as grey pixels of their stored type, ``(pages, rows, columns)``, and the file's
    :class:`Facts`.

    With ``one_page``, a file of several pages is refused (:func:`adareg.io.read_image`).
    """
    tifffile = library("tiff")
    with _tifffile_errors(path):
        tif = tifffile.TiffFile(path)
    with tif:
        with _tifffile_errors(path):
            pages = [page for page in tif.pages if not page.is_reduced]
            elements = len(pages) * math.prod(int(n) for n in pages[0].shape) if pages else 0
        images = _declared_images(tif, path)
        if not pages:
            raise ValueError(f"{path}: a TIFF file without pages")
        if images > len(pages):
            raise ValueError(f"{path}: declares {images} images but holds {len(pages)} page"
                             f"{'s' if len(pages) > 1 else ''} (a truncated ImageJ or tifffile file, as ImageJ writes "
                             "beyond 4 GB); adareg reads one page per slice: rewrite it with "
                             "tifffile.imwrite(new, tifffile.imread(path), photometric='minisblack')")
        if one_page and len(pages) > 1:
            raise ValueError(f"{path}: {len(pages)} pages; adareg reads one 2D image per file (read a stack of "
                             "pages with adareg.io.read_volume)")
        if elements > MAX_ELEMENTS:
            raise ValueError(f"{path}: {len(pages)} pages of shape {pages[0].shape} declare {elements} samples, more "
                             f"than the {MAX_ELEMENTS} adareg reads")
        greys = (_grey_page(page, path) for page in pages)
        first = next(greys)
        pixels = np.empty((len(pages), *first.shape), first.dtype)
        pixels[0] = first
        for index, page in enumerate(greys, start=1):
            if page.shape != first.shape or page.dtype != first.dtype:
                raise ValueError(f"{path}: page {index + 1} is {page.shape} {page.dtype} but page 1 is {first.shape} "
                                 f"{first.dtype}; adareg reads a stack of pages of one size and pixel type")
            pixels[index] = page
        with _tifffile_errors(path):
            facts = Facts(tif.imagej_metadata if tif.is_imagej else None, _resolution(pages[0]))
    return pixels, facts


def _declared_images(tif: Any, path: Path) -> int:
    """The images an ImageJ, OME or tifffile ("shaped") file declares in its first series, or 0 for another file.

    A hyperstack (more than one axis beyond a page's, e.g. ImageJ's ``ZCYX`` of several
    channels per slice) is refused: its pages in file order interleave those axes.  Axes
    of length 1 count for nothing, wherever they stand (tifffile keeps the trailing one of
    a ``(rows, columns, 1)`` array as ``YXQ``).
    """
    with _tifffile_errors(path):
        if not (tif.is_imagej or tif.is_ome or tif.is_shaped) or not tif.series:
            return 0
        series = tif.series[0]
        page_axes = sum(length > 1 for length in series.keyframe.shape)
        lengths = [length for length in series.shape if length > 1]
        outer = lengths[: len(lengths) - page_axes]
    if len(outer) > 1:
        raise ValueError(f"{path}: a hyperstack of axes {series.axes} and shape {tuple(series.shape)}, whose pages "
                         "interleave them; adareg reads one stack of 2D slices: save one stack per channel and "
                         "time point")
    return math.prod(outer)


def _grey_page(page: Any, path: Path) -> np.ndarray:
    """One page as 2D grey pixels, in native byte order (see the module's documentation)."""
    with _tifffile_errors(path):  # a damaged page's tags can be of any type
        photometric, axes, shape = int(page.photometric), str(page.axes), tuple(page.shape)
        samples, extra = int(page.samplesperpixel), tuple(int(value) for value in page.extrasamples)
        bits, integers = int(page.bitspersample), int(page.sampleformat) in (1, 2)
    if integers and photometric != _PALETTE and bits not in (1, 8, 16, 32, 64):
        # (4- or 12-bit samples decode, with imagecodecs, to 8- or 16-bit integers: scaled as those, 15 read 0.06)
        raise ValueError(f"{path}: page {page.index + 1} has {bits}-bit samples; adareg reads 8- and 16-bit integer "
                         "(and float) pages: save it with 8 or 16 bits per sample")
    if photometric not in (_MINISWHITE, _MINISBLACK, _RGB, _PALETTE) or set(axes) - set("SYX"):
        raise ValueError(f"{path}: page {page.index + 1} has photometric interpretation "
                         f"{getattr(page.photometric, 'name', photometric)} and axes {axes}; adareg reads "
                         "grey, RGB and palette pages")
    if page.parent.is_shaped and axes.startswith("S") and samples > 1:
        raise ValueError(f"{path}: page {page.index + 1} holds {samples} planes of {shape[1]} x {shape[2]} (as "
                         "tifffile stores a (3 or 4, rows, columns) array unless told photometric='minisblack'): "
                         "a stack of slices or a colour image? Rewrite a stack with tifffile.imwrite(new, "
                         "tifffile.imread(path), photometric='minisblack')")
    colours = 3 if photometric == _RGB else 1
    if samples != colours + len(extra) or not set(extra) <= set(_ALPHA):
        raise ValueError(f"{path}: page {page.index + 1} has {samples} samples per pixel, {colours} "
                         f"{'RGB' if colours == 3 else 'grey'} and extra samples that are not all alpha (TIFF "
                         f"ExtraSamples {extra}); adareg reads grey or RGB pages, with or without alpha (store one "
                         "channel per page)")
    codecs = library("tiff").TIFF
    if page.compression not in codecs.DECOMPRESSORS:
        raise CodecMissing(f"{path}: page {page.index + 1} is compressed with "
                           f"{getattr(page.compression, 'name', page.compression)}, which tifffile decodes with the "
                           "imagecodecs package only (pip install imagecodecs)")
    if page.predictor not in codecs.UNPREDICTORS:
        raise CodecMissing(f"{path}: page {page.index + 1} is stored with the "
                           f"{getattr(page.predictor, 'name', page.predictor)} predictor, which tifffile undoes with "
                           "the imagecodecs package only (pip install imagecodecs)")
    with _tifffile_errors(path):
        pixels = page.asarray()
        if pixels.shape != shape:
            raise ValueError(f"page {page.index + 1} decodes to shape {pixels.shape}, not its declared {shape}")
        if photometric == _PALETTE:  # 16-bit colour map to 8 bits, as Pillow does
            pixels = (page.colormap // 256).astype(np.uint8).T[pixels]
    if "S" in axes:  # RGB, or grey with alpha
        pixels = np.moveaxis(pixels, axes.index("S"), -1)
        pixels = pixels[..., :3] if colours == 3 else pixels[..., 0]
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * np.uint8(255)
    if photometric == _MINISWHITE:
        pixels = _inverted(pixels, page, path)
    return native(grey(oriented(pixels, page.tags.valueof(ORIENTATION_TAG, 1)), path))


def _inverted(pixels: np.ndarray, page: Any, path: Path) -> np.ndarray:
    """White-is-zero unsigned pixels as black-is-zero ones; other types have no agreed white."""
    if pixels.dtype.kind != "u":
        raise ValueError(f"{path}: page {page.index + 1} is white-is-zero with {pixels.dtype} pixels, which have no "
                         "agreed white level; adareg inverts unsigned integer pages only")
    return np.iinfo(pixels.dtype).max - pixels


@contextlib.contextmanager
def _tifffile_errors(path: Path) -> Iterator[None]:
    """tifffile's exceptions, and the damage it only logs (a broken chain of pages), as one-line ValueErrors."""
    with logged_damage() as logged:
        try:
            yield
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such file") from None
        except MemoryError:
            raise
        except Exception as err:  # tifffile and its codecs raise many kinds for corrupt files
            raise ValueError(f"{path}: not a readable TIFF file ({type(err).__name__}: {checks.one_line(err)})"
                             ) from None
    if logged:
        raise ValueError(f"{path}: a damaged TIFF file (tifffile: {' '.join(logged[0].split())})")


class _Damage(threading.local):
    """The errors tifffile logged in this thread while :func:`logged_damage` runs here (``None``: it does not)."""

    logged: list[str] | None = None


_damage = _Damage()


def _collect_damage(record: logging.LogRecord) -> bool:
    """The filter of tifffile's logger: this thread's errors, while collected, are kept, not logged."""
    if _damage.logged is not None and record.levelno >= logging.ERROR:
        _damage.logged.append(record.getMessage())
        return False
    return True


# once, for good: a filter added and removed around each read could be skipped by a record of another thread
# logged meanwhile (the logger iterates its list of filters), which then reached standard error
logging.getLogger("tifffile").addFilter(_collect_damage)


@contextlib.contextmanager
def logged_damage() -> Iterator[list[str]]:
    """The errors that tifffile logs in this thread meanwhile (the damage it reads past), collected, not logged.

    The reader tells them in its error; logged as well, they reached standard error (through Python's last resort
    handler) before it, twice.
    """
    outer, _damage.logged = _damage.logged, []
    try:
        yield _damage.logged
    finally:
        _damage.logged = outer
