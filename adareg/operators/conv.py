"""Two-dimensional convolutions: multi-channel filter banks and blurs."""

from __future__ import annotations

import functools
from typing import Any, Literal

import numpy as np

from .. import backend, caches, threads
from ..backend import Array
from .base import STEP_NORM_TOL, LinearOperator, as_shape, batch_shape

Boundary = Literal["zero", "periodic", "reflect"]
_PAD_MODE = {"zero": "constant", "periodic": "wrap", "reflect": "reflect"}
#: Bytes of stacked kernel-tap runs per matrix product in the direct method: cache-sized
#: chunks on the CPU (measured fastest), large ones on a GPU (fewer kernel launches).
_CHUNK_BYTES = {"cpu": 1 << 22, "gpu": 1 << 28}
#: Bytes of channels summed at a time by the depthwise direct method: one channel of a large
#: image at a time on the CPU (its running sum and product held in cache), all on a GPU.
_DEPTHWISE_GROUP_BYTES = {"cpu": 1 << 20, "gpu": 1 << 30}
#: Side of the small image on which a reflect-boundary norm estimate finds its start vector
#: (at least four kernel widths): it holds the image's four corners and parts of its edges.
_NORM_PROXY = 64


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

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("kernel", "pads", "image_shape", "boundary", "method")

    #: One filter per channel of a ``(C, H, W)`` input (:class:`DepthwiseConv2d`), rather than filters of an image.
    depthwise = False

    def __init__(self, kernel: Array, image_shape: Any, *, boundary: Boundary = "zero",
                 method: Literal["auto", "direct", "fft"] = "auto"):
        who = type(self).__name__  # a subclass's errors name it (Blur, DepthwiseConv2d)
        kernel = backend.as_array(kernel, f"{who}: kernel")
        backend.check_dtype(kernel, f"{who}: kernel")
        kernel = backend.to_numpy(kernel)
        image_shape = as_shape(image_shape, "image_shape")
        if len(image_shape) != 2:
            raise ValueError(f"{who}: image_shape must be (H, W), got {image_shape}")
        if kernel.ndim not in (2, 3, 4):
            raise ValueError(
                f"{who}: kernel must have shape (kh, kw), (C_out, kh, kw) or (C_out, C_in, kh, kw), "
                f"got {kernel.shape}"
            )
        if kernel.size == 0:
            raise ValueError(f"{who}: kernel must have at least one tap and one channel, got shape {kernel.shape}")
        if not np.all(np.isfinite(kernel)):
            raise ValueError(f"{who}: kernel contains NaN or Inf")
        if boundary not in _PAD_MODE:
            raise ValueError(f"{who}: boundary must be one of {sorted(_PAD_MODE)}, got {boundary!r}")
        if method not in ("auto", "direct", "fft"):
            raise ValueError(f"{who}: method must be 'auto', 'direct' or 'fft', got {method!r}")
        k4 = {2: kernel[None, None], 3: kernel[:, None], 4: kernel}[kernel.ndim]
        c_out, c_in, kh, kw = k4.shape
        h, w = image_shape
        self.pads = (((kh - 1) // 2, kh - 1 - (kh - 1) // 2), ((kw - 1) // 2, kw - 1 - (kw - 1) // 2))
        if boundary == "reflect" and any(max(pad) > n - 1 for pad, n in zip(self.pads, image_shape)):
            raise ValueError(
                f"{who}: a {kh}x{kw} kernel needs more than the image {image_shape} "
                "for boundary='reflect'; use 'zero' or 'periodic'"
            )
        shape_out = (h, w) if kernel.ndim == 2 else (c_out, h, w)
        shape_in = (c_in, h, w) if kernel.ndim == 4 else shape_out if self.depthwise else (h, w)
        super().__init__(shape_in, shape_out, kernel.dtype)
        self.kernel = caches.DeviceCache(k4)
        self._kernel_ndim = kernel.ndim
        self.image_shape = image_shape
        self.boundary = boundary
        self.method = ("fft" if kh * kw > 25 else "direct") if method == "auto" else method
        self._spectra: dict[tuple, Array] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Without the cached spectra: remade where the operator lands, on its devices (a copy after a GPU
        solve would carry CuPy arrays to processes that may have no GPU, and megabytes of them)."""
        state = super().__getstate__()
        state["_spectra"] = {}
        return state

    # ------------------------------------------------------------- plumbing
    def _as_4d(self, x: Array, shape: tuple[int, ...]) -> tuple[Array, tuple[int, ...]]:
        batch = batch_shape(x, shape)
        return x.reshape(-1, x.shape[-3] if len(shape) == 3 else 1, *self.image_shape), batch

    def _padded_shape(self) -> tuple[int, int]:
        (a, b), (c, d) = self.pads
        return self.image_shape[0] + a + b, self.image_shape[1] + c + d

    def _fft_grid(self, fft: Any) -> tuple[int, int]:
        """The FFT grid: the padded size rounded up to lengths the FFT is fast for (no wrap-around)."""
        return tuple(int(fft.next_fast_len(n)) for n in self._padded_shape())

    def _spectrum(self, like: Array, real: bool, conjugate: bool, grid: tuple[int, int]) -> Array:
        """The spectrum that turns correlation (``conjugate``: its adjoint) into a product on ``grid``.

        Correlation with ``k`` is a product with ``conj(K)``, its adjoint a product with ``K``;
        both are cached (a conjugate per call would cost a pass over all channels).
        Computed in float64 on the host, kept in ``like``'s precision on its device only.
        """
        dtype = backend.result_dtype(like.dtype, np.complex128)
        key = (type(like).__module__, str(getattr(like, "device", "cpu")), dtype.str, real, conjugate, grid)
        spectrum = self._spectra.get(key)
        if spectrum is None:
            k = self.kernel.host
            host = np.conj(np.fft.rfft2(k, s=grid) if real else np.fft.fft2(np.conj(k), s=grid))
            spectrum = caches.DeviceCache(np.conj(host) if conjugate else host).like(like, dtype)
            self._spectra[key] = spectrum
        return spectrum

    # --------------------------------------------------------------- maths
    def _apply(self, x: Array) -> Array:
        xp = backend.namespace(x)
        dtype = backend.result_dtype(x.dtype, self.dtype)
        x4, batch = self._as_4d(x.astype(dtype, copy=False), self.shape_in)
        h, w = self.image_shape
        padded = xp.pad(x4, ((0, 0), (0, 0), *self.pads), mode=_PAD_MODE[self.boundary])
        if self.method == "fft":
            out = self._fft_filter(padded, conjugate=False, rows=h)[..., :w]
            return out.reshape(*batch, *self.shape_out)
        # Direct: on the padded image flattened row by row, output (i, j) sits at i * wp + j
        # and the tap (u, v) reads it from (i * wp + j) + (u * wp + v); the columns j >= w
        # of each output row wrap into the next row and are discarded.
        hp, wp = padded.shape[-2:]
        kh, kw = self.kernel.host.shape[-2:]
        out = xp.empty((x4.shape[0], self.kernel.host.shape[0], h * wp), dtype=dtype)
        offsets = [u * wp + v for u in range(kh) for v in range(kw)]
        self._taps(xp.reshape(padded, (*padded.shape[:2], hp * wp)), out[..., : (h - 1) * wp + w], offsets,
                   adjoint=False)
        out = xp.reshape(out, (*out.shape[:2], h, wp))[..., :w]
        return out.reshape(*batch, *self.shape_out)

    def _adjoint(self, y: Array) -> Array:
        xp = backend.namespace(y)
        dtype = backend.result_dtype(y.dtype, self.dtype)
        y4, batch = self._as_4d(y.astype(dtype, copy=False), self.shape_out)
        h, w = self.image_shape
        hp, wp = self._padded_shape()
        if self.method == "fft":
            z = self._fft_filter(y4, conjugate=True, rows=hp)[..., :wp]
        else:
            # The transpose of the direct sum: the padded-grid sample m receives the output
            # samples m - (u * wp + v).  y is laid out on rows of width wp (zero columns j >= w)
            # after a zero lead of reach = max(u * wp + v), so tap (u, v) reads from reach - (u * wp + v).
            kh, kw = self.kernel.host.shape[-2:]
            reach = (kh - 1) * wp + kw - 1
            lead = xp.zeros((*y4.shape[:2], reach + hp * wp), dtype=dtype)
            rows = xp.reshape(lead[..., reach : reach + h * wp], (*y4.shape[:2], h, wp))
            rows[..., :w] = y4
            channels = self.shape_in[0] if len(self.shape_in) == 3 else 1
            z = xp.empty((y4.shape[0], channels, hp * wp), dtype=dtype)
            self._taps(lead, z, [reach - u * wp - v for u in range(kh) for v in range(kw)], adjoint=True)
            z = xp.reshape(z, (*z.shape[:2], hp, wp))
        for axis, (before, after), n in zip((-2, -1), self.pads, self.image_shape):
            z = _unpad(z, axis, n, before, after, self.boundary)
        return z.reshape(*batch, *self.shape_in)

    def _taps(self, grid: Array, out: Array, offsets: list[int], adjoint: bool) -> None:
        r"""The direct sum over kernel taps on flattened grids, written into ``out``.

        .. math::

            \mathrm{out}[b, :, n] = \sum_t K_t \, \mathrm{grid}[b, :, n + \mathrm{offsets}[t]]

        with :math:`K_t = k[:, :, u, v]` (adjoint: :math:`K_t^H`) for the tap
        :math:`t = u k_w + v`.  Done as im2col: the taps' runs are stacked a chunk of
        pixels at a time and mixed by one matrix product per chunk.
        """
        xp = backend.namespace(out)
        k = self.kernel.like(out, out.dtype)
        if adjoint:  # (C_in, taps * C_out)
            k = xp.conj(xp.permute_dims(k, (1, 0, 2, 3)))
        rows, cols, kh, kw = k.shape
        matrix = xp.reshape(xp.permute_dims(k, (0, 2, 3, 1)), (rows, kh * kw * cols))  # tap-major columns
        length = out.shape[-1]
        chunk = max(1, min(length, _CHUNK_BYTES[backend.device_of(out)] // (kh * kw * cols * out.itemsize)))
        stacked = xp.empty((out.shape[0], kh * kw * cols, chunk), dtype=out.dtype)
        for first in range(0, length, chunk):
            last = min(first + chunk, length)
            runs = stacked[..., : last - first]
            for t, offset in enumerate(offsets):
                runs[:, t * cols : (t + 1) * cols] = grid[..., offset + first : offset + last]
            xp.matmul(matrix, runs, out=out[..., first:last])

    def _fft_filter(self, a: Array, conjugate: bool, rows: int) -> Array:
        """Circular correlation with the kernel (or its adjoint) on the FFT grid, ``a`` zero-extended to it.

        Returns the first ``rows`` rows: the real inverse runs along the columns first and
        then only over the rows that are kept.
        """
        fft = backend.fft(a)
        grid = self._fft_grid(fft)
        real = a.dtype.kind == "f" and self.dtype.kind == "f"
        spectrum = self._spectrum(a, real, conjugate, grid)
        # zero-extended into an array of the grid's size reused between calls (caches.scratch; the
        # role names the region written, so the margin stays zero); faster than the FFT's own padding
        extended = caches.scratch(("zero-extended", a.shape[-2:]), a.shape[:-2] + grid, a.dtype, like=a)
        extended[..., : a.shape[-2], : a.shape[-1]] = a
        if real:
            mixed = self._mix(spectrum, fft.rfftn(extended, axes=(-2, -1)), adjoint=conjugate)
            columns = fft.ifft(mixed, axis=-2, overwrite_x=True)[..., :rows, :]
            return fft.irfft(columns, n=grid[1], axis=-1)
        mixed = self._mix(spectrum, fft.fftn(extended, axes=(-2, -1)), adjoint=conjugate)
        return fft.ifftn(mixed, axes=(-2, -1))[..., :rows, :]

    def _mix(self, k: Array, a: Array, adjoint: bool) -> Array:
        """Channel mixing at each frequency: ``sum_c k[o, c] a[b, c]``, or ``sum_o k[o, c] a[b, o]``."""
        xp = backend.namespace(a)
        if k.shape[1] != 1:
            return xp.einsum("oc...,bo...->bc..." if adjoint else "oc...,bc...->bo...", k, a)
        # one input channel (a filter bank): elementwise, on blocks of frequency rows (threads.blockwise)
        if not adjoint:  # a broadcast product
            out = xp.empty((a.shape[0],) + k.shape[:1] + a.shape[2:], dtype=a.dtype)

            def product(block: slice) -> None:
                rows = (..., block, slice(None))
                xp.multiply(k[None, :, 0][rows], a[rows], out=out[rows])
        elif backend.is_cupy(a) and k.dtype == a.dtype:  # one fused kernel where the loop below launches 2 C
            return _cupy_channel_sum()(k[None, :, 0], a, axis=1, keepdims=True)
        else:  # a sum of products, accumulated channel by channel: about twice as fast as einsum on the host
            out = xp.empty(a.shape[:1] + (1,) + a.shape[2:], dtype=a.dtype)

            def product(block: slice) -> None:
                rows = (..., block, slice(None))
                total = out[rows]
                xp.multiply(k[0][rows], a[:, :1][rows], out=total)
                term = xp.empty_like(total)
                for o in range(1, k.shape[0]):
                    total += xp.multiply(k[o][rows], a[:, o : o + 1][rows], out=term)
        threads.blockwise(product, a.shape[-2], max(a.nbytes, out.nbytes), like=a)
        return out

    def _exact_norm(self) -> float | None:
        return self._symbol_norm(self.image_shape) if self.boundary == "periodic" else None

    def _upper_bound(self, like: Array | None) -> float:
        if self.boundary == "periodic":
            return self._symbol_norm(self.image_shape)
        if self.boundary == "zero":
            # A block of the periodic correlation on n + max(pads) samples per axis: the taps
            # reach n - 1 + pads[1] at most, and those wrapped from -pads[0] land at n or after.
            return self._symbol_norm(tuple(n + max(pad) for n, pad in zip(self.image_shape, self.pads)))
        if self.kernel.host.dtype.kind == "f" and np.all(self.kernel.host >= 0):
            # the Rayleigh quotient of the power iteration, dominated by the image's interior,
            # approaches a corner mode slowly: the Lanczos estimate stops it sooner
            return self._nonnegative_bound(like, lower=self.norm(tol=STEP_NORM_TOL, like=like))
        return super()._upper_bound(like)

    def _symbol_norm(self, grid: tuple[int, ...]) -> float:
        """The norm of this correlation made periodic on ``grid``: its symbol's largest gain over the DFT frequencies.

        The periodic operator is block-circulant, diagonalised by the DFT on ``grid``: a
        ``C_out x C_in`` matrix at each frequency, from the kernel folded onto ``grid``.
        """
        k = self.kernel.host
        folded = np.zeros(k.shape[:2] + tuple(grid), dtype=np.result_type(k.dtype, np.float64))
        rows, cols = np.meshgrid(np.arange(k.shape[2]) % grid[0], np.arange(k.shape[3]) % grid[1], indexing="ij")
        np.add.at(folded, (slice(None), slice(None), rows, cols), k)
        return self._symbol_gain(np.fft.fft2(folded))

    def _symbol_gain(self, symbol: np.ndarray) -> float:
        """Largest singular value of the ``(C_out, C_in)`` matrices of ``symbol`` (shape ``(C_out, C_in, I, J)``)."""
        if 1 in symbol.shape[:2]:  # a column or a row at each frequency: its Euclidean norm
            return float(np.sqrt(np.max(np.sum(np.abs(symbol) ** 2, axis=(0, 1)))))
        return float(np.max(np.linalg.svd(np.moveaxis(symbol, (0, 1), (-2, -1)), compute_uv=False)))

    def _norm_start(self, tol: float) -> tuple[np.ndarray, float] | None:
        """For the reflect boundary: the top singular vector of this operator on a small image.

        Extending the image by reflection makes pixels near the border count twice, so
        the largest singular values of a reflect-boundary filter bank often exceed the
        sup of its symbol and belong to vectors that live within a few kernel widths of
        a corner, whatever the image size (docs/design.md, "Norms").  The same operator
        on a ``_NORM_PROXY`` square (or the image, where smaller) has the same corners;
        its top eigenvector, cut in quadrants that go to the four corners of the image, is
        then an eigenvector here too, and one Lanczos step certifies its value.  Where the
        top vector lives elsewhere (an interior or edge wave) the start still holds it
        roughly and the iteration goes on.
        """
        if self.boundary != "reflect" or np.iscomplexobj(self.kernel.host):
            return None  # (complex kernels: the random real start of other operators)
        side = max(_NORM_PROXY, 4 * max(self.kernel.host.shape[-2:]))
        small = tuple(min(n, side) for n in self.image_shape)
        if small == self.image_shape:
            return None
        proxy = self._on_image(small)
        # in float32, at half float64's cost: a start and a floor to 1e-3 need no more, and the run on the image
        # certifies the value in its own precision
        x = np.random.default_rng(0).standard_normal(proxy.shape_in).astype(np.float32)
        value, vector, _ = proxy._top_eigenpair(x, min(tol, 1e-3), 500)
        rows, cols = (np.concatenate([np.arange((m + 1) // 2), np.arange(n - m // 2, n)])
                      for m, n in zip(small, self.image_shape))
        start = np.zeros(self.shape_in)  # a float64 start: like, not the proxy, sets the precision of the run
        start[..., rows[:, None], cols[None, :]] = vector
        return start, value

    def _on_image(self, image_shape: tuple[int, int]) -> Conv2d:
        """The same correlation on images of another shape."""
        k = self.kernel.host
        return Conv2d({2: k[0, 0], 3: k[:, 0], 4: k}[self._kernel_ndim], image_shape, boundary=self.boundary,
                      method=self.method)

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

    depthwise = True

    def __init__(self, kernel: Array, image_shape: Any, *, boundary: Boundary = "zero",
                 method: Literal["auto", "direct", "fft"] = "auto"):
        kernel = backend.as_array(kernel, "DepthwiseConv2d: kernel")
        if kernel.ndim != 3:
            raise ValueError(f"DepthwiseConv2d: kernel must have shape (C, kh, kw), got {tuple(kernel.shape)}")
        super().__init__(kernel, image_shape, boundary=boundary, method=method)

    def _on_image(self, image_shape: tuple[int, int]) -> DepthwiseConv2d:
        return DepthwiseConv2d(self.kernel.host[:, 0], image_shape, boundary=self.boundary, method=self.method)

    def _mix(self, k: Array, a: Array, adjoint: bool) -> Array:
        # k: (C, 1, I, J) over frequencies; one filter per channel of a: (batch, C, I, J)
        return k[:, 0] * a

    def _taps(self, grid: Array, out: Array, offsets: list[int], adjoint: bool) -> None:
        # one filter per channel: a broadcast product per tap, no channel mixing, for a group of
        # channels at a time so that the running sum and the product stay in cache
        xp = backend.namespace(out)
        k = self.kernel.like(out, out.dtype)[:, 0]
        if adjoint:
            k = xp.conj(k)
        channels, length = out.shape[1:]
        k = xp.reshape(k, (channels, -1, 1))  # (C, taps, 1)
        group = max(1, min(channels, _DEPTHWISE_GROUP_BYTES[backend.device_of(out)] // (length * out.itemsize)))

        def run(block: slice) -> None:  # the channels of one block of threads.blockwise
            product = xp.empty((min(group, block.stop - block.start), length), dtype=out.dtype)
            for b in range(out.shape[0]):
                for first in range(block.start, block.stop, group):
                    last = min(first + group, block.stop)
                    total, term = out[b, first:last], product[: last - first]
                    for t, offset in enumerate(offsets):
                        xp.multiply(k[first:last, t], grid[b, first:last, offset : offset + length],
                                    out=term if t else total)
                        if t:
                            total += term

        threads.blockwise(run, channels, out.nbytes, like=out)

    def _symbol_gain(self, symbol: np.ndarray) -> float:
        # one filter per channel: a diagonal matrix at each frequency
        return float(np.max(np.abs(symbol)))

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

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("psf",)

    def __init__(self, psf: Array, image_shape: Any, *, boundary: Boundary = "zero"):
        psf = backend.as_array(psf, "Blur: psf")
        backend.check_dtype(psf, "Blur: psf")  # before the conversion, which would drop a mask unseen
        psf = backend.to_numpy(psf)
        backend.check_finite(psf, "Blur: psf")
        if psf.ndim != 2 or psf.size == 0:
            raise ValueError(f"Blur: psf must be a 2D array of at least one tap, got shape {tuple(psf.shape)}")
        super().__init__(psf[::-1, ::-1], image_shape, boundary=boundary)
        self.psf = backend.read_only(psf)

    def __repr__(self) -> str:
        return f"Blur(psf {self.psf.shape}, {self.shape_in}, boundary={self.boundary!r})"


def _unpad(z: Array, axis: int, n: int, before: int, after: int, boundary: Boundary) -> Array:
    """Adjoint of extending ``n`` samples by ``before``/``after`` along ``axis``.

    Every padded sample is a copy of one interior sample (or zero); the adjoint
    adds each border sample back onto the interior sample it copies.  A border whose
    sources are consecutive samples (every reflect border, periodic ones up to ``n``)
    is added as one strided slice: one operation, not one per row (a kernel launch
    each on a GPU).
    """
    def at(i: Any) -> tuple:
        return (Ellipsis, i) if axis == -1 else (Ellipsis, i, slice(None))

    inner = z[at(slice(before, before + n))]  # a view of z, which is ours to modify
    if boundary == "zero":
        return inner
    source = np.pad(np.arange(n), (before, after), mode=_PAD_MODE[boundary])
    for first, last in ((0, before), (before + n, before + n + after)):
        sources = source[first:last]
        if sources.size == 0:
            continue
        step = 1 if sources.size == 1 else int(sources[1] - sources[0])
        if abs(step) == 1 and np.array_equal(sources, sources[0] + step * np.arange(sources.size)):
            stop = int(sources[-1]) + step
            inner[at(slice(int(sources[0]), None if stop < 0 else stop, step))] += z[at(slice(first, last))]
        else:  # periodic borders longer than the image wrap onto it more than once
            for j, i in zip(range(first, last), sources):
                inner[at(int(i))] += z[at(j)]
    return inner


@functools.cache
def _cupy_channel_sum() -> Any:
    """CuPy's fused ``sum_o k[o] a[b, o]`` over axis 1 of broadcast ``k`` and ``a``: one kernel, no temporary."""
    import cupy

    return cupy.ReductionKernel("T k, T a", "T out", "k * a", "a + b", "out = a", "0", "adareg_channel_sum")
