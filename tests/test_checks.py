"""adareg.checks: which scalars count as numbers and counts, and errors that name the argument."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adareg import checks


@pytest.mark.parametrize("value", [0.5, 2, np.float32(0.5), np.int64(3), np.array(0.5), np.array(7, dtype=np.uint8)])
def test_numbers_of_every_kind_are_accepted(value):
    assert checks.positive(value, "lam") == float(value)


@pytest.mark.parametrize(
    "value, error, words",
    [
        (True, TypeError, "lam must be a real number, got True"),
        ("0.1", TypeError, "lam must be a real number, got '0.1'"),
        (1j, TypeError, "lam must be a real number"),
        (np.array([0.1]), TypeError, "lam must be a real number"),
        (np.array(True), TypeError, "lam must be a real number"),
        (math.nan, ValueError, "lam must be finite, got nan"),
        (-math.inf, ValueError, "lam must be finite"),
        pytest.param(-(10**400), ValueError, "lam must be finite, got -1000", id="an int beyond the float range"),
        (0.0, ValueError, "lam must be positive, got 0"),
    ],
)
def test_non_numbers_and_non_positive_values_are_refused(value, error, words):
    with pytest.raises(error, match=words):
        checks.positive(value, "lam")


def test_tolerances_may_be_zero_but_not_negative():
    assert checks.non_negative(0, "tol") == 0.0
    with pytest.raises(ValueError, match="tol must be non-negative, got -1e-06"):
        checks.non_negative(-1e-6, "tol")


@pytest.mark.parametrize("value, error", [(0, ValueError), (-3, ValueError), (2.0, TypeError), (True, TypeError)])
def test_counts_are_ints_of_at_least_one(value, error):
    with pytest.raises(error, match="max_iter"):
        checks.count(value, "max_iter")
    assert checks.count(np.int32(4), "max_iter") == 4


@pytest.mark.parametrize("value", [3, np.int64(3), np.uint8(3)])
def test_ints_of_python_and_numpy_are_ints(value):
    assert checks.is_int(value)
    assert checks.integer(value, "axis") == 3 and type(checks.integer(value, "axis")) is int


@pytest.mark.parametrize("value", [True, np.True_, 3.0, np.float32(3), "3", None, np.array(3), [3]])
def test_bools_floats_and_the_rest_are_not_ints(value):
    assert not checks.is_int(value)
    with pytest.raises(TypeError, match=r"^axis must be an int, got "):
        checks.integer(value, "axis")


def test_within_takes_a_float32_rounding_of_an_end_as_that_end():
    end = 30 / 255
    assert checks.within(float(np.float32(end)), 0.0, end) == end  # np.float32(30 / 255) lies above 30 / 255
    assert checks.within(0.05, 0.0, end) == 0.05
    assert checks.within(end * (1 + 1e-4), 0.0, end) is None  # beyond rounding: outside
    assert checks.within(-1e-3, 0.0, end) is None
    assert checks.within(1e-6 * (1 - 1e-7), 1e-6, 100.0) == 1e-6
    assert checks.within(1e-9, 1e-6, 100.0) is None  # was taken as 1e-6: the slack was measured from the high end
