r"""fastMRI raw data: multi-coil and single-coil k-space in HDF5, with fastMRI's conventions.

A fastMRI file (Zbontar et al., 2018; https://fastmri.org) holds, per volume:

=======================  ==============================================  =====================================
dataset / attribute      shape                                           read as
=======================  ==============================================  =====================================
``kspace``               ``(slices, coils, rows, columns)`` multi-coil,  :attr:`FastMRIData.kspace`, complex64,
                         ``(slices, rows, columns)`` single-coil         always 4D (single-coil: ``coils = 1``)
``mask`` (test and       ``(columns,)``                                  :attr:`FastMRIData.mask`, bool
challenge files only)
``reconstruction_rss``   ``(slices, h, w)``                              :attr:`FastMRIData.reference`, float32
(multi-coil) /
``reconstruction_esc``
(single-coil)
``ismrmrd_header``       ISMRMRD XML                                     ``encoding/encodedSpace/matrixSize``
                                                                         -> ``encoded_shape`` (x, y);
                                                                         ``encoding/reconSpace/matrixSize``
                                                                         -> ``recon_shape`` (x, y)
attributes               ``acquisition``, ``max``, ``norm``, ...         :attr:`FastMRIData.attrs`
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
  root-sum-of-squares over coils of ``|ifft2c(kspace)|``, centre-cropped (:func:`center_crop`:
  start ``(size - crop) // 2`` on each axis) to the reconSpace matrix ``recon_shape``
  (320 x 320 for knee and brain), which :func:`zero_filled_rss` reproduces.

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
from typing import Any, Literal

import numpy as np

from .. import backend, checks
from ..backend import Array
from ..mri import Seed, cartesian_mask, espirit_maps
from ..operators.mri import CartesianMRI
from .formats import library

#: ESPIRiT's kernel width used by :func:`slice_operator` (the default of :func:`adareg.mri.espirit_maps`).
ESPIRIT_KERNEL_WIDTH = 6

#: The largest calibration width :func:`slice_operator` uses by default.
MAX_CALIB_WIDTH = 24

#: fastMRI challenge's centre fractions, by acceleration (other accelerations: 0.32 / acceleration).
CENTER_FRACTIONS = {4: 0.08, 8: 0.04}

_ISMRMRD = "http://www.ismrm.org/ISMRMRD"


@dataclass(frozen=True, eq=False)
class FastMRIData:
    """The contents of a fastMRI file (or of the slices read from it).

    Attributes
    ----------
    kspace
        complex64 array of shape ``(slices, coils, rows, columns)``, as stored; a
        single-coil file has ``coils = 1``.  Test and challenge files hold undersampled
        k-space, zero where :attr:`mask` is False.
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
        The file's indices of the slices read (int), in the order of :attr:`kspace`.
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


