"""PD3O against the optimality conditions of small dense problems and against the exact dual prox."""

from __future__ import annotations

import numpy as np
import pytest

import adareg
from adareg.functionals import LeastSquares
from adareg.operators import Identity
from adareg.regularizers import TV, WeightedL1Analysis
from adareg.solvers.primal_dual import PD3O, primal_dual
from adareg.stopping import default_rule
from tests.helpers import MatrixOperator


def run(solver: PD3O, iterations: int) -> PD3O:
    for _ in range(iterations):
        solver.step()
    return solver


def kkt_violation(H, y, w, W, weights, lam, x, p, bounds):
    r"""The largest violation of the optimality conditions, computed with the dense matrices.

    ``x`` minimises ``1/2 ||Hx - y||_w^2 + lam sum weights |Wx|`` over the box iff some ``p`` has
    ``|p| <= weights``, ``p (Wx) = weights |Wx|`` and ``g = Re H^H w (Hx - y) + lam W^T p`` in the
    normal cone of the box at ``x``: ``g = 0`` inside, ``g >= 0`` at the lower bound, ``g <= 0`` at the upper one.
    """
    lower, upper = bounds
    Wx = W @ x
    g = np.real(H.conj().T @ (w * (H @ x - y))) + lam * W.T @ p
    at_lower, at_upper = np.isclose(x, lower, atol=1e-9), np.isclose(x, upper, atol=1e-9)
    inside = ~at_lower & ~at_upper
    return max(
        float(np.max(np.abs(p) - weights, initial=0.0)),
        float(np.max(np.abs(p * Wx - weights * np.abs(Wx)))),
        float(np.max(np.abs(g[inside]), initial=0.0)),
        float(np.max(-g[at_lower], initial=0.0)),
        float(np.max(g[at_upper], initial=0.0)),
    )


@pytest.mark.parametrize("complex_data", [False, True])
def test_optimality_conditions_with_weights_and_bounds(complex_data):
    """Real unknowns, data weights, a box and per-entry l1 weights; complex data as MRI has."""
    rng = np.random.default_rng(3)
    m, n, c = 24, 12, 18
    H = rng.standard_normal((m, n))
    if complex_data:
        H = H + 1j * rng.standard_normal((m, n))
    x_true = np.clip(rng.standard_normal(n), -0.5, 0.8)
    y = H @ x_true + 0.1 * rng.standard_normal(m)
    if complex_data:
        y = y + 0.1j * rng.standard_normal(m)
    w = rng.uniform(0.5, 2.0, m)
    W = rng.standard_normal((c, n))
    weights = rng.uniform(0.2, 1.0, c)
    lam, bounds = 0.5, (-0.4, 0.6)
    data = LeastSquares(MatrixOperator(H), y, w)
    reg = WeightedL1Analysis(MatrixOperator(W), weights)
    solver = run(PD3O(data, reg, lam, np.zeros(n), bounds=bounds), 20000)
    assert kkt_violation(H, y, w, W, weights, lam, solver.x, solver.dual, bounds) < 1e-7


def test_a_complex_analysis_operator_keeps_real_images_real():
    """With a complex W, the iterate of a real start turned complex: PD3O minimised over complex images, below the
    real problem's minimum (an audit, 2026-12-06). Against SciPy's SLSQP on the real problem's epigraph form,
    min 1/2 ||Hx - y||^2 + lam sum_i w_i t_i with t_i^2 >= (Re W x)_i^2 + (Im W x)_i^2, t >= 0."""
    from scipy import optimize

    rng = np.random.default_rng(4)
    m, n, c = 16, 8, 10
    H = rng.standard_normal((m, n))
    y = H @ rng.standard_normal(n) + 0.1 * rng.standard_normal(m)
    W = rng.standard_normal((c, n)) + 1j * rng.standard_normal((c, n))
    weights, lam = rng.uniform(0.2, 1.0, c), 0.3
    reg = WeightedL1Analysis(MatrixOperator(W), weights)
    x = run(PD3O(LeastSquares(MatrixOperator(H), y), reg, lam, np.zeros(n)), 20000).x
    assert x.dtype == np.float64

    def epigraph(z):
        return 0.5 * np.sum((H @ z[:n] - y) ** 2) + lam * weights @ z[n:]

    cones = [{"type": "ineq", "fun": lambda z: z[n:] ** 2 - (W.real @ z[:n]) ** 2 - (W.imag @ z[:n]) ** 2},
             {"type": "ineq", "fun": lambda z: z[n:]}]
    reference = optimize.minimize(epigraph, np.r_[np.zeros(n), np.ones(c)], constraints=cones, method="SLSQP",
                                  options={"ftol": 1e-14, "maxiter": 2000}).x[:n]
    np.testing.assert_allclose(x, reference, rtol=0, atol=1e-6)


