"""WeightedL1Analysis and TV: the dual prox against independent solutions and optimality conditions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import optimize

from adareg import threads
from adareg.operators import Conv2d, FiniteDifference, Identity
from adareg.regularizers import TV, WeightedL1Analysis
from tests.helpers import ForeignArray, MatrixOperator


def random_problem(seed: int, n: int = 12, channels: int = 3):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((channels * n, n)) / np.sqrt(n)
    weights = rng.random(channels * n) * (rng.random(channels * n) > 0.2)  # some zero weights
    return rng.standard_normal(n), W, weights


def dual_reference(v, W, weights, tau, bounds=None):
    """Independent solution of the prox through its dual, by SciPy on dense matrices.

    Without bounds the dual is the bounded least-squares problem
    min_{|p| <= weights} ||v - tau W^T p||^2 (lsq_linear); with bounds, L-BFGS-B
    maximises the smooth dual function D(p) = min_{x in C} 1/2 ||x - v||^2 + tau <p, W x>.
    """
    active = weights > 0  # the dual variable vanishes where the weight does
    W, weights = W[active], weights[active]
    box = (-weights, weights)
    if bounds is None:
        p = optimize.lsq_linear(tau * W.T, v, bounds=box, tol=1e-15, method="bvls").x
        return v - tau * W.T @ p
    lo, hi = bounds

    def negative_dual(p):
        x = np.clip(v - tau * W.T @ p, lo, hi)
        return -(0.5 * np.sum((x - v) ** 2) + tau * p @ (W @ x)), -tau * W @ x

    p = optimize.minimize(negative_dual, np.zeros(len(weights)), jac=True, method="L-BFGS-B",
                          bounds=list(zip(*box)), options={"ftol": 1e-16, "gtol": 1e-13, "maxiter": 20000}).x
    return np.clip(v - tau * W.T @ p, lo, hi)


@pytest.mark.parametrize("bounds", [None, (-0.3, 0.5)])
@pytest.mark.parametrize("seed", range(4))
def test_prox_matches_scipy_dual_solution(seed, bounds):
    v, W, weights = random_problem(seed)
    tau = 0.7
    reg = WeightedL1Analysis(MatrixOperator(W), weights)
    out = reg.prox(v, tau, bounds=bounds, tol=1e-7, max_iter=100000)
    assert out.converged and np.sqrt(2 * out.gap) <= 1e-7 * np.linalg.norm(v)
    reference = dual_reference(v, W, weights, tau, bounds)
    assert np.linalg.norm(out.x - reference) <= 1e-6 * np.linalg.norm(reference)


@pytest.mark.parametrize("bounds", [None, (-0.3, 0.5)])
@pytest.mark.parametrize("method", ["direct", "fft"])
def test_filter_bank_prox_in_blocks_of_rows_matches_the_dense_dual_solution(monkeypatch, method, bounds):
    """The dual iteration's elementwise work (and the FFT bank's channel mixing) run on blocks of rows,
    on threads where there are several cores: one block per row here, against SciPy on the dense matrix."""
    monkeypatch.setattr(threads, "BLOCK_BYTES", 8)
    rng = np.random.default_rng(3)
    shape, tau = (9, 8), 0.7
    W = Conv2d(rng.standard_normal((3, 7, 7)) / 7, shape, boundary="reflect", method=method)
    dense = np.stack([W(e.reshape(shape)).ravel() for e in np.eye(np.prod(shape))], axis=1)
    weights = rng.random(W.shape_out) * (rng.random(W.shape_out) > 0.2)
    v = rng.standard_normal(shape)
    out = WeightedL1Analysis(W, weights).prox(v, tau, bounds=bounds, tol=1e-8, max_iter=100000)
    assert out.converged
    reference = dual_reference(v.ravel(), dense, weights.ravel(), tau, bounds)
    assert np.linalg.norm(out.x.ravel() - reference) <= 1e-6 * np.linalg.norm(reference)


def test_gap_certifies_distance_to_solution():
    v, W, weights = random_problem(7, n=20)
    reg = WeightedL1Analysis(MatrixOperator(W), weights)
    exact = dual_reference(v, W, weights, 1.0)
    for iterations in (10, 30, 100):
        out = reg.prox(v, 1.0, tol=0.0, max_iter=iterations)
        assert np.linalg.norm(out.x - exact) <= np.sqrt(2 * out.gap) * (1 + 1e-9) + 1e-9


@pytest.mark.parametrize("isotropic", [False, True])
def test_duality_gap_is_primal_minus_dual_objective(isotropic):
    """G(p) against the objectives computed densely: P(x) - D(p) at x = v - tau W^T p, p feasible."""
    rng = np.random.default_rng(11)
    shape, tau, weight = (4, 5), 0.6, 0.8
    reg = TV(shape, isotropic=isotropic, weights=weight)
    W = np.stack([reg.W(e.reshape(shape)).ravel() for e in np.eye(20)], axis=1)  # dense (2 * 20, 20)
    p = rng.uniform(-1, 1, (2, *shape))
    if isotropic:  # the two differences at a pixel form a group: |p_i| <= weight
        p *= np.minimum(1, weight / np.linalg.norm(p, axis=0))
    else:
        p *= weight
    v = rng.standard_normal(20)
    x = v - tau * W.T @ p.ravel()
    Wx = (W @ x).reshape(2, -1)
    magnitude = np.linalg.norm(Wx, axis=0) if isotropic else np.abs(Wx)
    primal = 0.5 * np.sum((x - v) ** 2) + tau * weight * magnitude.sum()
    dual = 0.5 * v @ v - 0.5 * x @ x  # min_x 1/2 ||x - v||^2 + tau <p, W x>, attained at x = v - tau W^T p
    np.testing.assert_allclose(reg.duality_gap(x.reshape(shape), p, tau), primal - dual, rtol=1e-10)


@pytest.mark.parametrize("isotropic", [False, True])
def test_duality_gap_refuses_a_dual_point_outside_the_dual_set(isotropic):
    # each term's clipping at 0 made such a point read as a certificate (a gap of 0 for p = 10 Wx / |Wx|)
    rng = np.random.default_rng(12)
    shape, weight = (4, 5), 0.8
    reg = TV(shape, isotropic=isotropic, weights=weight)
    x = rng.standard_normal(shape)
    Wx = reg.W(x)
    size = np.linalg.norm(Wx, axis=0, keepdims=True) if isotropic else np.abs(Wx)
    size[size == 0] = 1  # the boundary's zero differences (their p stays 0)
    p = 10 * weight * Wx / size  # |p| = 10 Lambda wherever Wx is not 0
    with pytest.raises(ValueError, match=r"TV.duality_gap: p must satisfy \|p_c\| <= Lambda_c"):
        reg.duality_gap(x, p, 0.5)
    on_the_boundary = weight * Wx / size  # |p| = Lambda, where the gap is exactly 0
    assert reg.duality_gap(x, on_the_boundary, 0.5) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="TV.duality_gap: p contains 1 NaN"):
        reg.duality_gap(x, np.where(np.arange(p.size).reshape(p.shape) == 3, np.nan, on_the_boundary), 0.5)


@pytest.mark.parametrize("isotropic", [False, True])
def test_duality_gap_refuses_a_dual_point_of_another_shape_and_a_step_that_is_not_positive(isotropic):
    # a p of shape (1, H, W) passed the dual set's test on its one channel and was paired with both of W x: a gap
    # of 0 for a point 1.24 from the prox (isotropic); and tau <= 0 clipped every term to 0
    reg = TV((6, 6), isotropic=isotropic)
    i, j = np.mgrid[0:6, 0:6]
    x = (i + j).astype(float)
    assert reg.duality_gap(x, np.zeros((2, 6, 6)), 1.0) > 1
    with pytest.raises(ValueError, match=r"TV.duality_gap: p has shape \(1, 6, 6\); expected \(2, 6, 6\)"):
        reg.duality_gap(x, np.ones((1, 6, 6)), 1.0)
    with pytest.raises(ValueError, match=r"TV.duality_gap: p has shape \(6, 6\); expected \(2, 6, 6\)"):
        reg.duality_gap(x, np.zeros((6, 6)), 1.0)
    for tau in (0.0, -1.0):
        with pytest.raises(ValueError, match="TV.duality_gap: tau must be positive"):
            reg.duality_gap(x, np.zeros((2, 6, 6)), tau)


def test_uncertified_prox_runs_its_budget_and_converges():
    """tol=None: exactly max_iter iterations, no certificate, and still the prox in the limit."""
    v, W, weights = random_problem(3)
    reg = WeightedL1Analysis(MatrixOperator(W), weights)
    exact = dual_reference(v, W, weights, 0.7)
    out = reg.prox(v, 0.7, tol=None, max_iter=20000)
    assert out.iterations == 20000 and not out.converged and out.gap == np.inf
    assert np.linalg.norm(out.x - exact) <= 1e-6 * np.linalg.norm(exact)
    # the state is the dual of the returned point: x = v - tau W^T p
    np.testing.assert_allclose(out.x, v - 0.7 * W.T @ out.state.point, atol=1e-12)
    # a callback or record is called at gap checks, which a budgeted call makes none of: they were never called
    for given in ({"callback": lambda k, x: True}, {"record": lambda **row: None}):
        with pytest.raises(ValueError, match=r"^WeightedL1Analysis.prox: callback and record are called at each "
                                             r"duality-gap check, which a budgeted call \(tol=None\) makes none of"):
            reg.prox(v, 0.7, tol=None, max_iter=5, **given)


def test_budgeted_calls_continue_one_fista_run():
    """Budgeted calls chained through their state are one FISTA run; a certified call restarts the momentum."""
    v, W, weights = random_problem(4)
    reg = WeightedL1Analysis(MatrixOperator(W), weights)
    whole = reg.prox(v, 0.7, tol=None, max_iter=60)
    state = None
    for _ in range(6):
        piece = reg.prox(v, 0.7, tol=None, max_iter=10, warm_start=state)
        state = piece.state
    np.testing.assert_allclose(piece.x, whole.x, rtol=0, atol=1e-13)
    assert state.t == pytest.approx(whole.state.t)
    from_state = reg.prox(v, 0.7, tol=1e-3, warm_start=state)
    from_point = reg.prox(v, 0.7, tol=1e-3, warm_start=state.point)
    np.testing.assert_array_equal(from_state.x, from_point.x)


def test_budgeted_calls_under_changing_weights_reach_the_prox_of_the_last_weights():
    """The reweighting's use: momentum carried across weight changes does not move the limit."""
    v, W, final = random_problem(5)
    rng = np.random.default_rng(0)
    reg = WeightedL1Analysis(MatrixOperator(W), final)
    state = None
    for chunk in range(400):
        weights = rng.random(final.shape) if chunk < 10 else final
        out = reg.with_weights(weights).prox(v, 0.7, tol=None, max_iter=10, warm_start=state)
        state = out.state
    exact = dual_reference(v, W, final, 0.7)
    assert np.linalg.norm(out.x - exact) <= 1e-6 * np.linalg.norm(exact)