# ---------------------------------------------------------------------------------- sampling masks
def column_mask(data: FastMRIData, acceleration: float | None = None, center_fraction: float | None = None, *,
                kind: Literal["random", "equispaced"] = "random", seed: Seed = 0) -> np.ndarray:
    """The columns sampled: the file's own mask, or a retrospective undersampling of fully sampled data.

    Parameters
    ----------
    data
        A file read by :func:`read_fastmri`.
    acceleration
        ``None``: the file's ``mask`` (test and challenge files; an error for a file
        without one).  Otherwise the undersampling factor of a mask drawn by
        :func:`adareg.mri.cartesian_mask` (fastMRI's ``RandomMaskFunc`` or
        ``EquispacedMaskFractionFunc``) over the ``columns`` phase encodes, for fully
        sampled files only (an error for a file with a ``mask``).
    center_fraction
        Fraction of fully sampled central columns; by default the fastMRI challenge's:
        0.08 at x4, 0.04 at x8, and ``0.32 / acceleration`` otherwise (the same 0.32 of
        the columns sampled in the centre as at x4 and x8).
    kind
        ``"random"`` or ``"equispaced"`` (see :func:`adareg.mri.cartesian_mask`).
    seed
        Seed or generator of the drawn mask (the same seed gives the same mask).

    Returns
    -------
    numpy.ndarray
        bool array of shape ``(columns,)``, a copy.
    """
    if not isinstance(data, FastMRIData):
        raise TypeError(f"column_mask: data must be FastMRIData (from read_fastmri), got {type(data).__name__}")
    name = data.path if data.path is not None else "column_mask"
    if acceleration is None:
        if center_fraction is not None:
            raise ValueError(f"{name}: center_fraction is given without acceleration; give both for a "
                             "retrospective mask, or neither for the file's own mask")
        if data.mask is None:
            raise ValueError(f"{name}: the file has no 'mask' (fully sampled data); pass acceleration (e.g. 4) "
                             "for a retrospective mask")
        return np.array(data.mask, dtype=bool)
    if data.mask is not None:
        raise ValueError(f"{name}: the file's k-space is already undersampled (it has a 'mask'); a retrospective "
                         "mask needs fully sampled data: call column_mask(data) for the file's own mask")
    acceleration = checks.real_number(acceleration, "column_mask: acceleration")
    if acceleration < 1:
        raise ValueError(f"column_mask: acceleration must be a finite number >= 1, got {acceleration:g}")
    columns = data.kspace.shape[-1]
    if center_fraction is None:
        center_fraction = CENTER_FRACTIONS.get(acceleration, 0.32 / acceleration)
        if round(columns * center_fraction) < 1:
            raise ValueError(f"{name}: the default center_fraction at x{acceleration:g}, {center_fraction:g}, keeps "
                             f"no column of {columns}: give a center_fraction or a lower acceleration")
    return cartesian_mask((columns,), acceleration, center_fraction, kind=kind, seed=seed)


def calibration_width(mask: Any) -> int:
    """The number of columns in the contiguous sampled run that contains the centre column ``columns // 2``.

    0 when the centre column is not sampled.  ``mask`` is a column mask ``(columns,)``
    (bool or 0/1; NumPy or CuPy).
    """
    mask = _column_mask(mask, "calibration_width")
    centre = mask.size // 2
    if not mask[centre]:
        return 0
    unsampled = np.flatnonzero(~mask)
    left = unsampled[unsampled < centre]
    right = unsampled[unsampled > centre]
    start = int(left[-1]) + 1 if left.size else 0
    stop = int(right[0]) if right.size else mask.size
    return stop - start


def _column_mask(mask: Any, who: str) -> np.ndarray:
    mask = backend.to_numpy(mask) if backend.is_array(mask) else np.asarray(mask)
    if mask.ndim != 1 or mask.size == 0:
        raise ValueError(f"{who}: mask must be a column mask of shape (columns,), got shape {mask.shape}")
    if mask.dtype != bool:
        if mask.dtype.kind not in "biuf" or not np.all((mask == 0) | (mask == 1)):
            raise ValueError(f"{who}: mask must be boolean or 0/1, got dtype {mask.dtype}")
        mask = mask.astype(bool)
    return mask


def _centred_width(mask: np.ndarray) -> int:
    """The widest calibration window ESPIRiT can use: columns ``N//2 - w//2`` to ``N//2 - w//2 + w - 1`` all sampled.

    (SigPy crops the calibration region this way.)  Equals :func:`calibration_width`
    for fastMRI's masks, whose centre is that window; less when random columns next to
    the centre make the sampled run lopsided.
    """
    centre = mask.size // 2
    width = 0
    while width < mask.size:
        start = centre - (width + 1) // 2
        if start < 0 or start + width + 1 > mask.size or not mask[start:start + width + 1].all():
            break
        width += 1
    return width


