"""What the volume formats share: the :class:`~adareg.io.Volume` they read and write, its float32 values, and the
optional library each format is read with.

The format modules (:mod:`adareg.io.dicom`, :mod:`adareg.io.nifti`, :mod:`adareg.io.tiff`,
:mod:`adareg.io.fastmri`) build on this module, and so does :mod:`adareg.io.volumes`, which reads and
writes volumes through them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import backend

#: The Python package each optional format needs, and the extra that installs it.
LIBRARIES = {"dicom": "pydicom", "nifti": "nibabel", "tiff": "tifffile", "fastmri": "h5py"}


@dataclass(frozen=True, eq=False)
class Volume:
    """A stack of 2D slices and the metadata its format needs to be written back.

    Attributes
    ----------
    data
        float32 array of shape ``(slices, rows, columns)``, in the format's units (see
        the table of :mod:`adareg.io.volumes`).
    format
        ``"dicom"``, ``"nifti"``, ``"tiff"`` or ``"npy"``.
    metadata
        What the format's writer keeps: ``"datasets"`` (the series' pydicom datasets
        in slice order, pixel data dropped) and ``"float_pixels"`` (whether they stored
        float pixel data) for DICOM; ``"affine"`` and ``"header"``
        for NIfTI; ``"bits"`` (8, 16, or ``None`` for float values and values read as stored) for TIFF
        and NPY, and ``"as_stored"`` (``True``) where they were read with ``as_stored=True``.
    """

    data: np.ndarray
    format: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (isinstance(self.data, np.ndarray) and self.data.ndim == 3):
            raise ValueError(f"Volume: data must be a 3D NumPy array (slices, rows, columns), got "
                             f"{getattr(self.data, 'shape', type(self.data).__name__)}")


def library(format: str) -> Any:
    """The optional library of ``format`` (see :data:`LIBRARIES`), with a clear error when it is missing."""
    name = LIBRARIES[format]
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ImportError(f"reading and writing {format} files needs {name}: pip install adareg[io]") from None


def as_float32(data: np.ndarray, what: str) -> np.ndarray:
    """``data`` as float32, or a ``ValueError`` naming ``what`` for NaN or Inf values or for values beyond
    float32's range (which the cast would make infinite); one pass over the values where all is well."""
    with np.errstate(over="ignore", invalid="ignore"):
        values = np.asarray(data, dtype=np.float32)
    if not np.isfinite(values).all():
        backend.check_finite(data, what)  # NaN or Inf in the data themselves
        bad = int(np.count_nonzero(~np.isfinite(values)))
        raise ValueError(f"{what} contains {bad} value{'s' if bad > 1 else ''} beyond float32's range "
                         f"(±{float(np.finfo(np.float32).max):.4g}), in which adareg holds volumes")
    return values
