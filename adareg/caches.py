"""Caches: what the computations keep so as not to remake it at every call.

* :class:`PerShape`: objects built for an image shape (a model's operators, with their
  spectra and norm estimates), the :data:`SHAPES_KEPT` most recently used;
* :class:`DeviceCache`: a host array's copy on each backend, device and dtype, made once,
  so that iterations do no host-device transfers;
* :func:`reused_buffers` and :func:`scratch`: the host arrays an iteration asks for again
  and again, kept and handed out again within a solve, one set per thread.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, Callable, TypeVar

import numpy as np

from . import backend
from .backend import Array

T = TypeVar("T")


#: How many image shapes' operators a model keeps (:class:`PerShape`), the most recently used.
SHAPES_KEPT = 4


class PerShape:
    """Objects built for each image shape (a model's operators, with their spectra and norm estimates), of which
    the :data:`SHAPES_KEPT` most recently used are kept.

    A process that meets images of many shapes (a folder of photographs, a long-lived
    worker) kept every shape's before, its memory growing with each new shape.
    """

    def __init__(self) -> None:
        self._items: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    def get(self, shape: tuple[int, ...], make: Callable[[], T]) -> T:
        """The object of ``shape``, built by ``make()`` where it is not kept."""
        item = self._items.get(shape)
        if item is None:
            item = self._items[shape] = make()
            while len(self._items) > SHAPES_KEPT:
                with contextlib.suppress(KeyError):  # (another thread's eviction came first)
                    self._items.popitem(last=False)
        else:
            with contextlib.suppress(KeyError):
                self._items.move_to_end(shape)
        return item


class DeviceCache:
    """Copies of a host (NumPy) array on each backend, device and dtype, made once.

    Operators keep their coefficients (kernels, weights, masks) on the host and
    call :meth:`like` at application time; the first call for a given device and
    dtype copies, later calls return the cached copy, so iterations do no
    host-device transfers.  The host array is a read-only copy: a caller who later
    edits the array passed in changes neither it nor any cached copy.  The host's
    casts to other dtypes are read-only as well (CuPy arrays have no such flag).
    """

    def __init__(self, host: np.ndarray):
        self.host = backend.read_only(host)
        self._copies: dict[tuple[str, str, str], Array] = {}

    def __getstate__(self) -> dict[str, Any]:
        """The host array only: the device copies are remade where the object lands (CuPy's may not exist
        there)."""
        return {"host": self.host}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Read-only again: NumPy's pickling does not keep the flag."""
        self.host = state["host"]
        self.host.flags.writeable = False
        self._copies = {}

    def like(self, x: Array, dtype: Any = None) -> Array:
        """The array on ``x``'s backend and device, cast to ``dtype`` (default: its own)."""
        dtype = np.dtype(self.host.dtype if dtype is None else dtype)
        key = (type(x).__module__, str(getattr(x, "device", "cpu")), dtype.str)
        copy = self._copies.get(key)
        if copy is None:
            host = self.host.astype(dtype, copy=False)
            if host is not self.host:  # a cast is a new array: read-only too, a view so that the flag stays
                host.flags.writeable = False
                host = host.view()
            if backend.is_cupy(x):
                with x.device:
                    copy = importlib.import_module("cupy").asarray(host)
            else:
                copy = host
            self._copies[key] = copy
        return copy


class _Scratch(threading.local):
    """This thread's reused arrays (see :func:`reused_buffers`) and how deep its blocks are nested."""

    def __init__(self) -> None:
        self.depth = 0
        self.arrays: dict[tuple, np.ndarray] = {}


_scratch = _Scratch()


@contextlib.contextmanager
def reused_buffers() -> Iterator[None]:
    """Within this block, :func:`scratch` hands out the same host array each time it is asked for one role.

    A large NumPy array that is new costs more than its arithmetic: the operating
    system hands out its memory as fresh pages, zeroed on first touch.  Iterative
    solvers ask for the same temporaries at every iteration, so inside this block
    (entered by :func:`adareg.solve`) they are kept and reused instead.  The arrays
    belong to this thread (concurrent solves never share one) and are released when
    the outermost block ends.  Blocks nest.
    """
    _scratch.depth += 1
    try:
        yield
    finally:
        _scratch.depth -= 1
        if _scratch.depth == 0:
            _scratch.arrays.clear()


def scratch(role: Any, shape: tuple[int, ...], dtype: Any, like: Array) -> Array:
    """A zero-filled array of ``shape`` and ``dtype`` on ``like``'s device, or this role's array again.

    Inside :func:`reused_buffers`, a NumPy array asked for again with the same ``role``,
    ``shape`` and ``dtype`` is the one handed out before, *with whatever was written
    into it*: a caller that relies on zeros (e.g. the margin of a zero-extended
    input) must write the same region every time, which a ``role`` that names that
    region ensures.  Elsewhere, and for CuPy arrays (whose memory pool reuses device
    memory already), it is a new zero-filled array.
    """
    xp = backend.namespace(like)
    if backend.is_cupy(like) or _scratch.depth == 0:
        return xp.zeros(shape, dtype=dtype)
    key = (role, tuple(shape), np.dtype(dtype).str)
    array = _scratch.arrays.get(key)
    if array is None:
        array = _scratch.arrays[key] = np.zeros(shape, dtype=dtype)
    return array