# ------------------------------------------------------------------------------------------ operators
def slice_operator(kspace_slice: Array, mask: Any, *, calib_width: int | None = None, real: bool = False
                   ) -> CartesianMRI:
    r"""The SENSE forward model of one slice, with coil maps estimated from its own k-space by ESPIRiT.

    The maps are :func:`adareg.mri.espirit_maps` of the masked k-space ``mask * kspace_slice``
    (calibration on its central ``calib_width`` x ``calib_width`` samples); the operator is
    ``CartesianMRI(mask broadcast to (rows, columns), maps, real=False)`` on complex images
    of shape ``(rows, columns)``, mapping to ``(coils, rows, columns)``, so that
    ``H(x) ~ mask * kspace_slice`` for the slice's image ``x`` (up to the maps' phase,
    which ESPIRiT sets relative to coil 0).  A single-coil slice (``coils = 1``) gets the
    map 1 (no ESPIRiT, no SigPy needed).

    With ``real=True`` the operator acts on real images: the maps are multiplied by the
    phase :math:`e^{i\varphi}` of the low-resolution image of the calibration region,
    :math:`\varphi = \arg \sum_c \bar S_c \mathcal{F}^{-1}(C y_c)` (``C`` keeps the
    central ``calib_width`` x ``calib_width`` samples), so that the slice is a real,
    nonnegative magnitude image under the smooth phase estimated from its own data: the
    image space of adareg's learned models, which are trained on real images.

    Parameters
    ----------
    kspace_slice
        One slice's k-space ``(coils, rows, columns)``, complex, NumPy or CuPy (the maps
        are computed on its device), e.g. ``data.kspace[i]``.
    mask
        Column mask ``(columns,)``, e.g. :func:`column_mask`'s.
    calib_width
        ESPIRiT's calibration width.  Default: ``min(calibration_width(mask), 24)``, where
        the sampled run is taken as the widest window centred as SigPy crops it (the same
        for fastMRI's masks).  It must be at least ESPIRiT's kernel width, 6, and its
        centred window fully sampled.  For one coil it is the width of the phase's
        calibration window with ``real=True`` (any width from 1), unused with ``real=False``.
    real
        Real image space, with the calibration phase in the maps (see above).

    Returns
    -------
    CartesianMRI
    """
    who = "slice_operator"
    if not backend.is_array(kspace_slice):
        raise TypeError(f"{who}: kspace_slice must be a NumPy or CuPy array, got {type(kspace_slice).__name__}")
    if kspace_slice.ndim != 3 or kspace_slice.dtype.kind != "c":
        raise ValueError(f"{who}: kspace_slice must be complex of shape (coils, rows, columns), got shape "
                         f"{tuple(kspace_slice.shape)} and dtype {kspace_slice.dtype}; for one slice of a "
                         "FastMRIData use data.kspace[i]")
    coils, rows, columns = (int(n) for n in kspace_slice.shape)
    real = checks.flag(real, f"{who}: real")
    mask = _column_mask(mask, who)
    if mask.size != columns:
        raise ValueError(f"{who}: mask has {mask.size} columns but kspace_slice has {columns}")
    image_mask = np.broadcast_to(mask, (rows, columns))
    xp = backend.namespace(kspace_slice)
    if not bool(xp.any(kspace_slice != 0)):
        raise ValueError(f"{who}: the slice's k-space is all zero: no signal to reconstruct or to estimate coil maps "
                         "from")
    available = _centred_width(mask)
    if coils == 1 and not real:  # the map is 1 and no phase is estimated: nothing to calibrate
        return CartesianMRI(image_mask, xp.ones((1, rows, columns), dtype=kspace_slice.dtype), real=False)
    if coils == 1 and available == 0:  # the phase's calibration window would sample nothing
        raise ValueError(f"{who}: real=True takes the image's phase from the fully sampled columns centred on "
                         f"column {mask.size // 2}, which the mask does not sample; use a mask that samples the "
                         "centre of k-space, or real=False")
    espirit = coils > 1  # one coil calibrates only the phase, on a window of any width
    if calib_width is None:
        calib_width = min(available, MAX_CALIB_WIDTH, rows)
        if espirit and calib_width < ESPIRIT_KERNEL_WIDTH:
            raise ValueError(
                f"{who}: the mask's fully sampled window centred on column {mask.size // 2} has {available} "
                f"columns (of a sampled run of {calibration_width(mask)}), fewer than the "
                f"{ESPIRIT_KERNEL_WIDTH} that ESPIRiT's kernel needs for coil maps; use a mask with a wider centre "
                "(a lower acceleration or a larger center_fraction)"
            )
    else:
        calib_width = checks.count(calib_width, f"{who}: calib_width")
        if espirit and calib_width < ESPIRIT_KERNEL_WIDTH:
            raise ValueError(f"{who}: calib_width {calib_width} is less than ESPIRiT's kernel width "
                             f"{ESPIRIT_KERNEL_WIDTH}")
        if calib_width > available:
            raise ValueError(f"{who}: calib_width {calib_width} reaches unsampled columns: only the central "
                             f"{available} columns are fully sampled")
    if not espirit:
        return _phased(image_mask, xp.ones((1, rows, columns), dtype=kspace_slice.dtype), kspace_slice,
                       calib_width, real)
    masked = kspace_slice * backend.DeviceCache(mask).like(kspace_slice, backend.real_dtype(kspace_slice.dtype))
    maps = espirit_maps(masked, calib_width=calib_width, kernel_width=ESPIRIT_KERNEL_WIDTH)  # refuses zero maps
    return _phased(image_mask, maps, masked, calib_width, real)


