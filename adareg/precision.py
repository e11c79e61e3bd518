"""The working precision of :func:`adareg.solve` and the scales it carries.

``solve`` computes in float32 or float64 and refuses, rather than solves, a problem
whose ``lam``, data or data term lie beyond what that precision carries with room for
the solvers' products, quotients and squares (docs/design.md, "Scales the working
precision cannot carry are refused, not solved"): with ``eps``, ``tiny`` and ``max`` of
the precision, ``lam`` and the data term's curvature ``max(w) ||H||^2`` must lie in
``[tiny / eps, max * eps]``, the largest magnitude of each image of ``y`` and ``x0``
in ``[sqrt(tiny) / eps, sqrt(max) * eps]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import backend, checks
from .backend import Array
from .functionals import curvature, is_denoising
from .operators.base import LinearOperator


def working_precision(precision: Any, learned: bool, y: Array) -> np.dtype:
    """The real dtype :func:`adareg.solve` computes in: ``precision``, else float32 for a learned model (``learned``),
    else ``y``'s."""
    if precision is None:
        return np.dtype(np.float32) if learned else backend.real_dtype(y.dtype)
    # a name (exactly), a NumPy scalar type or a dtype (by its name)
    name = precision if isinstance(precision, str) else getattr(checks.as_dtype(precision), "name", None)
    if name not in ("float32", "float64"):
        raise ValueError(f"solve: precision must be 'float32' or 'float64', got {precision!r}")
    return np.dtype(name)


#: How to get more range than the working precision has.
OR_FLOAT64 = {"float32": ", or compute in float64 (precision='float64')", "float64": ""}


def scale_range(dtype: np.dtype) -> tuple[float, float]:
    """The magnitudes that :func:`adareg.solve` accepts for ``lam`` and the data term's curvature in ``dtype``.

    ``[tiny / eps, max * eps]`` of the precision (about 1e-31 to 4e31 for float32):
    normal numbers with a factor ``1 / eps`` to spare, so that the solvers' products
    and quotients of them (``lam`` times a norm, a step over ``lam``) stay finite.
    """
    info = np.finfo(dtype)
    return float(info.tiny / info.eps), float(info.max * info.eps)


def magnitude_range(dtype: np.dtype) -> tuple[float, float]:
    """The largest magnitudes of the images of ``y`` and ``x0`` (other than 0) that :func:`adareg.solve` accepts in
    ``dtype``.

    ``[sqrt(tiny) / eps, sqrt(max) * eps]`` (about 9e-13 to 2e12 for float32): the
    solvers square them (norms of iterates and of their changes, inner products,
    duality gaps), and a square, with a factor ``1 / eps^2`` to spare for changes
    down to the rounding, must stay a normal number.  Below it a change's norm
    underflowed to 0 and read as convergence.
    """
    info = np.finfo(dtype)
    return float(math.sqrt(info.tiny) / info.eps), float(math.sqrt(info.max) * info.eps)


def check_scales(work: np.dtype, H: LinearOperator, lam: float, y: Array, x0: Array | None,
                 weights: Array | None) -> None:
    """Refuse ``lam``, data or a data term beyond what the working precision carries (:func:`scale_range`,
    :func:`magnitude_range`)."""
    low, high = scale_range(work)
    advice = f"; rescale the problem (e.g. to intensities and lam of order 1){OR_FLOAT64[work.name]}"
    if not low <= lam <= high:
        raise ValueError(f"solve: lam = {lam:.3g} lies outside [{low:.1g}, {high:.1g}], the range that a "
                         f"{work.name} computation carries{advice}")
    smallest, largest = magnitude_range(work)
    for name, a, image_ndim in (("y", y, len(H.shape_out)), ("x0", x0, len(H.shape_in))):
        if a is None:
            continue
        # each image of a batch on its own: a faint one beside bright ones has its own relative changes to underflow
        peaks = backend.peaks(a, image_ndim)
        peak = float(peaks.max())
        if not peak <= largest:
            raise ValueError(f"solve: {name} reaches {peak:.3g}, beyond the {largest:.1g} that a {work.name} "
                             f"computation carries (its squares overflow){advice}")
        faint = np.argwhere((peaks > 0) & (peaks < smallest))
        if len(faint):
            index = tuple(int(i) for i in faint[0])
            where = f" ({checks.image_of_batch(index)})" if index else ""
            raise ValueError(f"solve: {name}{where} reaches only {float(peaks[index]):.3g}, below the {smallest:.1g} "
                             f"that a {work.name} computation carries (its squares underflow){advice}")
    if not is_denoising(H, weights):  # bounded as the solve will apply H: on y's device, in the working precision
        first = y[(slice(0, 1),) * y.ndim]  # one sample, a view: its device, in the working precision below
        bound = curvature(H, weights, like=first.astype(backend.result_dtype(work, y.dtype)))
        if not low <= bound <= high:
            raise ValueError(f"solve: the data term's curvature max(weights) ||H||^2 = {bound:.3g} lies outside "
                             f"[{low:.1g}, {high:.1g}], the range that a {work.name} computation carries{advice}")
