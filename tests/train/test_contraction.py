"""The contraction bound of the reweighting map against dense matrices and exact solves of the map."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import lsq_linear

from adareg_train.families import build, model_class

from .test_families import ADAPTIVE, perturb

#: A small bank (4 channels, 5 x 5 kernel) and mask network, so that the map's Jacobian is a dense 36 x 36 matrix.
SMALL = {"bank_channels": [2, 4], "bank_kernels": [3, 3], "boundary": "reflect", "lam_knots": 7,
         "mask_channels": [4, 4], "mask_kernels": [3, 3], "activation": "leaky_relu",
         "profile_knots": 21, "profile_grid": [0.0, 0.25], "scale_knots": 7, "blur_kernel": 3}
SIZE = 6


def small_model(family: str, seed: int):
    model = build(family, {key: SMALL[key] for key in model_class(family).default_architecture}, seed=seed)
    perturb(model, seed + 1)
    return model


def dense(apply, n: int) -> torch.Tensor:
    """The matrix of a linear map of ``(1, 1, SIZE, SIZE)`` images, column by column."""
    basis = torch.eye(n, dtype=torch.float64).view(n, 1, SIZE, SIZE)
    return torch.stack([apply(e[None]).flatten() for e in basis], dim=1)


def weights_flat(model, sigma, W):
    return lambda u: model.weights(u.view(1, 1, SIZE, SIZE), sigma, W).flatten()


def exact_map(model, y, sigma, W, lam, x):
    """``S(x) = y - W^T p`` and ``p``, the box-constrained least squares ``min ||W^T p - y||, |p| <= lam Lambda(x)``
    solved exactly by SciPy's bounded-variable least squares (independent of the model's dual FISTA)."""
    with torch.no_grad():
        bound = (lam * model.weights(x, sigma, W)).flatten().numpy()
        Wt = dense(lambda e: W(e), SIZE * SIZE).numpy().T  # W^T, (n, C n)
    p = lsq_linear(Wt, y.flatten().numpy(), bounds=(-bound, bound), method="bvls", tol=1e-14).x
    u = y.flatten().numpy() - Wt @ p
    return torch.from_numpy(u).view(1, 1, SIZE, SIZE), torch.from_numpy(p).view(1, -1, SIZE, SIZE)


def problem(family: str, seed: int, strength: float = 20):
    """A small model, a noisy 6 x 6 image ``y``, ``sigma``, ``W``, ``lam`` (``strength`` times the model's) and a
    point ``x`` near ``y``."""
    model = small_model(family, seed)
    rng = np.random.default_rng(seed)
    clean = np.kron(rng.random((3, 3)), np.ones((2, 2)))
    y = torch.from_numpy(clean + 0.1 * rng.standard_normal(clean.shape))[None, None]
    sigma = torch.tensor([0.1], dtype=torch.float64)
    W = model.bank.operator((SIZE, SIZE))
    lam = strength * model.lam(sigma).view(-1, 1, 1, 1)  # a strong weight: a larger Jacobian
    with torch.no_grad():
        x = y + 0.05 * torch.from_numpy(rng.standard_normal(y.shape))  # any point, not only the fixed point
    return model, y, sigma, W, lam, x


@pytest.mark.parametrize("family", ADAPTIVE)
@pytest.mark.parametrize("seed", [0, 1])
def test_estimate_is_the_norm_of_the_dense_bound(family, seed):
    model, y, sigma, W, lam, x = problem(family, seed)
    _, p = exact_map(model, y, sigma, W, lam, x)
    n = SIZE * SIZE
    with torch.no_grad():
        z = p + W(y - W.adjoint(p))
        signs = torch.where(z.abs() > lam * model.weights(x, sigma, W), torch.sign(z), 0.0).flatten()
        Wd = dense(lambda e: W(e), n)
    jacobian = torch.autograd.functional.jacobian(weights_flat(model, sigma, W), x.flatten())
    bound = torch.linalg.matrix_norm(lam.item() * Wd.T @ (signs[:, None] * jacobian), ord=2).item()
    assert bound > 0.1  # a non-trivial Jacobian: active entries where the weights move with x

    converged = model.contraction(y, sigma, x, p, W, lam, 300, torch.Generator().manual_seed(0))
    assert converged.shape == (1,) and converged.requires_grad
    assert converged.item() == pytest.approx(bound, rel=1e-6)
    first = model.contraction(y, sigma, x, p, W, lam, 1, torch.Generator().manual_seed(0)).item()
    assert 0 < first <= bound * (1 + 1e-12)  # a lower estimate at every iteration


@pytest.mark.parametrize("family", ADAPTIVE)
def test_bound_dominates_the_jacobian_of_the_exact_map(family):
    """Central differences of the exactly solved map ``S``: its Jacobian's norm is at most the bound.

    With a moderate weight the bound is close (0.82 to 0.84 times it: the projector ``P`` removes little); with
    the strongest weights it is loose, where ``S`` sets most responses to 0.
    """
    model, y, sigma, W, lam, x = problem(family, 2, strength=4)
    _, p = exact_map(model, y, sigma, W, lam, x)
    h, n = 1e-6, SIZE * SIZE
    columns = []
    for j in range(n):
        step = torch.zeros(n, dtype=torch.float64)
        step[j] = h
        step = step.view(1, 1, SIZE, SIZE)
        plus, _ = exact_map(model, y, sigma, W, lam, x + step)
        minus, _ = exact_map(model, y, sigma, W, lam, x - step)
        columns.append(((plus - minus) / (2 * h)).flatten())
    true_norm = torch.linalg.matrix_norm(torch.stack(columns, dim=1), ord=2).item()
    bound = model.contraction(y, sigma, x, p, W, lam, 300, torch.Generator().manual_seed(0)).item()
    assert 0.5 * bound < true_norm <= bound * (1 + 1e-4)


def test_gradient_of_the_estimate_is_its_derivative():
    """The estimate's graph: autograd along a parameter direction against a central difference (fixed start)."""
    model, y, sigma, W, lam, x = problem("sa-cnn", 3)
    _, p = exact_map(model, y, sigma, W, lam, x)
    parameters = list(model.parameters())
    generator = torch.Generator().manual_seed(4)
    direction = [torch.randn(q.shape, generator=generator, dtype=q.dtype) for q in parameters]

    def estimate():
        W = model.bank.operator((SIZE, SIZE))
        lam = 20 * model.lam(sigma).view(-1, 1, 1, 1)
        return model.contraction(y, sigma, x, p, W, lam, 300, torch.Generator().manual_seed(0))

    grads = torch.autograd.grad(estimate().sum(), parameters, allow_unused=True)
    along = sum(torch.sum(g * d) for g, d in zip(grads, direction) if g is not None).item()

    def shifted(t):
        with torch.no_grad():
            for q, d in zip(parameters, direction):
                q.add_(t * d)
            value = estimate().item()
            for q, d in zip(parameters, direction):
                q.sub_(t * d)
        return value

    h = 1e-6
    assert along == pytest.approx((shifted(h) - shifted(-h)) / (2 * h), rel=1e-4)


@pytest.mark.parametrize("iterations", [0, True, 2.0])
def test_iterations_must_be_a_positive_int(iterations):
    model, y, sigma, W, lam, x = problem("sa-cnn", 0)
    with pytest.raises(ValueError, match="iterations must be a positive int"):
        model.contraction(y, sigma, x, torch.zeros(1, 4, SIZE, SIZE, dtype=torch.float64), W, lam, iterations)
