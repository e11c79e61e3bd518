"""adareg: image reconstruction with learned, spatially adaptive sparsity-promoting regularizers.

Solve ``argmin_x E(Hx, y) + lam R(x)`` for denoising, deblurring, CT and MRI, on
NumPy (CPU) or CuPy (GPU) arrays::

    import adareg
    from adareg.operators import Identity
    from adareg.regularizers import TV

    result = adareg.solve(Identity(y.shape), y, TV(y.shape), lam=0.1)
    x = result.x

Importing adareg needs NumPy, SciPy, array-api-compat and tqdm only; CuPy, ASTRA,
SigPy, the file-format libraries (pydicom, nibabel, tifffile, h5py) and Dask are
imported where they are used.
"""

# families registers the learned families' parameter layouts with params when imported
from . import ct, data, families, io, metrics, mri, operators, params, presets, regularizers, solvers, stacks
from .backend import gpu_available, to_device, to_numpy
from .metrics import psnr, ssim
from .params import load
from .reconstruction import solve
from .solvers.result import Result
from .tuning import tune

__version__ = "0.1.0"

__all__ = [
    "solve", "tune", "load", "Result",
    "operators", "regularizers", "solvers", "metrics", "data", "ct", "mri", "params", "presets", "families",
    "io", "stacks",
    "psnr", "ssim", "gpu_available", "to_device", "to_numpy", "__version__",
]
