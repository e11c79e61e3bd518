"""Elementary operators: identity, pointwise weights, subsampling, finite differences."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np

from .. import backend, caches, checks
from ..backend import Array
from .base import LinearOperator, as_shape, batch_shape, broadcasts_to


class Identity(LinearOperator):
    """The identity ``x -> x`` on arrays of shape ``shape`` (denoising: ``H = I``)."""

    def __init__(self, shape: Any):
        shape = as_shape(shape, "shape")
        super().__init__(shape, shape)

    def _apply(self, x: Array) -> Array:
        return x.copy()  # a new array, as every operator gives: `y = H(x); y += noise` keeps x

    _adjoint = _apply

    def _exact_norm(self) -> float:
        return 1.0

    def gram(self) -> LinearOperator:
        return self


class RealToComplex(LinearOperator):
    """Real images seen as complex ones: ``x -> x + 0j``; the adjoint takes the real part.

    Composing a complex forward model with it, ``H @ RealToComplex(shape)``, gives
    the model on real images, whose adjoint ``Re(H^H y)`` is exact for the real
    inner product ``Re <u, v>`` (MRI of real images, for instance).
    """

    def __init__(self, shape: Any):
        shape = as_shape(shape, "shape")
        super().__init__(shape, shape, np.complex128, real_in=True)

    def _apply(self, x: Array) -> Array:
        return x.astype(backend.result_dtype(x.dtype, np.complex128))

    def _adjoint(self, y: Array) -> Array:
        return backend.namespace(y).real(y).copy()  # NumPy's real part is a view of y

    def _exact_norm(self) -> float:
        return 1.0


class Diagonal(LinearOperator):
    """Pointwise multiplication ``x -> w * x`` (masks, inpainting, pixel weights).

    Parameters
    ----------
    weights
        Real or complex array.  Its adjoint multiplies by ``conj(w)``.
    shape
        Shape of the operator's input; ``weights`` must broadcast to it without
        enlarging it (e.g. per-channel weights of shape ``(C, 1, 1)`` for inputs
        ``(C, H, W)``).  Default: ``weights.shape``.
    """

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("weights",)

    def __init__(self, weights: Array, shape: Any = None):
        weights = backend.as_array(weights, "Diagonal: weights")
        backend.check_dtype(weights, "Diagonal: weights")
        backend.check_finite(weights, "Diagonal: weights")
        shape = tuple(weights.shape) if shape is None else as_shape(shape, "shape")
        if not broadcasts_to(weights.shape, shape):
            raise ValueError(f"Diagonal: weights of shape {tuple(weights.shape)} do not broadcast to shape {shape}")
        super().__init__(shape, shape, weights.dtype)
        self.weights = caches.DeviceCache(backend.to_numpy(weights))

    def _apply(self, x: Array) -> Array:
        return self.weights.like(x, backend.result_dtype(x.dtype, self.dtype)) * x

    def _adjoint(self, y: Array) -> Array:
        xp = backend.namespace(y)
        return xp.conj(self.weights.like(y, backend.result_dtype(y.dtype, self.dtype))) * y

    def _exact_norm(self) -> float:
        return float(np.max(np.abs(self.weights.host)))

    def __repr__(self) -> str:
        return f"Diagonal({self.shape_in})"


class Subsample(LinearOperator):
    """Selection of entries: ``x -> x[selection]``; the adjoint puts them back into zeros.

    Parameters
    ----------
    shape
        Shape of the input.
    selection
        Either a boolean mask of shape ``shape`` (output: the selected entries as a
        vector, in C order) or a tuple of slices (output: the sliced array, e.g.
        ``(slice(None, None, 2), slice(None, None, 2))`` keeps every second pixel); a
        single slice is the tuple of one, for the first axis.
    """

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("indices", "slices")

    def __init__(self, shape: Any, selection: Array | slice | tuple[slice, ...]):
        shape = as_shape(shape, "shape")
        if isinstance(selection, slice):  # one slice for the first axis, as x[selection] would read it
            selection = (selection,)
        if isinstance(selection, list) and any(isinstance(s, slice) for s in selection):  # else called a bad mask
            raise TypeError(f"Subsample: selection: pass slices as a tuple, as NumPy indexing takes them, got a list "
                            f"{selection!r:.80}")
        if isinstance(selection, tuple):
            if len(selection) > len(shape) or not all(isinstance(s, slice) for s in selection):
                raise TypeError(
                    f"Subsample: selection must be a boolean mask or a tuple of at most {len(shape)} slices, "
                    f"got {selection!r}"
                )
            if any(s.step == 0 for s in selection):
                raise ValueError(f"Subsample: a slice's step must not be zero, got {selection!r}")
            # padded to one slice per axis, so that x[..., *slices] leaves batch axes alone
            self.slices: tuple[slice, ...] | None = selection + (slice(None),) * (len(shape) - len(selection))
            self.indices = None
            shape_out = np.broadcast_to(np.empty((), dtype=bool), shape)[selection].shape
            if 0 in shape_out:
                raise ValueError(f"Subsample: selection {selection!r} keeps nothing of shape {shape}")
        else:
            backend.check_plain(selection, "Subsample: mask")  # the conversion would drop a mask unseen
            mask = backend.to_numpy(selection)
            if mask.dtype != bool or mask.shape != shape:
                raise ValueError(
                    f"Subsample: mask must be boolean with shape {shape}, got dtype {mask.dtype} "
                    f"and shape {mask.shape}"
                )
            if not mask.any():
                raise ValueError("Subsample: mask selects no entry")
            self.slices = None
            self.indices = caches.DeviceCache(np.flatnonzero(mask))
            shape_out = (int(mask.sum()),)
        super().__init__(shape, shape_out)

    def _apply(self, x: Array) -> Array:
        if self.slices is not None:
            return x[(..., *self.slices)].copy()  # a new array, not a view of x
        flat = x.reshape(*batch_shape(x, self.shape_in), math.prod(self.shape_in))  # -1 fails on an empty batch
        return flat[..., self.indices.like(x)]

    def _adjoint(self, y: Array) -> Array:
        xp = backend.namespace(y)
        batch = batch_shape(y, self.shape_out)
        if self.slices is not None:
            out = xp.zeros((*batch, *self.shape_in), dtype=y.dtype)
            out[(..., *self.slices)] = y
            return out
        out = xp.zeros((*batch, int(np.prod(self.shape_in))), dtype=y.dtype)
        out[..., self.indices.like(y)] = y
        return out.reshape(*batch, *self.shape_in)

    def _exact_norm(self) -> float:
        return 1.0

    def __repr__(self) -> str:
        return f"Subsample({self.shape_in} -> {self.shape_out})"


class FiniteDifference(LinearOperator):
    """Forward differences along chosen axes: the discrete gradient.

    ``(D x)_a[i] = x[i + e_a] - x[i]`` for each axis ``a``, stacked on a new leading
    axis: input ``shape``, output ``(len(axes), *shape)``.

    Parameters
    ----------
    shape
        Shape of the image.
    axes
        Distinct axes of ``shape`` to differentiate along, a tuple of ints or one int
        (default: all).
    boundary
        ``"neumann"``: the difference across the last sample is zero (the usual
        discretisation of total variation); ``"periodic"``: the image wraps around.
    """

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("axes", "boundary")

    def __init__(self, shape: Any, axes: tuple[int, ...] | None = None,
                 boundary: Literal["neumann", "periodic"] = "neumann"):
        shape = as_shape(shape, "shape")
        axes = tuple(range(len(shape))) if axes is None else _as_axes(axes)
        if not axes or any(not -len(shape) <= a < len(shape) for a in axes):
            raise ValueError(f"FiniteDifference: axes {axes} are not axes of shape {shape}")
        if len({a % len(shape) for a in axes}) < len(axes):
            raise ValueError(f"FiniteDifference: axes {axes} name an axis twice; expected distinct axes")
        if boundary not in ("neumann", "periodic"):
            raise ValueError(f"FiniteDifference: boundary must be 'neumann' or 'periodic', got {boundary!r}")
        super().__init__(shape, (len(axes), *shape))
        # axes counted from the end, so that leading batch axes do not shift them
        self.axes = tuple(a % len(shape) - len(shape) for a in axes)
        self.boundary = boundary

    def _along(self, axis: int, start: int | None, stop: int | None) -> tuple:
        """Index selecting ``start:stop`` along ``axis`` (counted from the end)."""
        return (Ellipsis, slice(start, stop)) + (slice(None),) * (-axis - 1)

    def _apply(self, x: Array) -> Array:
        xp = backend.namespace(x)
        batch = batch_shape(x, self.shape_in)
        out = xp.zeros((*batch, len(self.axes), *self.shape_in), dtype=x.dtype)
        for k, a in enumerate(self.axes):
            out_k = out[(..., k) + (slice(None),) * len(self.shape_in)]
            if self.boundary == "periodic":
                out_k[...] = xp.roll(x, -1, axis=a) - x
            else:  # the difference across the last sample stays zero
                out_k[self._along(a, None, -1)] = x[self._along(a, 1, None)] - x[self._along(a, None, -1)]
        return out

    def _adjoint(self, y: Array) -> Array:
        xp = backend.namespace(y)
        out = xp.zeros(batch_shape(y, self.shape_out) + self.shape_in, dtype=y.dtype)
        for k, a in enumerate(self.axes):
            y_k = y[(..., k) + (slice(None),) * len(self.shape_in)]
            if self.boundary == "periodic":
                out += xp.roll(y_k, 1, axis=a) - y_k
            else:  # D^T y [i] = y[i-1] - y[i], with y[-1] = 0 and y[n-1] unused
                inner = y_k[self._along(a, None, -1)]
                out[self._along(a, None, -1)] -= inner
                out[self._along(a, 1, None)] += inner
        return out

    def _exact_norm(self) -> float:
        # D^T D is diagonalised by the DFT (periodic) or the DCT-II (neumann): its
        # eigenvalues are sums over the axes of 4 sin^2(pi k / n), resp. 4 sin^2(pi k / (2 n)).
        period = 1 if self.boundary == "periodic" else 2
        largest = 0.0
        for a in self.axes:
            n = self.shape_in[a]
            largest += float(np.max(4.0 * np.sin(np.pi * np.arange(n) / (period * n)) ** 2))
        return float(np.sqrt(largest))

    def __repr__(self) -> str:
        return f"FiniteDifference({self.shape_in}, axes={self.axes}, boundary={self.boundary!r})"


def _as_axes(axes: Any) -> tuple[int, ...]:
    """``axes`` (an int or an iterable of ints) as a tuple of ints, or a ``TypeError`` (bools, fractions, strings)."""
    if checks.is_int(axes):
        return (int(axes),)
    entries = tuple(axes) if isinstance(axes, Iterable) and not isinstance(axes, (str, bytes)) else None
    if entries is None or not all(checks.is_int(a) for a in entries):
        raise TypeError(f"FiniteDifference: axes must be an int or a tuple of ints, got {axes!r}")
    return tuple(int(a) for a in entries)
