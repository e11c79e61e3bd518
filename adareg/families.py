r"""The parameter layout of each learned family: its arrays, and how a file becomes a regularizer.

Each family registers with :mod:`adareg.params` a *schema* (every array's name and
shape, computed from ``metadata["architecture"]``) and a *builder*.  The training
package writes files in exactly this layout.

A new family reuses the common pieces (:func:`bank_schema`, :func:`build_bank`,
:func:`build_lam`, :func:`array_specs`) and adds its own arrays; docs/design.md
("How to add") lists the other files it touches.  Common pieces of the layouts:

* the filter bank ``W``: ``architecture["bank_channels"] = [c_1, ..., c_L]`` and
  ``architecture["bank_kernels"] = [k_1, ..., k_L]`` (odd sizes); arrays
  ``bank_0 .. bank_{L-1}`` of shapes ``(c_{l+1}, c_l, k_l, k_l)`` with ``c_0 = 1``;
  ``architecture["boundary"]`` (``"reflect"``, ``"zero"`` or ``"periodic"``);
* :math:`\\lambda(\\sigma)`: ``architecture["lam_knots"] = K``; arrays ``lam_knots`` and
  ``lam_values`` of shape ``(K,)`` (see :class:`~adareg.regularizers.learned.SigmaProfile`).

``crr`` and ``wcrr`` add the profile :math:`\varphi'` and the response scale :math:`\alpha(\sigma)`:
``architecture["profile_knots"] = K`` and ``architecture["profile_grid"] = [t_0, h]``
(first knot and spacing); arrays ``profile`` of shape ``(c_L, K)``; and
``architecture["scale_knots"] = S`` with arrays ``scale_knots``, ``scale_values`` of
shape ``(S,)``.  ``sa-b`` has the same profile (:math:`\psi'`) and scale, plus the blurs:
``architecture["blur_kernel"] = k`` (odd) and an array ``blur`` of shape ``(c_L, k, k)``.

``sa-cnn`` adds the mask network: ``architecture["mask_channels"] = [m_1, ..., m_J]``
(the last equal to ``c_L``), ``architecture["mask_kernels"] = [k_1, ..., k_J]``,
``architecture["activation"]`` (``"leaky_relu"`` or ``"relu"``); arrays ``mask_kernel_j`` of shapes
``(m_{j+1}, m_j, k_j, k_j)`` with ``m_0 = 2`` (image and noise level) and
``mask_bias_j`` of shapes ``(m_{j+1},)``.
"""

from __future__ import annotations

from typing import Any, Mapping, get_args

from . import params
from .operators.conv import Boundary
from .regularizers.adaptive import SAB, SACNN
from .regularizers.learned import SigmaProfile
from .regularizers.ridge import Ridge
from .regularizers.splines import LinearSpline
from .regularizers.filterbank import FilterBank
from .regularizers.masks import Activation, MaskCNN

#: The filter bank's boundary extensions and the mask network's activations a file may name
#: (no default: a model trained with another one would run wrong).
BOUNDARIES = get_args(Boundary)
ACTIVATIONS = get_args(Activation)


def _sizes(architecture: Mapping[str, Any], key: str, odd: bool = False) -> list[int]:
    """``architecture[key]``, a non-empty list of positive ints (``odd``: of odd ones, kernel sizes)."""
    values = architecture[key]
    if not isinstance(values, list) or not values or not all(_is_positive_int(v) for v in values):
        raise ValueError(f"architecture[{key!r}] must be a non-empty list of positive ints, got {values!r}")
    if odd and any(v % 2 == 0 for v in values):
        raise ValueError(f"architecture[{key!r}] must hold odd kernel sizes, got {values!r}")
    return values


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0  # JSON's true is no size


