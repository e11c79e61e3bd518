r"""Ridge regularizers ``crr`` and ``wcrr`` (paper eq. 2): smooth potentials of filter responses.

.. math::

    R_\sigma(x) = \sum_c \big\langle 1, \varphi_{c,\sigma}(W_c x) \big\rangle, \qquad
    \varphi_{c,\sigma}(t) = \varphi_c(\alpha(\sigma) t) / \alpha(\sigma)^2

with :math:`\varphi_c' = f_c` a linear spline (:class:`~adareg.regularizers.splines.LinearSpline`)
and :math:`\alpha(\sigma) > 0` a learned scale of the responses.  Then

.. math::

    \nabla R_\sigma(x) = W^T \big( f_c(\alpha W_c x) / \alpha \big)_c, \qquad
    \nabla^2 R_\sigma(x) = W^T \operatorname{diag}\big(f_c'(\alpha W_c x)\big) W,

so :math:`-W^T S_- W \preceq \nabla^2 R_\sigma \preceq W^T S_+ W` with :math:`S_\pm` the
channels' largest slopes of :math:`\pm f_c` (zero where none is positive), ``R`` is
convex when every slope of ``f`` is :math:`\ge 0` (``crr``), and
:math:`\rho \|W\|^2`-weakly convex when every slope is :math:`\ge -\rho` (``wcrr``).
Both are minimised with the data term by L-BFGS on the smooth sum (:class:`RidgeObjective`).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..backend import Array
from ..functionals import SmoothFunctional
from ..operators.conv import Conv2d
from .filterbank import FilterBank
from .learned import LearnedRegularizer, SigmaProfile
from .splines import LinearSpline, is_bounded_below, is_convex, slopes, weak_convexity


class Ridge(LearnedRegularizer):
    """``crr`` (convex potentials) or ``wcrr`` (weakly convex potentials).

    Parameters
    ----------
    family
        ``"crr"`` (every slope of ``profile`` must be >= 0) or ``"wcrr"``.
    bank
        Filter bank ``W`` with ``C`` channels.
    profile
        :math:`\\varphi'`: ``C`` linear splines.
    scale
        :math:`\\alpha(\\sigma) > 0`.
    lam, sigma_range
        As for every learned family.
    """

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("family", "profile", "scale")

    def __init__(self, family: str, bank: FilterBank, profile: LinearSpline, scale: SigmaProfile,
                 lam: SigmaProfile, sigma_range: tuple[float, float]):
        if family not in ("crr", "wcrr"):
            raise ValueError(f"Ridge: family must be 'crr' or 'wcrr', got {family!r}")
        self.family = family  # before the base class's checks, which name it
        super().__init__(bank, lam, sigma_range)
        self.check_parts(profile=(profile, LinearSpline), scale=(scale, SigmaProfile))
        if profile.channels != bank.channels:
            raise ValueError(f"{family}: the profile has {profile.channels} channels for {bank.channels} filters")
        if family == "crr" and not is_convex(profile):
            raise ValueError("crr: phi' must be non-decreasing (every spline slope >= 0) for a convex potential")
        if any(v <= 0 for v in scale.values):
            raise ValueError(f"{family}: the scale alpha(sigma) must be positive")
        self.profile, self.scale = profile, scale
        self.check_spans(scale)
        self._curvature: dict[tuple[int, int], float] = {}

    @property
    def rho(self) -> float:
        """Weak-convexity modulus of the potentials, the ``rho`` with ``phi'' >= -rho`` (0 for ``crr``)."""
        return weak_convexity(self.profile)

    @property
    def bounded_below(self) -> bool:
        """Whether every potential is bounded below (always for ``crr``; see
        :func:`~adareg.regularizers.splines.is_bounded_below`).  If not, ``E(Hx, y) + lam R(x)``
        has no minimiser for an ``H`` with a null space."""
        return is_bounded_below(self.profile)

    def curvature_bound(self, image_shape: tuple[int, int]) -> float:
        r"""A bound on :math:`\|\nabla^2 R_\sigma(x)\|` for every ``x`` and ``sigma`` on images of ``image_shape``.

        .. math::

            \|\nabla^2 R_\sigma\| \le \max\big(\|S_+^{1/2} W\|^2, \|S_-^{1/2} W\|^2\big),
            \qquad S_\pm = \operatorname{diag}_c \max\big(0, \max_k \pm f_{c,k}'\big),

        each the ``norm_bound`` of the bank with its filters scaled by the square roots of
        their channels' slopes: channels of gentle slopes count for what they are, not for
        the steepest one (:math:`\|W\|^2 \max |f'|`).  Estimated in float32, whatever the
        solve's precision: to about 1e-6, well inside ``norm_bound``'s margin, at half
        float64's cost; the slopes are divided by the steepest first, so that their scale
        never overflows the estimate.  Cached per shape.
        """
        image_shape = self.bank.check_shape(image_shape, self.family)
        if image_shape not in self._curvature:
            channel_slopes = slopes(self.profile)
            bounds = [0.0]
            for extreme in (channel_slopes.max(axis=1), -channel_slopes.min(axis=1)):
                steepest = float(extreme.max())
                if steepest > 0.0:  # the bank scaled by sqrt(slope / steepest), whose norm float32 carries
                    scale = np.sqrt(np.maximum(extreme, 0.0) / steepest)
                    scaled = Conv2d(scale[:, None, None] * self.bank.kernel[:, 0], image_shape,
                                    boundary=self.bank.boundary, method="fft")
                    bounds.append(steepest * scaled.norm_bound(like=np.zeros(1, np.float32)) ** 2)
            self._curvature[image_shape] = max(bounds)
        return self._curvature[image_shape]

    def at(self, sigma: float) -> RidgeObjective:
        r""":math:`R_\sigma` as a smooth functional ``g(W x)`` (see :class:`~adareg.regularizers.ridge.RidgeObjective`);
        ``sigma`` is checked."""
        return RidgeObjective(self, self.check_sigma(sigma))

    def __repr__(self) -> str:
        return f"Ridge({self.family}, {self.bank!r}, rho = {self.rho:.3g})"


class RidgeObjective(SmoothFunctional):
    r""":math:`R_\sigma(x) = g(W x)` as a :class:`~adareg.functionals.SmoothFunctional`.

    ``solve`` minimises the data term plus :math:`\lambda R_\sigma` by L-BFGS
    (:func:`~adareg.solvers.lbfgs`).
    """

    minimisation = "smooth"

    def __init__(self, ridge: Ridge, sigma: float):
        self.ridge, self.sigma = ridge, sigma
        # g_c(z) = f_c(alpha z) / alpha and its potential phi_c(alpha z) / alpha^2: no pass scales W x
        self.potential = ridge.profile.rescaled(ridge.scale(sigma))

    def forward(self, x: Array) -> Array:
        """``W x``."""
        if not (backend.is_array(x) and x.dtype in (np.float32, np.float64)):  # a list, a complex or float16 image
            raise TypeError(f"{self.ridge.family}: x must be a real image (float32 or float64, (..., H, W)), got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")
        if x.ndim < 2:
            raise ValueError(f"{self.ridge.family}: x must be an image (..., H, W), got shape {tuple(x.shape)}")
        return self.ridge.bank.operator(tuple(x.shape[-2:]))(x)

    def value_of_forward(self, Wx: Array) -> float:
        r""":math:`\sum_c \langle 1, \varphi_c(\alpha W_c x) \rangle / \alpha^2`."""
        xp = backend.namespace(Wx)
        return float(xp.sum(self.potential.integral(Wx)))

    def grad_of_forward(self, Wx: Array, x: Array) -> Array:
        r""":math:`W^T f(\alpha W x) / \alpha`."""
        W = self.ridge.bank.operator(tuple(x.shape[-2:]))
        return W.H(self.potential(Wx))

    def value_and_grad_of_forward(self, Wx: Array, x: Array) -> tuple[float, Array]:
        """Both of the above from one spline lookup."""
        potential, grad = self._potential_and_grad(Wx, x)
        return float(backend.namespace(Wx).sum(potential)), grad

    def values_of_forward(self, Wx: Array, batch_ndim: int) -> Array:
        return _image_sums(self.potential.integral(Wx), batch_ndim)

    def values_and_grad_of_forward(self, Wx: Array, x: Array, batch_ndim: int) -> tuple[Array, Array]:
        potential, grad = self._potential_and_grad(Wx, x)
        return _image_sums(potential, batch_ndim), grad

    def _potential_and_grad(self, Wx: Array, x: Array) -> tuple[Array, Array]:
        """The potential at each response and :math:`W^T f(\alpha W x) / \alpha`, from one spline lookup."""
        derivative, potential = self.potential.value_and_integral(Wx)
        return potential, self.ridge.bank.operator(tuple(x.shape[-2:])).H(derivative)

    def __repr__(self) -> str:
        return f"{self.ridge.family} at sigma {self.sigma:.4g} ({self.sigma * 255:.3g}/255)"

    def lipschitz(self, image_shape: tuple[int, int]) -> float:
        r"""A Lipschitz constant of :math:`\nabla R_\sigma`: :meth:`~adareg.regularizers.Ridge.curvature_bound`."""
        return self.ridge.curvature_bound(image_shape)


def _image_sums(a: Array, batch_ndim: int) -> Array:
    """The sum of ``a`` over each image of a batch (all but the ``batch_ndim`` leading axes), in float64."""
    return backend.namespace(a).sum(a, axis=tuple(range(batch_ndim, a.ndim))).astype(np.float64)
