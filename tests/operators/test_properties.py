"""Every operator of ``harness.CASES`` through the property harness."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import DEVICES, DTYPES
from tests.operators.harness import CASES, check_dense, check_operator


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", sorted(CASES))
@given(data=st.data())
def test_operator_properties(case, dtype, device, data):
    A = data.draw(CASES[case](complex_=data.draw(st.booleans(), label="complex")), label="operator")
    check_operator(A, dtype, device, seed=data.draw(st.integers(0, 1000), label="seed"))


@pytest.mark.parametrize("case", sorted(CASES))
@given(data=st.data())
def test_operator_dense_matrix(case, data):
    A = data.draw(CASES[case](complex_=data.draw(st.booleans(), label="complex")), label="operator")
    check_dense(A)