class CountingMatrix(MatrixOperator):
    """A dense operator that counts its applications of ``W`` and ``W^T``."""

    def __init__(self, matrix):
        super().__init__(matrix)
        self.forward = self.adjoint = 0

    def _apply(self, x):
        self.forward += 1
        return super()._apply(x)

    def _adjoint(self, y):
        self.adjoint += 1
        return super()._adjoint(y)


def test_state_carries_the_adjoints_of_its_points_across_weight_changes():
    """W^T p and W^T q in the state match dense products, after budgeted calls under changing weights."""
    v, W, final = random_problem(6)
    rng = np.random.default_rng(1)
    reg = WeightedL1Analysis(MatrixOperator(W), final)
    state = None
    for _ in range(8):
        state = reg.with_weights(rng.random(final.shape)).prox(v, 0.7, tol=None, max_iter=3, warm_start=state).state
        np.testing.assert_allclose(state.adjoint_point, W.T @ state.point, rtol=0, atol=1e-12)
        np.testing.assert_allclose(state.adjoint_extrapolated, W.T @ state.extrapolated, rtol=0, atol=1e-12)


def test_a_dual_iteration_applies_w_and_its_adjoint_once():
    """Budgeted calls from a state cost one W and one W^T per iteration, the returned point none more."""
    v, W, weights = random_problem(8)
    operator = CountingMatrix(W)
    operator.norm_bound(like=v)  # the cached step-size estimate, not counted below
    reg = WeightedL1Analysis(operator, weights)
    state = reg.prox(v, 0.7, tol=None, max_iter=4).state
    operator.forward = operator.adjoint = 0
    for _ in range(3):
        state = reg.prox(v, 0.7, tol=None, max_iter=4, warm_start=state).state
    assert (operator.forward, operator.adjoint) == (12, 12)


