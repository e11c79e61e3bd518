r"""Torch denoisers of the four learned families, trained through their fixed points.

Each model holds free parameters, maps them to the constrained arrays of adareg's
parameter file (:meth:`Denoiser.arrays`), and denoises ``y`` (``(B, 1, H, W)``) at noise
levels ``sigma`` (``(B,)``) with the same maths as :func:`adareg.solve`:

* ``crr`` / ``wcrr``: the minimiser of :math:`\tfrac12\|x - y\|^2 + \lambda(\sigma) R_\sigma(x)`,
  :math:`R_\sigma(x) = \sum_c \varphi_c(\alpha W_c x) / \alpha^2`, found by FISTA;
* ``sa-b`` / ``sa-cnn``: the fixed point of the reweighting
  :math:`x_{k+1} = \arg\min \tfrac12\|x - y\|^2 + \lambda \sum_c \langle \Lambda_c(x_k), |W_c x| \rangle`,
  each step by dual FISTA (warm-started), :math:`x = y - W^T p`, :math:`|p_c| \le \lambda \Lambda_c`.

Each family is one subclass of :class:`Denoiser` that declares its ``family`` name (as
registered with :mod:`adareg.params`), its ``default_architecture`` and the ``gradients``
it supports, default first; defining the class adds it to :data:`MODELS`, which
:func:`build`, the training loop and the command line read.

**Gradients at the fixed point.**  The fixed point :math:`z^*` (primal for the ridges,
primal and dual for the adaptive families) is found without a graph; the loss is taken
on one more application of the fixed-point map :math:`T_\theta(z^*)` with a graph, so the
model is trained at the fixed point that inference computes (truncated unrolling would
train a different, early-stopped denoiser) and no unrolled graph is kept in memory.

* ``crr`` / ``wcrr`` (``Ridge.implicit``, the default): implicit differentiation.  The
  map is a gradient step of size :math:`\tau`, and a hook turns the incoming gradient
  :math:`g` into :math:`v / \tau` with :math:`\nabla^2 F(x^*) v = g`,
  :math:`F = \tfrac12\|x - y\|^2 + \lambda R_\sigma`, solved by conjugate gradients
  (:meth:`Ridge.solve_hessian`); the parameters get the exact gradient
  :math:`-\partial_\theta \nabla F^T (\nabla^2 F)^{-1} g` of the loss at the minimiser.
* Jacobian-free backpropagation (Fung et al., AAAI 2022; ``implicit = False`` for the
  ridges, ``map_steps = 1`` for ``sa-b`` / ``sa-cnn``): the incoming gradient is used as
  it is, so :math:`(I - \partial_z T)^{-1}` is replaced by the identity.  For the convex
  ridges this replaces :math:`(I + \lambda \nabla^2 R)^{-1}` by :math:`\tau I` (still a
  descent direction).  For the adaptive families the map :math:`T(x, p)` computes the
  weights :math:`\Lambda(x)` and takes one projected dual gradient step
  :math:`p \leftarrow \mathrm{clip}(p + W x, \pm\lambda\Lambda(x))`, :math:`x = y - W^T p`,
  which passes gradients to ``W``, :math:`\lambda(\sigma)` and the weights where the
  dual bound is active.
* Phantom gradient (Geng et al., "On training implicit models", NeurIPS 2021;
  ``map_steps = K > 1`` for ``sa-b`` / ``sa-cnn``): ``K`` applications of :math:`T` from
  the fixed point, all with a graph.  Their value is still the fixed point, and their
  gradient is the truncated Neumann series
  :math:`\sum_{k < K} (\partial_z T)^k \partial_\theta T`, which tends to the implicit
  gradient as ``K`` grows where :math:`T` contracts.
"""

from __future__ import annotations

import copy
import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adareg import checks

from .blocks import (BankOperator, FilterBank, MaskCNN, SigmaProfile, correlate, correlate_adjoint,
                     linear_spline, linear_spline_slope, top_singular_vector)

#: Noise levels the models are trained for (0-1 intensity scale).
SIGMA_RANGE = (0.0, 30 / 255)
#: Knots of every function of sigma: 0, 5, ..., 30 (/255).
SIGMA_KNOTS = [k / 255 for k in range(0, 31, 5)]

#: The ways of differentiating through the fixed point: implicit differentiation, the phantom gradient,
#: Jacobian-free backpropagation (see the module documentation).
GRADIENTS = ("implicit", "phantom", "jfb")
#: The filter bank and lam(sigma) part of the default architectures.
_BANK = {"bank_channels": [4, 8, 32], "bank_kernels": [5, 5, 5], "boundary": "reflect", "lam_knots": len(SIGMA_KNOTS)}

