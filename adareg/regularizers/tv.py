"""Total variation."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ..backend import Array
from ..operators.basic import FiniteDifference
from .analysis import WeightedL1Analysis


class TV(WeightedL1Analysis):
    r"""Total variation, isotropic or anisotropic, optionally weighted per pixel.

    .. math::

        \mathrm{TV}_{\mathrm{iso}}(x) = \sum_i \Lambda_i \sqrt{\textstyle\sum_a (D_a x)_i^2},
        \qquad
        \mathrm{TV}_{\mathrm{aniso}}(x) = \sum_a \sum_i \Lambda_{a,i} |(D_a x)_i|

    with :math:`D_a` the forward differences of :class:`~adareg.operators.FiniteDifference`.
    It is :class:`WeightedL1Analysis` with ``W = D`` (channels = axes), so its prox
    is the exact dual FISTA of Beck & Teboulle (2009), box constraints included.

    Parameters
    ----------
    shape
        Image shape, e.g. ``(H, W)``.
    isotropic
        Couple the differences along the axes at each pixel (default) or not.
    boundary
        ``"neumann"`` (default) or ``"periodic"``.
    weights
        Non-negative weights :math:`\Lambda` (a number, a pixel map, or per axis
        and pixel for the anisotropic form).
    """

    def __init__(self, shape: Any, *, isotropic: bool = True,
                 boundary: Literal["neumann", "periodic"] = "neumann", weights: float | Array = 1.0):
        if not isinstance(isotropic, (bool, np.bool_)):
            raise TypeError(f"TV: isotropic must be True or False, got {isotropic!r}")
        super().__init__(FiniteDifference(shape, boundary=boundary), weights, group_channels=isotropic)
        self.isotropic = isotropic

    def __repr__(self) -> str:
        kind = "isotropic" if self.isotropic else "anisotropic"
        return f"TV({self.shape}, {kind}, boundary={self.W.boundary!r})"