def test_a_budgeted_call_leaves_the_state_it_continues_unchanged():
    """The state's buffers are copied, not updated in place: two calls from one state agree bitwise."""
    v, W, weights = random_problem(9)
    reg = WeightedL1Analysis(MatrixOperator(W), weights)
    state = reg.prox(v, 0.7, tol=None, max_iter=5).state
    kept = [np.copy(a) for a in (state.point, state.extrapolated, state.adjoint_point, state.adjoint_extrapolated)]
    first, second = (reg.with_weights(weights[::-1]).prox(v, 0.7, tol=None, max_iter=5, warm_start=state)
                     for _ in range(2))
    np.testing.assert_array_equal(first.x, second.x)
    for before, after in zip(kept, (state.point, state.extrapolated, state.adjoint_point, state.adjoint_extrapolated)):
        np.testing.assert_array_equal(before, after)


def dense_gradient(shape):
    """Forward differences with a zero last difference, built from np.diff row by row."""
    n = int(np.prod(shape))
    rows = []
    for axis in range(len(shape)):
        for e in np.eye(n):
            img = e.reshape(shape)
            d = np.diff(img, axis=axis, append=np.take(img, [-1], axis=axis))
            rows.append(d.ravel())
    return np.array(rows).reshape(len(shape), n, n).transpose(0, 2, 1).reshape(len(shape) * n, n)


