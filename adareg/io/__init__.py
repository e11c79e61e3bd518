"""Reading and writing images, volumes and raw data.

* :mod:`~adareg.io.images`: one grey image or measurement array (PNG, TIFF page, NPY);
* :mod:`~adareg.io.volumes`: stacks of slices, ``(slices, rows, columns)``, from DICOM
  series, NIfTI files, multi-page TIFF and NPY, written back with their metadata;
* :mod:`~adareg.io.fastmri`: fastMRI HDF5 files of multi-coil k-space;
* :mod:`~adareg.io.files`: outputs checked before any work and written atomically (a run's
  outputs together: :func:`written_together`).

The format libraries (pydicom, nibabel, tifffile, h5py; ``pip install adareg[io]``)
are imported when a file of their format is read or written.
"""

from . import fastmri
from .files import check_output, check_output_folder, same_file, written_together
from .images import ARRAY_SUFFIXES, IMAGE_SUFFIXES, MAX_ELEMENTS, UNREAD_IMAGE_SUFFIXES, IntensityWarning, \
    check_image_output, read_array, read_folder, read_image, write_array, write_image
from .volumes import Volume, check_volume_output, intensity_window, is_volume, read_volume, write_volume

__all__ = [
    "read_image", "read_array", "read_folder", "write_image", "write_array", "IntensityWarning",
    "Volume", "read_volume", "write_volume", "is_volume", "intensity_window", "check_volume_output",
    "check_output", "check_image_output", "check_output_folder", "same_file", "written_together", "IMAGE_SUFFIXES",
    "ARRAY_SUFFIXES", "UNREAD_IMAGE_SUFFIXES", "MAX_ELEMENTS",
]
