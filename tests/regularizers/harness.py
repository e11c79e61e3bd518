"""One property harness for every regularizer.

``CASES`` maps a name to a hypothesis strategy that draws a :class:`Subject`: a
regularizer as the solvers use it (a :class:`~adareg.regularizers.Regularizer`,
or a learned family bound to a noise level by ``reg.at(sigma)``) and a small image
shape; a new regularizer joins the suite with one line there.
:func:`check_regularizer` runs the checks its ``minimisation`` declares, each
against an independent computation on dense matrices (``tests.operators.harness.dense``):

* ``"prox"``: ``prox(v, tau, bounds=...)`` without a box, with ``(0, None)`` and
  with ``(0, 1)``, against :func:`reference_prox` (SciPy's L-BFGS-B on the dual,
  or on a smoothed primal for grouped channels, with its own certified error):
  converged runs, and runs stopped after a few iterations (also warm-started),
  whose ``ProxResult.gap`` must certify ``||x - x*|| <= sqrt(2 gap)``; ``value``
  against the dense sum of weighted magnitudes;
* ``"smooth"``: ``value`` and ``grad`` (and ``value_and_grad_of_forward``) against
  central finite differences, and ``lipschitz(shape)`` at least the largest
  eigenvalue of finite-difference Hessians and every ratio of gradient to
  point differences on random pairs;
* ``"reweighting"``: the weights ``Lambda(x_k)``, and one step (``reg.step(x_k)``'s
  prox) checked as a prox against the reference of the weighted-l1 problem with
  those weights; the fixed point of ``adareg.solve(Identity(shape), y, ...)``
  against the reference solution of its own step;

and for every kind: batch axes (a batch gives what single images give),
the dtype (float32 or float64) and the backend (NumPy, or CuPy on a GPU) of
the results, that inputs are not mutated, and that read-only NumPy inputs are
accepted and give what writable ones give.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import numpy as np
from hypothesis import strategies as st
from scipy import optimize

import adareg
from adareg import backend, params
from adareg.operators import Conv2d, Identity
from adareg.regularizers import TV, WeightedL1Analysis
from adareg.regularizers.learned import LearnedRegularizer
from tests.operators.harness import dense
from tests.regularizers.test_adaptive import toy_sab, toy_sacnn
from tests.regularizers.test_ridge import toy_ridge

Bounds = tuple[float | None, float | None] | None

#: Noise levels at which the toy learned models are drawn (all in their trained range [0, 30/255]).
SIGMAS = (5 / 255, 15 / 255, 25 / 255)
#: The one noise level of the shipped models (8 x 8 images: their 13 x 13 filters need 7 pixels per side).
SHIPPED_SIGMA, SHIPPED_SHAPE = 15 / 255, (8, 8)
#: The boxes every prox is checked with.
BOXES: tuple[Bounds, ...] = (None, (0.0, None), (0.0, 1.0))
#: Requested certified relative error of converged proxes, by dtype (near sqrt(eps) in float32).
PROX_TOL = {np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-4}
#: Slack for rounding in the solver's duality gap, relative to ||v|| (float32 gaps lose about sqrt(eps)).
ROUNDING = {np.dtype(np.float32): 3e-3, np.dtype(np.float64): 1e-7}
#: Fixed-point residual and the allowed relative distance of a reweighting fixed point to the reference
#: solution of its own step (the residual bounds the distance only up to the loop's contraction factor).
FIXED_POINT = {np.dtype(np.float32): (1e-4, 1e-2), np.dtype(np.float64): (1e-6, 2e-4)}
#: Relative tolerance of values and single-versus-batch comparisons, by dtype.
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-11}


class Subject(NamedTuple):
    """A regularizer as the solvers use it (its ``minimisation`` says which) and the image shape to test it on."""

    reg: Any
    shape: tuple[int, int]


seeds = st.integers(0, 2**32 - 1)
sides = st.integers(5, 7)


@st.composite
def total_variations(draw, isotropic: bool) -> Subject:
    """TV with a scalar weight or a weight map (per axis and pixel when anisotropic), either boundary."""
    shape = (draw(sides), draw(sides))
    rng = np.random.default_rng(draw(seeds))
    weights = draw(st.sampled_from([0.5 + rng.random(), 0.2 + rng.random(shape if isotropic else (2, *shape))]))
    boundary = draw(st.sampled_from(["neumann", "periodic"]))
    return Subject(TV(shape, isotropic=isotropic, boundary=boundary, weights=weights), shape)


@st.composite
def filter_banks(draw, grouped: bool) -> Subject:
    """Weighted l1 of a random 2-3 channel ``Conv2d`` bank, weights per channel and pixel (some zero)."""
    shape = (draw(sides), draw(sides))
    rng = np.random.default_rng(draw(seeds))
    channels = draw(st.integers(2, 3))
    W = Conv2d(rng.standard_normal((channels, 3, 3)) / 3, shape,
               boundary=draw(st.sampled_from(["zero", "periodic", "reflect"])),
               method=draw(st.sampled_from(["direct", "fft"])))
    weights_shape = shape if grouped else (channels, *shape)
    weights = rng.random(weights_shape) * (rng.random(weights_shape) > 0.2)
    return Subject(WeightedL1Analysis(W, weights, group_channels=grouped), shape)


@st.composite
def toys(draw, build: Callable[[int], LearnedRegularizer]) -> Subject:
    """A small random learned model (``tests.regularizers``' toy builders) at one of :data:`SIGMAS`."""
    return Subject(build(draw(st.integers(0, 1000))).at(draw(st.sampled_from(SIGMAS))), (draw(sides), draw(sides)))


@functools.cache
def shipped(name: str) -> LearnedRegularizer:
    """A shipped model, loaded once."""
    return adareg.load(name)


#: The shipped models, one per registered family (each case one fixed model: one example is enough).
SHIPPED = params.families()


def shipped_model(name: str) -> st.SearchStrategy[Subject]:
    """The shipped model ``name`` at :data:`SHIPPED_SIGMA` (loaded when first drawn)."""
    return st.just(name).map(lambda n: Subject(shipped(n).at(SHIPPED_SIGMA), SHIPPED_SHAPE))


#: name -> strategy drawing a Subject; add a line to test a new regularizer.
CASES: dict[str, st.SearchStrategy[Subject]] = {
    "tv-isotropic": total_variations(isotropic=True),
    "tv-anisotropic": total_variations(isotropic=False),
    "weighted-l1-conv2d": filter_banks(grouped=False),
    "weighted-l1-conv2d-grouped": filter_banks(grouped=True),
    "crr-toy": toys(lambda seed: toy_ridge("crr", seed)),
    "wcrr-toy": toys(lambda seed: toy_ridge("wcrr", seed)),
    "sa-b-toy": toys(toy_sab),
    "sa-cnn-toy": toys(toy_sacnn),
    **{name: shipped_model(name) for name in SHIPPED},
}


def check_regularizer(subject: Subject, dtype: Any, device: str, seed: int = 0) -> None:
    """All checks of ``subject`` that its ``minimisation`` calls for, on inputs of ``dtype`` on ``device``."""
    checks = {"prox": check_prox, "smooth": check_smooth, "reweighting": check_reweighting}
    checks[subject.reg.minimisation](subject, np.dtype(dtype), device, np.random.default_rng(seed))


# --------------------------------------------------------------------------- helpers


def sample_image(rng: np.random.Generator, shape: tuple[int, ...], noise: float = 0.1) -> np.ndarray:
    """A float64 image of 2 x 2 constant blocks in [0, 1] plus Gaussian noise (so that boxes are active)."""
    blocks = np.kron(rng.random((2, 2)), np.ones((-(-shape[-2] // 2), -(-shape[-1] // 2))))
    return blocks[: shape[-2], : shape[-1]] + noise * rng.standard_normal(shape)


def _norm(a: Any) -> float:
    return float(np.linalg.norm(backend.to_numpy(a).astype(np.float64)))


def _frozen(a: np.ndarray) -> np.ndarray:
    """A read-only copy, as ``np.load(..., mmap_mode="r")`` gives."""
    a = a.copy()
    a.setflags(write=False)
    return a


def check_array(a: Any, shape: tuple[int, ...], dtype: np.dtype, device: str, what: str) -> None:
    """``a`` has ``shape``, ``dtype`` and lives on ``device``, with finite entries."""
    assert tuple(a.shape) == tuple(shape), f"{what}: shape {tuple(a.shape)}, expected {shape}"
    assert np.dtype(a.dtype) == dtype, f"{what}: dtype {a.dtype}, expected {dtype}"
    assert backend.device_of(a) == device, f"{what}: on {backend.device_of(a)}, expected {device}"
    assert np.all(np.isfinite(backend.to_numpy(a))), f"{what}: not finite"


def _box(bounds: Bounds) -> tuple[float, float]:
    lower, upper = bounds if bounds is not None else (None, None)
    return (-np.inf if lower is None else lower), (np.inf if upper is None else upper)


def dense_weights(reg: WeightedL1Analysis) -> np.ndarray:
    """``reg``'s weights in float64, one per group: ``(P,)`` pixels when grouped, else ``(C * P,)`` responses."""
    weights = reg.weights if isinstance(reg.weights, (int, float)) else backend.to_numpy(reg.weights)
    target = (1, *reg.W.shape_out[1:]) if reg.group_channels else reg.W.shape_out
    return np.broadcast_to(np.asarray(weights, dtype=np.float64), target).ravel()


def dense_value(M: np.ndarray, weights: np.ndarray, channels: int, x: np.ndarray) -> float:
    r""":math:`\sum_g \Lambda_g |(M x)_g|`, a group being a pixel's ``channels`` responses (one response if 1)."""
    responses = (M @ x.ravel()).reshape(channels, weights.size)
    return float(weights @ np.sqrt(np.sum(responses**2, axis=0)))


def reference_prox(M: np.ndarray, weights: np.ndarray, channels: int, v: np.ndarray, tau: float,
                   bounds: Bounds) -> tuple[np.ndarray, float]:
    r"""``x* = argmin_{x in C} 1/2 ||x - v||^2 + tau sum_g Lambda_g |(M x)_g|`` and a bound on ``||x - x*||``.

    ``M`` is the dense matrix of ``W`` (rows in the order of ``W.shape_out``), ``weights``
    one per group; ``channels > 1`` groups the channels at each pixel (isotropic).
    Ungrouped: L-BFGS-B on the box-constrained dual ``max_{|p| <= Lambda} D(p)``,
    ``x = P_C(v - tau M^T p)``.  Grouped (ball constraints): L-BFGS-B on the primal
    with ``|z|`` smoothed to ``sqrt(|z|^2 + eps^2)`` (the box as L-BFGS-B bounds),
    ``eps`` decreasing to 1e-12, whose gradient gives the feasible dual
    ``p = Lambda z / sqrt(|z|^2 + eps^2)``.  Either way the error bound is
    ``sqrt(2 (P(x) - D(p)))``, from the primal and dual values on the dense matrices.
    """
    shape, v = v.shape, v.ravel().astype(np.float64)
    n = v.size
    lower, upper = _box(bounds)
    A = M.reshape(channels, weights.size, n)
    options = {"ftol": 1e-16, "gtol": 1e-14, "maxiter": 20000, "maxcor": 30}
    if channels == 1:
        active = weights > 0
        Ma = M[active]

        def negative_dual(p: np.ndarray) -> tuple[float, np.ndarray]:
            x = np.clip(v - tau * Ma.T @ p, lower, upper)
            return -(0.5 * np.sum((x - v) ** 2) + tau * p @ (Ma @ x)), -tau * Ma @ x

        p = np.zeros(weights.size)
        p[active] = optimize.minimize(negative_dual, np.zeros(int(active.sum())), jac=True, method="L-BFGS-B",
                                      bounds=list(zip(-weights[active], weights[active])), options=options).x
        p = p.reshape(1, -1)
        x = np.clip(v - tau * M.T @ p.ravel(), lower, upper)
    else:
        x = np.clip(v, lower, upper)
        for eps in 10.0 ** -np.arange(2, 13, 2):
            def smoothed(x: np.ndarray) -> tuple[float, np.ndarray]:
                z = np.einsum("cpn,n->cp", A, x)
                size = np.sqrt(np.sum(z**2, axis=0) + eps**2)
                return (0.5 * np.sum((x - v) ** 2) + tau * weights @ size,
                        x - v + tau * np.einsum("cpn,cp->n", A, weights * z / size))

            x = optimize.minimize(smoothed, x, jac=True, method="L-BFGS-B", bounds=[_box(bounds)] * n,
                                  options=options).x
        z = np.einsum("cpn,n->cp", A, x)
        p = weights * z / np.sqrt(np.sum(z**2, axis=0) + eps**2)
    # P(x) - D(p) >= P(x) - P(x*) >= ||x - x*||^2 / 2, with D(p) = min_{u in C} 1/2 ||u - v||^2 + tau <p, M u>
    u = np.clip(v - tau * M.T @ p.ravel(), lower, upper)
    dual = 0.5 * np.sum((u - v) ** 2) + tau * p.ravel() @ (M @ u)
    primal = 0.5 * np.sum((x - v) ** 2) + tau * dense_value(M, weights, channels, x)
    return x.reshape(shape), float(np.sqrt(2 * max(primal - dual, 0.0)))


def certified(gap: float) -> float:
    """The distance to the exact prox that a duality gap certifies (``ProxResult``)."""
    return float(np.sqrt(2 * gap))


# --------------------------------------------------------------------------- prox


def check_prox(subject: Subject, dtype: np.dtype, device: str, rng: np.random.Generator) -> None:
    """Prox (with each box), gap certificates, value, batch axes, dtype, backend, no mutation, read-only."""
    reg = subject.reg
    tau = float(rng.uniform(0.05, 0.3))
    v64 = sample_image(rng, subject.shape)
    v = backend.to_device(v64.astype(dtype), device)
    M, weights = dense(reg.W), dense_weights(reg)
    channels = reg.W.shape_out[0] if reg.group_channels else 1
    for bounds in BOXES:
        x_ref, error = reference_prox(M, weights, channels, backend.to_numpy(v).astype(np.float64), tau, bounds)
        check_prox_against(reg, v, tau, bounds, x_ref, error)
    x = sample_image(rng, subject.shape)
    value = reg.value(backend.to_device(x.astype(dtype), device))
    assert np.isclose(value, dense_value(M, weights, channels, x), rtol=10 * RTOL[dtype], atol=0), f"{reg!r}: value"
    images = [v] + [backend.to_device(sample_image(rng, subject.shape).astype(dtype), device) for _ in range(2)]
    check_prox_batch(reg, [reg] * 3, images, tau, (0.0, 1.0))
    total = sum(reg.value(image) for image in images)
    assert np.isclose(reg.value(backend.namespace(v).stack(images)), total, rtol=10 * RTOL[dtype]), f"{reg!r}: batch"


def check_prox_against(reg: WeightedL1Analysis, v: Any, tau: float, bounds: Bounds, x_ref: np.ndarray,
                       error: float) -> None:
    """``reg.prox(v, tau, bounds=bounds)`` against ``x_ref`` (within ``error`` of the exact prox ``x*``).

    Converged runs must certify the requested tolerance and be within it of ``x*``; runs stopped
    after 1 and 10 iterations, and one warm-started from the first, must be within ``sqrt(2 gap)``.
    """
    dtype, device = np.dtype(v.dtype), backend.device_of(v)
    v_before = backend.to_numpy(v).copy()
    slack = error + ROUNDING[dtype] * _norm(v)
    lower, upper = _box(bounds)

    def distance(x: Any) -> float:
        return _norm(backend.to_numpy(x).astype(np.float64) - x_ref)

    out = reg.prox(v, tau, bounds=bounds, tol=PROX_TOL[dtype], max_iter=20000)
    check_array(out.x, v.shape, dtype, device, f"{reg!r}.prox")
    assert out.converged and certified(out.gap) <= PROX_TOL[dtype] * _norm(v), f"{reg!r}: not converged: {out}"
    x = backend.to_numpy(out.x)
    assert np.all(x >= lower) and np.all(x <= upper), f"{reg!r}: the prox leaves the box {bounds}"
    assert distance(out.x) <= certified(out.gap) + slack, (
        f"{reg!r}, bounds {bounds}: ||x - x_ref|| = {distance(out.x):.3g} > sqrt(2 gap) {certified(out.gap):.3g} "
        f"+ reference error {error:.3g}")
    early = [reg.prox(v, tau, bounds=bounds, tol=0.0, max_iter=k) for k in (1, 10)]
    early.append(reg.prox(v, tau, bounds=bounds, tol=0.0, max_iter=5, warm_start=early[0].state))
    for k, run in zip((1, 10, "1 + 5"), early):
        assert np.isfinite(run.gap) and run.gap >= 0, f"{reg!r}: gap {run.gap} after {k} iterations"
        assert distance(run.x) <= certified(run.gap) + slack, (
            f"{reg!r}, bounds {bounds}, {k} iterations: ||x - x*|| >= {distance(run.x) - error:.3g} "
            f"but the gap certifies {certified(run.gap):.3g}")
    np.testing.assert_array_equal(backend.to_numpy(v), v_before, err_msg=f"{reg!r}: prox mutated its input")
    if device == "cpu":
        again = reg.prox(_frozen(v), tau, bounds=bounds, tol=0.0, max_iter=10)
        np.testing.assert_allclose(again.x, early[1].x, rtol=0, atol=RTOL[dtype] * _norm(v),
                                   err_msg=f"{reg!r}: prox of a read-only input")


def check_prox_batch(batch_reg: WeightedL1Analysis, regs: list[WeightedL1Analysis], images: list[Any], tau: float,
                     bounds: Bounds) -> None:
    """``batch_reg``'s prox of the stacked ``images`` gives each image's prox by ``regs`` (the same
    regularizer, or a reweighting step's per image), each within what the two gaps certify."""
    v = images[0]
    dtype, device = np.dtype(v.dtype), backend.device_of(v)
    stacked = backend.namespace(v).stack(images)
    out = batch_reg.prox(stacked, tau, bounds=bounds, tol=PROX_TOL[dtype], max_iter=20000)
    check_array(out.x, stacked.shape, dtype, device, f"{batch_reg!r}.prox of a batch")
    for i, (reg, image) in enumerate(zip(regs, images)):
        single = reg.prox(image, tau, bounds=bounds, tol=PROX_TOL[dtype], max_iter=20000)
        difference = _norm(backend.to_numpy(out.x[i]).astype(np.float64) - backend.to_numpy(single.x))
        assert difference <= certified(out.gap) + certified(single.gap) + 2 * ROUNDING[dtype] * _norm(stacked), (
            f"{batch_reg!r}: image {i} of a batch is {difference:.3g} from its single prox")


# --------------------------------------------------------------------------- smooth


def check_smooth(subject: Subject, dtype: np.dtype, device: str, rng: np.random.Generator) -> None:
    """Value and gradient against finite differences, the Lipschitz bound, batch axes, dtype, backend."""
    reg, shape = subject.reg, subject.shape
    x64 = sample_image(rng, shape)
    x = backend.to_device(x64.astype(dtype), device)
    x_before = backend.to_numpy(x).copy()
    value, grad = reg.value(x), reg.grad(x)
    assert isinstance(value, float) and np.isfinite(value), f"{reg!r}: value {value!r}"
    check_array(grad, shape, dtype, device, f"{reg!r}.grad")
    combined_value, combined_grad = reg.value_and_grad_of_forward(reg.forward(x), x)
    assert np.isclose(combined_value, value, rtol=RTOL[dtype]), f"{reg!r}: value_and_grad_of_forward's value"
    np.testing.assert_allclose(backend.to_numpy(combined_grad), backend.to_numpy(grad), rtol=0,
                               atol=RTOL[dtype] * _norm(grad), err_msg=f"{reg!r}: value_and_grad_of_forward")
    np.testing.assert_array_equal(backend.to_numpy(x), x_before, err_msg=f"{reg!r}: mutated its input")

    # central differences of the float64 value: error <= L eps / 2 for an L-Lipschitz gradient
    L = reg.lipschitz(shape)
    eps = 1e-6
    on = functools.partial(backend.to_device, device=device)
    for _ in range(3):
        d = rng.standard_normal(shape)
        d /= np.linalg.norm(d)
        numeric = (reg.value(on(x64 + eps * d)) - reg.value(on(x64 - eps * d))) / (2 * eps)
        for g, tolerance in ((grad, 10 * np.sqrt(RTOL[dtype])), (reg.grad(on(x64)), 1e-7)):
            slope = float(np.vdot(backend.to_numpy(g), d))
            assert abs(slope - numeric) <= tolerance * _norm(g) + L * eps + 1e-9, (
                f"{reg!r}: <grad, d> = {slope:.10g} ({g.dtype}) but finite differences give {numeric:.10g}")

    # the Lipschitz bound: finite-difference Hessians (the basis as one batch) and random pairs
    n, h = int(np.prod(shape)), 1e-6
    basis = np.eye(n).reshape(n, *shape)
    # small images put the responses where trained profiles are steepest (there the shipped models' Hessians
    # come within 5% of the bound), large ones beyond the spline's grid
    for point in (x64, 0.01 * x64, 10 * rng.standard_normal(shape)):
        columns = backend.to_numpy(reg.grad(on(point + h * basis)) - reg.grad(on(point - h * basis))) / (2 * h)
        hessian = columns.reshape(n, n)
        largest = np.abs(np.linalg.eigvalsh((hessian + hessian.T) / 2)).max()
        assert largest <= L * (1 + 1e-6), f"{reg!r}: Hessian eigenvalue {largest:.6g} above lipschitz {L:.6g}"
    for scale in (1.0, 1e-2, 1e-4):
        a = rng.standard_normal(shape)
        b = a + scale * rng.standard_normal(shape)
        change = _norm(reg.grad(on(a)) - reg.grad(on(b)))
        assert change <= L * np.linalg.norm(a - b) * (1 + 1e-9), f"{reg!r}: gradient changes faster than {L:.6g}"

    # batch axes, read-only input
    images = [x, backend.to_device(sample_image(rng, shape).astype(dtype), device)]
    stacked = backend.namespace(x).stack(images)
    batched = reg.grad(stacked)
    check_array(batched, stacked.shape, dtype, device, f"{reg!r}.grad of a batch")
    for image, g in zip(images, batched):
        np.testing.assert_allclose(backend.to_numpy(g), backend.to_numpy(reg.grad(image)), rtol=0,
                                   atol=RTOL[dtype] * _norm(g) * 10, err_msg=f"{reg!r}: grad of a batch")
    assert np.isclose(reg.value(stacked), sum(reg.value(image) for image in images), rtol=10 * RTOL[dtype])
    if device == "cpu":
        np.testing.assert_allclose(reg.grad(_frozen(x)), grad, rtol=0, atol=RTOL[dtype] * _norm(grad),
                                   err_msg=f"{reg!r}: grad of a read-only input")
        assert np.isclose(reg.value(_frozen(x)), value, rtol=RTOL[dtype])


# --------------------------------------------------------------------------- reweighting


def check_reweighting(subject: Subject, dtype: np.dtype, device: str, rng: np.random.Generator) -> None:
    """Weights, one step against the reference, the fixed point of ``solve``, batch axes, dtype, backend."""
    bound, shape = subject.reg, subject.shape
    learned, sigma = bound.regularizer, bound.sigma
    lam = learned.lam(sigma)
    channels = learned.bank.channels
    M = dense(learned.bank.operator(shape))
    y64 = sample_image(rng, shape, noise=sigma)
    y = backend.to_device(y64.astype(dtype), device)
    x_k = backend.to_device((y64 + 0.5 * sigma * rng.standard_normal(shape)).astype(dtype), device)
    before = [backend.to_numpy(a).copy() for a in (y, x_k)]

    weights = bound.weights(x_k)
    check_array(weights, (channels, *shape), dtype, device, f"{bound!r}.weights")
    assert np.all(backend.to_numpy(weights) >= 0), f"{bound!r}: negative weights"
    step = bound.step(x_k)
    assert isinstance(step, WeightedL1Analysis) and not step.group_channels
    np.testing.assert_array_equal(dense_weights(step), backend.to_numpy(weights).astype(np.float64).ravel())
    # one step: the weighted-l1 prox with Lambda(x_k), against the dense reference of that problem
    for bounds in (None, (0.0, 1.0)):
        x_ref, error = reference_prox(M, dense_weights(step), 1, backend.to_numpy(y).astype(np.float64), lam, bounds)
        check_prox_against(step, y, lam, bounds, x_ref, error)
    # a batch: one weight map per image, each the single image's; the step's prox gives the single steps
    others = [backend.to_device((sample_image(rng, shape, noise=sigma)).astype(dtype), device) for _ in range(2)]
    images = [x_k, *others]
    stacked = backend.namespace(x_k).stack(images)
    batched = bound.weights(stacked)
    check_array(batched, (3, channels, *shape), dtype, device, f"{bound!r}.weights of a batch")
    for image, w in zip(images, batched):
        np.testing.assert_allclose(backend.to_numpy(w), backend.to_numpy(bound.weights(image)), rtol=0,
                                   atol=10 * RTOL[dtype], err_msg=f"{bound!r}: weights of a batch")
    # the step of the batch (from the batch x_k) on the batch y, y + noise, y - noise
    noisy = [y, *(y + backend.to_device((sign * sigma * rng.standard_normal(shape)).astype(dtype), device)
                  for sign in (1, -1))]
    check_prox_batch(bound.step(stacked), [bound.step(image) for image in images], noisy, lam, None)
    if device == "cpu":
        np.testing.assert_allclose(bound.weights(_frozen(x_k)), weights, rtol=0, atol=RTOL[dtype],
                                   err_msg=f"{bound!r}: weights of a read-only input")

    # the fixed point of solve is the exact solution of its own step
    bounds = BOXES[int(rng.integers(len(BOXES)))]
    tol, distance_tol = FIXED_POINT[dtype]
    solve_y = _frozen(y) if device == "cpu" else y
    result = adareg.solve(Identity(shape), solve_y, learned, sigma=sigma, bounds=bounds, tol=tol, max_iter=5000,
                          precision=dtype.name)
    check_array(result.x, shape, dtype, device, f"solve with {bound!r}")
    assert result.converged, f"{bound!r}: {result.message}"
    x = backend.to_numpy(result.x).astype(np.float64)
    own = dense_weights(WeightedL1Analysis(learned.bank.operator(shape), learned.weights(x, sigma)))
    x_ref, error = reference_prox(M, own, 1, backend.to_numpy(y).astype(np.float64), lam, bounds)
    assert _norm(x - x_ref) <= distance_tol * _norm(y) + error, (
        f"{bound!r}, bounds {bounds}: the fixed point is {_norm(x - x_ref) / _norm(y):.3g} (relative) from the "
        "solution of its own step")
    for a, b in zip((y, x_k), before):
        np.testing.assert_array_equal(backend.to_numpy(a), b, err_msg=f"{bound!r}: an input was mutated")
