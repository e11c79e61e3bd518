"""The torch building blocks against adareg's NumPy ones (float64), and their adjoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adareg.operators.conv import Conv2d, DepthwiseConv2d
from adareg.regularizers import FilterBank as NumpyBank
from adareg.regularizers.learned import SigmaProfile as NumpyProfile
from adareg.regularizers.masks import MaskCNN as NumpyMasks
from adareg.regularizers.splines import LinearSpline as NumpySpline
from adareg_train.blocks import (NORM_IMAGE, FilterBank, MaskCNN, SigmaProfile, correlate, correlate_adjoint,
                                 linear_spline, reflect_fold, reflect_pad, top_singular_vector)
from tests.helpers import reflect_bank_gram


def tensor(rng, *shape):
    return torch.from_numpy(rng.standard_normal(shape))


def test_reflect_fold_is_the_adjoint_of_reflect_pad():
    rng = np.random.default_rng(0)
    x, z = tensor(rng, 2, 3, 9, 11), tensor(rng, 2, 3, 15, 17)
    assert float((reflect_pad(x, 3) * z).sum()) == pytest.approx(float((x * reflect_fold(z, 3)).sum()), rel=1e-12)
    # and it matches numpy's reflect padding
    np.testing.assert_array_equal(reflect_pad(x, 3).numpy(), np.pad(x.numpy(), ((0, 0), (0, 0), (3, 3), (3, 3)),
                                                                    mode="reflect"))


@pytest.mark.parametrize("groups", [1, 3])
def test_correlate_matches_adareg_and_its_adjoint(groups):
    rng = np.random.default_rng(1)
    kernel = tensor(rng, 3, 3 // groups, 5, 5)
    x, y = tensor(rng, 2, 3, 12, 10), tensor(rng, 2, 3, 12, 10)
    op = Conv2d(kernel.numpy(), (12, 10), boundary="reflect") if groups == 1 else \
        DepthwiseConv2d(kernel.numpy()[:, 0], (12, 10), boundary="reflect")
    np.testing.assert_allclose(correlate(x, kernel, groups).numpy(), op(x.numpy()), atol=1e-12)
    np.testing.assert_allclose(correlate_adjoint(y, kernel, groups).numpy(), op.H(y.numpy()), atol=1e-12)


def test_filter_bank_matches_adareg():
    bank = FilterBank([4, 8, 6], [5, 3, 5], generator=torch.Generator().manual_seed(2))
    reference = NumpyBank([layer.detach().numpy() for layer in bank.layers])
    np.testing.assert_allclose(bank.kernel().detach().numpy(), reference.kernel, rtol=1e-10, atol=1e-13)
    rng = np.random.default_rng(3)
    x, z = tensor(rng, 2, 1, 17, 20), tensor(rng, 2, 6, 17, 20)
    W, op = bank.operator((17, 20)), reference.operator((17, 20))
    np.testing.assert_allclose(W(x).detach().numpy(), op(x.numpy()[:, 0]), atol=1e-12)
    np.testing.assert_allclose(W.adjoint(z).detach().numpy()[:, 0], op.H(z.numpy()), atol=1e-12)
    # the FFT path and the direct correlation agree
    np.testing.assert_allclose(W(x).detach().numpy(), correlate(x, W.kernel).detach().numpy(), atol=1e-12)


def test_sigma_profile_is_numpy_interp():
    knots = [0.0, 0.05, 0.1]
    profile = SigmaProfile(knots, torch.tensor([0.2, 0.5, 0.3]))
    reference = NumpyProfile(knots, profile.values().detach().numpy(), "lam")
    sigma = torch.tensor([0.0, 0.01, 0.05, 0.07, 0.1, 0.2])
    np.testing.assert_allclose(profile(sigma.double()).detach().numpy(), [reference(float(s)) for s in sigma],
                               rtol=1e-14)
    bounded = SigmaProfile(knots, 0.5, upper=1.0)
    np.testing.assert_allclose(bounded.values().detach().numpy(), 0.5, rtol=1e-14)


def test_spline_matches_adareg():
    rng = np.random.default_rng(4)
    table = tensor(rng, 3, 9)
    z = 3 * tensor(rng, 2, 3, 5, 4)  # inside and outside the grid [-1, 1]
    np.testing.assert_allclose(linear_spline(table, z, -1.0, 0.25).numpy(),
                               NumpySpline(table.numpy(), -1.0, 0.25)(z.numpy()), atol=1e-13)


@pytest.mark.parametrize("activation", ["leaky_relu", "relu"])
def test_mask_cnn_matches_adareg(activation):
    masks = MaskCNN([5, 4], [3, 5], activation=activation, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        for bias in masks.biases:
            bias.normal_(generator=torch.Generator().manual_seed(6))
    reference = NumpyMasks([k.detach().numpy() for k in masks.kernels], [b.detach().numpy() for b in masks.biases],
                           activation=activation)
    x = tensor(np.random.default_rng(7), 2, 1, 11, 13)
    sigma = torch.tensor([0.02, 0.1], dtype=torch.float64)
    out = masks(x, sigma).detach().numpy()
    for i in range(2):
        np.testing.assert_allclose(out[i], reference(x.numpy()[i, 0], float(sigma[i])), atol=1e-13)


def test_diverged_values_give_nan_not_an_error():
    """A diverged step's NaN reaches the loss (which the training loop checks), not an IndexError or ARPACK's."""
    table = torch.zeros(2, 5, dtype=torch.float64)
    z = torch.tensor([0.3, float("nan"), float("inf")], dtype=torch.float64).view(1, 1, 1, 3).repeat(1, 2, 1, 1)
    values = linear_spline(table, z, -1.0, 0.5)
    assert torch.isnan(values[..., 1]).all() and torch.isfinite(values[..., 0]).all()
    for kernel in (torch.zeros(4, 1, 5, 5), torch.full((4, 1, 5, 5), float("nan"))):
        assert torch.isnan(top_singular_vector(kernel)).all()


@pytest.mark.parametrize("bank", ["random", "shipped wcrr"])
@pytest.mark.parametrize("tol", [0.0, 1e-6])
def test_top_singular_vector_gives_the_reflect_norm(bank, tol):
    """||W v||^2 is the largest eigenvalue of the dense reflect-boundary W^T W on a NORM_IMAGE square, at the
    training forward's loose tolerance too: the shipped wcrr's top eigenvalue sits in a dense cluster at the
    symbol's 1, where the vector is poorly determined but its Rayleigh quotient is not."""
    import adareg

    if bank == "random":
        kernel = np.random.default_rng(3).standard_normal((4, 1, 5, 5))
    else:
        kernel = adareg.load("wcrr").bank.kernel.astype(np.float64)
    gram = reflect_bank_gram(kernel, NORM_IMAGE)
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    v = top_singular_vector(torch.from_numpy(kernel), tol=tol).numpy().ravel()
    assert np.linalg.norm(v) == pytest.approx(1, rel=1e-12)
    assert v @ gram @ v == pytest.approx(eigenvalues[-1], rel=1e-9)
    if bank == "random":  # a clear gap: the vector itself is the top eigenvector
        assert eigenvalues[-1] - eigenvalues[-2] > 1e-2 * eigenvalues[-1]
        assert abs(v @ eigenvectors[:, -1]) == pytest.approx(1, abs=1e-6)
