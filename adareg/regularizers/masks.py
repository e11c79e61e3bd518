r"""The mask network of the ``sa-cnn`` model (paper eq. 6): ``Lambda(x, sigma)`` in [0, 1].

.. math::

    h_0 = [x, \sigma \mathbf{1}], \qquad
    h_l = a(K_l h_{l-1} + b_l), \; l < L, \qquad
    \Lambda(x, \sigma) = \mathrm{sigmoid}(K_L h_{L-1} + b_L)

with small multi-channel correlations :math:`K_l` (reflect boundary, "same" size),
biases :math:`b_l`, a pointwise nonlinearity ``a`` and one mask per filter channel.
The noise level enters as a constant second input channel; since a correlation of a
constant image with reflect boundary is that constant times the kernel's sum, this
channel is applied exactly as a bias :math:`\sigma \sum_{u,v} K_1[:, 1, u, v]`.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import numpy as np

from .. import backend
from ..backend import Array
from ..operators.conv import Conv2d

Activation = Literal["relu", "leaky_relu"]
#: Negative slope of the leaky ReLU.
LEAKY_SLOPE = 0.1


def sigmoid(z: Array) -> Array:
    r"""The logistic function as :math:`(1 + \tanh(z / 2)) / 2`: no overflow for large ``|z|``, and one
    vectorised transcendental pass (about ten times faster than the exponential form in NumPy float32)."""
    xp = backend.namespace(z)
    s = z * 0.5
    s = xp.tanh(s, out=s)
    s *= 0.5
    s += 0.5
    return s


class MaskCNN:
    """A small CNN from an image (and the noise level) to ``C`` masks in [0, 1].

    Parameters
    ----------
    kernels
        ``kernels[l]`` of shape ``(c_{l+1}, c_l, k, k)``, odd ``k``; ``c_0 = 2``
        (the image and the constant noise-level channel).
    biases
        ``biases[l]`` of shape ``(c_{l+1},)``.
    activation
        ``"leaky_relu"`` (slope :data:`LEAKY_SLOPE`) or ``"relu"`` between layers.
    """

    def __init__(self, kernels: Sequence[Any], biases: Sequence[Any], *, activation: Activation = "leaky_relu"):
        kernels = [np.asarray(backend.to_numpy(k), dtype=np.float64) for k in kernels]
        biases = [np.asarray(backend.to_numpy(b), dtype=np.float64) for b in biases]
        if not kernels or len(kernels) != len(biases):
            raise ValueError(f"MaskCNN: needs as many biases as kernels (at least one), got {len(kernels)} "
                             f"and {len(biases)}")
        channels = 2
        for l, (kernel, bias) in enumerate(zip(kernels, biases)):
            if kernel.ndim != 4 or kernel.shape[1] != channels or kernel.shape[2] != kernel.shape[3] \
                    or kernel.shape[2] % 2 == 0:
                raise ValueError(f"MaskCNN: kernel {l} must have shape (c_out, {channels}, k, k) with odd k, "
                                 f"got {kernel.shape}")
            if bias.shape != (kernel.shape[0],):
                raise ValueError(f"MaskCNN: bias {l} must have shape ({kernel.shape[0]},), got {bias.shape}")
            if not (np.all(np.isfinite(kernel)) and np.all(np.isfinite(bias))):
                raise ValueError(f"MaskCNN: layer {l} contains NaN or Inf")
            channels = kernel.shape[0]
        if activation not in ("relu", "leaky_relu"):
            raise ValueError(f"MaskCNN: activation must be 'relu' or 'leaky_relu', got {activation!r}")
        self.kernels, self.biases = kernels, biases
        self.channels = channels
        self.activation = activation
        # the noise-level channel as a bias per unit of sigma
        self._sigma_bias = kernels[0][:, 1].sum(axis=(-2, -1))
        self._bias = [backend.DeviceCache(b[:, None, None]) for b in biases]
        self._sigma = backend.DeviceCache(self._sigma_bias[:, None, None])
        self._layers: dict[tuple[int, int], list[Conv2d]] = {}

    def _convolutions(self, image_shape: tuple[int, int]) -> list[Conv2d]:
        if image_shape not in self._layers:
            first = Conv2d(self.kernels[0][:, 0], image_shape, boundary="reflect")
            self._layers[image_shape] = [first] + [Conv2d(k, image_shape, boundary="reflect")
                                                   for k in self.kernels[1:]]
        return self._layers[image_shape]

    def __call__(self, x: Array, sigma: float) -> Array:
        r"""The masks :math:`\Lambda(x, \sigma)`: shape ``(..., C, H, W)`` for ``x`` of shape ``(..., H, W)``."""
        if not backend.is_array(x) or x.ndim < 2:
            raise TypeError(f"MaskCNN: x must be an image array of shape (..., H, W), got {type(x).__name__}")
        backend.check_dtype(x, "MaskCNN: x")
        if x.dtype.kind == "c":
            raise TypeError("MaskCNN: x must be real")
        xp = backend.namespace(x)
        dtype = x.dtype
        h = x
        layers = self._convolutions(tuple(x.shape[-2:]))
        for l, conv in enumerate(layers):
            h = conv(h)  # a new array, updated in place below
            h += self._bias[l].like(x, dtype)
            if l == 0:
                h += float(sigma) * self._sigma.like(x, dtype)
            if l < len(layers) - 1:
                # leaky ReLU as max(h, slope h): two passes, no mask array (0 < slope < 1)
                h = xp.maximum(h, 0, out=h) if self.activation == "relu" else xp.maximum(h, LEAKY_SLOPE * h, out=h)
        return sigmoid(h)

    def __repr__(self) -> str:
        sizes = " -> ".join(str(k.shape[1]) for k in self.kernels) + f" -> {self.channels}"
        return f"MaskCNN({sizes} channels, {self.activation})"
