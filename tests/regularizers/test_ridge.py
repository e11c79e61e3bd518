"""crr and wcrr: gradients, convexity, weak convexity, Lipschitz bound, and the smooth solve."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import adareg
from adareg.operators import Blur, Identity
from adareg.operators.base import NORM_SAFETY
from adareg.regularizers.filterbank import FilterBank
from adareg.regularizers.learned import SigmaProfile
from adareg.regularizers.ridge import Ridge
from adareg.regularizers.splines import LinearSpline
from tests.regularizers.test_splines import clamped_table


def toy_ridge(family: str, seed: int = 0, channels: int = 5, rho: float = 1.0, steepness: float = 1.0) -> Ridge:
    rng = np.random.default_rng(seed)
    bank = FilterBank([rng.standard_normal((3, 1, 3, 3)), rng.standard_normal((channels, 3, 3, 3))])
    step = 0.05
    raw = np.cumsum(rng.standard_normal((channels, 21)), axis=1) * step
    lower = 0.0 if family == "crr" else -rho
    coefficients = clamped_table(raw, step, lower=lower, upper=4.0, grid_min=-0.5)
    profile = LinearSpline(steepness * coefficients, -0.5, step)
    scale = SigmaProfile([0.0, 30 / 255], [20.0, 5.0], "scale")
    lam = SigmaProfile([0.0, 30 / 255], [0.0, 0.05], "lam")
    return Ridge(family, bank, profile, scale, lam, (0.0, 30 / 255))


@pytest.mark.parametrize("family", ["crr", "wcrr"])
def test_gradient_matches_finite_differences(family):
    ridge = toy_ridge(family).at(0.05)
    rng = np.random.default_rng(1)
    x, d = rng.random((9, 10)), rng.standard_normal((9, 10))
    eps = 1e-6
    numeric = (ridge.value(x + eps * d) - ridge.value(x - eps * d)) / (2 * eps)
    assert np.vdot(ridge.grad(x), d) == pytest.approx(numeric, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("family", ["crr", "wcrr"])
def test_convexity_and_weak_convexity(family):
    reg = toy_ridge(family, seed=2)
    ridge = reg.at(0.02)
    norm2 = reg.bank.operator((9, 10)).norm() ** 2
    rho = reg.rho * norm2  # R + rho/2 ||x||^2 is convex
    rng = np.random.default_rng(3)
    worst = np.inf
    for _ in range(50):
        a, b = rng.random((9, 10)), rng.random((9, 10))
        gap = ridge.value(a) + ridge.value(b) - 2 * ridge.value((a + b) / 2)  # >= -rho/4 ||a - b||^2
        worst = min(worst, gap + rho / 4 * np.sum((a - b) ** 2))
    assert worst >= -1e-9
    if family == "crr":
        assert reg.rho == 0.0
    else:
        assert 0 < reg.rho <= 1.0 + 1e-12


def test_lipschitz_bound_holds():
    reg = toy_ridge("wcrr", seed=4)
    ridge = reg.at(0.03)
    L = ridge.lipschitz((9, 10))
    rng = np.random.default_rng(5)
    for _ in range(20):
        a, b = rng.random((9, 10)), rng.random((9, 10))
        assert np.linalg.norm(ridge.grad(a) - ridge.grad(b)) <= L * np.linalg.norm(a - b) * (1 + 1e-9)


def test_lipschitz_refuses_fractional_image_shapes():
    ridge = toy_ridge("crr").at(0.03)
    with pytest.raises(TypeError, match=r"crr: image_shape must be a tuple of ints, got \(9.5, 10\)"):
        ridge.lipschitz((9.5, 10))
    assert ridge.lipschitz((9.0, 10)) == ridge.lipschitz((9, 10))


@pytest.mark.parametrize("family", ["crr", "wcrr"])
@pytest.mark.parametrize("steepness", [1.0, 1e20])
def test_curvature_bound_covers_the_dense_hessians_and_beats_the_global_slope(family, steepness):
    """Against dense matrices: the bound is at least ||W^T S_+ W|| and ||W^T S_- W|| (eigvalsh), which bound
    every Hessian W^T diag(f'(alpha W x)) W, and is below ||W||^2 max |f'| when the channels' slopes differ.
    Slopes of 1e21 (a tampered file) too, whose squares overflow float32: the estimate took their scale and failed
    with NumPy's "Eigenvalues did not converge"."""
    reg = toy_ridge(family, seed=10, steepness=steepness)
    shape = (9, 10)
    W = reg.bank.operator(shape)
    dense = np.stack([W(e.reshape(shape)).ravel() for e in np.eye(shape[0] * shape[1])], axis=1)
    channel_slopes = np.diff(reg.profile.coefficients, axis=1) / reg.profile.grid_step
    per_pixel = dense.shape[0] // reg.bank.channels
    extremes = [np.linalg.eigvalsh(dense.T @ (np.repeat(np.maximum(s, 0), per_pixel)[:, None] * dense))[-1]
                for s in (channel_slopes.max(axis=1), -channel_slopes.min(axis=1))]
    bound = reg.curvature_bound(shape)
    # an estimate with its margin (the estimate in float32, to about 1e-6)
    assert max(extremes) <= bound <= NORM_SAFETY**2 * max(extremes) * (1 + 1e-5)
    assert bound < np.linalg.norm(dense, 2) ** 2 * np.abs(channel_slopes).max()
    rng = np.random.default_rng(11)
    for _ in range(5):  # and the Hessian at random points, from its diagonal of slopes
        x = rng.standard_normal(shape)
        slopes_at_x = reg.profile.derivative(reg.scale(0.03) * W(x)).ravel()
        hessian = dense.T @ (slopes_at_x[:, None] * dense)
        assert np.abs(np.linalg.eigvalsh(hessian)).max() <= bound


def test_crr_denoising_reaches_a_stationary_point():
    reg = toy_ridge("crr", seed=6)
    rng = np.random.default_rng(7)
    y = np.kron(rng.random((3, 3)), np.ones((5, 5))) + 0.05 * rng.standard_normal((15, 15))
    sigma = 0.05
    result = adareg.solve(Identity(y.shape), y, reg, sigma=sigma, tol=1e-10, max_iter=5000, precision="float64")
    assert result.converged
    gradient = result.x - y + reg.lam(sigma) * reg.at(sigma).grad(result.x)
    assert np.linalg.norm(gradient) <= 1e-6 * np.linalg.norm(y)


def test_wcrr_deblurring_with_bounds_runs():
    reg = toy_ridge("wcrr", seed=8)
    rng = np.random.default_rng(9)
    x = np.kron(rng.random((3, 3)), np.ones((5, 5)))
    H = Blur(np.ones((3, 3)) / 9, x.shape, boundary="reflect")
    result = adareg.solve(H, H(x), reg, lam=0.01, sigma=0.02, bounds=(0, 1), max_iter=200)
    assert result.x.min() >= 0 and result.x.max() <= 1
    objective = result.history["objective"]  # L-BFGS's line search needs it
    assert np.isfinite(objective).all() and np.all(np.diff(objective) <= 1e-6 * abs(objective[0]))


def test_unbounded_wcrr_warns_where_the_objective_has_no_minimiser():
    """A profile ending in a falling segment: phi -> -inf, so with a null space in H the objective is unbounded."""
    toy = toy_ridge("wcrr", seed=8)
    h, t0 = toy.profile.grid_step, toy.profile.grid_min

    def with_table(table: np.ndarray) -> Ridge:
        return Ridge("wcrr", toy.bank, LinearSpline(table, t0, h), toy.scale, toy.lam, toy.sigma_range)

    reg = with_table(clamped_table(toy.profile.coefficients, h, lower=-1.0, grid_min=t0, bounded=True))
    table = reg.profile.coefficients.copy()
    table[0, -1] = table[0, -2] - 0.5 * h  # last slope -0.5
    falling = with_table(table)
    assert reg.bounded_below and not falling.bounded_below
    # the potential of channel 0 far beyond the grid, independently: F(z) -> -infinity
    far = np.full((reg.bank.channels, 1, 1), 1e4)
    assert falling.profile.integral(far)[0, 0, 0] < -1e6
    x = np.zeros((12, 12))
    mask = adareg.operators.Diagonal((np.arange(144) % 2).reshape(12, 12).astype(float))  # half the pixels
    with pytest.warns(UserWarning, match="unbounded below") as record:
        adareg.solve(mask, x, falling, lam=0.01, sigma=0.02, max_iter=3)
    assert [w.filename for w in record if "unbounded below" in str(w.message)] == [__file__]  # the user's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adareg.solve(mask, x, falling, lam=0.01, sigma=0.02, bounds=(0, 1), max_iter=3)
        adareg.solve(mask, x, reg, lam=0.01, sigma=0.02, max_iter=3)
        adareg.solve(Identity(x.shape), x, falling, sigma=0.02, max_iter=3)


def test_crr_needs_convex_profiles():
    reg = toy_ridge("wcrr", seed=10)
    with pytest.raises(ValueError, match="non-decreasing"):
        Ridge("crr", reg.bank, reg.profile, reg.scale, reg.lam, reg.sigma_range)


@pytest.mark.parametrize("model", ["crr", "wcrr"])
def test_a_faint_image_is_denoised_in_float32_as_in_float64(model):
    # the float32 potential of responses far below the spline's knot spacing was a difference of two terms of
    # order h |a|: at this scale L-BFGS stopped after one iteration, "converged", at x = y (40 % from the minimiser)
    y = 1e-9 * np.random.default_rng(0).random((24, 24))
    reg = adareg.load(model)
    single = adareg.solve(Identity(y.shape), y, reg, sigma=0.05)
    double = adareg.solve(Identity(y.shape), y, reg, sigma=0.05, precision="float64", tol=1e-7)
    assert single.converged and double.converged
    assert np.linalg.norm(single.x - double.x) <= 1e-4 * np.linalg.norm(double.x)
    assert np.linalg.norm(double.x - y) >= 0.1 * np.linalg.norm(y)  # the prior does move a faint image


@pytest.mark.parametrize("sigma_range, words", [
    ((0, 30), r"must satisfy 0 <= low <= high <= 1 .* got \(0, 30\)"),  # 0-255 units: lam clamped
    ((0.1, 0.0), r"must satisfy .* got \(0.1, 0.0\)"),  # every sigma refused at .at()
    ((0, 0.05, 0.1), r"must be a pair \(low, high\) of noise levels, got \(0, 0.05, 0.1\)"),  # third dropped
    ((0,), r"must be a pair"),  # IndexError
    ((float("nan"), 0.1), r"must be a pair .* must be finite"),
])
def test_the_trained_range_is_checked_by_the_constructors(sigma_range, words):
    crr = adareg.load("crr")
    with pytest.raises(ValueError, match=f"^crr: sigma_range {words}"):
        Ridge("crr", crr.bank, crr.profile, crr.scale, crr.lam, sigma_range)


@pytest.mark.parametrize("part, value, words", [
    ("bank", None, "bank must be a FilterBank, got NoneType"),
    ("profile", np.ones((4, 21)), "profile must be a LinearSpline, got ndarray"),  # its coefficients, unwrapped
    ("scale", 0.5, "scale must be a SigmaProfile, got float"),
    ("lam", 0.01, "lam must be a SigmaProfile, got float"),
])
def test_parts_of_another_type_are_named(part, value, words):
    """Each failed inside NumPy or with an AttributeError that named no argument."""
    crr = adareg.load("crr")
    parts = dict(bank=crr.bank, profile=crr.profile, scale=crr.scale, lam=crr.lam) | {part: value}
    with pytest.raises(TypeError, match=f"^wcrr: {words}$"):
        Ridge("wcrr", sigma_range=crr.sigma_range, **parts)


def test_sigma_profiles_take_real_numbers():
    lam = adareg.load("crr").lam
    with pytest.raises(TypeError, match="^lam: sigma must be a real number, got '0.05'"):
        lam("0.05")  # read as 0.05
    with pytest.raises(ValueError, match="^lam: sigma must be finite, got nan"):
        lam(float("nan"))
    # a level in 0-255 units was held at the last knot's value, -3 at the first's (an audit, 2026-12-06)
    with pytest.raises(ValueError, match=r"^lam: sigma must be a noise level in \[0, 1\], the intensity scale, got "
                                         r"15 \(in 0-255 units\? 15 / 255 = 0.05882\)"):
        lam(15)
    with pytest.raises(ValueError, match=r"^lam: sigma must be a noise level in \[0, 1\], .* got -3$"):
        lam(-3)
    assert lam(1.0) == lam(float(lam.knots[-1]))  # within [0, 1], beyond the knots: their end value, as documented


def test_a_ridge_objective_names_what_it_cannot_evaluate():
    """A list raised AttributeError ('list' object has no attribute 'shape'), a complex image a spline's error; a
    float16 one named the bank's Conv2d, and a 1-D one was a TypeError (the adaptive models' is a ValueError)."""
    objective = adareg.load("crr").at(0.05)
    assert repr(objective) == "crr at sigma 0.05 (12.8/255)"
    for x, words in (([[0.5] * 8] * 8, "got list"), (np.full((8, 8), 0.5 + 0j), "got complex128"),
                     (np.full((8, 8), 0.5, dtype=np.float16), "got float16")):
        with pytest.raises(TypeError, match=rf"^crr: x must be a real image \(float32 or float64, .*{words}$"):
            objective.value(x)
    with pytest.raises(ValueError, match=r"^crr: x must be an image \(\.\.\., H, W\), got shape \(8,\)$"):
        objective.value(np.full(8, 0.5))
