"""FISTA against independent solutions (SciPy) and optimality conditions."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from scipy import optimize

from adareg.functionals import LeastSquares
from adareg.operators import Blur, Identity
from adareg.regularizers import TV, WeightedL1Analysis
from adareg.solvers import Defaults, MaxIterations, Progress, RelativeChange, Residual, WallTime, fista
from tests.helpers import MatrixOperator


def lasso_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((30, 20))
    b = rng.standard_normal(30)
    lam = 0.3 * np.abs(A.T @ b).max()  # large enough for a sparse solution
    return A, b, lam


def lasso_reference(A, b, lam):
    """Independent solution: L-BFGS-B on the split x = u - w, u, w >= 0 (a smooth bound-constrained QP)."""
    n = A.shape[1]

    def objective(z):
        u, w = z[:n], z[n:]
        r = A @ (u - w) - b
        g = A.T @ r
        return 0.5 * r @ r + lam * z.sum(), np.concatenate([g + lam, -g + lam])

    out = optimize.minimize(objective, np.zeros(2 * n), jac=True, method="L-BFGS-B",
                            bounds=[(0, None)] * (2 * n), options={"ftol": 1e-16, "gtol": 1e-14, "maxiter": 10000})
    return out.x[:n] - out.x[n:]


@pytest.mark.parametrize("backtracking", [False, True])
def test_lasso_matches_scipy_and_kkt(backtracking):
    A, b, lam = lasso_problem()
    data = LeastSquares(MatrixOperator(A), b)
    reg = WeightedL1Analysis(Identity((20,)), 1.0)
    result = fista(data, np.zeros(20), reg=reg, lam=lam, backtracking=backtracking,
                   stop=MaxIterations(20000) | RelativeChange(1e-13))
    x = result.x
    assert result.converged
    reference = lasso_reference(A, b, lam)
    assert np.linalg.norm(x - reference) <= 1e-6 * np.linalg.norm(reference)
    # KKT: A^T (A x - b) + lam s = 0 with s in the subdifferential of ||x||_1
    g = A.T @ (A @ x - b)
    active = np.abs(x) > 1e-9
    assert active.any() and not active.all()
    np.testing.assert_allclose(g[active], -lam * np.sign(x[active]), atol=1e-6 * lam)
    assert np.all(np.abs(g[~active]) <= lam * (1 + 1e-6))


def test_box_constrained_least_squares_matches_lsq_linear():
    rng = np.random.default_rng(1)
    A, b = rng.standard_normal((25, 15)), rng.standard_normal(25)
    result = fista(LeastSquares(MatrixOperator(A), b), np.zeros(15), bounds=(0.0, 0.2),
                   stop=MaxIterations(50000) | RelativeChange(1e-14))
    reference = optimize.lsq_linear(A, b, bounds=(0.0, 0.2), tol=1e-15, method="bvls").x
    np.testing.assert_allclose(result.x, reference, atol=1e-6)
    assert result.x.min() >= 0.0 and result.x.max() <= 0.2


def test_backtracking_shrinks_the_step_but_never_below_half_of_one_over_lipschitz():
    A, b, lam = lasso_problem(2)
    data = LeastSquares(MatrixOperator(A), b)
    result = fista(data, np.zeros(20), backtracking=True, lipschitz=1e-3, stop=MaxIterations(50))
    steps = result.history["step"]
    lipschitz = np.linalg.norm(A, 2) ** 2
    assert steps[0] < 1e3  # started at 1 / 1e-3 and had to backtrack
    assert np.all(np.diff(steps) <= 0)  # L only grows (Beck & Teboulle)
    assert steps[-1] >= 0.5 / lipschitz  # the descent condition holds for every L >= ||A||^2


def test_backtracking_starts_from_the_data_terms_bound():
    """It started from L = 1 whatever the data term: with 0.02 A, whose L is 2500 times smaller, every step was 2500
    times too short, and the run stopped "converged" far from the minimiser (an audit, 2026-12-06)."""
    A, b, lam = lasso_problem(2)
    data = LeastSquares(MatrixOperator(0.02 * A), 0.02 * b)
    steps = fista(data, np.zeros(20), backtracking=True, stop=MaxIterations(5)).history["step"]
    assert steps[0] == pytest.approx(1 / np.linalg.norm(0.02 * A, 2) ** 2, rel=0.02)  # the operator's norm bound


def test_weighted_least_squares_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((12, 8)) + 1j * rng.standard_normal((12, 8))
    y = rng.standard_normal(12) + 1j * rng.standard_normal(12)
    w = rng.random(12)
    data = LeastSquares(MatrixOperator(A), y, weights=w)
    x = rng.standard_normal(8)
    value, grad = data.value(x), data.grad(x)
    assert grad.dtype == np.float64  # real unknowns: the real part of H^H w (H x - y)
    np.testing.assert_allclose(data.grad_of_forward(A @ x, x), grad)
    assert value == pytest.approx(0.5 * np.sum(w * np.abs(A @ x - y) ** 2))
    eps = 1e-6
    numeric = [(data.value(x + eps * e) - data.value(x - eps * e)) / (2 * eps) for e in np.eye(8)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    assert data.lipschitz >= w.max() * np.linalg.norm(A, 2) ** 2


@pytest.mark.parametrize("y, error", [
    (np.ones(5), ValueError),  # would broadcast against (4, 5)
    (np.ones((1, 5, 4)), ValueError),
    (np.float64(1.0), ValueError),
    (np.ones((4, 5), dtype=int), TypeError),
    ([[1.0] * 5] * 4, TypeError),
    (np.full((4, 5), np.nan), ValueError),
])
def test_least_squares_refuses_bad_measurements(y, error):
    with pytest.raises(error, match="LeastSquares: y"):
        LeastSquares(Identity((4, 5)), y)


def test_least_squares_accepts_batched_measurements():
    data = LeastSquares(Identity((4, 5)), np.ones((2, 4, 5)))
    assert data.grad(np.zeros((2, 4, 5))).shape == (2, 4, 5)


def test_least_squares_keeps_its_operator():
    """Its gradient applies the adjoint made with H: after data.H = M2 it used M1's, and FISTA stopped "converged"
    29.5 % from M2's least-squares solution (a review of session 35's code, 2026-12-06)."""
    rng = np.random.default_rng(0)
    M1 = rng.standard_normal((6, 4))
    data = LeastSquares(MatrixOperator(M1), rng.standard_normal(6))
    x = rng.standard_normal(4)
    np.testing.assert_allclose(data.grad(x), M1.T @ (M1 @ x - data.y), atol=1e-12)
    with pytest.raises(AttributeError, match="LeastSquares.H cannot be changed"):
        data.H = MatrixOperator(M1 + 0.2)


def test_least_squares_refuses_complex_weights():
    with pytest.raises(TypeError, match="weights must be real"):
        LeastSquares(Identity((4, 5)), np.ones((4, 5)), weights=np.ones((4, 5)) * (1 + 1j))


@pytest.mark.parametrize("weights, error, words", [
    ([[1.0, 2.0], [1.0]], TypeError, "must be real numbers or an array"),  # ragged: NumPy's unnamed ValueError before
    (True, TypeError, "must be real numbers or an array, got True"),  # taken as weight 1 before
    (["a"] * 5, TypeError, "must be real numbers or an array"),
    ([1.0, -1.0, 1.0, 1.0, 1.0], ValueError, "must be non-negative"),
    (np.ones(3), ValueError, r"of shape \(3,\) do not broadcast to y of shape \(4, 5\)"),
])
def test_least_squares_names_its_weights_as_solve_does(weights, error, words):
    with pytest.raises(error, match=f"^LeastSquares: weights {words}"):
        LeastSquares(Identity((4, 5)), np.ones((4, 5)), weights=weights)


def test_least_squares_takes_an_image_without_weight():
    """All-zero weights are refused by solve, but not by the data term: a batch's chunk may hold such an image."""
    rng = np.random.default_rng(0)
    y, x = rng.standard_normal((2, 4, 5)), rng.standard_normal((2, 4, 5))
    weights = np.stack([np.zeros((4, 5)), rng.random((4, 5))])
    data = LeastSquares(Identity((4, 5)), y, weights=[[list(row) for row in image] for image in weights])
    np.testing.assert_allclose(data.grad(x), weights * (x - y), atol=1e-12)
    assert data.weights.dtype == np.float64


