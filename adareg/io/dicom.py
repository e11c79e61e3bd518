"""DICOM series: read a folder of one series (or one file) as a volume, write a derived series.

Convention (the ``dicom`` row of :mod:`adareg.io.volumes`):

* ``data`` is float32, shape ``(slices, rows, columns)``; rows and columns are as
  stored (no flip or transpose, whatever the orientation), so the geometry tags of the
  input still describe each slice.
* A folder's files are sorted by their position along the slice normal (the
  ImagePositionPatient projected on the cross product of the two direction cosines of
  ImageOrientationPatient), ascending; when any file lacks those tags, by
  InstanceNumber.  A multi-frame file gives its frames as slices, in stored order.
* Values are the output of the Modality LUT (``stored * RescaleSlope +
  RescaleIntercept``, a missing or empty tag read as 1 or 0, or a Modality LUT
  Sequence): Hounsfield units for CT.  An
  enhanced multi-frame file's per-frame or shared Pixel Value Transformation is used.
  RT Dose values are multiplied by DoseGridScaling (doses in the file's DoseUnits: Gy or relative).
  MONOCHROME1 images keep their values (the inversion is a display matter).
* ``metadata["datasets"]`` are the pydicom datasets in slice order, pixel data
  deleted, and ``metadata["float_pixels"]`` says whether the files stored float pixel
  data (Float or Double Float Pixel Data) rather than integers.  A multi-frame file
  gives one dataset for all its frames (its per-frame functional groups kept); such a
  volume is not written back as DICOM.

Reading a folder reads its regular, non-hidden files (not its subfolders); files that
are not DICOM, and DICOM files that are not images (no Rows, and a SOP class other than
images' and RT doses', e.g. DICOMDIR, RT plans, structured reports), are skipped; an
image file without Rows (cut short, say) is refused.  Images stored without the file
preamble and meta header (ACR-NEMA style) are read, with the encoding found in their
data elements.  Compressed transfer syntaxes decode where pydicom's optional decoders
(pylibjpeg, gdcm, Pillow, ...) are installed.  Needs pydicom >= 3.0.  Every failure is
a one-line :class:`ValueError` that starts with the file or folder.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import checks
from .files import write_folder_atomically
from .formats import Volume, as_float32, library

#: The elements that hold pixels (integer, float and double pixel data).
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

#: Elements of the input that would lie about the written pixels: stored-value ranges and
#: padding (the stored values change), the Modality LUT (replaced by a rescale), the input's
#: thumbnail, colour and compression details.
_STALE_KEYWORDS = ("SmallestImagePixelValue", "LargestImagePixelValue", "SmallestPixelValueInSeries",
                   "LargestPixelValueInSeries", "PixelPaddingValue", "PixelPaddingRangeLimit",
                   "ModalityLUTSequence", "PlanarConfiguration", "ExtendedOffsetTable",
                   "ExtendedOffsetTableLengths", "IconImageSequence")

#: Philips' private scale of the stored values (MR Scale Intercept and Slope, which dcm2niix reads as the
#: "floating point" values): the block's group and private creator, and the elements' offsets in the block.
_PHILIPS_SCALE = (0x2005, "Philips MR Imaging DD 001", (0x0D, 0x0E))

#: A slice that a NIfTI affine places further than this share of its step from its ImagePositionPatient is
#: named (:func:`nifti_affine`): a slice missing from a series, or one reconstructed at uneven intervals.
_UNEVEN_STEP = 0.05

#: Positions along the slice normal closer than this (mm) are the same position.
_SAME_POSITION_MM = 1e-3

_INT16_MIN, _INT16_MAX = -32768, 32767

#: A derived slice keeps the input's rescale only when its values span at least this many of the input's steps:
#: rounding to them then errs by at most 1/512 of the slice's range, below one step of an 8-bit display of it.
#: On a finer scale (data mapped to [0, 1], a ratio or probability map of an integer series) the input's steps
#: would merge the values, so the rescale is fitted to the slice's range instead.
_KEPT_RESCALE_STEPS = 256


# ---------------------------------------------------------------------------------------------- reading


def read(path: Path) -> Volume:
    """The DICOM image(s) in ``path``: a file (single- or multi-frame) or a folder of one series.

    Parameters
    ----------
    path
        A DICOM file, or a folder whose image files belong to one series.

    Returns
    -------
    Volume
        float32 ``(slices, rows, columns)`` after the Modality LUT, format ``"dicom"``,
        metadata ``{"datasets": [...], "float_pixels": bool}`` (see the module's documentation).

    Raises
    ------
    ValueError
        Not DICOM, no image, several series, slices of different sizes or that cannot be
        ordered, a colour image, missing or undecodable pixel data; one line naming the
        file or folder.
    ImportError
        pydicom is not installed.
    """
    pydicom = library("dicom")
    path = Path(path)
    if not path.is_dir():
        dataset = _dataset(pydicom, path)
        _check_pixel_data(path, dataset)  # first: a non-image file (an RT plan) has no Rows either
        _check_image(path, dataset)
        float_pixels = _stores_floats(dataset)
        data = _values(pydicom, path, dataset)
        return Volume(data, "dicom", {"datasets": [dataset], "float_pixels": float_pixels})
    headers = _series(pydicom, path)
    first = next(iter(headers))
    if len(headers) == 1:
        return read(first)
    data = np.empty((len(headers), headers[first].Rows, headers[first].Columns), np.float32)
    datasets = []
    float_pixels = False
    for i, file in enumerate(headers):  # one file's pixel data in memory at a time
        datasets.append(_dataset(pydicom, file))
        float_pixels |= _stores_floats(datasets[-1])
        data[i] = _values(pydicom, file, datasets[-1])[0]
    return Volume(data, "dicom", {"datasets": datasets, "float_pixels": float_pixels})


def _dataset(pydicom: Any, path: Path, header: bool = False) -> Any:
    """The dataset in ``path`` (without the pixel data if ``header``); a ValueError if it is not DICOM.

    An image stored without the file preamble and meta header (ACR-NEMA style, or as
    some exports write it) is read too, its transfer syntax the encoding found while reading.
    """
    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=header)
    except pydicom.errors.InvalidDicomError:
        dataset = _headerless_image(pydicom, path, header)
    except MemoryError:
        raise
    except Exception as err:  # pydicom raises many kinds for truncated or corrupt files
        raise ValueError(f"{path}: not a readable DICOM file ({type(err).__name__}: {checks.one_line(err)})") from None
    meta = dataset.file_meta
    if "TransferSyntaxUID" not in meta and dataset.original_encoding[0] is not None:
        implicit, little = dataset.original_encoding
        meta.TransferSyntaxUID = (pydicom.uid.ImplicitVRLittleEndian if implicit else
                                  pydicom.uid.ExplicitVRLittleEndian if little else pydicom.uid.ExplicitVRBigEndian)
    return dataset


def _headerless_image(pydicom: Any, path: Path, header: bool) -> Any:
    """The image in ``path``, a file without the preamble and 'DICM' prefix, or a ValueError if it holds none."""
    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=header, force=True)
    except Exception:  # not DICOM at all: what pydicom makes of other bytes
        dataset = None
    if dataset is None or "Rows" not in dataset:
        raise ValueError(f"{path}: not a DICOM file (no 'DICM' file meta header)") from None
    return dataset


def _series(pydicom: Any, folder: Path) -> dict[Path, Any]:
    """The headers of ``folder``'s image files, checked (one series, grey, one size, single-frame), in slice order."""
    headers = {}
    for file in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            header = _dataset(pydicom, file, header=True)
        except ValueError:
            if pydicom.misc.is_dicom(file):  # a DICOM file that cannot be read: say so
                raise
            continue
        if "Rows" in header:
            headers[file] = header
        elif _holds_pixels(header):
            raise ValueError(f"{file}: a DICOM image file without Rows: truncated or damaged?")
    if not headers:
        raise ValueError(f"{folder}: no DICOM image files (files that are not DICOM, and DICOM files without "
                         "Rows such as DICOMDIR, are skipped): a folder is read as one DICOM series; give a stack of "
                         "other images as one multi-page TIFF, NIfTI or 3D .npy file")
    _check_one_series(folder, headers)
    for file, header in headers.items():
        _check_image(file, header)
    if len(headers) > 1:
        _check_sizes(folder, headers)
    return {file: headers[file] for file in _in_slice_order(folder, headers)}


def _holds_pixels(header: Any) -> bool:
    """Whether ``header``'s SOP class is one of images or RT doses, or missing: a file that should have had Rows."""
    sop_class = header.get("SOPClassUID") or header.file_meta.get("MediaStorageSOPClassUID")
    if not sop_class:
        return True
    name = str(getattr(sop_class, "name", ""))  # pydicom's UID: the standard's name ("CT Image Storage")
    return "Image Storage" in name or name == "RT Dose Storage"


def _check_one_series(folder: Path, headers: dict[Path, Any]) -> None:
    series: dict[str, list[Any]] = {}
    for header in headers.values():
        series.setdefault(str(header.get("SeriesInstanceUID", "")), []).append(header)
    if len(series) > 1:
        names = "; ".join(f"{members[0].get('SeriesDescription') or 'no description'!r} (SeriesNumber "
                          f"{members[0].get('SeriesNumber', 'missing')}, {len(members)} files)"
                          for members in series.values())
        raise ValueError(f"{folder}: a folder of {len(series)} series ({names}); give one series' folder")


def _check_image(path: Path, header: Any) -> None:
    """A grey image of positive Rows and Columns."""
    for keyword in ("Rows", "Columns"):
        value = header.get(keyword)
        if not (isinstance(value, int) and value > 0):
            raise ValueError(f"{path}: {keyword} is {'missing' if value is None else repr(value)}; an image has a "
                             "positive number of rows and columns")
    samples = header.get("SamplesPerPixel", 1)
    photometric = header.get("PhotometricInterpretation", "MONOCHROME2")
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"{path}: a colour image (PhotometricInterpretation {photometric}, SamplesPerPixel "
                         f"{samples}); adareg reads grey images (MONOCHROME1/2)")


