r"""fastMRI raw data: multi-coil and single-coil k-space in HDF5, with fastMRI's conventions.

A fastMRI file (Zbontar et al., 2018; https://fastmri.org) holds, per volume:

=======================  ==============================================  =====================================
dataset / attribute      shape                                           read as
=======================  ==============================================  =====================================
``kspace``               ``(slices, coils, rows, columns)`` multi-coil,  ``FastMRIData.kspace``, complex64,
                         ``(slices, rows, columns)`` single-coil         always 4D (single-coil: ``coils = 1``)
``mask`` (test and       ``(columns,)``                                  ``FastMRIData.mask``, bool
challenge files only)
``reconstruction_rss``   ``(slices, h, w)``                              ``FastMRIData.reference``, float32
(multi-coil) /
``reconstruction_esc``
(single-coil)
``ismrmrd_header``       ISMRMRD XML                                     ``encoding/encodedSpace/matrixSize``
                                                                         -> ``encoded_shape`` (x, y);
                                                                         ``encoding/reconSpace/matrixSize``
                                                                         -> ``recon_shape`` (x, y)
attributes               ``acquisition``, ``max``, ``norm``, ...         ``FastMRIData.attrs``
=======================  ==============================================  =====================================

Conventions (fastMRI's, so that results compare with published numbers):

* Axes: ``rows`` is the readout (frequency-encoding) direction, fully sampled and
  usually oversampled twice (640 rows for a 320-pixel field of view); ``columns`` are
  the phase encodes, the axis an undersampling mask selects.  No flip or transpose is
  applied: slices, rows and columns are as stored.
* k-space is as stored (the scanner's arbitrary units), in the centred orthonormal
  convention of fastMRI's ``fft2c``/``ifft2c``,
  ``ifft2c(k) = fftshift(ifft2(ifftshift(k), norm="ortho"))`` over the last two axes, with
  DC at index ``N // 2``: the convention of :class:`adareg.operators.CartesianMRI`.
* Images are magnitudes in the file's units: the reference ``reconstruction_rss`` is the
  root-sum-of-squares over coils of ``|ifft2c(kspace)|``, centre-cropped (:func:`adareg.mri.center_crop`:
  start ``(size - crop) // 2`` on each axis) to the reconSpace matrix ``recon_shape``
  (320 x 320 for knee and brain), which :func:`adareg.mri.zero_filled_rss` reproduces.

h5py is optional (``pip install adareg[io]``), imported when a file is read.  Every
error reading a file is one line starting with the file's path.
"""

from __future__ import annotations

import os
import warnings
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import checks
from .formats import library

_ISMRMRD = "http://www.ismrm.org/ISMRMRD"


@dataclass(frozen=True, eq=False)
class FastMRIData:
    """The contents of a fastMRI file (or of the slices read from it).

    Attributes
    ----------
    kspace
        complex64 array of shape ``(slices, coils, rows, columns)``, as stored; a
        single-coil file has ``coils = 1``.  Test and challenge files hold undersampled
        k-space, zero where ``mask`` is False.
    mask
        The file's sampling mask, bool of shape ``(columns,)``, or ``None`` (fully
        sampled train/validation files).
    reference
        float32 array ``(slices, h, w)``: ``reconstruction_rss`` (multi-coil) or
        ``reconstruction_esc`` (single-coil), or ``None`` where the file has none.
    encoded_shape
        The encodedSpace matrix ``(x, y)`` of the ISMRMRD header.
    recon_shape
        The reconSpace matrix ``(x, y)``: the crop of the magnitude image (rows, columns).
    attrs
        The file's HDF5 attributes (``acquisition``, ``max``, ``norm``, ``patient_id``...),
        bytes decoded and NumPy scalars as Python numbers.
    slices
        The file's indices of the slices read (int), in the order of ``kspace``.
    path
        The file read (``None`` when built otherwise); used in error messages.
    """

    kspace: np.ndarray
    mask: np.ndarray | None
    reference: np.ndarray | None
    encoded_shape: tuple[int, int]
    recon_shape: tuple[int, int]
    attrs: dict[str, Any]
    slices: np.ndarray
    path: Path | None = None


