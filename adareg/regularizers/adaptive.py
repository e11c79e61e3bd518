r"""Spatially adaptive regularizers, solved by reweighting (the paper's eq. 4).

Both adaptive families regularise with a weighted :math:`\ell_1` norm of a learned
filter bank ``W`` whose weights are recomputed from the current estimate:

.. math::

    x_{k+1} = \arg\min_x E(Hx, y) + \lambda \sum_c \langle \Lambda_c(x_k, \sigma), |W_c x| \rangle

* ``sa-cnn`` (eq. 6): :math:`\Lambda(x_k, \sigma)` is the output of a small CNN
  (:class:`~adareg.regularizers.masks.MaskCNN`);
* ``sa-b`` (eq. 3-5): :math:`\Lambda_c(x_k) = B_c^T \psi_c'(B_c |W_c x_k|)` from concave potentials.

Each step is the convex problem of :class:`~adareg.regularizers.WeightedL1Analysis`,
solved exactly; the loop is in :func:`adareg.solvers.reweighting`.  The noise level
``sigma`` enters the weights and the trained regularisation strength
:math:`\lambda(\sigma)`, a piecewise-linear function of ``sigma``.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from .. import backend, caches
from ..backend import Array
from ..operators.conv import DepthwiseConv2d
from .analysis import WeightedL1Analysis
from .filterbank import FilterBank
from .learned import LearnedRegularizer, SigmaProfile
from .masks import MaskCNN
from .splines import LinearSpline


class AdaptiveRegularizer(LearnedRegularizer):
    r"""A reweighted regularizer :math:`\sum_c \langle \Lambda_c(x_k, \sigma), |W_c x| \rangle`.

    Subclasses give the weights :meth:`weights`; the filter bank, the trained
    :math:`\lambda(\sigma)` and the noise-level range come from
    :class:`~adareg.regularizers.learned.LearnedRegularizer`.

    ``step_iterations`` is the budget of dual iterations per reweighting step in
    denoising (:func:`adareg.solvers.reweighting`): families whose weights settle
    in few steps need more dual progress per step before the fixed-point
    residual means what it says.
    """

    #: Dual iterations per reweighting step in denoising (see :func:`adareg.solvers.reweighting`; how the
    #: budget was chosen is measured in docs/learned.md).
    step_iterations: int = 4

    #: The side of the largest kernel that the weights apply with the reflect boundary, whatever the bank's boundary
    #: (the mask network's layers, the blur): images need more than half of it in each dimension.
    weights_kernel_size: int = 1

    @abstractmethod
    def weights(self, x: Array, sigma: float) -> Array:
        r""":math:`\Lambda(x, \sigma)`, shape ``(..., C, H, W)`` for images ``x`` of shape ``(..., H, W)``
        (``sigma`` checked against the trained range)."""

    def step(self, x: Array, sigma: float) -> WeightedL1Analysis:
        r"""The convex problem of one reweighting step: :math:`\sum_c \langle \Lambda_c(x, \sigma), |W_c x'| \rangle`."""
        shape = self.image_shape(x)
        weights = self.weights(x, sigma)
        try:
            return WeightedL1Analysis(self.bank.operator(shape), weights)  # which checks the weights
        except ValueError as err:  # the weights are non-negative by construction: not finite, then
            backend.check_finite(x, f"{self.family}: x")  # NaN weights from a NaN in x: x is named
            raise ValueError(f"{self.family}: its weights Lambda(x) are not finite on a finite image x of "
                             f"{x.dtype}: its parameters overflow that precision (a corrupt or tampered parameter "
                             "file?)") from err

    def image_shape(self, x: Array) -> tuple[int, int]:
        """The shape ``(H, W)`` of ``x``, real images ``(..., H, W)`` that the filter bank fits, or an error naming
        the family."""
        if not backend.is_array(x):
            raise TypeError(f"{self.family}: x must be a NumPy or CuPy array, got {type(x).__name__}")
        if x.dtype.kind != "f":  # |W x| of a complex image would pass for a real one's
            raise TypeError(f"{self.family}: x must be a real image (float32 or float64), got dtype {x.dtype}")
        if x.ndim < 2:
            raise ValueError(f"{self.family}: x must be images of shape (..., H, W), got shape {tuple(x.shape)}")
        shape = self.bank.check_shape(tuple(x.shape[-2:]), self.family)
        size = self.weights_kernel_size
        if min(shape) <= size // 2:  # else the first reflect convolution of the weights refuses it, unnamed
            raise ValueError(f"{self.family}: its weights ({size}x{size} kernels, reflect boundary) need images of "
                             f"at least {size // 2 + 1}x{size // 2 + 1} pixels, got {shape}")
        return shape

    def at(self, sigma: float) -> ReweightedL1:
        """The regularizer at the noise level ``sigma`` (checked against the trained range)."""
        return ReweightedL1(self, self.check_sigma(sigma))


class ReweightedL1:
    r"""An adaptive regularizer at one noise level: minimised by reweighted weighted-:math:`\ell_1` steps.

    ``solve`` runs :func:`adareg.solvers.reweighting` for it; each step minimises
    the data term plus :math:`\lambda \sum_c \langle \Lambda_c(x_k, \sigma), |W_c x| \rangle`.
    """

    minimisation = "reweighting"

    def __init__(self, regularizer: AdaptiveRegularizer, sigma: float):
        self.regularizer, self.sigma = regularizer, sigma
        self.step_iterations = regularizer.step_iterations
        self.channels = regularizer.bank.channels  # of a step's dual, per image

    def weights(self, x: Array) -> Array:
        r""":math:`\Lambda(x, \sigma)`."""
        return self.regularizer.weights(x, self.sigma)

    def step(self, x: Array) -> WeightedL1Analysis:
        """The weighted-l1 problem of the step from ``x``."""
        return self.regularizer.step(x, self.sigma)

    def __repr__(self) -> str:
        return f"{self.regularizer!r}.at({self.sigma:g})"


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

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("masks", "weights_kernel_size")

    family = "sa-cnn"
    sees_intensities = True

    def __init__(self, bank: FilterBank, masks: MaskCNN, lam: SigmaProfile, sigma_range: tuple[float, float]):
        super().__init__(bank, lam, sigma_range)
        self.check_parts(masks=(masks, MaskCNN))
        if masks.channels != bank.channels:
            raise ValueError(f"sa-cnn: the mask network gives {masks.channels} masks for {bank.channels} filters")
        self.masks = masks
        self.weights_kernel_size = max(max(k.shape[-2:]) for k in masks.kernels)

    def weights(self, x: Array, sigma: float) -> Array:
        self.image_shape(x)
        return self.masks(x, self.check_sigma(sigma))

    def __repr__(self) -> str:
        return f"SACNN({self.bank!r}, {self.masks!r})"


class SAB(AdaptiveRegularizer):
    r"""``sa-b`` (paper eq. 3-5): concave potentials of a non-negative blur of the filter responses.

    .. math::

        R(x) = \sum_c \big\langle 1, \psi_c(B_c |W_c x|) \big\rangle, \qquad
        \Lambda_c(x_k) = B_c^T \psi_c'(B_c |W_c x_k|)

    ``psi_c`` is concave and non-decreasing, so the reweighting step minimises a
    majorizer of ``R`` at :math:`x_k` and never increases the objective (eq. 4-5).
    :math:`\psi_c'` is a linear spline (non-negative, non-increasing coefficients, a flat
    last segment so that its linear extension stays non-negative)
    scaled by the noise level, :math:`\psi_{c,\sigma}(t) = \psi_c(\alpha(\sigma) t) / \alpha(\sigma)`,
    and :math:`B_c` a non-negative kernel normalised to sum 1 (so every row of
    :math:`B_c` sums to 1 with the reflect boundary).

    Parameters
    ----------
    bank
        Filter bank ``W`` with ``C`` channels.
    blur
        Non-negative kernels ``(C, k, k)`` (odd ``k``), normalised here.
    profile
        :math:`\psi'`: ``C`` linear splines with non-negative, non-increasing coefficients.
    scale
        :math:`\alpha(\sigma) > 0`.
    lam, sigma_range
        As for every learned family.
    """

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("blur", "profile", "scale", "weights_kernel_size")

    family = "sa-b"
    # its weights settle in 2-3 steps, so the residual test fires early: it needs more dual progress per step
    # (measured in docs/learned.md)
    step_iterations = 20

    def __init__(self, bank: FilterBank, blur: Any, profile: LinearSpline, scale: SigmaProfile, lam: SigmaProfile,
                 sigma_range: tuple[float, float]):
        super().__init__(bank, lam, sigma_range)
        self.check_parts(profile=(profile, LinearSpline), scale=(scale, SigmaProfile))
        try:
            kernels = np.asarray(backend.to_numpy(blur) if backend.is_array(blur) else blur)
        except ValueError:  # ragged nested lists
            kernels = np.asarray(None)
        if kernels.dtype.kind not in "iuf":  # (a complex kernel's imaginary part would be dropped)
            got = f"{blur!r:.60}" if kernels.dtype.kind in "OSU" else f"dtype {kernels.dtype}"
            raise TypeError(f"sa-b: blur must be an array of real numbers, got {got}")
        blur = kernels.astype(np.float64)
        if blur.ndim != 3 or blur.shape[0] != bank.channels or blur.shape[1] != blur.shape[2] or blur.shape[1] % 2 == 0:
            raise ValueError(f"sa-b: blur must have shape ({bank.channels}, k, k) with odd k, got {blur.shape}")
        with np.errstate(over="ignore"):  # a sum beyond float64 would normalise every kernel to zero
            sums = blur.sum(axis=(1, 2))
        if not (np.all(np.isfinite(blur)) and np.all(np.isfinite(sums))):
            raise ValueError("sa-b: blur kernels must be finite, and so must their sums")
        if np.any(blur < 0) or np.any(sums <= 0):
            raise ValueError("sa-b: blur kernels must be non-negative and not all zero")
        if profile.channels != bank.channels:
            raise ValueError(f"sa-b: the profile has {profile.channels} channels for {bank.channels} filters")
        coefficients = profile.coefficients
        if np.any(coefficients < 0) or np.any(np.diff(coefficients, axis=1) > 0):
            raise ValueError("sa-b: psi' must be non-negative and non-increasing (psi concave and non-decreasing)")
        if np.any(coefficients[:, -1] != coefficients[:, -2]):
            # the spline continues linearly: a falling last segment would make psi' < 0 for large responses
            raise ValueError("sa-b: the last segment of psi' must be flat, so that psi' >= 0 beyond the grid")
        if np.any(scale.values <= 0):
            raise ValueError("sa-b: the scale alpha(sigma) must be positive")
        self.blur = backend.read_only(blur / blur.sum(axis=(1, 2), keepdims=True))  # the blurs cached per shape copy it
        self.profile, self.scale = profile, scale
        self.weights_kernel_size = self.blur.shape[-1]
        self.check_spans(scale)
        self._blurs = caches.PerShape()

    def blur_operator(self, image_shape: tuple[int, int]) -> DepthwiseConv2d:
        """``B = (B_1, ..., B_C)`` on ``(C, H, W)`` responses (cached per shape)."""
        return self._blurs.get(image_shape, lambda: DepthwiseConv2d(self.blur, image_shape, boundary="reflect"))

    def _blurred_magnitudes(self, x: Array, sigma: float) -> Array:
        shape = self.image_shape(x)
        xp = backend.namespace(x)
        return self.scale(sigma) * self.blur_operator(shape)(xp.abs(self.bank.operator(shape)(x)))

    def weights(self, x: Array, sigma: float) -> Array:
        sigma = self.check_sigma(sigma)
        magnitudes = self._blurred_magnitudes(x, sigma)  # x checked first
        return self.blur_operator(tuple(x.shape[-2:])).H(self.profile(magnitudes))

    def value(self, x: Array, sigma: float) -> float:
        r"""The eq. (3) regularizer :math:`\sum_c \langle 1, \psi_{c,\sigma}(B_c |W_c x|) \rangle`."""
        sigma = self.check_sigma(sigma)
        magnitudes = self._blurred_magnitudes(x, sigma)  # x checked first
        xp = backend.namespace(magnitudes)
        return float(xp.sum(self.profile.integral(magnitudes))) / self.scale(sigma)

    def __repr__(self) -> str:
        return f"SAB({self.bank!r}, blur {self.blur.shape[-1]}x{self.blur.shape[-1]})"
