"""LinearSpline profiles against independent computations: numpy.interp, finite differences, quad."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import integrate, interpolate

import adareg
from adareg import threads
from adareg.regularizers.splines import (
    LinearSpline,
    is_bounded_below,
    is_convex,
    slopes,
    weak_convexity,
)
from tests.conftest import DEVICES, TOLERANCE

GRID_MIN, GRID_STEP, KNOTS, CHANNELS = -1.3, 0.25, 11, 3  # 0 is not a knot: t_k = -1.3 + 0.25 k


def random_coefficients(seed: int, channels: int = CHANNELS, knots: int = KNOTS) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((channels, knots))


def clamped_table(raw: np.ndarray, grid_step: float, *, lower: float, upper: float = np.inf,
                  grid_min: float | None = None, bounded: bool = False) -> np.ndarray:
    """A table whose slopes are those of ``raw`` clamped to ``[lower, upper]``, keeping each channel's mean.

    With ``grid_min`` (the first knot) each channel is shifted so that ``f_c(0) = 0``; with
    ``bounded`` its end segments are then made to rise away from 0, as the training's
    ``adareg_train.families.clamp_slopes`` does.
    """
    d = np.clip(np.diff(raw, axis=1) / grid_step, lower, upper)
    table = np.concatenate([np.zeros((len(raw), 1)), grid_step * np.cumsum(d, axis=1)], axis=1)
    table += np.mean(raw - table, axis=1, keepdims=True)
    if grid_min is not None:
        table -= LinearSpline(table, grid_min, grid_step)(np.zeros((len(raw), 1, 1)))[:, 0]
    if bounded:
        table[:, -1] = np.maximum(np.maximum(table[:, -1], table[:, -2]), 0.0)
        table[:, 0] = np.minimum(np.minimum(table[:, 0], table[:, 1]), 0.0)
    return table


def reference_value(t: np.ndarray, coefficients: np.ndarray, grid_min: float, grid_step: float) -> np.ndarray:
    """f_c(t) for one channel's coefficients: numpy.interp inside, the end segments' lines outside."""
    knots = grid_min + grid_step * np.arange(len(coefficients))
    out = np.interp(t, knots, coefficients)
    first = (coefficients[1] - coefficients[0]) / grid_step
    last = (coefficients[-1] - coefficients[-2]) / grid_step
    out = np.where(t < knots[0], coefficients[0] + first * (t - knots[0]), out)
    return np.where(t > knots[-1], coefficients[-1] + last * (t - knots[-1]), out)


def scipy_reference(spline: LinearSpline, z: np.ndarray, method: str, axis: int = -3) -> np.ndarray:
    """``method`` of every channel by SciPy's degree-1 B-spline (extrapolating its end pieces) in float64.

    The integral is the B-spline's exact antiderivative minus its value at 0.
    """
    z = np.moveaxis(np.asarray(z, dtype=np.float64), axis, 0)
    out = np.empty_like(z)
    for c, coefficients in enumerate(spline.coefficients):
        f = interpolate.make_interp_spline(spline.knots, coefficients, k=1)  # extrapolate=True by default
        if method == "value":
            out[c] = f(z[c])
        elif method == "derivative":
            out[c] = f.derivative()(z[c])
        else:
            F = f.antiderivative()
            out[c] = F(z[c]) - F(0.0)
    return np.moveaxis(out, 0, axis)


def channel_major(values_per_channel: np.ndarray, spatial: tuple[int, ...]) -> np.ndarray:
    return values_per_channel.reshape(values_per_channel.shape[0], *spatial)


# ----------------------------------------------------------- values
@pytest.mark.parametrize("seed", range(3))
def test_value_at_and_between_knots_matches_numpy_interp(seed):
    a = random_coefficients(seed)
    spline = LinearSpline(a, GRID_MIN, GRID_STEP)
    rng = np.random.default_rng(100 + seed)
    knots = GRID_MIN + GRID_STEP * np.arange(KNOTS)
    inside = rng.uniform(knots[0], knots[-1], (CHANNELS, 200))
    t = np.concatenate([np.tile(knots, (CHANNELS, 1)), inside], axis=1)
    out = spline(channel_major(t, (t.shape[1], 1)))
    expected = np.stack([np.interp(t[c], knots, a[c]) for c in range(CHANNELS)])
    np.testing.assert_allclose(out.reshape(CHANNELS, -1), expected, rtol=0, atol=1e-13)
    # at the knots the coefficients themselves
    np.testing.assert_allclose(out.reshape(CHANNELS, -1)[:, :KNOTS], a, rtol=0, atol=1e-13)


def test_value_outside_the_grid_continues_the_end_segments_linearly():
    a = random_coefficients(4)
    spline = LinearSpline(a, GRID_MIN, GRID_STEP)
    knots = spline.knots
    below = knots[0] - np.array([1e-3, 0.1, 1.0, 7.5, 1e3])
    above = knots[-1] + np.array([1e-3, 0.1, 1.0, 7.5, 1e3])
    for t in (below, above):
        z = np.tile(t, (CHANNELS, 1))[:, :, None]
        first = a[:, 1:2] - a[:, :1]
        last = a[:, -1:] - a[:, -2:-1]
        line = a[:, :1] + first / GRID_STEP * (t - knots[0]) if t is below else \
            a[:, -1:] + last / GRID_STEP * (t - knots[-1])
        np.testing.assert_allclose(spline.value(z)[..., 0], line, rtol=1e-12, atol=1e-12)
        slope = (first if t is below else last) / GRID_STEP
        np.testing.assert_allclose(spline.derivative(z)[..., 0], np.broadcast_to(slope, line.shape), rtol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_derivative_matches_central_differences_away_from_knots(seed):
    a = random_coefficients(seed)
    spline = LinearSpline(a, GRID_MIN, GRID_STEP)
    rng = np.random.default_rng(seed)
    t = rng.uniform(GRID_MIN - 2, spline.grid_max + 2, (CHANNELS, 300))
    eps = 1e-6
    distance = np.abs((t - GRID_MIN) / GRID_STEP - np.round((t - GRID_MIN) / GRID_STEP)) * GRID_STEP
    t = np.where(distance < 10 * eps, t + 20 * eps, t)  # keep the stencil inside one segment
    z = channel_major(t, (300,))
    finite_difference = (spline.value(z + eps, axis=0) - spline.value(z - eps, axis=0)) / (2 * eps)
    np.testing.assert_allclose(spline.derivative(z, axis=0), finite_difference, rtol=1e-7, atol=1e-7)


def test_derivative_at_a_knot_is_the_slope_to_its_right():
    a = random_coefficients(5)
    spline = LinearSpline(np.round(a, 3), 0.0, 0.5)  # knots 0, 0.5, 1, ...: exact in binary
    knots = spline.knots
    z = np.tile(knots, (CHANNELS, 1))[:, :, None]
    right = np.diff(spline.coefficients, axis=1) / 0.5
    expected = np.concatenate([right, right[:, -1:]], axis=1)  # the last knot: the last segment's slope
    np.testing.assert_array_equal(spline.derivative(z)[..., 0], expected)


# ----------------------------------------------------------- integral
@pytest.mark.parametrize("seed", range(3))
def test_integral_matches_quadrature(seed):
    a = random_coefficients(seed)
    spline = LinearSpline(a, GRID_MIN, GRID_STEP)
    rng = np.random.default_rng(seed)
    t = np.concatenate([rng.uniform(GRID_MIN - 1.5, spline.grid_max + 1.5, (CHANNELS, 12)),
                        np.tile(spline.knots[[0, 4, -1]], (CHANNELS, 1))], axis=1)
    out = spline.integral(channel_major(t, (t.shape[1], 1, 1)), axis=0)[..., 0, 0]
    for c in range(CHANNELS):
        for j, tj in enumerate(t[c]):
            breaks = [k for k in spline.knots if min(0, tj) < k < max(0, tj)]
            expected, _ = integrate.quad(reference_value, 0.0, tj, args=(a[c], GRID_MIN, GRID_STEP),
                                         points=breaks or None, epsabs=1e-13, epsrel=1e-13, limit=200)
            assert abs(out[c, j] - expected) <= 1e-11 * max(1.0, abs(expected)), (c, tj, out[c, j], expected)


@pytest.mark.parametrize("seed", range(3))
def test_integral_differentiates_to_the_value(seed):
    a = random_coefficients(seed)
    spline = LinearSpline(a, GRID_MIN, GRID_STEP)
    t = np.random.default_rng(seed).uniform(GRID_MIN - 2, spline.grid_max + 2, (CHANNELS, 400))
    z = channel_major(t, (20, 20))
    eps = 1e-5
    difference = (spline.integral(z + eps) - spline.integral(z - eps)) / (2 * eps)
    # the central difference of a piecewise quadratic is exact up to O(eps * slope jump) near knots
    np.testing.assert_allclose(difference, spline.value(z), rtol=0, atol=1e-4)
    far = np.abs(spline.value(z + eps) + spline.value(z - eps) - 2 * spline.value(z)) < 1e-12  # no knot inside
    np.testing.assert_allclose(difference[far], spline.value(z)[far], rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("grid_min", [GRID_MIN, -1.0, 0.3, -5.0])  # 0 between knots, a knot, below, above the grid
def test_integral_vanishes_at_zero(grid_min):
    spline = LinearSpline(random_coefficients(6), grid_min, GRID_STEP)
    for dtype in (np.float64, np.float32):
        out = spline.integral(np.zeros((2, CHANNELS, 4, 4), dtype=dtype))
        assert np.max(np.abs(out)) <= 10 * np.finfo(dtype).eps * np.max(np.abs(spline.coefficients))


@pytest.mark.parametrize("grid_min, zero_at_zero", [(-1.0, True), (-1.0, False), (GRID_MIN, False), (0.3, False),
                                                    (-5.0, False)])  # 0 a knot, between knots, below, above the grid
def test_responses_near_zero_keep_their_relative_precision_in_float32(grid_min, zero_at_zero):
    # On the segment that holds 0 (on z's side of a knot there) f(z) = f(0) + s z and F(z) = z (f(0) + s z / 2).
    # Before, F was a difference of two terms of order h |a| (a shipped ridge model's potential was 2 % off for
    # responses of 1e-10), and a tiny negative z took the segment right of a knot at 0
    a = np.random.default_rng(9).standard_normal((CHANNELS, KNOTS))
    if zero_at_zero:
        a[:, 4] = 0.0  # f(0) = 0 exactly, as in the shipped models: the results are s z and s z^2 / 2
    spline = LinearSpline(a, grid_min, GRID_STEP)
    z = GRID_STEP * np.array([sign * 10.0**-e for e in (3, 6, 9, 12) for sign in (1, -1)])
    position = -grid_min / GRID_STEP  # of 0 on the grid, in steps
    segment = np.where(z > 0, np.floor(position), np.ceil(position) - 1).clip(0, KNOTS - 2).astype(int)
    s = (a[:, segment + 1] - a[:, segment]) / GRID_STEP  # (channels, values)
    f0 = np.stack([reference_value(np.zeros(1), a[c], grid_min, GRID_STEP) for c in range(CHANNELS)])
    values = channel_major(np.tile(z, (CHANNELS, 1)), (len(z), 1)).astype(np.float32)
    value, integral = spline.value_and_integral(values)
    np.testing.assert_allclose(value.reshape(CHANNELS, -1), f0 + s * z, rtol=1e-5, atol=0)
    np.testing.assert_allclose(integral.reshape(CHANNELS, -1), z * (f0 + s * z / 2), rtol=1e-5, atol=0)


@pytest.mark.parametrize("toward", [0.0, -2.0])
def test_a_zero_within_rounding_of_a_knot_is_that_knot(toward):
    # A grid rescaled by alpha put 0 at 19.9999999999999964 steps: in float32 the offset 0.99999... rounded to 1,
    # so every response below about 6e-8 steps, negative ones included, took the segment right of the knot
    # (a shipped crr's gradient was 1 % off for responses of 1e-10, and its float32 denoise 0.2 % off)
    a = np.random.default_rng(4).standard_normal((CHANNELS, KNOTS))
    a[:, 4] = 0.0
    grid_min = np.nextafter(np.nextafter(-4 * GRID_STEP, toward), toward)  # 0 two units of rounding off knot 4
    spline = LinearSpline(a, float(grid_min), GRID_STEP)
    z = GRID_STEP * np.array([sign * 10.0**-e for e in (3, 6, 8, 12) for sign in (1, -1)])
    segment = np.where(z > 0, 4, 3)
    s = (a[:, segment + 1] - a[:, segment]) / GRID_STEP  # (channels, values)
    for dtype in (np.float32, np.float64):
        values = channel_major(np.tile(z, (CHANNELS, 1)), (len(z), 1)).astype(dtype)
        value, integral = spline.value_and_integral(values)
        np.testing.assert_allclose(value.reshape(CHANNELS, -1), s * z, rtol=1e-5, atol=0, err_msg=str(dtype))
        np.testing.assert_allclose(integral.reshape(CHANNELS, -1), s * z**2 / 2, rtol=1e-5, atol=0, err_msg=str(dtype))


def test_value_and_integral_agree_with_the_separate_calls():
    spline = LinearSpline(random_coefficients(7), GRID_MIN, GRID_STEP)
    z = np.random.default_rng(7).uniform(-3, 3, (2, CHANNELS, 5, 6))
    value, integral = spline.value_and_integral(z)
    np.testing.assert_array_equal(value, spline.value(z))
    np.testing.assert_array_equal(integral, spline.integral(z))


# ----------------------------------------------------------- convexity
def fine_grid(spline: LinearSpline, n: int = 4001) -> np.ndarray:
    return np.linspace(spline.grid_min - 1.0, spline.grid_max + 1.0, n)


@pytest.mark.parametrize("seed", range(4))
def test_clamped_nonnegative_slopes_give_convex_potentials(seed):
    a = clamped_table(3 * random_coefficients(seed), GRID_STEP, lower=0.0)
    spline = LinearSpline(a, GRID_MIN, GRID_STEP)
    assert is_convex(spline) and weak_convexity(spline) == 0.0
    t = fine_grid(spline)
    F = spline.integral(np.tile(t, (CHANNELS, 1, 1)))[:, 0]
    second = F[:, 2:] + F[:, :-2] - 2 * F[:, 1:-1]
    assert np.min(second) >= -1e-12 * max(1.0, np.max(np.abs(F)))
    # strictly convex: still 0, not a negative "weak convexity"
    strict = LinearSpline(clamped_table(random_coefficients(seed), GRID_STEP, lower=0.5), GRID_MIN, GRID_STEP)
    assert is_convex(strict) and weak_convexity(strict) == 0.0
    # and an unconstrained table generally is not convex
    assert not is_convex(LinearSpline(3 * random_coefficients(seed), GRID_MIN, GRID_STEP))


@pytest.mark.parametrize("rho", [0.5, 2.0])
@pytest.mark.parametrize("seed", range(3))
def test_weakly_convex_potentials_satisfy_the_midpoint_bound(seed, rho):
    a = clamped_table(4 * random_coefficients(seed), GRID_STEP, lower=-rho)
    spline = LinearSpline(a, GRID_MIN, GRID_STEP)
    measured = weak_convexity(spline)
    assert measured <= rho * (1 + 1e-12)
    rng = np.random.default_rng(seed)
    lo, hi = GRID_MIN - 2, spline.grid_max + 2
    x, y = rng.uniform(lo, hi, (2, CHANNELS, 2000))
    F = lambda t: spline.integral(t[:, :, None], axis=0)[:, :, 0]
    gap = F(x) + F(y) - 2 * F((x + y) / 2) + measured / 4 * (y - x) ** 2
    assert np.min(gap) >= -1e-10
    # the bound is attained inside a segment of the steepest descending slope
    c, k = np.unravel_index(np.argmin(slopes(spline)), (CHANNELS, KNOTS - 1))
    left = spline.knots[k]
    x = np.full((CHANNELS, 1), left + 0.1 * GRID_STEP)
    y = np.full((CHANNELS, 1), left + 0.9 * GRID_STEP)
    midpoint = F(x) + F(y) - 2 * F((x + y) / 2)
    np.testing.assert_allclose(midpoint[c, 0], -measured / 4 * (y[c, 0] - x[c, 0]) ** 2, rtol=1e-9)


def test_slopes_are_the_second_derivative_of_the_potential():
    spline = LinearSpline(random_coefficients(8), GRID_MIN, GRID_STEP)
    mid = spline.knots[:-1] + GRID_STEP / 2
    eps = 1e-3
    F = lambda t: spline.integral(np.tile(t, (CHANNELS, 1))[:, :, None])[..., 0]
    second = (F(mid + eps) + F(mid - eps) - 2 * F(mid)) / eps**2
    np.testing.assert_allclose(slopes(spline), second, rtol=1e-6, atol=1e-6)
    assert weak_convexity(spline) == pytest.approx(max(0.0, -np.min(second)), rel=1e-6)


# ----------------------------------------------------------- shapes, dtypes, errors
@pytest.mark.parametrize("one_channel_per_block", [False, True])
@pytest.mark.parametrize("method", ["value", "derivative", "integral"])
def test_shapes_axes_and_batches(method, one_channel_per_block, monkeypatch):
    if one_channel_per_block:  # blocks of channels, on threads where there are several cores
        monkeypatch.setattr(threads, "BLOCK_BYTES", 8)
    spline = LinearSpline(random_coefficients(11), GRID_MIN, GRID_STEP)
    rng = np.random.default_rng(11)
    single = rng.uniform(-3, 3, (CHANNELS, 6, 7))
    batch = rng.uniform(-3, 3, (2, CHANNELS, 6, 7))
    f = getattr(spline, method)
    assert f(single).shape == single.shape
    np.testing.assert_array_equal(f(batch), np.stack([f(b) for b in batch]))
    # the channel axis anywhere: move it and back
    moved = np.moveaxis(batch, 1, -1)
    np.testing.assert_array_equal(np.moveaxis(f(moved, axis=-1), -1, 1), f(batch))
    np.testing.assert_array_equal(f(batch, axis=1), f(batch))
    # channel c uses function c, whatever the axis
    np.testing.assert_allclose(f(moved, axis=-1), scipy_reference(spline, moved, method, axis=-1),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", ["value", "derivative", "integral"])
def test_precision_is_kept_and_input_not_mutated(method, dtype):
    spline = LinearSpline(random_coefficients(12), GRID_MIN, GRID_STEP)
    z64 = np.random.default_rng(12).uniform(-3, 3, (2, CHANNELS, 8, 8))
    z = z64.astype(dtype)
    before = z.copy()
    out = getattr(spline, method)(z)
    assert out.dtype == dtype and out.shape == z.shape
    np.testing.assert_array_equal(z, before)
    reference = scipy_reference(spline, z, method)
    scale = np.max(np.abs(reference))
    if method == "derivative":  # piecewise constant: a float32 rounding may pick the neighbouring segment
        assert np.mean(np.abs(out - reference) > TOLERANCE[np.dtype(dtype)] * scale) < 0.01
    else:
        np.testing.assert_allclose(out, reference, rtol=0, atol=TOLERANCE[np.dtype(dtype)] * scale)


def test_nan_in_nan_out_without_warnings():
    spline = LinearSpline(random_coefficients(13), GRID_MIN, GRID_STEP)
    z = np.zeros((2, CHANNELS, 2, 2))
    z[1, 1, 0, 1] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for f in (spline.value, spline.derivative, spline.integral):
            out = f(z)
            assert np.isnan(out[1, 1, 0, 1]) and np.sum(np.isnan(out)) == 1


def test_huge_and_infinite_inputs_follow_the_linear_extension():
    a = random_coefficients(13)
    a[:, -1] = a[:, -2] + 1.0  # last slopes positive: f(+inf) = +inf, F(+inf) = +inf
    spline = LinearSpline(a, GRID_MIN, GRID_STEP)
    for t in (1e150, np.inf):  # F(1e150) is about 1e300: no overflow yet
        z = np.full((CHANNELS, 1, 1), t)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            np.testing.assert_array_equal(spline.derivative(z)[:, 0, 0], slopes(spline)[:, -1])
            assert np.all(spline.value(z) > 1e149) and np.all(spline.integral(z) > 1e299)


@pytest.mark.parametrize("bad, error, match", [
    (np.array([[0.0, np.nan, 1.0]]), ValueError, "NaN"),
    (np.array([[0.0, np.inf, 1.0]]), ValueError, "NaN or Inf"),
    (np.zeros(5), ValueError, r"shape \(C, K\)"),
    (np.zeros((2, 3, 4)), ValueError, r"shape \(C, K\)"),
    (np.zeros((2, 1)), ValueError, "K >= 2"),
    (np.zeros((0, 4)), ValueError, "C >= 1"),
    (np.zeros((2, 4), dtype=complex), TypeError, "real"),
])
def test_bad_coefficients_are_rejected(bad, error, match):
    with pytest.raises(error, match=match):
        LinearSpline(bad, 0.0, 0.1)


@pytest.mark.parametrize("grid_min, grid_step", [(0.0, 0.0), (0.0, -0.1), (0.0, np.nan), (0.0, np.inf), (np.nan, 0.1)])
def test_bad_grids_are_rejected(grid_min, grid_step):
    with pytest.raises(ValueError, match="grid_"):
        LinearSpline(np.zeros((2, 4)), grid_min, grid_step)


@pytest.mark.parametrize("grid_min, error", [("0", TypeError), (np.array([0.0]), TypeError), (True, TypeError)])
def test_a_grid_start_must_be_a_real_number(grid_min, error):
    # "0" was taken as 0.0; a 1-element array failed with NumPy's conversion message
    with pytest.raises(error, match="LinearSpline: grid_min must be a real number"):
        LinearSpline(np.zeros((2, 4)), grid_min, 0.1)


@pytest.mark.parametrize("coefficients, grid_min, grid_step", [
    ([[0.0, 1.0, 2.0]], 0.0, 1e-320),  # slopes beyond float64: inf or NaN with only NumPy's RuntimeWarning
    ([[1e300, 1e300, 1e300]], 0.0, 1e10),  # integrals beyond float64
    # within float64 but not float32, to which the tables are copied for float32 work: inf there, then a
    # solve's garbage (5 dB) or NumPy's "Eigenvalues did not converge"
    ([[0.0, 1.0, 2.0]], 0.0, 1e-45),  # slopes of 1e45
    ([[0.0, 1.0, 2.0]], -1e40, 0.2),  # intercepts of 5e40 (0 lies 5e40 steps off the grid)
    ([[1e32, 1e32, 1e32]], -1.0, 1.0),  # values beyond float32's largest times 1 / eps: no room for products
])
def test_grids_whose_tables_overflow_float32_are_rejected(coefficients, grid_min, grid_step):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"LinearSpline: slopes or integrals beyond 4e\+31, more than float32"):
            LinearSpline(coefficients, grid_min, grid_step)


def test_coefficients_are_copied_and_read_only():
    a = random_coefficients(14)
    spline = LinearSpline(a, GRID_MIN, GRID_STEP)
    z = np.full((CHANNELS, 1, 1), 0.1)
    before = spline(z)
    a[:] = 0
    np.testing.assert_array_equal(spline(z), before)
    with pytest.raises(ValueError):
        spline.coefficients[0, 0] = 1.0


def test_bad_inputs_are_rejected_with_the_expected_shape():
    spline = LinearSpline(random_coefficients(15), GRID_MIN, GRID_STEP)
    with pytest.raises(ValueError, match=rf"\(2, 4, 5, 5\).*expected {CHANNELS} channels"):
        spline(np.zeros((2, 4, 5, 5)))
    with pytest.raises(ValueError, match=r"\(5, 5\).*no channel axis"):
        spline(np.zeros((5, 5)))
    with pytest.raises(TypeError, match="real"):
        spline(np.zeros((CHANNELS, 2, 2), dtype=np.complex128))
    with pytest.raises(TypeError, match="dtype"):
        spline(np.zeros((CHANNELS, 2, 2), dtype=np.int64))
    with pytest.raises(TypeError, match="array"):
        spline([[0.0]] * CHANNELS)


# ----------------------------------------------------------- backends
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("device", DEVICES)
def test_backends_agree(device, dtype):
    spline = LinearSpline(random_coefficients(16, channels=5, knots=21), -2.0, 0.2)
    z = np.random.default_rng(16).uniform(-3, 3, (2, 5, 16, 16)).astype(dtype)
    zd = adareg.to_device(z, device)
    for method in ("value", "derivative", "integral"):
        out = getattr(spline, method)(zd)
        assert adareg.backend.device_of(out) == device and out.dtype == dtype and out.shape == z.shape
        reference = scipy_reference(spline, z, method)
        tol = TOLERANCE[np.dtype(dtype)] * np.max(np.abs(reference))
        if method == "derivative":  # a rounding may pick the neighbouring segment
            assert np.mean(np.abs(adareg.to_numpy(out) - reference) > tol) < 0.01
        else:
            np.testing.assert_allclose(adareg.to_numpy(out), reference, rtol=0, atol=tol)
    np.testing.assert_array_equal(adareg.to_numpy(zd), z)


@pytest.mark.parametrize("seed", range(6))
def test_bounded_below_matches_the_potential_far_out(seed):
    """is_bounded_below against F far beyond the grid; bounded=True keeps the weak convexity and bounds every F."""
    grid_max = GRID_MIN + (KNOTS - 1) * GRID_STEP
    far = np.array([GRID_MIN - 1e6, GRID_MIN - 1e3, grid_max + 1e3, grid_max + 1e6])
    for bounded in (False, True):
        a = clamped_table(4 * random_coefficients(seed), GRID_STEP, lower=-1.0, grid_min=GRID_MIN, bounded=bounded)
        spline = LinearSpline(a, GRID_MIN, GRID_STEP)
        F_far = spline.integral(np.tile(far, (CHANNELS, 1, 1)))[:, 0]
        F_grid = spline.integral(np.tile(spline.knots, (CHANNELS, 1, 1)))[:, 0]
        # unbounded: F falls like -z^2 or -|z| (far below the grid's values); bounded: it does not fall at all
        falls = np.any(F_far < F_grid.min(axis=1, keepdims=True) - 1.0, axis=1)
        assert is_bounded_below(spline) == (not falls.any())
        if bounded:
            assert not falls.any() and weak_convexity(spline) <= 1.0 + 1e-12
    # a flat end is bounded iff the potential does not keep falling along it
    flat = LinearSpline(np.array([[-1.0, 0.0, 1.0, 1.0], [-1.0, 0.0, -0.5, -0.5]]), -1.0, 1.0)
    assert not is_bounded_below(flat)
    assert is_bounded_below(LinearSpline(flat.coefficients[:1], -1.0, 1.0))


# ----------------------------------------------------------- rescaling
@pytest.mark.parametrize("alpha", [0.3, 2.5])
def test_rescaled_spline_is_the_profile_of_scaled_responses(alpha):
    spline = LinearSpline(random_coefficients(16), GRID_MIN, GRID_STEP)
    rescaled = spline.rescaled(alpha)
    z = np.random.default_rng(16).uniform(-4, 4, (2, CHANNELS, 5, 6))  # inside the grid and on both extensions
    np.testing.assert_allclose(rescaled.value(z), scipy_reference(spline, alpha * z, "value") / alpha,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rescaled.integral(z), scipy_reference(spline, alpha * z, "integral") / alpha**2,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(slopes(rescaled), slopes(spline), rtol=1e-12)  # g' = f'(alpha z)


@pytest.mark.parametrize("alpha", [0.0, -1.0, np.inf, np.nan])
def test_bad_rescaling_is_rejected(alpha):
    with pytest.raises(ValueError, match="alpha must be (positive|finite)"):
        LinearSpline(random_coefficients(17), GRID_MIN, GRID_STEP).rescaled(alpha)


def test_a_rescaling_or_an_axis_that_is_not_a_number_is_named():
    """rescaled("2") gave the spline scaled by 2 (float() of a string); axis=0.0 failed in a tuple index."""
    spline = LinearSpline(random_coefficients(17), GRID_MIN, GRID_STEP)
    for bad in ("2", np.array([2.0, 3.0])):
        with pytest.raises(TypeError, match="^LinearSpline.rescaled: alpha must be a real number"):
            spline.rescaled(bad)
    with pytest.raises(TypeError, match=r"^LinearSpline: axis must be an int, got 0\.0"):
        spline.value(np.zeros((spline.channels, 4, 4)), axis=0.0)


def test_more_segments_than_float32_indexes_are_rejected():
    with pytest.raises(ValueError, match=r"2\*\*24 segments"):
        LinearSpline(np.zeros((1, 2**24 + 2)), 0.0, 1.0)
