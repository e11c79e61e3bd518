"""Inputs the solvers take directly (not through adareg.solve) and name when they are unusable.

A NaN starting point ran to a diverging-iterates error that blamed the operator's norm (FISTA),
to an all-NaN "converged to rounding" result (L-BFGS), or through every iteration (PD3O); the
reweighting named "weights" for a NaN x0 or y; LeastSquares ignored the mask of masked weights.
"""

from __future__ import annotations

import numpy as np
import pytest

from adareg.functionals import LeastSquares
from adareg.operators import Identity
from adareg.regularizers import TV
from adareg.solvers import fista, lbfgs
from adareg.solvers.primal_dual import primal_dual
from tests.helpers import MatrixOperator
from tests.regularizers.test_adaptive import toy_sacnn

RNG = np.random.default_rng(4)
DATA = LeastSquares(MatrixOperator(RNG.standard_normal((20, 12))), RNG.standard_normal(20))


@pytest.mark.parametrize("solver, name", [
    (lambda x0: fista(DATA, x0), "fista"),
    (lambda x0: lbfgs(DATA, x0), "lbfgs"),
    (lambda x0: primal_dual(DATA, TV((12,)), 0.5, x0), "PD3O"),
])
def test_a_starting_point_with_nan_is_named(solver, name):
    x0 = np.zeros(12)
    x0[3] = np.nan
    with pytest.raises(ValueError, match=f"^{name}: x0 contains 1 NaN or Inf value"):
        solver(x0)


def test_reweighting_names_a_nan_start_or_measurement():
    from adareg.solvers.reweighting import reweighting

    y = np.full((16, 16), 0.5)
    reg = toy_sacnn().at(0.1)
    bad = y.copy()
    bad[2, 2] = np.nan
    with pytest.raises(ValueError, match="^reweighting: x0 contains 1 NaN"):
        reweighting(Identity(y.shape), y, reg, lam=0.1, x0=bad)
    with pytest.raises(ValueError, match="^reweighting: y contains 1 NaN"):
        reweighting(Identity(y.shape), bad, reg, lam=0.1)
    with pytest.raises(TypeError, match="^reweighting: x0 must be a NumPy or CuPy array, got list"):
        reweighting(Identity(y.shape), y, reg, lam=0.1, x0=y.tolist())


def test_least_squares_refuses_masked_weights():
    weights = np.ma.masked_array(np.ones(20), mask=[True] + [False] * 19)  # counted at full weight before
    with pytest.raises(TypeError, match="^LeastSquares: weights is a masked array, whose mask adareg would ignore"):
        LeastSquares(DATA.H, DATA.y, weights)
