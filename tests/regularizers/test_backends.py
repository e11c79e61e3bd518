"""Every learned family's shipped model gives the same results on NumPy and CuPy (runs where a GPU exists)."""

from __future__ import annotations

import numpy as np
import pytest

import adareg
from adareg import params
from adareg.operators import Identity
from tests.conftest import DEVICES

GPU = [d for d in DEVICES if d.id == "cupy"]


@pytest.mark.parametrize("device", GPU)
@pytest.mark.parametrize("family", params.families())
def test_numpy_and_cupy_agree(family, device):
    reg = adareg.load(family)
    y = np.random.default_rng(0).random((16, 18))
    options = {"sigma": 0.05, "tol": 1e-6, "max_iter": 200, "precision": "float64"}
    on_cpu = adareg.solve(Identity(y.shape), y, reg, **options)
    on_gpu = adareg.solve(Identity(y.shape), adareg.to_device(y, device), reg, **options)
    assert adareg.backend.is_cupy(on_gpu.x)
    np.testing.assert_allclose(adareg.to_numpy(on_gpu.x), on_cpu.x, atol=1e-6)
    if hasattr(reg, "weights"):
        np.testing.assert_allclose(adareg.to_numpy(reg.weights(adareg.to_device(y, device), 0.05)),
                                   reg.weights(y, 0.05), atol=1e-10)
