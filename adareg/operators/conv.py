"""Two-dimensional convolutions: multi-channel filter banks and blurs."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .. import backend
from ..backend import Array
from .base import LinearOperator, as_shape, batch_shape

Boundary = Literal["zero", "periodic", "reflect"]
_PAD_MODE = {"zero": "constant", "periodic": "wrap", "reflect": "reflect"}


class Conv2d(LinearOperator):
    r"""Multi-channel 2D cross-correlation with "same" output size.

    .. math::

        (K x)_o[i, j] = \sum_c \sum_{u, v} k[o, c, u, v] \, \tilde x_c[i + u - p_h, j + v - p_w]

    with :math:`p_h = \lfloor (k_h - 1)/2 \rfloor`, :math:`p_w = \lfloor (k_w - 1)/2 \rfloor`
    and :math:`\tilde x` the image extended across its border.  This is the
    convention of ``torch.nn.functional.conv2d`` with ``padding="same"`` (a
    cross-correlation: the kernel is not flipped), so that filters trained in
    PyTorch apply unchanged.  The adjoint is exact, boundary extension included.

    Parameters
    ----------
    kernel
        ``(kh, kw)``: one filter, image ``(H, W)`` to image ``(H, W)``;
        ``(C_out, kh, kw)``: a filter bank, ``(H, W)`` to ``(C_out, H, W)``;
        ``(C_out, C_in, kh, kw)``: ``(C_in, H, W)`` to ``(C_out, H, W)``.
        Real or complex.
    image_shape
        ``(H, W)``.
    boundary
        How the image is extended: ``"zero"``; ``"periodic"`` (wraps around);
        ``"reflect"`` (mirrored about the edge sample, which is not repeated:
        ``d c b | a b c d | c b a``, as ``numpy.pad(mode="reflect")`` and torch's
        ``padding_mode="reflect"``).
    method
        ``"direct"`` sums shifted copies (one per kernel tap), ``"fft"`` multiplies
        spectra (better for large kernels and many channels), ``"auto"`` picks by
        kernel size.
    """

    def __init__(self, kernel: Array, image_shape: Any, *, boundary: Boundary = "zero",
                 method: Literal["auto", "direct", "fft"] = "auto"):
        if not backend.is_array(kernel):
            kernel = np.asarray(kernel)
        backend.check_dtype(kernel, "Conv2d: kernel")
        kernel = backend.to_numpy(kernel)
        image_shape = as_shape(image_shape, "image_shape")
        if len(image_shape) != 2:
            raise ValueError(f"Conv2d: image_shape must be (H, W), got {image_shape}")
        if kernel.ndim not in (2, 3, 4):
            raise ValueError(
                f"Conv2d: kernel must have shape (kh, kw), (C_out, kh, kw) or (C_out, C_in, kh, kw), "
                f"got {kernel.shape}"
            )
        if not np.all(np.isfinite(kernel)):
            raise ValueError("Conv2d: kernel contains NaN or Inf")
        if boundary not in _PAD_MODE:
            raise ValueError(f"Conv2d: boundary must be one of {sorted(_PAD_MODE)}, got {boundary!r}")
        if method not in ("auto", "direct", "fft"):
            raise ValueError(f"Conv2d: method must be 'auto', 'direct' or 'fft', got {method!r}")
        k4 = {2: kernel[None, None], 3: kernel[:, None], 4: kernel}[kernel.ndim]
        c_out, c_in, kh, kw = k4.shape
        h, w = image_shape
        self.pads = (((kh - 1) // 2, kh - 1 - (kh - 1) // 2), ((kw - 1) // 2, kw - 1 - (kw - 1) // 2))
        if boundary == "reflect" and any(max(pad) > n - 1 for pad, n in zip(self.pads, image_shape)):
            raise ValueError(
                f"Conv2d: a {kh}x{kw} kernel needs more than the image {image_shape} "
                "for boundary='reflect'; use 'zero' or 'periodic'"
            )
        shape_in = (c_in, h, w) if kernel.ndim == 4 else (h, w)
        shape_out = (h, w) if kernel.ndim == 2 else (c_out, h, w)
        super().__init__(shape_in, shape_out, kernel.dtype)
        self.kernel = backend.DeviceCache(k4)
        self.image_shape = image_shape
        self.boundary = boundary
        self.method = ("fft" if kh * kw > 25 else "direct") if method == "auto" else method
        self._spectra: dict[bool, backend.DeviceCache] = {}

    # ------------------------------------------------------------- plumbing
    def _as_4d(self, x: Array, shape: tuple[int, ...]) -> tuple[Array, tuple[int, ...]]:
        batch = batch_shape(x, shape)
        return x.reshape(-1, x.shape[-3] if len(shape) == 3 else 1, *self.image_shape), batch

    def _padded_shape(self) -> tuple[int, int]:
        (a, b), (c, d) = self.pads
        return self.image_shape[0] + a + b, self.image_shape[1] + c + d

    def _spectrum(self, like: Array, real: bool, dtype: Any) -> Array:
        """``K(-w)`` on the padded grid: the spectrum that turns correlation into a product."""
        cache = self._spectra.get(real)
        if cache is None:
            k = self.kernel.host
            s = self._padded_shape()
            if real:
                spectrum = np.conj(np.fft.rfft2(k, s=s))
            else:
                spectrum = np.conj(np.fft.fft2(np.conj(k), s=s))
            cache = self._spectra[real] = backend.DeviceCache(spectrum)
        return cache.like(like, dtype)

    # --------------------------------------------------------------- maths
    def _apply(self, x: Array) -> Array:
        xp = backend.namespace(x)
        dtype = backend.result_dtype(x.dtype, self.dtype)
        x4, batch = self._as_4d(x.astype(dtype, copy=False), self.shape_in)
        padded = xp.pad(x4, ((0, 0), (0, 0), *self.pads), mode=_PAD_MODE[self.boundary])
        h, w = self.image_shape
        if self.method == "direct":
            k = self.kernel.like(x, dtype)
            kh, kw = k.shape[-2:]
            out = None
            for u in range(kh):
                for v in range(kw):
                    term = self._mix(k[:, :, u, v], padded[:, :, u : u + h, v : v + w], adjoint=False)
                    out = term if out is None else out + term
        else:
            out = self._fft_filter(padded, conjugate=False)[..., :h, :w]
        return out.reshape(*batch, *self.shape_out)

    def _adjoint(self, y: Array) -> Array:
        xp = backend.namespace(y)
        dtype = backend.result_dtype(y.dtype, self.dtype)
        y4, batch = self._as_4d(y.astype(dtype, copy=False), self.shape_out)
        h, w = self.image_shape
        if self.method == "direct":
            k = xp.conj(self.kernel.like(y, dtype))
            kh, kw = k.shape[-2:]
            channels = self.shape_in[0] if len(self.shape_in) == 3 else 1
            z = xp.zeros((y4.shape[0], channels, h + kh - 1, w + kw - 1), dtype=dtype)
            for u in range(kh):
                for v in range(kw):
                    z[:, :, u : u + h, v : v + w] += self._mix(k[:, :, u, v], y4, adjoint=True)
        else:
            z = self._fft_filter(y4, conjugate=True)
        for axis, (before, after), n in zip((-2, -1), self.pads, self.image_shape):
            z = _unpad(z, axis, n, before, after, self.boundary)
        return z.reshape(*batch, *self.shape_in)

    def _fft_filter(self, a: Array, conjugate: bool) -> Array:
        """Circular correlation with the kernel (or its adjoint) on the padded grid."""
        xp = backend.namespace(a)
        s = self._padded_shape()
        real = a.dtype.kind == "f" and self.dtype.kind == "f"
        spectrum = self._spectrum(a, real, backend.result_dtype(a.dtype, np.complex128))
        if real:
            fa = xp.fft.rfftn(a, s=s, axes=(-2, -1))
            spectrum_of = lambda f: xp.fft.irfftn(f, s=s, axes=(-2, -1))  # noqa: E731
        else:
            fa = xp.fft.fftn(a, s=s, axes=(-2, -1))
            spectrum_of = lambda f: xp.fft.ifftn(f, s=s, axes=(-2, -1))  # noqa: E731
        return spectrum_of(self._mix(xp.conj(spectrum) if conjugate else spectrum, fa, adjoint=conjugate))

    def _mix(self, k: Array, a: Array, adjoint: bool) -> Array:
        """Channel mixing at one kernel tap or frequency: ``sum_c k[o, c] a[b, c]``, or ``sum_o k[o, c] a[b, o]``."""
        xp = backend.namespace(a)
        return xp.einsum("oc...,bo...->bc..." if adjoint else "oc...,bc...->bo...", k, a)

    def _exact_norm(self) -> float | None:
        if self.boundary != "periodic":
            return None
        # Periodic: a block-circulant matrix, diagonalised by the DFT on the H x W grid;
        # its norm is the largest singular value of the C_out x C_in symbol over frequencies.
        k = self.kernel.host
        h, w = self.image_shape
        folded = np.zeros(k.shape[:2] + (h, w), dtype=np.result_type(k.dtype, np.float64))
        kh, kw = k.shape[-2:]
        rows, cols = np.meshgrid(np.arange(kh) % h, np.arange(kw) % w, indexing="ij")
        for u in range(kh):
            np.add.at(folded, (slice(None), slice(None), rows[u], cols[u]), k[:, :, u, :])
        symbol = np.moveaxis(np.fft.fft2(folded), (0, 1), (-2, -1))
        return float(np.max(np.linalg.svd(symbol, compute_uv=False)))

    def __repr__(self) -> str:
        return f"Conv2d({self.shape_in} -> {self.shape_out}, boundary={self.boundary!r})"


class DepthwiseConv2d(Conv2d):
    r"""Each channel correlated with its own kernel: ``(C, H, W) -> (C, H, W)``.

    .. math:: (K x)_c[i, j] = \sum_{u, v} k[c, u, v] \, \tilde x_c[i + u - p_h, j + v - p_w]

    the conventions of :class:`Conv2d` (``groups=C`` in torch's ``conv2d``).

    Parameters
    ----------
    kernel
        ``(C, kh, kw)``, one filter per channel.
    image_shape
        ``(H, W)``.
    boundary, method
        As for :class:`Conv2d`.
    """

    def __init__(self, kernel: Array, image_shape: Any, *, boundary: Boundary = "zero",
                 method: Literal["auto", "direct", "fft"] = "auto"):
        if not backend.is_array(kernel):
            kernel = np.asarray(kernel)
        if kernel.ndim != 3:
            raise ValueError(f"DepthwiseConv2d: kernel must have shape (C, kh, kw), got {tuple(kernel.shape)}")
        super().__init__(kernel, image_shape, boundary=boundary, method=method)
        self.shape_in = self.shape_out  # (C, H, W) in and out

    def _mix(self, k: Array, a: Array, adjoint: bool) -> Array:
        # k: (C, 1) at a tap or (C, 1, I, J) over frequencies; one filter per channel of a: (batch, C, ...)
        per_channel = k[:, 0]
        return per_channel.reshape(per_channel.shape + (1,) * (a.ndim - 1 - per_channel.ndim)) * a

    def _exact_norm(self) -> float | None:
        if self.boundary != "periodic":
            return None
        return max(Conv2d(k, self.image_shape, boundary="periodic").norm() for k in self.kernel.host[:, 0])

    def __repr__(self) -> str:
        return f"DepthwiseConv2d({self.shape_in}, boundary={self.boundary!r})"


class Blur(Conv2d):
    r"""Convolution of an image with a point-spread function: ``x -> psf * x``.

    .. math:: (B x)[i, j] = \sum_{u, v} \mathrm{psf}[u, v] \, \tilde x[i - u + c_h, j - v + c_w]

    with the PSF's centre at ``(c_h, c_w) = (kh // 2, kw // 2)`` (the convention of
    ``scipy.ndimage.convolve``) and :math:`\tilde x` the image extended across its
    border as in :class:`Conv2d`.  The PSF is used as given (normalise it to sum 1
    for a blur that preserves the mean).

    Parameters
    ----------
    psf
        2D point-spread function, real or complex.
    image_shape
        ``(H, W)``.
    boundary
        ``"zero"``, ``"periodic"`` or ``"reflect"`` (see :class:`Conv2d`).
    """

    def __init__(self, psf: Array, image_shape: Any, *, boundary: Boundary = "zero"):
        if not backend.is_array(psf):
            psf = np.asarray(psf)
        if psf.ndim != 2:
            raise ValueError(f"Blur: psf must be a 2D array, got shape {tuple(psf.shape)}")
        super().__init__(backend.to_numpy(psf)[::-1, ::-1], image_shape, boundary=boundary)
        self.psf = backend.to_numpy(psf)

    def __repr__(self) -> str:
        return f"Blur(psf {self.psf.shape}, {self.shape_in}, boundary={self.boundary!r})"


def _unpad(z: Array, axis: int, n: int, before: int, after: int, boundary: Boundary) -> Array:
    """Adjoint of extending ``n`` samples by ``before``/``after`` along ``axis``.

    Every padded sample is a copy of one interior sample (or zero); the adjoint
    adds each border sample back onto the interior sample it copies.
    """
    def at(i: Any) -> tuple:
        return (Ellipsis, i) if axis == -1 else (Ellipsis, i, slice(None))

    inner = z[at(slice(before, before + n))]  # a view of z, which is ours to modify
    if boundary == "zero":
        return inner
    source = np.pad(np.arange(n), (before, after), mode=_PAD_MODE[boundary])
    for j in [*range(before), *range(before + n, before + n + after)]:
        inner[at(int(source[j]))] += z[at(j)]
    return inner