def _check_sizes(folder: Path, headers: dict[Path, Any]) -> None:
    """One rows x columns for all files, and no multi-frame file among several."""
    sizes = {file: (header.Rows, header.get("Columns")) for file, header in headers.items()}
    (first, size), *others = sizes.items()
    for file, other in others:
        if other != size:
            raise ValueError(f"{folder}: slices of different sizes: {first.name} has {size[0]}x{size[1]} "
                             f"(rows x columns), {file.name} {other[0]}x{other[1]}")
    for file, header in headers.items():
        if int(header.get("NumberOfFrames") or 1) > 1:
            raise ValueError(f"{folder}: {file.name} is a multi-frame file among {len(headers)} files; read it "
                             "alone (give the file)")


def _in_slice_order(folder: Path, headers: dict[Path, Any]) -> list[Path]:
    """The files sorted along the slice normal, else by InstanceNumber; distinct keys required."""
    files = list(headers)
    if len(files) == 1:
        return files
    positions = _positions(folder, headers)
    keys, what = (positions, "position along the slice normal") if positions is not None else \
        (_instance_numbers(folder, headers), "InstanceNumber")
    order = sorted(files, key=keys.__getitem__)
    for a, b in zip(order, order[1:]):
        if keys[b] - keys[a] < _SAME_POSITION_MM:
            raise ValueError(f"{folder}: {a.name} and {b.name} have the same {what} ({keys[a]:g}); a series "
                             "folder holds distinct slices")
    return order