def _phased(image_mask: np.ndarray, maps: Array, kspace: Array, calib_width: int, real: bool) -> CartesianMRI:
    """``CartesianMRI`` of the maps; on real images with the calibration image's phase put into the maps."""
    if not real:
        return CartesianMRI(image_mask, maps, real=False)
    rows, columns = image_mask.shape
    centre = np.zeros((rows, columns), dtype=bool)
    top, left = rows // 2 - calib_width // 2, columns // 2 - calib_width // 2
    centre[max(top, 0):top + calib_width, max(left, 0):left + calib_width] = True
    low = CartesianMRI(centre & image_mask, maps, real=False).H(kspace)
    xp = backend.namespace(low)
    magnitude = xp.abs(low)
    phase = xp.where(magnitude > 0, low / xp.where(magnitude > 0, magnitude, 1), 1)
    return CartesianMRI(image_mask, maps * phase, real=True)


# ------------------------------------------------------------------------------------------- images
def reconstruction_crop(recon_shape: Any, image_shape: tuple[int, int], who: str) -> tuple[int, int]:
    """The crop ``(h, w)`` of a reconstruction of ``image_shape`` to ``recon_shape`` by fastMRI's "FLAIR 203" rule.

    fastMRI's baselines crop to ``recon_shape``, except where it is wider than the
    k-space's columns (some FLAIR files): then to ``(columns, columns)``.  ``who`` names
    the caller in the ``ValueError`` for a crop taller than the images.
    """
    rows, columns = image_shape
    h, w = _shape2(recon_shape, f"{who}: recon_shape")
    if w > columns:  # fastMRI's run_zero_filled: "check for FLAIR 203"
        h, w = columns, columns
    if h > rows:
        raise ValueError(f"{who}: recon_shape {(h, w)} is larger than the images' {(rows, columns)}")
    return h, w


def center_crop(images: Array, shape: Any) -> Array:
    """The central ``shape = (h, w)`` of the last two axes, as fastMRI's ``center_crop``.

    The crop starts at ``(size - crop) // 2`` on each axis (for an odd difference, one
    more row or column is dropped at the end than at the start).  A view, on the
    input's backend.

    Raises
    ------
    ValueError
        ``shape`` not two positive ints, or larger than the images.
    """
    if not backend.is_array(images):
        raise TypeError(f"center_crop: images must be a NumPy or CuPy array, got {type(images).__name__}")
    h, w = _shape2(shape, "center_crop: shape")
    if images.ndim < 2:
        raise ValueError(f"center_crop: images must have at least 2 axes, got shape {tuple(images.shape)}")
    rows, columns = images.shape[-2:]
    if h > rows or w > columns:
        raise ValueError(f"center_crop: crop {(h, w)} is larger than the images' {(rows, columns)}")
    top, left = (rows - h) // 2, (columns - w) // 2
    return images[..., top:top + h, left:left + w]


def _shape2(shape: Any, what: str) -> tuple[int, int]:
    try:
        values = tuple(shape)
    except TypeError:
        values = ()
    if len(values) != 2 or any(not checks.is_int(n) or n < 1 for n in values):
        raise ValueError(f"{what} must be two positive ints (h, w), got {shape!r}")
    return int(values[0]), int(values[1])


