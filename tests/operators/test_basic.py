"""Identity, Diagonal, Subsample and FiniteDifference against direct NumPy computations."""

from __future__ import annotations

import numpy as np
import pytest

from adareg.operators import (Blur, CartesianMRI, Conv2d, DepthwiseConv2d, Diagonal, FiniteDifference,
                              Identity, Subsample)
from tests.operators.harness import dense


def test_finite_difference_neumann_matches_numpy_diff():
    x = np.random.default_rng(0).standard_normal((5, 6))
    d = FiniteDifference(x.shape)(x)
    expected_rows = np.vstack([np.diff(x, axis=0), np.zeros((1, 6))])
    expected_cols = np.hstack([np.diff(x, axis=1), np.zeros((5, 1))])
    np.testing.assert_allclose(d, np.stack([expected_rows, expected_cols]), atol=1e-14)


def test_finite_difference_periodic_wraps():
    x = np.random.default_rng(1).standard_normal((4, 7))
    d = FiniteDifference(x.shape, axes=(1,), boundary="periodic")(x)
    np.testing.assert_allclose(d[0], np.roll(x, -1, axis=1) - x, atol=1e-14)


@pytest.mark.parametrize("boundary", ["neumann", "periodic"])
@pytest.mark.parametrize("shape", [(7,), (5, 6), (3, 4, 2)])
def test_finite_difference_norm_is_exact(shape, boundary):
    D = FiniteDifference(shape, boundary=boundary)
    assert D.norm() == pytest.approx(np.linalg.svd(dense(D), compute_uv=False)[0], rel=1e-10)


def test_diagonal_multiplies_and_conjugates():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))
    x = rng.standard_normal((3, 4))
    D = Diagonal(w)
    np.testing.assert_allclose(D(x), w * x)
    np.testing.assert_allclose(D.H(x), np.conj(w) * x)
    assert D.norm() == pytest.approx(np.abs(w).max())


def test_subsample_mask_and_slices():
    x = np.arange(20.0).reshape(4, 5)
    mask = x % 3 == 0
    S = Subsample(x.shape, mask)
    np.testing.assert_array_equal(S(x), x[mask])
    back = S.H(S(x))
    np.testing.assert_array_equal(back, np.where(mask, x, 0))
    T = Subsample(x.shape, (slice(1, None, 2),))
    np.testing.assert_array_equal(T(x), x[1::2])
    np.testing.assert_array_equal(T.H(T(x))[1::2], x[1::2])
    assert T.shape_out == (2, 5)
    # a bare slice reads as x[slice] does: the first axis (it was taken for a mask of dtype object)
    np.testing.assert_array_equal(Subsample(x.shape, slice(0, 4))(x), x[0:4])
    # an empty batch gives an empty batch, as x[..., mask] does (the mask's reshape(..., -1) failed)
    for op in (S, T):
        assert op(np.zeros((0, *x.shape))).shape == (0, *op.shape_out)
        assert op.H(np.zeros((0, *op.shape_out))).shape == (0, *x.shape)


def test_identity_returns_input_values():
    x = np.random.default_rng(3).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(Identity((2, 3))(x), x)


def test_finite_difference_takes_one_axis_as_an_int():
    x = np.random.default_rng(0).standard_normal((5, 6))
    np.testing.assert_array_equal(FiniteDifference((5, 6), axes=1)(x), FiniteDifference((5, 6), axes=(1,))(x))
    assert FiniteDifference((5, 6), axes=np.int64(-2)).axes == (-2,)


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: Diagonal(np.ones((3, 4)), shape=(4, 3)), ValueError, "do not broadcast"),
        (lambda: Diagonal(np.ones(3, dtype=bool)), TypeError, "dtype bool"),
        (lambda: Diagonal(np.array([1.0, np.inf])), ValueError, "Diagonal: weights contains 1 NaN or Inf value"),
        (lambda: Subsample((3, 3), np.zeros((3, 3), dtype=bool)), ValueError, "selects no entry"),
        (lambda: Subsample((3, 3), np.ones((3, 4), dtype=bool)), ValueError, "mask must be boolean with shape"),
        (lambda: Subsample((3, 3), (1, 2)), TypeError, "tuple of at most 2 slices"),
        (lambda: Subsample((4, 4), [slice(0, 2)]), TypeError,  # "mask must be boolean ..., got dtype object" before
         r"^Subsample: selection: pass slices as a tuple, as NumPy indexing takes them, got a list \[slice\(0, 2"),
        (lambda: Subsample((3, 3), (slice(None, None, 0),)), ValueError, "a slice's step must not be zero"),
        (lambda: FiniteDifference((3, 3), axes=(2,)), ValueError, "are not axes"),
        (lambda: FiniteDifference((5, 6), axes=(0.7,)), TypeError, "axes must be an int or a tuple of ints"),
        (lambda: FiniteDifference((5, 6), axes="01"), TypeError, "axes must be an int or a tuple of ints"),
        (lambda: FiniteDifference((5, 6), axes=(True,)), TypeError, "axes must be an int or a tuple of ints"),
        (lambda: FiniteDifference((5, 6), axes=(0, -2)), ValueError, "name an axis twice"),
        (lambda: FiniteDifference((3, 3), boundary="zero"), ValueError, "boundary must be"),
        (lambda: Identity((3, 0)), ValueError, "positive entries"),
        (lambda: Identity((31.5, 32)), TypeError, r"shape must be a tuple of ints, got \(31.5, 32\)"),
        (lambda: Identity("44"), TypeError, "shape must be a tuple of ints, got '44'"),
        (lambda: Identity((True, 3)), TypeError, r"shape must be a tuple of ints, got \(True, 3\)"),
    ],
)
def test_bad_construction_is_rejected(make, error, words):
    with pytest.raises(error, match=words):
        make()


class _Unconvertible:
    """An array of another library that NumPy cannot take, as a torch tensor that requires grad."""

    ndim, shape = 2, (3, 3)

    def __array__(self, dtype=None):
        raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")


@pytest.mark.parametrize("value, words", [
    ([[1.0, 2.0], [3.0]], "inhomogeneous"),  # ragged
    (_Unconvertible(), "requires grad"),
])
@pytest.mark.parametrize("make, what", [
    (lambda a: Diagonal(a), "Diagonal: weights"),
    (lambda a: Conv2d(a, (8, 8)), "Conv2d: kernel"),
    (lambda a: DepthwiseConv2d(a, (8, 8)), "DepthwiseConv2d: kernel"),
    (lambda a: Blur(a, (8, 8)), "Blur: psf"),
    (lambda a: CartesianMRI(a, shape=(8, 8), real=True), "CartesianMRI: mask"),
    (lambda a: CartesianMRI(np.ones((8, 8), dtype=bool), a, real=True), "CartesianMRI: maps"),
])
def test_what_numpy_cannot_convert_is_named(make, what, value, words):
    # NumPy's own ValueError or the library's RuntimeError came through without the argument's name
    with pytest.raises(TypeError, match=rf"^{what} must be an array or nested lists of numbers; NumPy cannot convert "
                                        rf"the {type(value).__name__} given: .*{words}"):
        make(value)


def test_shapes_take_integer_valued_numbers():
    assert Identity((np.int32(4), 6.0)).shape_in == (4, 6) and Identity(np.int64(5)).shape_in == (5,)