def _positions(folder: Path, headers: dict[Path, Any]) -> dict[Path, float] | None:
    """Each file's ImagePositionPatient along the slice normal (mm), or ``None`` if a file lacks the geometry."""
    if not all(_has_geometry(header) for header in headers.values()):
        return None
    orientations = np.array([_numbers(file, h, "ImageOrientationPatient") for file, h in headers.items()])
    if not np.allclose(orientations, orientations[0], atol=1e-4):
        raise ValueError(f"{folder}: the slices have different ImageOrientationPatient; a series folder holds "
                         "parallel slices")
    normal = np.cross(orientations[0, :3], orientations[0, 3:])
    if not 0.9 < np.linalg.norm(normal) < 1.1:  # the cosines of two orthogonal unit directions give a unit normal
        raise ValueError(f"{folder}: ImageOrientationPatient {tuple(orientations[0])} is not two orthogonal unit "
                         "directions, so the slices cannot be ordered along their normal")
    return {file: float(np.dot(_numbers(file, h, "ImagePositionPatient"), normal)) for file, h in headers.items()}


def _has_geometry(header: Any) -> bool:
    return len(header.get("ImagePositionPatient") or ()) == 3 and len(header.get("ImageOrientationPatient") or ()) == 6


def nifti_affine(like: Volume, shape: tuple[int, ...]) -> np.ndarray | None:
    r"""The NIfTI affine (voxel to RAS+ millimetres) of data of ``shape`` (slices, rows, columns) computed from the
    series ``like``, or ``None`` where its files do not give one.

    NIfTI's voxel :math:`(i, j, k)` is the series' column :math:`i`, row :math:`j` and
    slice :math:`k` (:mod:`adareg.io.nifti`).  In DICOM's patient coordinates (LPS) the
    pixel lies at :math:`P_0 + i \, \Delta_c X + j \, \Delta_r Y + k \, S`, with
    :math:`P_0` the first slice's ImagePositionPatient, :math:`X, Y` the
    ImageOrientationPatient's row and column direction cosines, :math:`(\Delta_r,
    \Delta_c)` the PixelSpacing and :math:`S` the step between the first and the last
    slice's positions (one slice: the normal :math:`X \times Y` times
    SpacingBetweenSlices, else SliceThickness, else 1); RAS negates the first two
    coordinates.  ``None`` for a multi-frame file, a slice without those tags, or data of
    another shape than the series'.  An affine has one step: where the slices are not
    evenly spaced (a slice missing), a warning names the slice it places furthest from its
    position.
    """
    datasets = like.metadata["datasets"]
    if (tuple(shape) != tuple(like.data.shape) or len(datasets) != shape[0]
            or not all(_has_geometry(d) and len(d.get("PixelSpacing") or ()) == 2 for d in datasets)):
        return None
    first = np.array(datasets[0].ImagePositionPatient, dtype=np.float64)
    cosines = np.array(datasets[0].ImageOrientationPatient, dtype=np.float64)
    row_spacing, column_spacing = (float(v) for v in datasets[0].PixelSpacing)
    if len(datasets) > 1:
        positions = np.array([d.ImagePositionPatient for d in datasets], dtype=np.float64)
        step = (positions[-1] - first) / (len(datasets) - 1)
        _warn_on_uneven_steps(positions, step)
    else:
        thickness = datasets[0].get("SpacingBetweenSlices") or datasets[0].get("SliceThickness") or 1.0
        step = np.cross(cosines[:3], cosines[3:]) * float(thickness)
    lps = np.eye(4)
    lps[:3, :] = np.stack([cosines[:3] * column_spacing, cosines[3:] * row_spacing, step, first], axis=1)
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def _warn_on_uneven_steps(positions: np.ndarray, step: np.ndarray) -> None:
    """Warn where ``first + k step`` lies further than :data:`_UNEVEN_STEP` steps from slice ``k``'s position."""
    misplaced = np.linalg.norm(positions - (positions[0] + np.arange(len(positions))[:, None] * step), axis=1)
    worst = int(np.argmax(misplaced))
    if misplaced[worst] > _UNEVEN_STEP * np.linalg.norm(step):
        steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
        warnings.warn(f"nifti_affine: the series' slices are not evenly spaced (steps of {steps.min():.4g} to "
                      f"{steps.max():.4g} mm, e.g. a slice missing); the NIfTI affine, which has one step, places "
                      f"slice {worst} (from 0) {misplaced[worst]:.3g} mm from its ImagePositionPatient", stacklevel=4)