def test_fista_refuses_a_bad_weight_or_a_regularizer_without_prox():
    import adareg
    from adareg.regularizers import TV

    data = LeastSquares(Identity((4, 5)), np.ones((4, 5)))
    for lam, error, words in ((0.0, ValueError, "fista: lam must be positive"),
                              (float("nan"), ValueError, "fista: lam must be finite"),
                              ("0.1", TypeError, "fista: lam must be a real number")):
        with pytest.raises(error, match=words):  # it named the prox's tau, or was taken as it came
            fista(data, np.zeros((4, 5)), reg=TV((4, 5)), lam=lam)
    with pytest.raises(TypeError, match="fista: reg must be a Regularizer with a prox, got RidgeObjective"):
        fista(data, np.zeros((4, 5)), reg=adareg.load("crr").at(0.1), lam=0.1)
    # a regularizer for other images failed in the first prox, as "TV: v has shape (4, 5)", an argument not given
    with pytest.raises(ValueError, match=r"^fista: x0's images have shape \(4, 5\), but reg is for images of shape "
                                         r"\(5, 5\)"):
        fista(data, np.zeros((4, 5)), reg=TV((5, 5)), lam=0.1)


@pytest.mark.parametrize("x0, batch_ndim, error, words", [
    (np.zeros((4, 5)), 2, ValueError, "batch_ndim must be from 0 to 1"),  # every pixel a "problem" of its own
    (np.zeros((4, 5)), -1, ValueError, "batch_ndim must be from 0 to 1"),
    (np.zeros((4, 5)), 1.0, TypeError, "batch_ndim must be an int"),
    ([[0.0] * 5] * 4, 0, TypeError, "x0 must be a NumPy or CuPy array, got list"),
    (np.zeros((4, 5), dtype=int), 0, TypeError, "x0 has dtype int64"),
])
def test_fista_refuses_a_bad_start_or_batch(x0, batch_ndim, error, words):
    data = LeastSquares(Identity((4, 5)), np.ones((4, 5)))
    with pytest.raises(error, match=f"fista: {words}"):
        fista(data, x0, batch_ndim=batch_ndim)


