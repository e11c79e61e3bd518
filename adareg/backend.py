"""Array backends: NumPy on the CPU, CuPy on a CUDA GPU, behind one namespace.

Operators and solvers take the namespace of their input with :func:`namespace`
(array-api-compat), allocate with the input's dtype and device, and never move
data between host and device inside an iteration.  CuPy is imported lazily, only
when a CuPy array is seen or a GPU is asked for, so ``import adareg`` needs NumPy
and SciPy alone.

The few calls outside the array API standard (``ndimage`` filters, FFTs) are
chosen in one place, :func:`ndimage` and :func:`fft`, rather than by branches
scattered through the code.
"""

from __future__ import annotations

import importlib
import numbers
from types import ModuleType
from typing import Any, Literal

import array_api_compat
import numpy as np

from . import threads

Array = Any  # a NumPy or CuPy array
Device = Literal["cpu", "gpu"]

#: The dtypes every operator and solver accepts.
SUPPORTED_DTYPES = tuple(
    np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128)
)


def namespace(*arrays: Array) -> ModuleType:
    """The array-api-compat namespace shared by ``arrays`` (NumPy or CuPy).

    Raises
    ------
    TypeError
        If an argument is not an array, or the arrays mix libraries.
    """
    try:
        return array_api_compat.array_namespace(*arrays)
    except TypeError as err:
        kinds = ", ".join(type(a).__name__ for a in arrays)
        raise TypeError(f"expected NumPy or CuPy arrays, got {kinds}: {err}") from None


def is_array(x: object) -> bool:
    """Whether ``x`` is a NumPy or CuPy array."""
    return array_api_compat.is_numpy_array(x) or array_api_compat.is_cupy_array(x)


def is_foreign_array(x: object) -> bool:
    """Whether ``x`` is an array of another library that NumPy converts (e.g. a torch tensor, an xarray
    ``DataArray``, a dask array), 0-d ones included: neither a NumPy or CuPy array, nor a nested list, nor a
    number (NumPy's scalars have ``__array__`` too)."""
    return (not is_array(x) and not isinstance(x, (list, tuple, str, bytes, numbers.Number, np.generic))
            and (hasattr(x, "__array__") or hasattr(x, "__array_interface__")))


def is_cupy(x: object) -> bool:
    """Whether ``x`` is a CuPy array (never imports CuPy)."""
    return array_api_compat.is_cupy_array(x)


def gpu_available() -> bool:
    """Whether CuPy is installed *and* a CUDA device can be used.

    ``import cupy`` succeeds on machines without a GPU (allocation then fails), so
    the check is ``cupy.cuda.is_available()``, not the import.
    """
    try:
        cupy = importlib.import_module("cupy")
        return bool(cupy.cuda.is_available())
    except Exception:  # ImportError, or a CUDA driver error raised while probing
        return False


def cupy_module() -> ModuleType:
    """The ``cupy`` module, or a clear error when no usable GPU is present."""
    if not gpu_available():
        raise RuntimeError(
            "a GPU was requested but CuPy with a CUDA device is not available; "
            "install it with `pip install adareg[gpu]` on a machine with an NVIDIA GPU, "
            "or use device='cpu'"
        )
    return importlib.import_module("cupy")


def array_module(x: Array) -> ModuleType:
    """``numpy`` or ``cupy`` itself for ``x``: their ufuncs take ``out=``, which array-api-compat's wrappers of
    some (e.g. ``floor``) drop."""
    return cupy_module() if is_cupy(x) else np


def take(table: Array, index: Array, out: Array) -> Array:
    """``out[...] = table[index]`` for a 1D ``table`` and integer ``index`` of ``out``'s shape; returns ``out``.

    The indices must be in range: NumPy clips them instead of checking, as with checks
    it would gather into a temporary array and copy that into ``out``.
    """
    if is_cupy(out):
        return cupy_module().take(table, index, out=out)
    return np.take(table, index, out=out, mode="clip")


def as_array(x: Any, what: str) -> Array:
    """``x`` itself where it is a NumPy or CuPy array, else ``numpy.asarray(x)`` (nested lists, another library's
    array); a ``TypeError`` naming ``what`` where NumPy cannot convert it (e.g. ragged lists, a torch tensor that
    requires grad or holds bfloat16)."""
    if is_array(x):
        return x
    try:
        return np.asarray(x)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{what} must be an array or nested lists of numbers; NumPy cannot convert the "
                        f"{type(x).__name__} given: {' '.join(str(err).split())}") from None