def _numbers(path: Path, header: Any, keyword: str) -> list[float]:
    """The values of ``header``'s multi-valued ``keyword`` as floats; a ValueError naming the file and tag."""
    values = header.get(keyword)
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {keyword} {list(values)!r} is not a list of numbers") from None


def _instance_numbers(folder: Path, headers: dict[Path, Any]) -> dict[Path, float]:
    numbers = {file: header.get("InstanceNumber") for file, header in headers.items()}
    missing = [file for file, number in numbers.items() if number in (None, "")]
    if missing:
        unplaced = next(file for file, header in headers.items() if not _has_geometry(header))
        raise ValueError(f"{folder}: cannot order the {len(headers)} slices: {unplaced.name} has no "
                         f"ImagePositionPatient/ImageOrientationPatient and {missing[0].name} no InstanceNumber")
    return {file: float(number) for file, number in numbers.items()}


def _values(pydicom: Any, path: Path, dataset: Any) -> np.ndarray:
    """``dataset``'s frames after the Modality LUT, float32 ``(frames, rows, columns)``; its pixel data deleted."""
    _check_pixel_data(path, dataset)
    syntax = dataset.file_meta.get("TransferSyntaxUID")
    try:
        stored = dataset.pixel_array
    except MemoryError:
        raise
    except Exception as err:  # missing decoders (RuntimeError), corrupt data (several kinds)
        raise ValueError(f"{path}: cannot decode the pixel data ({syntax.name if syntax else 'no transfer syntax'}): "
                         f"{checks.one_line(err)}") from None
    frames = stored.reshape(-1, dataset.Rows, dataset.Columns)
    values = np.empty(frames.shape, np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # overflows are named below
        for i, frame in enumerate(frames):
            values[i] = _after_modality_lut(pydicom, path, frame, _modality_lut(dataset, i))
        if dataset.get("Modality") == "RTDOSE" and dataset.get("DoseGridScaling") is not None:
            values *= np.float32(dataset.DoseGridScaling)  # stored values to DoseUnits, outside the Modality LUT
    if not np.isfinite(values).all():
        bad = int(np.count_nonzero(~np.isfinite(values)))
        raise ValueError(f"{path}: {bad} values are NaN, Inf or beyond float32's range (±"
                         f"{float(np.finfo(np.float32).max):.4g}) after the rescale slope and intercept, in which "
                         "adareg holds volumes")
    for keyword in _PIXEL_KEYWORDS:
        if keyword in dataset:
            delattr(dataset, keyword)
    return values


#: The rescale tags and the standard's values for a missing or empty one.
_RESCALE_TAGS = (("RescaleSlope", "1"), ("RescaleIntercept", "0"))


def _rescale_tags(pydicom: Any, lut: Any) -> list[Any]:
    """``lut``'s RescaleSlope and RescaleIntercept as stored, a missing or empty one as the standard's 1 or 0
    (DS values): what reading and writing both take them to be."""
    DS = pydicom.valuerep.DS
    return [DS(default) if lut.get(keyword) in (None, "") else lut.get(keyword) for keyword, default in _RESCALE_TAGS]


def _after_modality_lut(pydicom: Any, path: Path, frame: np.ndarray, lut: Any) -> np.ndarray:
    """``frame``'s stored values through the Modality LUT held by ``lut``: its Modality LUT Sequence (by pydicom),
    else ``stored * RescaleSlope + RescaleIntercept`` (:func:`_rescale_tags`; pydicom's ``apply_modality_lut``
    rescales only where both tags are present)."""
    if lut.get("ModalityLUTSequence"):
        return pydicom.pixels.apply_modality_lut(frame, lut)
    rescale = []
    for (keyword, _), value in zip(_RESCALE_TAGS, _rescale_tags(pydicom, lut)):
        try:
            rescale.append(float(value))
        except (TypeError, ValueError):
            raise ValueError(f"{path}: {keyword} {value!r} is not one number") from None
    slope, intercept = rescale
    if slope == 0:
        raise ValueError(f"{path}: RescaleSlope is 0, which maps every stored value to the intercept")
    return frame * slope + intercept


def _stores_floats(dataset: Any) -> bool:
    """Whether ``dataset`` holds Float or Double Float Pixel Data (an image without integer steps to keep)."""
    return "FloatPixelData" in dataset or "DoubleFloatPixelData" in dataset


def _check_pixel_data(path: Path, dataset: Any) -> None:
    if not any(keyword in dataset for keyword in _PIXEL_KEYWORDS):
        kind = getattr(dataset.get("SOPClassUID"), "name", "unknown SOP class")
        raise ValueError(f"{path}: has no pixel data (SOP class: {kind})")


def _modality_lut(dataset: Any, frame: int) -> Any:
    """The dataset that holds ``frame``'s Modality LUT: an enhanced file's per-frame, else shared, Pixel Value
    Transformation, else ``dataset`` itself."""
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence") or []
    shared = dataset.get("SharedFunctionalGroupsSequence") or []
    for group in per_frame[frame:frame + 1] + shared[:1]:
        if group.get("PixelValueTransformationSequence"):
            return group.PixelValueTransformationSequence[0]
    return dataset


# ---------------------------------------------------------------------------------------------- writing


def write(folder: Path, data: np.ndarray, like: Volume | None, description: str) -> None:
    """Write ``data`` as a derived series of ``like``: one file ``IM0001.dcm``, ... per slice, atomically.

    Each file is a copy of ``like``'s dataset of that slice (patient, study, frame of
    reference, geometry, windowing and lossy-compression history kept) with a new
    SeriesInstanceUID (one for the series), a new SOPInstanceUID (also the file meta's
    MediaStorageSOPInstanceUID), ``SeriesDescription = description`` (at most 64
    characters; a non-ASCII one makes the files UTF-8, ``ISO_IR 192``), ImageType
    ``DERIVED\\SECONDARY`` (its further values kept), the input's MONOCHROME1/2, signed
    16-bit pixels, explicit VR little endian, uncompressed.  Elements that would
    lie about the new pixels are dropped (stored-value ranges, pixel padding, the Modality
    LUT Sequence, the icon, compression offsets), and so are, where the rescale is not
    the input's, the other maps of the stored values (Real World Value Mapping
    Sequences, Philips' private MR scale slope and intercept).

    Quantisation, per slice: ``stored = round((value - intercept) / slope)``.  The
    input's RescaleSlope and RescaleIntercept (1 and 0 where absent) are kept when the
    slice's stored values fit in int16 with them and span at least 256 of its steps (a
    derived series at the acquisition's precision: CT stays in 1 HU steps; rounding errs
    by at most 1/512 of the slice's range); otherwise (values on a finer scale than the
    input's, such as data mapped to [0, 1], whose steps of 1 would leave only 0 and 1),
    or when the input had a Modality LUT Sequence or float pixel data (no steps to keep:
    an ADC map of values near 1e-3 would round to 0), the intercept is the middle of the
    slice's value range and the slope maps that range onto [-32767, 32767].  Values are
    therefore written within half a slope.

    Parameters
    ----------
    folder
        The new series folder (new or empty; checked by :func:`adareg.io.volumes.write_volume`).
    data
        float ``(slices, rows, columns)`` in ``like``'s units (after the Modality LUT).
    like
        The DICOM volume ``data`` was computed from, single-frame files only.
    description
        The new series' SeriesDescription.

    Raises
    ------
    ValueError
        No ``like``, a multi-frame or RT Dose ``like``, a shape that is not ``like``'s, or NaN/Inf data.
    """
    pydicom = library("dicom")
    sources = _sources(folder, data, like)
    as_float32(data, f"{folder}: the data")  # NaN, Inf or beyond float32's range: refused as by the other formats
    series = pydicom.uid.generate_uid()
    text = description.replace("\\", "/")[:64]  # a backslash would split the LO value; 64 is LO's limit
    width = max(4, len(str(len(sources))))

    keep_rescale = not like.metadata.get("float_pixels", False)

    def write_files(temporary: Path) -> None:
        for i, (source, image) in enumerate(zip(sources, data)):
            dataset = _derived(pydicom, source, image, series, text, keep_rescale)
            pydicom.dcmwrite(temporary / f"IM{i + 1:0{width}d}.dcm", dataset, enforce_file_format=True)

    write_folder_atomically(folder, write_files)


def check_writable(folder: Path, like: Volume | None) -> None:
    """Refuse, before any work, a ``like`` from which no series can be written: none, not DICOM, a
    multi-frame file, files without a SOP class, an RT Dose."""
    if like is None or like.format != "dicom":
        raise ValueError(f"{folder}: a DICOM series is written from a DICOM input (like: it keeps the input's "
                         "patient and study); write NIfTI (.nii.gz) or TIFF instead")
    datasets = like.metadata["datasets"]
    frames = max(int(dataset.get("NumberOfFrames") or 1) for dataset in datasets)
    if frames > 1:
        raise ValueError(f"{folder}: the input was a multi-frame DICOM file ({frames} frames), which adareg does not "
                         "write back; write NIfTI (.nii.gz) or TIFF instead")
    if any(_sop_class(dataset) is None for dataset in datasets):
        raise ValueError(f"{folder}: the input's files name no SOP class (SOPClassUID, nor the file meta's "
                         "MediaStorageSOPClassUID), which a derived series must state; write NIfTI (.nii.gz) or TIFF "
                         "instead")
    if any(dataset.get("Modality") == "RTDOSE" for dataset in datasets):
        raise ValueError(f"{folder}: the input was an RT Dose, whose doses adareg does not write back as DICOM (its "
                         "DoseGridScaling would no longer hold); write NIfTI (.nii.gz) or TIFF instead")


def _sources(folder: Path, data: np.ndarray, like: Volume | None) -> list[Any]:
    """``like``'s datasets, checked (:func:`check_writable`) and against ``data``'s shape."""
    check_writable(folder, like)
    datasets = like.metadata["datasets"]
    shape = (len(datasets), datasets[0].Rows, datasets[0].Columns)
    if tuple(data.shape) != shape:
        raise ValueError(f"{folder}: data of shape {tuple(data.shape)} do not match the input series' "
                         f"{shape} (slices, rows, columns)")
    return datasets


def _sop_class(dataset: Any) -> Any:
    """The dataset's SOPClassUID, or its file meta's MediaStorageSOPClassUID where it lacks one; ``None`` if neither."""
    meta = getattr(dataset, "file_meta", None)
    return dataset.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta is not None else None)


