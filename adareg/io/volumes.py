"""Volumes: stacks of 2D slices read from and written to DICOM, NIfTI, TIFF and NPY.

One array convention for every format: a :class:`~adareg.io.Volume`'s ``data`` is a float32
NumPy array of shape ``(slices, rows, columns)`` (a 2D file is one slice), so that the
slice axis is the leading batch axis of adareg's operators and solvers.  Per format:

=========  ============================  ==========================================  ======================
format     read from                     slices, rows, columns                       values
=========  ============================  ==========================================  ======================
``dicom``  a folder of one series, or    files sorted along the slice normal         Modality LUT applied:
           one file (``.dcm``, or any    (ImagePositionPatient), else by             HU for CT
           name with DICOM's preamble)   InstanceNumber; each slice as stored
``nifti``  ``.nii``, ``.nii.gz``         ``data.transpose(2, 1, 0)``: slices along   scaled by the header's
                                         the third voxel axis, rows along the        ``scl_slope``/``inter``
                                         second, columns along the first
``tiff``   ``.tif``, ``.tiff``: every    pages in file order                         uint8/uint16 scaled to
           page                                                                      [0, 1]; floats as stored
``npy``    ``.npy``, 2D or 3D            as stored                                   uint8/uint16 scaled to
                                                                                     [0, 1]; floats as stored
=========  ============================  ==========================================  ======================

TIFF and NPY volumes follow :func:`adareg.io.read_image`'s intensity convention: other
integer types and bool are refused, and float values mostly outside [0, 1] give an
:class:`~adareg.io.IntensityWarning`.  Data that are not intensities (sinograms: line
integrals) are read with ``read_volume(path, as_stored=True)``: every real type as
stored, unscaled and without the warning.

:func:`write_volume` writes ``data`` in the format its path names (a path without a
suffix is a DICOM series folder) and keeps the metadata of ``like`` (the volume read)
where the formats match: a DICOM series keeps the input's patient, study and geometry
tags under new UIDs, a NIfTI file keeps the affine and header (of a DICOM input: the
affine of its geometry, :func:`adareg.io.dicom.nifti_affine`), a TIFF stack the bit
depth of a TIFF or NPY input; an NPY file holds float32 values.  Every write is atomic
(:mod:`adareg.io.files`).  Empty volumes are refused, read or written, and so are values
beyond float32's range.

The format libraries are optional (``pip install adareg[io]``) and imported only when
their format is read or written.
"""

from __future__ import annotations

import importlib
import os
import warnings
from pathlib import Path

import numpy as np

from .. import backend, checks
from . import tiff
from .files import check_output, check_output_folder
from .formats import LIBRARIES, Volume, as_float32, library
from .images import ARRAY_SUFFIXES, read_array, write_array
from .pixels import IntensityWarning, intensities, memory_as_value_error, stored_values

#: File name endings read as volumes, by format (a folder is a DICOM series).
SUFFIXES = {"dicom": (".dcm",), "nifti": (".nii", ".nii.gz"), "tiff": (".tif", ".tiff"), "npy": ARRAY_SUFFIXES}


def volume_format(path: str | os.PathLike) -> str:
    """The format of ``path`` by its ending: a folder or a suffix-less name is a DICOM series; a file of another
    ending is DICOM where its preamble says so (scanners' exports, e.g. ``IM0001.IMA`` or a UID as the name).

    Raises
    ------
    ValueError
        An ending that no volume format has, on a file that is not DICOM.
    """
    path = Path(path)
    name = path.name.lower()
    if path.is_dir() or not path.suffix:
        return "dicom"
    for format, suffixes in SUFFIXES.items():
        if name.endswith(suffixes):
            return format
    if path.is_file() and _has_dicom_preamble(path):
        return "dicom"
    raise ValueError(f"{path}: not a volume file; adareg reads {_endings()} files and DICOM folders")


def _has_dicom_preamble(path: Path) -> bool:
    """Whether the file ``path`` holds DICOM's ``DICM`` after its 128-byte preamble (PS3.10 7.1), read without
    pydicom so that an install without it is told to install it rather than that the file is no volume."""
    try:
        with open(path, "rb") as file:
            file.seek(128)
            return file.read(4) == b"DICM"
    except OSError:
        return False


def _endings(files: bool = False) -> str:
    """The suffixes of the volume formats (``files``: those written as one file, DICOM's not)."""
    return ", ".join(s for format, suffixes in SUFFIXES.items() if not (files and format == "dicom") for s in suffixes)


