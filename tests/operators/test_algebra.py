"""The algebra: composition, sums, scalars, adjoints, norms, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from adareg.operators import Conv2d, Diagonal, FiniteDifference, Identity, RealToComplex, Subsample
from adareg.operators.base import LinearOperator
from tests.operators.harness import dense


@pytest.fixture
def ops():
    rng = np.random.default_rng(0)
    K = Conv2d(rng.standard_normal((2, 3, 3)) + 1j * rng.standard_normal((2, 3, 3)), (4, 5))
    D = FiniteDifference((4, 5))
    M = Diagonal(rng.standard_normal((4, 5)))
    return K, D, M


def test_dense_algebra(ops):
    K, D, M = ops
    c = 1.5 - 2j
    np.testing.assert_allclose(dense(K @ M, complex), dense(K, complex) @ dense(M, complex), atol=1e-12)
    np.testing.assert_allclose(dense((K @ M).H, complex), dense(M.H @ K.H, complex), atol=1e-12)
    np.testing.assert_allclose(dense(K + c * D, complex), dense(K, complex) + c * dense(D), atol=1e-12)
    np.testing.assert_allclose(dense(K - D, complex), dense(K, complex) - dense(D), atol=1e-12)
    np.testing.assert_allclose(dense((c * K).H, complex), np.conj(c) * dense(K, complex).conj().T, atol=1e-12)
    np.testing.assert_allclose(dense(K.gram(), complex), dense(K, complex).conj().T @ dense(K, complex), atol=1e-12)
    assert (c * K).dtype == np.complex128 and (2 * D).dtype == np.float64


def test_adjoint_is_cached(ops):
    K, _, _ = ops
    assert K.H is K.H and K.H.H is K


def test_norm_is_cached_and_scales(ops):
    K, D, M = ops
    A = K @ M
    first = A.norm()
    assert A.norm() == first and A._norms
    assert (-3 * A).norm() == pytest.approx(3 * first)
    assert A.H.norm() == first


def test_uncertified_norm_is_not_cached():
    k = np.random.default_rng(0).standard_normal((5, 5))
    truth = Conv2d(k, (16, 16), boundary="reflect").norm()
    B = Conv2d(k, (16, 16), boundary="reflect")
    assert B.norm(max_iter=1) < 0.9 * truth  # one step: far from converged
    assert not B._norms
    assert B.norm_bound() >= truth
    assert B.norm() == pytest.approx(truth, rel=1e-4)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"tol": -1e-3}, ValueError, "tol must be non-negative"),
    ({"tol": float("nan")}, ValueError, "tol must be finite"),
    ({"tol": "1e-3"}, TypeError, "tol must be a real number"),
    ({"max_iter": 0}, ValueError, "max_iter must be at least 1"),
    ({"max_iter": 2.5}, TypeError, "max_iter must be an int"),
    ({"max_iter": True}, TypeError, "max_iter must be an int"),
])
def test_norm_checks_its_controls(ops, kwargs, error, words):
    K, _, _ = ops
    with pytest.raises(error, match=words):
        K.norm(**kwargs)


def test_a_scaled_norm_follows_its_controls():
    # c A took A.norm() at its defaults, so max_iter and tol were ignored
    from adareg.operators import Conv2d

    kernel = np.random.default_rng(4).standard_normal((5, 5))
    dense = np.stack([Conv2d(kernel, (9, 8))(e.reshape(9, 8)).ravel() for e in np.eye(72)], axis=1)
    truth = np.linalg.norm(dense, 2)
    for c in (2.0, -0.5, 3j):
        short = (c * Conv2d(kernel, (9, 8))).norm(max_iter=1)  # one A^H A: a Rayleigh quotient of a random start
        assert short == pytest.approx(abs(c) * Conv2d(kernel, (9, 8)).norm(max_iter=1), rel=1e-12)
        assert short < 0.999 * abs(c) * truth
        assert (c * Conv2d(kernel, (9, 8))).norm(tol=1e-10) == pytest.approx(abs(c) * truth, rel=1e-9)
    with pytest.raises(ValueError, match="norm: tol must be non-negative"):
        (2 * Conv2d(kernel, (9, 8))).norm(tol=-1)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"seed": -1}, ValueError, "norm: seed must be a non-negative int"),
    ({"seed": 1.5}, TypeError, "norm: seed must be a non-negative int"),
    ({"like": np.zeros(3, dtype=int)}, TypeError, "norm: like must be a float or complex .* got int64"),
    ({"like": [1.0]}, TypeError, "norm: like must be a float or complex .* got list"),
])
def test_norm_names_its_bad_arguments(kwargs, error, words):
    # they reached numpy's generator and astype, whose errors named neither norm nor the argument
    with pytest.raises(error, match=words):
        Conv2d(np.ones((3, 3)), (9, 8)).norm(**kwargs)


@pytest.mark.parametrize("like, words", [(np.zeros(3, dtype=int), "got int64"), ("gpu", "got str"),
                                         ([1.0], "got list")])
def test_norm_bound_names_a_bad_like(like, words):
    """A reflect bank's bound named norm in the error, and a closed-form bound took any like, cached as the CPU's."""
    for A in (Conv2d(np.random.default_rng(0).standard_normal((3, 3)), (9, 8), boundary="reflect"),
              Conv2d(np.ones((3, 3)), (9, 8), boundary="periodic")):
        with pytest.raises(TypeError, match=f"^norm_bound: like must be a float or complex .* {words}"):
            A.norm_bound(like=like)


def test_adjoint_error_is_tiny_for_exact_pairs(ops):
    K, D, M = ops
    for A in (K, D, M, K @ M):
        assert A.adjoint_error() < 1e-13


def test_scalar_float32_does_not_promote():
    x = np.ones((4, 5), dtype=np.float32)
    assert (np.float64(2.0) * Identity((4, 5)))(x).dtype == np.float32


@pytest.mark.parametrize(
    "expression, error, words",
    [
        (lambda K, D, M: K @ D, ValueError, "cannot compose"),
        (lambda K, D, M: K + M, ValueError, "cannot add"),
        (lambda K, D, M: K * D, TypeError, "use A @ B to compose"),
        (lambda K, D, M: np.ones((4, 5)) * M, TypeError, "multiplied by a number"),
        (lambda K, D, M: float("nan") * M, ValueError, "multiplied by a finite number, got nan"),
        (lambda K, D, M: M * np.inf, ValueError, "multiplied by a finite number, got inf"),
        (lambda K, D, M: complex(1, np.inf) * K, ValueError, "multiplied by a finite number"),
        (lambda K, D, M: M @ np.ones((4, 5)), TypeError, "use A\\(x\\)"),
        (lambda K, D, M: M(np.ones((5, 4))), ValueError, "has shape \\(5, 4\\); expected \\(4, 5\\)"),
        (lambda K, D, M: M(np.ones(20)), ValueError, "expected \\(4, 5\\)"),
        (lambda K, D, M: M(np.ones((4, 5), dtype=int)), TypeError, "dtype int64"),
        (lambda K, D, M: M([[1.0] * 5] * 4), TypeError, "NumPy or CuPy array"),
        (lambda K, D, M: D.H(np.ones((4, 5))), ValueError, "Diagonal|FiniteDifference"),
    ],
)
def test_misuse_gives_clear_errors(ops, expression, error, words):
    with pytest.raises(error, match=words):
        expression(*ops)


def test_errors_name_the_operator_and_shapes():
    with pytest.raises(ValueError) as info:
        Subsample((4, 5), (slice(None, None, 2),)).H(np.ones((3, 5)))
    message = str(info.value)
    assert "Subsample" in message and "(3, 5)" in message and "(2, 5)" in message


def test_operators_on_real_arrays():
    rng = np.random.default_rng(1)
    M = Diagonal(rng.standard_normal((4, 5)) + 1j * rng.standard_normal((4, 5)))
    A = M @ RealToComplex((4, 5))
    x = rng.standard_normal((4, 5))
    y = rng.standard_normal((4, 5)) + 1j * rng.standard_normal((4, 5))
    np.testing.assert_allclose(A(x), M.weights.host * x)
    np.testing.assert_allclose(A.H(y), np.real(np.conj(M.weights.host) * y))  # Re of the complex adjoint
    assert A.real_in and A.H.real_out and A.gram().real_in and A.gram().real_out
    with pytest.raises(TypeError, match="input must be real"):
        A(x + 0j)
    with pytest.raises(ValueError, match="one acts on or gives real arrays only"):
        A + M
    with pytest.raises(ValueError, match="by the complex number"):
        1j * A.H
    for real_part in (A.H, RealToComplex((4, 5)).H):  # x -> w Re(x) is not complex-linear: its H was wrong
        with pytest.raises(ValueError, match="gives real arrays, which .* would scale by complex numbers"):
            M @ real_part
    c = np.exp(0.7j)  # c A on real images: Re <c A x, y> = <x, Re(conj(c) A^H y)>
    np.testing.assert_allclose((c * A)(x), c * M.weights.host * x)
    np.testing.assert_allclose((c * A).H(y), np.real(np.conj(c * M.weights.host) * y))
    assert (c * A).H(y).dtype == np.float64 and (c * A).adjoint_error() < 1e-12
    with pytest.raises(ValueError, match="takes real arrays only"):
        RealToComplex((4, 5)) @ M


def test_compositions_through_real_arrays_keep_their_flags_true():
    """Three compositions through real arrays took wrong real/complex flags, so that their adjoints were wrong
    (found by a fuzz of random operator trees against their real-linear matrices)."""
    rng = np.random.default_rng(8)
    S = (3, 4)
    E = RealToComplex(S)
    M = Diagonal(rng.standard_normal(S) + 1j * rng.standard_normal(S))
    A = M @ E
    x = rng.standard_normal(S)
    # a real operator after one giving real arrays gives real arrays: 1j * (I @ E^H) was taken as complex-linear
    real_part = Identity(S) @ E.H
    assert real_part.real_out and real_part.adjoint_error() < 1e-12
    with pytest.raises(ValueError, match="by the complex number"):
        1j * real_part
    # a complex operator after a real one on real images: its adjoint handed G^H complex arrays
    with pytest.raises(ValueError, match=r"gives real arrays, .* on real arrays with RealToComplex\(\(3, 4\)\)"):
        M @ A.gram()
    B = M @ E @ A.gram()  # as the error says: x -> M G x on real x
    y = rng.standard_normal(S) + 1j * rng.standard_normal(S)
    np.testing.assert_allclose(B.H(y), np.abs(M.weights.host) ** 2 * np.real(np.conj(M.weights.host) * y))
    assert B.real_in and np.allclose(B(x), M.weights.host * np.abs(M.weights.host) ** 2 * x)
    # complex -> real -> complex (z -> Re z) is no complex-linear map: its norm read 0 from a real start
    with pytest.raises(ValueError, match="complex arrays would become real ones and then complex again"):
        E @ E.H


def _svd_norm(A, real_in: bool = False) -> float:
    """The largest singular value of ``A``'s dense matrix (over the reals: real and imaginary rows stacked)."""
    M = dense(A, np.float64 if real_in else np.complex128)
    return float(np.linalg.svd(np.vstack([M.real, M.imag]) if real_in else M, compute_uv=False)[0])


