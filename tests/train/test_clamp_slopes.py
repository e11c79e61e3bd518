"""The profile parameterisation of the ridges: slopes clamped below, zero at 0, bounded ends, idempotent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adareg.regularizers.splines import LinearSpline, is_bounded_below, weak_convexity
from adareg_train.families import clamp_slopes

GRID_MIN, GRID_STEP = -1.3, 0.25  # 0 is not a knot


def raw_table(seed: int, channels: int = 3, knots: int = 11) -> torch.Tensor:
    return torch.from_numpy(4 * np.random.default_rng(seed).standard_normal((channels, knots)))


@pytest.mark.parametrize("lower", [0.0, -1.0])
@pytest.mark.parametrize("seed", range(3))
def test_slopes_bounds_zero_and_ends(seed, lower):
    raw = raw_table(seed)
    table = clamp_slopes(raw, GRID_STEP, lower=lower, grid_min=GRID_MIN).numpy()
    slopes = np.diff(table, axis=1) / GRID_STEP
    assert slopes.min() >= lower - 1e-12
    # the interior slopes are those of the raw table, clamped
    clamped = np.maximum(np.diff(raw.numpy(), axis=1) / GRID_STEP, lower)
    np.testing.assert_allclose(slopes[:, 1:-1], clamped[:, 1:-1], rtol=0, atol=1e-12)
    spline = LinearSpline(table, GRID_MIN, GRID_STEP)
    np.testing.assert_allclose(spline(np.zeros((3, 1, 1))), 0.0, atol=1e-13)
    # the end segments rise away from 0, so every potential is bounded below
    assert np.all(slopes[:, [0, -1]] >= 0) and np.all(table[:, 0] <= 0) and np.all(table[:, -1] >= 0)
    assert is_bounded_below(spline) and weak_convexity(spline) <= -lower + 1e-12


@pytest.mark.parametrize("lower", [0.0, -1.0, None])
def test_idempotent(lower):
    """A table that satisfies the constraints comes back unchanged: a model set from a file exports that file."""
    table = clamp_slopes(raw_table(7), GRID_STEP, lower=lower, grid_min=GRID_MIN)
    again = clamp_slopes(table, GRID_STEP, lower=lower, grid_min=GRID_MIN)
    np.testing.assert_allclose(again.numpy(), table.numpy(), rtol=0, atol=1e-12)


def test_a_clamped_slope_passes_no_gradient():
    """The table depends on the raw one through its slopes only; a clamped slope's raw pair gets nothing from it."""
    weight = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
    for lower, middle_passes in ((0.0, False), (None, True)):
        raw = torch.tensor([[0.0, 1.0, 0.5, 2.0]], dtype=torch.float64, requires_grad=True)  # middle slope -0.5
        torch.sum(weight * clamp_slopes(raw, 1.0, lower=lower, grid_min=-1.5)).backward()
        # d/d raw_1 + d/d raw_0 is the derivative along the middle slope
        assert (abs(float(raw.grad[0, 0] + raw.grad[0, 1])) > 0.5) == middle_passes
