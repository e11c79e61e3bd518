"""NIfTI-1 and NIfTI-2 volumes (``.nii``, ``.nii.gz``) on nibabel.

Array convention: NIfTI voxel ``(i, j, k)`` is ``data[k, j, i]`` of the :class:`~adareg.io.Volume`,
i.e. ``data = voxels.transpose(2, 1, 0)``: slices along the third voxel axis, rows along
the second, columns along the first.  A 2D file is one slice; a 4D or 5D file is read
only when it holds one volume (its axes past the third have length 1).  A pair's header
(magic ``ni1``) and a ``vox_offset`` below the header's end are refused.

Values are the header's scaled values (``scl_slope * stored + scl_inter``) in float32;
NaN and Inf are refused.  Complex and RGB data are refused.  ``metadata`` holds the
4x4 ``"affine"`` (voxel to world, float64) and the nibabel ``"header"``.

Writing keeps the affine and a copy of the header of the volume read (sform/qform
codes, pixdim, units, intent); the data are stored as float32 without scaling and the
header's ``descrip`` says what was done.  Without such a volume the header is a fresh
NIfTI-1 one, with the affine of the DICOM series the data came from where given, else
the identity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import backend, checks
from .files import write_atomically
from .formats import Volume, as_float32, library
from .pixels import memory_as_value_error

#: The bytes of NIfTI's ``descrip`` field.
DESCRIP_BYTES = 80

#: The largest cosine between an affine's voxel axes that counts as a right angle, 0.06 degrees off one; more is
#: a shear.  It lies above the rounding of DICOM's positions and direction cosines, below any gantry tilt.
SHEAR_COSINE = 1e-3


def read(path: Path) -> Volume:
    """The volume in the NIfTI file ``path`` (see the module's documentation).

    Raises
    ------
    ValueError
        A corrupt or truncated file, a series of several volumes, 1D or 5D+ data,
        complex or RGB data, NaN/Inf values or values beyond float32's range; the
        message starts with ``path``.
    """
    nibabel = library("nifti")
    with memory_as_value_error(path):
        image = _load(nibabel, path)
        shape = _volume_shape(image.shape, path)
        _check_datatype(image.get_data_dtype(), path)
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # values beyond float32's range are named below
                voxels = image.get_fdata(dtype=np.float32)
        except MemoryError:
            raise
        except Exception as err:  # truncated data: nibabel, gzip and zlib raise several kinds
            raise ValueError(f"{path}: unreadable NIfTI data ({type(err).__name__}: {checks.one_line(err)})") from None
        if not np.isfinite(voxels).all():  # NaN/Inf stored, or scaled values beyond float32's range: named
            as_float32(np.asanyarray(image.dataobj), str(path))
            backend.check_finite(voxels, str(path))
    data = np.ascontiguousarray(voxels.reshape(shape).transpose(2, 1, 0))
    return Volume(data, "nifti", {"affine": np.array(image.affine, dtype=np.float64), "header": image.header})


def write(path: Path, data: np.ndarray, like: Volume | None, description: str,
          affine: np.ndarray | None = None) -> None:
    """Write ``data`` (slices, rows, columns) to the NIfTI file ``path`` as float32, atomically.

    Parameters
    ----------
    path
        Output ``.nii`` or ``.nii.gz`` file (the ending chooses the compression).
    data
        The volume, finite and within float32's range.
    like
        The NIfTI volume the data were computed from, of the data's shape: its affine
        and header are kept (NIfTI-2 stays NIfTI-2); ``None`` writes an identity affine
        and a fresh header.
    description
        Stored in ``descrip`` (non-ASCII characters escaped, cut to 80 bytes).
    affine
        Without ``like``: the voxel-to-world affine (RAS+, millimetres, e.g. that of a
        DICOM series, :func:`adareg.io.dicom.nifti_affine`), stored as the scanner's
        sform and qform (a sheared affine, e.g. of a gantry-tilted CT series, as the
        sform alone, the qform's code 0: a qform holds rotations, not shears); default:
        the identity.
    """
    nibabel = library("nifti")
    if like is not None and affine is not None:
        raise ValueError("write: give like (whose affine is kept) or affine, not both")
    if like is not None and tuple(like.data.shape) != tuple(np.shape(data)):
        raise ValueError(f"{path}: data of shape {tuple(np.shape(data))} do not match the input volume's "
                         f"{tuple(like.data.shape)} (slices, rows, columns), whose affine would place them; write "
                         "without like (an identity affine)")
    voxels = as_float32(data, f"{path}: the data to write").transpose(2, 1, 0)
    if like is None and affine is None:
        image = nibabel.Nifti1Image(voxels, np.eye(4))
    elif like is None:
        image = nibabel.Nifti1Image(voxels, affine)
        image.set_sform(affine, code="scanner")
        if _sheared(affine):  # a qform cannot hold a shear: nibabel would store a nearby affine under it
            image.set_qform(None)  # code 0: the sform alone places the voxels
        else:
            image.set_qform(affine, code="scanner")
        image.header.set_xyzt_units("mm")
    else:
        header = like.metadata["header"]
        kind = nibabel.Nifti2Image if isinstance(header, nibabel.Nifti2Header) else nibabel.Nifti1Image
        image = kind(voxels, like.metadata["affine"], header)  # copies the header, resets its scaling
        image.header["cal_min"] = image.header["cal_max"] = 0  # the input's display range, unset (0, 0)
    image.header.set_data_dtype(np.float32)
    image.header["descrip"] = description.encode("ascii", "backslashreplace")[:DESCRIP_BYTES]
    write_atomically(path, lambda temporary: nibabel.save(image, temporary))


def _sheared(affine: np.ndarray) -> bool:
    """Whether the voxel axes of ``affine`` are not orthogonal (a gantry tilt's slice step), beyond
    :data:`SHEAR_COSINE`."""
    axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    return bool(np.max(np.abs(axes.T @ axes - np.eye(3))) > SHEAR_COSINE)


def _load(nibabel: Any, path: Path) -> Any:
    """The NIfTI image of ``path``, data read into memory (no map of a file that may change).

    Read through a file map rather than ``nibabel.load``, which derives the file's
    name from its suffix and so looks for ``a.nii.gz`` when given ``a.Nii.gz``; the
    header's size tells NIfTI-2 from NIfTI-1.
    """
    from nibabel.fileholders import FileHolder
    from nibabel.openers import ImageOpener

    def unreadable(err: Exception) -> ValueError:
        return ValueError(f"{path}: not a readable NIfTI file ({type(err).__name__}: {checks.one_line(err)})")

    try:
        with ImageOpener(str(path)) as opened:
            start = opened.read(nibabel.Nifti2Header.template_dtype.itemsize)
    except MemoryError:
        raise
    except Exception as err:  # gzip and zlib raise several kinds for corrupt files
        raise unreadable(err) from None
    kinds = [kind for kind in (nibabel.Nifti2Image, nibabel.Nifti1Image) if kind.header_class.may_contain_header(start)]
    if not kinds:
        raise ValueError(f"{path}: not a readable NIfTI file (it does not start with a NIfTI-1 or NIfTI-2 header)")
    holder = FileHolder(filename=str(path))
    try:
        with nibabel.imageglobals.LoggingOutputSuppressor():  # its header checks also log what they raise
            image = kinds[0].from_file_map({"header": holder, "image": holder}, mmap=False)
    except MemoryError:
        raise
    except Exception as err:  # nibabel raises several kinds for corrupt headers
        raise unreadable(err) from None
    kind = kinds[0].header_class
    header = kind(start[: kind.template_dtype.itemsize], check=False)  # as stored (the image's is made anew)
    if header["magic"].item() == header.pair_magic:
        raise ValueError(f"{path}: the header of a NIfTI .hdr/.img pair (magic {header.pair_magic.decode()!r}), "
                         "whose voxels are in the .img file: read the pair with nibabel and save it as one .nii")
    offset, least = image.dataobj.offset, header.single_vox_offset
    if offset < least:  # 0: the standard reads the voxels from the end of the header, nibabel from byte 0
        raise ValueError(f"{path}: the NIfTI header's vox_offset is {offset}: the standard places the voxels at "
                         f"byte {least}, nibabel (which reads them here) at byte {offset}, among the header's bytes; "
                         f"rewrite the file with vox_offset {least}")
    return image


def _volume_shape(shape: tuple[int, ...], path: Path) -> tuple[int, int, int]:
    """The voxel shape ``(i, j, k)`` of a 2D or 3D image, also one stored with trailing axes of length 1 (a 4D or
    5D file of one volume); anything else is refused."""
    kept = tuple(shape)
    while len(kept) > 3 and kept[-1] == 1:
        kept = kept[:-1]
    if len(kept) in (2, 3):
        return (*kept, 1)[:3]
    if len(kept) < 2:
        raise ValueError(f"{path}: NIfTI data of shape {shape} are 1D data; adareg reads one 2D or 3D volume")
    what = f"a series of {kept[3]} volumes" if len(kept) == 4 else f"{len(kept)}D data"
    raise ValueError(f"{path}: NIfTI data of shape {shape} are {what}; adareg reads one 2D or 3D volume (a 4D or 5D "
                     "file of one volume): extract the volume to reconstruct first (e.g. nibabel's "
                     "image.slicer[..., t])")


def _check_datatype(dtype: np.dtype, path: Path) -> None:
    """Refuse RGB (structured) and complex voxels."""
    if dtype.fields is not None:
        raise ValueError(f"{path}: NIfTI RGB data ({dtype}); adareg reads grey volumes: convert it to one "
                         "channel first")
    if dtype.kind == "c":
        raise ValueError(f"{path}: NIfTI complex data ({dtype}); adareg reads real volumes: save the magnitude (or "
                         "the real and imaginary parts) as its own file first")

