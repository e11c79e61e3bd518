"""MRI operators and helpers against dense DFT matrices, direct non-uniform DFT sums and closed forms.

The adjoint, linearity, batching and norm of every MRI operator are checked by the
operator harness (``tests/operators/harness.py``); here the *values* are checked
against computations that share no code with adareg: Fourier matrices written out
entry by entry, least squares by ``numpy.linalg``, the fastMRI mask formulas.
Tests that need SigPy skip, with the reason, where it is not installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from adareg import mri
from adareg.operators import CartesianMRI, NonCartesianMRI
from adareg.operators.mri import sigpy_module
from tests.helpers import ForeignArray
from tests.operators.harness import dense

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sigpy():
    return pytest.importorskip("sigpy", reason="SigPy is not installed (pip install adareg[mri])")


def centred_dft(n: int) -> np.ndarray:
    """The centred orthonormal DFT matrix: indices and frequencies -n//2 .. n-1-n//2."""
    k = np.arange(n) - n // 2
    return np.exp(-2j * np.pi * np.outer(k, k) / n) / np.sqrt(n)


def nudft(x: np.ndarray, trajectory: np.ndarray) -> np.ndarray:
    """Direct sum N^(-1/2) sum_n x_n exp(-2 pi i kappa . n / N), n centred, for each trajectory point."""
    shape = x.shape
    grids = np.meshgrid(*[np.arange(n) - n // 2 for n in shape], indexing="ij")
    phase = sum(np.multiply.outer(trajectory[..., a] / n, g) for a, (n, g) in enumerate(zip(shape, grids)))
    return np.sum(np.exp(-2j * np.pi * phase) * x, axis=tuple(range(-len(shape), 0))) / np.sqrt(x.size)


def complex_normal(rng, shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def random_maps(rng, shape):
    """Complex Gaussian coil maps of shape (C, ...) with E sum_c |S_c|^2 = 1 (normalised on average, not per pixel)."""
    return complex_normal(rng, shape) / np.sqrt(2 * shape[0])


@pytest.fixture(scope="module")
def phantom_kspace():
    """The 64 x 64 Shepp-Logan phantom fully sampled by 4 birdcage coils, and the maps."""
    pytest.importorskip("sigpy", reason="SigPy is not installed (pip install adareg[mri])")
    from adareg.data import shepp_logan
    maps = mri.birdcage_maps((64, 64), 4)
    return CartesianMRI(np.ones((64, 64), dtype=bool), maps, real=False)(shepp_logan((64, 64)) + 0j), maps


# ------------------------------------------------------------------ Cartesian
# odd axes take the shifted-copy path; all-even shapes the sign-flip one, with the
# output sign (-1)^(sum N/2) positive for (8,) and (4, 8), negative for (2,) and (6, 4)
@pytest.mark.parametrize("shape", [(6, 5), (4, 7), (8,), (2,), (6, 4), (4, 8), (3, 4, 2)])
def test_fully_sampled_single_coil_is_the_unitary_centred_dft(shape):
    H = CartesianMRI(np.ones(shape, dtype=bool), real=False, shape=shape)
    F = centred_dft(shape[0])
    for n in shape[1:]:
        F = np.kron(F, centred_dft(n))
    x = complex_normal(np.random.default_rng(0), shape)
    np.testing.assert_allclose(H(x).ravel(), F @ x.ravel(), atol=1e-12)
    np.testing.assert_allclose(H.H(H(x)), x, atol=1e-12)  # adjoint = inverse
    np.testing.assert_allclose(H(H.H(x)), x, atol=1e-12)
    assert H.norm() == 1.0
    np.testing.assert_allclose(np.linalg.svd(dense(H, np.complex128), compute_uv=False), 1.0, atol=1e-12)


@pytest.mark.parametrize("shape", [(6, 5), (6, 4), (4, 8)])
def test_multicoil_cartesian_matches_masked_dft_of_coil_images(shape):
    rng = np.random.default_rng(1)
    maps = random_maps(rng, (3, *shape))
    mask = rng.random(shape[1]) < 0.6  # columns
    mask[0] = True
    x = rng.standard_normal(shape)
    F = np.kron(centred_dft(shape[0]), centred_dft(shape[1]))
    expected = np.stack([(F @ (s * x).ravel()).reshape(shape) * mask for s in maps])
    H = CartesianMRI(mask, maps, real=True)
    np.testing.assert_allclose(H(x), expected, atol=1e-12)
    y = complex_normal(rng, (3, *shape))
    back = sum(np.conj(s) * (F.conj().T @ (yc * mask).ravel()).reshape(shape) for s, yc in zip(maps, y))
    np.testing.assert_allclose(H.H(y), back.real, atol=1e-12)
    np.testing.assert_allclose(CartesianMRI(mask, maps, real=False).H(y), back, atol=1e-12)
    for broadcast in (mask[None, :], np.broadcast_to(mask, shape)[:1]):  # a (1, W) mask: the maps' rows
        np.testing.assert_allclose(CartesianMRI(broadcast, maps, real=True)(x), expected, atol=1e-12)


def test_mask_and_maps_of_another_library_are_copied_without_a_warning():
    # np.array(..., copy=True) handed copy= to an __array__ without it: a DeprecationWarning under NumPy 2
    rng = np.random.default_rng(5)
    maps, mask, x = random_maps(rng, (2, 4, 6)), rng.random(6) < 0.5, rng.standard_normal((4, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        H = CartesianMRI(ForeignArray(mask), ForeignArray(maps), real=True)
    F = np.kron(centred_dft(4), centred_dft(6))
    np.testing.assert_allclose(H(x), np.stack([(F @ (s * x).ravel()).reshape(4, 6) * mask for s in maps]), atol=1e-12)


def test_cartesian_norm_on_real_images_counts_conjugate_pairs():
    # one column sampled away from the centre: real images give half of its energy
    mask = np.zeros(6, dtype=bool)
    mask[1] = True
    H = CartesianMRI(mask, real=True, shape=(4, 6))
    M = dense(H)
    assert H.norm() == pytest.approx(np.sqrt(0.5), rel=1e-12)
    assert H.norm() == pytest.approx(np.linalg.svd(np.vstack([M.real, M.imag]), compute_uv=False)[0], rel=1e-10)
    mask[5] = True  # its mirror column -1 = 5 - 6: the pair is complete
    assert CartesianMRI(mask, real=True, shape=(4, 6)).norm() == pytest.approx(1.0)


def test_cartesian_float32_gives_complex64_and_batches():
    rng = np.random.default_rng(2)
    maps = random_maps(rng, (2, 4, 4))
    H = CartesianMRI(rng.random((4, 4)) < 0.5, maps, real=True)
    x = rng.standard_normal((3, 4, 4)).astype(np.float32)
    y = H(x)
    assert y.dtype == np.complex64 and y.shape == (3, 2, 4, 4)
    assert H.H(y).dtype == np.float32
    np.testing.assert_allclose(y[1], H(x[1].astype(np.float64)), atol=1e-5)


def test_cartesian_errors_name_the_problem():
    with pytest.raises(ValueError, match="mask of shape \\(5,\\) does not match the image shape \\(4, 6\\)"):
        CartesianMRI(np.ones(5, dtype=bool), np.ones((2, 4, 6)), real=True)
    # the maps give the image (a mask that did not fit them was named as maps that did not fit the mask)
    with pytest.raises(ValueError, match=r"mask of shape \(4, 6\) does not match the image shape \(4, 5\) of the "
                                         r"coil maps"):
        CartesianMRI(np.ones((4, 6), dtype=bool), np.ones((2, 4, 5)), real=True)
    with pytest.raises(ValueError, match="coil maps that do not match the image"):
        CartesianMRI(np.ones((4, 6), dtype=bool), np.ones((2, 4, 5)), real=True, shape=(4, 6))
    # one coil's map without its coil axis was read as 4 coils of 1-D signals, and the mask blamed
    with pytest.raises(ValueError, match=r"maps of shape \(4, 6\) have as many axes as the mask \(4, 6\): maps "
                                         r"must be \(coils, \*image_shape\), for one coil maps\[None\]"):
        CartesianMRI(np.ones((4, 6), dtype=bool), np.ones((4, 6)), real=True)
    # a mask read off multi-coil k-space (kspace != 0) has a coil axis: maps[None] made a 3-D FFT across the coils
    with pytest.raises(ValueError, match=r"the mask is one for every coil \(read off k-space as kspace != 0, take "
                                         r"mask\[0\]\)"):
        CartesianMRI(np.ones((2, 4, 6), dtype=bool), np.ones((2, 4, 6)), real=True)
    # one coil's (H, W) map with a column mask became H coils of 1-D signals, without a word
    with pytest.raises(ValueError, match=r"maps of shape \(4, 6\) with a column mask \(6,\): maps must be \(coils, "
                                         r"\*image_shape\): for one coil of \(4, 6\) images pass maps\[None\]"):
        CartesianMRI(np.ones(6, dtype=bool), np.ones((4, 6)), real=True)
    # coils-last maps (as many tools store them) blamed the mask alone
    coils_last = np.moveaxis(mri.birdcage_maps((8, 8), 3), 0, -1)
    with pytest.raises(ValueError, match=r"or are the maps \(8, 8, 3\) coils-last\? They must be \(coils, "
                                         r"\*image_shape\): numpy.moveaxis\(maps, -1, 0\)"):
        CartesianMRI(np.ones((8, 8), dtype=bool), coils_last, real=True)
    with pytest.raises(ValueError, match="samples nothing"):
        CartesianMRI(np.zeros((4, 6), dtype=bool), real=True)
    # a column mask alone would give a 1-D operator that transforms an image row by row
    with pytest.raises(ValueError, match=r"does not give the image shape; pass shape=\(H, 6\)"):
        CartesianMRI(np.ones(6, dtype=bool), real=True)
    assert CartesianMRI(np.ones(6, dtype=bool), real=True, shape=(4, 6)).shape_in == (4, 6)
    assert CartesianMRI(np.ones(6, dtype=bool), real=True, shape=(6,)).shape_in == (6,)
    with pytest.raises(ValueError, match="only 0 and 1"):
        CartesianMRI(np.full((4, 6), 0.5), real=True)
    with pytest.raises(TypeError, match="real must be True"):
        CartesianMRI(np.ones((4, 6)), real="yes")
    with pytest.raises(TypeError, match="real"):
        CartesianMRI(np.ones((4, 6)))  # the image space must be chosen
    H = CartesianMRI(np.ones((4, 6)), real=True)
    with pytest.raises(TypeError, match="must be real"):
        H(np.ones((4, 6), dtype=complex))
    with pytest.raises(ValueError, match="expected \\(4, 6\\)"):
        H(np.ones((6, 4)))


def test_coil_maps_far_from_normalised_warn_at_the_callers_line(sigpy, phantom_kspace):
    """sum_c |S_c|^2 is 1 for birdcage and ESPIRiT maps (0 where ESPIRiT crops); far from it, a warning."""
    kspace, maps = phantom_kspace
    x = np.random.default_rng(0).random((64, 64))
    full = np.ones((64, 64), dtype=bool)
    trajectory = mri.radial_trajectory((64, 64), 8)
    quiet = [mri.birdcage_maps((64, 64), c) for c in (1, 4, 8)] + [
        mri.espirit_maps(kspace),  # 2/3 of the pixels nonzero
        mri.espirit_maps(kspace, calib_width=10),  # 7 %: ESPIRiT crops almost everything
        mri.espirit_maps(kspace, threshold=0.5),  # 2.5 %
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for normalised in quiet:
            assert np.count_nonzero(np.sum(np.abs(normalised) ** 2, axis=0)) > 0
            CartesianMRI(full, normalised, real=True)
            NonCartesianMRI(trajectory, (64, 64), normalised, real=True)
        CartesianMRI(np.ones((4, 16, 16), dtype=bool), mri.birdcage_maps((4, 16, 16), 12), real=False)
    # maps times 10: H^H H = sum_c |S_c|^2 = 100 on a full mask, so the zero-filled image is 100 x
    with pytest.warns(UserWarning, match=r"CartesianMRI: the coil maps are far from normalised: sum_c \|S_c\|\^2 "
                                         r"has median 100 over the pixels") as record:
        H = CartesianMRI(full, 10 * maps, real=True)
    assert record[0].filename == __file__  # the user's line, not the library's
    np.testing.assert_allclose(mri.zero_filled(H, H(x)), 100 * x, atol=1e-10)
    with pytest.warns(UserWarning, match="far from normalised: sum_c .* has median 0.01 "):
        CartesianMRI(full, maps / 10, real=True)
    with pytest.warns(UserWarning, match="check that they are coil maps"):  # the median is 0.018
        CartesianMRI(full, kspace, real=True)
    with pytest.warns(UserWarning, match="CartesianMRI: the coil maps are zero everywhere"):
        CartesianMRI(full, np.zeros_like(maps), real=True)
    with pytest.warns(UserWarning, match="NonCartesianMRI: the coil maps are far from normalised") as record:
        NonCartesianMRI(trajectory, (64, 64), 10 * maps, real=True)
    assert record[0].filename == __file__


def test_baselines_refuse_non_finite_data():
    """zero_filled, sense and espirit_maps return NaN images from NaN data unless they refuse it."""
    H = CartesianMRI(np.ones((4, 6)), real=False)
    y = np.ones((4, 6), dtype=complex)
    y[1, 2] = np.nan
    with pytest.raises(ValueError, match="zero_filled: y contains 1 NaN or Inf value"):
        mri.zero_filled(H, y)
    with pytest.raises(ValueError, match="sense: y contains 1 NaN or Inf value"):
        mri.sense(H, y)
    with pytest.raises(ValueError, match="sense: x0 contains 24 NaN or Inf values"):
        mri.sense(H, np.ones((4, 6), dtype=complex), x0=np.full((4, 6), np.inf + 0j))
    with pytest.raises(ValueError, match="espirit_maps: kspace contains 1 NaN or Inf value"):
        mri.espirit_maps(y[None], calib_width=4, kernel_width=2)


def test_k_space_in_numpy_fft_order_is_named_by_solve_and_the_baselines():
    """Only the CLI looked: solve, zero_filled and sense took k-space in numpy.fft's order, the zero frequency
    at the corners, and returned an image cut in four and swapped (in the CLI's test 10.3 dB) without a word."""
    from adareg import solve
    from adareg.data import shepp_logan
    from adareg.operators import Identity
    from adareg.regularizers import TV

    images = np.stack([shepp_logan((32, 32)), shepp_logan((32, 32))[::-1]])
    mask = mri.cartesian_mask((32, 32), 2, 0.25, seed=0)
    H = CartesianMRI(mask, real=True, shape=(32, 32))
    # a user of numpy.fft: the data and the mask both with the zero frequency first
    numpy_order = CartesianMRI(np.fft.ifftshift(mask), real=True, shape=(32, 32))
    uncentred = np.fft.fft2(images, norm="ortho") * np.fft.ifftshift(mask)
    calls = {"solve": lambda op, y: solve(op, y, TV((32, 32)), lam=1e-3, max_iter=2),
             "zero_filled": mri.zero_filled, "sense": lambda op, y: mri.sense(op, y, max_iter=2)}
    for name, call in calls.items():
        for op, y in ((numpy_order, uncentred), (numpy_order, uncentred[0]), (2.0 * numpy_order, 2 * uncentred),
                      (numpy_order @ Identity((32, 32)), uncentred)):  # through a scale and a composition too
            with pytest.warns(UserWarning, match=rf"^{name}: y: the k-space is largest at the grid's corners, not "
                                                 r"at its centre \(numpy.fft's order\?\)") as record:
                call(op, y)
            assert [w.filename for w in record] == [__file__]
        with warnings.catch_warnings():  # centred k-space, as H gives it
            warnings.simplefilter("error")
            call(H, H(images))


def test_k_space_in_numpy_fft_order_is_named_where_no_column_near_the_edges_is_sampled():
    """The check compared blocks at the grid's corners, which such a mask leaves unsampled: it said nothing (16 %
    of cartesian_mask's masks at 32 x 32, x4); the fully sampled readout axis has the evidence."""
    from adareg.data import image as bundled_image

    n = 32
    columns = np.zeros(n, dtype=bool)
    columns[[6, 9, 12, 13, 14, 15, 16, 17, 18, 19, 22, 25]] = True  # none within n / 8 of either edge
    H = CartesianMRI(columns, mri.birdcage_maps((n, n), 4), real=True)
    image = bundled_image("camera", shape=(n, n))
    centred = H(image)
    uncentred = np.fft.fft2(H.maps * image, norm="ortho") * columns  # numpy.fft's order, zero frequency first
    with pytest.warns(UserWarning, match=r"^zero_filled: y: the k-space is largest at the grid's corners"):
        mri.zero_filled(H, uncentred)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mri.zero_filled(H, centred)


def test_real_k_space_is_refused_by_solve_and_the_baselines():
    """Its magnitude, |y|, gave an image from zero_filled and a "converged" SENSE result, without a word."""
    from adareg import solve
    from adareg.regularizers import TV

    H = CartesianMRI(mri.cartesian_mask((16, 16), 2, 0.25, seed=0), real=False, shape=(16, 16))
    magnitude = np.abs(H(np.random.default_rng(0).standard_normal((16, 16))))
    calls = {"solve": lambda: solve(H, magnitude, TV((16, 16)), lam=1e-3, max_iter=2),
             "zero_filled": lambda: mri.zero_filled(H, magnitude), "sense": lambda: mri.sense(H, magnitude)}
    for name, call in calls.items():
        with pytest.raises(TypeError, match=rf"^{name}: y holds real values \(float64\), but k-space is complex"):
            call()
    # the same for non-Cartesian k-space: a real part gave SENSE 0.85 relative error, without a word
    if importlib.util.find_spec("sigpy") is not None:
        G = NonCartesianMRI(mri.radial_trajectory((16, 16), 8), (16, 16), real=True)
        real_part = G(np.random.default_rng(0).random((16, 16))).real
        for name, call in (("sense", lambda: mri.sense(G, real_part)), ("zero_filled", lambda: mri.zero_filled(
                G, real_part)), ("solve", lambda: solve(G, real_part, TV((16, 16)), lam=1e-3, max_iter=2))):
            with pytest.raises(TypeError, match=rf"^{name}: y holds real values \(float64\), but k-space is"):
                call()


def test_espirit_maps_refuses_real_k_space(sigpy):
    """Its magnitude gave maps 0.84 alike to the true ones (median |<E, S>|), coil images 0.000, without a word."""
    maps = mri.birdcage_maps((24, 24), 4)
    kspace = CartesianMRI(np.ones((24, 24), bool), maps, real=False)(np.ones((24, 24), complex))
    for real in (np.abs(kspace), kspace.real.astype(np.float32)):
        with pytest.raises(TypeError, match=rf"^espirit_maps: kspace holds real values \({real.dtype}\), but k-space "
                                            "is complex"):
            mri.espirit_maps(real, calib_width=12)


# ------------------------------------------------------------- non-Cartesian
@pytest.mark.parametrize("oversamp, width, tol", [(1.25, 4, 2e-2), (2.0, 6, 1e-4)])
def test_nufft_matches_direct_nonuniform_dft(sigpy, oversamp, width, tol):
    rng = np.random.default_rng(3)
    shape = (8, 6)
    trajectory = rng.uniform(-0.5, 0.5, (5, 7, 2)) * np.array(shape)
    x = complex_normal(rng, shape)
    H = NonCartesianMRI(trajectory, shape, real=False, oversamp=oversamp, width=width)
    expected = nudft(x, trajectory)
    assert H(x).shape == (5, 7)
    assert np.linalg.norm(H(x) - expected) <= tol * np.linalg.norm(expected)


def test_multicoil_nufft_with_density_on_real_images(sigpy):
    rng = np.random.default_rng(4)
    shape = (6, 6)
    trajectory = rng.uniform(-3, 3, (20, 2))
    maps = random_maps(rng, (3, *shape))
    density = rng.random(20)
    x = rng.standard_normal(shape)
    H = NonCartesianMRI(trajectory, shape, maps, density, real=True, oversamp=2.0, width=6)
    expected = np.stack([np.sqrt(density) * nudft(s * x, trajectory) for s in maps])
    np.testing.assert_allclose(H(x), expected, atol=1e-4 * np.abs(expected).max())
    # the adjoint is the real part of the conjugate transpose of the direct sum
    grids = np.meshgrid(*[np.arange(n) - n // 2 for n in shape], indexing="ij")
    E = np.exp(-2j * np.pi * sum(np.multiply.outer(trajectory[:, a] / n, g)
                                 for a, (n, g) in enumerate(zip(shape, grids)))) / 6.0
    y = complex_normal(rng, (3, 20))
    back = sum(np.conj(s) * np.einsum("j...,j->...", E.conj(), np.sqrt(density) * yc) for s, yc in zip(maps, y))
    np.testing.assert_allclose(H.H(y), back.real, atol=1e-4 * np.abs(back).max())


def test_nufft_3d_and_grid_points_agree_with_the_dft(sigpy):
    rng = np.random.default_rng(5)
    shape = (4, 3, 5)
    trajectory = rng.uniform(-0.5, 0.5, (9, 3)) * np.array(shape)
    H = NonCartesianMRI(trajectory, shape, real=False, oversamp=2.0, width=6)
    x = complex_normal(rng, shape)
    expected = nudft(x, trajectory)
    assert np.linalg.norm(H(x) - expected) <= 1e-4 * np.linalg.norm(expected)
    assert H.adjoint_error() < 1e-12
    # on the integer grid (both ends -N/2 and N/2 allowed) the NUFFT is the centred DFT
    grid = np.stack(np.meshgrid(np.arange(-2, 2), np.arange(-1, 2), np.arange(-2, 3), indexing="ij"), axis=-1)
    grid[0, ..., 0] = 2.0  # +N/2 is the same frequency as -N/2
    G = NonCartesianMRI(grid, shape, real=False, oversamp=2.0, width=6)
    cartesian = CartesianMRI(np.ones(shape, dtype=bool), real=False)(x)
    np.testing.assert_allclose(G(x), cartesian, atol=1e-4 * np.abs(cartesian).max())


def test_noncartesian_errors_name_the_problem(sigpy):
    shape = (8, 8)
    with pytest.raises(ValueError, match="trajectory out of range on axis 1.*\\[-4, 4\\]"):
        NonCartesianMRI(np.array([[0.0, 4.5]]), shape, real=True)
    with pytest.raises(ValueError, match="shape \\(\\.\\.\\., 2\\)"):
        NonCartesianMRI(np.zeros((5, 3)), shape, real=True)
    with pytest.raises(ValueError, match="coil maps that do not match the image"):
        NonCartesianMRI(np.zeros((5, 2)), shape, np.ones((2, 8, 7)), real=True)
    with pytest.raises(ValueError, match="density must be real, non-negative and of shape"):
        NonCartesianMRI(np.zeros((5, 2)), shape, density=np.ones(4), real=True)
    with pytest.raises(ValueError, match="NaN or Inf"):
        NonCartesianMRI(np.full((5, 2), np.nan), shape, real=True)


@pytest.mark.parametrize("options, error, words", [
    ({"width": np.inf}, ValueError, "width must be finite"),
    ({"width": 0.5}, ValueError, "width = 0.5 is too narrow for oversamp = 1.25"),
    ({"oversamp": 1.0, "width": 1.7}, ValueError, "width = 1.7 is too narrow for oversamp = 1:"),
    ({"oversamp": np.inf}, ValueError, "oversamp must be finite"),
    ({"oversamp": 0.9}, ValueError, "oversamp must be at least 1"),
    ({"oversamp": "2"}, TypeError, "oversamp must be a real number"),
    ({"width": True}, TypeError, "width must be a real number"),
])
def test_noncartesian_refuses_bad_nufft_settings(sigpy, options, error, words):
    with pytest.raises(error, match=f"NonCartesianMRI: {words}"):
        NonCartesianMRI(np.zeros((5, 2)), (8, 8), real=True, **options)


def test_noncartesian_accepts_the_narrowest_kernel(sigpy):
    trajectory = np.random.default_rng(0).uniform(-4, 4, (30, 2))
    x = np.random.default_rng(1).standard_normal((8, 8))
    with pytest.warns(UserWarning, match="from the direct Fourier sum"):
        H = NonCartesianMRI(trajectory, (8, 8), real=False, oversamp=1.0, width=1.8)
    assert np.all(np.isfinite(H(x))) and np.linalg.norm(H(x)) > 0
    assert H.adjoint_error() < 1e-12


@pytest.mark.parametrize("oversamp, width", [(1.0, 4), (1.05, 4), (1.25, 3), (1.25, 4), (1.1, 6), (2.0, 6)])
def test_an_inaccurate_nufft_warns(sigpy, oversamp, width):
    """oversamp=1 was accepted without a word, 30 to 50 % from the direct sum; the adjoint stays exact, so that
    nothing downstream could notice."""
    from adareg.operators.mri import NUFFT_ACCURACY

    rng = np.random.default_rng(9)
    shape = (24, 20)
    trajectory = rng.uniform(-0.5, 0.5, (200, 2)) * np.array(shape)
    x = complex_normal(rng, shape)
    expected = nudft(x, trajectory)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        H = NonCartesianMRI(trajectory, shape, real=False, oversamp=oversamp, width=width)
    error = np.linalg.norm(H(x) - expected) / np.linalg.norm(expected)
    assert error > 1.3 * NUFFT_ACCURACY or error < NUFFT_ACCURACY / 1.3  # the cases lie clear of the threshold
    pattern = (rf"NonCartesianMRI: SigPy's NUFFT at oversamp = {oversamp:g} and width = {width:g} lies [\d.e-]+ "
               r"\(relative\) from the direct Fourier sum, more than 0.02: raise oversamp \(default 1.25\) or width")
    assert [re.match(pattern, str(w.message)) is not None for w in caught] == ([True] if error > NUFFT_ACCURACY
                                                                                else [])


def test_a_trajectory_on_another_scale_warns(sigpy):
    spokes = mri.radial_trajectory((64, 64), 16)  # the documented convention: up to N/2 = 32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NonCartesianMRI(spokes, (64, 64), real=True)
    unit = spokes / np.abs(spokes).max()
    for top, extent in ((0.5, "0.5"), (np.pi, "3.14")):  # [-0.5, 0.5] and [-pi, pi]: 80 % and 71 % error before
        with pytest.warns(UserWarning, match=f"the trajectory reaches only {extent} of the k-space grid"):
            NonCartesianMRI(top * unit, (64, 64), real=True)


def test_missing_sigpy_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "sigpy", None)
    with pytest.raises(ImportError, match=re.escape("pip install adareg[mri]")):
        sigpy_module()
    with pytest.raises(ImportError, match=re.escape("pip install adareg[mri]")):
        NonCartesianMRI(np.zeros((5, 2)), (8, 8), real=True)


# -------------------------------------------------------------------- masks
def test_cartesian_mask_follows_fastmri():
    mask = mri.cartesian_mask((10, 256), 4, 0.08, seed=0)
    assert mask.shape == (10, 256) and mask.dtype == bool
    assert (mask == mask[0]).all()  # whole columns
    centre = round(256 * 0.08)  # 20 columns from (256 - 20 + 1) // 2 = 118, around DC at 128
    assert mask[0, 118:138].all()
    # random: the expected number of columns is W / acceleration
    counts = [mri.cartesian_mask((256,), 4, 0.08, seed=s).sum() for s in range(400)]
    p = (256 / 4 - centre) / (256 - centre)
    assert np.mean(counts) == pytest.approx(64, abs=4 * np.sqrt((256 - centre) * p * (1 - p) / 400))
    equispaced = mri.cartesian_mask((256,), 4, 0.08, kind="equispaced", seed=1)
    assert equispaced[118:138].all() and abs(int(equispaced.sum()) - 64) <= 3
    for side in (equispaced[:118], equispaced[138:]):  # every a' = 4 (236 / 176) = 5.36-th column
        assert set(np.diff(np.flatnonzero(side))) <= {5, 6}
    np.testing.assert_array_equal(mri.cartesian_mask((64,), 4, 0.08, seed=3), mri.cartesian_mask((64,), 4, 0.08, seed=3))


@pytest.mark.parametrize("kind", ["random", "equispaced"])
def test_cartesian_mask_without_acceleration_samples_every_column(kind):
    # acceleration 1 is full sampling (equispaced left out the last column before)
    assert mri.cartesian_mask((8, 20), 1, 0.1, kind=kind, seed=0).all()


def test_cartesian_mask_errors():
    with pytest.raises(ValueError, match="more than"):
        mri.cartesian_mask((64,), 8, 0.25)
    with pytest.raises(ValueError, match="acceleration"):
        mri.cartesian_mask((64,), 0.5, 0.08)
    with pytest.raises(ValueError, match="kind"):
        mri.cartesian_mask((64,), 4, 0.08, kind="poisson")
    for acceleration in ("4", True, np.nan):
        with pytest.raises((TypeError, ValueError), match="cartesian_mask: acceleration must be"):
            mri.cartesian_mask((64,), acceleration, 0.08)
    with pytest.raises(TypeError, match="cartesian_mask: center_fraction must be a real number"):
        mri.cartesian_mask((64,), 4, "0.08")
    # a centre of exactly W / acceleration columns is the whole mask (a ZeroDivisionError before)
    mask = mri.cartesian_mask((100,), 4, 0.25, kind="equispaced")
    assert mask.sum() == 25 and mask[38:63].all()


@pytest.mark.parametrize("seed, error", [(1.5, TypeError), ("a", TypeError), (True, TypeError), ([1, 2], TypeError),
                                         (-1, ValueError)])
def test_cartesian_mask_refuses_bad_seeds(seed, error):
    with pytest.raises(error, match=r"cartesian_mask: seed must be a non-negative int or None"):
        mri.cartesian_mask((64,), 4, 0.08, seed=seed)


def test_cartesian_mask_takes_ints_generators_and_none():
    expected = mri.cartesian_mask((64,), 4, 0.08, seed=5)
    np.testing.assert_array_equal(mri.cartesian_mask((64,), 4, 0.08, seed=np.int64(5)), expected)
    np.testing.assert_array_equal(mri.cartesian_mask((64,), 4, 0.08, seed=np.random.default_rng(5)), expected)
    assert mri.cartesian_mask((64,), 4, 0.08, seed=None).sum() >= 5  # the centre at least


# ------------------------------------------------------------ trajectories
def test_radial_trajectory_spokes_through_the_centre():
    k = mri.radial_trajectory((32, 24), 10)
    assert k.shape == (10, 32, 2)
    assert np.all(k >= -np.array([16, 12])) and np.all(k < np.array([16, 12]))
    for s, spoke in enumerate(k):  # on the line at angle pi s / 10, in coordinates scaled to the unit square
        scaled = spoke / np.array([16, 12])
        np.testing.assert_allclose(scaled, np.outer(np.arange(-16, 16) / 16, [np.sin(np.pi * s / 10),
                                                                              np.cos(np.pi * s / 10)]), atol=1e-12)
    golden = mri.radial_trajectory((32, 32), 3, golden=True)
    angles = np.degrees(np.arctan2(golden[:, 0, 0], golden[:, 0, 1])) % 180
    np.testing.assert_allclose(np.diff(angles) % 180, [111.2461, 111.2461], atol=1e-3)


def test_trajectory_flags_and_turns_are_checked():
    """golden="no" gave golden angles (a string is true), and turns="3" or True a spiral of 3 or 1 turns."""
    with pytest.raises(TypeError, match="^radial_trajectory: golden must be True or False, got 'no'"):
        mri.radial_trajectory((8, 8), 3, golden="no")
    for bad in ("3", True, [2, 3]):
        with pytest.raises(TypeError, match="^spiral_trajectory: turns must be a real number"):
            mri.spiral_trajectory((8, 8), 2, 10, turns=bad)
    with pytest.raises(ValueError, match="^spiral_trajectory: turns must be positive, got -1"):
        mri.spiral_trajectory((8, 8), 2, 10, turns=-1)


def test_spiral_trajectory_stays_in_range_and_turns():
    k = mri.spiral_trajectory((32, 32), 4, 200)
    assert k.shape == (4, 200, 2)
    radius = np.hypot(k[..., 0], k[..., 1])
    assert radius.max() < 16 and radius[:, 0].max() == 0
    assert np.all(np.diff(radius, axis=1) > 0)  # moving out
    # default turns: ceil(32 / 8) = 4 per interleaf
    angle = np.unwrap(np.arctan2(k[0, 1:, 0], k[0, 1:, 1]))
    assert (angle[-1] - angle[0]) / (2 * np.pi) == pytest.approx(4 * 198 / 200, rel=1e-9)


# ---------------------------------------------------------------- coil maps
def test_birdcage_maps_are_normalised_and_peak_near_their_coil(sigpy):
    maps = mri.birdcage_maps((32, 32), 8)
    assert maps.shape == (8, 32, 32) and maps.dtype == np.complex128
    np.testing.assert_allclose(np.sum(np.abs(maps) ** 2, axis=0), 1.0, atol=1e-12)
    # coil 0 sits at angle 0, i.e. to the right (large column index) of the centre
    row, column = np.unravel_index(np.argmax(np.abs(maps[0])), (32, 32))
    assert column == 31 and abs(row - 16) <= 2


@pytest.mark.parametrize("radius, error, words", [
    (np.inf, ValueError, "radius must be finite"),
    (np.nan, ValueError, "radius must be finite"),
    (1.0, ValueError, "radius must be > 1"),
    ("1.5", TypeError, "radius must be a real number"),
])
def test_birdcage_maps_refuse_bad_radius(sigpy, radius, error, words):
    with pytest.raises(error, match=f"birdcage_maps: {words}"):
        mri.birdcage_maps((16, 16), 4, radius=radius)


def test_espirit_recovers_the_coil_maps_up_to_a_common_phase(sigpy):
    shape = (48, 48)
    maps = mri.birdcage_maps(shape, 6)
    yy, xx = np.mgrid[:48, :48] - 24
    image = ((yy / 18) ** 2 + (xx / 14) ** 2 <= 1) * (1.0 + 0.5 * np.cos(xx / 5.0))
    kspace = CartesianMRI(np.ones(shape, dtype=bool), maps, real=True)(image)
    estimate = mri.espirit_maps(kspace, calib_width=20, kernel_width=5)
    assert estimate.shape == maps.shape
    inside = image > 0
    agreement = np.abs(np.sum(np.conj(estimate) * maps, axis=0))[inside]  # |<S_est, S>| per pixel, 1 if equal up to phase
    assert agreement.mean() > 0.99 and agreement.min() > 0.9


def test_espirit_refuses_settings_that_give_no_maps(sigpy, phantom_kspace):
    """These settings gave all-zero maps (or NaN ones, with NumPy warnings) instead of an error."""
    kspace, _ = phantom_kspace
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy "invalid value" warnings either
        # calibration matrices of (calib_width - 5)^2 = 1 and 9 rows for 4 * 6^2 = 144 columns; an eigenvalue
        # crop of 1 that none reaches; a threshold that keeps one kernel
        for options in ({"calib_width": 6}, {"calib_width": 8}, {"crop": 1.0}, {"threshold": 0.99}):
            narrow = "calib_width" in options  # a kernel of 6 beyond half the width is warned about first
            with (pytest.warns(UserWarning, match="kernel_width 6 exceeds half of calib_width") if narrow
                  else contextlib.nullcontext()):
                with pytest.raises(ValueError, match="espirit_maps: ESPIRiT found no coil sensitivities \\(the maps "
                                                     "are zero everywhere\\) .*likely causes: a calibration region "
                                                     "too small .* or crop or threshold too high"):
                    mri.espirit_maps(kspace, **options)
        no_centre = kspace.copy()
        no_centre[:, 16:48, 16:48] = 0  # signal outside the calibration region only
        with pytest.raises(ValueError, match="espirit_maps: 576 of the 24\\^2 samples of the calibration region .* "
                                             "are 0 in every coil: it must be fully sampled"):
            mri.espirit_maps(no_centre)
        with pytest.raises(ValueError, match="espirit_maps: kspace is all zero"):
            mri.espirit_maps(np.zeros_like(kspace))


def test_espirit_refuses_a_calibration_region_that_is_not_fully_sampled(sigpy, phantom_kspace):
    # 8 central columns sampled under the default calib_width 24 gave worse maps without a word
    kspace, _ = phantom_kspace
    columns = np.zeros(kspace.shape[-1], dtype=bool)
    centre = kspace.shape[-1] // 2
    columns[centre - 4:centre + 4] = True
    columns[::4] = True
    undersampled = kspace * columns
    # columns 20 to 43 calibrate; 28 to 35 and every 4th are sampled: 12 columns of 24 rows are not
    # the region as SigPy crops it is named: on an odd width it starts a column left of fastMRI's even centre
    with pytest.raises(ValueError, match=r"espirit_maps: 288 of the 24\^2 samples of the calibration region \(the "
                                         r"central calib_width 24\) are 0 in every coil.* \(the region starts at "
                                         r"N // 2 - calib_width // 2 on each axis"):
        mri.espirit_maps(undersampled)
    assert mri.espirit_maps(undersampled, calib_width=8, kernel_width=3).shape == kspace.shape


@pytest.mark.parametrize("options, error, words", [
    ({"threshold": 5}, ValueError, r"threshold must lie in \[0, 1\)"),
    ({"threshold": 1.0}, ValueError, r"threshold must lie in \[0, 1\)"),
    ({"threshold": -0.1}, ValueError, r"threshold must lie in \[0, 1\)"),
    ({"threshold": np.nan}, ValueError, "threshold must be finite"),
    ({"threshold": "0.02"}, TypeError, "threshold must be a real number"),
    ({"crop": 2}, ValueError, r"crop must lie in \[0, 1\]"),
    ({"crop": -0.5}, ValueError, r"crop must lie in \[0, 1\]"),
    ({"crop": np.inf}, ValueError, "crop must be finite"),
    ({"max_iter": 0}, ValueError, "max_iter must be at least 1"),
    ({"max_iter": 2.5}, TypeError, "max_iter must be an int"),
])
def test_espirit_refuses_bad_settings(sigpy, options, error, words):
    kspace = np.ones((2, 16, 16), dtype=complex)
    with pytest.raises(error, match=f"espirit_maps: {words}"):
        mri.espirit_maps(kspace, calib_width=8, kernel_width=4, **options)


# ----------------------------------------------------------------- baselines
def test_zero_filled_inverts_a_fully_sampled_acquisition(sigpy):
    x = np.random.default_rng(6).random((16, 16))
    H = CartesianMRI(np.ones((16, 16)), mri.birdcage_maps((16, 16), 4), real=True)
    np.testing.assert_allclose(mri.zero_filled(H, H(x)), x, atol=1e-12)
    with pytest.raises(ValueError, match="measurements"):
        mri.zero_filled(H, np.ones((16, 16), dtype=complex))


@pytest.mark.parametrize("real", [True, False])
def test_sense_solves_the_tikhonov_normal_equations(real):
    rng = np.random.default_rng(7)
    maps = complex_normal(rng, (3, 6, 5)) / 2
    H = CartesianMRI(mri.cartesian_mask((6, 5), 2, 0.2, seed=0), maps, real=real)
    y = complex_normal(rng, H.shape_out)
    M = dense(H, np.float64 if real else np.complex128)
    if real:  # real unknowns: least squares on the stacked real and imaginary parts
        M, rhs = np.vstack([M.real, M.imag]), np.concatenate([y.real.ravel(), y.imag.ravel()])
    else:
        rhs = y.ravel()
    expected = np.linalg.solve(M.conj().T @ M + 0.05 * np.eye(M.shape[1]), M.conj().T @ rhs).reshape(6, 5)
    result = mri.sense(H, y, lam=0.05, tol=1e-10, max_iter=200)
    assert result.converged and result.history["residual"][-1] <= 1e-10
    np.testing.assert_allclose(result.x, expected, atol=1e-8 * np.abs(expected).max())


def test_sense_refuses_data_that_never_reach_the_image():
    """H^H y = 0 for y != 0 gave x = 0, 'converged' in 0 iterations; y = 0 still gives x = 0."""
    rng = np.random.default_rng(8)
    mask = np.zeros(6, dtype=bool)
    mask[2:4] = True
    with pytest.warns(UserWarning, match="zero everywhere"):
        dead = CartesianMRI(mask, np.zeros((2, 4, 6)), real=False)
    y = complex_normal(rng, (2, 4, 6)) * mask
    with pytest.raises(ValueError, match=r"sense: H\^H y is zero although y is not: nothing of y reaches the image"):
        mri.sense(dead, y)
    H = CartesianMRI(mask, random_maps(rng, (2, 4, 6)), real=True)
    with pytest.raises(ValueError, match=r"H\^H y is zero although y is not"):  # y only where nothing is sampled
        mri.sense(H, complex_normal(rng, (2, 4, 6)) * ~mask)
    result = mri.sense(H, np.zeros((2, 4, 6), dtype=complex))
    assert result.converged and not result.x.any()


def test_sense_refuses_complex_x0_for_real_images():
    rng = np.random.default_rng(9)
    maps = random_maps(rng, (2, 4, 6))
    y = complex_normal(rng, (2, 4, 6))
    x0 = complex_normal(rng, (4, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's ComplexWarning before, the imaginary part dropped
        with pytest.raises(TypeError, match=r"sense: x0 is complex \(complex128\) but the images of "
                                            r"CartesianMRI\(.*real images\) are real"):
            mri.sense(CartesianMRI(np.ones((4, 6)), maps, real=True), y, x0=x0)
        # complex images take it, and the solution does not depend on the start
        H = CartesianMRI(np.ones((4, 6)), maps, real=False)
        np.testing.assert_allclose(mri.sense(H, y, x0=x0, tol=1e-12, max_iter=100).x,
                                   mri.sense(H, y, tol=1e-12, max_iter=100).x, atol=1e-10)


# ------------------------------------------------------------------ example
def test_mri_example_leads_with_sa_cnn(tmp_path, sigpy):
    pytest.importorskip("skimage")
    pytest.importorskip("matplotlib")
    pytest.importorskip("pydicom")
    figure = tmp_path / "mri.png"
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "mri_recon.py"), "--quiet", "--output", str(figure)],
                         capture_output=True, text=True, check=True, timeout=600)
    rows = re.findall(r"^(zero-filled|SENSE|tv|wcrr|sa-cnn)\s+([\d.]+)", out.stdout, re.M)
    assert rows[0][0] == "sa-cnn", out.stdout
    psnr = {name: float(value) for name, value in rows}
    assert psnr["tv"] > psnr["zero-filled"] + 3, out.stdout
    assert psnr["sa-cnn"] >= psnr["tv"] + 1.0, out.stdout  # issue 16's bar
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
