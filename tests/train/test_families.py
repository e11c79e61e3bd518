"""Each torch family against adareg's inference on the same parameter file (float64)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import adareg
from adareg.operators import Conv2d, Identity
from adareg import params
from adareg_train.blocks import NORM_IMAGE
from adareg_train.families import GRADIENTS, LAM_MARGIN, MODELS, SIGMA_RANGE, Adaptive, Ridge, build, families_with

RIDGES = [family for family, cls in sorted(MODELS.items()) if issubclass(cls, Ridge)]
ADAPTIVE = [family for family, cls in sorted(MODELS.items()) if issubclass(cls, Adaptive)]


def export(model, path):
    metadata = {"family": model.family, "architecture": model.architecture, "sigma_range": list(SIGMA_RANGE),
                "training": {"note": "random start, for a test"}, "validation": {}}
    return adareg.load(str(adareg.params.save(path, model.arrays(), metadata)))


def perturb(model, seed):
    """Move every parameter off its structured start, so that every path of the maths is exercised."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))


def model_and_file(family, seed, folder):
    """A torch model off its start (seeds ``seed`` and ``seed + 1``) and adareg's regularizer from its file."""
    model = build(family, seed=seed)
    perturb(model, seed + 1)
    return model, export(model, folder / "m.npz")


