"""The shipped parameter files: every registered family ships one, which loads by name, is small, and denoises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import adareg
from adareg import params
from adareg.operators import Conv2d, Identity
from tests.helpers import reflect_bank_gram

WEIGHTS = Path(adareg.__file__).parent / "weights"


@pytest.mark.parametrize("name", params.families())
def test_shipped_model_loads_and_records_its_training(name):
    reg = adareg.load(name)
    assert reg.family == name and reg.sigma_range == pytest.approx((0.0, 30 / 255))
    assert (WEIGHTS / f"{name}.npz").stat().st_size < 1024**2 / 4  # well under 1 MiB
    metadata = adareg.params.available()[name]
    assert metadata["training"]["steps_done"] > 0 and "adareg_train" in metadata["training"]["method"]


def test_shipped_ridge_potentials_are_bounded_below():
    """So that 1/2 ||Hx - y||^2 + lam R(x) is bounded below for any H (MRI, sparse-view CT)."""
    for name in ("crr", "wcrr"):
        reg = adareg.load(name)
        profile = reg.profile
        far = np.full((profile.channels, 1, 1), 1e4)
        grid = profile.integral(np.tile(profile.knots, (profile.channels, 1, 1)))
        assert reg.bounded_below
        assert np.all(profile.integral(far) >= grid.min(axis=-1, keepdims=True))
        assert np.all(profile.integral(-far) >= grid.min(axis=-1, keepdims=True))


def test_shipped_wcrr_denoising_objective_is_convex():
    """1/2 ||x - y||^2 + lam(sigma) R(x) with rho-weakly convex potentials is convex when lam rho ||W||^2 <= 1,
    ||W|| with the reflect boundary the models use (above the symbol's 1, by more where a bank's top singular
    vectors sit at a corner). Checked on images of 32 x 32 (a dense matrix), 64 x 64 and 256 x 256 (Lanczos),
    the sizes from which on the bound holds (smaller images see the corners interact, and a larger norm)."""
    reg = adareg.load("wcrr")
    norms2 = [np.linalg.eigvalsh(reflect_bank_gram(reg.bank.kernel, 32))[-1]]
    norms2 += [Conv2d(reg.bank.kernel[:, 0], (n, n), boundary="reflect").norm(tol=1e-12) ** 2 for n in (64, 256)]
    rho = -min(0.0, np.min(np.diff(reg.profile.coefficients, axis=-1)) / reg.profile.grid_step)
    assert min(norms2) > 1 and rho > 0.5  # the boundary raises the norm above the symbol's 1; far from convex
    assert np.max(reg.lam.values) * rho * max(norms2) <= 1 + 1e-9


@pytest.mark.parametrize("name", params.families())
def test_shipped_model_denoises(name):
    """A piecewise-smooth test image at sigma = 25/255: the model gains several dB over the noisy input."""
    clean = adareg.data.image("camera", shape=(64, 64))
    sigma = 25 / 255
    y = clean + sigma * np.random.default_rng(0).standard_normal(clean.shape)
    result = adareg.solve(Identity(y.shape), y, adareg.load(name), sigma=sigma)
    assert adareg.psnr(result.x, clean) > adareg.psnr(y, clean) + 3