def _derived(pydicom: Any, source: Any, image: np.ndarray, series: str, description: str, keep_rescale: bool
             ) -> Any:
    """A copy of ``source`` holding ``image`` as a new instance of the derived series (``keep_rescale``: see
    :func:`_rescale`)."""
    dataset = copy.deepcopy(source)
    for keyword in _STALE_KEYWORDS:
        if keyword in dataset:
            delattr(dataset, keyword)
    slope, intercept, kept = _rescale(pydicom, source, image, keep_rescale)
    stored = np.round((image.astype(np.float64) - float(intercept)) / float(slope)).astype("<i2")
    dataset.RescaleSlope, dataset.RescaleIntercept = slope, intercept
    lut = _modality_lut(dataset, 0)  # an enhanced file's functional group, which readers prefer
    lut.RescaleSlope, lut.RescaleIntercept = slope, intercept
    if "ModalityLUTSequence" in lut:
        del lut.ModalityLUTSequence
    if not kept:
        _drop_stored_value_maps(dataset)
    if "RescaleType" not in dataset and dataset.get("Modality") != "CT":
        dataset.RescaleType = "US"  # required with a rescale; "unspecified", as the input named no unit
    old_type = source.get("ImageType") or []
    dataset.ImageType = ["DERIVED", "SECONDARY"] + ([] if isinstance(old_type, str) else list(old_type)[2:])
    dataset.SeriesInstanceUID = series
    dataset.SOPClassUID = _sop_class(source)
    dataset.SOPInstanceUID = pydicom.uid.generate_uid()
    if not description.isascii():  # in UTF-8, every text element re-encoded (decoded first in its own set)
        dataset.decode()
        dataset.SpecificCharacterSet = "ISO_IR 192"
    dataset.SeriesDescription = description
    # the values keep their meaning, so MONOCHROME1 (white is low) stays MONOCHROME1
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = source.get("PhotometricInterpretation", "MONOCHROME2")
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 16, 15, 1
    dataset.PixelData = stored.tobytes()
    dataset["PixelData"].VR = "OW"
    dataset.file_meta = pydicom.dataset.FileMetaDataset()
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    return dataset