def test_norm_bound_of_a_weighted_embedding_is_the_norm():
    """Found by hypothesis: a Lanczos estimate with a 1% margin fell below the norm (seed 336: 2.6564 < 2.6583)."""
    rng = np.random.default_rng(336)
    A = Diagonal(rng.standard_normal((7, 7)) + 1j * rng.standard_normal((7, 7))) @ RealToComplex((7, 7))
    norm = _svd_norm(A, real_in=True)
    assert norm * (1 - 1e-12) <= A.norm_bound() <= norm * (1 + 1e-12)


def test_norm_bound_of_a_sum_lies_between_its_norm_and_the_sum_of_norms():
    """Found by hypothesis: a filter bank plus a gradient (seed 375: an estimate with margin 6.69806 < 6.69818)."""
    rng = np.random.default_rng(375)
    K = Conv2d(rng.standard_normal((2, 3, 3)), (3, 5), boundary="periodic")
    D = FiniteDifference((3, 5), boundary="neumann")
    A = K + D
    assert _svd_norm(A) * (1 - 1e-12) <= A.norm_bound() <= (_svd_norm(K) + _svd_norm(D)) * (1 + 1e-12)


def test_norm_bounds_of_the_algebra(ops):
    """Products and sums of operators with closed-form norms: between the norm and the product or sum of norms."""
    _, D, M = ops
    rng = np.random.default_rng(13)
    K = Conv2d(rng.standard_normal((2, 3, 3)) + 1j * rng.standard_normal((2, 3, 3)), (4, 5), boundary="periodic")
    k, d, m = _svd_norm(K), _svd_norm(D), _svd_norm(M)
    c = 1.5 - 2j
    for A, most in [(K @ M, k * m), ((K @ M).H, k * m), (c * K, abs(c) * k), (K - c * D, k + abs(c) * d),
                    (M.gram(), m**2), (D.H @ D, d**2)]:
        assert _svd_norm(A) * (1 - 1e-12) <= A.norm_bound() <= most * (1 + 1e-9), A


