"""L-BFGS against independent solutions (SciPy's L-BFGS-B, closed forms) and optimality conditions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from adareg.functionals import LeastSquares, SmoothFunctional, SmoothSum
from adareg.solvers import MaxIterations, RelativeChange, lbfgs
from adareg.solvers.lbfgs import MAX_HALVINGS
from tests.helpers import MatrixOperator


class LogCosh:
    r"""The smooth, convex, non-quadratic term :math:`\sum_i \log\cosh((C x)_i)`: gradient :math:`C^T \tanh(C x)`."""

    def __init__(self, C: np.ndarray):
        self.C = C

    def forward(self, x):
        return self.C @ x

    def value_of_forward(self, Cx):
        return float(np.sum(np.logaddexp(Cx, -Cx) - np.log(2.0)))

    def grad_of_forward(self, Cx, x):
        return self.C.T @ np.tanh(Cx)

    def value_and_grad_of_forward(self, Cx, x):
        return self.value_of_forward(Cx), self.grad_of_forward(Cx, x)


def problem(seed: int = 0, spread: float = 1.0):
    """``F(x) = ||A x - b||^2 / 2 + lam sum log cosh(C x)``, its Lipschitz bound, and ``F`` for SciPy.

    ``A``'s columns are scaled from 1 down to ``1 / spread`` (an ill-conditioned ``F`` for a large spread).
    """
    rng = np.random.default_rng(seed)
    A, b = rng.standard_normal((30, 20)) * np.geomspace(1.0, 1.0 / spread, 20), rng.standard_normal(30)
    C, lam = 0.1 * rng.standard_normal((40, 20)), 0.5
    lipschitz = np.linalg.norm(A, 2) ** 2 + lam * np.linalg.norm(C, 2) ** 2
    smooth = SmoothSum([(1.0, LeastSquares(MatrixOperator(A), b)), (lam, LogCosh(C))], lipschitz)

    def objective(x):  # written out again for SciPy, independently of the terms above
        r, Cx = A @ x - b, C @ x
        value = 0.5 * r @ r + lam * np.sum(np.log(np.cosh(Cx)))
        return value, A.T @ r + lam * C.T @ np.tanh(Cx)

    return smooth, objective


def scipy_minimiser(objective, n, bounds=None):
    out = optimize.minimize(objective, np.zeros(n), jac=True, method="L-BFGS-B", bounds=bounds,
                            options={"ftol": 1e-16, "gtol": 1e-13, "maxiter": 20000})
    return out.x


def test_unconstrained_minimiser_matches_scipy():
    smooth, objective = problem(0)
    result = lbfgs(smooth, np.zeros(20), stop=MaxIterations(1000) | RelativeChange(1e-12))
    assert result.converged
    reference = scipy_minimiser(objective, 20)
    np.testing.assert_allclose(result.x, reference, atol=1e-8 * np.linalg.norm(reference))
    assert np.linalg.norm(objective(result.x)[1]) <= 1e-8 * np.linalg.norm(objective(np.zeros(20))[1])


def test_box_constrained_minimiser_matches_scipy_and_kkt():
    smooth, objective = problem(1)
    lower, upper = -0.05, 0.1
    result = lbfgs(smooth, np.zeros(20), bounds=(lower, upper), stop=MaxIterations(1000) | RelativeChange(1e-12))
    x = result.x
    assert result.converged and x.min() >= lower and x.max() <= upper
    reference = scipy_minimiser(objective, 20, bounds=[(lower, upper)] * 20)
    np.testing.assert_allclose(x, reference, atol=1e-8)
    g = objective(x)[1]
    at_lower, at_upper = x <= lower, x >= upper
    free = ~(at_lower | at_upper)
    assert at_lower.any() and at_upper.any() and free.any()  # every case of the KKT conditions occurs
    np.testing.assert_allclose(g[free], 0.0, atol=1e-7)
    assert np.all(g[at_lower] >= -1e-7) and np.all(g[at_upper] <= 1e-7)


def test_real_image_complex_measurements_matches_the_normal_equations():
    """A complex H on real unknowns (MRI-like) with a Tikhonov term: the solution of Re(A^H A) x + mu x = Re(A^H b)."""
    rng = np.random.default_rng(2)
    A = rng.standard_normal((15, 10)) + 1j * rng.standard_normal((15, 10))
    b = rng.standard_normal(15) + 1j * rng.standard_normal(15)
    mu = 0.3
    identity = MatrixOperator(np.eye(10))
    terms = [(1.0, LeastSquares(MatrixOperator(A), b)), (mu, LeastSquares(identity, np.zeros(10)))]
    smooth = SmoothSum(terms, np.linalg.norm(A, 2) ** 2 + mu)
    result = lbfgs(smooth, np.zeros(10), stop=MaxIterations(1000) | RelativeChange(1e-13))
    assert result.x.dtype == np.float64
    expected = np.linalg.solve(np.real(A.conj().T @ A) + mu * np.eye(10), np.real(A.conj().T @ b))
    np.testing.assert_allclose(result.x, expected, rtol=1e-9, atol=1e-12)


def test_objective_decreases_and_the_stopping_quantity_bounds_the_error():
    smooth, objective = problem(3)
    bounds = (-0.05, 0.1)
    result = lbfgs(smooth, np.zeros(20), bounds=bounds, stop=MaxIterations(1000) | RelativeChange(1e-6))
    values, steps = result.history["objective"], result.history["step"]
    assert np.all(np.diff(values) <= 1e-12 * abs(values[0]))  # sufficient decrease at every step
    changes = result.history["relative_change"]
    assert np.all(np.isinf(changes[steps == 0])) and np.all(np.isfinite(changes[steps > 0]))
    assert result.converged and changes[-1] <= 1e-6
    reference = scipy_minimiser(objective, 20, bounds=[bounds] * 20)
    assert np.linalg.norm(result.x - reference) <= 1e-5 * np.linalg.norm(result.x)


def test_fewer_iterations_than_fista_on_an_ill_conditioned_problem():
    """What the solver is for: on a smooth problem with a spread spectrum, far fewer gradients than FISTA's."""
    from adareg.solvers import fista

    smooth, _ = problem(4, spread=30.0)
    stop = MaxIterations(5000) | RelativeChange(1e-8)
    quasi_newton = lbfgs(smooth, np.zeros(20), stop=stop)
    accelerated = fista(smooth, np.zeros(20), stop=stop)
    evaluations = quasi_newton.history["evaluations"].sum()
    assert quasi_newton.converged and accelerated.converged
    assert evaluations < 0.5 * accelerated.iterations