def test_identity_matches_the_dual_prox():
    """For H = I the minimiser is the prox of lam R, which dual FISTA certifies by its duality gap."""
    rng = np.random.default_rng(0)
    clean = np.kron(rng.random((3, 3)), np.ones((6, 6)))
    y = clean + 0.1 * rng.standard_normal(clean.shape)
    weights = rng.uniform(0.3, 1.0, (2, *y.shape))
    reg = TV(y.shape, isotropic=False, weights=weights)
    lam, bounds = 0.1, (0.0, 1.0)
    exact = reg.prox(y, lam, bounds=bounds, tol=1e-8, max_iter=200000)
    assert exact.converged
    result = primal_dual(LeastSquares(Identity(y.shape), y), reg, lam, np.zeros_like(y), bounds=bounds,
                         stop=default_rule(50000, 1e-12, None), track_objective=False)
    np.testing.assert_allclose(result.x, exact.x, atol=1e-6)


def test_weights_can_change_between_iterations():
    """After set_weights the iteration converges to the minimiser for the new weights."""
    rng = np.random.default_rng(1)
    H, W = rng.standard_normal((20, 10)), rng.standard_normal((15, 10))
    y = rng.standard_normal(20)
    first, second = rng.uniform(0.1, 1, 15), rng.uniform(0.1, 1, 15)
    data = LeastSquares(MatrixOperator(H), y)
    solver = run(PD3O(data, WeightedL1Analysis(MatrixOperator(W), first), 0.3, np.zeros(10)), 300)
    solver.set_weights(second)
    run(solver, 20000)
    fresh = run(PD3O(data, WeightedL1Analysis(MatrixOperator(W), second), 0.3, np.zeros(10)), 20000)
    np.testing.assert_allclose(solver.x, fresh.x, atol=1e-8)
    assert kkt_violation(H, y, 1.0, W, second, 0.3, solver.x, solver.dual, (-np.inf, np.inf)) < 1e-7


def test_weights_with_batch_axes_solve_one_problem_each():
    """An image without batch axes and weights with one: the minimiser for each set of weights."""
    rng = np.random.default_rng(5)
    H, W = rng.standard_normal((20, 10)), rng.standard_normal((15, 10))
    y = rng.standard_normal(20)
    weights = rng.uniform(0.1, 1, (3, 15))
    data = LeastSquares(MatrixOperator(H), y)
    solver = run(PD3O(data, WeightedL1Analysis(MatrixOperator(W), weights), 0.3, np.zeros(10)), 20000)
    assert solver.x.shape == (3, 10)
    for b in range(3):
        assert kkt_violation(H, y, 1.0, W, weights[b], 0.3, solver.x[b], solver.dual[b], (-np.inf, np.inf)) < 1e-7


def test_a_batch_stops_when_each_problem_has_converged():
    """Each image's relative change over the last iteration, from the iterates, is within tol.

    The second problem is another one scaled by 1e-3 (data and weights): it alone cannot move the batch's norms.
    """
    rng = np.random.default_rng(6)
    H, W = rng.standard_normal((20, 10)), rng.standard_normal((15, 10))
    ys = rng.standard_normal((2, 20)) * np.array([[1.0], [1e-3]])
    data = LeastSquares(MatrixOperator(H), ys)
    reg = WeightedL1Analysis(MatrixOperator(W), np.array([[1.0], [1e-3]]))
    iterates = []
    result = primal_dual(data, reg, 0.3, np.zeros((2, 10)), stop=default_rule(100000, 1e-6),
                         callback=lambda k, x: iterates.append(x.copy()))
    assert result.converged
    changes = [np.linalg.norm(a - b) / np.linalg.norm(b) for a, b in zip(iterates[-1], iterates[-2])]
    assert max(changes) <= 1e-6