def test_the_norm_of_a_map_from_complex_images_to_real_ones():
    """x -> Re(w x) is real-linear only: Lanczos with complex coefficients returned 0.927 for a norm of at least 1."""
    rng = np.random.default_rng(5)
    w = np.array([[1.0, 0.5j], [-0.7 + 0.7j, 0.3]])
    for weights in (w, rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))):
        A = RealToComplex(weights.shape).H @ Diagonal(weights)
        n = weights.size
        basis = np.eye(n).reshape((n,) + weights.shape)
        # the real matrix of the map on (Re x, Im x): columns A(e_k) and A(i e_k)
        columns = [A(e.astype(complex)).ravel() for e in basis] + [A(1j * e).ravel() for e in basis]
        expected = np.linalg.svd(np.stack(columns, axis=1), compute_uv=False)[0]
        assert abs(A.norm(tol=1e-10) - expected) < 1e-8 * expected
        assert A.norm_bound() >= expected * (1 - 1e-12)


def test_the_norm_of_a_map_that_acts_on_real_and_imaginary_parts_apart():
    """x -> d Im(x) vanishes on real x: from a real start Lanczos returned 0 (and 1 for a map with norm 2 on the
    imaginary parts)."""
    rng = np.random.default_rng(6)
    S = (5, 4)
    d, keep = rng.uniform(0.5, 3.0, S), (rng.random(S) > 0.5).astype(float)
    imaginary = ((1j) * RealToComplex(S)).H  # x -> Im(x)
    n = int(np.prod(S))
    basis = np.eye(n).reshape((n,) + S)

    class ImaginaryPart(LinearOperator):  # a user's operator: norm_bound rests on norm()
        def __init__(self):
            super().__init__(S, S, np.complex128, real_out=True)

        def _apply(self, x):
            return np.imag(x)

        def _adjoint(self, y):
            return 1j * y

    for A in (Diagonal(d) @ imaginary, Diagonal(keep) @ RealToComplex(S).H + Diagonal(2 * (1 - keep)) @ imaginary,
              ImaginaryPart()):
        # the real matrix of the map on (Re x, Im x): columns A(e_k) and A(i e_k)
        columns = [A(e.astype(complex)).ravel() for e in basis] + [A(1j * e).ravel() for e in basis]
        expected = np.linalg.svd(np.stack(columns, axis=1), compute_uv=False)[0]
        assert abs(A.norm(tol=1e-10) - expected) < 1e-8 * expected
        assert A.norm_bound() >= expected * (1 - 1e-12)
        assert abs(A.norm(tol=1e-6, like=np.zeros(1, np.float32)) - expected) < 1e-4 * expected