#: Lower bound of the wcrr profile slopes: the potentials are rho-weakly convex, and
#: lam * rho * ||W||^2 <= 1, ||W|| with the reflect boundary, keeps 1/2 ||x - y||^2 + lam R convex
#: (on images of at least NORM_IMAGE pixels a side, see Ridge.bank_norm).
WCRR_RHO = 1.0
#: How far below its bound ``set_lam`` puts a lam above it, relative to the bound: one that float32 represents
#: (1 - 1e-9 rounds to 1, whose logit is infinite), and where the bound's sigmoid still trains, as it does for
#: knots that training took close to the bound.
LAM_MARGIN = 1e-5


def _inverse_softplus(v: Tensor) -> Tensor:
    v = v.clamp(min=torch.finfo(v.dtype).tiny)
    return v + torch.log(-torch.expm1(-v))


def _tensor(array: np.ndarray, like: Tensor) -> Tensor:
    """``array`` as a tensor of ``like``'s dtype and device."""
    return torch.as_tensor(np.asarray(array), dtype=like.dtype, device=like.device)


def clamp_slopes(raw: Tensor, grid_step: float, *, lower: float | None, grid_min: float) -> Tensor:
    r"""A profile table whose slopes are those of ``raw`` clamped below by ``lower``, zero at 0, with bounded ends.

    .. math::

        d_{c,k} = \max\big((r_{c,k+1} - r_{c,k}) / h, \, \mathrm{lower}\big), \qquad
        a_{c,k} = h \sum_{j < k} d_{c,j} - f_c(0),

    so that :math:`f_c(0) = 0` (:math:`f_c` the linear spline of the table on the knots
    :math:`t_k = \text{grid\_min} + k h`, continued linearly outside them).  Then the last
    coefficient is raised to :math:`\max(a_{c,K-1}, a_{c,K-2}, 0)` and the first lowered to
    :math:`\min(a_{c,0}, a_{c,1}, 0)`: the end segments rise away from 0, so every potential
    :math:`\int_0^z f_c` is bounded below (:func:`adareg.regularizers.splines.is_bounded_below`).

    ``lower=0`` gives convex potentials (``crr``), ``lower=-rho`` :math:`\rho`-weakly convex ones
    (``wcrr``; raising the ends only raises their slopes).  A table that satisfies all this is
    returned unchanged (up to rounding), so a model set from a file's table exports that table.
    Where a slope is clamped its gradient is zero, as in the CRR-NN and WCRR-NN projections.

    Parameters
    ----------
    raw
        The free table :math:`r`, shape ``(C, K)``, ``K >= 2``.
    grid_step, grid_min
        The knot spacing :math:`h > 0` and the first knot.
    lower
        The lower bound of the slopes, or ``None`` for none.
    """
    d = torch.diff(raw, dim=1) / grid_step
    if lower is not None:
        d = d.clamp(min=lower)
    out = torch.cat([torch.zeros_like(raw[:, :1]), grid_step * torch.cumsum(d, dim=1)], dim=1)
    s = (0.0 - grid_min) / grid_step
    k = int(min(max(math.floor(s), 0), raw.shape[1] - 2))
    u = s - k
    out = out - ((1.0 - u) * out[:, k] + u * out[:, k + 1])[:, None]
    zero = torch.zeros_like(out[:, :1])
    last = torch.maximum(torch.maximum(out[:, -1:], out[:, -2:-1]), zero)
    first = torch.minimum(torch.minimum(out[:, :1], out[:, 1:2]), zero)
    return torch.cat([first, out[:, 1:-1], last], dim=1)


#: The model class of each family: every subclass of :class:`Denoiser` that names a ``family``.
MODELS: dict[str, type[Denoiser]] = {}