@pytest.mark.parametrize("bounds", [None, (0.0, 1.0)])
def test_isotropic_tv_prox_satisfies_kkt(bounds):
    rng = np.random.default_rng(5)
    shape = (9, 8)
    v = np.clip(np.kron(rng.random((3, 2)), np.ones((3, 4))) + 0.15 * rng.standard_normal(shape), -0.2, 1.2)
    tau = 0.1
    out = TV(shape).prox(v, tau, bounds=bounds, tol=1e-7, max_iter=200000)
    assert out.converged
    D = dense_gradient(shape)  # independent of FiniteDifference
    p = out.state.point.reshape(2, -1)
    x = out.x.ravel()
    # primal from dual: x = P_C(v - tau D^T p); dual feasible: |p_i| <= 1
    lo, hi = bounds if bounds else (-np.inf, np.inf)
    np.testing.assert_allclose(x, np.clip(v.ravel() - tau * D.T @ p.ravel(), lo, hi), atol=1e-12)
    assert np.all(np.hypot(*p) <= 1 + 1e-12)
    # complementarity: p_i = grad x_i / |grad x_i| wherever the gradient is clearly non-zero
    g = (D @ x).reshape(2, -1)
    size = np.hypot(*g)
    edges = size > 1e-4
    assert edges.sum() > 10
    np.testing.assert_allclose(p[:, edges], g[:, edges] / size[edges], atol=1e-3)


def test_zero_weights_return_the_input():
    v = np.random.default_rng(6).standard_normal((6, 7))
    reg = TV((6, 7), weights=0.0)
    np.testing.assert_array_equal(reg.prox(v, 3.0).x, v)
    np.testing.assert_array_equal(reg.prox(v, 3.0, bounds=(0, None)).x, np.maximum(v, 0))