def test_adjoint_error_draws_real_arrays_where_an_operator_takes_them():
    """For an operator giving real arrays, y was drawn complex, and its adjoint refused it (TypeError)."""
    from adareg.operators import CartesianMRI

    S = (4, 4)
    H = Diagonal(np.full(S, 1j)) @ RealToComplex(S)
    for A in (RealToComplex(S).H, H.H, H.gram(), CartesianMRI(np.ones((8, 8), bool), real=True).H):
        assert A.adjoint_error() < 1e-12


def test_a_real_operator_is_added_to_one_on_real_arrays():
    """mu I beside the normal operator of a real-image model (Tikhonov) was refused; a complex one still is."""
    S = (4, 4)
    weights = np.random.default_rng(6).standard_normal(S) + 2j
    H = Diagonal(weights) @ RealToComplex(S)
    for A in (H.gram() + 0.1 * Identity(S), 0.1 * Identity(S) + H.gram()):
        assert A.real_in and A.real_out
        x = np.random.default_rng(7).standard_normal(S)
        np.testing.assert_allclose(A(x), (np.abs(weights) ** 2 + 0.1) * x)
        assert A(x).dtype == np.float64 and A.adjoint_error() < 1e-12
    with pytest.raises(ValueError, match="not a real operator that could be restricted to them"):
        H.gram() + Diagonal(np.full(S, 1j))


def test_an_operator_used_through_its_adjoint_is_freed_at_once():
    """A and A.H held each other, so an operator used through .H (every solve) lived on, with its FFT spectra or
    ASTRA projector, until a full garbage collection, which large arrays barely hasten (an audit, 2026-12-06)."""
    import gc
    import weakref

    gc.collect()
    gc.disable()
    try:
        A = Conv2d(np.ones((3, 3)), (16, 16))
        assert A.H.H is A
        A.H(A(np.ones((16, 16))))
        alive = weakref.ref(A)
        del A
        assert alive() is None
    finally:
        gc.enable()