class TestStopping:
    def setup_method(self):
        A, b, lam = lasso_problem(4)
        self.data = LeastSquares(MatrixOperator(A), b)
        self.reg = WeightedL1Analysis(Identity((20,)), 1.0)
        self.lam = lam

    def run(self, **kwargs):
        return fista(self.data, np.zeros(20), reg=self.reg, lam=self.lam, **kwargs)

    def test_max_iterations_is_not_convergence(self):
        result = self.run(stop=MaxIterations(7))
        assert result.iterations == 7 and not result.converged and len(result.history) == 7
        assert "MaxIterations(7)" in result.message

    def test_relative_change_is_convergence(self):
        result = self.run(stop=MaxIterations(100000) | RelativeChange(1e-8))
        assert result.converged and result.history["relative_change"][-1] <= 1e-8

    def test_wall_time(self):
        result = self.run(stop=MaxIterations(10**9) | WallTime(0.2))
        assert not result.converged and 0.2 <= result.history["seconds"][-1] < 5.0

    def test_rules_combine_flat(self):
        rule = MaxIterations(3) | RelativeChange(1e-3) | WallTime(9)
        assert len(rule.rules) == 3 and "MaxIterations(3) | RelativeChange(0.001)" in repr(rule)

    def test_callback_can_stop(self):
        seen = []
        result = self.run(callback=lambda k, x: seen.append(k) or k == 4)
        assert result.iterations == 4 and seen == [1, 2, 3, 4] and "callback" in result.message
        # NumPy's True (a comparison of NumPy numbers) stops too; other truthy values do not
        result = self.run(callback=lambda k, x: np.float64(k) >= 3, stop=MaxIterations(50))
        assert result.iterations == 3 and "callback" in result.message
        assert self.run(callback=lambda k, x: k, stop=MaxIterations(6)).iterations == 6

    def test_iteration_caps_are_counts(self):
        for n in (2.7, True, float("inf")):  # 2.7 ran 2 iterations, True one
            with pytest.raises(TypeError, match="MaxIterations: n must be an int"):
                MaxIterations(n)

    def test_bounds_apply_to_real_images_only(self):
        # a clip of complex numbers orders them lexicographically: 0.5 + 2j survived the box (0, 1)
        data = LeastSquares(Identity((20,)), np.full(20, 0.5 + 2j))
        with pytest.raises(TypeError, match="bounds apply to real images, but the image is complex"):
            fista(data, np.zeros(20, complex), reg=self.reg, lam=0.1, bounds=(0.0, 1.0), stop=MaxIterations(3))

    def test_history_table(self):
        result = self.run(stop=MaxIterations(5))
        assert result.history.columns == ("iteration", "objective", "relative_change", "inner_iterations",
                                          "step", "seconds")
        np.testing.assert_array_equal(result.history["iteration"], [1, 2, 3, 4, 5])
        assert np.all(np.isfinite(result.history["objective"]))
        assert np.all(np.diff(result.history["seconds"]) >= 0)

    def test_no_progress_bar_by_default(self, capsys):
        self.run(stop=MaxIterations(3))
        assert capsys.readouterr().err == ""
        self.run(stop=MaxIterations(3), progress=True)
        assert "FISTA" in capsys.readouterr().err

    @pytest.mark.parametrize("make", [lambda: MaxIterations(0), lambda: RelativeChange(-1e-3), lambda: WallTime(-1),
                                      lambda: Residual(-1e-3)])
    def test_bad_rules(self, make):
        with pytest.raises(ValueError):
            make()


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_conjugate_gradient_matches_a_dense_solve(dtype):
    from adareg.solvers import conjugate_gradient

    rng = np.random.default_rng(6)
    B = rng.standard_normal((12, 12)) + (1j * rng.standard_normal((12, 12)) if dtype == np.complex128 else 0)
    M = B.conj().T @ B + 0.5 * np.eye(12)  # Hermitian positive definite
    b = (rng.standard_normal((2, 12)) + (1j if dtype == np.complex128 else 0)).astype(dtype)  # a batch of two
    result = conjugate_gradient(lambda v: v @ M.T, b, tol=1e-12, max_iter=200)
    assert result.converged
    np.testing.assert_allclose(result.x, np.linalg.solve(M, b.T).T, rtol=1e-9)