def test_large_weights_project_float32_duals_without_overflow():
    """The projection onto |p| <= Lambda scaled by min(1, Lambda / max(|p|, tiny)): in float32, Lambda / tiny
    overflows for Lambda above 2.9 where a group of the dual is zero, as all are at the start (a RuntimeWarning,
    an error under -W error; an audit, 2026-12-06)."""
    v = np.random.default_rng(8).random((8, 9)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = TV((8, 9), weights=5.0).prox(v, 0.01, tol=1e-5, max_iter=5000)
    p = out.state.point.reshape(2, -1).astype(np.float64)
    assert out.converged and np.all(np.hypot(*p) <= 5 * (1 + 1e-6))
    np.testing.assert_allclose(out.x.ravel(), v.ravel() - 0.01 * dense_gradient((8, 9)).T @ p.ravel(), atol=1e-5)


def test_strided_weights_are_kept_contiguous_with_their_values():
    """Every dual iteration reads the weights: a strided view (an unpadded convolution's output) is copied once."""
    rng = np.random.default_rng(8)
    padded = rng.random((2, 5, 9))
    reg = TV((5, 6), isotropic=False, weights=padded[..., 1:7])
    assert reg.weights.flags.c_contiguous
    np.testing.assert_array_equal(reg.weights, padded[..., 1:7])
    x = rng.standard_normal((5, 6))
    assert reg.value(x) == pytest.approx(TV((5, 6), isotropic=False, weights=padded[..., 1:7].copy()).value(x))


def test_anisotropic_tv_value_and_per_pixel_weights():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 6))
    weights = rng.random((2, 5, 6))
    expected = np.sum(weights[0, :-1] * np.abs(np.diff(x, axis=0))) + np.sum(
        weights[1, :, :-1] * np.abs(np.diff(x, axis=1)))
    assert TV((5, 6), isotropic=False, weights=weights).value(x) == pytest.approx(expected)
    # another library's array (e.g. a torch tensor) was refused as "not a number or an array"
    assert TV((5, 6), isotropic=False, weights=ForeignArray(weights)).value(x) == pytest.approx(expected)
    plain = np.sum(np.abs(np.diff(x, axis=0))) + np.sum(np.abs(np.diff(x, axis=1)))
    assert TV((5, 6), isotropic=False, weights=ForeignArray(2.0)).value(x) == pytest.approx(2 * plain)  # 0-d
    iso = np.hypot(np.vstack([np.diff(x, axis=0), np.zeros((1, 6))]),
                   np.hstack([np.diff(x, axis=1), np.zeros((5, 1))]))
    assert TV((5, 6)).value(x) == pytest.approx(iso.sum())


def test_batched_prox_equals_separate_proxes():
    rng = np.random.default_rng(8)
    v = rng.standard_normal((2, 8, 8))
    weights = rng.random((2, 1, 8, 8))  # one weight map per image
    reg = TV((8, 8), weights=weights)
    together = reg.prox(v, 0.3, tol=1e-7, max_iter=100000).x
    for i in range(2):
        alone = TV((8, 8), weights=weights[i]).prox(v[i], 0.3, tol=1e-7, max_iter=100000).x
        np.testing.assert_allclose(together[i], alone, atol=1e-6)


def test_the_weights_are_kept_once_as_a_read_only_copy():
    """The caller's weights and a read-only copy were both held: an adaptive model's steps build their weights
    anew, so each step kept two (sa-cnn at 481 x 321 peaked 19 MiB higher, 158.3 against 139.5 MiB)."""
    import gc
    import weakref

    weights = np.random.default_rng(3).random((8, 8))
    alive = weakref.ref(weights)
    reg = TV((8, 8), weights=weights)
    expected = weights.copy()
    weights[0, 0] = 5.0  # an edit after construction changes nothing
    del weights
    gc.collect()
    assert alive() is None  # not held by the regularizer
    np.testing.assert_array_equal(reg.weights, expected)
    assert not reg.weights.flags.writeable


def test_each_image_of_a_batch_follows_its_own_dual_path():
    """A batch [y, 1e-4 y] once took 660 dual iterations (500: not converged at solve's default cap) where the
    images alone took 140 and 280: one momentum and one restart test for the batch coupled them."""
    import adareg

    rng = np.random.default_rng(13)
    y = adareg.data.shepp_logan((16, 16)) + 0.05 * rng.standard_normal((16, 16))
    reg = TV((16, 16))
    images = [y, 1e-4 * y, 3 * y]
    budgeted = reg.prox(np.stack(images), 0.05, tol=None, max_iter=57)  # a fixed number of dual iterations
    for image, batched in zip(images, budgeted.x):
        alone = reg.prox(image, 0.05, tol=None, max_iter=57).x
        np.testing.assert_allclose(batched, alone, rtol=0, atol=1e-13 * np.abs(alone).max())
    certified = reg.prox(np.stack(images[:2]), 0.05)
    alone = [reg.prox(image, 0.05).iterations for image in images[:2]]
    assert certified.converged and certified.iterations == max(alone), (certified.iterations, alone)


def test_one_image_with_a_batch_of_weights_continues_from_its_state():
    # one image and two weight maps give two proxes; the state they return is a valid warm start
    rng = np.random.default_rng(10)
    v = rng.standard_normal((8, 8))
    weights = rng.random((2, 1, 8, 8))
    reg = TV((8, 8), weights=weights)
    first = reg.prox(v, 0.3, tol=None, max_iter=20)
    assert first.x.shape == (2, 8, 8) and first.state.point.shape == (2, 2, 8, 8)
    again = reg.prox(v, 0.3, tol=1e-7, max_iter=100000, warm_start=first.state)
    for i in range(2):
        alone = TV((8, 8), weights=weights[i]).prox(v, 0.3, tol=1e-7, max_iter=100000).x
        np.testing.assert_allclose(again.x[i], alone, atol=1e-6)
    with pytest.raises(ValueError, match=r"expected \(2, 2, 8, 8\)"):
        reg.prox(v, 0.3, warm_start=first.state.point[0])