class _FFTBlur(LinearOperator):
    """A real periodic blur by FFTs, written as users do; ``keep_complex`` forgets the real part of the result."""

    def __init__(self, shape, keep_complex=False, flatten=False, first=False):
        super().__init__(shape, shape)
        self.transfer = np.fft.fft2(np.pad(np.full((3, 3), 1 / 9), [(0, n - 3) for n in shape]))
        self.keep_complex, self.flatten, self.first = keep_complex, flatten, first

    def _apply(self, x):
        out = np.fft.ifft2(np.fft.fft2(x) * self.transfer)
        out = out if self.keep_complex else out.real
        out = out[0] if self.first else out  # the batch's first image only
        return out.reshape(*x.shape[:-2], -1) if self.flatten else out

    def _adjoint(self, y):
        out = np.fft.ifft2(np.fft.fft2(y) * np.conj(self.transfer))
        return out if self.keep_complex else out.real


class _RealPart(LinearOperator):
    """``z -> Re z`` (real outputs), written without taking the real part."""

    def __init__(self, shape):
        super().__init__(shape, shape, np.complex128, real_out=True)

    def _apply(self, x):
        return x.copy()

    def _adjoint(self, y):
        return y.astype(np.complex128)


def test_a_user_operator_s_complex_or_misshapen_result_is_refused():
    """An FFT operator declared real that forgot .real turned solve's images complex without a word, and one
    returning another shape failed later with errors about the caller's arrays (an audit, 2026-12-06)."""
    x = np.random.default_rng(0).standard_normal((2, 8, 8))
    expected = np.real(np.fft.ifft2(np.fft.fft2(x) * _FFTBlur((8, 8)).transfer))
    np.testing.assert_allclose(_FFTBlur((8, 8))(x), expected, atol=1e-14)
    with pytest.raises(TypeError, match=r"_FFTBlur.*_apply gave complex128 for a float64 input.*must be real"):
        _FFTBlur((8, 8), keep_complex=True)(x)
    assert _FFTBlur((8, 8), keep_complex=True)(x + 0j).dtype == np.complex128  # complex in, complex out
    with pytest.raises(ValueError, match=r"_apply gave shape \(2, 64\).*expected an array of shape \(2, 8, 8\)"):
        _FFTBlur((8, 8), flatten=True)(x)
    with pytest.raises(ValueError, match=r"_apply gave shape \(8, 8\).*expected an array of shape \(2, 8, 8\)"):
        _FFTBlur((8, 8), first=True)(x)
    with pytest.raises(TypeError, match=r"\.H: its operator's _adjoint gave complex128.*real operator on a real"):
        _FFTBlur((8, 8), keep_complex=True).H(x)
    with pytest.raises(TypeError, match=r"_RealPart.*_apply gave complex128 for a complex128 input.*real_out=True"):
        _RealPart((8, 8))(x + 1j)


def test_adjoint_error_catches_a_scaled_adjoint_by_default():
    """A random y is nearly orthogonal to A x in many dimensions: the docs' adjoint off by a factor 4 measured
    3e-3 (an audit, 2026-12-06).  With y = A x the mismatch is 3 ||A x||^2 over ||x|| ||A x|| times the pair's
    norm, which Lanczos takes from 4 A^H A (twice ||A||): 3 / 4 for a 2 x 2 mean of white noise."""

    class Scaled4(Conv2d):
        def _adjoint(self, y):
            return 4 * super()._adjoint(y)

    kernel, shape = np.full((2, 2), 0.25), (16, 16)
    exact, wrong = Conv2d(kernel, shape), Scaled4(kernel, shape)
    assert exact.adjoint_error() < 1e-13
    x = np.random.default_rng(0).standard_normal(shape)
    y = exact(x)
    pair_norm = 2 * np.linalg.norm(dense(exact), 2)
    by_hand = abs(np.vdot(y, y) - np.vdot(x, wrong.H(y))) / (pair_norm * np.linalg.norm(x) * np.linalg.norm(y))
    assert by_hand > 0.5
    assert wrong.adjoint_error(x) >= by_hand * (1 - 1e-3)
    assert wrong.adjoint_error() > 0.5


def test_an_operator_without_an_adjoint_says_what_it_lacks():
    """It built and applied, then a solve or norm() failed with an empty NotImplementedError (an extension-point
    audit, 2026-12-06)."""

    class ForwardOnly(LinearOperator):
        def _apply(self, x):
            return 2 * x

    A = ForwardOnly((3, 4), (3, 4))
    np.testing.assert_array_equal(A(np.ones((3, 4))), 2 * np.ones((3, 4)))
    with pytest.raises(NotImplementedError, match=r"^ForwardOnly must implement _adjoint\(y\), A\^H y"):
        A.H(np.ones((3, 4)))