def to_numpy(x: Array) -> np.ndarray:
    """``x`` as a NumPy array (a copy from the GPU for CuPy arrays)."""
    if is_cupy(x):
        return x.get()
    return np.asarray(x)


def to_device(x: Array, device: Device) -> Array:
    """``x`` on ``device``: ``"cpu"`` gives NumPy, ``"gpu"`` gives CuPy."""
    if device == "cpu":
        return to_numpy(x)
    if device == "gpu":
        return cupy_module().asarray(x)
    raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")


def device_of(x: Array) -> Device:
    """``"gpu"`` for a CuPy array, ``"cpu"`` for a NumPy array."""
    return "gpu" if is_cupy(x) else "cpu"


def ndimage(x: Array) -> ModuleType:
    """``scipy.ndimage`` for NumPy arrays, ``cupyx.scipy.ndimage`` for CuPy arrays."""
    if is_cupy(x):
        return importlib.import_module("cupyx.scipy.ndimage")
    return importlib.import_module("scipy.ndimage")


#: Bytes of an FFT's input below which it runs on one thread; on smaller arrays the threads'
#: hand-over costs more than they save (measurement log, "FFTs of small arrays on one thread").
THREADED_FFT_BYTES = 1 << 20


def _fft_threads(a: Array) -> int:
    """The threads for an FFT of ``a``: :func:`adareg.threads.fft_workers`, or one below :data:`THREADED_FFT_BYTES`."""
    return threads.fft_workers() if a.nbytes >= THREADED_FFT_BYTES else 1


class _HostFFT:
    """``scipy.fft``'s transforms on :func:`adareg.threads.fft_workers` threads, on one for inputs smaller than
    :data:`THREADED_FFT_BYTES` (``numpy.fft`` runs on one)."""

    def __init__(self) -> None:
        self._fft = importlib.import_module("scipy.fft")
        self.next_fast_len = self._fft.next_fast_len

    def fftn(self, a: Array, s: Any = None, axes: Any = None, norm: str | None = None) -> Array:
        return self._fft.fftn(a, s=s, axes=axes, norm=norm, workers=_fft_threads(a))

    def ifftn(self, a: Array, s: Any = None, axes: Any = None, norm: str | None = None) -> Array:
        return self._fft.ifftn(a, s=s, axes=axes, norm=norm, workers=_fft_threads(a))

    def rfftn(self, a: Array, s: Any = None, axes: Any = None) -> Array:
        return self._fft.rfftn(a, s=s, axes=axes, workers=_fft_threads(a))

    def irfftn(self, a: Array, s: Any = None, axes: Any = None) -> Array:
        return self._fft.irfftn(a, s=s, axes=axes, workers=_fft_threads(a))

    def ifft(self, a: Array, n: int | None = None, axis: int = -1, overwrite_x: bool = False) -> Array:
        return self._fft.ifft(a, n=n, axis=axis, overwrite_x=overwrite_x, workers=_fft_threads(a))

    def irfft(self, a: Array, n: int | None = None, axis: int = -1, overwrite_x: bool = False) -> Array:
        return self._fft.irfft(a, n=n, axis=axis, overwrite_x=overwrite_x, workers=_fft_threads(a))


_host_fft: _HostFFT | None = None


def fft(x: Array) -> Any:
    """FFTs for ``x``'s backend: ``fftn``, ``ifftn`` (arguments ``a, s, axes, norm``), ``rfftn``, ``irfftn``
    (arguments ``a, s, axes``),
    ``ifft``, ``irfft`` (arguments ``a, n, axis, overwrite_x``) and ``next_fast_len(n)``.

    ``scipy.fft`` on :func:`adareg.threads.fft_workers` threads for NumPy arrays, ``cupyx.scipy.fft``
    (cuFFT) for CuPy arrays.  Single precision stays single precision.
    """
    if is_cupy(x):
        return importlib.import_module("cupyx.scipy.fft")
    global _host_fft
    if _host_fft is None:
        _host_fft = _HostFFT()
    return _host_fft


