"""Shared test settings: backends, tolerances by dtype, hypothesis profile."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import adareg

# Locally: fresh random examples each run.  In CI (CI=true): the same examples every
# run, so that a submission's result does not depend on the draw.
settings.register_profile("default", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True)
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))

#: Relative tolerance for float comparisons, by dtype (DESIGN.md §6).
TOLERANCE = {
    np.dtype(np.float32): 1e-4,
    np.dtype(np.complex64): 1e-4,
    np.dtype(np.float64): 1e-10,
    np.dtype(np.complex128): 1e-10,
}

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]

#: Tests parametrised over ``device`` run on NumPy, and on CuPy where a GPU exists.
DEVICES = [
    pytest.param("cpu", id="numpy"),
    pytest.param(
        "gpu", id="cupy",
        marks=pytest.mark.skipif(not adareg.gpu_available(), reason="CuPy with a CUDA GPU is not available"),
    ),
]


def random_array(rng: np.random.Generator, shape: tuple[int, ...], dtype, device: str = "cpu"):
    """Standard normal entries (real and imaginary parts for complex dtypes) on ``device``."""
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return adareg.to_device(a.astype(dtype), device)
