"""Parameter files of the learned families: round trip through adareg.load, and schema errors."""

from __future__ import annotations

import numpy as np
import pytest

import adareg
from adareg import params
from adareg.operators import Identity
from adareg.regularizers.adaptive import SACNN


def sa_cnn_file(seed: int = 0):
    rng = np.random.default_rng(seed)
    arrays = {
        "bank_0": rng.standard_normal((4, 1, 3, 3)), "bank_1": rng.standard_normal((6, 4, 3, 3)),
        "mask_kernel_0": 0.3 * rng.standard_normal((5, 2, 3, 3)), "mask_bias_0": rng.standard_normal(5),
        "mask_kernel_1": 0.3 * rng.standard_normal((6, 5, 3, 3)), "mask_bias_1": rng.standard_normal(6),
        "lam_knots": np.array([0.0, 30 / 255]), "lam_values": np.array([0.0, 0.2]),
    }
    metadata = {
        "family": "sa-cnn",
        "architecture": {"bank_channels": [4, 6], "bank_kernels": [3, 3], "boundary": "reflect",
                         "mask_channels": [5, 6], "mask_kernels": [3, 3], "activation": "leaky_relu",
                         "lam_knots": 2},
        "sigma_range": [0.0, 30 / 255],
        "training": {"note": "random parameters for a test"},
        "validation": {},
    }
    return arrays, metadata


def test_sa_cnn_round_trip(tmp_path):
    arrays, metadata = sa_cnn_file()
    path = params.save(tmp_path / "toy.npz", arrays, metadata)
    reg = adareg.load(str(path))
    assert isinstance(reg, SACNN) and reg.bank.channels == 6 and reg.masks.channels == 6
    x = np.random.default_rng(1).random((10, 12))
    again = adareg.load(str(path))
    np.testing.assert_array_equal(reg.weights(x, 0.05), again.weights(x, 0.05))
    assert reg.lam(15 / 255) == pytest.approx(0.1)
    result = adareg.solve(Identity(x.shape), x, reg, sigma=0.05, max_iter=3)
    assert result.x.shape == x.shape and result.iterations <= 3


def test_sa_cnn_schema_errors(tmp_path):
    arrays, metadata = sa_cnn_file()
    arrays["mask_kernel_1"] = np.zeros((6, 5, 5, 5))
    with pytest.raises(params.ParameterFileError, match=r"mask_kernel_1.*\(6, 5, 3, 3\)"):
        params.save(tmp_path / "bad.npz", arrays, metadata)
    arrays, metadata = sa_cnn_file()
    metadata["architecture"]["mask_channels"] = [5, 7]
    with pytest.raises(params.ParameterFileError, match="architecture"):
        params.save(tmp_path / "bad.npz", arrays, metadata)


def profile_arrays(rng, channels, knots, convex):
    steps = rng.random((channels, knots - 1)) * (1 if convex else 2) - (0 if convex else 0.5)
    profile = np.concatenate([np.zeros((channels, 1)), np.cumsum(steps, axis=1) * 0.1], axis=1)
    return {"profile": profile, "scale_knots": np.array([0.0, 30 / 255]), "scale_values": np.array([8.0, 4.0])}


@pytest.mark.parametrize("family", ["crr", "wcrr", "sa-b"])
def test_ridge_and_sa_b_round_trip(tmp_path, family):
    rng = np.random.default_rng(2)
    arrays, metadata = sa_cnn_file()
    arrays = {k: v for k, v in arrays.items() if not k.startswith("mask")}
    metadata["family"] = family
    architecture = {"bank_channels": [4, 6], "bank_kernels": [3, 3], "boundary": "reflect", "lam_knots": 2,
                    "profile_knots": 9, "profile_grid": [-0.4, 0.1], "scale_knots": 2}
    if family == "sa-b":
        architecture |= {"blur_kernel": 3, "profile_grid": [0.0, 0.1]}
        arrays |= {"blur": rng.random((6, 3, 3))}
        arrays |= profile_arrays(rng, 6, 9, convex=True)
        arrays["profile"] = 2.0 - arrays["profile"]  # psi' positive and non-increasing ...
        arrays["profile"][:, -1] = arrays["profile"][:, -2]  # ... with a flat last segment
    else:
        arrays |= profile_arrays(rng, 6, 9, convex=family == "crr")
    metadata["architecture"] = architecture
    path = params.save(tmp_path / f"{family}.npz", arrays, metadata)
    reg = adareg.load(str(path))
    assert reg.family == family
    x = np.random.default_rng(3).random((9, 10))
    result = adareg.solve(Identity(x.shape), x, reg, sigma=0.05, max_iter=5)
    assert result.x.shape == x.shape
    np.testing.assert_array_equal(reg.bank.kernel, adareg.load(str(path)).bank.kernel)
