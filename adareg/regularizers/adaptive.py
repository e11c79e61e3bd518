r"""Spatially adaptive regularizers, solved by reweighting (the paper's eq. 4).

Both adaptive families regularise with a weighted :math:`\ell_1` norm of a learned
filter bank ``W`` whose weights are recomputed from the current estimate:

.. math::

    x_{k+1} = \arg\min_x E(Hx, y) + \lambda \sum_c \langle \Lambda_c(x_k, \sigma), |W_c x| \rangle

* ``sa-cnn`` (eq. 6): :math:`\Lambda(x_k, \sigma)` is the output of a small CNN
  (:class:`~adareg.regularizers.masks.MaskCNN`);
* ``sa-b`` (eq. 3-5) derives it from concave potentials (added with its splines).

Each step is the convex problem of :class:`~adareg.regularizers.WeightedL1Analysis`,
solved exactly; the loop is in :func:`adareg.solvers.reweighting`.  The noise level
``sigma`` enters the weights and the trained regularisation strength
:math:`\lambda(\sigma)`, a piecewise-linear function of ``sigma``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ..backend import Array
from .analysis import WeightedL1Analysis
from .filterbank import FilterBank
from .masks import MaskCNN


class SigmaProfile:
    r"""A non-negative piecewise-linear function of the noise level, e.g. :math:`\lambda(\sigma)`.

    Linear interpolation between ``(knots[i], values[i])``, constant beyond the
    end knots (``numpy.interp``).
    """

    def __init__(self, knots: Any, values: Any, name: str):
        knots, values = np.asarray(knots, dtype=np.float64), np.asarray(values, dtype=np.float64)
        if knots.ndim != 1 or knots.shape != values.shape or knots.size < 1:
            raise ValueError(f"{name}: knots and values must be 1D arrays of one length, got {knots.shape} and "
                             f"{values.shape}")
        if np.any(np.diff(knots) <= 0) or not np.all(np.isfinite(knots)) or not np.all(np.isfinite(values)):
            raise ValueError(f"{name}: knots must increase strictly and all entries be finite")
        if np.any(values < 0):
            raise ValueError(f"{name}: values must be non-negative")
        self.knots, self.values, self.name = knots, values, name

    def __call__(self, sigma: float) -> float:
        return float(np.interp(float(sigma), self.knots, self.values))


class AdaptiveRegularizer(ABC):
    r"""A reweighted regularizer :math:`\sum_c \langle \Lambda_c(x_k, \sigma), |W_c x| \rangle`.

    Subclasses give the weights :meth:`weights`; the filter bank, the trained
    :math:`\lambda(\sigma)` and the noise-level range are shared.

    Attributes
    ----------
    bank
        The filter bank ``W``.
    lam
        :math:`\lambda(\sigma)`, the trained regularisation strength for denoising.
    sigma_range
        The noise levels ``(low, high)`` (intensities in [0, 1]) the model was trained for.
    """

    family: str

    def __init__(self, bank: FilterBank, lam: SigmaProfile, sigma_range: tuple[float, float]):
        self.bank, self.lam = bank, lam
        self.sigma_range = (float(sigma_range[0]), float(sigma_range[1]))

    @abstractmethod
    def weights(self, x: Array, sigma: float) -> Array:
        r""":math:`\Lambda(x, \sigma)`, shape ``(..., C, H, W)`` for images ``x`` of shape ``(..., H, W)``."""

    def step(self, x: Array, sigma: float) -> WeightedL1Analysis:
        r"""The convex problem of one reweighting step: :math:`\sum_c \langle \Lambda_c(x, \sigma), |W_c x'| \rangle`."""
        return WeightedL1Analysis(self.bank.operator(tuple(x.shape[-2:])), self.weights(x, sigma))

    def check_sigma(self, sigma: float) -> float:
        """``sigma`` as a float, or a ``ValueError`` if it is negative, not finite, or outside the trained range."""
        sigma = float(sigma)
        low, high = self.sigma_range
        if not (np.isfinite(sigma) and low <= sigma <= high):
            raise ValueError(
                f"{self.family}: sigma = {sigma:g} ({sigma * 255:.3g}/255) is outside the trained range "
                f"[{low:g}, {high:g}] ([{low * 255:.3g}, {high * 255:.3g}]/255)"
            )
        return sigma


class SACNN(AdaptiveRegularizer):
    r"""``sa-cnn`` (paper eq. 6): weights from a CNN, :math:`\Lambda(x_k, \sigma) = \mathrm{sigmoid}(\mathrm{CNN}(x_k, \sigma))`.

    Parameters
    ----------
    bank
        Filter bank ``W`` with ``C`` channels.
    masks
        Mask network with ``C`` output channels.
    lam
        Trained :math:`\lambda(\sigma)`.
    sigma_range
        Trained noise-level range.
    """

    family = "sa-cnn"

    def __init__(self, bank: FilterBank, masks: MaskCNN, lam: SigmaProfile, sigma_range: tuple[float, float]):
        if masks.channels != bank.channels:
            raise ValueError(f"sa-cnn: the mask network gives {masks.channels} masks for {bank.channels} filters")
        super().__init__(bank, lam, sigma_range)
        self.masks = masks

    def weights(self, x: Array, sigma: float) -> Array:
        return self.masks(x, sigma)

    def __repr__(self) -> str:
        return f"SACNN({self.bank!r}, {self.masks!r})"