def test_primal_step_and_lam_are_checked():
    data = LeastSquares(Identity((4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="primal_step"):
        PD3O(data, TV((4, 4)), 0.1, np.zeros((4, 4)), primal_step=2.0)
    with pytest.raises(TypeError, match="PD3O: primal_step must be a real number, got '1'"):
        PD3O(data, TV((4, 4)), 0.1, np.zeros((4, 4)), primal_step="1")
    for lam in (0.0, -1.0):  # 0 divided by zero, a negative one ran to the cap
        with pytest.raises(ValueError, match="PD3O: lam must be positive"):
            PD3O(data, TV((4, 4)), lam, np.zeros((4, 4)))


def test_tv_on_a_blur_reaches_the_minimiser_fista_finds():
    """On a blur, PD3O's minimiser equals FISTA's with an exact inner prox (independent solvers)."""
    x_true = adareg.data.shepp_logan((16, 16))
    H = adareg.operators.Blur(np.ones((3, 3)) / 9, x_true.shape, boundary="reflect")
    y = H(x_true) + 0.01 * np.random.default_rng(2).standard_normal(x_true.shape)
    reg = TV(x_true.shape)
    data = LeastSquares(H, y)
    fista = adareg.solvers.fista(data, np.zeros_like(y), reg=reg, lam=1e-3, bounds=(0, 1),
                                 stop=default_rule(20000, 1e-10, None), inner_tol=1e-7, inner_max_iter=1000)
    pd = primal_dual(data, reg, 1e-3, np.zeros_like(y), bounds=(0, 1), stop=default_rule(50000, 1e-12, None),
                     track_objective=False)
    np.testing.assert_allclose(pd.x, fista.x, atol=2e-6)


def test_a_vanishing_bank_and_a_regularizer_without_one():
    """W = 0 (the differences of a one-pixel image) divided by ||W||^2 = 0; a smooth model failed on its missing W."""
    from adareg.stopping import MaxIterations

    data = LeastSquares(Identity((1, 1)), np.full((1, 1), 0.7))
    result = primal_dual(data, TV((1, 1)), 0.1, np.zeros((1, 1)), stop=MaxIterations(400))  # x -= 1.9 (x - y)
    np.testing.assert_allclose(result.x, 0.7)  # the regularizer vanishes: the data term's minimiser
    with pytest.raises(TypeError, match="PD3O: reg must be a WeightedL1Analysis .* got RidgeObjective"):
        primal_dual(LeastSquares(Identity((4, 4)), np.ones((4, 4))), adareg.load("crr").at(0.1), 0.1,
                    np.zeros((4, 4)))


def test_the_returned_iterate_is_the_last_one():
    """With W = 0 each PD3O iteration is the gradient step x <- x - 1.9 (x - y): one step from 0 gives 1.9 y.

    The result and the callbacks once saw the iterate one step behind (one iteration returned ``x0``).
    """
    from adareg.stopping import MaxIterations

    y, seen = 0.7, []
    data = LeastSquares(Identity((1, 1)), np.full((1, 1), y))
    for iterations in (1, 2):
        seen.clear()
        result = primal_dual(data, TV((1, 1)), 0.1, np.zeros((1, 1)), stop=MaxIterations(iterations),
                             callback=lambda k, x: seen.append(float(x[0, 0])))
        expected = [1.9 * y, 1.9 * y - 1.9 * (1.9 * y - y)][:iterations]
        np.testing.assert_allclose(seen, expected)
        np.testing.assert_allclose(result.x[0, 0], expected[-1])
    box = primal_dual(data, TV((1, 1)), 0.1, np.zeros((1, 1)), bounds=(0, 1), stop=MaxIterations(1))
    np.testing.assert_allclose(box.x, 1.0)  # 1.33 clipped to the box