def test_budget_history_and_arguments():
    smooth, _ = problem(5)
    result = lbfgs(smooth, np.zeros(20), stop=MaxIterations(3))
    assert not result.converged and result.iterations == 3 and "MaxIterations(3)" in result.message
    assert result.history.columns == ("iteration", "objective", "relative_change", "evaluations", "step",
                                      "seconds")
    assert result.history["step"][0] == 0.0  # the first step is a gradient step (no model yet)
    seen = []
    stopped = lbfgs(smooth, np.zeros(20), callback=lambda k, x: seen.append(k) or k == 2)
    assert stopped.iterations == 2 and seen == [1, 2] and "callback" in stopped.message
    with pytest.raises(ValueError, match="memory"):
        lbfgs(smooth, np.zeros(20), memory=0)


def test_the_callback_sees_the_iteration_that_ends_a_run_stationary():
    """A run that ended stationary (or flat to rounding) skipped the callback of its last iteration: on y itself,
    one iteration and no call, so a callback recording iterates lost the result."""
    y = np.random.default_rng(0).standard_normal(16)
    seen = []
    result = lbfgs(LeastSquares(MatrixOperator(np.eye(16)), y), np.zeros(16),
                   callback=lambda k, x: seen.append((k, x.copy())) and False)
    assert result.converged and len(seen) == result.iterations >= 1 and seen[-1][0] == result.iterations
    np.testing.assert_array_equal(seen[-1][1], result.x)


def test_an_objective_that_does_not_decrease_ends_the_run_unconverged():
    """A value that contradicts its gradient (flat where the gradient is not): no step passes the line search."""

    class Flat:
        lipschitz = 4.0  # gradient steps go a quarter of the way to the gradient's zero

        def forward(self, x):
            return x

        def value_and_grad_of_forward(self, u, x):
            return 1.0, x - 1.0

    result = lbfgs(Flat(), np.zeros(5), stop=MaxIterations(100))
    assert not result.converged and result.iterations < 10 and "rounding" in result.message


