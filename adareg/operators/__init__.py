"""Linear operators: the algebra (:mod:`.base`) and concrete forward models.

Every operator maps arrays of shape ``shape_in`` to ``shape_out`` (leading batch
axes pass through), on NumPy or CuPy arrays, and composes with ``@``, ``+``,
``-``, scalar ``*`` and ``.H``.  See :class:`LinearOperator` for the contract a new
operator implements.
"""

from .base import Adjoint, Composition, LinearOperator, Scaled, Sum
from .basic import Diagonal, FiniteDifference, Identity, RealToComplex, Subsample
from .conv import Blur, Conv2d, DepthwiseConv2d
from .ct import RayTransform
from .mri import CartesianMRI, NonCartesianMRI

__all__ = [
    "LinearOperator", "Adjoint", "Composition", "Sum", "Scaled",
    "Identity", "RealToComplex", "Diagonal", "Subsample", "FiniteDifference", "Conv2d", "DepthwiseConv2d", "Blur", "RayTransform",
    "CartesianMRI", "NonCartesianMRI",
]