def check_plain(x: Any, what: str) -> None:
    """Raise a ``TypeError`` naming ``what`` if ``x`` is a NumPy subclass whose arithmetic is not an array's.

    A masked array's mask would be ignored (its masked entries computed with as data), and
    a ``numpy.matrix`` multiplies as matrices; both are refused rather than misread.
    """
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(
            f"{what} is a masked array, whose mask adareg would ignore: pass x.filled(value), or "
            "numpy.ma.getdata(x) if nothing is masked (masked measurements can instead get data weights of 0)"
        )
    if isinstance(x, np.matrix):
        raise TypeError(f"{what} is a numpy.matrix, whose * is a matrix product; pass numpy.asarray(x)")


def check_dtype(x: Array, what: str) -> None:
    """Raise a ``TypeError`` naming ``what`` unless ``x`` is a plain array (:func:`check_plain`) of a
    supported dtype in native byte order."""
    check_plain(x, what)
    dtype = np.dtype(x.dtype)
    native = dtype.newbyteorder("=")
    if native not in SUPPORTED_DTYPES:  # first: the cast it advises also mends a byte order
        # 8- and 16-bit pixels are intensities: a plain cast would keep them at 0-255, far off the learned models'
        # and the bounds' [0, 1]
        scale = {np.dtype(np.uint8): " / 255", np.dtype(np.uint16): " / 65535"}.get(native, "")
        raise TypeError(
            f"{what} has dtype {dtype.str if not dtype.isnative else dtype}; expected float32, float64, complex64 or "
            f"complex128 (convert first, e.g. x.astype(numpy.float32){scale}"
            + (", for intensities in [0, 1])" if scale else ")")
        )
    if not dtype.isnative:
        raise TypeError(
            f"{what} has dtype {dtype.str}, which is {dtype.name} in non-native byte order (as read from some "
            f"files); convert first: x.astype(x.dtype.newbyteorder('='))"
        )


def check_finite(x: Array, what: str) -> None:
    """Raise a ``ValueError`` naming ``what`` if ``x`` holds NaN or Inf (one reduction, no host copy of ``x``)."""
    xp = namespace(x)
    if not bool(xp.all(xp.isfinite(x))):
        bad = int(xp.count_nonzero(~xp.isfinite(x)))
        raise ValueError(f"{what} contains {bad} NaN or Inf value{'s' if bad > 1 else ''}; expected finite values")


def check_array(x: Any, shape: tuple[int, ...], what: str) -> None:
    """Check that ``x`` is an array of a supported dtype with shape ``shape`` or ``batch + shape``.

    Raises
    ------
    TypeError
        If ``x`` is not a NumPy/CuPy array or has an unsupported dtype.
    ValueError
        If its trailing axes are not ``shape`` (nothing is broadcast).
    """
    if not is_array(x):
        raise TypeError(f"{what} must be a NumPy or CuPy array, got {type(x).__name__}")
    check_dtype(x, what)
    n = len(shape)
    if x.ndim < n or tuple(x.shape[x.ndim - n :]) != tuple(shape):
        raise ValueError(
            f"{what} has shape {tuple(x.shape)}; expected {tuple(shape)} or (batch..., *{tuple(shape)}); "
            "nothing is broadcast"
        )


def check_iterate(x: Any, what: str) -> None:
    """Check that ``x``, a solver's start or right-hand side, is a NumPy or CuPy array of a supported dtype
    (:func:`check_dtype`) whose values are all finite (:func:`check_finite`); errors name ``what``."""
    if not is_array(x):
        raise TypeError(f"{what} must be a NumPy or CuPy array, got {type(x).__name__}")
    check_dtype(x, what)
    check_finite(x, what)


def result_dtype(input_dtype: Any, coefficient_dtype: Any) -> np.dtype:
    """Dtype of an operator's output: the input's precision, complex if either is.

    A float32 input stays float32 under a float64 operator (coefficients are cast
    down), and becomes complex64 under a complex operator.
    """
    input_dtype = np.dtype(input_dtype)
    precision = np.finfo(input_dtype).bits
    is_complex = input_dtype.kind == "c" or np.dtype(coefficient_dtype).kind == "c"
    if is_complex:
        return np.dtype(np.complex64 if precision == 32 else np.complex128)
    return np.dtype(np.float32 if precision == 32 else np.float64)