# ------------------------------------------------------------------------------------------ reading
def read_fastmri(path: str | os.PathLike, slices: int | slice | Sequence[int] | None = None) -> FastMRIData:
    """Read a fastMRI HDF5 file, or some of its slices (only those are loaded, by h5py slicing).

    Parameters
    ----------
    path
        A fastMRI ``.h5`` file (multi-coil or single-coil; train, validation, test or challenge).
    slices
        ``None`` (all), an int, a Python ``slice`` or a sequence of ints: the slices to
        read, in that order (negative indices count from the end, as in Python).  The
        result keeps the slice axis in every case.

    Returns
    -------
    FastMRIData

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Not an HDF5 file or unreadable; no ``kspace`` dataset, or one of the wrong rank or
        not complex; a ``mask`` not of length ``columns``; a reference not of shape
        ``(slices, h, w)``; a missing or malformed ``ismrmrd_header``; slices out of range.
        One line, starting with ``path``.
    TypeError
        ``slices`` is none of the kinds above (e.g. a string, a float or a set), or one of
        its indices is not an int.
    ImportError
        h5py is not installed.

    Warns
    -----
    UserWarning
        The k-space's rows and columns are not the header's encoded matrix (x, y), as
        when it is stored in another axis order.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    h5py = library("fastmri")
    if path.is_dir():
        raise ValueError(f"{path}: a folder, not a fastMRI file (HDF5)")
    try:
        hdf5 = h5py.is_hdf5(os.fspath(path))
    except OSError as err:
        raise ValueError(f"{path}: unreadable ({checks.one_line(err)})") from None
    if not hdf5:
        raise ValueError(f"{path}: not an HDF5 file (fastMRI files are HDF5 .h5)")
    try:
        with h5py.File(path, "r") as file:
            return _read(file, path, slices, h5py)
    except OSError as err:  # corrupt or truncated HDF5 (h5py raises OSError)
        raise ValueError(f"{path}: unreadable HDF5 file ({checks.one_line(err)})") from None


def _read(file: Any, path: Path, slices: Any, h5py: Any) -> FastMRIData:
    kspace_set = file.get("kspace")
    if not isinstance(kspace_set, h5py.Dataset):
        present = ", ".join(sorted(file.keys())) or "nothing"
        what = "no 'kspace' dataset" if kspace_set is None else "'kspace' is not a dataset"
        raise ValueError(f"{path}: {what}; the file holds: {present}")
    if kspace_set.ndim not in (3, 4):
        raise ValueError(f"{path}: 'kspace' must have shape (slices, coils, rows, columns) or (slices, rows, "
                         f"columns), got {kspace_set.shape}")
    if kspace_set.dtype.kind != "c":
        raise ValueError(f"{path}: 'kspace' must be complex, got dtype {kspace_set.dtype}")
    count, columns = kspace_set.shape[0], kspace_set.shape[-1]
    if count == 0 or 0 in kspace_set.shape:
        raise ValueError(f"{path}: 'kspace' is empty, shape {kspace_set.shape}")
    indices, selection, order = _selection(slices, count, path)
    encoded_shape, recon_shape = _header(file, path, h5py)
    if tuple(kspace_set.shape[-2:]) != encoded_shape:  # fastMRI's own files agree; another axis order would not
        warnings.warn(f"{path}: 'kspace' has {kspace_set.shape[-2]} rows and {columns} columns, but the header's "
                      f"encoded matrix is {encoded_shape[0]} x {encoded_shape[1]}; adareg reads 'kspace' as "
                      "(slices, coils, rows, columns), as fastMRI stores it: in another axis order it reads as "
                      "nonsense", stacklevel=3)

    mask = None
    if "mask" in file:
        mask_set = file["mask"]
        if not isinstance(mask_set, h5py.Dataset) or mask_set.ndim != 1 or mask_set.shape[0] != columns:
            shape = getattr(mask_set, "shape", "a group")
            raise ValueError(f"{path}: 'mask' must have shape (columns,) = ({columns},), got {shape}")
        mask = np.asarray(mask_set[()])
        if mask.dtype != bool:
            if mask.dtype.kind not in "biuf" or not np.all((mask == 0) | (mask == 1)):
                raise ValueError(f"{path}: 'mask' must be boolean or 0/1, got dtype {mask.dtype}")
            mask = mask.astype(bool)
        if not mask.any():
            raise ValueError(f"{path}: 'mask' samples no column")

    name = "reconstruction_rss" if kspace_set.ndim == 4 else "reconstruction_esc"
    reference = None
    if name in file:
        reference_set = file[name]
        if not isinstance(reference_set, h5py.Dataset) or reference_set.ndim != 3 or \
                reference_set.shape[0] != count or reference_set.dtype.kind not in "iuf":
            shape = getattr(reference_set, "shape", "a group")
            raise ValueError(f"{path}: '{name}' must be a real array of shape (slices, h, w) with {count} slices "
                             f"like 'kspace', got {shape}")
        reference = np.asarray(reference_set[selection], dtype=np.float32)[order]

    stored = np.asarray(kspace_set[selection])
    with np.errstate(over="ignore", invalid="ignore"):  # values beyond complex64's range are named below
        kspace = stored.astype(np.complex64, copy=False)[order]
    finite = np.isfinite(kspace).reshape(len(kspace), -1).all(axis=1)
    if not finite.all():  # one such sample spreads through the inverse FFT over its slice's whole image
        bad, where = int(np.count_nonzero(~np.isfinite(kspace))), indices[~finite]
        plural = "s" if bad > 1 else ""
        what = f"NaN or Inf value{plural}" if not np.isfinite(stored).all() else \
            f"value{plural} beyond complex64's range"
        raise ValueError(f"{path}: 'kspace' holds {bad} {what} (in slice"
                         f"{'s' if len(where) > 1 else ''} {', '.join(str(int(i)) for i in where)}); "
                         "expected finite values")
    if kspace.ndim == 3:
        kspace = kspace[:, None]
    attrs = {key: _attribute(value) for key, value in file.attrs.items()}
    return FastMRIData(kspace=np.ascontiguousarray(kspace), mask=mask, reference=reference,
                       encoded_shape=encoded_shape, recon_shape=recon_shape, attrs=attrs, slices=indices, path=path)


def _selection(slices: Any, count: int, path: Path) -> tuple[np.ndarray, Any, Any]:
    """The slice indices asked for, what to read with h5py, and how to reorder what it returns.

    h5py reads a slice with a positive step, or an increasing list of distinct indices;
    other orders (and repeats) are read sorted and reordered afterwards.
    """
    if slices is None:
        return np.arange(count), slice(None), slice(None)
    if isinstance(slices, slice):
        bounds = (slices.start, slices.stop, slices.step)
        if any(bound is not None and not checks.is_int(bound) for bound in bounds) or slices.step == 0:
            raise ValueError(f"{path}: slices {slices} must have int (or None) bounds and a non-zero int step")
        indices = np.arange(count)[slices]
        if indices.size == 0:
            raise ValueError(f"{path}: slices {slices} select none of the file's {count} slices")
        if slices.step is None or slices.step > 0:
            step = int(indices[1] - indices[0]) if indices.size > 1 else 1
            return indices, slice(int(indices[0]), int(indices[-1]) + 1, step), slice(None)
        return indices, *_sorted_read(indices)
    if checks.is_int(slices) or isinstance(slices, np.ndarray) and slices.ndim == 0:
        index = _index(slices, count, path)
        return np.array([index]), slice(index, index + 1), slice(None)
    if isinstance(slices, (str, bytes)) or not isinstance(slices, (Sequence, np.ndarray)):
        raise TypeError(f"{path}: slices must be None, an int, a slice or a sequence of ints, got "
                        f"{type(slices).__name__}")
    values = list(slices)
    if not values:
        raise ValueError(f"{path}: slices is empty; pass None to read all {count} slices")
    indices = np.array([_index(value, count, path) for value in values])
    return indices, *_sorted_read(indices)


def _sorted_read(indices: np.ndarray) -> tuple[list[int], np.ndarray]:
    unique = np.unique(indices)
    return [int(i) for i in unique], np.searchsorted(unique, indices)


def _index(value: Any, count: int, path: Path) -> int:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if not checks.is_int(value):
        raise TypeError(f"{path}: slice indices must be ints, got {value!r} ({type(value).__name__})")
    index = int(value)
    if not -count <= index < count:
        raise ValueError(f"{path}: slice {index} out of range; the file has {count} slices (0 to {count - 1})")
    return index % count


def _header(file: Any, path: Path, h5py: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """``encoded_shape`` and ``recon_shape`` from the ISMRMRD XML header."""
    header = file.get("ismrmrd_header")
    if not isinstance(header, h5py.Dataset):
        what = "no 'ismrmrd_header' dataset" if header is None else "'ismrmrd_header' is not a dataset"
        raise ValueError(f"{path}: {what} (the ISMRMRD XML header, needed for the encoded and recon matrix sizes)")
    text = header[()]
    if isinstance(text, np.ndarray):
        text = text.item() if text.size == 1 else None
    if isinstance(text, np.bytes_):
        text = bytes(text)
    if not isinstance(text, (bytes, str)):
        raise ValueError(f"{path}: 'ismrmrd_header' must hold one XML string, got dtype {header.dtype} and shape "
                         f"{header.shape}")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as err:
        raise ValueError(f"{path}: 'ismrmrd_header' is not valid XML ({checks.one_line(err)})") from None
    namespace = {"ns": _ISMRMRD} if root.tag.startswith("{" + _ISMRMRD + "}") else None
    shapes = []
    for space in ("encodedSpace", "reconSpace"):
        size = []
        for axis in ("x", "y"):
            names = ("encoding", space, "matrixSize", axis)
            query = "/".join(f"ns:{name}" for name in names) if namespace else "/".join(names)
            element = root.find(query, namespace)
            where = "/".join(names)
            if element is None:
                raise ValueError(f"{path}: 'ismrmrd_header' has no {where} element")
            value = (element.text or "").strip()
            try:
                number = int(value)
            except ValueError:
                number = 0
            if number < 1:
                raise ValueError(f"{path}: 'ismrmrd_header' {where} is {value!r}, expected a positive integer")
            size.append(number)
        shapes.append((size[0], size[1]))
    return shapes[0], shapes[1]


def _attribute(value: Any) -> Any:
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


__all__ = ["FastMRIData", "read_fastmri"]
