r"""The learned filter bank ``W``: a normalised composition of small bias-free convolutions.

.. math::

    W = \frac{1}{\nu} \, K_L \circ \dots \circ K_2 \circ K_1, \qquad
    K_1 \text{ zero-mean}, \qquad \nu = \|K_L \circ \dots \circ K_1\|

Each :math:`K_l` is a multi-channel cross-correlation (``c_{l-1} -> c_l`` channels,
odd square kernels, e.g. ``1 -> 4 -> 8 -> C`` with 5x5 kernels).  Subtracting the
mean of every first-layer kernel makes every filter annihilate constant images.
On the plane the composition is one correlation whose kernel is the *full
convolution* of the layer kernels (``(a \star b)[p] = \sum_j b[j] a[p - j]``), so
``W`` is applied as a single ``Conv2d`` with a ``(C, 1, K, K)`` kernel,
``K = 1 + \sum_l (k_l - 1)``, through FFTs, and its adjoint is exact.  The
normalisation :math:`\nu` is the largest singular value of the filter bank's
symbol on a 256 x 256 frequency grid (the norm of ``W`` on 256 x 256 periodic
images; on the plane it is at most 0.3% larger for 13 x 13 kernels).

The training code (``adareg_train``) computes the same kernel and the same
normalisation from the same layer parameters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Sequence, get_args

import numpy as np

from .. import backend, caches
from ..operators.base import as_shape
from ..operators.conv import Boundary, Conv2d

#: Size of the frequency grid on which the normalisation is computed.
NORM_GRID = 256
#: Filters whose symbols on that grid are held at once (1 MiB each).
NORM_CHANNELS = 16


def check_layer_shape(kernel: np.ndarray, channels: int, what: str) -> None:
    """Raise a ``ValueError`` naming ``what`` (e.g. ``"FilterBank: layer 2"``) unless ``kernel`` is one layer of a
    composition of correlations on ``channels`` input channels: shape ``(c_out, channels, k, k)`` with odd ``k``."""
    if kernel.ndim != 4 or kernel.shape[1] != channels or kernel.shape[2] != kernel.shape[3] \
            or kernel.shape[2] % 2 == 0:
        raise ValueError(f"{what} must have shape (c_out, {channels}, k, k) with odd k, got {kernel.shape}")


def compose_kernels(layers: Sequence[np.ndarray]) -> np.ndarray:
    r"""The kernel of the composed correlations ``K_L o ... o K_1`` on the plane.

    ``layers[l]`` has shape ``(c_{l+1}, c_l, k, k)``; the result has shape
    ``(c_L, c_0, K, K)`` with ``K = 1 + sum (k_l - 1)``:
    :math:`e^{(l)}[o, i] = \sum_h b[o, h] * e^{(l-1)}[h, i]` (full 2D convolution).
    """
    effective = np.asarray(layers[0], dtype=np.float64)
    for kernel in layers[1:]:
        kernel = np.asarray(kernel, dtype=np.float64)
        size = effective.shape[-1]
        composed = np.zeros((kernel.shape[0], effective.shape[1], size + kernel.shape[2] - 1,
                             size + kernel.shape[3] - 1))
        for u in range(kernel.shape[2]):  # full convolution: each tap of b shifts a copy of e
            for v in range(kernel.shape[3]):
                composed[:, :, u : u + size, v : v + size] += np.einsum("oh,hi...->oi...", kernel[:, :, u, v],
                                                                         effective)
        effective = composed
    return effective


def spectral_norm(kernel: np.ndarray, grid: int = NORM_GRID) -> float:
    """Largest singular value over frequencies of a ``(C_out, C_in, K, K)`` kernel's symbol on a ``grid``^2 DFT.

    For one input channel (a filter bank) the symbols' squared magnitudes are summed
    :data:`NORM_CHANNELS` filters at a time, so that memory does not grow with the
    number of filters (a file's channel count is not bounded).
    """
    if kernel.shape[1] == 1:
        power = np.zeros((grid, grid))
        for first in range(0, kernel.shape[0], NORM_CHANNELS):
            symbol = np.fft.fft2(kernel[first:first + NORM_CHANNELS, 0], s=(grid, grid))
            power += np.sum(symbol.real**2 + symbol.imag**2, axis=0)
        return float(np.sqrt(np.max(power)))
    symbol = np.fft.fft2(kernel, s=(grid, grid))  # (C_out, C_in, grid, grid)
    return float(np.max(np.linalg.svd(np.moveaxis(symbol, (0, 1), (-2, -1)), compute_uv=False)))


class FilterBank(backend.KeepsReadOnly):
    """The normalised multi-convolution filter bank; ``bank.operator(shape)`` is ``W`` on images of that shape.

    Parameters
    ----------
    layers
        Layer kernels, ``layers[l]`` of shape ``(c_{l+1}, c_l, k_l, k_l)`` with
        ``c_0 = 1`` and odd ``k_l``, real (integer taps are taken as float64); the
        first layer is made zero-mean here.
    boundary
        Image extension of the composed correlation: ``"reflect"`` (default; no
        edge is invented at the image border), ``"zero"`` or ``"periodic"``.
    """

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("layers", "kernel", "channels", "boundary")

    def __init__(self, layers: Sequence[Any], *, boundary: Boundary = "reflect"):
        if boundary not in get_args(Boundary):  # else refused only when an operator is first made
            raise ValueError(f"FilterBank: boundary must be one of {', '.join(get_args(Boundary))}, got {boundary!r}")
        if isinstance(layers, (str, bytes)) or not isinstance(layers, Iterable):
            raise TypeError(f"FilterBank: layers must be a sequence of kernels (c_out, c_in, k, k), got "
                            f"{type(layers).__name__}")
        # copies: a caller who edits an array after construction changes neither .layers nor .kernel
        layers = [np.array(backend.to_numpy(k)) for k in layers]
        if not layers:
            raise ValueError("FilterBank: needs at least one layer")
        channels = 1
        for l, kernel in enumerate(layers):
            check_layer_shape(kernel, channels, f"FilterBank: layer {l}")
            if kernel.dtype.kind in "iu":  # hand-written integer taps, e.g. finite differences
                layers[l] = kernel = kernel.astype(np.float64)
            if kernel.dtype.kind != "f":
                raise TypeError(f"FilterBank: layer {l} has dtype {kernel.dtype}; expected real numbers (floats or "
                                f"ints)")
            if not np.all(np.isfinite(kernel)):
                raise ValueError(f"FilterBank: layer {l} must hold finite values")
            channels = kernel.shape[0]
        first = layers[0] - layers[0].mean(axis=(-2, -1), keepdims=True)
        kernel = compose_kernels([first, *layers[1:]])
        # finite layers whose products overflow: in the composed kernel, or in its symbol
        norm = spectral_norm(kernel) if np.all(np.isfinite(kernel)) else math.inf
        if not math.isfinite(norm):
            raise ValueError("FilterBank: the composed filters overflow float64 (their norm is not finite); "
                             "scale the layers down")
        if norm == 0:
            raise ValueError("FilterBank: the composed filters are all zero (or underflow float64)")
        self.layers = tuple(backend.read_only(k) for k in layers)  # read-only: the operators per shape copy them
        self.kernel = backend.read_only(kernel / norm)  # (C, 1, K, K)
        self.channels = channels
        self.boundary = boundary
        self._operators = caches.PerShape()

    def check_shape(self, image_shape: tuple[int, int], caller: str = "FilterBank") -> tuple[int, int]:
        """``image_shape`` as a tuple, or an error naming ``caller`` (a ``ValueError`` where the bank does not fit)."""
        image_shape = as_shape(image_shape, f"{caller}: image_shape")
        size = self.kernel.shape[-1]
        if self.boundary == "reflect" and min(image_shape) <= size // 2:
            raise ValueError(f"the learned filter bank ({size}x{size} kernel, reflect boundary) needs images of at "
                             f"least {size // 2 + 1}x{size // 2 + 1} pixels, got {image_shape}")
        return image_shape

    def operator(self, image_shape: tuple[int, int]) -> Conv2d:
        """``W`` on images of shape ``(H, W)``: ``(H, W) -> (C, H, W)`` (cached for the latest shapes:
        :class:`~adareg.caches.PerShape`)."""
        image_shape = self.check_shape(image_shape)
        return self._operators.get(image_shape, lambda: Conv2d(self.kernel[:, 0], image_shape,
                                                               boundary=self.boundary, method="fft"))

    def __repr__(self) -> str:
        sizes = " -> ".join(str(k.shape[1]) for k in self.layers) + f" -> {self.channels}"
        return (f"FilterBank({sizes} channels, {self.kernel.shape[-1]}x{self.kernel.shape[-1]} composed kernel, "
                f"boundary={self.boundary!r})")
