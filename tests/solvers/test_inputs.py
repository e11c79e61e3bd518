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
from adareg.solvers.primal_dual import PD3O, primal_dual
from adareg.solvers.reweighting import reweighting
from adareg.stopping import MaxIterations
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


SOLVERS = [
    (lambda data, x0, **kw: fista(data, x0, **kw), "fista"),
    (lambda data, x0, **kw: lbfgs(data, x0, **kw), "lbfgs"),
    (lambda data, x0, **kw: primal_dual(data, TV(x0.shape[-1:]), 0.5, x0, **kw), "primal_dual"),
]


@pytest.mark.parametrize("solver, name", SOLVERS)
def test_a_start_without_the_batch_axes_of_y_is_refused(solver, name):
    """L-BFGS broadcast an unbatched start to y's batch and solved it; FISTA and PD3O failed deep inside NumPy."""
    batch = LeastSquares(DATA.H, np.stack([DATA.y, 2 * DATA.y, -DATA.y]))
    with pytest.raises(ValueError, match=r"^LeastSquares: an image of shape \(12,\) does not match y of shape "
                                         r"\(3, 20\): .* need y's batch axes, shape \(3, 12\)"):
        solver(batch, np.zeros(12))


@pytest.mark.parametrize("solver, name", SOLVERS)
def test_the_result_keeps_the_dtype_of_the_start(solver, name):
    """A float32 start with float64 data gave float64 iterates, though x0's dtype is documented as kept."""
    from adareg.stopping import MaxIterations

    result = solver(DATA, np.zeros(12, np.float32), stop=MaxIterations(300))
    reference = solver(DATA, np.zeros(12), stop=MaxIterations(300))
    assert result.x.dtype == np.float32
    np.testing.assert_allclose(result.x, reference.x, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("solver, name", SOLVERS)
def test_stopping_rules_and_callbacks_are_checked_before_iterating(solver, name):
    """A number as ``stop`` or a string as ``callback`` failed only when the first iteration ended."""
    with pytest.raises(TypeError, match=f"^{name}: stop must be a stopping rule .* got 100 \\(int\\)"):
        solver(DATA, np.zeros(12), stop=100)
    with pytest.raises(TypeError, match=f"^{name}: callback must be callable as callback\\(k, x_k\\), or None, "
                                        "got 'print' \\(str\\)"):
        solver(DATA, np.zeros(12), callback="print")


@pytest.mark.parametrize("solver, name", SOLVERS)
def test_a_tolerance_on_a_measure_the_solver_lacks_is_refused(solver, name):
    """A Residual rule never fired in these solvers, which measure the relative change: alone it ran forever, with a
    cap it ran to the cap and said "not converged" (an audit, 2026-12-06)."""
    from adareg.stopping import MaxIterations, Residual

    # (capped: alone, as the same check refuses it, a regression would hang the suite)
    with pytest.raises(ValueError, match=rf"^{name}: stop: Residual\(0.01\) would never fire, as this solver "
                                         r"does not measure its residual; give RelativeChange\(tol\)"):
        solver(DATA, np.zeros(12), stop=Residual(1e-2) | MaxIterations(30))


@pytest.mark.parametrize("solver, flags", [
    (lambda **kw: fista(DATA, np.zeros(12), reg=TV((12,)), **kw), ("restart", "backtracking", "track_objective",
                                                                    "progress")),
    (lambda **kw: lbfgs(DATA, np.zeros(12), **kw), ("progress",)),
    (lambda **kw: primal_dual(DATA, TV((12,)), 0.5, np.zeros(12), **kw), ("track_objective", "progress")),
    (lambda **kw: TV((12,)).prox(DATA.y[:12], 0.5, **kw), ("progress",)),
])
def test_flags_are_true_or_false(solver, flags):
    """``backtracking="no"`` turned FISTA's backtracking on (any string counted as true)."""
    for flag in flags:
        with pytest.raises(TypeError, match=f": {flag} must be True or False, got 'no' \\(str\\)"):
            solver(**{flag: "no"})


def test_tolerances_and_caps_are_named_as_the_caller_gave_them():
    """They were named after the stopping rule (``Residual: tol``), and FISTA's inner ones only at its first prox."""
    with pytest.raises(ValueError, match="^fista: inner_tol must be non-negative, got -1"):
        fista(DATA, np.zeros(12), reg=TV((12,)), inner_tol=-1.0)
    with pytest.raises(TypeError, match="^fista: inner_tol must be a real number"):
        fista(DATA, np.zeros(12), reg=TV((12,)), inner_tol=None)
    with pytest.raises(ValueError, match="^fista: inner_max_iter must be at least 1, got 0"):
        fista(DATA, np.zeros(12), reg=TV((12,)), inner_max_iter=0)
    with pytest.raises(ValueError, match="^TV.prox: tol must be non-negative, got -1"):
        TV((12,)).prox(DATA.y[:12], 0.5, tol=-1.0)
    with pytest.raises(ValueError, match="^TV.prox: max_iter must be at least 1, got 0"):
        TV((12,)).prox(DATA.y[:12], 0.5, max_iter=0)
    y = np.full((16, 16), 0.5)
    reg = toy_sacnn().at(0.1)
    with pytest.raises(ValueError, match="^reweighting: tol must be non-negative, got -1"):
        reweighting(Identity(y.shape), y, reg, lam=0.1, tol=-1.0)
    with pytest.raises(ValueError, match="^reweighting: max_iter must be at least 1, got 0"):
        reweighting(Identity(y.shape), y, reg, lam=0.1, max_iter=0)


def test_weights_for_a_larger_batch_than_the_start():
    """A TV with one weight map per image of a batch of 2 failed in NumPy (an AxisError) given one start image:
    FISTA refuses it, PD3O (which solves one problem per weight map) now starts each from that image, and
    set_weights refuses a batch that the iterates do not have."""
    rng = np.random.default_rng(9)
    data = LeastSquares(Identity((8, 8)), rng.standard_normal((8, 8)))
    maps = [np.ones((1, 8, 8)), 2 * np.ones((1, 8, 8))]
    per_image = TV((8, 8), weights=np.stack(maps))
    with pytest.raises(ValueError, match=r"^fista: reg's weights are for a batch of shape \(2,\), but x0 holds a "
                                         r"batch of shape \(\)"):
        fista(data, np.zeros((8, 8)), reg=per_image, lam=0.3)
    batch = LeastSquares(Identity((8, 8)), np.stack([data.y, data.y]))
    assert fista(batch, np.zeros((2, 8, 8)), reg=per_image, lam=0.3, batch_ndim=1).x.shape == (2, 8, 8)
    result = primal_dual(data, per_image, 0.3, np.zeros((8, 8)), stop=MaxIterations(50))
    for image, weights in zip(result.x, maps):
        alone = primal_dual(data, TV((8, 8), weights=weights), 0.3, np.zeros((8, 8)), stop=MaxIterations(50))
        np.testing.assert_allclose(image, alone.x, rtol=0, atol=1e-12)
    solver = PD3O(data, TV((8, 8)), 0.3, np.zeros((8, 8)))
    with pytest.raises(ValueError, match=r"^PD3O.set_weights: reg's weights are for a batch of shape \(2,\)"):
        solver.set_weights(np.ones((2, 1, 8, 8)))


def test_a_smooth_term_without_a_lipschitz_constant_is_named():
    """A learned model at its noise level (whose constant depends on the image shape) failed in float() on a
    method, and an array given as the data term with an AttributeError."""
    import adareg

    ridge = adareg.load("crr").at(15 / 255)
    for solver, name in ((lbfgs, "lbfgs: smooth"), (fista, "fista: data")):
        with pytest.raises(TypeError, match=rf"^{name}: crr at sigma .* computes its Lipschitz constant for an image "
                                            r"shape, lipschitz\(image_shape\): give it in a SmoothSum"):
            solver(ridge, np.zeros((16, 16)))
        with pytest.raises(TypeError, match=rf"^{name} must be a SmoothFunctional \(e.g. LeastSquares\(H, y\)\), "
                                            "got ndarray"):
            solver(np.eye(3), np.zeros(3))


def test_pd3o_names_a_start_of_another_shape_than_the_regularizer():
    with pytest.raises(ValueError, match=r"^PD3O: x0 \(an image for TV of shape \(10,\)\) has shape \(12,\)"):
        primal_dual(DATA, TV((10,)), 0.5, np.zeros(12))  # failed in a NumPy broadcast
    with pytest.raises(TypeError, match="^PD3O: x0 .* has dtype int64"):
        primal_dual(DATA, TV((12,)), 0.5, np.zeros(12, dtype=int))


def test_conjugate_gradient_arguments():
    """NaN in b was reported as a breakdown of M; a complex start for real unknowns lost its imaginary part."""
    from adareg.solvers import conjugate_gradient

    identity = lambda v: v  # noqa: E731
    with pytest.raises(ValueError, match="^conjugate_gradient: b contains 1 NaN or Inf value"):
        conjugate_gradient(identity, np.array([1.0, np.nan, 2.0]))
    with pytest.raises(TypeError, match=r"^conjugate_gradient: x0 is complex \(complex128\) but b is real"):
        conjugate_gradient(identity, np.ones(3), x0=np.ones(3) + 1j)
    with pytest.raises(TypeError, match="^conjugate_gradient: b must be a NumPy or CuPy array, got list"):
        conjugate_gradient(identity, [1.0, 2.0])
    with pytest.raises(TypeError, match="^conjugate_gradient: apply must be callable"):
        conjugate_gradient(np.eye(2), np.ones(2))
    with pytest.raises(ValueError, match="^conjugate_gradient: x0 contains 1 NaN"):
        conjugate_gradient(identity, np.ones(2), x0=np.array([0.0, np.inf]))
    # named as the rules' own arguments: "MaxIterations: n must be at least 1", "Residual: tol ..."
    with pytest.raises(ValueError, match="^conjugate_gradient: max_iter must be at least 1, got 0"):
        conjugate_gradient(identity, np.ones(2), max_iter=0)
    with pytest.raises(ValueError, match="^conjugate_gradient: tol must be non-negative, got -1"):
        conjugate_gradient(identity, np.ones(2), tol=-1)


def test_a_prox_and_the_reweighting_name_a_bad_max_time():
    """Both failed as "WallTime: seconds must be positive", an argument of neither."""
    import adareg
    from adareg.operators import Identity
    from adareg.regularizers import TV
    from adareg.solvers import reweighting

    y = np.random.default_rng(0).random((8, 8))
    with pytest.raises(ValueError, match="^TV.prox: max_time must be positive, got 0"):
        TV((8, 8)).prox(y, 0.1, max_time=0)
    with pytest.raises(ValueError, match="^reweighting: max_time must be positive, got -1"):
        reweighting(Identity((8, 8)), y, adareg.load("sa-cnn").at(0.1), lam=0.1, max_time=-1)


def test_smooth_sum_terms_are_checked():
    from adareg.functionals import SmoothSum

    with pytest.raises(TypeError, match=r"^SmoothSum: terms must be \(weight, term\) pairs, each term with the "
                                        r"methods of a SmoothFunctional \(forward, .*\), got \(1.0, "):
        SmoothSum([(1.0, DATA.H)], 1.0)  # an operator, not a term: failed at the first gradient
    with pytest.raises(ValueError, match="^SmoothSum: a term's weight must be non-negative, got -1"):
        SmoothSum([(-1.0, DATA)], 1.0)
    with pytest.raises(ValueError, match="^SmoothSum: lipschitz must be finite, got nan"):
        SmoothSum([(1.0, DATA)], float("nan"))
    with pytest.raises(ValueError, match="^SmoothSum: terms must hold at least one"):
        SmoothSum([], 1.0)


@pytest.mark.parametrize("solver", [fista, lbfgs])
def test_a_batch_in_chunks_runs_each_chunk_as_alone(solver):
    """Given chunk by chunk, each image of a batch (of least-squares problems of different scales, so that they stop
    at different iterations) gets the iterates and stop of its own run, and the least-squares solution (lstsq)."""
    from adareg.stopping import MaxIterations, RelativeChange

    ys = np.stack([DATA.y, 30 * DATA.y[::-1], RNG.standard_normal(20)])
    stop = MaxIterations(5000) | RelativeChange(1e-9)
    chunks = [(slice(i, i + 1), LeastSquares(DATA.H, ys[i:i + 1])) for i in range(3)]
    result = solver(chunks, np.zeros((3, 12)), stop=stop, batch_ndim=1)
    alone = [solver(LeastSquares(DATA.H, y), np.zeros(12), stop=stop) for y in ys]
    assert result.converged and result.iterations == max(run.iterations for run in alone)
    assert len({run.iterations for run in alone}) > 1
    np.testing.assert_allclose(result.x, [run.x for run in alone], rtol=0, atol=1e-12)
    exact = np.linalg.lstsq(DATA.H.matrix, ys.T, rcond=None)[0].T
    np.testing.assert_allclose(result.x, exact, rtol=0, atol=1e-6 * np.abs(exact).max())


@pytest.mark.parametrize("solver, name, argument", [(fista, "fista", "data"), (lbfgs, "lbfgs", "smooth")])
def test_chunks_that_do_not_cut_the_batch_in_order_are_refused(solver, name, argument):
    batch = np.zeros((3, 12))
    part = LeastSquares(DATA.H, np.stack([DATA.y]))
    for chunks in ([(slice(0, 1), part), (slice(2, 3), part)], [(slice(0, 2), part)], [(0, part)], [part]):
        with pytest.raises(ValueError, match=f"^{name}: {argument} in chunks (must be|covers images)"):
            solver(chunks, batch, batch_ndim=1)
    with pytest.raises(ValueError, match=f"^{name}: {argument} in chunks needs a batch"):
        solver([(slice(0, 1), part)], np.zeros(12))


@pytest.mark.parametrize("solver", [
    lambda callback: fista(DATA, np.zeros(12), reg=TV((12,)), progress=True, callback=callback),
    lambda callback: lbfgs(DATA, np.zeros(12), progress=True, callback=callback),
    lambda callback: primal_dual(DATA, TV((12,)), 0.5, np.zeros(12), progress=True, callback=callback),
    lambda callback: TV((12,)).prox(DATA.y[:12], 0.5, progress=True, callback=callback, check_every=1),
    lambda callback: reweighting(Identity((16, 16)), np.full((16, 16), 0.5), toy_sacnn().at(0.1), lam=0.1,
                                 progress=True, callback=callback),
], ids=["fista", "lbfgs", "primal_dual", "prox", "reweighting"])
def test_a_progress_bar_closes_when_the_run_raises(solver, capsys):
    """An exception (an interrupt, a failing callback) left the bar open while its traceback lived, as IPython keeps
    the last one: the next bars in a notebook were drawn a line lower, below a stale one."""
    from tqdm import tqdm

    def interrupt(*_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as caught:
        solver(interrupt)
    assert caught.traceback  # the frames, and with them the bar, are still referenced
    assert not [bar for bar in tqdm._instances if not bar.disable]


def test_lbfgs_names_an_unusable_precision():
    """"bogus" and 3 gave NumPy's "data type not understood", "int32" a rounding error of no dtype, and 0 or False
    stood for x0's precision (an audit, 2026-12-06)."""
    for precision in ("bogus", 3, "int32", 0, False, "float16"):
        with pytest.raises(ValueError, match=rf"^lbfgs: precision must be one of float32, float64, complex64, "
                                             rf"complex128 \(or None, x0's\), got {precision!r}"):
            lbfgs(DATA, np.zeros(12), precision=precision)
    assert lbfgs(DATA, np.zeros(12), precision=np.float32, stop=MaxIterations(2)).iterations == 2