def test_float32_stays_float32_and_warm_start_is_quick():
    rng = np.random.default_rng(9)
    v = rng.standard_normal((16, 16)).astype(np.float32)
    reg = TV((16, 16))
    first = reg.prox(v, 0.5, tol=1e-3, max_iter=5000)  # float32 certifies down to about 3e-4
    assert first.x.dtype == np.float32 and first.converged
    again = reg.prox(v, 0.5, tol=1e-3, warm_start=first.state, max_iter=5000)
    assert again.iterations <= 10


def test_with_weights_shares_the_operator():
    reg = WeightedL1Analysis(FiniteDifference((4, 4)), 1.0)
    other = reg.with_weights(np.zeros((2, 4, 4)))
    assert other.W is reg.W and reg.weights == 1.0


@pytest.mark.parametrize(
    "weights, error, words",
    [
        (-1.0, ValueError, "non-negative"),
        (np.full((2, 4, 4), np.nan), ValueError, "finite"),
        (np.ones((3, 4, 4)), ValueError, "do not broadcast"),
        (np.ones((2, 4, 4)) * 1j, TypeError, "real"),
        ("1", TypeError, "weights must be a number or an array, got '1'"),
        ([[-1.0] * 4] * 4, ValueError, "non-negative"),
        ([[1.0] * 4] * 3 + [[1.0]], TypeError, "WeightedL1Analysis: weights must be an array or nested lists"),
        ([["1"] * 4] * 4, TypeError, "WeightedL1Analysis: weights has dtype <U1"),
        ([[1j] * 4] * 4, TypeError, "WeightedL1Analysis: weights must be real"),
    ],
)
def test_bad_weights(weights, error, words):
    with pytest.raises(error, match=words):
        WeightedL1Analysis(FiniteDifference((4, 4)), weights)


def test_nested_lists_are_weights_and_tv_takes_a_bool():
    x = np.random.default_rng(2).standard_normal((4, 4))
    listed = TV((4, 4), weights=[[0.5] * 4] * 4, isotropic=False)
    assert listed.value(x) == pytest.approx(0.5 * np.abs(FiniteDifference((4, 4))(x)).sum(), rel=1e-12)
    from fractions import Fraction  # numbers that NumPy holds as objects, not as float64, until asked

    for number in (Fraction(1, 2), 10**20):
        weights = TV((4, 4), weights=[[number] * 4] * 4, isotropic=False).weights
        assert weights.dtype == np.float64 and np.all(weights == float(number))
    with pytest.raises(TypeError, match="TV: isotropic must be True or False, got 'anisotropic'"):
        TV((4, 4), isotropic="anisotropic")  # (any truthy value was the isotropic form)


def test_bad_prox_arguments():
    reg = TV((4, 4))
    v = np.ones((4, 4))
    with pytest.raises(ValueError, match="tau must be positive"):
        reg.prox(v, 0.0)
    with pytest.raises(ValueError, match="shape \\(5, 4\\)"):
        reg.prox(np.ones((5, 4)), 1.0)
    with pytest.raises(ValueError, match="warm_start has shape"):
        reg.prox(v, 1.0, warm_start=np.zeros((4, 4)))
    with pytest.raises(ValueError, match="lower 1.0 exceeds upper 0.0"):
        reg.prox(v, 1.0, bounds=(1, 0))
    with pytest.raises(TypeError, match="W must be a LinearOperator"):
        WeightedL1Analysis(np.eye(3))
    with pytest.raises(ValueError, match="group_channels needs a channel axis"):
        WeightedL1Analysis(Identity((4,)), group_channels=True)
    with pytest.raises(TypeError, match="group_channels must be True or False, got 'yes'"):
        WeightedL1Analysis(FiniteDifference((4, 4)), group_channels="yes")