def _drop_stored_value_maps(dataset: Any) -> None:
    """Delete ``dataset``'s maps of its stored values other than the rescale, which a new rescale makes wrong:
    Real World Value Mapping Sequences (also in an enhanced file's functional groups) and Philips' private scale."""
    groups = [*(dataset.get("PerFrameFunctionalGroupsSequence") or []),
              *(dataset.get("SharedFunctionalGroupsSequence") or [])]
    for holder in (dataset, *groups):
        if "RealWorldValueMappingSequence" in holder:
            del holder.RealWorldValueMappingSequence
    group, creator, offsets = _PHILIPS_SCALE
    try:
        block = dataset.private_block(group, creator)
    except KeyError:  # no such private creator
        return
    for offset in offsets:
        if offset in block:
            del block[offset]


def _rescale(pydicom: Any, source: Any, image: np.ndarray, keep: bool) -> tuple[Any, Any, bool]:
    """RescaleSlope and RescaleIntercept (DS values) for ``image``: ``source``'s where ``keep``, they fit and the image
    spans enough of their steps (see :func:`write`), else spanning the image's range; and whether they are
    ``source``'s."""
    DS = pydicom.valuerep.DS
    low, high = float(image.min()), float(image.max())
    lut = _modality_lut(source, 0)
    if keep and not lut.get("ModalityLUTSequence"):
        slope, intercept = _rescale_tags(pydicom, lut)  # as read
        step = float(slope)
        if step > 0 and (high - low) / step >= _KEPT_RESCALE_STEPS and \
                _INT16_MIN <= round((low - float(intercept)) / step) and \
                round((high - float(intercept)) / step) <= _INT16_MAX:
            return slope, intercept, True
    intercept = DS((low + high) / 2, auto_format=True)  # formatted first: the stored values use the written text
    spread = max(high - float(intercept), float(intercept) - low)
    return (DS(spread / _INT16_MAX, auto_format=True) if spread > 0 else DS("1")), intercept, False