def noisy(sigma, seed=0, size=24):
    rng = np.random.default_rng(seed)
    clean = np.kron(rng.random((4, 4)), np.ones((size // 4, size // 4)))
    return clean, clean + sigma * rng.standard_normal(clean.shape)


def directional_problem(model, seed):
    """Two 16 x 16 noisy images at sigma 0.08 and 0.03, random weights of the output and a random direction of
    every parameter (seeds ``seed`` to ``seed + 2``), for derivatives of ``sum(weight * model(y, sigma))``."""
    _, y = noisy(0.08, seed=seed, size=16)
    y_t, sigma = torch.from_numpy(np.stack([y, y.T]))[:, None], torch.tensor([0.08, 0.03], dtype=torch.float64)
    weight = torch.from_numpy(np.random.default_rng(seed + 1).standard_normal(y_t.shape))
    generator = torch.Generator().manual_seed(seed + 2)
    direction = [torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in model.parameters()]
    return y_t, sigma, weight, direction


def autograd_along(model, y_t, sigma, weight, direction):
    """The derivative of ``sum(weight * model(y, sigma))`` along ``direction`` by autograd through the graph."""
    grads = torch.autograd.grad(torch.sum(weight * model(y_t, sigma)), list(model.parameters()))
    return sum(torch.sum(g * d) for g, d in zip(grads, direction)).item()


def difference_along(model, y_t, sigma, weight, direction, h):
    """The same derivative by a central difference of the model's output (its value: the fixed point)."""
    parameters = list(model.parameters())

    def value(shift):
        with torch.no_grad():
            for p, d in zip(parameters, direction):
                p.add_(shift * d)
            out = torch.sum(weight * model(y_t, sigma)).item()
            for p, d in zip(parameters, direction):
                p.sub_(shift * d)
        return out

    return (value(h) - value(-h)) / (2 * h)


def test_every_registered_family_has_a_model(tmp_path):
    """One torch model per family of adareg's registry, whose default architecture gives a file adareg loads."""
    assert sorted(MODELS) == sorted(params.families())
    for family, cls in MODELS.items():
        assert cls.family == family and cls.gradients and set(cls.gradients) <= set(GRADIENTS)
        model = build(family)
        assert model.architecture == cls.default_architecture
        assert export(model, tmp_path / f"{family}.npz").family == family
    with pytest.raises(ValueError, match="has a model already"):
        type("Again", (MODELS["crr"],), {"family": "crr"})
    with pytest.raises(ValueError, match="family must be one of"):
        build("tv")


@pytest.mark.parametrize("family", RIDGES)
def test_ridge_denoiser_matches_adareg(tmp_path, family):
    """The minimiser of 1/2 ||x - y||^2 + lam R_sigma(x), found by both, to 1e-5."""
    model, reg = model_and_file(family, 1, tmp_path)
    sigma = 20 / 255
    _, y = noisy(sigma)
    model.iterations, model.tol = 5000, 1e-13
    with torch.no_grad():
        x = model(torch.from_numpy(y)[None, None], torch.tensor([sigma], dtype=torch.float64))[0, 0].numpy()
    reference = adareg.solve(Identity(y.shape), y, reg, sigma=sigma, tol=1e-12, max_iter=5000,
                             precision="float64").x
    assert np.linalg.norm(x - reference) <= 1e-5 * np.linalg.norm(reference)


@pytest.mark.parametrize("family", ADAPTIVE)
def test_reweighting_matches_adareg(tmp_path, family):
    """Two reweighting steps from y, each solved to a certified 1e-9 by adareg, agree to 1e-5.

    The steps are compared before the fixed point (where they differ most), so the
    weights, lam(sigma), the filter bank and the dual solver all enter.
    """
    model, reg = model_and_file(family, 1, tmp_path)
    sigma = 20 / 255
    _, y = noisy(sigma, size=16)
    reference = adareg.solve(Identity(y.shape), y, reg, sigma=sigma, tol=0.0, inner_tol=1e-9, precision="float64",
                             inner_max_iter=20000, max_iter=2)
    assert reference.history["residual"][-1] > 1e-4  # not yet at the fixed point
    model.outer, model.inner, model.tol = 2, 1500, 0.0
    sigma_t = torch.tensor([sigma], dtype=torch.float64)
    with torch.no_grad():
        W = model.bank.operator(y.shape)
        x, _ = model.solve(torch.from_numpy(y)[None, None], sigma_t, W, model.lam(sigma_t).view(-1, 1, 1, 1))
    assert np.linalg.norm(x[0, 0].numpy() - reference.x) <= 1e-5 * np.linalg.norm(reference.x)


@pytest.mark.parametrize("family", ADAPTIVE)
def test_weights_match_adareg(tmp_path, family):
    model, reg = model_and_file(family, 3, tmp_path)
    x = noisy(0.1, seed=5)[1]
    for sigma in (0.0, 12 / 255, 30 / 255):
        W = model.bank.operator(x.shape)
        weights = model.weights(torch.from_numpy(x)[None, None], torch.tensor([sigma], dtype=torch.float64), W)
        np.testing.assert_allclose(weights.detach().numpy()[0], reg.weights(x, sigma), atol=1e-12)
    assert reg.lam(12 / 255) == pytest.approx(model.lam(torch.tensor([12 / 255], dtype=torch.float64)).item())


@pytest.mark.parametrize("family", RIDGES)
def test_ridge_gradient_matches_adareg(tmp_path, family):
    model, reg = model_and_file(family, 6, tmp_path)
    x = noisy(0.1, seed=8)[1]
    sigma = 15 / 255
    W = model.bank.operator(x.shape)
    alpha = model.scale(torch.tensor([sigma], dtype=torch.float64)).view(-1, 1, 1, 1)
    gradient = model.gradient(torch.from_numpy(x)[None, None], W, model.profile(), alpha)
    np.testing.assert_allclose(gradient.detach().numpy()[0, 0], reg.at(sigma).grad(x), atol=1e-12)


@pytest.mark.parametrize("family", params.families())
def test_load_arrays_gives_back_a_files_arrays(family):
    """Another seed's model set from a model's arrays exports the same arrays and denoises the same."""
    source = build(family, seed=1)
    perturb(source, 2)
    arrays = source.arrays()
    model = build(family, seed=5)
    assert not np.allclose(model.arrays()["bank_0"], arrays["bank_0"])
    model.load_arrays(arrays)
    for name, array in model.arrays().items():
        np.testing.assert_allclose(array, arrays[name], rtol=1e-12, atol=1e-14, err_msg=name)
    y, sigma = torch.from_numpy(noisy(0.1, size=16)[1])[None, None], torch.tensor([0.1], dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(y, sigma), source(y, sigma), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="lam_knots"):
        model.load_arrays(arrays | {"lam_knots": 2 * arrays["lam_knots"]})


def test_reweighting_steps_carry_the_momentum():
    """Dual FISTA calls chained through (p, q, t) under one box are one FISTA run of their summed length."""
    model = build("sa-cnn", seed=2)
    y = torch.from_numpy(noisy(0.1, size=16)[1])[None, None]
    W = model.bank.operator(y.shape[-2:])
    bound = torch.full((1, W.spectrum.shape[0], *y.shape[-2:]), 0.05, dtype=torch.float64)
    start = (torch.zeros_like(bound), torch.zeros_like(bound), torch.ones(1, 1, 1, 1, dtype=torch.float64))
    with torch.no_grad():
        model.inner = 12
        whole = model.dual_fista(y, *start, bound, W)
        model.inner = 5
        part = model.dual_fista(y, *start, bound, W)
        model.inner = 7
        chained = model.dual_fista(y, *part, bound, W)
    for a, b in zip(chained, whole):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    assert float(whole[2].max()) > 3  # the momentum grew (no restart reset it), so the chaining is tested


def test_exported_constraints_hold():
    """crr: convex potentials; wcrr: slopes >= -1 and lam <= 1; sa-b: psi' >= 0, non-increasing, flat at the end."""
    for family in ("crr", "wcrr", "sa-b"):
        model = build(family, seed=9)
        perturb(model, 10)
        with torch.no_grad():
            model.profile_raw.mul_(5) if family != "sa-b" else model.drop_raw.mul_(5)
        arrays = model.arrays()
        slopes = np.diff(arrays["profile"], axis=1) / model.grid_step
        if family == "crr":
            assert slopes.min() >= 0
        elif family == "wcrr":
            assert slopes.min() >= -1 - 1e-12 and arrays["lam_values"].max() <= 1
            # bounded potentials: beyond the grid phi' rises away from 0, so phi cannot fall
            assert np.all(slopes[:, -1] >= 0) and np.all(arrays["profile"][:, -1] >= 0)
            assert np.all(slopes[:, 0] >= 0) and np.all(arrays["profile"][:, 0] <= 0)
            assert np.any(slopes[:, 1:-1] < 0)  # and the interior stays weakly convex, not convex
        else:
            assert arrays["profile"].min() >= 0 and slopes.max() <= 0 and np.all(slopes[:, -1] == 0)
            np.testing.assert_allclose(arrays["blur"].sum(axis=(1, 2)), 1.0)


def test_jfb_gradient_is_the_gradient_of_one_map_step():
    """With implicit = False the graph holds one fixed-point map step: its gradient w.r.t. lam matches a
    finite difference of that step (a weighted sum: the plain sum vanishes, W annihilates constants)."""
    model = build("crr", seed=11)
    model.iterations, model.tol, model.implicit = 2000, 1e-14, False
    _, y = noisy(0.08, seed=12, size=16)
    y_t, sigma = torch.from_numpy(y)[None, None], torch.tensor([0.08], dtype=torch.float64)
    weight = torch.from_numpy(np.random.default_rng(13).standard_normal(y_t.shape))
    with torch.no_grad():
        fixed = model(y_t, sigma)
    W, table = model.bank.operator(y.shape), model.profile()
    alpha, lam = model.scale(sigma).view(-1, 1, 1, 1), model.lam(sigma).view(-1, 1, 1, 1)
    corner = Conv2d(W.kernel.detach().numpy()[:, 0], (NORM_IMAGE, NORM_IMAGE), boundary="reflect").norm(tol=1e-12)
    norm = max(1.0, corner)  # ||W||: the symbol's (1) or a corner mode's
    step = (1.0 / (1.0 + lam * torch.diff(table, dim=1).abs().max() / model.grid_step * norm**2)).item()

    def one_step(shift):
        return torch.sum(weight * (fixed - step * (fixed - y_t + (lam + shift) * model.gradient(fixed, W, table,
                                                                                               alpha))))

    out = model(y_t, sigma)
    grad = torch.autograd.grad(torch.sum(weight * out), model.lam.raw)[0]
    # d out / d raw_k = d out / d lam * d lam / d raw_k (lam = interpolated exp(raw)); 0.08 lies in knot segment 4
    h = 1e-6
    dlam = ((one_step(h) - one_step(-h)) / (2 * h)).item()
    knots = model.lam.knots
    assert knots[4] <= 0.08 < knots[5]
    u = float((sigma - knots[4]) / (knots[5] - knots[4]))
    values = model.lam.values().detach()
    expected = torch.zeros_like(values)
    expected[4], expected[5] = (1 - u) * values[4] * dlam, u * values[5] * dlam
    assert abs(dlam) > 1e-3
    np.testing.assert_allclose(grad.numpy(), expected.numpy(), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("family", families_with("implicit"))
def test_implicit_gradient_is_the_derivative_of_the_minimiser(family):
    """The implicit gradient of <w, x*(theta)> along a random direction of every parameter against a central
    finite difference of the minimiser itself (each side solved to 1e-14)."""
    model = build(family, seed=21)
    perturb(model, 22)
    model.iterations, model.tol, model.cg_iterations, model.cg_tol = 5000, 1e-14, 500, 1e-12
    y_t, sigma, weight, direction = directional_problem(model, 23)
    analytic = autograd_along(model, y_t, sigma, weight, direction)
    h = 1e-6  # small: the spline knots and the slope clamps make the map piecewise smooth
    numeric = difference_along(model, y_t, sigma, weight, direction, h)
    assert abs(numeric) > 1e-3
    assert analytic == pytest.approx(numeric, rel=1e-6)


def test_wcrr_lam_bound_follows_the_reflect_norm():
    """wcrr with a trained bank whose corner modes give ||W|| > 1 with reflect boundary (the shipped crr's; the
    shipped wcrr's norm is within 1e-3 of the symbol's 1): lam values above 1 / (rho ||W||^2) are projected onto
    it on loading, and the gradient through the bound is the derivative of the minimiser along every parameter
    but the profile (the bound moves with the bank)."""
    weights = Path(adareg.__file__).parent / "weights"
    file, crr = params.read(weights / "wcrr.npz"), params.read(weights / "crr.npz")
    arrays = file.arrays | {name: crr.arrays[name] for name in ("bank_0", "bank_1", "bank_2")}
    model = build("wcrr", seed=0)
    model.load_arrays(arrays | {"lam_values": np.full_like(file.arrays["lam_values"], 2.0)})
    norm = Conv2d(model.bank.kernel().detach().numpy()[:, 0], (NORM_IMAGE, NORM_IMAGE),
                  boundary="reflect").norm(tol=1e-12)
    assert norm > 1.05
    np.testing.assert_allclose(model.arrays()["lam_values"], (1 - LAM_MARGIN) / norm**2, rtol=1e-6)  # Lanczos ~1e-7
    model.load_arrays(arrays | {"lam_values": 0.5 / norm**2 * np.ones_like(file.arrays["lam_values"])})
    model.iterations, model.tol, model.cg_iterations, model.cg_tol = 5000, 1e-14, 500, 1e-12
    y_t, sigma, weight, direction = directional_problem(model, 41)
    # not along the profile: the trained one has slopes on their clamp (-rho), kinks that a central difference halves
    direction = [torch.zeros_like(d) if p is model.profile_raw else d for p, d in zip(model.parameters(), direction)]
    analytic = autograd_along(model, y_t, sigma, weight, direction)
    numeric = difference_along(model, y_t, sigma, weight, direction, 1e-7)
    assert abs(numeric) > 1e-3
    assert analytic == pytest.approx(numeric, rel=1e-6)


def test_a_float32_wcrr_keeps_lam_and_its_bound_to_float32_rounding():
    """torch's float32 norm of the bank's responses read 1.5e-5 low on the CPU (against the dense matrix's norm): a
    float32 model's lam round trip moved by 3e-5, above its bound by as much."""
    file = params.read(Path(adareg.__file__).parent / "weights" / "wcrr.npz")
    model = build("wcrr", file.metadata["architecture"], seed=0).float()
    model.load_arrays(file.arrays)
    W = Conv2d(model.bank.kernel().detach().double().numpy()[:, 0], (NORM_IMAGE, NORM_IMAGE), boundary="reflect")
    dense = np.stack([W(e.reshape(W.shape_in)).ravel() for e in np.eye(NORM_IMAGE**2)], axis=1)
    norm = np.linalg.norm(dense, 2)
    with torch.no_grad():
        assert float(model.bank_norm(model.bank.kernel())) == pytest.approx(max(norm, 1.0), rel=1e-6)
    np.testing.assert_allclose(model.arrays()["lam_values"], file.arrays["lam_values"], rtol=2e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_wcrr_lam_above_its_bound_starts_just_below_it_and_trains(dtype):
    """lam above 1 / (rho ||W||^2), as adareg.load accepts it, was clamped at (1 - 1e-9) of the bound: 1 in float32,
    whose logit made the parameter infinite (the run stopped at step 1, "diverged ... try a lower --lr"), and in
    float64 a point where the sigmoid's slope is 1e-9, so that the knots could not leave it (an audit, 2026-12-08)."""
    file = params.read(Path(adareg.__file__).parent / "weights" / "wcrr.npz")
    model = build("wcrr", file.metadata["architecture"], seed=0).to(dtype)
    model.load_arrays(file.arrays | {"lam_values": 1.5 * file.arrays["lam_values"]})
    W = Conv2d(model.bank.kernel().detach().double().numpy()[:, 0], (NORM_IMAGE, NORM_IMAGE), boundary="reflect")
    dense = np.stack([W(e.reshape(W.shape_in)).ravel() for e in np.eye(NORM_IMAGE**2)], axis=1)
    bound = 1 / max(np.linalg.norm(dense, 2), 1.0)**2
    assert 1.5 * file.arrays["lam_values"].max() > bound  # the premise: some knots above the bound
    assert torch.isfinite(model.lam.raw).all()
    lam = model.arrays()["lam_values"]
    above = 1.5 * file.arrays["lam_values"] > bound
    np.testing.assert_allclose(lam[above], bound, rtol=2e-5)
    np.testing.assert_allclose(lam[~above], 1.5 * file.arrays["lam_values"][~above], rtol=2e-5)
    slope = torch.sigmoid(model.lam.raw) * (1 - torch.sigmoid(model.lam.raw))  # d lam / d raw, over the bound
    assert float(slope.min()) > 1e-6


@pytest.mark.slow  # 3000 map steps with a graph: gigabytes of memory; CI runs it with `pytest -m slow`
def test_phantom_gradient_tends_to_the_derivative_of_the_fixed_point():
    """sa-cnn: the gradient of K fixed-point map steps from the fixed point, along a random direction of every
    parameter, against a central finite difference of the fixed point itself (solved to 1e-15). One step (JFB)
    even has the wrong sign here; the truncated Neumann series converges as K grows."""
    model = build("sa-cnn", seed=31)
    perturb(model, 32)
    model.outer, model.inner, model.tol = 300, 50, 1e-15
    y_t, sigma, weight, direction = directional_problem(model, 33)
    h = 1e-7  # small: the box, the masks' leaky ReLUs and lam's knots make the fixed point piecewise smooth
    numeric = difference_along(model, y_t, sigma, weight, direction, h)
    assert abs(numeric) > 1.0
    derivative = {}
    for steps in (1, 20, 3000):
        model.map_steps = steps
        derivative[steps] = autograd_along(model, y_t, sigma, weight, direction)
    errors = {steps: abs(value - numeric) for steps, value in derivative.items()}
    assert derivative[1] * numeric < 0
    assert errors[3000] < errors[20] < errors[1]
    assert derivative[3000] == pytest.approx(numeric, rel=1e-3)
