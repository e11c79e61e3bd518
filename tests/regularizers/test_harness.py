"""Every regularizer of ``harness.CASES`` through the property harness.

Few examples: each runs dense reference solves and converged proxes or reweighting
loops; a shipped model is one fixed model, so one example covers it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import DEVICES
from tests.regularizers.harness import CASES, SHIPPED, check_regularizer

DTYPES = [np.float32, np.float64]


def _check(case: str, dtype, device: str, data: st.DataObject) -> None:
    subject = data.draw(CASES[case], label="subject")
    check_regularizer(subject, dtype, device, seed=data.draw(st.integers(0, 1000), label="seed"))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", sorted(set(CASES) - set(SHIPPED)))
@settings(max_examples=2, deadline=None)
@given(data=st.data())
def test_regularizer_properties(case, dtype, device, data):
    _check(case, dtype, device, data)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", SHIPPED)
@settings(max_examples=1, deadline=None)
@given(data=st.data())
def test_shipped_regularizer_properties(case, dtype, device, data):
    _check(case, dtype, device, data)