def real_inner(a: Array, b: Array) -> float:
    """``Re <a, b> = Re sum(conj(a) b)`` as a Python float, for real or complex arrays of either backend."""
    return float(real_inners(a, b, 0))


def real_inners(a: Array, b: Array, batch_ndim: int) -> Array:
    """``Re <a_i, b_i>`` for each image ``i`` of a batch (the ``batch_ndim`` leading axes), an array on their
    device, without a host round trip."""
    xp = namespace(a)
    products = a * b if a.dtype.kind != "c" and b.dtype.kind != "c" else xp.real(xp.conj(a) * b)
    return xp.sum(products, axis=tuple(range(batch_ndim, products.ndim)))


def peaks(images: Array, image_ndim: int) -> np.ndarray:
    """The largest magnitude of each image of ``images`` (its ``image_ndim`` trailing axes; the leading ones a
    batch): a host array of the batch's shape, from one reduction and one host copy."""
    xp = namespace(images)
    return to_numpy(xp.max(xp.abs(images), axis=tuple(range(images.ndim - image_ndim, images.ndim))))


def per_image(values: Array, like: Array) -> Array:
    """``values`` (one per image of a batch, the leading axes of ``like``) shaped to broadcast over ``like``'s
    remaining axes, in ``like``'s real precision (a float64 factor would promote float32 images)."""
    xp = namespace(like)
    values = xp.asarray(values).astype(real_dtype(like.dtype), copy=False)
    return xp.reshape(values, tuple(values.shape) + (1,) * (like.ndim - values.ndim))


def rounding(*dtypes: Any) -> float:
    """Ten units of rounding of the coarsest real precision among ``dtypes``: the slack of a comparison of
    values computed in them."""
    return 10 * max(float(np.finfo(real_dtype(dtype)).eps) for dtype in dtypes)


def real_dtype(dtype: Any) -> np.dtype:
    """The real dtype of the same precision (complex64 -> float32)."""
    return np.dtype(np.finfo(np.dtype(dtype)).dtype)


class KeepsReadOnly:
    """Mixin for objects whose parameters are fixed when they are built, since caches copy them.

    The attributes that a class names in ``_fixed`` (with those its bases name), once
    set, cannot be set again, nor can a property without a setter: assigning ``H.mask`` or
    ``tv.weights`` changed the attribute but not the copies (spectra, device arrays, norm
    estimates) that the computations read.  The read-only arrays among the attributes
    (alone or in lists and tuples, :func:`read_only`) are read-only again after
    pickling or ``copy.deepcopy``, which NumPy's pickling does not keep.
    """

    #: The attributes fixed once set (with those the base classes name).
    _fixed: tuple[str, ...] = ()

    def __setattr__(self, name: str, value: Any) -> None:
        kind = type(self)
        declared = getattr(kind, name, None)
        if (isinstance(declared, property) and declared.fset is None) or \
                (name in self.__dict__ and any(name in vars(k).get("_fixed", ()) for k in kind.__mro__)):
            raise AttributeError(f"{kind.__name__}.{name} cannot be changed: the object's caches hold the value it "
                                 f"was built with; build a new {kind.__name__}")
        super().__setattr__(name, value)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_read_only"] = [name for name, value in state.items()
                               if any(not array.flags.writeable for array in _arrays_in(value))]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name in state.pop("_read_only", ()):
            state[name] = _frozen_views(state[name])
        self.__dict__.update(state)


def _frozen_views(value: Any) -> Any:
    """``value`` with the NumPy arrays it is or holds in a list or tuple made read-only and returned as views, whose
    flag cannot be set back as an array's that owns its memory can: :func:`read_only`'s copies, and the arrays
    that unpickling gives."""
    if isinstance(value, (list, tuple)):
        return type(value)(_frozen_views(item) for item in value)
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
        return value.view()
    return value


def _arrays_in(value: Any) -> list[np.ndarray]:
    """The NumPy arrays ``value`` is or holds in a list or tuple."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return [item for item in items if isinstance(item, np.ndarray)]


def read_only(array: Any) -> np.ndarray:
    """A read-only copy of the host ``array``: a coefficient an object keeps and its caches copy from, so that an
    edit raises rather than reach some of those copies and not others.  A view of a read-only copy, whose
    ``flags.writeable`` cannot be set back (an array that owns its memory allows it)."""
    return _frozen_views(np.array(array, copy=True))
