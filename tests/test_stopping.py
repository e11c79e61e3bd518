"""Stopping rules and measures: arguments checked when a rule is made, and the relative change of a batch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adareg import solve
from adareg.operators import Blur
from adareg.regularizers import TV
from adareg.stopping import (AnyOf, MaxIterations, Progress, RelativeChange, Residual, WallTime, check_finite_iterate,
                             default_rule, relative_change, stops, verdict)


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


def test_only_none_or_infinity_sets_no_time_limit():
    # a max_time of NaN or -inf set no limit (TV.prox, reweighting), where -1 and 0 were refused
    assert repr(default_rule(5, None)) == repr(default_rule(5, None, math.inf)) == "MaxIterations(5)"
    assert repr(default_rule(5, 1e-3, np.float64(2.0))) == "RelativeChange(0.001) | MaxIterations(5) | WallTime(2 s)"
    for bad in (math.nan, -math.inf, -1.0, 0):
        with pytest.raises(ValueError, match="WallTime: seconds must be"):
            default_rule(5, None, bad)
    v = np.random.default_rng(1).standard_normal((8, 8))
    with pytest.raises(ValueError, match="TV.prox: max_time must be finite, got nan"):
        TV((8, 8)).prox(v, 0.5, max_time=math.nan)


def test_any_of_takes_stopping_rules_only():
    for bad in (5, "MaxIterations(5)", None):
        with pytest.raises(TypeError, match="AnyOf: rules must be stopping rules"):
            AnyOf(MaxIterations(3), bad)
    rule = AnyOf(MaxIterations(3), AnyOf(RelativeChange(1e-3), WallTime(9)))
    assert repr(rule) == "MaxIterations(3) | RelativeChange(0.001) | WallTime(9 s)"
    assert rule.check(Progress(3, 0.0)) is rule.rules[0]
    with pytest.raises(ValueError, match="AnyOf: give at least one rule"):  # never fired: fista(stop=AnyOf()) hung
        AnyOf()


def test_the_relative_change_of_a_batch_is_that_of_its_most_changed_image():
    old = np.stack([np.full((2, 2), 100.0), np.full((2, 2), 0.01), np.zeros((2, 2))])
    new = old.copy()
    new[0] += 1.0  # ||change|| 2 of ||old|| 200: 0.01
    new[1] *= 1.5  # 0.5
    assert relative_change(new, old) == pytest.approx(np.sqrt(4.0 + 4 * 0.005**2) / np.linalg.norm(old))
    assert relative_change(new, old, batch_ndim=1) == pytest.approx(0.5)
    assert relative_change(old, old, batch_ndim=1) == 0.0  # the zero image stayed zero
    new[2, 0, 0] = 1e-9
    assert relative_change(new, old, batch_ndim=1) == math.inf  # a move from zero
    assert relative_change(new[:2].reshape(2, 1, 2, 2), old[:2].reshape(2, 1, 2, 2), 2) == pytest.approx(0.5)


def test_a_non_finite_iterate_is_named_but_a_move_from_zero_is_not():
    start, moved = np.zeros(4), np.ones(4)
    check_finite_iterate(relative_change(moved, start), moved, "solver")  # inf: a move from zero
    overflowed = np.array([1.0, np.inf, 0.0, 0.0])
    with pytest.raises(FloatingPointError, match="solver: the iterates diverged to NaN or Inf"):
        check_finite_iterate(relative_change(overflowed, moved), overflowed, "solver")
    with pytest.raises(FloatingPointError, match="solver: the iterates diverged"):
        check_finite_iterate(relative_change(overflowed, start), overflowed, "solver")


class _ZeroDimensional:
    """A 0-d array of another backend (e.g. CuPy's ``xp.all(...)``): a shape, a dtype and ``__bool__``."""

    def __init__(self, value, dtype, shape=()):
        self.shape, self.value = shape, value
        self.dtype = np.dtype(dtype) if isinstance(dtype, (str, type)) else dtype

    def __bool__(self):
        return bool(self.value)


class _NamedDtype:
    """A dtype of a library without NumPy dtypes, named as TensorFlow's are (``tf.bool.name == "bool"``)."""

    def __init__(self, name):
        self.name = name


@pytest.mark.parametrize("answer, expected", [
    (True, True), (np.True_, True), (np.array(True), True), (_ZeroDimensional(True, bool), True),
    (False, False), (np.False_, False), (np.array(False), False), (_ZeroDimensional(False, bool), False),
    # numbers and non-scalar arrays go on: a callback returning whatever its last call gave never stops a run
    (None, False), (1, False), (1.0, False), (np.float64(1), False), (np.array(1), False),
    (np.array([True]), False), (_ZeroDimensional(1, np.int64), False),
    (_ZeroDimensional(True, _NamedDtype("bool")), True), (_ZeroDimensional(True, _NamedDtype("int32")), False),
    # odd values go on, and raise nothing: a shape that is no tuple, a dtype that is no dtype
    (_ZeroDimensional(True, bool, shape=None), False), (_ZeroDimensional(True, bool, shape=3), False),
    (_ZeroDimensional(True, object()), False)])
def test_a_callback_stops_a_run_by_a_true_boolean_of_any_backend(answer, expected):
    assert stops(answer) is expected


def test_a_torch_boolean_stops_a_run():
    # torch.bool is no NumPy dtype: the callback's True was taken for "go on", and the run went to max_iter
    torch = pytest.importorskip("torch")
    assert [stops(answer) for answer in (torch.tensor(True), torch.tensor(False), torch.tensor(1),
                                         torch.tensor([True]))] == [True, False, False, False]
    y = np.random.default_rng(3).random((8, 8))
    H = Blur(np.ones((3, 3)) / 9, y.shape)
    result = solve(H, y, TV(y.shape), lam=0.01, callback=lambda k, x: torch.tensor(k >= 2))
    assert result.iterations == 2 and result.message == "stopped by the callback"


def test_a_callback_that_stops_where_the_tolerance_fires_reports_converged():
    """converged was False, "stopped by the callback", though the tolerance held at that iteration too."""
    stop = AnyOf(RelativeChange(1e-3), MaxIterations(10))
    met = Progress(iteration=4, relative_change=1e-6, seconds=0.1)
    assert verdict(stop, met, lambda k, x: True, None) == (True, "stopped by the callback, and by "
                                                            "RelativeChange(0.001), after 4 iterations")
    assert verdict(stop, Progress(iteration=4, relative_change=1e-2, seconds=0.1), lambda k, x: True, None) == (
        False, "stopped by the callback")
    capped = Progress(iteration=10, relative_change=1e-2, seconds=0.1)  # a cap is no convergence
    assert verdict(stop, capped, lambda k, x: True, None) == (False, "stopped by the callback")