@pytest.mark.parametrize("apply, got", [(lambda v: v[:3], r"\(3,\)"), (lambda v: v[:, None], r"\(5, 1\)"),
                                        (lambda v: list(v), "list")])
def test_conjugate_gradient_names_a_product_of_another_shape(apply, got):
    # numpy's "operands could not be broadcast together" came from inside the iteration, or (5, 1) broadcast
    from adareg.solvers import conjugate_gradient

    with pytest.raises(ValueError, match=rf"conjugate_gradient: apply\(x\) must return an array of b's shape \(5,\), "
                                         rf"got {got}"):
        conjugate_gradient(apply, np.ones(5))
    with pytest.raises(ValueError, match="must return an array of b's shape"):  # from x0's residual too
        conjugate_gradient(apply, np.ones(5), x0=np.ones(5))


def test_defaults_fill_what_the_caller_left_out():
    defaults = Defaults(max_iter=40, tol=1e-3, measure=Residual)
    assert repr(defaults.rule()) == "Residual(0.001) | MaxIterations(40)"
    assert repr(defaults.rule(max_iter=7, max_time=2.0)) == "Residual(0.001) | MaxIterations(7) | WallTime(2 s)"
    rule = defaults.rule(tol=1e-5)
    # a residual rule reads the residual, never the relative change, and means convergence
    assert rule.check(Progress(iteration=1, seconds=0.0, relative_change=0.0)) is None
    fired = rule.check(Progress(iteration=1, seconds=0.0, residual=1e-5))
    assert isinstance(fired, Residual) and fired.converged
    assert not rule.check(Progress(iteration=40, seconds=0.0, residual=1.0)).converged
    # the tolerance met on the last allowed iteration: converged
    assert rule.check(Progress(iteration=40, seconds=0.0, residual=1e-6)).converged