def rss(coil_images: Array, axis: int = -3) -> Array:
    r"""Root-sum-of-squares coil combination :math:`\sqrt{\sum_c |z_c|^2}` over ``axis``.

    Real output in the input's precision (complex64 -> float32), on its backend.
    """
    if not backend.is_array(coil_images):
        raise TypeError(f"rss: coil_images must be a NumPy or CuPy array, got {type(coil_images).__name__}")
    if not -coil_images.ndim <= axis < coil_images.ndim:
        raise ValueError(f"rss: axis {axis} is out of range for shape {tuple(coil_images.shape)}")
    xp = backend.namespace(coil_images)
    magnitude = xp.abs(coil_images)
    if magnitude.dtype.kind != "f":
        magnitude = xp.astype(magnitude, xp.float64)
    return xp.sqrt(xp.sum(magnitude * magnitude, axis=axis))


def _ifft2c(kspace: Array) -> Array:
    """fastMRI's ``ifft2c``: ``fftshift(ifft2(ifftshift(k), norm="ortho"))`` over the last two axes."""
    xp = backend.namespace(kspace)
    axes = (-2, -1)
    image = backend.fft(kspace).ifftn(xp.fft.ifftshift(kspace, axes=axes), axes=axes, norm="ortho")
    return xp.fft.fftshift(image, axes=axes)


def zero_filled_rss(kspace: Array, mask: Any, recon_shape: Any) -> Array:
    r"""fastMRI's zero-filled baseline: ``center_crop(rss(|ifft2c(mask * kspace)|), recon_shape)``.

    Parameters
    ----------
    kspace
        ``(slices, coils, rows, columns)`` (or one slice, ``(coils, rows, columns)``),
        complex, NumPy or CuPy.  Computed slice by slice, so memory stays at one slice's
        coil images.
    mask
        Column mask ``(columns,)``, or ``None`` for k-space used as stored (the test
        files' k-space is already zero-filled).
    recon_shape
        The crop ``(h, w)``, e.g. ``data.recon_shape``.  As fastMRI's baseline does (its
        "FLAIR 203" rule), a crop wider than the k-space's columns becomes
        ``(columns, columns)``.

    Returns
    -------
    Array
        Magnitude images ``(slices, h, w)`` (``(h, w)`` for one slice), float32 for
        complex64 k-space, on the input's backend.  With a full mask this is fastMRI's
        ``reconstruction_rss``.
    """
    who = "zero_filled_rss"
    if not backend.is_array(kspace):
        raise TypeError(f"{who}: kspace must be a NumPy or CuPy array, got {type(kspace).__name__}")
    if kspace.ndim not in (3, 4) or kspace.dtype.kind != "c":
        raise ValueError(f"{who}: kspace must be complex of shape (slices, coils, rows, columns) or (coils, rows, "
                         f"columns), got shape {tuple(kspace.shape)} and dtype {kspace.dtype}")
    backend.check_dtype(kspace, f"{who}: kspace")
    backend.check_finite(kspace, f"{who}: kspace")  # one NaN sample spreads over its slice's whole image
    rows, columns = (int(n) for n in kspace.shape[-2:])
    h, w = reconstruction_crop(recon_shape, (rows, columns), who)
    weights = None
    if mask is not None:
        host = _column_mask(mask, who)
        if host.size != columns:
            raise ValueError(f"{who}: mask has {host.size} columns but kspace has {columns}")
        weights = backend.DeviceCache(host).like(kspace, backend.real_dtype(kspace.dtype))
    xp = backend.namespace(kspace)
    volume = kspace if kspace.ndim == 4 else kspace[None]
    images = []
    for slice_kspace in volume:
        if weights is not None:
            slice_kspace = slice_kspace * weights
        images.append(center_crop(rss(_ifft2c(slice_kspace), axis=-3), (h, w)))
    out = xp.stack(images)
    return out if kspace.ndim == 4 else out[0]


__all__ = [
    "FastMRIData", "read_fastmri", "column_mask", "calibration_width", "slice_operator", "center_crop",
    "reconstruction_crop", "rss", "zero_filled_rss", "CENTER_FRACTIONS",
]
