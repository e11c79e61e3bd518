"""Checks of scalar arguments shared by the public functions: each error names the argument.

``True`` is not a number here (``lam=True`` is a mistake, not ``lam=1``), nor is a
string, and NaN fails every comparison, so it is refused explicitly.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


def unwrapped(value: Any) -> Any:
    """A 0-d real array (NumPy or CuPy, e.g. a reduction's result) as a float; anything else as it is."""
    # (a dtype without .kind, e.g. torch's, is not an array's of NumPy or CuPy)
    if getattr(value, "ndim", None) == 0 and getattr(getattr(value, "dtype", None), "kind", "") in ("i", "u", "f"):
        return float(value)
    return value


def real_number(value: Any, name: str) -> float:
    """``value`` as a finite float, or a ``TypeError``/``ValueError`` naming ``name``.

    Python and NumPy numbers are accepted, and 0-d real arrays (NumPy or CuPy, e.g. a
    reduction's result).
    """
    value = unwrapped(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    try:
        value = float(value)
    except OverflowError:  # an int beyond the float range
        raise ValueError(f"{name} must be finite, got {value!r:.40}...") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def positive(value: Any, name: str) -> float:
    """``value`` as a positive finite float, or an error naming ``name``."""
    value = real_number(value, name)
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value:g}")
    return value


def non_negative(value: Any, name: str) -> float:
    """``value`` as a non-negative finite float (e.g. a tolerance, where 0 means "to the cap"), or an error."""
    value = real_number(value, name)
    if value < 0:
        raise ValueError(f"{name} must be non-negative, got {value:g}")
    return value


def as_dtype(value: Any) -> np.dtype | None:
    """``value`` read as a NumPy dtype (a name, a scalar type or a dtype), or ``None`` where NumPy reads none.

    NumPy reads ``None`` itself as float64, and a dtype compares equal to ``None``
    (``np.dtype("float64") == None``), so test the result with ``is None`` before ``in``.
    """
    try:
        return np.dtype(value)
    except TypeError:
        return None


def is_int(value: Any) -> bool:
    """Whether ``value`` is an int, Python's or NumPy's (a bool is not, nor is an integral float)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def integer(value: Any, name: str) -> int:
    """``value`` as an int (see :func:`is_int`), or a ``TypeError`` naming ``name``."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    return int(value)


def count(value: Any, name: str) -> int:
    """``value`` as an int of at least 1 (integral floats are not counts), or an error naming ``name``."""
    value = integer(value, name)
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


def batch_axes(value: Any, ndim: int, name: str) -> int:
    """``value`` as a count of leading batch axes of an ``ndim``-axis array: an int from 0 to
    ``ndim - 1`` (an image keeps at least one axis), or an error naming ``name``."""
    value = integer(value, name)
    if not 0 <= value < ndim:
        raise ValueError(f"{name} must be from 0 to {ndim - 1} (x0 has {ndim} axes, an image at least one), "
                         f"got {value}")
    return value


def flag(value: Any, name: str) -> bool:
    """``value`` as a bool (Python's or NumPy's), or a ``TypeError`` naming ``name``: a string such as ``"no"``
    would otherwise count as true."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def random_generator(seed: Any, name: str) -> np.random.Generator:
    """``numpy.random.default_rng(seed)`` for a seed of ``None``, an int of at least 0 or a
    ``numpy.random.Generator`` (used as it is), or an error naming ``name``."""
    if seed is None or isinstance(seed, np.random.Generator):
        return np.random.default_rng(seed)
    expected = f"{name} must be a non-negative int or None (or a numpy.random.Generator)"
    if not is_int(seed):
        raise TypeError(f"{expected}, got {seed!r} ({type(seed).__name__})")
    if seed < 0:
        raise ValueError(f"{expected}, got {seed}")
    return np.random.default_rng(int(seed))


def integral(value: Any) -> bool:
    """Whether ``value`` is a whole number: an int or a real with an integer value (not a bool, NaN or Inf)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return isinstance(value, numbers.Integral) or float(value).is_integer()


def float32_slack(scale: float) -> float:
    """How far float32 rounding may move a value of size ``scale`` (a few units in its last place): e.g. a noise
    level stored in a parameter file, or given as ``np.float32(30 / 255)``."""
    return 4 * float(np.finfo(np.float32).eps) * scale


def within(value: float, low: float, high: float) -> float | None:
    """``value`` in ``[low, high]``, where a value beyond an end by float32 rounding only (:func:`float32_slack`) is
    taken as that end; ``None`` for one further outside."""
    inside = low - float32_slack(abs(low)) <= value <= high + float32_slack(abs(high))
    return min(max(value, low), high) if inside else None


def image_of_batch(index: tuple[int, ...]) -> str:
    """Name the image at ``index`` of a batch's leading axes: "image 2 of the batch", "image (1, 0) of the batch"."""
    return f"image {index[0] if len(index) == 1 else index} of the batch"


def one_line(err: BaseException) -> str:
    """``err``'s message on one line (whitespace collapsed), or its type's name when it has none."""
    return " ".join(str(err).split()) or type(err).__name__
