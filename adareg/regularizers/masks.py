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

from typing import Any, Literal, Sequence, get_args

import numpy as np

from .. import backend, caches, checks
from ..backend import Array
from ..operators.conv import Conv2d
from .filterbank import check_layer_shape

Activation = Literal["leaky_relu", "relu"]
#: Negative slope of the leaky ReLU.
LEAKY_SLOPE = 0.1


class MaskCNN(backend.KeepsReadOnly):
    """A small CNN from an image (and the noise level) to ``C`` masks in [0, 1].

    Parameters
    ----------
    kernels
        ``kernels[l]`` of shape ``(c_{l+1}, c_l, k, k)``, odd ``k``; ``c_0 = 2``
        (the image and the constant noise-level channel).
    biases
        ``biases[l]`` of shape ``(c_{l+1},)``.
    activation
        ``"leaky_relu"`` (slope :data:`~adareg.regularizers.masks.LEAKY_SLOPE`) or ``"relu"`` between layers.
    """

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("kernels", "biases", "channels", "activation")

    def __init__(self, kernels: Sequence[Any], biases: Sequence[Any], *, activation: Activation = "leaky_relu"):
        kernels = [np.asarray(backend.to_numpy(k)) for k in kernels]
        biases = [np.asarray(backend.to_numpy(b)) for b in biases]
        for what, arrays in (("kernel", kernels), ("bias", biases)):
            for l, a in enumerate(arrays):
                if a.dtype.kind not in "biuf":  # a cast would drop an imaginary part with a ComplexWarning at most
                    raise TypeError(f"MaskCNN: {what} {l} must be real numbers, got dtype {a.dtype}")
        kernels = [k.astype(np.float64) for k in kernels]
        biases = [b.astype(np.float64) for b in biases]
        if not kernels or len(kernels) != len(biases):
            raise ValueError(f"MaskCNN: needs as many biases as kernels (at least one), got {len(kernels)} "
                             f"and {len(biases)}")
        channels = 2
        for l, (kernel, bias) in enumerate(zip(kernels, biases)):
            check_layer_shape(kernel, channels, f"MaskCNN: kernel {l}")
            if bias.shape != (kernel.shape[0],):
                raise ValueError(f"MaskCNN: bias {l} must have shape ({kernel.shape[0]},), got {bias.shape}")
            if not (np.all(np.isfinite(kernel)) and np.all(np.isfinite(bias))):
                raise ValueError(f"MaskCNN: layer {l} contains NaN or Inf")
            channels = kernel.shape[0]
        if activation not in get_args(Activation):
            raise ValueError(f"MaskCNN: activation must be one of {', '.join(map(repr, get_args(Activation)))}, "
                             f"got {activation!r}")
        # read-only tuples: the convolutions cached per image shape and the bias caches copy them
        self.kernels = tuple(backend.read_only(k) for k in kernels)
        self.biases = tuple(backend.read_only(b) for b in biases)
        self.channels = channels
        self.activation = activation
        # The last layer is applied halved (kernel and bias; exact in floating point), so that it
        # gives z / 2 and sigmoid(z) = (1 + tanh(z / 2)) / 2 needs no pass to scale z.
        self._scales = [1.0] * (len(kernels) - 1) + [0.5]
        # the noise-level channel as a bias per unit of sigma
        sigma_bias = self._scales[0] * kernels[0][:, 1].sum(axis=(-2, -1))
        self._bias = [caches.DeviceCache(scale * b[:, None, None]) for scale, b in zip(self._scales, biases)]
        self._sigma = caches.DeviceCache(sigma_bias[:, None, None])
        self._layers = caches.PerShape()

    def _convolutions(self, image_shape: tuple[int, int]) -> list[Conv2d]:
        def build() -> list[Conv2d]:
            inputs = [self.kernels[0][:, 0], *self.kernels[1:]]  # the image channel of the first layer
            return [Conv2d(scale * k, image_shape, boundary="reflect") for scale, k in zip(self._scales, inputs)]

        return self._layers.get(image_shape, build)

    def __call__(self, x: Array, sigma: float) -> Array:
        r"""The masks :math:`\Lambda(x, \sigma)`: shape ``(..., C, H, W)`` for ``x`` of shape ``(..., H, W)``.

        ``sigma``, the noise level, must be a finite non-negative number.
        """
        if not backend.is_array(x) or x.ndim < 2:
            raise TypeError(f"MaskCNN: x must be an image array of shape (..., H, W), got {type(x).__name__}")
        backend.check_dtype(x, "MaskCNN: x")
        if x.dtype.kind == "c":
            raise TypeError("MaskCNN: x must be real")
        sigma = checks.non_negative(sigma, "MaskCNN: sigma")
        xp = backend.namespace(x)
        dtype = x.dtype
        h = x
        layers = self._convolutions(tuple(x.shape[-2:]))
        for l, conv in enumerate(layers):
            bias = self._bias[l].like(x, dtype)
            if l == 0:
                bias = bias + sigma * self._sigma.like(x, dtype)  # (C, 1, 1)
            # a new contiguous array (the convolution's output is a strided view, slow to update in place)
            h = conv(h) + bias
            if l < len(layers) - 1:
                # leaky ReLU as max(h, slope h): two passes, no mask array (0 < slope < 1)
                h = xp.maximum(h, 0, out=h) if self.activation == "relu" else xp.maximum(h, LEAKY_SLOPE * h, out=h)
        # h = z / 2 (the last layer is halved): sigmoid(z) = (1 + tanh(z / 2)) / 2 in place, with no
        # overflow for large |z|
        h = xp.tanh(h, out=h)
        h += 1.0
        h *= 0.5
        return h

    def __repr__(self) -> str:
        sizes = " -> ".join(str(k.shape[1]) for k in self.kernels) + f" -> {self.channels}"
        return f"MaskCNN({sizes} channels, {self.activation})"
