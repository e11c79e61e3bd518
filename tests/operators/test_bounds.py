"""``norm_bound``: at least the norm, and how close to it, on the operators that reconstructions use.

The norms come from computations independent of adareg's: the SVD of a dense matrix,
or ARPACK on ``A^H A`` for images too large for one.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import linalg as sparse_linalg

import adareg
from adareg.mri import birdcage_maps, cartesian_mask
from adareg.operators import Blur, CartesianMRI, Conv2d, DepthwiseConv2d, FiniteDifference, RayTransform
from adareg.operators.base import STEP_NORM_TOL, _nonnegative_norm_bound
from tests.operators.harness import dense


def arpack_norm(A, tol: float = 1e-10) -> float:
    """``||A||`` by ARPACK on ``A^H A``, in float64 (complex128 for complex images)."""
    n = int(np.prod(A.shape_in))
    dtype = np.float64 if A.real_in or A.dtype.kind == "f" else np.complex128

    def gram(v):
        return np.asarray(A.H(A(v.reshape(A.shape_in).astype(dtype))), dtype=dtype).ravel()

    operator = sparse_linalg.LinearOperator((n, n), matvec=gram, dtype=dtype)
    return float(np.sqrt(sparse_linalg.eigsh(operator, k=1, which="LA", tol=tol)[0][0]))


def gaussian_psf(size: int = 7, width: float = 2.0) -> np.ndarray:
    t = np.arange(size) - size // 2
    psf = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * width**2))
    return psf / psf.sum()


@pytest.fixture(scope="module")
def sa_cnn_bank() -> np.ndarray:
    """The shipped sa-cnn filter bank, ``(32, 13, 13)``."""
    return adareg.load("sa-cnn").bank.kernel[:, 0]


@pytest.mark.parametrize("boundary", ["neumann", "periodic"])
def test_finite_difference_bound_is_the_norm(boundary):
    D = FiniteDifference((64, 64), boundary=boundary)
    assert D.norm_bound() == pytest.approx(arpack_norm(D), rel=1e-9)
    if boundary == "periodic":  # the checkerboard: 2 per axis
        assert D.norm_bound() == pytest.approx(np.sqrt(8), rel=1e-14)


def test_zero_boundary_conv_bound_is_tight_for_a_learned_bank(sa_cnn_bank):
    W = Conv2d(sa_cnn_bank, (48, 48), boundary="zero", method="fft")
    norm = arpack_norm(W)
    assert norm <= W.norm_bound() <= 1.002 * norm


@pytest.mark.parametrize("method", ["direct", "fft"])
def test_zero_boundary_conv_bound_on_small_images(method):
    """Small images: at least the SVD norm, at most the sup of the symbol over all frequencies."""
    rng = np.random.default_rng(7)
    for kernel, shape in [(rng.standard_normal((5, 3)), (4, 6)), (rng.standard_normal((3, 2, 4, 4)), (5, 3)),
                          (rng.standard_normal((2, 1, 1)), (3, 3))]:
        A = Conv2d(kernel, shape, boundary="zero", method=method)
        norm = np.linalg.svd(dense(A), compute_uv=False)[0]
        k4 = kernel.reshape(-1, 1, *kernel.shape[-2:]) if kernel.ndim < 4 else kernel
        symbol = np.moveaxis(np.fft.fft2(k4, s=(256, 256)), (0, 1), (-2, -1))
        sup = np.linalg.svd(symbol, compute_uv=False).max()
        assert norm * (1 - 1e-12) <= A.norm_bound() <= sup * (1 + 1e-9)


def test_depthwise_zero_boundary_bound():
    kernels = np.random.default_rng(8).standard_normal((3, 3, 5))
    A = DepthwiseConv2d(kernels, (6, 7), boundary="zero")
    norm = np.linalg.svd(dense(A), compute_uv=False)[0]
    # block diagonal: the largest of the channels' bounds, each at most its symbol's sup
    sup = np.abs(np.fft.fft2(kernels, s=(256, 256))).max()
    assert norm * (1 - 1e-12) <= A.norm_bound() <= sup * (1 + 1e-9)


def test_reflect_bank_bound_covers_its_corner_modes(sa_cnn_bank):
    """The estimate with a margin: at least the norm, which is above the symbol's sup (1)."""
    W = Conv2d(sa_cnn_bank, (64, 64), boundary="reflect", method="fft")
    norm = arpack_norm(W)
    assert norm > 1.1
    assert norm <= W.norm_bound() <= 1.02 * norm


@pytest.mark.parametrize("seed", [2, 892, 1267])
def test_estimate_with_margin_survives_a_start_orthogonal_to_the_top_vector(seed):
    """Signed 2 x 2 PSFs whose top singular vector is nearly orthogonal to the first random start."""
    B = Blur(np.random.default_rng(seed).standard_normal((2, 2)), (5, 5), boundary="reflect")
    norm = np.linalg.svd(dense(B), compute_uv=False)[0]
    assert norm <= B.norm_bound() <= 1.02 * norm


@pytest.mark.parametrize("shape", [(64, 64), (100, 75)])
def test_reflect_blur_bound_is_guaranteed_and_tight(shape):
    """A non-negative PSF: the Collatz-Wielandt bound, above 1 = the sum of the PSF (corners count twice)."""
    B = Blur(gaussian_psf(), shape, boundary="reflect")
    norm = arpack_norm(B)
    assert norm > 1.005
    assert norm <= B.norm_bound() <= 1.006 * norm