class Denoiser(nn.Module):
    """Base of the family models: the filter bank, lam(sigma), the arrays and the architecture of the file.

    A subclass that sets ``family`` is that family's model (:data:`MODELS`, :func:`build`);
    it also declares ``default_architecture`` and ``gradients``.
    """

    #: The family (``metadata["family"]`` of its files, as registered with :mod:`adareg.params`).
    family: ClassVar[str]
    #: The ``architecture`` of a new model unless one is given.
    default_architecture: ClassVar[dict[str, Any]]
    #: The ways of differentiating through the fixed point it supports (of :data:`GRADIENTS`), its default first.
    gradients: ClassVar[tuple[str, ...]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "family" in cls.__dict__:
            if cls.family in MODELS:
                raise ValueError(f"family {cls.family!r} has a model already: {MODELS[cls.family].__qualname__}")
            MODELS[cls.family] = cls

    def __init__(self, architecture: dict[str, Any], generator: torch.Generator):
        super().__init__()
        self.architecture = dict(architecture)
        self.bank = FilterBank(architecture["bank_channels"], architecture["bank_kernels"], generator=generator)

    def use_gradient(self, method: str, phantom_steps: int) -> None:
        """Differentiate through the fixed point by ``method``, one of :attr:`gradients`.

        ``phantom_steps``: the fixed-point map steps taken with a graph by the phantom gradient.
        """
        raise NotImplementedError

    def _bank_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"bank_{l}": layer.detach().cpu().numpy() for l, layer in enumerate(self.bank.layers)}
        arrays["lam_knots"] = self.lam.knots.cpu().numpy()
        arrays["lam_values"] = self.lam_values().detach().cpu().numpy()
        return arrays

    def _profile_arrays(self) -> dict[str, np.ndarray]:
        """The profile table and the scale alpha(sigma) (families with ``profile()`` and ``scale``)."""
        return {"profile": self.profile().detach().cpu().numpy(), "scale_knots": self.scale.knots.cpu().numpy(),
                "scale_values": self.scale.values().detach().cpu().numpy()}

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the family's parameter file (constrained values, float64)."""
        raise NotImplementedError

    @torch.no_grad()
    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the free parameters so that :meth:`arrays` gives ``arrays`` (a file of this family, validated).

        The knots of the functions of sigma are fixed by the architecture; a file with others is refused.
        """
        for profile in ("lam", "scale"):
            if hasattr(self, profile):
                knots = getattr(self, profile).knots.cpu().numpy()
                given = np.asarray(arrays[f"{profile}_knots"])
                if given.shape != knots.shape or not np.allclose(given, knots, rtol=1e-6, atol=0):
                    raise ValueError(f"{profile}_knots {given.tolist()} differ from this model's {knots.tolist()}")
        for l, layer in enumerate(self.bank.layers):
            layer.copy_(_tensor(arrays[f"bank_{l}"], layer))
        self.set_lam(arrays["lam_values"])

    def lam_values(self) -> Tensor:
        """lam(sigma) at its knots."""
        return self.lam.values()

    def set_lam(self, values: np.ndarray) -> None:
        """Make :meth:`lam_values` return ``values`` (the bank already set)."""
        self.lam.set_values(values)

    def forward(self, y: Tensor, sigma: Tensor) -> Tensor:
        """The denoised images, with a graph of the last fixed-point map step."""
        raise NotImplementedError


class Ridge(Denoiser):
    r"""The ridge families: potentials :math:`\varphi_c` whose profiles :math:`\varphi_c'` have slopes ``>= lower``.

    Subclasses give the slope bound ``lower``, the start ``lam_start`` of lam(sigma) and
    the upper bound ``lam_upper`` of :math:`\lambda(\sigma) \|W\|^2` (``None``: none;
    else ``self.lam`` holds :math:`\lambda(\sigma) \|W\|^2`, below ``lam_upper``).
    :math:`\|W\|` is the bank's norm with the reflect boundary, which the models use.
    The bank is normalised by its symbol (:math:`\|W\| = 1` on periodic images), and
    the reflect boundary sees pixels near a corner twice, so :math:`\|W\| > 1`
    (docs/training.md); the FISTA step and the bound on lam use the true norm.

    Attributes
    ----------
    norm_vector
        The last singular vector of :meth:`bank_norm`, which warm-starts the next (``None``
        before the first); training checkpoints keep it, so that a resumed run computes the
        norms it would have computed.
    """

    default_architecture = _BANK | {"profile_knots": 41, "profile_grid": [-4.0, 0.2], "scale_knots": len(SIGMA_KNOTS)}
    gradients = ("implicit", "jfb")
    lower: ClassVar[float]
    lam_start: ClassVar[float]
    lam_upper: ClassVar[float | None]

    def __init__(self, architecture: dict[str, Any], generator: torch.Generator):
        super().__init__(architecture, generator)
        self.grid_min, self.grid_step = architecture["profile_grid"]
        count = architecture["profile_knots"]
        if not self.grid_min + self.grid_step <= 0 <= self.grid_min + (count - 2) * self.grid_step:
            # clamp_slopes sets f(0) = 0 and then moves the end coefficients, which must not reach f(0)
            raise ValueError(f"{self.family}: profile_grid {architecture['profile_grid']} with {count} knots must put "
                             "0 between the second knot and the second-to-last")
        knots = self.grid_min + self.grid_step * torch.arange(count, dtype=torch.float64)
        channels = architecture["bank_channels"][-1]
        self.profile_raw = nn.Parameter(knots.clamp(-1, 1).repeat(channels, 1))  # Huber-like start
        self.scale = SigmaProfile(SIGMA_KNOTS, 1.0 / (torch.tensor(SIGMA_KNOTS) + 2 / 255))
        self.lam = SigmaProfile(SIGMA_KNOTS, self.lam_start, upper=self.lam_upper)
        self.norm_vector: Tensor | None = None
        self.iterations, self.tol = 100, 1e-4  # training solves (tests ask for more)
        self.norm_tol = 1e-6  # the training forward's ARPACK tolerance for ||W|| (bank_norm)
        # gradients: implicit (conjugate gradients on the Hessian) or, with implicit = False, JFB
        self.implicit, self.cg_iterations, self.cg_tol = True, 50, 1e-3

    def use_gradient(self, method: str, phantom_steps: int) -> None:
        self.implicit = method == "implicit"

    def profile(self) -> Tensor:
        return clamp_slopes(self.profile_raw, self.grid_step, lower=self.lower, grid_min=self.grid_min)

    def bank_norm(self, kernel: Tensor, tol: float = 0.0) -> Tensor:
        r"""``||W||`` with reflect boundary on images of any size, with its gradient in ``kernel``.

        The larger of two norms: the symbol's, 1 by the bank's normalisation, which large
        images approach, and the norm on a small square where a corner mode of the
        kernel's size is whole (:func:`~adareg_train.blocks.top_singular_vector`): a
        corner's pixels are seen twice, so a trained bank's norm is larger, and no larger on
        bigger images; smaller ones see the corners interact (docs/training.md).  ``tol``
        is the Lanczos tolerance: 0 (machine precision) for the exported bound, the looser
        ``self.norm_tol`` in a training step.
        """
        self.norm_vector = top_singular_vector(kernel, self.norm_vector, tol=tol)
        # summed in float64: torch's float32 norm of these responses on the CPU errs well beyond float32's rounding
        # (docs/training.md), low, which would lift a float32 run's lam above its bound
        responses = BankOperator(kernel, self.norm_vector.shape[-2:])(self.norm_vector)
        corner = torch.linalg.vector_norm(responses.double()).to(kernel.dtype)
        return torch.clamp(corner, min=1.0)

    def lam_scale(self, norm: Tensor) -> Tensor | float:
        """lam(sigma) / ``self.lam(sigma)``: ``1 / norm**2`` where lam is bounded, else 1."""
        return 1.0 if self.lam_upper is None else 1.0 / norm**2

    def lam_values(self) -> Tensor:
        if self.lam_upper is None:
            return super().lam_values()
        return self.lam.values() * self.lam_scale(self.bank_norm(self.bank.kernel()))

    def arrays(self) -> dict[str, np.ndarray]:
        return self._bank_arrays() | self._profile_arrays()

    def set_lam(self, values: np.ndarray) -> None:
        """Make :meth:`lam_values` return ``values``, projected below the bound (a file trained without it)."""
        if self.lam_upper is None:
            return super().set_lam(values)
        values = torch.as_tensor(values, dtype=self.lam.raw.dtype, device=self.lam.raw.device)
        values = values / self.lam_scale(self.bank_norm(self.bank.kernel()))
        self.lam.set_values(values.clamp(max=self.lam_upper * (1 - LAM_MARGIN)))

    @torch.no_grad()
    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        super().load_arrays(arrays)
        self.profile_raw.copy_(_tensor(arrays["profile"], self.profile_raw))  # clamp_slopes keeps a valid profile
        self.scale.set_values(arrays["scale_values"])

    def gradient(self, x: Tensor, W: BankOperator, table: Tensor, alpha: Tensor) -> Tensor:
        r""":math:`\nabla R_\sigma(x) = W^T f(\alpha W x) / \alpha`."""
        return W.adjoint(linear_spline(table, alpha * W(x), self.grid_min, self.grid_step)) / alpha

    def forward(self, y: Tensor, sigma: Tensor) -> Tensor:
        W, table = self.bank.operator(y.shape[-2:]), self.profile()
        norm = self.bank_norm(W.kernel, self.norm_tol)
        alpha = self.scale(sigma).view(-1, 1, 1, 1)
        lam = (self.lam(sigma) * self.lam_scale(norm)).view(-1, 1, 1, 1)
        lipschitz = torch.diff(table, dim=1).abs().max() / self.grid_step * norm.detach()**2  # of R's gradient
        step = (1.0 / (1.0 + lam * lipschitz)).detach()
        with torch.no_grad():
            fixed = BankOperator(W.kernel.detach(), W.image_shape)
            x = self.solve(y, fixed, table.detach(), alpha.detach(), lam.detach(), step)
        out = x - step * (x - y + lam * self.gradient(x, W, table, alpha))
        if self.implicit and out.requires_grad:
            with torch.no_grad():
                curvature = linear_spline_slope(table.detach(), alpha.detach() * fixed(x), self.grid_min,
                                                self.grid_step)
            out.register_hook(lambda g: self.solve_hessian(g, fixed, curvature, lam.detach()) / step)
        return out

    def solve_hessian(self, g: Tensor, W: BankOperator, curvature: Tensor, lam: Tensor) -> Tensor:
        r"""``v = (I + lam W^T diag(f'(alpha W x)) W)^{-1} g`` by conjugate gradients, per image.

        The matrix is the Hessian of :math:`\tfrac12\|x - y\|^2 + \lambda R_\sigma` at the
        minimiser (positive definite for ``crr``, semi-definite at worst for ``wcrr``, where
        :math:`\lambda \rho \le 1`); ``cg_iterations`` steps or a relative residual of ``cg_tol``.
        """
        def hessian(v: Tensor) -> Tensor:
            return v + lam * W.adjoint(curvature * W(v))

        def dot(a: Tensor, b: Tensor) -> Tensor:
            return torch.sum(a * b, dim=(1, 2, 3), keepdim=True)

        v, r = torch.zeros_like(g), g
        d, rr = r, dot(r, r)
        goal = self.cg_tol**2 * rr
        for _ in range(self.cg_iterations):
            if bool(torch.all(rr <= goal)):
                break
            Hd = hessian(d)
            a = torch.where(rr > goal, rr / dot(d, Hd), 0.0)
            v, r = v + a * d, r - a * Hd
            rr_next = dot(r, r)
            d = r + torch.where(rr > goal, rr_next / rr, 0.0) * d
            rr = rr_next
        return v

    def solve(self, y: Tensor, W: BankOperator, table: Tensor, alpha: Tensor, lam: Tensor, step: Tensor) -> Tensor:
        """FISTA on ``1/2 ||x - y||^2 + lam R(x)`` from ``y``, stopped on the relative change."""
        x, z, t = y, y, 1.0
        for k in range(self.iterations):
            x_next = z - step * (z - y + lam * self.gradient(z, W, table, alpha))
            t_next = 0.5 * (1 + math.sqrt(1 + 4 * t * t))
            z = x_next + ((t - 1) / t_next) * (x_next - x)
            # the relative change, tested every 10 iterations (each test waits for the device)
            stop = k % 10 == 9 and torch.linalg.vector_norm(x_next - x) <= self.tol * torch.linalg.vector_norm(x)
            x, t = x_next, t_next
            if stop:
                break
        return x


class CRR(Ridge):
    """``crr``: convex potentials."""

    family = "crr"
    lower, lam_start, lam_upper = 0.0, 1.0, None


class WCRR(Ridge):
    """``wcrr``: ``phi'' >= -rho`` and ``lam rho ||W||^2 <= 1`` (``rho`` = :data:`WCRR_RHO`): a convex objective."""

    family = "wcrr"
    lower, lam_start, lam_upper = -WCRR_RHO, 0.5, 1.0 / WCRR_RHO


class Adaptive(Denoiser):
    """The reweighting families: subclasses give the weights ``Lambda(x, sigma)``."""

    gradients = ("phantom", "jfb")

    def __init__(self, architecture: dict[str, Any], generator: torch.Generator):
        super().__init__(architecture, generator)
        self.lam = SigmaProfile(SIGMA_KNOTS, 0.5 * torch.tensor(SIGMA_KNOTS) + 0.5 / 255)
        self.outer, self.inner, self.tol = 10, 20, 1e-4  # training solves (tests ask for more)
        self.map_steps = 1  # fixed-point map steps taken with a graph: 1 = JFB, more = phantom gradient

    def use_gradient(self, method: str, phantom_steps: int) -> None:
        self.map_steps = phantom_steps if method == "phantom" else 1

    def weights(self, x: Tensor, sigma: Tensor, W: BankOperator) -> Tensor:
        raise NotImplementedError

    def forward(self, y: Tensor, sigma: Tensor) -> Tensor:
        return self.map_from(y, sigma, *self.equilibrium(y, sigma))

    def equilibrium(self, y: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor, BankOperator, Tensor]:
        """The fixed point ``x``, ``p`` (:meth:`solve`, no graph), then ``W`` and ``lam(sigma)`` with their graphs."""
        W = self.bank.operator(y.shape[-2:])
        lam = self.lam(sigma).view(-1, 1, 1, 1)
        with torch.no_grad():
            x, p = self.solve(y, sigma, BankOperator(W.kernel.detach(), W.image_shape), lam.detach())
        return x, p, W, lam

    def map_from(self, y: Tensor, sigma: Tensor, x: Tensor, p: Tensor, W: BankOperator, lam: Tensor) -> Tensor:
        """``self.map_steps`` steps of the fixed-point map from ``(x, p)``, with a graph: the denoised images."""
        for _ in range(self.map_steps):  # T(x, p): new weights, one projected dual gradient step
            bound = lam * self.weights(x, sigma, W)
            p = (p + W(x)).clamp(-bound, bound)
            x = y - W.adjoint(p)
        return x

    def contraction(self, y: Tensor, sigma: Tensor, x: Tensor, p: Tensor, W: BankOperator, lam: Tensor,
                    iterations: int, generator: torch.Generator | None = None) -> Tensor:
        r"""A power-iteration estimate of :math:`\|J_b\|`, the bound on the reweighting map's Jacobian at ``x``.

        ``p`` is a dual minimiser of the map's problem at ``x`` (below), e.g. the one :meth:`equilibrium`
        returns with its fixed point.

        The reweighting map is :math:`S(x) = \arg\min_u \tfrac12\|u - y\|^2 + \sum_c \langle b_c, |W_c u|\rangle`
        with :math:`b = \lambda \Lambda(x)`.  At its minimiser :math:`u = y - W^T p`, :math:`|p| \le b`; the
        entries where the box is active (:math:`|p + W u| > b`, set :math:`A`) hold :math:`p = b\,\mathrm{sign}(W u)`
        and the others have :math:`(W u)_I = 0`.  A small change of ``b`` keeps the sets, so
        :math:`\mathrm{d}u = -P W^T D\,\mathrm{d}b` with :math:`D` the signs on :math:`A` (0 on :math:`I`) and
        :math:`P` the orthogonal projector onto :math:`\ker W_I`, whence
        :math:`\|\partial S / \partial x\| \le \|J_b\|`, :math:`J_b = \lambda W^T D\, \partial\Lambda/\partial x`.
        Below 1, it makes the reweighting a contraction near ``x``, so the outer iteration converges linearly.

        ``iterations`` power iterations on :math:`J_b^T J_b` from a random start (``generator``) run without a
        graph (:math:`\partial\Lambda/\partial x` applied by forward-mode differentiation, its transpose by
        reverse mode); the value returned, one per image, is :math:`\|J_b^T u\|` for the last unit
        :math:`u \propto J_b v`, with a graph to the parameters (``W``, ``lam`` and the weights): at most
        :math:`\|J_b\|`, and equal to it once the iteration has converged.
        """
        if not (checks.is_int(iterations) and iterations > 0):
            raise ValueError(f"iterations must be a positive int, got {iterations!r}")
        x = x.detach()
        with torch.no_grad():
            z = p + W(y - W.adjoint(p))  # W u at the map's minimiser u = y - W^T p
            signs = torch.where(z.abs() > lam.detach() * self.weights(x, sigma, W), torch.sign(z), 0.0)
        v = torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
        for _ in range(iterations):
            with torch.no_grad():
                _, jacobian_v = torch.func.jvp(lambda u: self.weights(u, sigma, W), (x,), (v,))
                u = W.adjoint(lam * signs * jacobian_v)
                u = u / torch.linalg.vector_norm(u, dim=(1, 2, 3), keepdim=True).clamp(min=torch.finfo(u.dtype).tiny)
                v = self._weights_transpose(x, sigma, W, lam * signs * W(u), graph=False)
        return torch.linalg.vector_norm(self._weights_transpose(x, sigma, W, lam * signs * W(u), graph=True),
                                        dim=(1, 2, 3))

    def _weights_transpose(self, x: Tensor, sigma: Tensor, W: BankOperator, w: Tensor, graph: bool) -> Tensor:
        r"""``(d Lambda / d x)^T w`` at ``x`` (reverse mode; with a graph to the parameters and ``w`` if ``graph``)."""
        with torch.enable_grad():
            point = x.detach().requires_grad_(True)
            return torch.autograd.grad(self.weights(point, sigma, W), point, w, create_graph=graph)[0]

    def solve(self, y: Tensor, sigma: Tensor, W: BankOperator, lam: Tensor) -> tuple[Tensor, Tensor]:
        """The reweighting fixed point ``x`` and its dual ``p`` (``x = y - W^T p``).

        ``self.outer`` steps at most, stopped when the relative change of ``x`` is at most
        ``self.tol``; each step takes ``self.inner`` dual FISTA iterations and carries the
        momentum on to the next (as :func:`adareg.solvers.reweighting` does), so the steps
        together are one FISTA run whose box changes between them.
        """
        x = y
        p = torch.zeros(y.shape[0], W.spectrum.shape[0], *y.shape[-2:], dtype=y.dtype, device=y.device)
        q, t = p, torch.ones(y.shape[0], 1, 1, 1, dtype=y.dtype, device=y.device)
        for _ in range(self.outer):
            bound = lam * self.weights(x, sigma, W)
            p, q, t = self.dual_fista(y, p, q, t, bound, W)
            x_next = y - W.adjoint(p)
            change = torch.linalg.vector_norm(x_next - x) / torch.linalg.vector_norm(x)
            x = x_next
            if change <= self.tol:
                break
        return x, p

    def dual_fista(self, y: Tensor, p: Tensor, q: Tensor, t: Tensor, bound: Tensor,
                   W: BankOperator) -> tuple[Tensor, Tensor, Tensor]:
        """``self.inner`` dual FISTA steps of 1 on ``{|p| <= bound}``; the new ``(p, q, t)``.

        The step is the inverse of the bank's symbol norm squared, 1 by its normalisation;
        a trained bank's reflect-boundary norm is larger (docs/training.md), so it can
        exceed ``1 / ||W||^2``, and the fixed points still match adareg's, whose dual steps
        are ``1 / ||W||^2``.

        ``p`` is projected onto the box; the extrapolated point ``q`` and the momentum
        parameter ``t`` (one per image) continue those of the previous call.  With adaptive
        restart per image (O'Donoghue and Candes, as adareg's dual FISTA): the momentum is
        dropped where it points uphill; no host synchronisation in the loop.
        """
        p = p.clamp(-bound, bound)
        for _ in range(self.inner):
            p_next = q + W(y - W.adjoint(q))
            p_next = p_next.clamp(-bound, bound)
            uphill = torch.sum((q - p_next) * (p_next - p), dim=(1, 2, 3), keepdim=True) > 0
            t_next = 0.5 * (1 + torch.sqrt(1 + 4 * t * t))
            beta = torch.where(uphill, 0.0, (t - 1) / t_next)
            q = p_next + beta * (p_next - p)
            p, t = p_next, torch.where(uphill, 1.0, t_next)
        return p, q, t


class SAB(Adaptive):
    r"""``sa-b``: :math:`\Lambda_c = B_c^T \psi_c'(\alpha B_c |W_c x|)`, ``psi' >= 0`` non-increasing, last segment flat."""

    family = "sa-b"
    default_architecture = _BANK | {"profile_knots": 21, "profile_grid": [0.0, 0.25], "scale_knots": len(SIGMA_KNOTS),
                                    "blur_kernel": 5}

    def __init__(self, architecture: dict[str, Any], generator: torch.Generator):
        super().__init__(architecture, generator)
        channels, size = architecture["bank_channels"][-1], architecture["blur_kernel"]
        self.grid_min, self.grid_step = architecture["profile_grid"]
        if not self.grid_min > -1.0:  # (NaN too)
            raise ValueError(f"sa-b: profile_grid must start above -1, where the starting psi'(t) = 1 / (1 + t) is "
                             f"finite and positive (the blurred responses t are >= 0: e.g. 0), got {self.grid_min!r}")
        knots = self.grid_min + self.grid_step * torch.arange(architecture["profile_knots"], dtype=torch.float64)
        start = 1.0 / (1.0 + knots)  # psi = log(1 + t): the classical reweighted l1
        start[-1] = start[-2]
        # psi'_k = floor + sum_{j >= k} drop_j over the first K - 2 segments; the last segment is flat
        self.drop_raw = nn.Parameter(_inverse_softplus(-torch.diff(start[:-1])).repeat(channels, 1))
        self.floor_raw = nn.Parameter(_inverse_softplus(start[-1]).repeat(channels))
        self.blur_raw = nn.Parameter(torch.zeros(channels, size, size, dtype=torch.float64))
        self.scale = SigmaProfile(SIGMA_KNOTS, 1.0 / (torch.tensor(SIGMA_KNOTS) + 2 / 255))

    def profile(self) -> Tensor:
        drops = F.softplus(self.drop_raw)
        tail = torch.flip(torch.cumsum(torch.flip(drops, [1]), dim=1), [1])  # sum_{j >= k} drop_j
        floor = F.softplus(self.floor_raw)[:, None]
        return torch.cat([tail + floor, floor, floor], dim=1)

    def blur(self) -> Tensor:
        b = F.softplus(self.blur_raw)
        return b / b.sum(dim=(-2, -1), keepdim=True)

    def arrays(self) -> dict[str, np.ndarray]:
        return self._bank_arrays() | self._profile_arrays() | {"blur": self.blur().detach().cpu().numpy()}

    @torch.no_grad()
    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        super().load_arrays(arrays)
        profile = _tensor(arrays["profile"], self.drop_raw)
        self.drop_raw.copy_(_inverse_softplus(-torch.diff(profile[:, :-1], dim=1)))
        self.floor_raw.copy_(_inverse_softplus(profile[:, -1]))
        self.blur_raw.copy_(_inverse_softplus(_tensor(arrays["blur"], self.blur_raw)))  # its sum is 1 already
        self.scale.set_values(arrays["scale_values"])

    def weights(self, x: Tensor, sigma: Tensor, W: BankOperator) -> Tensor:
        blur = self.blur()[:, None]
        channels = blur.shape[0]
        magnitude = self.scale(sigma).view(-1, 1, 1, 1) * correlate(W(x).abs(), blur, channels)
        return correlate_adjoint(linear_spline(self.profile(), magnitude, self.grid_min, self.grid_step),
                                 blur, channels)


class SACNN(Adaptive):
    r"""``sa-cnn``: :math:`\Lambda(x, \sigma)` from the mask CNN."""

    family = "sa-cnn"
    default_architecture = _BANK | {"mask_channels": [16, 16, 32], "mask_kernels": [5, 3, 3],
                                    "activation": "leaky_relu"}

    def __init__(self, architecture: dict[str, Any], generator: torch.Generator):
        super().__init__(architecture, generator)
        self.outer, self.inner = 20, 6  # budgeted steps carrying the momentum, as in adareg.solve
        self.masks = MaskCNN(architecture["mask_channels"], architecture["mask_kernels"],
                             activation=architecture["activation"], generator=generator)

    def arrays(self) -> dict[str, np.ndarray]:
        arrays = self._bank_arrays()
        for j, (kernel, bias) in enumerate(zip(self.masks.kernels, self.masks.biases)):
            arrays[f"mask_kernel_{j}"] = kernel.detach().cpu().numpy()
            arrays[f"mask_bias_{j}"] = bias.detach().cpu().numpy()
        return arrays

    @torch.no_grad()
    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        super().load_arrays(arrays)
        for j, (kernel, bias) in enumerate(zip(self.masks.kernels, self.masks.biases)):
            kernel.copy_(_tensor(arrays[f"mask_kernel_{j}"], kernel))
            bias.copy_(_tensor(arrays[f"mask_bias_{j}"], bias))

    def weights(self, x: Tensor, sigma: Tensor, W: BankOperator) -> Tensor:
        return self.masks(x, sigma)


def model_class(family: str) -> type[Denoiser]:
    """The model class of ``family`` (a ``ValueError`` naming the families for another name)."""
    try:
        return MODELS[family]
    except KeyError:
        raise ValueError(f"family must be one of {sorted(MODELS)}, got {family!r}") from None


def families_with(method: str) -> list[str]:
    """The families whose models support the gradient ``method``, sorted."""
    return [family for family, cls in sorted(MODELS.items()) if method in cls.gradients]


def smallest_side(architecture: dict[str, Any]) -> int:
    """The smallest image side a model of ``architecture`` takes: one pixel more than its widest kernel's padding.

    The widest kernel is the composed filter bank's, the mask network's or the ``sa-b`` blur's; the reflect
    padding needs more pixels than it pads.
    """
    widest = max(sum(k - 1 for k in architecture["bank_kernels"]) + 1, *architecture.get("mask_kernels", ()),
                 architecture.get("blur_kernel", 1))
    return widest // 2 + 1


def build(family: str, architecture: dict[str, Any] | None = None, *, seed: int = 0) -> Denoiser:
    """A model of ``family`` with its default (or the given) architecture and a seeded random start."""
    cls = model_class(family)
    return cls(copy.deepcopy(cls.default_architecture if architecture is None else architecture),
               torch.Generator().manual_seed(seed))