def is_volume(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a volume rather than one image (:mod:`adareg.io.images`).

    DICOM and NIfTI inputs are volumes (of one slice or more), and so are TIFF files
    of more than one full-resolution page and 3D ``.npy`` arrays; a file that cannot be inspected is
    left to the image reader, whose errors say why.
    """
    path = Path(path)
    try:
        format = volume_format(path)
    except ValueError:
        return False
    if format in ("dicom", "nifti"):
        return True
    try:
        if format == "npy":
            return np.load(path, mmap_mode="r", allow_pickle=False).ndim == 3
        # the damage tifffile logs is the reader's to tell; reduced pages (thumbnails) are no slices
        with tiff.logged_damage(), importlib.import_module("tifffile").TiffFile(path) as file:
            return sum(not page.is_reduced for page in file.pages) > 1
    except Exception:  # missing, corrupt or unreadable, or tifffile absent: the image reader reports it
        return False


#: :func:`intensity_window` warns where the central share ``1 - 2 * WINDOW_TAIL`` of a volume's values spans
#: less than :data:`WINDOW_BULK` of its range: a few outlying values then set the window.
WINDOW_TAIL = 5e-4
#: The share of a volume's range that its central values (see :data:`WINDOW_TAIL`) must span, else
#: :func:`intensity_window` warns.
WINDOW_BULK = 0.25


def intensity_window(volume: Volume) -> tuple[float, float]:
    """The values ``(low, high)`` that a model trained on [0, 1] intensities sees as black and white.

    TIFF and NPY volumes are taken as images in [0, 1] (integer pixels are read so);
    DICOM and NIfTI volumes hold physical units (HU, scanner units), and TIFF and NPY
    volumes read with ``as_stored=True`` values as stored, so their window is the volume's
    range, ``(min, max)`` (``(v, v + 1)`` for a constant ``v``).

    Warns
    -----
    IntensityWarning
        Where a few values set that range: the values between the
        :data:`~adareg.io.volumes.WINDOW_TAIL` and ``1 - WINDOW_TAIL`` quantiles (of at most a
        million evenly strided samples) span less than :data:`~adareg.io.volumes.WINDOW_BULK`
        of it (e.g. one bright voxel, or metal in a CT volume).  The model then sees the rest
        of the volume in a narrow band of grey, with a noise level (on the 0-255 scale of the
        whole range) that does not match it, and denoises it badly.
    """
    if volume.format in ("tiff", "npy") and not volume.metadata.get("as_stored", False):
        return 0.0, 1.0
    low, high = float(volume.data.min()), float(volume.data.max())
    if high <= low:
        return low, low + 1.0
    values = volume.data.reshape(-1)
    bulk = np.quantile(values[:: max(1, values.size // 1_000_000)], [WINDOW_TAIL, 1 - WINDOW_TAIL])
    if bulk[1] - bulk[0] < WINDOW_BULK * (high - low):
        warnings.warn(f"intensity_window: a few values set the {volume.format} volume's range [{low:g}, {high:g}], "
                      f"the window the model sees as [0, 1]: {100 * (1 - 2 * WINDOW_TAIL):g} % of the values lie in "
                      f"[{bulk[0]:g}, {bulk[1]:g}], {(bulk[1] - bulk[0]) / (high - low):.1%} of it, so the model sees "
                      "them in a narrow band at a noise level that does not match them; clip or rescale the outliers "
                      "first", IntensityWarning, stacklevel=2)
    return low, high


def read_volume(path: str | os.PathLike, as_stored: bool = False) -> Volume:
    """The volume in ``path``, a file or a DICOM series folder (see the module's table).

    Parameters
    ----------
    path
        A file or a DICOM series folder.
    as_stored
        For TIFF and NPY: return the values as stored (any real type, unscaled, without
        an :class:`~adareg.io.IntensityWarning`; TIFF ``metadata["bits"]`` ``None``) rather
        than as [0, 1] intensities, for data that are not intensities, e.g. sinograms.
        DICOM and NIfTI values are physical units either way.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Malformed, inconsistent, empty or unsupported contents, in one line naming ``path``.
    ImportError
        The format's library is not installed.
    """
    path = Path(path)
    as_stored = checks.flag(as_stored, "read_volume: as_stored")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    format = volume_format(path)
    if format in ("npy", "tiff"):
        read = _read_npy if format == "npy" else tiff.read
        volume = read(path, as_stored)
        if as_stored:
            volume.metadata["as_stored"] = True
    else:
        volume = importlib.import_module(f".{format}", __package__).read(path)
    if volume.data.size == 0:
        raise ValueError(f"{path}: expected a non-empty volume, got shape {volume.data.shape} (slices, rows, columns)")
    return volume


def check_volume_output(path: str | os.PathLike, like: Volume | None = None) -> Path:
    """Check before any work that a volume can be written to ``path`` (in ``like``'s metadata where needed)."""
    if like is not None and not isinstance(like, Volume):
        raise TypeError(f"like must be the Volume the data were computed from (read_volume's result) or None, got "
                        f"{type(like).__name__}")
    path = Path(path)
    try:
        format = volume_format(path)
    except ValueError:
        raise ValueError(f"{path}: not a volume output; adareg writes a volume to a {_endings(files=True)} file "
                         "or a DICOM folder (a name without a suffix)") from None
    if format == "dicom":
        if path.suffix:  # an existing folder: its name would be taken for a file's once it is gone
            raise ValueError(f"{path}: a DICOM output folder's name has no suffix (this one ends in "
                             f"{path.suffix!r}), so that it cannot be taken for a file")
        importlib.import_module(".dicom", __package__).check_writable(path, like)
        return check_output_folder(path)
    if format in LIBRARIES:  # the library that writes it, named before the work rather than after
        library(format)
    return check_output(path, SUFFIXES[format])


def write_volume(path: str | os.PathLike, data: np.ndarray, like: Volume | None = None,
                 description: str = "adareg reconstruction") -> None:
    """Write ``data`` (slices, rows, columns) in the format ``path`` names, keeping ``like``'s metadata.

    Parameters
    ----------
    path
        Output file (``.nii``, ``.nii.gz``, ``.tif``, ``.tiff``, ``.npy``) or DICOM folder
        (a name without a suffix, new or empty).
    data
        The volume, in the units of ``like`` (or [0, 1] for an integer TIFF).
    like
        The volume the data were computed from; its metadata are kept where the
        format matches (required for DICOM), a TIFF output keeps the bit depth of an
        NPY one, and a NIfTI output the geometry of a DICOM series as its affine.
    description
        What was done, e.g. "adareg sa-cnn denoising, sigma 10/255": DICOM's
        SeriesDescription, NIfTI's ``descrip``, TIFF's ImageDescription.
    """
    path = check_volume_output(path, like)
    if not isinstance(description, str):
        raise TypeError(f"write_volume: description must be a str, got {type(description).__name__}")
    if isinstance(data, Volume):
        raise TypeError("write_volume: data is a Volume; pass its slices, volume.data (and the volume as like=)")
    backend.check_plain(data, f"write_volume: {path}: data")  # the values under a mask would be written
    data = backend.to_numpy(data)  # a CuPy array is copied to the host (NumPy's asarray refuses it)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise ValueError(f"write_volume: data must have shape (slices, rows, columns), got {data.shape}")
    if data.size == 0:
        raise ValueError(f"write_volume: {path}: expected non-empty data, got shape {data.shape}")
    if data.dtype.kind == "c":  # the readers take real volumes only; a cast would drop imaginary parts
        raise TypeError(f"write_volume: {path}: expected real data, got dtype {data.dtype}; write magnitudes "
                        "(abs) or the real part, as fits the data")
    if data.dtype.kind not in "biuf":
        raise TypeError(f"write_volume: {path}: expected a real numeric array, got dtype {data.dtype}")
    format = volume_format(path)
    if format == "npy":  # float32, as the other formats store data without a bit depth to keep
        if _has_channels(data.shape):
            raise ValueError(f"write_volume: {path}: slices of {data.shape[-1]} column(s), shape {data.shape}, would "
                             "read back from .npy as an image with channels (rows, columns, channels); write them "
                             "as .tif or .nii")
        write_array(path, as_float32(data, f"write_volume: {path}: the data to write"))
        return
    same = like if like is not None and (like.format == format or (format, like.format) == ("tiff", "npy")) else None
    writer = importlib.import_module(f".{format}", __package__)
    if (format, getattr(like, "format", None)) == ("nifti", "dicom"):  # the series' geometry, as a NIfTI affine
        affine = importlib.import_module(".dicom", __package__).nifti_affine(like, data.shape)
        if affine is None:
            warnings.warn(f"write_volume: {path}: the DICOM input gives no geometry for these data (a multi-frame "
                          "file, slices without ImagePositionPatient, ImageOrientationPatient and PixelSpacing, or "
                          "data of another shape), so the NIfTI file has an identity affine", stacklevel=2)
        writer.write(path, data, None, description, affine=affine)
        return
    writer.write(path, data, same, description)


def _has_channels(shape: tuple[int, ...]) -> bool:
    """Whether a 3D ``.npy`` array of ``shape`` reads as an image with channels, (rows, columns, grey (+ alpha) or
    RGB(A)), rather than as slices of a few columns."""
    return 0 < shape[-1] <= 4 and min(shape[:2]) > shape[-1]


def _read_npy(path: Path, as_stored: bool) -> Volume:
    """A 2D or 3D ``.npy`` array as a volume, as intensities (:func:`~adareg.io.pixels.intensities`) or as stored;
    ``metadata["bits"]`` as a TIFF volume's."""
    array = read_array(path)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.dtype.kind not in "biuf":
        raise ValueError(f"{path}: expected a real 2D or 3D array (slices, rows, columns), got shape {array.shape} "
                         f"and dtype {array.dtype}")
    channels = array.shape[-1]
    if _has_channels(array.shape):
        kind = "a colour image" if channels >= 3 else "an image with a channel axis"
        raise ValueError(f"{path}: shape {array.shape} looks like {kind} (rows, columns, channels), not slices "
                         f"of {channels} column(s); adareg reads grey images: save one channel or their mean, "
                         "(rows, columns), or a stack as (slices, rows, columns)")
    with memory_as_value_error(path):
        data, bits = (stored_values(array, path), None) if as_stored else intensities(array, path)
        return Volume(as_float32(data, str(path)), "npy", {"bits": bits})