def _choice(architecture: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
    """``architecture[key]``, which must be one of ``choices`` (a missing one is a ``KeyError``: no default)."""
    value = architecture[key]
    if value not in choices:
        raise ValueError(f"architecture[{key!r}] must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def bank_schema(architecture: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Shapes of the arrays every family shares: the bank's layers and the knots and values of lambda(sigma)."""
    _choice(architecture, "boundary", BOUNDARIES)
    channels, kernels = _sizes(architecture, "bank_channels"), _sizes(architecture, "bank_kernels", odd=True)
    if len(channels) != len(kernels):
        raise ValueError("architecture: bank_channels and bank_kernels must have one entry per layer")
    inputs = [1, *channels[:-1]]
    shapes = {f"bank_{l}": (c, c_in, k, k) for l, (c, c_in, k) in enumerate(zip(channels, inputs, kernels))}
    knots = _positive_int(architecture, "lam_knots")
    shapes |= {"lam_knots": (knots,), "lam_values": (knots,)}
    return shapes


def build_bank(file: params.ParameterFile) -> FilterBank:
    """The filter bank ``W`` of a validated file."""
    architecture = file.metadata["architecture"]
    layers = [file.arrays[f"bank_{l}"] for l in range(len(architecture["bank_channels"]))]
    return FilterBank(layers, boundary=architecture["boundary"])


def build_lam(file: params.ParameterFile) -> SigmaProfile:
    """The trained lambda(sigma) of a validated file."""
    return SigmaProfile(file.arrays["lam_knots"], file.arrays["lam_values"], "lam")


def _positive_int(architecture: Mapping[str, Any], key: str) -> int:
    value = architecture[key]
    if not _is_positive_int(value):
        raise ValueError(f"architecture[{key!r}] must be a positive int, got {value!r}")
    return value


def _profile_schema(architecture: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    channels = _sizes(architecture, "bank_channels")[-1]
    grid = architecture["profile_grid"]
    if not (isinstance(grid, list) and len(grid) == 2
            and all(type(v) in (int, float) and -1e300 < v < 1e300 for v in grid) and grid[1] > 0):
        raise ValueError(f"architecture['profile_grid'] must be [first knot, positive spacing], got {grid!r}")
    knots = _positive_int(architecture, "profile_knots")
    scale = _positive_int(architecture, "scale_knots")
    return {"profile": (channels, knots), "scale_knots": (scale,), "scale_values": (scale,)}


def _profile(file: params.ParameterFile) -> tuple[LinearSpline, SigmaProfile]:
    grid_min, grid_step = file.metadata["architecture"]["profile_grid"]
    return (LinearSpline(file.arrays["profile"], grid_min, grid_step),
            SigmaProfile(file.arrays["scale_knots"], file.arrays["scale_values"], "scale"))


def ridge_schema(metadata: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Arrays of a ``crr`` or ``wcrr`` file."""
    architecture = metadata["architecture"]
    return bank_schema(architecture) | _profile_schema(architecture)


def build_ridge(file: params.ParameterFile) -> Ridge:
    """A :class:`~adareg.regularizers.ridge.Ridge` (``crr`` or ``wcrr``) from a validated file."""
    profile, scale = _profile(file)
    return Ridge(file.family, build_bank(file), profile, scale, build_lam(file), tuple(file.metadata["sigma_range"]))


def sa_b_schema(metadata: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Arrays of an ``sa-b`` file."""
    architecture = metadata["architecture"]
    k = _positive_int(architecture, "blur_kernel")
    if k % 2 == 0:
        raise ValueError(f"architecture['blur_kernel'] must be odd, got {k}")
    channels = _sizes(architecture, "bank_channels")[-1]
    return bank_schema(architecture) | _profile_schema(architecture) | {"blur": (channels, k, k)}


def build_sa_b(file: params.ParameterFile) -> SAB:
    """An :class:`~adareg.regularizers.adaptive.SAB` from a validated file."""
    profile, scale = _profile(file)
    return SAB(build_bank(file), file.arrays["blur"], profile, scale, build_lam(file), tuple(file.metadata["sigma_range"]))


def sa_cnn_schema(metadata: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Arrays of an ``sa-cnn`` file."""
    architecture = metadata["architecture"]
    shapes = bank_schema(architecture)
    channels, kernels = _sizes(architecture, "mask_channels"), _sizes(architecture, "mask_kernels", odd=True)
    _choice(architecture, "activation", ACTIVATIONS)
    if len(channels) != len(kernels) or channels[-1] != architecture["bank_channels"][-1]:
        raise ValueError("architecture: mask_channels and mask_kernels must have one entry per layer, and the "
                         "last mask layer as many channels as the filter bank")
    inputs = [2, *channels[:-1]]
    for j, (c, c_in, k) in enumerate(zip(channels, inputs, kernels)):
        shapes[f"mask_kernel_{j}"] = (c, c_in, k, k)
        shapes[f"mask_bias_{j}"] = (c,)
    return shapes


def build_sa_cnn(file: params.ParameterFile) -> SACNN:
    """An :class:`~adareg.regularizers.adaptive.SACNN` from a validated file."""
    architecture = file.metadata["architecture"]
    depth = len(architecture["mask_channels"])
    masks = MaskCNN([file.arrays[f"mask_kernel_{j}"] for j in range(depth)],
                    [file.arrays[f"mask_bias_{j}"] for j in range(depth)],
                    activation=architecture["activation"])
    return SACNN(build_bank(file), masks, build_lam(file), tuple(file.metadata["sigma_range"]))


def array_specs(schema: Any) -> Any:
    """``schema`` (metadata -> shapes) as the schema :func:`adareg.params.register_family` takes, default dtypes."""
    return lambda metadata: {name: params.ArraySpec(shape) for name, shape in schema(metadata).items()}


params.register_family("crr", array_specs(ridge_schema), build_ridge)
params.register_family("wcrr", array_specs(ridge_schema), build_ridge)
params.register_family("sa-b", array_specs(sa_b_schema), build_sa_b)
params.register_family("sa-cnn", array_specs(sa_cnn_schema), build_sa_cnn)