def test_gradient_steps_that_descend_on_negative_curvature_go_on():
    """A weakly convex F: from 0.1, sum (x^2 - 1)^2 / 4 curves down, its pairs are skipped and the model stays
    empty; those gradient steps, which lower F, were counted as safeguards and the run stopped at x = 0.19,
    "no decrease beyond rounding", though a batch beside a convex image went on to 1."""

    class DoubleWell:
        lipschitz = 4.0  # F'' = 3 x^2 - 1 <= 4 where the iterates go (|x| <= 1.29)

        def forward(self, x):
            return x

        def value_and_grad_of_forward(self, u, x):
            return float(np.sum((u**2 - 1) ** 2) / 4), u**3 - u

    start = np.full(5, 0.1)
    reference = optimize.minimize(lambda x: DoubleWell().value_and_grad_of_forward(x, x), start, jac=True,
                                  method="L-BFGS-B", tol=1e-12).x
    assert np.allclose(reference, 1.0, atol=1e-4)  # SciPy's, and the closed form's minimiser
    result = lbfgs(DoubleWell(), start, stop=MaxIterations(200))
    assert result.converged, result.message
    np.testing.assert_allclose(result.x, reference, atol=1e-4)


def test_a_stationary_start_stops_at_once():
    smooth, objective = problem(6)
    minimiser = scipy_minimiser(objective, 20, bounds=[(0.0, 0.0)] * 20)  # every pixel held at the bound 0
    result = lbfgs(smooth, minimiser, bounds=(0.0, 0.0))
    assert result.converged and result.iterations == 1 and "stationary" in result.message


@pytest.mark.parametrize("memory, error", [(0, ValueError), (1.5, TypeError), ("3", TypeError), (float("nan"), TypeError)])
def test_memory_must_be_a_count(memory, error):
    # 1.5 was cut to 1, "3" taken, NaN failed converting to an int
    A = np.eye(3)
    data = LeastSquares(MatrixOperator(A), np.ones(3))
    with pytest.raises(error, match="lbfgs: memory must be"):
        lbfgs(SmoothSum([(1.0, data)], data.lipschitz), np.zeros(3), memory=memory)


@pytest.mark.parametrize("x0, batch_ndim, error, words", [
    (np.zeros(3), 1, ValueError, "batch_ndim must be from 0 to 0"),  # each entry would stop on its own change
    (np.zeros(3), True, TypeError, "batch_ndim must be an int"),
    ((0.0, 0.0, 0.0), 0, TypeError, "x0 must be a NumPy or CuPy array, got tuple"),
    (np.zeros(3, dtype=np.float16), 0, TypeError, "x0 has dtype float16"),
])
def test_a_bad_start_or_batch_is_refused(x0, batch_ndim, error, words):
    data = LeastSquares(MatrixOperator(np.eye(3)), np.ones(3))
    with pytest.raises(error, match=f"lbfgs: {words}"):
        lbfgs(SmoothSum([(1.0, data)], data.lipschitz), x0, batch_ndim=batch_ndim)


class BatchLogCosh(SmoothFunctional):
    r""":math:`\sum_i \log\cosh((C x)_i)` of each row of a batch ``x``; its per-image values are the base class's,
    :meth:`value_of_forward` image by image."""

    def __init__(self, C: np.ndarray):
        self.C = C

    def forward(self, x):
        return x @ self.C.T

    def value_of_forward(self, Cx):
        return float(np.sum(np.logaddexp(Cx, -Cx) - np.log(2.0)))

    def grad_of_forward(self, Cx, x):
        return np.tanh(Cx) @ self.C

    @property
    def lipschitz(self):
        return np.linalg.norm(self.C, 2) ** 2


def batch_problem(scales=(1.0, 100.0)):
    """:func:`problem`'s objective for a batch of data ``b_i``, of the sizes ``scales``, with its SciPy objectives."""
    rng = np.random.default_rng(7)
    A = rng.standard_normal((30, 20)) * np.geomspace(1.0, 0.1, 20)
    b = np.stack([scale * rng.standard_normal(30) for scale in scales])
    C, lam = 0.1 * rng.standard_normal((40, 20)), 0.5
    logcosh = BatchLogCosh(C)
    lipschitz = np.linalg.norm(A, 2) ** 2 + lam * logcosh.lipschitz

    def smooth(data):
        return SmoothSum([(1.0, LeastSquares(MatrixOperator(A), data)), (lam, logcosh)], lipschitz)

    def objective(i):
        def f(x):  # written out again for SciPy
            r, Cx = A @ x - b[i], C @ x
            return 0.5 * r @ r + lam * np.sum(np.log(np.cosh(Cx))), A.T @ r + lam * C.T @ np.tanh(Cx)
        return f

    return smooth, b, objective


