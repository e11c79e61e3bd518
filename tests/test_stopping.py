"""Stopping rules: their arguments are checked when the rule is made, not when a solve uses it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adareg.stopping import AnyOf, MaxIterations, Progress, RelativeChange, Residual, WallTime


@pytest.mark.parametrize("rule", [RelativeChange, Residual])
def test_a_tolerance_is_a_finite_non_negative_real_number(rule):
    name = rule.__name__
    with pytest.raises(ValueError, match=f"{name}: tol must be finite, got inf"):
        rule(math.inf)
    with pytest.raises(ValueError, match=f"{name}: tol must be finite, got nan"):
        rule(math.nan)
    with pytest.raises(ValueError, match=f"{name}: tol must be non-negative, got -0.001"):
        rule(-1e-3)
    for bad in (True, "1e-3", None, np.array([1e-3])):
        with pytest.raises(TypeError, match=f"{name}: tol must be a real number"):
            rule(bad)
    assert rule(np.float32(0.5)).tol == 0.5 and type(rule(np.float32(0.5)).tol) is float
    never = rule(0)  # 0 fires only where nothing moved
    assert never.check(Progress(1, 0.0, relative_change=1e-300, residual=1e-300)) is None
    assert never.check(Progress(1, 0.0, relative_change=0.0, residual=0.0)) is never


def test_a_wall_time_is_a_positive_real_number():
    for bad in ("5", True, None):
        with pytest.raises(TypeError, match="WallTime: seconds must be a real number"):
            WallTime(bad)
    for bad, words in ((0, "positive, got 0"), (-1, "positive, got -1"), (math.nan, "finite, got nan")):
        with pytest.raises(ValueError, match=f"WallTime: seconds must be {words}"):
            WallTime(bad)
    rule = WallTime(np.int64(5))
    assert rule.seconds == 5.0 and rule.check(Progress(1, 4.9)) is None and rule.check(Progress(1, 5.0)) is rule


def test_any_of_takes_stopping_rules_only():
    for bad in (5, "MaxIterations(5)", None):
        with pytest.raises(TypeError, match="AnyOf: rules must be stopping rules"):
            AnyOf(MaxIterations(3), bad)
    rule = AnyOf(MaxIterations(3), AnyOf(RelativeChange(1e-3), WallTime(9)))
    assert repr(rule) == "MaxIterations(3) | RelativeChange(0.001) | WallTime(9 s)"
    assert rule.check(Progress(3, 0.0)) is rule.rules[0]