def test_conjugate_gradient_stops_where_the_system_is_singular_along_its_direction():
    """An inconsistent semi-definite system (b outside M's range) divided by a vanishing curvature: all-NaN x before."""
    from adareg.solvers import conjugate_gradient

    rng = np.random.default_rng(9)
    B = rng.standard_normal((20, 12))
    M = B @ B.T  # rank 12 of 20: positive semi-definite
    b = rng.standard_normal(20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow on the way
        result = conjugate_gradient(lambda v: M @ v, b, tol=1e-12, max_iter=100)
    # stopped, not converged, with a finite iterate and the reason (it need not be a useful one: there is no solution)
    assert not result.converged and "CG broke down" in result.message and np.all(np.isfinite(result.x))
    zero = conjugate_gradient(lambda v: 0 * v, b)  # the zero operator: no step at all
    assert zero.iterations == 0 and not zero.converged and not zero.x.any()
    # a consistent singular system (b in the range) is solved
    consistent = conjugate_gradient(lambda v: M @ v, M @ b, tol=1e-10, max_iter=100)
    assert consistent.converged


def test_conjugate_gradient_stops_on_its_cap_unconverged():
    from adareg.solvers import conjugate_gradient

    rng = np.random.default_rng(8)
    B = rng.standard_normal((30, 30))
    M = B.T @ B + 1e-3 * np.eye(30)  # ill-conditioned: 3 iterations cannot reach 1e-12
    b = rng.standard_normal(30)
    result = conjugate_gradient(lambda v: M @ v, b, tol=1e-12, max_iter=3)
    assert result.iterations == 3 and not result.converged and "MaxIterations(3)" in result.message
    # the recorded residual is the true one, computed densely
    np.testing.assert_allclose(result.history["residual"][-1], np.linalg.norm(b - M @ result.x) / np.linalg.norm(b),
                               rtol=1e-6)


def test_conjugate_gradient_messages_give_the_true_residual():
    """At its cap with tol 0, the message gave the recursion's residual, 3e-73, where the true one, computed
    densely, is 1e-13 (an audit, 2026-12-08); a breakdown's message likewise gave the recursion's."""
    from adareg.solvers import conjugate_gradient

    rng = np.random.default_rng(10)
    B = rng.standard_normal((50, 50))
    M = B.T @ B + np.eye(50)
    b = rng.standard_normal(50)
    result = conjugate_gradient(lambda v: M @ v, b, tol=0.0, max_iter=400)
    true = np.linalg.norm(b - M @ result.x) / np.linalg.norm(b)
    assert not result.converged and result.history["residual"][-1] < 1e-3 * true  # the premise: the recursion's
    assert re.match(r"relative residual (\S+) after 400 CG", result.message)
    assert float(re.match(r"relative residual (\S+) ", result.message).group(1)) == pytest.approx(true, rel=1e-2, abs=0)
    C = rng.standard_normal((20, 12))
    singular, c = C @ C.T, rng.standard_normal(20)
    broken = conjugate_gradient(lambda v: singular @ v, c, tol=1e-12, max_iter=100)
    true = np.linalg.norm(c - singular @ broken.x) / np.linalg.norm(c)
    assert "CG broke down" in broken.message
    assert float(re.search(r"relative residual (\S+)$", broken.message).group(1)) == pytest.approx(true, rel=1e-2,
                                                                                                   abs=0)


def test_conjugate_gradient_is_converged_only_where_the_true_residual_meets_tol():
    """At tol below the machine precision times the condition number, the recursively updated residual met tol
    while b - M x, computed densely, stayed 13 times above it: reported converged."""
    from adareg.solvers import conjugate_gradient

    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    M = Q @ np.diag(np.logspace(0, 8, 40)) @ Q.T
    M = (M + M.T) / 2
    b = rng.standard_normal(40)
    for tol in (1e-10, 1e-6):
        result = conjugate_gradient(lambda v: M @ v, b, tol=tol, max_iter=5000)
        true = np.linalg.norm(b - M @ result.x) / np.linalg.norm(b)
        assert result.converged == (true <= tol), (tol, true, result.message)
    assert not conjugate_gradient(lambda v: M @ v, b, tol=1e-10, max_iter=5000).converged


def test_a_batch_follows_its_images_own_paths():
    """Each image of a batch has its own momentum and restarts: after a fixed number of iterations a batched
    run equals one-by-one runs to rounding (an exact prox, the projection onto x >= 0, and one shared step).

    With one momentum for the batch, an image's restart reset the others' and they agreed only roughly.
    """
    rng = np.random.default_rng(7)
    A = rng.standard_normal((30, 20))
    ys = np.stack([A @ np.abs(rng.standard_normal(20)) + 0.1 * rng.standard_normal(30),
                   A @ np.abs(rng.standard_normal(20)) + 3.0 * rng.standard_normal(30),  # restarts at other times
                   -A @ np.ones(20)])
    H = MatrixOperator(A)
    alone = [fista(LeastSquares(H, y), np.zeros(20), bounds=(0, None), stop=MaxIterations(120)).x for y in ys]
    batch = fista(LeastSquares(H, ys), np.zeros((3, 20)), bounds=(0, None), stop=MaxIterations(120), batch_ndim=1)
    np.testing.assert_allclose(batch.x, np.stack(alone), rtol=0, atol=1e-12)
    assert batch.x.dtype == np.float64


@pytest.mark.parametrize("stop", [None, MaxIterations(50)])
def test_a_lipschitz_constant_too_small_is_named_where_the_gradient_step_overflows(stop):
    # with steps 1000 times too long the gradient step overflowed first, and the certified prox refused it as its
    # own bad input ("TV.prox: v contains 256 NaN or Inf values"), which named neither fista nor the constant
    from adareg.regularizers import TV

    rng = np.random.default_rng(0)
    y = rng.random((16, 16))
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(FloatingPointError, match=r"fista: the iterates diverged to NaN or Inf; .* Lipschitz"):
            fista(LeastSquares(Identity(y.shape), y), np.zeros_like(y), reg=TV(y.shape), lam=1e-3, lipschitz=1e-3,
                  stop=stop)


def test_chunks_with_weights_for_each_image_are_refused():
    """Each chunk's prox took the weights of every image: the run went to its end, then failed in a reshape (an
    audit, 2026-12-06; adareg.solve runs such a batch as one piece)."""
    rng = np.random.default_rng(21)
    H = Blur(np.ones((3, 3)) / 9, (8, 8))
    data = LeastSquares(H, rng.random((2, 8, 8)))
    reg = TV((8, 8), weights=rng.uniform(0.5, 2.0, (2, 1, 8, 8)))
    chunks = [(slice(i, i + 1), data.images(slice(i, i + 1))) for i in range(2)]
    with pytest.raises(ValueError, match=r"^fista: reg holds weights for each image of a batch \(2,\)"):
        fista(chunks, np.zeros((2, 8, 8)), reg=reg, lam=0.01, batch_ndim=1)
    assert fista(data, np.zeros((2, 8, 8)), reg=reg, lam=0.01, batch_ndim=1).x.shape == (2, 8, 8)