def test_the_images_of_a_batch_take_the_steps_they_take_alone():
    """One L-BFGS model and one line search per image: data of very different sizes follow their own paths
    (with a model shared by the batch, the small image's steps were scaled by the large one's curvature)."""
    smooth, b, _ = batch_problem()
    batch = lbfgs(smooth(b), np.zeros((2, 20)), stop=MaxIterations(30), batch_ndim=1)
    for i in range(2):
        alone = lbfgs(smooth(b[i]), np.zeros(20), stop=MaxIterations(30))
        np.testing.assert_allclose(batch.x[i], alone.x, rtol=1e-9, atol=1e-12 * np.abs(alone.x).max())


def test_every_image_of_a_batch_reaches_its_own_minimiser():
    smooth, b, objective = batch_problem(scales=(1.0, 1e-2))
    result = lbfgs(smooth(b), np.zeros((2, 20)), stop=MaxIterations(2000) | RelativeChange(1e-12), batch_ndim=1)
    for i in range(2):
        minimiser = scipy_minimiser(objective(i), 20)
        assert np.linalg.norm(result.x[i] - minimiser) <= 1e-5 * np.linalg.norm(minimiser)


def test_per_image_values_add_up_to_the_objective():
    smooth, b, objective = batch_problem()
    x = np.random.default_rng(1).standard_normal((2, 20))
    values, grad = smooth(b).values_and_grad_of_forward(smooth(b).forward(x), x, 1)
    for i in range(2):
        value, gradient = objective(i)(x[i])
        assert np.isclose(values[i], value, rtol=1e-12) and np.allclose(grad[i], gradient, rtol=1e-12)
    np.testing.assert_allclose(smooth(b).values_of_forward(smooth(b).forward(x), 1), values, rtol=1e-12)


def test_an_image_without_decrease_takes_gradient_steps_while_the_other_converges():
    """Image 1's objective is flat where its gradient is not: it fails every line search and takes the gradient
    step, a quarter of the way to the gradient's zero at 1; image 0, a quadratic, goes on with its model."""

    class HalfFlat(SmoothFunctional):
        lipschitz = 4.0

        def forward(self, x):
            return x

        def value_of_forward(self, u):
            return float(np.sum(self.values_of_forward(u, 1)))

        def values_of_forward(self, u, batch_ndim):  # a batch of two
            return np.array([0.5 * np.sum((u[0] - 1.0) ** 2), 1.0])

        def grad_of_forward(self, u, x):
            return x - 1.0

    result = lbfgs(HalfFlat(), np.zeros((2, 5)), stop=MaxIterations(200) | RelativeChange(1e-8), batch_ndim=1)
    assert result.converged and result.iterations > 40  # image 1 closes by 3/4 a step: (3/4)^k <= 1e-8
    np.testing.assert_allclose(result.x[0], 1.0, rtol=1e-12)
    np.testing.assert_allclose(result.x[1], 1.0, rtol=1e-7)
    # while image 1 is far from 1, every halving fails for it, and it takes the gradient step (fraction 0)
    assert np.all(np.asarray(result.history["evaluations"][1:30]) == MAX_HALVINGS + 1)
    assert np.all(np.asarray(result.history["step"][1:30]) == 0.0)


def test_a_gradient_that_does_not_match_the_values_is_named_as_a_cause():
    """A user's gradient off by a constant: its line searches find no decrease, which was put down to the working
    precision alone (an extension-point audit, 2026-12-06)."""
    rng = np.random.default_rng(0)
    M = rng.standard_normal((12, 6))

    class Offset(LeastSquares):
        def _adjoint(self, weighted, x):
            return super()._adjoint(weighted, x) + 0.5

    result = lbfgs(Offset(MatrixOperator(M), rng.standard_normal(12)), np.zeros(6))
    assert not result.converged
    assert "no decrease of the objective beyond its rounding (the working precision's limit, or a gradient that " \
           "does not match the objective's values)" in result.message