@pytest.mark.parametrize("change, error, words", [
    ({"tau": "0.3"}, TypeError, "TV.prox: tau must be a real number"),
    ({"tau": True}, TypeError, "TV.prox: tau must be a real number"),
    ({"check_every": 0}, ValueError, "TV.prox: check_every must be at least 1"),
    ({"warm_start": [[0.0]]}, TypeError, "warm_start must be a DualState or a dual array, got list"),
    ({"warm_start": np.full((2, 4, 4), np.nan)}, ValueError, "TV.prox: warm_start contains 32 NaN"),
])
def test_prox_arguments_are_checked_before_any_iteration(change, error, words):
    arguments = {"tau": 0.3} | change
    with pytest.raises(error, match=words):
        TV((4, 4)).prox(np.ones((4, 4)), arguments.pop("tau"), **arguments)


def test_a_certified_prox_of_a_non_finite_input_is_refused():
    # one NaN pixel would otherwise spread through W^T W to the whole image and the gap,
    # which then never certifies: max_iter iterations for an all-NaN result
    v = np.ones((2, 4, 4))
    v[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="TV.prox: v contains 1 NaN or Inf value; expected finite"):
        TV((4, 4)).prox(v, 0.3)


def test_weights_of_another_batch_are_named():
    with pytest.raises(ValueError, match=r"TV: weights of shape \(3, 1, 4, 4\) do not broadcast"):
        TV((4, 4), weights=np.ones((3, 1, 4, 4))).prox(np.ones((2, 4, 4)), 0.3)
    with pytest.raises(ValueError, match=r"TV: weights of shape \(3, 1, 4, 4\) do not broadcast"):
        TV((4, 4), weights=np.ones((3, 1, 4, 4))).value(np.ones((2, 4, 4)))  # NumPy's broadcast error before


@pytest.mark.parametrize("kind", ["real", "grouped", "complex"])
def test_the_dual_ball_projects_onto_the_set_in_closed_form(kind):
    """``dual_ball(x)``: the dual's shape with the weights' batch axes, and the projection onto
    {|p_c| <= Lambda_c} in place, of all rows or of a block of them: a clip, a scaling of each pixel's
    channel vector (grouped), of each complex entry's modulus."""
    from adareg.operators import Conv2d

    rng = np.random.default_rng(12)
    shape, batch = (5, 6), (3, 1)
    if kind == "complex":
        W = Conv2d(rng.standard_normal((2, 3, 3)) + 1j * rng.standard_normal((2, 3, 3)), shape)
    else:
        W = FiniteDifference(shape)
    grouped = kind == "grouped"
    weights = rng.uniform(0.2, 1.0, (*batch, 1 if grouped else 2, *shape))
    ball = WeightedL1Analysis(W, weights, group_channels=grouped).dual_ball(np.zeros((4, *shape)))
    assert ball.shape == (3, 4, 2, *shape)
    p = 3 * rng.standard_normal(ball.shape)
    if kind == "complex":
        p = p + 3j * rng.standard_normal(ball.shape)
    size = np.sqrt(np.sum(np.abs(p) ** 2, axis=2, keepdims=True)) if grouped else np.abs(p)
    expected = p * np.minimum(1, weights / size)
    if kind == "real":
        expected = np.clip(p, -weights, weights)
    rows = p.copy()
    assert ball.project(rows, slice(1, 3)) is rows
    np.testing.assert_allclose(rows[..., 1:3, :], expected[..., 1:3, :], rtol=1e-13)
    np.testing.assert_array_equal(np.delete(rows, [1, 2], axis=-2), np.delete(p, [1, 2], axis=-2))
    np.testing.assert_allclose(ball.project(p), expected, rtol=1e-13)
    covered = np.zeros(shape[0], dtype=int)

    def mark(block):
        covered[block] += 1
        return 1

    assert sum(ball.blocks(mark, p)) >= 1 and np.all(covered == 1)
    with pytest.raises(ValueError, match=r"WeightedL1Analysis: x has shape \(3, 3\)"):
        WeightedL1Analysis(W, weights, group_channels=grouped).dual_ball(np.zeros((3, 3)))
    with pytest.raises(TypeError, match="WeightedL1Analysis: x"):
        WeightedL1Analysis(W, weights, group_channels=grouped).dual_ball(np.zeros(shape, dtype=np.int64))


