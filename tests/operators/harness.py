"""One property harness for every linear operator.

``CASES`` maps a name to a hypothesis strategy that draws an operator (small
shapes, random coefficients); a new operator joins the suite with one line there.
:func:`check_operator` then checks, on a given input dtype and backend: the
adjoint identity with the scale-aware bound of DESIGN.md §6, linearity, batch
axes, output dtype and backend, that the input is not mutated, that read-only
NumPy inputs give what writable ones give, the dense matrix of ``A.H`` against the
conjugate transpose of ``A``'s, ``norm()`` against the SVD of the dense matrix, and
that ``norm_bound()`` is at least that SVD norm.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st

from adareg import backend
from adareg.operators import (Blur, Conv2d, DepthwiseConv2d, Diagonal, FiniteDifference, Identity, LinearOperator,
                              RayTransform, RealToComplex, Subsample)
from adareg.operators.mri import CartesianMRI, NonCartesianMRI
from tests.conftest import TOLERANCE, random_array
from tests.helpers import CircularShift

#: ASTRA's CUDA projectors interpolate with the GPU's texture units (8 fractional bits in the weights, a
#: relative error up to 2^-8), and its back-projector is pixel-driven where the forward one is ray-driven:
#: on the GPU the pair is adjoint to about that error, not to float32 rounding (the float32 bound failed on
#: an H200 for small fan and parallel geometries).  A wrong adjoint still fails by orders of magnitude.
GPU_RAY_TRANSFORM_ADJOINT_TOLERANCE = 1e-2

seeds = st.integers(0, 2**32 - 1)
shapes = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)
shapes_2d = st.tuples(st.integers(2, 7), st.integers(2, 7))


def _values(seed: int, shape, complex_: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    return a + 1j * rng.standard_normal(shape) if complex_ else a


def _maps(seed: int, shape, complex_: bool) -> np.ndarray:
    """Random coil maps, normalised (sum_c |S_c|^2 = 1) as the MRI operators expect them (else they warn)."""
    maps = _values(seed, shape, complex_)
    return maps / np.sqrt(np.sum(np.abs(maps) ** 2, axis=0))


@st.composite
def identities(draw, complex_: bool) -> LinearOperator:
    return Identity(draw(shapes))


@st.composite
def diagonals(draw, complex_: bool) -> LinearOperator:
    shape = draw(shapes)
    return Diagonal(_values(draw(seeds), shape, complex_))


@st.composite
def channel_diagonals(draw, complex_: bool) -> LinearOperator:
    c, h, w = draw(st.integers(1, 3)), *draw(shapes_2d)
    return Diagonal(_values(draw(seeds), (c, 1, 1), complex_), shape=(c, h, w))


@st.composite
def slice_subsamplings(draw, complex_: bool) -> LinearOperator:
    h, w = draw(shapes_2d)
    return Subsample((h, w), (slice(draw(st.integers(0, h - 1)), None, draw(st.integers(1, 3))),
                              slice(None, None, draw(st.integers(1, 3)))))


@st.composite
def mask_subsamplings(draw, complex_: bool) -> LinearOperator:
    shape = draw(shapes)
    mask = np.random.default_rng(draw(seeds)).random(shape) < 0.5
    mask.flat[draw(st.integers(0, mask.size - 1))] = True
    return Subsample(shape, mask)


@st.composite
def finite_differences(draw, complex_: bool) -> LinearOperator:
    shape = draw(shapes)
    axes = draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True))
    return FiniteDifference(shape, axes=tuple(axes), boundary=draw(st.sampled_from(["neumann", "periodic"])))


@st.composite
def convolutions(draw, complex_: bool) -> LinearOperator:
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    h, w = draw(st.integers(kh, kh + 4)), draw(st.integers(kw, kw + 4))
    channels = draw(st.sampled_from([(), (2,), (2, 3), (1, 2)]))
    kernel = _values(draw(seeds), (*channels, kh, kw), complex_)
    return Conv2d(kernel, (h, w), boundary=draw(st.sampled_from(["zero", "periodic", "reflect"])),
                  method=draw(st.sampled_from(["direct", "fft"])))


@st.composite
def depthwise_convolutions(draw, complex_: bool) -> LinearOperator:
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    h, w = draw(st.integers(kh, kh + 4)), draw(st.integers(kw, kw + 4))
    kernel = _values(draw(seeds), (draw(st.integers(1, 3)), kh, kw), complex_)
    return DepthwiseConv2d(kernel, (h, w), boundary=draw(st.sampled_from(["zero", "periodic", "reflect"])),
                           method=draw(st.sampled_from(["direct", "fft"])))


@st.composite
def blurs(draw, complex_: bool) -> LinearOperator:
    k = draw(st.integers(1, 4))
    h, w = draw(st.integers(k, k + 4)), draw(st.integers(k, k + 4))
    return Blur(_values(draw(seeds), (k, k), complex_), (h, w),
                boundary=draw(st.sampled_from(["zero", "periodic", "reflect"])))


@st.composite
def combinations(draw, complex_: bool) -> LinearOperator:
    """Compositions, sums, differences, scalings and adjoints of the operators above."""
    h, w = draw(shapes_2d)
    D = FiniteDifference((h, w), boundary=draw(st.sampled_from(["neumann", "periodic"])))
    K = Conv2d(_values(draw(seeds), (2, 3, 3), complex_), (h, w), boundary="periodic")
    M = Diagonal(_values(draw(seeds), (h, w), complex_))
    c = complex(1.5, -0.5) if complex_ else -2.5
    return draw(st.sampled_from([D @ M, K + D, K - c * D, (K @ M).H, M.gram(), -(K.H @ D), c * M @ M.H]))


@st.composite
def real_to_complex(draw, complex_: bool) -> LinearOperator:
    """Complex models restricted to real arrays, alone, composed and adjoint."""
    h, w = draw(shapes_2d)
    E = RealToComplex((h, w))
    M = Diagonal(_values(draw(seeds), (h, w), True))
    K = Conv2d(_values(draw(seeds), (3, 2, 2), True), (h, w), boundary="periodic")
    D = FiniteDifference((h, w))
    return draw(st.sampled_from([E, E.H, M @ E, (K @ E).H, K @ E @ D.H @ D, (M @ E).gram(), 2 * (K @ E) - K @ E]))


@st.composite
def ray_transforms(draw, complex_: bool) -> LinearOperator:
    pytest.importorskip("astra", reason="the ASTRA toolbox is not installed (pip install adareg[ct])")
    shape = draw(shapes_2d)
    # arbitrary angles, negative too, within a turn (a wider span is flagged as degrees by RayTransform)
    angles = draw(st.one_of(st.integers(1, 6), st.lists(st.floats(-3.1, 3.1), min_size=1, max_size=5).map(np.array)))
    pixel_size = draw(st.sampled_from([1.0, 0.25]))
    if draw(st.booleans()):
        return RayTransform(shape, angles, pixel_size=pixel_size, detector_spacing=draw(st.sampled_from([None, 0.7])))
    return RayTransform(shape, angles, geometry="fan", pixel_size=pixel_size, source_distance=20 * pixel_size,
                        detector_distance=draw(st.sampled_from([0.0, 10.0])) * pixel_size)


@st.composite
def cartesian_mris(draw, complex_: bool) -> LinearOperator:
    """Single- and multi-coil Cartesian MRI, full or column masks, real or complex image space."""
    shape = draw(shapes)
    rng = np.random.default_rng(draw(seeds))
    mask = rng.random(draw(st.sampled_from([shape, shape[-1:]]))) < draw(st.sampled_from([0.3, 0.7, 1.0]))
    mask.flat[draw(st.integers(0, mask.size - 1))] = True
    maps = draw(st.sampled_from([None, _maps(draw(seeds), (draw(st.integers(1, 3)), *shape), complex_)]))
    return CartesianMRI(mask, maps, real=draw(st.booleans()), shape=shape)


@st.composite
def noncartesian_mris(draw, complex_: bool) -> LinearOperator:
    """NUFFT MRI on random 2D trajectories (each new dimension costs a JIT compile in SigPy; 3D: test_mri)."""
    pytest.importorskip("sigpy", reason="SigPy is not installed (pip install adareg[mri])")
    shape = draw(shapes_2d)
    rng = np.random.default_rng(draw(seeds))
    samples = draw(st.sampled_from([(5,), (3, 4)]))
    trajectory = rng.uniform(-0.5, 0.5, (*samples, len(shape))) * np.array(shape)
    maps = draw(st.sampled_from([None, _maps(draw(seeds), (draw(st.integers(1, 3)), *shape), complex_)]))
    density = draw(st.sampled_from([None, rng.random(samples)]))
    oversamp, width = draw(st.sampled_from([(1.25, 4), (2.0, 6)]))
    return NonCartesianMRI(trajectory, shape, maps, density, real=draw(st.booleans()), oversamp=oversamp, width=width)


#: name -> strategy(complex_) drawing an operator; add a line to test a new operator.
CASES = {
    "identity": identities,
    "diagonal": diagonals,
    "diagonal-per-channel": channel_diagonals,
    "subsample-slices": slice_subsamplings,
    "subsample-mask": mask_subsamplings,
    "finite-difference": finite_differences,
    "conv2d": convolutions,
    "depthwise-conv2d": depthwise_convolutions,
    "blur": blurs,
    "combinations": combinations,
    "real-to-complex": real_to_complex,
    "ray-transform": ray_transforms,
    "mri-cartesian": cartesian_mris,
    "mri-noncartesian": noncartesian_mris,
    "toy-circular-shift": lambda complex_: st.builds(CircularShift, shapes_2d, st.tuples(*[st.integers(-3, 3)] * 2)),
}


def dense(A: LinearOperator, dtype=np.float64) -> np.ndarray:
    """The matrix of ``A`` (rows: output entries, columns: input entries), by applying it to a basis."""
    n = int(np.prod(A.shape_in))
    basis = np.eye(n, dtype=dtype).reshape(n, *A.shape_in)
    return backend.to_numpy(A(basis)).reshape(n, -1).T


def _vdot(a, b) -> complex:
    a, b = backend.to_numpy(a).astype(np.complex128), backend.to_numpy(b).astype(np.complex128)
    return complex(np.vdot(a, b))


def _norm(a) -> float:
    return float(np.linalg.norm(backend.to_numpy(a).astype(np.complex128)))


def _expected_dtype(given, A: LinearOperator, real: bool) -> np.dtype:
    dtype = backend.result_dtype(given, A.dtype)
    if A.precision is not None:  # the operator fixes its precision (ASTRA: float32)
        dtype = backend.result_dtype(A.precision, dtype)
    return backend.real_dtype(dtype) if real else dtype


def check_operator(A: LinearOperator, dtype, device: str, seed: int = 0) -> None:
    """All property checks of one operator on inputs of ``dtype`` on ``device``.

    Operators on real arrays (``A.real_in``; for their adjoints ``A.real_out``)
    get real inputs of ``dtype``'s precision, and the adjoint is checked for the
    real inner product.
    """
    dtype = np.dtype(dtype)
    tol = TOLERANCE[_expected_dtype(dtype, A, False)]
    rng = np.random.default_rng(seed)
    x_dtype = backend.real_dtype(dtype) if A.real_in else dtype
    y_dtype = backend.real_dtype(dtype) if A.real_out else dtype  # A.H takes real arrays then
    x = random_array(rng, A.shape_in, x_dtype, device)
    y = random_array(rng, A.shape_out, y_dtype, device)
    x_before = backend.to_numpy(x).copy()

    Ax = A(x)
    assert Ax.shape == A.shape_out
    assert np.dtype(Ax.dtype) == _expected_dtype(x_dtype, A, A.real_out), f"{A!r}: {x_dtype} in gave {Ax.dtype} out"
    assert backend.device_of(Ax) == device
    np.testing.assert_array_equal(backend.to_numpy(x), x_before)  # input not mutated
    AHy = A.H(y)
    assert AHy.shape == A.shape_in
    assert np.dtype(AHy.dtype) == _expected_dtype(y_dtype, A, A.real_in)
    assert backend.device_of(AHy) == device
    assert A.H.H is A
    if device == "cpu":  # read-only arrays, as np.load(..., mmap_mode="r") gives (CuPy has none)
        # outputs are new arrays: `y = A(x); y += noise` must leave x as it was (Identity returned x itself)
        assert not np.shares_memory(Ax, x) and not np.shares_memory(AHy, y), f"{A!r}: an output is a view of its input"
        check_read_only(A, x, Ax, y, AHy, tol)

    # adjoint identity, scale-aware (ODL): |<Ax, y> - <x, A^H y>| <= tol ||A|| ||x|| ||y||
    norm = A.norm()
    difference = _vdot(Ax, y) - _vdot(x, AHy)
    mismatch = abs(difference.real) if A.real_in or A.real_out else abs(difference)
    adjoint_tol = GPU_RAY_TRANSFORM_ADJOINT_TOLERANCE if isinstance(A, RayTransform) and device == "gpu" else tol
    relative = mismatch / (max(norm, 1e-12) * _norm(x) * _norm(y))
    assert relative <= adjoint_tol, f"{A!r}: adjoint mismatch {relative:.2e} (relative) > {adjoint_tol:g}"

    # linearity (only over the reals for operators with real inputs or outputs)
    x2 = random_array(rng, A.shape_in, x_dtype, device)
    a, b = (0.7 - 0.2j, -1.3 + 0.5j) if x_dtype.kind == "c" and not A.real_out else (0.7, -1.3)
    lhs = backend.to_numpy(A(a * x + b * x2))
    rhs = backend.to_numpy(a * Ax + b * A(x2))
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=10 * tol * max(norm, 1e-12) * (_norm(x) + _norm(x2)))

    # leading batch axes pass through
    batched = backend.to_numpy(A(backend.namespace(x).stack([x, x2])))
    np.testing.assert_allclose(batched[0], backend.to_numpy(Ax), rtol=tol, atol=tol * max(norm, 1e-12) * _norm(x))
    np.testing.assert_allclose(batched[1], backend.to_numpy(A(x2)), rtol=tol, atol=tol * max(norm, 1e-12) * _norm(x2))


def check_read_only(A: LinearOperator, x: np.ndarray, Ax: np.ndarray, y: np.ndarray, AHy: np.ndarray,
                    tol: float) -> None:
    """Read-only copies of ``x`` and ``y`` give ``Ax`` and ``AHy``, the results on the writable ones."""
    for op, a, expected in ((A, x, Ax), (A.H, y, AHy)):
        frozen = a.copy()
        frozen.setflags(write=False)
        out = op(frozen)
        np.testing.assert_allclose(out, expected, rtol=0, atol=tol * _norm(expected),
                                   err_msg=f"{op!r} on a read-only input")
        assert out.flags.writeable, f"{op!r} on a read-only input gave a read-only output"


def _forget_norms(A: LinearOperator) -> None:
    """Drop the cached norm estimates and bounds of ``A``, its adjoint and its operands."""
    for op in (A, A.H):
        op._norm, op._bounds = None, {}
    for name in ("op", "outer", "inner", "first", "second"):
        if isinstance(getattr(A, name, None), LinearOperator):
            _forget_norms(getattr(A, name))


def check_norm_bound(A: LinearOperator, sigma_max: float) -> None:
    """A fresh ``norm_bound()`` (behind step sizes) is at least ``||A||``, the largest singular value of its matrix.

    How tight it is depends on the rule (see ``LinearOperator.norm_bound``); ``test_bounds``
    measures it on the operators that reconstructions use.
    """
    _forget_norms(A)
    bound = A.norm_bound()
    assert bound >= sigma_max * (1 - 1e-12), f"{A!r}: bound {bound} below the SVD norm {sigma_max}"


def check_dense(A: LinearOperator) -> None:
    """``A.H``'s matrix is ``A``'s conjugate transpose, ``norm()`` its largest singular value (float64),
    and ``norm_bound()`` an upper bound of it."""
    if A.real_out and not A.real_in:
        A = A.H  # the same pair, seen from its side with real inputs
    if A.real_in:
        # A: R^n -> C^m with matrix M; its adjoint for Re <u, v> is y -> Re(M^H y)
        M = dense(A, np.float64)
        y = np.random.default_rng(0).standard_normal((3, *A.shape_out)) * (1 if A.real_out else 1 + 1j)
        expected = np.real(y.reshape(3, -1) @ M.conj()).reshape(3, *A.shape_in)
        np.testing.assert_allclose(A.H(y), expected, rtol=0, atol=1e-12 * max(np.abs(M).max(), 1e-300) * 10)
        sigma_max = np.linalg.svd(np.vstack([M.real, M.imag]), compute_uv=False)[0]
        assert abs(A.norm() - sigma_max) <= 0.01 * sigma_max + 1e-12, f"{A!r}: norm {A.norm()} vs SVD {sigma_max}"
        check_norm_bound(A, sigma_max)
        return
    M = dense(A, np.complex128 if A.dtype.kind == "c" else np.float64)
    MH = dense(A.H, np.complex128 if A.dtype.kind == "c" else np.float64)
    scale = max(np.abs(M).max(), 1e-300)
    np.testing.assert_allclose(MH, M.conj().T, rtol=0, atol=1e-12 * scale)
    sigma_max = np.linalg.svd(M, compute_uv=False)[0]
    assert abs(A.norm() - sigma_max) <= 0.01 * sigma_max + 1e-12, f"{A!r}: norm {A.norm()} vs SVD {sigma_max}"
    check_norm_bound(A, sigma_max)