@pytest.mark.parametrize("geometry", ["parallel", "fan"])
def test_ray_transform_bound_is_guaranteed_and_tight(geometry):
    pytest.importorskip("astra", reason="the ASTRA toolbox is not installed (pip install adareg[ct])")
    options = {"source_distance": 128.0, "detector_distance": 64.0} if geometry == "fan" else {}
    R = RayTransform((64, 64), 60, geometry=geometry, **options)
    norm = arpack_norm(R, tol=1e-8)
    assert norm <= R.norm_bound() <= 1.005 * norm


@pytest.mark.parametrize("geometry", ["parallel", "fan"])
def test_ray_transform_bound_against_the_svd(geometry):
    pytest.importorskip("astra", reason="the ASTRA toolbox is not installed (pip install adareg[ct])")
    options = {"source_distance": 40.0, "detector_distance": 20.0} if geometry == "fan" else {}
    R = RayTransform((16, 12), np.linspace(0.1, 3.0, 9), geometry=geometry, pixel_size=0.5, **options)
    norm = np.linalg.svd(dense(R), compute_uv=False)[0]
    assert norm <= R.norm_bound() <= 1.005 * norm


@pytest.fixture(scope="module")
def coil_maps() -> np.ndarray:
    """Eight birdcage coil maps on 16 x 24 images."""
    return birdcage_maps((16, 24), 8)


@pytest.mark.parametrize("real", [True, False])
@pytest.mark.parametrize("acceleration", [4, 8])
def test_cartesian_mri_with_maps_bound(coil_maps, real, acceleration):
    """Undersampled with coil maps: ``||S||``, near the norm here (the mask keeps a calibration region)."""
    A = CartesianMRI(cartesian_mask(coil_maps.shape[1:], acceleration, 0.08, seed=0), coil_maps, real=real)
    # ||A||^2: the largest eigenvalue of the dense A^H A (ARPACK crawls on its cluster of top eigenvalues)
    norm = float(np.sqrt(np.linalg.eigvalsh(dense(A.gram(), np.float64 if real else np.complex128))[-1]))
    assert norm * (1 - 1e-9) <= A.norm_bound() <= 1.001 * norm


def test_nonnegative_bound_against_the_svd():
    """Random non-negative matrices, sparse, with zero rows and columns, and reducible ones."""
    rng = np.random.default_rng(9)
    matrices = []
    for m, n in [(30, 20), (15, 40), (50, 50)]:
        a = rng.random((m, n)) * (rng.random((m, n)) < 0.2)
        a[:, 3] = 0
        a[5] = 0
        matrices.append(a)
    blocks = np.zeros((20, 20))
    blocks[:10, :10], blocks[10:, 10:] = rng.random((10, 10)), 2 * rng.random((10, 10))
    matrices += [blocks, np.zeros((4, 3)), np.eye(6)]
    for a in matrices:
        norm = np.linalg.svd(a, compute_uv=False)[0]
        bound = _nonnegative_norm_bound(lambda v, a=a: a.T @ (a @ v), np.ones(a.shape[1]), 1e-6, 10_000)
        assert norm * (1 - 1e-12) <= bound <= norm * (1 + 1e-4)


@pytest.mark.parametrize("make", [lambda: Blur(np.ones((5, 5)) / 25, (32, 32), boundary="reflect"),
                                  lambda: Conv2d(np.random.default_rng(2).standard_normal((3, 5, 5)), (70, 70),
                                                 boundary="reflect")])
def test_a_bound_in_one_precision_is_not_reused_for_another(make):
    """norm_bound was cached per device only: a float32 request first made a float64 solve step with the float32
    bound (1.0252250975 for 1.0252251414), so results hung on which came first (an audit, 2026-12-06)."""
    single, double = np.zeros(1, np.float32), np.zeros(1, np.float64)
    shared = make()
    shared.norm_bound(like=single)
    assert shared.norm_bound(like=double) == make().norm_bound(like=double)
    assert shared.norm(like=double) == make().norm(like=double)
    assert shared.norm_bound(like=single) == make().norm_bound(like=single)


def test_the_step_bound_does_not_hang_on_earlier_norm_calls():
    """norm_bound took a tighter norm() from the cache where one had run (adjoint_error runs one; tune too), so a
    solve's step sizes, and its result, hung on what was called before: 2.2815 against 2.2797 for this kernel (an
    audit, 2026-12-06).  Both must be upper bounds of the norm (its dense matrix's largest singular value)."""
    kernel = np.random.default_rng(5).standard_normal((5, 5))
    fresh, used = Conv2d(kernel, (20, 22), boundary="reflect"), Conv2d(kernel, (20, 22), boundary="reflect")
    used.adjoint_error()
    used.norm(tol=1e-8)
    used.norm(tol=STEP_NORM_TOL, seed=1)  # the step bound's tolerance, another start: 10.8218 against 10.8231
    for like in (None, np.zeros(1, np.float32)):
        assert used.norm_bound(like=like) == fresh.norm_bound(like=like)
    assert fresh.norm_bound() >= np.linalg.norm(dense(fresh), 2)
