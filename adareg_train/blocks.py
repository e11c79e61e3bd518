r"""Torch mirrors of adareg's building blocks: the same arrays, the same maths, differentiable.

Each class computes exactly what its adareg counterpart computes from the arrays a
parameter file stores (``docs/learned.md`` is the contract):

* :class:`FilterBank` — zero-mean first layer, composed into one correlation kernel,
  divided by the largest singular value of its symbol on a 256 x 256 DFT grid, applied
  with reflect boundary (:class:`adareg.regularizers.FilterBank`);
* :class:`SigmaProfile` — piecewise-linear functions of the noise level
  (:class:`adareg.regularizers.learned.SigmaProfile`);
* :func:`linear_spline` — linear splines with linear extension
  (:class:`adareg.regularizers.LinearSpline`);
* :class:`MaskCNN` — the ``sa-cnn`` mask network (:class:`adareg.regularizers.masks.MaskCNN`).

Images are batches ``(B, 1, H, W)``, responses ``(B, C, H, W)``, noise levels
``(B,)`` tensors (one per image).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Frequency grid of the filter-bank normalisation (adareg.regularizers.filterbank.NORM_GRID).
NORM_GRID = 256
#: Side of the square image on which :func:`top_singular_vector` measures a bank (at least): the top
#: singular vectors of a trained bank with reflect boundary sit at a corner, so larger images give no
#: larger norm, while smaller ones see the corners interact (docs/training.md).
NORM_IMAGE = 32
#: Negative slope of the leaky ReLU (adareg.regularizers.masks.LEAKY_SLOPE).
LEAKY_SLOPE = 0.1


def reflect_pad(x: Tensor, pad: int) -> Tensor:
    """Extend the last two axes by ``pad`` samples, mirrored about the edge sample (numpy's "reflect")."""
    return F.pad(x, (pad, pad, pad, pad), mode="reflect") if pad else x


def reflect_fold(z: Tensor, pad: int) -> Tensor:
    """The adjoint of :func:`reflect_pad`: add the mirrored borders back onto the samples they copy."""
    if not pad:
        return z
    for axis in (-2, -1):
        n = z.shape[axis] - 2 * pad
        core = z.narrow(axis, pad, n)
        head = z.narrow(axis, 0, pad).flip(axis)  # copies of samples 1 .. pad
        tail = z.narrow(axis, n + pad, pad).flip(axis)  # copies of samples n-1-pad .. n-2
        zeros = [0] * (2 * (-1 - axis))  # F.pad pads the last axis first
        core = core + F.pad(head, [*zeros, 1, n - 1 - pad]) + F.pad(tail, [*zeros, n - 1 - pad, 1])
        z = core
    return z


def correlate(x: Tensor, kernel: Tensor, groups: int = 1) -> Tensor:
    """Cross-correlation with "same" size and reflect boundary (adareg's ``Conv2d(boundary="reflect")``).

    ``groups = C`` with a ``(C, 1, k, k)`` kernel is adareg's ``DepthwiseConv2d``.
    """
    return F.conv2d(reflect_pad(x, kernel.shape[-1] // 2), kernel, groups=groups)


def correlate_adjoint(y: Tensor, kernel: Tensor, groups: int = 1) -> Tensor:
    """The exact adjoint of :func:`correlate`."""
    return reflect_fold(F.conv_transpose2d(y, kernel, groups=groups), kernel.shape[-1] // 2)


def compose_kernels(layers: list[Tensor]) -> Tensor:
    """The kernel of the composed correlations ``K_L o ... o K_1`` (adareg's ``compose_kernels``).

    ``(a * b)`` full convolution per channel pair: ``e_l[o, i] = sum_h b[o, h] * e_{l-1}[h, i]``.
    """
    effective = layers[0]
    for kernel in layers[1:]:
        k = kernel.shape[-1]
        # batch over input channels i; convolution = correlation with the flipped kernel, "full" size
        composed = F.conv2d(effective.transpose(0, 1), kernel.flip(-2, -1), padding=k - 1)
        effective = composed.transpose(0, 1)
    return effective


def spectral_norm(kernel: Tensor, grid: int = NORM_GRID) -> Tensor:
    """Largest singular value over frequencies of a ``(C, 1, K, K)`` kernel's symbol (differentiable)."""
    symbol = torch.fft.fft2(kernel[:, 0], s=(grid, grid))
    return torch.sqrt(torch.max(torch.sum(symbol.real**2 + symbol.imag**2, dim=0)))


def top_singular_vector(kernel: Tensor, start: Tensor | None = None, *, tol: float = 0.0) -> Tensor:
    r"""The top right singular vector :math:`v` of ``W`` with reflect boundary on a square image.

    The image is ``NORM_IMAGE`` pixels wide, or twice the kernel's size if that is more,
    so that a corner mode is whole.  :math:`v` is found by the Lanczos method (ARPACK's,
    :func:`scipy.sparse.linalg.eigsh`) on ``W^T W`` from ``start`` (a former result, to
    warm-start it; default a fixed random image), with the products in float64 on the
    kernel's device (:class:`BankOperator`).  :math:`\|W v\|` is then :math:`\|W\|` on
    that image, and its gradient in the kernel is the norm's: the top singular value's
    derivative needs no derivative of :math:`v`.

    Parameters
    ----------
    tol
        ARPACK's relative tolerance on the eigenvalue :math:`\|W\|^2`; 0 is machine
        precision.  The Rayleigh quotient :math:`\|Wv\|^2` is accurate to about the
        square of the vector's error, so a training step can use a loose tolerance at a
        fraction of the products (docs/training.md); exported bounds use 0.

    Returns
    -------
    Tensor
        :math:`v`, shape ``(1, 1, n, n)``, of the kernel's dtype and device; NaN for a kernel that
        is zero or not finite (a diverged training step, which the training loop then reports).
    """
    from scipy.sparse.linalg import LinearOperator, eigsh

    n = max(NORM_IMAGE, 2 * kernel.shape[-1])
    kernel = kernel.detach()
    if not (torch.isfinite(kernel).all() and kernel.any()):  # a diverged training step: NaN, which its loss will show
        return torch.full((1, 1, n, n), math.nan, dtype=kernel.dtype, device=kernel.device)
    W = BankOperator(kernel.double(), (n, n))

    def gram(v: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(v, device=kernel.device).reshape(1, 1, n, n)
        return W.adjoint(W(x)).cpu().numpy().ravel()

    operator = LinearOperator((n * n, n * n), matvec=gram, dtype=np.float64)
    if start is None or start.shape[-2:] != (n, n):
        v0 = np.random.default_rng(0).standard_normal(n * n)
    else:
        v0 = start.detach().cpu().double().numpy().ravel()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # products of one small image; more threads only contend with BLAS's spinning ones
    try:
        _, vectors = eigsh(operator, k=1, which="LA", tol=tol, v0=v0)
    finally:
        torch.set_num_threads(threads)
    return torch.as_tensor(vectors[:, 0].reshape(1, 1, n, n), dtype=kernel.dtype, device=kernel.device)


class FilterBank(nn.Module):
    r"""``W = K_L o ... o K_1 / nu``: learned layers, zero-mean first layer, ``||W|| = 1`` on a 256^2 grid.

    Parameters
    ----------
    channels, kernels
        ``c_1, ..., c_L`` and the odd kernel sizes ``k_1, ..., k_L``.
    generator
        Random source of the initial kernels.
    """

    def __init__(self, channels: list[int], kernels: list[int], *, generator: torch.Generator | None = None):
        super().__init__()
        inputs = [1, *channels[:-1]]
        self.layers = nn.ParameterList(
            nn.Parameter(torch.randn(c, c_in, k, k, generator=generator, dtype=torch.float64) / (k * c_in**0.5))
            for c, c_in, k in zip(channels, inputs, kernels)
        )
        self.channels = channels[-1]

    def kernel(self) -> Tensor:
        """The normalised composed kernel, shape ``(C, 1, K, K)``."""
        first = self.layers[0] - self.layers[0].mean(dim=(-2, -1), keepdim=True)
        kernel = compose_kernels([first, *self.layers[1:]])
        return kernel / spectral_norm(kernel)

    def operator(self, image_shape: tuple[int, int]) -> BankOperator:
        """``W`` on images of ``image_shape``, with a graph to the layers."""
        return BankOperator(self.kernel(), image_shape)


class BankOperator:
    r"""``W`` and ``W^T`` for a ``(C, 1, K, K)`` kernel on ``(H, W)`` images, by FFTs on the reflect-padded grid.

    On the padded grid (``H + K - 1`` by ``W + K - 1``) the circular correlation equals
    the linear one on the kept samples, so no further padding is needed; the adjoint
    is the circular convolution followed by :func:`reflect_fold`.  Same maths as
    :func:`correlate` (tested), at a fraction of its cost for 13 x 13 kernels.
    """

    def __init__(self, kernel: Tensor, image_shape: tuple[int, int]):
        self.pad = kernel.shape[-1] // 2
        self.image_shape = tuple(image_shape)
        self.grid = (image_shape[0] + 2 * self.pad, image_shape[1] + 2 * self.pad)
        self.spectrum = torch.fft.rfft2(kernel[:, 0], s=self.grid)  # (C, Hp, Wp // 2 + 1)
        self.kernel = kernel

    def __call__(self, x: Tensor) -> Tensor:
        """``W x``: ``(B, 1, H, W) -> (B, C, H, W)``."""
        h, w = self.image_shape
        spectrum = torch.fft.rfft2(reflect_pad(x, self.pad)) * self.spectrum.conj()
        return torch.fft.irfft2(spectrum, s=self.grid)[..., :h, :w]

    def adjoint(self, z: Tensor) -> Tensor:
        """``W^T z``: ``(B, C, H, W) -> (B, 1, H, W)``."""
        spectrum = torch.sum(torch.fft.rfft2(z, s=self.grid) * self.spectrum, dim=1, keepdim=True)
        return reflect_fold(torch.fft.irfft2(spectrum, s=self.grid), self.pad)


class SigmaProfile(nn.Module):
    """A positive piecewise-linear function of sigma on fixed knots, constant beyond the end knots (``numpy.interp``).

    The values at the knots are ``exp(raw)``, or ``upper * sigmoid(raw)`` when an
    upper bound is given (e.g. ``lam ||W||^2 <= 1`` for ``wcrr``, which keeps the denoising
    problem convex).
    """

    def __init__(self, knots: list[float], initial: Tensor | float, *, upper: float | None = None):
        super().__init__()
        self.register_buffer("knots", torch.tensor(knots, dtype=torch.float64))
        self.upper = upper
        start = torch.as_tensor(initial, dtype=torch.float64).expand(len(knots)).clone()
        raw = start.log() if upper is None else torch.logit(start / upper)
        self.raw = nn.Parameter(raw)

    def values(self) -> Tensor:
        return self.raw.exp() if self.upper is None else self.upper * torch.sigmoid(self.raw)

    @torch.no_grad()
    def set_values(self, values: Tensor) -> None:
        """Make :meth:`values` return ``values`` (a tensor or an array; positive, below ``upper`` if set)."""
        values = torch.as_tensor(values, dtype=self.raw.dtype, device=self.raw.device)
        self.raw.copy_(values.log() if self.upper is None else torch.logit(values / self.upper))

    def forward(self, sigma: Tensor) -> Tensor:
        """The profile at each ``sigma`` (shape ``(B,)``)."""
        knots, values = self.knots, self.values()
        if knots.numel() == 1:
            return values.expand_as(sigma)
        s = sigma.clamp(knots[0], knots[-1])
        i = torch.searchsorted(knots, s.detach(), right=True).clamp(1, knots.numel() - 1)
        left, right = knots[i - 1], knots[i]
        u = (s - left) / (right - left)
        return values[i - 1] + u * (values[i] - values[i - 1])


def _segments(a: Tensor, z: Tensor, grid_min: float, grid_step: float) -> tuple[Tensor, Tensor]:
    """The flat table index of each value's segment and its fraction ``u`` (``u < 0`` or ``> 1`` outside)."""
    channels, knots = a.shape
    s = (z - grid_min) / grid_step
    # NaN (a diverged training step) to segment 0, so that the result is NaN rather than an index error
    k = s.detach().floor().clamp(0, knots - 2).nan_to_num(0.0).long()
    return k + (torch.arange(channels, device=z.device) * knots).view(1, channels, 1, 1), s - k


def linear_spline(a: Tensor, z: Tensor, grid_min: float, grid_step: float) -> Tensor:
    r"""``f_c(z)``: ``C`` linear splines on the knots ``t_0 + k h`` with linear extension.

    ``a`` is the coefficient table ``(C, K)``, ``f_c(t_k) = a[c, k]``; ``z`` has shape
    ``(B, C, H, W)``.  The same segment rule as :class:`adareg.regularizers.LinearSpline`.
    """
    index, u = _segments(a, z, grid_min, grid_step)
    flat = a.reshape(-1)
    left = flat[index]
    return left + u * (flat[index + 1] - left)


def linear_spline_slope(a: Tensor, z: Tensor, grid_min: float, grid_step: float) -> Tensor:
    """``f_c'(z)``: the slope of the segment of each value (as ``LinearSpline.derivative``)."""
    index, _ = _segments(a, z, grid_min, grid_step)
    flat = a.reshape(-1)
    return (flat[index + 1] - flat[index]) / grid_step


class MaskCNN(nn.Module):
    r"""``Lambda(x, sigma) = sigmoid(K_J a(... a(K_1 [x, sigma] + b_1) ...) + b_J)`` (reflect boundary)."""

    def __init__(self, channels: list[int], kernels: list[int], *, activation: str = "leaky_relu",
                 generator: torch.Generator | None = None):
        super().__init__()
        inputs = [2, *channels[:-1]]
        self.kernels = nn.ParameterList(
            nn.Parameter(torch.randn(c, c_in, k, k, generator=generator, dtype=torch.float64) / (k * c_in**0.5))
            for c, c_in, k in zip(channels, inputs, kernels)
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(c, dtype=torch.float64)) for c in channels)
        self.activation = activation

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:
        h = x
        depth = len(self.kernels)
        for j, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            if j == 0:
                # the constant sigma channel, correlated with reflect boundary, is sigma * sum(kernel)
                h = correlate(h, kernel[:, :1]) + (sigma.view(-1, 1) * kernel[:, 1].sum(dim=(-2, -1))).view(
                    -1, kernel.shape[0], 1, 1)
            else:
                h = correlate(h, kernel)
            h = h + bias.view(1, -1, 1, 1)
            if j < depth - 1:
                h = F.relu(h) if self.activation == "relu" else F.leaky_relu(h, LEAKY_SLOPE)
        return torch.sigmoid(h)