def test_finite_difference_analysis_is_anisotropic_tv():
    """With W = D and a constant weight, the weighted-l1 prox is 1D TV denoising (dense dual reference)."""
    rng = np.random.default_rng(11)
    v = np.repeat(rng.random(5), 6) + 0.1 * rng.standard_normal(30)
    D = np.diff(np.eye(30), axis=0)  # independent of FiniteDifference; its zero last row carries no weight
    out = WeightedL1Analysis(FiniteDifference((30,)), 0.7).prox(v, 0.2, tol=1e-8, max_iter=100000)
    reference = dual_reference(v, D, np.full(29, 0.7), 0.2)
    np.testing.assert_allclose(out.x, reference, atol=1e-6)
    np.testing.assert_allclose(TV((30,), isotropic=False, weights=0.7).prox(v, 0.2, tol=1e-8, max_iter=100000).x,
                               reference, atol=1e-6)


def test_a_complex_bank_on_a_real_image_gives_the_prox_over_real_images():
    # a complex W turned a real v into a complex x (another problem), and W @ RealToComplex failed inside
    # the iteration; here against L-BFGS on |z| smoothed to sqrt(|z|^2 + eps^2) over real images
    from scipy.optimize import minimize

    from adareg.operators import Conv2d, RealToComplex

    rng = np.random.default_rng(5)
    shape, tau, eps = (6, 6), 0.05, 1e-9
    v = rng.uniform(0, 1, shape)
    kernel = rng.standard_normal((3, 3, 3)) + 1j * rng.standard_normal((3, 3, 3))
    W = Conv2d(kernel, shape)
    dense = np.stack([W(e.reshape(shape)).ravel() for e in np.eye(36)], axis=1)  # (3 * 36, 36), complex

    def objective(x):
        z = dense @ x
        size = np.sqrt(np.abs(z) ** 2 + eps**2)
        gradient = x - v.ravel() + tau * np.real(dense.conj().T @ (z / size))
        return 0.5 * np.sum((x - v.ravel()) ** 2) + tau * size.sum(), gradient

    reference = minimize(objective, v.ravel(), jac=True, method="L-BFGS-B",
                         options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 20000}).x.reshape(shape)

    def exact(x):  # the prox's objective, unsmoothed
        return 0.5 * np.sum((x - v) ** 2) + tau * np.abs(dense @ x.ravel()).sum()

    results = [reg.prox(v, tau, tol=1e-9, max_iter=100000).x
               for reg in (WeightedL1Analysis(W, 1.0), WeightedL1Analysis(W @ RealToComplex(shape), 1.0))]
    for x in results:
        assert x.dtype == np.float64
        assert exact(x) <= exact(reference) + 1e-12  # no worse than the smoothed reference, itself within ~1e-4
        np.testing.assert_allclose(x, reference, atol=1e-4)
    np.testing.assert_allclose(results[0], results[1], atol=1e-8)
    bounded = WeightedL1Analysis(W, 1.0).prox(v, tau, bounds=(0.0, 1.0), tol=1e-9, max_iter=100000).x
    assert bounded.dtype == np.float64 and bounded.min() >= 0 and bounded.max() <= 1


def test_a_bank_of_real_responses_of_complex_images_has_a_real_dual():
    # W x = D Re(conj(s) x), differences of a phase-corrected image: the prox refused its own complex dual inside
    # the iteration (W^H takes real arrays). With x = s (a + i b), a and b real, the problem splits: b is
    # Im(conj(s) v), a the prox of the weighted l1 of D a at u = Re(conj(s) v), solved here through its dual
    from adareg.operators import Diagonal, RealToComplex

    rng = np.random.default_rng(8)
    shape, tau = (4, 5), 0.3
    s = np.exp(1j * rng.uniform(0, 2 * np.pi, shape))
    v = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    D = FiniteDifference(shape)
    W = D @ RealToComplex(shape).H @ Diagonal(np.conj(s))
    weights = rng.uniform(0.5, 1.5, D.shape_out)
    out = WeightedL1Analysis(W, weights).prox(v, tau, tol=1e-8, max_iter=100000)
    dense_D = np.stack([D(e.reshape(shape)).ravel() for e in np.eye(v.size)], axis=1)
    u = np.real(np.conj(s) * v).ravel()
    a = dual_reference(u, dense_D, weights.ravel(), tau).reshape(shape)
    assert out.converged and out.x.dtype == np.complex128
    np.testing.assert_allclose(out.x, s * (a + 1j * np.imag(np.conj(s) * v)), atol=1e-6)
