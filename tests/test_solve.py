"""adareg.solve: both paths against independent solutions, batching, dtypes, and bad input."""

from __future__ import annotations

import math
import re
import sys
import time
import warnings

import numpy as np
import pytest

import adareg
from adareg.operators import Blur, Diagonal, FiniteDifference, Identity, Subsample
from adareg.intensities import INTENSITY_FLOOR, INTENSITY_LIMIT
from adareg.regularizers import TV, ProxResult, Regularizer, WeightedL1Analysis
from adareg.regularizers.ridge import RidgeObjective
from tests.conftest import DEVICES
from tests.helpers import MatrixOperator
from tests.solvers.test_fista import lasso_problem, lasso_reference


def test_lasso_through_solve_matches_scipy():
    A, b, lam = lasso_problem(5)
    result = adareg.solve(MatrixOperator(A), b, WeightedL1Analysis(Identity((20,))), lam=lam, tol=1e-13,
                          max_iter=20000)
    reference = lasso_reference(A, b, lam)
    assert result.converged
    assert np.linalg.norm(result.x - reference) <= 1e-6 * np.linalg.norm(reference)


def test_zero_weights_give_the_least_squares_solution():
    rng = np.random.default_rng(1)
    A, y = rng.standard_normal((40, 16)), rng.standard_normal(40)
    reg = WeightedL1Analysis(FiniteDifference((16,)), 0.0)
    result = adareg.solve(MatrixOperator(A), y, reg, lam=1.0, tol=1e-12, max_iter=50000)
    np.testing.assert_allclose(result.x, np.linalg.lstsq(A, y, rcond=None)[0], atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_denoising_is_the_certified_prox(device):
    rng = np.random.default_rng(2)
    clean = np.kron(rng.random((4, 4)), np.ones((8, 8)))
    noisy = adareg.to_device(clean + 0.1 * rng.standard_normal(clean.shape), device)
    result = adareg.solve(Identity(clean.shape), noisy, TV(clean.shape), lam=0.08, tol=1e-4, max_iter=5000)
    assert result.converged and adareg.backend.device_of(result.x) == device
    assert result.history.columns == ("iteration", "objective", "gap", "seconds")
    assert np.sqrt(2 * result.history["gap"][-1]) <= 1e-4 * float(np.linalg.norm(adareg.to_numpy(noisy)))
    assert adareg.psnr(adareg.to_numpy(result.x), clean) > adareg.psnr(adareg.to_numpy(noisy), clean) + 5


def test_deblurring_reaches_a_fixed_point_of_the_prox_gradient_map():
    """x* = prox_{s lam TV}(x* - s grad E(x*)) characterises the minimiser; the prox is checked separately."""
    rng = np.random.default_rng(3)
    clean = np.kron(rng.random((3, 3)), np.ones((6, 6)))
    psf = np.outer(*2 * [np.array([1.0, 2.0, 1.0])]) / 16
    H = Blur(psf, clean.shape, boundary="reflect")
    y = H(clean) + 0.02 * rng.standard_normal(clean.shape)
    reg, lam = TV(clean.shape), 0.01
    result = adareg.solve(H, y, reg, lam=lam, tol=1e-10, max_iter=20000, inner_tol=1e-8, inner_max_iter=2000)
    assert result.converged
    x = result.x
    s = 1.0 / np.linalg.norm(adareg.to_numpy(H(np.eye(324).reshape(324, 18, 18))).reshape(324, -1), 2) ** 2
    gradient = H.H(H(x) - y)
    mapped = reg.prox(x - s * gradient, s * lam, tol=1e-8, max_iter=100000).x
    assert np.linalg.norm(mapped - x) <= 1e-5 * np.linalg.norm(x)


def test_inpainting_with_bounds():
    rng = np.random.default_rng(4)
    clean = np.kron(rng.random((4, 4)), np.ones((6, 6)))
    mask = rng.random(clean.shape) < 0.6
    H = Subsample(clean.shape, mask)
    result = adareg.solve(H, H(clean), TV(clean.shape), lam=1e-3, bounds=(0, 1), max_iter=3000)
    assert result.x.min() >= 0 and result.x.max() <= 1
    assert adareg.psnr(result.x, clean) > 25


def test_batches_are_solved_independently():
    rng = np.random.default_rng(5)
    ys = rng.random((2, 12, 12))
    H = Blur(np.ones((3, 3)) / 9, (12, 12))
    together = adareg.solve(H, ys, TV((12, 12)), lam=0.01, tol=1e-9, max_iter=5000, inner_tol=1e-7).x
    for i in range(2):
        alone = adareg.solve(H, ys[i], TV((12, 12)), lam=0.01, tol=1e-9, max_iter=5000, inner_tol=1e-7).x
        np.testing.assert_allclose(together[i], alone, atol=1e-5)


def _bright_and_faint(size: int = 32) -> np.ndarray:
    """Two noisy phantoms, the second a hundred times fainter: a batch whose norm is the first's."""
    clean = adareg.data.shepp_logan((size, size))
    noise = 0.1 * np.random.default_rng(10).standard_normal((2, size, size))
    return np.stack([clean + noise[0], 0.01 * (clean + noise[1])])


def test_a_faint_image_in_a_denoising_batch_is_certified_to_its_own_tolerance():
    """||x_i - x_i*|| <= tol ||y_i|| for each image, x_i* from a tight solve of that image alone."""
    ys, R, tol = _bright_and_faint(), TV((32, 32)), 1e-3
    batch = adareg.solve(Identity((32, 32)), ys, R, lam=1e-3, tol=tol)
    assert batch.converged
    for x, y in zip(batch.x, ys):
        exact = adareg.solve(Identity((32, 32)), y, R, lam=1e-3, tol=1e-9, max_iter=100000).x
        assert np.linalg.norm(x - exact) <= tol * np.linalg.norm(y)


@pytest.mark.parametrize("case", ["fista", "reweighting"])
def test_a_batch_stops_when_each_image_has_converged(case):
    """The last step's relative change of every image, computed from the iterates, is within tol."""
    ys = _bright_and_faint()
    if case == "fista":
        H, reg, options = Blur(np.ones((3, 3)) / 9, (32, 32)), TV((32, 32)), {"lam": 1e-5, "tol": 1e-4}
        ys = H(ys)
    else:
        H, reg, options = Identity((32, 32)), adareg.load("sa-cnn"), {"lam": 0.01, "sigma": 0.03, "tol": 1e-3}
    iterates = []
    result = adareg.solve(H, ys, reg, callback=lambda k, x: iterates.append(np.array(x, dtype=np.float64)),
                          **options)
    assert result.converged
    last, before = iterates[-1], iterates[-2]
    changes = [np.linalg.norm(a - b) / np.linalg.norm(b) for a, b in zip(last, before)]
    assert max(changes) <= options["tol"] * (1 + 1e-5)  # float32 iterates for sa-cnn


def blurred_batch(levels: list[float], seed: int) -> tuple[Blur, np.ndarray, dict]:
    """A 3 x 3 box blur of 24 x 24 images, a 2 x 2 batch of the blurred cameraman at the noise ``levels`` (so
    that its images stop at different iterations), and data weights: none, shared, and per image."""
    rng = np.random.default_rng(seed)
    H = Blur(np.ones((3, 3)) / 9, (24, 24))
    ys = H(adareg.data.image("camera", shape=(24, 24))) + np.reshape(levels, (2, 2, 1, 1)) * rng.standard_normal(
        (2, 2, 24, 24))
    return H, ys, {None: None, "shared": rng.uniform(0.5, 2, (24, 24)),
                   "per image": rng.uniform(0.5, 2, (2, 2, 24, 24))}


def solves_alone(H, ys, reg, weights, **options) -> list[adareg.Result]:
    """The solve of each image of the batch ``ys`` alone, with its own data weights."""
    images = ys.reshape(-1, *H.shape_out)
    if weights is not None:
        weights = np.broadcast_to(weights, ys.shape).reshape(images.shape)
    return [adareg.solve(H, y, reg, weights=None if weights is None else weights[i], **options)
            for i, y in enumerate(images)]


def shapes_seen(monkeypatch, cls: type, method: str) -> list[tuple[int, ...]]:
    """The shapes of the image (first argument) of every call of ``cls.method`` from now on."""
    shapes, original = [], getattr(cls, method)
    monkeypatch.setattr(cls, method, lambda self, x, *a, **k: shapes.append(x.shape) or original(self, x, *a, **k))
    return shapes


def assert_each_image_as_alone(chunked: adareg.Result, alone: list[adareg.Result]) -> None:
    """The batch's solve ran to its slowest image's stop and gave each image what its solve alone gives; the images
    stopped at different iterations (else one stop for the batch would give the same)."""
    assert chunked.converged and chunked.iterations == max(result.iterations for result in alone)
    assert len({result.iterations for result in alone}) > 1
    np.testing.assert_allclose(chunked.x.reshape(len(alone), *alone[0].x.shape), [result.x for result in alone],
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("family", ["sa-cnn", "sa-b"])
def test_a_denoising_batch_steps_in_chunks_of_images_on_the_host(family, monkeypatch):
    """Chunk by chunk (chunks.batch_chunks; one image each where CHUNK_BYTES is tiny), each with its own dual
    state and its own stop, the reweighting gives each image of a batch what a solve of that image alone gives.
    The images have different noise levels, so that they stop at different steps."""
    levels = np.array([0.05, 0.1, 0.15, 0.2]).reshape(2, 2, 1, 1)
    noise = np.random.default_rng(12).standard_normal((2, 2, 32, 32))
    ys = adareg.data.image("camera", shape=(32, 32)) + levels * noise
    options = {"sigma": 0.1, "tol": 1e-4, "precision": "float64"}
    shapes = shapes_seen(monkeypatch, WeightedL1Analysis, "prox")
    adareg.solve(Identity((32, 32)), ys, adareg.load(family), **options)  # 1 MiB of dual: one chunk
    assert set(shapes) == {(2, 2, 32, 32)}
    monkeypatch.setattr(adareg.solvers.chunks, "CHUNK_BYTES", 1)
    alone = solves_alone(Identity((32, 32)), ys, adareg.load(family), None, **options)
    shapes.clear()
    chunked = adareg.solve(Identity((32, 32)), ys, adareg.load(family), **options)
    assert set(shapes) == {(1, 32, 32)} and len(shapes) == sum(result.iterations for result in alone)
    assert_each_image_as_alone(chunked, alone)


@pytest.mark.parametrize("weights", [None, "shared", "per image"])
def test_a_general_batch_steps_in_chunks_of_images_on_the_host(weights, monkeypatch):
    """As in denoising: chunk by chunk, each chunk with its own data term, momentum, duals, budget and confirmed
    stop, the reweighting for a general H gives each image of a batch what a solve of that image alone gives.
    Before, the batch stepped as one, every image to the slowest one's stop (docs/results.md, "Batches of
    slices")."""
    H, ys, w = blurred_batch([0.02, 0.04, 0.06, 0.08], seed=13)
    options = {"lam": 0.02, "sigma": 0.1, "precision": "float64", "bounds": (0, None)}  # solve's tol, 3e-3
    shapes = shapes_seen(monkeypatch, WeightedL1Analysis, "prox")
    adareg.solve(H, ys, adareg.load("sa-cnn"), weights=w[weights], max_iter=1, **options)  # one chunk (0.6 MiB)
    assert set(shapes) == {(2, 2, 24, 24)}
    monkeypatch.setattr(adareg.solvers.chunks, "CHUNK_BYTES", 1)
    alone = solves_alone(H, ys, adareg.load("sa-cnn"), w[weights], **options)
    shapes.clear()
    chunked = adareg.solve(H, ys, adareg.load("sa-cnn"), weights=w[weights], **options)
    assert set(shapes) == {(1, 24, 24)}
    assert len(shapes) == 10 * sum(result.iterations for result in alone)  # 10 proxes a step
    assert_each_image_as_alone(chunked, alone)


@pytest.mark.parametrize("weights", [None, "shared", "per image"])
def test_a_ridge_batch_runs_in_chunks_of_images_on_the_host(weights, monkeypatch):
    """L-BFGS on a batch, chunk by chunk (chunks.image_chunks), each chunk with its own objective, Lipschitz
    constant and stop, gives each image what a solve of that image alone gives; before, the batch stopped as one,
    every image at the slowest one's stop (docs/results.md, "Batches of slices")."""
    H, ys, w = blurred_batch([0.01, 0.03, 0.05, 0.1], seed=14)
    options = {"lam": 0.02, "sigma": 0.1, "precision": "float64", "bounds": (0, None)}
    shapes = shapes_seen(monkeypatch, RidgeObjective, "forward")
    adareg.solve(H, ys, adareg.load("wcrr"), weights=w[weights], max_iter=1, **options)  # one chunk
    assert set(shapes) == {(2, 2, 24, 24)}
    monkeypatch.setattr(adareg.solvers.chunks, "CHUNK_PIXELS", 1)
    alone = solves_alone(H, ys, adareg.load("wcrr"), w[weights], **options)
    shapes.clear()
    chunked = adareg.solve(H, ys, adareg.load("wcrr"), weights=w[weights], **options)
    assert set(shapes) == {(1, 24, 24)}
    assert_each_image_as_alone(chunked, alone)


@pytest.mark.parametrize("weights", [None, "per image"])
def test_a_tv_batch_runs_in_chunks_of_images_on_the_host(weights, monkeypatch):
    """FISTA likewise: chunk by chunk, each with its own step, momentum, prox state, inner tolerance and stop, TV on a
    batch gives each image what a solve of that image alone gives."""
    H, ys, w = blurred_batch([0.01, 0.03, 0.05, 0.1], seed=15)
    options = {"lam": 0.01, "bounds": (0, None), "tol": 1e-6}
    monkeypatch.setattr(adareg.solvers.chunks, "CHUNK_PIXELS", 1)
    alone = solves_alone(H, ys, TV((24, 24)), w[weights], **options)
    assert_each_image_as_alone(adareg.solve(H, ys, TV((24, 24)), weights=w[weights], **options), alone)


def test_images_whose_data_weights_differ_in_scale_run_alone_on_the_host():
    """Small images run as one piece, with one step for the batch, set by its largest data weight: beside an image
    of weights 300, one of weights 1 stopped "converged" 1.5e-3 from its minimiser at tol 1e-5, 30 times farther
    than alone (32 x 32, an audit, 2026-12-08).  The reference: that image solved alone to tol 1e-9."""
    n = 24
    rng = np.random.default_rng(10)
    truth = adareg.data.shepp_logan((n, n))
    H = Blur(np.ones((3, 3)) / 9, (n, n), boundary="reflect")
    ys = np.stack([H(truth), H(truth.T)]) + 0.01 * rng.standard_normal((2, n, n))
    weights = np.stack([np.ones((n, n)), 300 * np.ones((n, n))])
    reference = adareg.solve(H, ys[0], TV((n, n)), lam=0.01, weights=weights[0], tol=1e-9, max_iter=20000).x
    options = {"lam": 0.01, "tol": 1e-5, "max_iter": 5000}
    alone = adareg.solve(H, ys[0], TV((n, n)), weights=weights[0], **options).x
    batch = adareg.solve(H, ys, TV((n, n)), weights=weights, **options)
    assert batch.converged
    distance = np.linalg.norm(batch.x[0] - reference) / np.linalg.norm(reference)
    assert distance <= 2 * np.linalg.norm(alone - reference) / np.linalg.norm(reference), distance


def test_a_tv_batch_with_a_weight_map_per_image_runs_as_one_piece(monkeypatch):
    """A chunk's FISTA run was handed TV's weights for the whole batch: the dual took the weights' batch and the
    solve failed in a reshape, or named a batch of 2 for 4 images of 24 x 24 (an audit, 2026-12-06). As one piece,
    each image is solved with its own map, to the tolerance of its solve alone."""
    H, ys, _ = blurred_batch([0.01, 0.03, 0.05, 0.1], seed=16)
    maps = np.random.default_rng(16).uniform(0.5, 2.0, (2, 2, 1, 24, 24))
    options = {"lam": 0.01, "bounds": (0, None), "tol": 1e-7, "max_iter": 5000}
    monkeypatch.setattr(adareg.solvers.chunks, "CHUNK_PIXELS", 2 * 24 * 24)  # chunks of two images, where maps allow
    batch = adareg.solve(H, ys, TV((24, 24), weights=maps), **options)
    assert batch.converged
    for image, y, weight_map in zip(batch.x.reshape(4, 24, 24), ys.reshape(4, 24, 24), maps.reshape(4, 1, 24, 24)):
        alone = adareg.solve(H, y, TV((24, 24), weights=weight_map), **options).x
        assert np.linalg.norm(image - alone) <= 1e-4 * np.linalg.norm(alone)


@pytest.mark.parametrize("H_is_identity", [True, False])
def test_float32_in_float32_out(H_is_identity):
    y = np.random.default_rng(6).random((10, 10)).astype(np.float32)
    H = Identity((10, 10)) if H_is_identity else Blur(np.ones((2, 2)) / 4, (10, 10))
    result = adareg.solve(H, y, TV((10, 10)), lam=0.05, tol=1e-3, max_iter=50)
    assert result.x.dtype == np.float32


def test_array_views_and_memory_maps_are_solved_as_their_values(tmp_path):
    """Subclasses and layouts that are plain arrays in arithmetic: a memory map of a file, a Fortran-ordered
    copy and a strided view give the solution of the same values in a fresh C-ordered array."""
    rng = np.random.default_rng(7)
    y = rng.random((10, 20))
    H, reg = Blur(np.ones((2, 2)) / 4, (10, 10)), TV((10, 10))
    plain = adareg.solve(H, np.ascontiguousarray(y[:, ::2]), reg, lam=0.05, tol=1e-6).x
    np.save(tmp_path / "y.npy", np.ascontiguousarray(y[:, ::2]))
    for variant in (np.load(tmp_path / "y.npy", mmap_mode="r"), np.asfortranarray(y[:, ::2]), y[:, ::2]):
        np.testing.assert_array_equal(adareg.solve(H, variant, reg, lam=0.05, tol=1e-6).x, plain)


@pytest.mark.parametrize("model", ["wcrr", "sa-cnn"])
def test_learned_models_compute_in_float32_and_return_the_input_dtype(model):
    """float64 in, float64 out; the iterates are float32 and the image is the float64 solve's to its tolerance."""
    y = adareg.data.shepp_logan((32, 32)) + 0.1 * np.random.default_rng(8).standard_normal((32, 32))
    reg = adareg.load(model)
    seen = []
    fast = adareg.solve(Identity(y.shape), y, reg, sigma=0.1, tol=1e-4, callback=lambda k, x: seen.append(x.dtype))
    exact = adareg.solve(Identity(y.shape), y, reg, sigma=0.1, tol=1e-4, precision="float64")
    assert fast.x.dtype == np.float64 and set(seen) == {np.dtype(np.float32)}
    assert np.linalg.norm(fast.x - exact.x) <= 1e-3 * np.linalg.norm(exact.x)


def test_precision_float32_is_honoured_for_any_regularizer():
    y = np.random.default_rng(9).random((10, 10))
    seen = []
    result = adareg.solve(Blur(np.ones((2, 2)) / 4, y.shape), y, TV(y.shape), lam=0.05, max_iter=5,
                          precision="float32", callback=lambda k, x: seen.append(x.dtype))
    assert result.x.dtype == np.float64 and set(seen) == {np.dtype(np.float32)}


def test_weights_change_the_data_term():
    rng = np.random.default_rng(7)
    A, y = rng.standard_normal((30, 10)), rng.standard_normal(30)
    w = rng.random(30)
    reg = WeightedL1Analysis(Identity((10,)), 0.0)
    x = adareg.solve(MatrixOperator(A), y, reg, lam=1.0, weights=w, tol=1e-12, max_iter=50000).x
    root = np.sqrt(w)
    np.testing.assert_allclose(x, np.linalg.lstsq(root[:, None] * A, root * y, rcond=None)[0], atol=1e-6)


@pytest.mark.parametrize("weight", [4.0, 4, [4.0] * 12, np.full(12, 4, dtype=np.int64), np.full(12, 4, np.float16)])
def test_numbers_and_lists_are_weights_too(weight):
    """A constant weight w scales the data term: the same minimiser as no weights and lam / w."""
    rng = np.random.default_rng(3)
    H, y = Blur(np.ones((3, 3)) / 9, (12, 12)), rng.random((12, 12))
    options = dict(tol=1e-10, max_iter=5000)
    expected = adareg.solve(H, y, TV(y.shape), lam=0.02, **options).x
    x = adareg.solve(H, y, TV(y.shape), lam=0.08, weights=weight, **options).x
    np.testing.assert_allclose(x, expected, atol=1e-6)


def test_denoising_with_a_prox_takes_the_callback_and_the_time_limit():
    # both were ignored by the direct prox (so tune's patience never cut a TV denoising candidate)
    y = np.random.default_rng(6).random((48, 48))
    seen = []
    result = adareg.solve(Identity(y.shape), y, TV(y.shape), lam=0.1, tol=1e-10,
                          callback=lambda k, x: seen.append((k, x.shape)) or k >= 30)
    assert seen == [(10, y.shape), (20, y.shape), (30, y.shape)]
    assert result.iterations == 30 and not result.converged
    start = time.perf_counter()
    result = adareg.solve(Identity(y.shape), y, TV(y.shape), lam=0.1, tol=1e-14, max_iter=10**7, max_time=0.1)
    assert time.perf_counter() - start < 5 and not result.converged and result.iterations < 10**7
    # its message said "duality gap inf" between gap checks and named no time (an audit, 2026-12-08): the gap of
    # the returned x is computed, and bounds its distance to a tight solve, ||x - x*|| <= sqrt(2 gap)
    gap = float(re.search(r"^stopped by max_time \(0.1 s\) after \d+ iterations with duality gap (\S+), not "
                          "converged$", result.message).group(1))
    tight = adareg.solve(Identity(y.shape), y, TV(y.shape), lam=0.1, tol=1e-8)
    assert tight.converged and math.isfinite(gap)
    assert np.linalg.norm(result.x - tight.x) <= math.sqrt(2 * gap) + 1e-8 * np.linalg.norm(y)


def test_learned_denoising_warns_of_data_on_another_intensity_scale():
    rng = np.random.default_rng(5)
    clean = adareg.data.shepp_logan((24, 24))
    y = clean + 25 / 255 * rng.standard_normal(clean.shape)
    reg = adareg.load("sa-cnn")
    with pytest.warns(UserWarning, match=r"y reaches 2\d\d\.\d+, but sa-cnn is trained on intensities in \[0, 1\]"):
        adareg.solve(Identity(y.shape), 255 * y, reg, sigma=25 / 255, max_iter=1)
    # a 12-bit image read from a 16-bit file peaks at 4095 / 65535: sa-b took such data (noise scaled alike) from
    # 30.5 to 22.8 dB without a word
    with pytest.warns(UserWarning, match=r"y peaks at 0\.0\d+, but sa-cnn is trained on intensities in \[0, 1\]"):
        adareg.solve(Identity(y.shape), y * 4095 / 65535, reg, sigma=25 / 255 * 4095 / 65535, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # [0, 1] data with noise: no warning
        adareg.solve(Identity(y.shape), y, reg, sigma=25 / 255, max_iter=1)


def test_each_image_of_a_batch_is_checked_for_its_intensity_scale():
    """The checks judged the batch as a whole: a faint image beside a [0, 1] one, or a shifted one among 120, was
    denoised without a word (sa-cnn took the faint one from 27.9 to 13.4 dB; an audit, 2026-12-07)."""
    rng = np.random.default_rng(5)
    clean = adareg.data.shepp_logan((24, 24))
    noisy = clean + 10 / 255 * rng.standard_normal((121, 24, 24))
    reg = adareg.load("sa-cnn")
    faint = np.stack([noisy[0], noisy[1] * 4095 / 65535])
    with pytest.warns(UserWarning, match=r"^solve: y \(image 1 of the batch\) peaks at 0\.0\d+, but sa-cnn "):
        adareg.solve(Identity(clean.shape), faint, reg, sigma=10 / 255, max_iter=1)
    shifted = noisy.reshape(11, 11, 24, 24).copy()
    shifted[3, 4] += 2.0
    shifted[5, 0] += 2.0
    with pytest.warns(UserWarning, match=r"^solve: y \(image \(3, 4\) of the batch, and 1 more\) has 100 % "
                                         r"of its values outside \[-0\.5, 1\.5\]"):
        adareg.solve(Identity(clean.shape), shifted, reg, sigma=10 / 255, max_iter=1)
    H = Blur(np.ones((3, 3)) / 9, clean.shape)  # a reconstruction's images too
    data = H(np.stack([clean, 0.05 * clean])) + 1e-3 * rng.standard_normal((2, 24, 24))
    with pytest.warns(UserWarning, match=r"^solve: the reconstruction \(image 1 of the batch\) peaks at 0\.0"):
        assert adareg.solve(H, data, adareg.load("wcrr"), lam=1e-3, sigma=10 / 255).converged


def test_sa_cnn_warns_of_an_image_shifted_off_the_unit_interval():
    # sa-cnn's masks see the intensities: the phantom minus 1 lost 2.3 dB without a word; the models whose
    # weights come from W's responses alone return the same image shifted, and are not warned about
    rng = np.random.default_rng(5)
    clean = adareg.data.shepp_logan((40, 40))
    y = clean + 15 / 255 * rng.standard_normal(clean.shape)
    reg = adareg.load("sa-cnn")
    plain = adareg.solve(Identity(y.shape), y, reg, sigma=15 / 255).x
    with pytest.warns(UserWarning, match=r"solve: y has 9\d(\.\d+)? % of its values outside \[-0.5, 1.5\], but "
                                         r"sa-cnn is trained on intensities in \[0, 1\]") as record:
        shifted = adareg.solve(Identity(y.shape), y - 1.0, reg, sigma=15 / 255).x + 1.0
    assert record[0].filename == __file__
    assert adareg.psnr(shifted, clean) < adareg.psnr(plain, clean) - 1  # the warning's cause
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wcrr = adareg.load("wcrr")
        moved = adareg.solve(Identity(y.shape), y - 1.0, wcrr, sigma=15 / 255).x + 1.0
        np.testing.assert_allclose(moved, adareg.solve(Identity(y.shape), y, wcrr, sigma=15 / 255).x, atol=1e-3)


def test_learned_models_warn_of_weighted_data_and_reconstructions_on_another_intensity_scale():
    # only unweighted denoising was checked: with data weights, or through any other H, 0-255 data and faint
    # data gave their results without a word
    rng = np.random.default_rng(5)
    clean = adareg.data.shepp_logan((24, 24))
    reg, sigma = adareg.load("wcrr"), 10 / 255
    y = clean + sigma * rng.standard_normal(clean.shape)
    with pytest.warns(UserWarning, match=r"solve: y reaches 2\d\d\.\d+, but wcrr is trained on intensities"):
        adareg.solve(Identity(y.shape), 255 * y, reg, lam=2 * reg.lam(sigma), sigma=sigma, weights=2.0, max_iter=1)
    H = Blur(np.ones((3, 3)) / 9, clean.shape)
    data = H(clean) + 2 / 255 * rng.standard_normal(clean.shape)
    for scale, words in ((255, r"reaches \d{3}\.\d+"), (0.05, r"peaks at 0\.0\d+")):
        # the image the model saw last is checked (peak magnitudes: 255 and 0.05 times [0, 1])
        with pytest.warns(UserWarning, match=rf"solve: the reconstruction {words}, but wcrr is trained on "
                                             r"intensities in \[0, 1\]") as record:
            result = adareg.solve(H, scale * data, reg, lam=1e-3, sigma=sigma, max_iter=100)
        assert record[0].filename == __file__
        assert INTENSITY_FLOOR < np.max(np.abs(result.x)) / scale < INTENSITY_LIMIT
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert adareg.solve(H, data, reg, lam=1e-3, sigma=sigma).converged  # [0, 1] data: no warning


@pytest.mark.parametrize("model, operator, option, algorithm", [
    ("tv", "identity", {"inner_tol": 1e-12}, "denoising, an exact prox"),
    ("tv", "identity", {"restart": False}, "denoising, an exact prox"),
    ("crr", "blur", {"backtracking": True}, "the ridge models, which run L-BFGS"),
    ("wcrr", "identity", {"inner_max_iter": 1}, "the ridge models, which run L-BFGS"),
    ("sa-cnn", "blur", {"restart": False}, "the reweighting of the adaptive models"),
    ("sa-b", "identity", {"backtracking": True}, "the reweighting of the adaptive models"),
])
def test_options_of_another_algorithm_are_refused_not_ignored(model, operator, option, algorithm):
    """Each gave the result of a solve without it, bit for bit (an audit, 2026-12-06)."""
    y = adareg.data.image("camera", shape=(16, 16))
    H = Identity(y.shape) if operator == "identity" else Blur(np.ones((3, 3)) / 9, y.shape)
    reg, sigma = (TV(y.shape), {}) if model == "tv" else (adareg.load(model), {"sigma": 0.05})
    (name, value), = option.items()
    with pytest.raises(ValueError, match=rf"^solve: {name}={value!r}: not used by {algorithm}"):
        adareg.solve(H, y, reg, lam=0.01, max_iter=2, **sigma, **option)


def test_options_of_fista_are_taken_where_it_runs():
    y = adareg.data.image("camera", shape=(16, 16))
    H = Blur(np.ones((3, 3)) / 9, y.shape)
    plain = adareg.solve(H, H(y), TV(y.shape), lam=0.01, max_iter=20)
    for option in ({"restart": False}, {"inner_max_iter": 1}):
        assert np.abs(adareg.solve(H, H(y), TV(y.shape), lam=0.01, max_iter=20, **option).x - plain.x).max() > 0
    adareg.solve(H, H(y), TV(y.shape), lam=0.01, max_iter=20, backtracking=True)  # (L = ||H||^2 = 1 from the start)
    adareg.solve(Identity(y.shape), y, adareg.load("sa-cnn"), sigma=0.05, inner_tol=1e-3, inner_max_iter=50)


def test_regularizer_weights_for_another_batch_are_refused():
    # weight maps for a batch of 3 against one image: denoising returned 3 images for 1 (and (3, 3, 16, 16) for
    # y of shape (3, 1, 16, 16)); a blur failed inside numpy, once only after the whole solve
    rng = np.random.default_rng(7)
    reg = TV((16, 16), weights=rng.random((3, 1, 16, 16)))
    assert reg.batch_shape == (3,)
    for H in (Identity((16, 16)), Blur(np.ones((3, 3)) / 9, (16, 16))):
        for shape in ((16, 16), (3, 1, 16, 16), (2, 16, 16)):
            batch = shape[:-2]
            with pytest.raises(ValueError, match=rf"solve: reg's weights are for a batch of shape \(3,\), but y "
                                                 rf"holds a batch of shape {re.escape(str(batch))}: give one"):
                adareg.solve(H, rng.random(shape), reg, lam=0.1, max_iter=2)
        y = rng.random((3, 16, 16))
        x = adareg.solve(H, y, reg, lam=0.1, max_iter=2).x
        alone = adareg.solve(H, y[1], TV((16, 16), weights=reg.weights[1]), lam=0.1, max_iter=2).x
        assert x.shape == y.shape and np.abs(x[1] - alone).max() < 1e-3  # one map per image


@pytest.mark.parametrize("size", [16, 128])
def test_weights_that_vanish_over_one_image_of_a_batch_are_refused(size):
    # that image's data term is zero: it was solved as the regularizer's minimiser alone at 16 x 16 and failed
    # on a Lipschitz constant of 0 at 128 x 128, where the batch runs in chunks of one image
    y = np.random.default_rng(4).random((2, 2, size, size))
    weights = np.ones((2, 1, 1, 1))
    weights[1] = 0.0
    with pytest.raises(ValueError, match=r"weights are zero over all of image \(1, 0\) of the batch of shape "
                       r"\(2, 2\): the data term vanishes there"):
        adareg.solve(Blur(np.ones((3, 3)) / 9, (size, size)), y, TV((size, size)), lam=0.01, weights=weights,
                     max_iter=3)


@pytest.mark.parametrize("H", [Identity((8, 8)), Blur(np.full((3, 3), 1 / 9), (8, 8))])
def test_a_missing_lam_is_the_value_error_of_the_learned_models(H):
    """TV without lam raised a TypeError where a learned model off denoising, or one without sigma, raises a
    ValueError (and Denoise, CTReconstruction a ValueError for TV): one type for a missing weight."""
    y = np.random.default_rng(0).random((8, 8))
    with pytest.raises(ValueError, match="^solve: lam is required for TV: only the learned models have a default"):
        adareg.solve(H, y, TV((8, 8)))
    if not isinstance(H, Identity):
        with pytest.raises(ValueError, match="^solve: lam is required for"):
            adareg.solve(H, y, adareg.load("crr"), sigma=0.1)


def test_learned_denoising_with_a_data_weight_asks_for_lam_and_names_its_equivalent():
    # before, weights=4.0 with Identity was refused as "not denoising" (adareg.tune was the advice); the trained
    # lam(sigma) does hold once scaled: 4/2 ||x - y||^2 + 4 lam R has the minimiser of 1/2 ||x - y||^2 + lam R
    rng = np.random.default_rng(6)
    clean = adareg.data.shepp_logan((24, 24))
    y = clean + 15 / 255 * rng.standard_normal(clean.shape)
    reg, sigma = adareg.load("wcrr"), 15 / 255
    with pytest.raises(ValueError, match=r"lam is required with data weights.*lam = w \* reg\.lam\(sigma\)"):
        adareg.solve(Identity(y.shape), y, reg, sigma=sigma, weights=4.0)
    plain = adareg.solve(Identity(y.shape), y, reg, sigma=sigma, tol=1e-7, max_iter=2000)
    weighted = adareg.solve(Identity(y.shape), y, reg, sigma=sigma, weights=4.0, lam=4 * reg.lam(sigma), tol=1e-7,
                            max_iter=2000)
    assert plain.converged and weighted.converged
    assert np.max(np.abs(weighted.x - plain.x)) < 1e-4


def test_a_trained_lam_of_zero_at_sigma_is_named_with_its_noise_level():
    # a file whose lambda(sigma) is 0 at sigma 0 (a model that does not regularise noise-free data) gave
    # "solve: lam must be positive, got 0", about a lam the caller never passed
    from tests.regularizers.test_adaptive import toy_sacnn

    reg, y = toy_sacnn(), 0.5 + 0.1 * np.random.default_rng(8).standard_normal((16, 16))
    with pytest.raises(ValueError, match=r"^solve: the trained lam\(sigma\) of sa-cnn is 0 at sigma = 0 \(0/255\): "
                                         r"the model does not regularise there .* give lam"):
        adareg.solve(Identity(y.shape), y, reg, sigma=0.0)
    assert np.std(adareg.solve(Identity(y.shape), y, reg, sigma=0.0, lam=0.1).x) < 0.5 * np.std(y)  # lam given


class TestBadInput:
    H = Blur(np.ones((3, 3)) / 9, (8, 8))
    reg = TV((8, 8))
    y = np.zeros((8, 8))

    @pytest.mark.parametrize(
        "change, error, words",
        [
            ({"y": np.zeros((8, 9))}, ValueError, r"y \(measurements of Blur.*\) has shape \(8, 9\); expected \(8, 8\)"),
            ({"y": np.full((8, 8), np.nan)}, ValueError, "y contains 64 NaN or Inf values"),
            ({"y": np.full((8, 8), np.inf)}, ValueError, "y contains 64 NaN or Inf values"),
            ({"x0": np.full((8, 8), np.nan)}, ValueError, "x0 contains 64 NaN or Inf values"),
            ({"y": np.zeros((8, 8), dtype=">f8")}, TypeError, r"y \(measurements of Blur.*\) has dtype >f8, which is "
             "float64 in non-native byte order"),
            ({"y": np.zeros((8, 8), dtype=np.int32)}, TypeError, r"y \(measurements of Blur.*\) has dtype int32"),
            # the byte order's advice came first, and the array it gave was refused next, as uint16
            ({"y": np.zeros((8, 8), dtype=">u2")}, TypeError, r"y \(measurements of Blur.*\) has dtype >u2; expected "
             r"float32, .*astype\(numpy.float32\) / 65535, for intensities in \[0, 1\]"),
            ({"y": [[0.0] * 8] * 8}, TypeError, r"y \(measurements of Blur.*\) must be a NumPy or CuPy array"),
            # NumPy subclasses whose arithmetic is not an array's: a mask would be ignored, * is a matrix product
            ({"y": np.ma.masked_greater(np.eye(8), 0.5)}, TypeError,
             r"y \(measurements of Blur.*\) is a masked array, whose mask adareg would ignore"),
            ({"y": np.asmatrix(np.zeros((8, 8)))}, TypeError, r"y \(measurements of Blur.*\) is a numpy.matrix"),
            ({"x0": np.ma.masked_array(np.zeros((8, 8)))}, TypeError, "x0 is a masked array"),
            ({"weights": np.ma.masked_equal(np.eye(8), 0.0)}, TypeError, "weights is a masked array"),
            ({"lam": 0.0}, ValueError, "lam must be positive"),
            ({"lam": -1.0}, ValueError, "lam must be positive"),
            ({"lam": float("nan")}, ValueError, "lam must be finite"),
            ({"lam": "big"}, TypeError, "lam must be a real number, got 'big'"),
            ({"lam": True}, TypeError, "lam must be a real number, got True"),
            ({"max_iter": -1}, ValueError, "max_iter must be at least 1, got -1"),
            ({"max_iter": 2.5}, TypeError, "max_iter must be an int, got 2.5"),
            ({"tol": float("nan")}, ValueError, "tol must be finite, got nan"),
            ({"inner_tol": -1.0}, ValueError, "inner_tol must be non-negative"),
            ({"max_time": -1.0}, ValueError, "max_time must be positive"),
            ({"reg": TV((8, 9))}, ValueError, r"reg acts on images of shape \(8, 9\)"),
            ({"reg": "tv"}, TypeError, "reg must be a Regularizer"),
            ({"reg": adareg.load("crr").at(0.05)}, TypeError, r"got RidgeObjective \(a learned model at one noise "
             r"level, from its at\(sigma\): give the model and sigma=\.\.\. instead\)"),
            ({"H": np.eye(64)}, TypeError, "H must be a LinearOperator"),
            ({"x0": np.zeros((7, 8))}, ValueError, r"x0 has shape \(7, 8\)"),
            # an empty batch failed in a reduction of NumPy's ("zero-size array to reduction operation maximum")
            ({"y": np.zeros((0, 8, 8))}, ValueError, r"y of shape \(0, 8, 8\) is an empty batch: nothing to "),
            # a batch of starts for one measurement made the result a batch (sa-cnn, sa-b) instead of an error
            ({"x0": np.zeros((2, 8, 8))}, ValueError, r"x0 has shape \(2, 8, 8\), expected \(8, 8\) \(one image per"),
            ({"bounds": (1.0, 0.0)}, ValueError, "lower 1.0 exceeds upper 0.0"),
            ({"bounds": 3}, ValueError, "bounds must be a pair"),
            ({"bounds": ("a", "b")}, ValueError, "the lower bound must be a real number or None, got 'a'"),
            ({"bounds": (0.0, float("nan"))}, ValueError, "the upper bound must be a real number or None, got nan"),
            ({"bounds": (np.inf, None)}, ValueError, r"bounds: \(inf, None\) is an empty box"),
            ({"bounds": (None, -np.inf)}, ValueError, "is an empty box"),
            ({"x0": np.ones((8, 8)) + 1j}, TypeError, r"x0 is complex \(complex128\) but the images of Blur.* are "
             r"real \(it and y \(float64\) are real\); pass a real x0"),
            # the message said "with real y" where y was complex (an audit, 2026-12-07)
            ({"H": adareg.operators.CartesianMRI(np.ones((8, 8), bool), real=True), "y": np.ones((8, 8), complex),
              "x0": np.ones((8, 8)) + 1j}, TypeError, r"x0 is complex \(complex128\) but the images of CartesianMRI"
             r".* are real \(it takes real images\)"),
            ({"weights": 0.0}, ValueError, "weights are all zero: the data term vanishes"),
            ({"weights": np.zeros((8, 8))}, ValueError, "weights are all zero"),
            ({"precision": "float16"}, ValueError, "precision must be 'float32' or 'float64', got 'float16'"),
            ({"restart": "no"}, TypeError, "restart must be True or False, got 'no'"),
            ({"backtracking": 1}, TypeError, "backtracking must be True or False, got 1"),
            ({"progress": None}, TypeError, "progress must be True or False, got None"),
            ({"callback": "print"}, TypeError,
             r"callback must be callable as callback\(k, x_k\), or None, got 'print' \(str\)"),
            ({"precision": "fast"}, ValueError, "precision must be 'float32' or 'float64', got 'fast'"),
            ({"weights": -np.ones((8, 8))}, ValueError, "weights must be non-negative"),
            ({"weights": np.ones((2, 8, 8))}, ValueError, r"weights of shape \(2, 8, 8\) do not broadcast to y"),
            ({"weights": np.full(8, np.nan)}, ValueError, "weights contains 8 NaN or Inf values"),
            ({"weights": np.ones(8, dtype=complex)}, TypeError, "weights must be real, got dtype complex128"),
            ({"weights": "heavy"}, TypeError, "weights must be real numbers or an array, got 'heavy'"),
            # strings of numbers were parsed, and None read as NaN
            ({"weights": "2"}, TypeError, "weights must be real numbers or an array, got '2'"),
            ({"weights": [None, 1.0] * 4}, TypeError, r"weights must be real numbers or an array, got \[None, 1.0"),
            ({"weights": [10**400] * 8}, TypeError, r"weights must be real numbers or an array, got \[1000"),
            ({"lam": 10**400}, ValueError, "lam must be finite, got 1000"),
            ({"weights": True}, TypeError, "weights must be real numbers or an array, got True"),
            ({"sigma": 0.1}, ValueError, "sigma is a parameter of learned regularizers only; TV has none"),
            # beyond [tiny / eps, max * eps] of the working precision: products with norms would overflow
            ({"lam": 1e300}, ValueError, r"lam = 1e\+300 lies outside \[1e-292, 4e\+292\], the range that a "
             "float64"),
            ({"lam": 1e-300}, ValueError, r"lam = 1e-300 lies outside"),
            ({"lam": 1e-35, "precision": "float32"}, ValueError,
             r"lam = 1e-35 lies outside \[1e-31, 4e\+31\], .* float32 .* or compute in float64 "
             r"\(precision='float64'\)"),
            # data beyond [sqrt(tiny) / eps, sqrt(max) * eps]: their squares would underflow or overflow
            ({"y": np.full((8, 8), 1e300)}, ValueError, r"y reaches 1e\+300, beyond the 3e\+138 that a float64"),
            ({"y": np.full((8, 8), 1e13), "precision": "float32"}, ValueError,
             r"y reaches 1e\+13, beyond the 2e\+12 that a float32 computation carries \(its squares overflow\)"),
            ({"y": np.full((8, 8), 1e-13), "precision": "float32"}, ValueError,
             r"y reaches only 1e-13, below the 9e-13 that a float32 computation carries \(its squares underflow\)"),
            ({"y": np.full((8, 8), 1e-140)}, ValueError, r"y reaches only 1e-140, below the 7e-139 that a float64"),
            ({"x0": np.full((8, 8), -1e300)}, ValueError, r"x0 reaches 1e\+300, beyond"),
            ({"x0": np.full((8, 8), -1e-300)}, ValueError, r"x0 reaches only 1e-300, below"),
            ({"weights": 1e-300}, ValueError, r"the data term's curvature max\(weights\) \|\|H\|\|\^2 = 1e-300 lies "
             "outside"),
        ],
    )
    def test_is_rejected_with_a_clear_message(self, change, error, words):
        args = {"H": self.H, "y": self.y, "reg": self.reg, "lam": 0.1} | change
        H, y, reg = args.pop("H"), args.pop("y"), args.pop("reg")
        with pytest.raises(error, match=words):
            adareg.solve(H, y, reg, **args)

    def test_the_precision_floor_holds_for_each_image_of_a_batch(self):
        """Judged on the batch's peak, a faint image beside a bright one was solved in float32 (1.3e-3 from its
        minimiser at 1e-20, where it alone was refused); a zero image has no scale to lose."""
        rng = np.random.default_rng(9)
        y = rng.random((3, 8, 8))
        y[1] = 0.0
        y[2] *= 1e-20
        with pytest.raises(ValueError, match=r"^solve: y \(image 2 of the batch\) reaches only 9.\d+e-21, "
                           r"below the 9e-13 that a float32 computation carries \(its squares underflow\)"):
            adareg.solve(self.H, y, self.reg, lam=0.1, precision="float32")
        with pytest.raises(ValueError, match=r"^solve: x0 \(image 1 of the batch\) reaches only"):
            adareg.solve(self.H, y[:2], self.reg, lam=0.1, x0=y[[0, 2]], precision="float32")
        assert adareg.solve(self.H, y[:2], self.reg, lam=0.1, precision="float32").x.shape == (2, 8, 8)

    def test_bounds_of_numpy_numbers_are_numbers(self):
        # 0-d arrays (a reduction's result) were refused as bounds though lam and sigma take them
        H, y = self.H, np.random.default_rng(8).random((8, 8))
        as_floats = adareg.solve(H, y, self.reg, lam=0.1, bounds=(0.2, 0.8)).x
        as_arrays = adareg.solve(H, y, self.reg, lam=0.1, bounds=(np.array(0.2), np.float64(0.8))).x
        np.testing.assert_array_equal(as_arrays, as_floats)
        assert as_floats.min() >= 0.2 and as_floats.max() <= 0.8

    @pytest.mark.parametrize("model", ["crr", "wcrr", "sa-cnn", "sa-b"])
    def test_learned_models_refuse_complex_images(self, model):
        with pytest.raises(TypeError, match=f"{model} acts on real images, but those of Identity.* are complex"):
            adareg.solve(Identity((8, 8)), np.zeros((8, 8), dtype=complex), adareg.load(model), sigma=0.1)

    @pytest.mark.parametrize("model", ["crr", "wcrr", "sa-cnn", "sa-b"])
    def test_a_float32_sigma_at_the_trained_range_end_is_that_end(self, model):
        reg = adareg.load(model)
        low, high = reg.sigma_range
        assert reg.check_sigma(np.float32(high)) == high  # np.float32(30/255) rounds above 30/255
        with pytest.raises(ValueError, match="outside the trained range") as caught:
            reg.check_sigma(high * 1.0001)
        assert "0-255" not in str(caught.value)
        # a level in 0-255 units was told "25 (6.38e+03/255)": the hint now divides
        with pytest.raises(ValueError, match=r"in 0-255 units\? 25 / 255 = 0.09804"):
            reg.check_sigma(25)

    @pytest.mark.parametrize("model", ["crr", "wcrr", "sa-cnn", "sa-b"])
    def test_learned_models_name_the_smallest_image_they_take(self, model):
        y = np.ones((6, 30))  # the shipped banks compose to 13 x 13 kernels, mirrored 6 pixels deep
        with pytest.raises(ValueError, match=r"needs images of at least 7x7 pixels, got \(6, 30\)"):
            adareg.solve(Identity(y.shape), y, adareg.load(model), sigma=0.1)

    def test_complex_images_take_no_bounds(self):
        with pytest.raises(TypeError, match="bounds apply to real images"):
            adareg.solve(Identity((8, 8)), np.zeros((8, 8), dtype=complex), self.reg, lam=0.1, bounds=(0, 1))


@pytest.mark.parametrize("model", ["tv", "sa-cnn"])
def test_a_lam_too_small_for_float32_is_solved_in_float64(model):
    # as lam -> 0 the minimiser of 1/2 ||x - y||^2 + lam R(x) tends to y; 1e-35 is below float32's normal range
    y = adareg.data.image("camera", shape=(32, 32))
    reg = TV(y.shape) if model == "tv" else adareg.load(model)
    sigma = {} if model == "tv" else {"sigma": 0.1}
    with pytest.raises(ValueError, match="lam = 1e-35 lies outside"):
        adareg.solve(Identity(y.shape), y, reg, lam=1e-35, precision="float32", **sigma)
    x = adareg.solve(Identity(y.shape), y, reg, lam=1e-35, precision="float64", **sigma).x
    np.testing.assert_allclose(x, y, rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale", [3e-12, 5e11])
def test_data_at_the_ends_of_the_float32_range_are_solved_as_at_unit_scale(scale):
    # least squares + lam TV is 1-homogeneous: x*(c y, c lam) = c x*(y, lam), here against a float64 solve at
    # c = 1; before the range was narrowed, at 1e-22 a change's norm underflowed to 0 and the run stopped
    # "converged" after 2 iterations, 32 % away
    shape, rng = (16, 16), np.random.default_rng(0)
    H = Blur(np.ones((3, 3)) / 9, shape, boundary="reflect")
    y = H(adareg.data.shepp_logan(shape)) + 0.01 * rng.standard_normal(shape)
    reference = adareg.solve(H, y, TV(shape), lam=1e-2, tol=1e-7, max_iter=5000).x
    scaled = adareg.solve(H, (scale * y).astype(np.float32), TV(shape), lam=1e-2 * scale, tol=1e-5, max_iter=5000)
    assert scaled.converged and scaled.x.dtype == np.float32
    assert np.linalg.norm(scaled.x / scale - reference) <= 1e-4 * np.linalg.norm(reference)


def test_a_learned_model_on_a_stack_operator_says_how_to_give_a_batch():
    """The error said the model acts on 2D images, not that a stack takes the operator of one image."""
    stack = np.random.default_rng(0).random((3, 16, 16))
    with pytest.raises(ValueError, match=r"^solve: wcrr acts on 2D images but Identity\(\(3, 16, 16\).* takes shape "
                                         r"\(3, 16, 16\) \(for a stack of images, give the operator of one image"):
        adareg.solve(Identity(stack.shape), stack, adareg.load("wcrr"), sigma=0.1)
    assert adareg.solve(Identity((16, 16)), stack, adareg.load("wcrr"), sigma=0.1).x.shape == (3, 16, 16)


def test_a_ridge_lam_far_beyond_the_data_terms_curvature_is_warned_about():
    """With lam's curvature 1e9 times the data term's, a crr run from a constant start stopped "converged" after
    one to four iterations at mean 0.5, in float32 and float64, where every minimiser has y's mean (the filters
    remove constants; an audit, 2026-12-06)."""
    rng = np.random.default_rng(0)
    y = adareg.data.shepp_logan((16, 16)) + 0.05 * rng.standard_normal((16, 16))
    start = np.full(y.shape, 0.5)
    for precision in ("float32", "float64"):
        with pytest.warns(UserWarning, match=r"^solve: lam's curvature is .* times the data term's: the steps barely "
                                             r"move what only the data fix"):
            result = adareg.solve(Identity(y.shape), y, adareg.load("crr"), sigma=0.02, lam=1e8, x0=start,
                                  precision=precision)
        assert result.converged and abs(result.x.mean() - y.mean()) > 0.3  # what the warning is about
    with warnings.catch_warnings():  # a lam of the usual order: no warning
        warnings.simplefilter("error")
        adareg.solve(Identity(y.shape), y, adareg.load("crr"), sigma=0.02, lam=0.1)


def test_a_real_start_of_complex_images_starts_as_complex():
    """A real x0 of complex images (a magnitude start for complex MRI) kept the whole FISTA run real: objective
    0.92 where the minimum is 0.32, reported converged (an audit, 2026-12-06)."""
    from adareg.operators import CartesianMRI

    rng = np.random.default_rng(5)
    mask = rng.random((8, 8)) < 0.5
    mask[:, 4] = True
    H = CartesianMRI(mask, real=False)
    x = adareg.data.shepp_logan((8, 8)) * np.exp(1j * np.linspace(0, 1, 8))[None]
    y = H(x) + 0.01 * (rng.standard_normal(H.shape_out) + 1j * rng.standard_normal(H.shape_out)) * mask
    start = np.abs(H.H(y))
    real = adareg.solve(H, y, TV((8, 8)), lam=0.02, x0=start, max_iter=300)
    as_complex = adareg.solve(H, y, TV((8, 8)), lam=0.02, x0=start.astype(complex), max_iter=300)
    assert real.x.dtype == np.complex128
    np.testing.assert_array_equal(real.x, as_complex.x)
    with pytest.raises(TypeError, match="bounds apply to real images, but the image is complex"):
        adareg.solve(H, y, TV((8, 8)), lam=0.02, x0=start, bounds=(0, None))


def test_data_weights_that_span_decades_are_warned_about():
    # the relative-change stop follows the largest weight and can end far from the minimiser (docs/method.md)
    clean = adareg.data.shepp_logan((12, 12))
    H = Blur(np.ones((3, 3)) / 9, clean.shape, boundary="reflect")
    weights = np.ones(clean.shape)
    weights[5, 5] = 1e4
    with pytest.warns(UserWarning, match=r"solve: the data weights span a factor 1e\+04; .* smaller tol"):
        adareg.solve(H, H(clean), TV(clean.shape), lam=0.01, weights=weights, max_iter=5)
    weights[5, 5], weights[0, 0] = 2.0, 0.0  # CT's Poisson weights span less; zeros are missing data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adareg.solve(H, H(clean), TV(clean.shape), lam=0.01, weights=weights, max_iter=5)


class _UnderstatedNorm(Blur):
    """A 3 x 3 box blur of gain 10 that claims norm 1: the steps are 100 times too long."""

    def __init__(self, shape):
        super().__init__(np.full((3, 3), 10 / 9), shape, boundary="reflect")

    def _upper_bound(self, like):
        return 1.0


@pytest.mark.parametrize("model", ["tv", "sa-cnn", "sa-b"])
def test_iterates_that_diverge_on_a_wrong_norm_are_named(model):
    y = adareg.data.image("camera", shape=(32, 32))
    H = _UnderstatedNorm(y.shape)
    reg, sigma = (TV(y.shape), {}) if model == "tv" else (adareg.load(model), {"sigma": 0.05})
    with pytest.raises(FloatingPointError, match=r"diverged to NaN or Inf; .* \(check a custom operator's norm\)"):
        adareg.solve(H, H(y), reg, lam=1e-3, **sigma)


def test_backtracking_recovers_from_a_wrong_norm():
    # FISTA's backtracking lengthens L until the step descends: the minimiser of the honest operator's problem
    y = adareg.data.image("camera", shape=(32, 32))
    H, honest = _UnderstatedNorm(y.shape), Blur(np.full((3, 3), 10 / 9), y.shape, boundary="reflect")
    options = {"lam": 1e-3, "tol": 1e-9, "max_iter": 5000}
    found = adareg.solve(H, H(y), TV(y.shape), backtracking=True, **options)
    reference = adareg.solve(honest, honest(y), TV(y.shape), **options)
    assert found.converged and reference.converged
    np.testing.assert_allclose(found.x, reference.x, atol=1e-5 * np.abs(reference.x).max())


class _RecordedBound(Blur):
    """A 3 x 3 box blur that records the arrays its norm bound is computed like."""

    def __init__(self, shape):
        super().__init__(np.full((3, 3), 1 / 9), shape, boundary="reflect")
        self.likes = []

    def _upper_bound(self, like):
        self.likes.append(like)
        return super()._upper_bound(like)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("model", ["tv", "crr", "sa-cnn"])
def test_the_data_term_is_bounded_as_the_solve_applies_it(model, device):
    # an operator may apply otherwise on a GPU (ASTRA's CUDA projectors are not its CPU ones): the step
    # sizes bound it on the solve's device, once per device
    y = adareg.to_device(adareg.data.image("camera", shape=(16, 16)), device)
    H = _RecordedBound(y.shape)
    reg, sigma = (TV(y.shape), {}) if model == "tv" else (adareg.load(model), {"sigma": 0.05})
    for _ in range(2):
        adareg.solve(H, H(y), reg, lam=1e-3, max_iter=3, **sigma)
    assert len(H.likes) == 1 and adareg.backend.is_array(H.likes[0]), H.likes
    assert adareg.backend.device_of(H.likes[0]) == device


class TestDegenerateInput:
    """All-zero data and single pixels: the minimiser is known in closed form and is reached at once."""

    @pytest.mark.parametrize("model", ["tv", "wcrr", "sa-cnn"])
    def test_zero_data_gives_zero_at_once(self, model):
        # 1/2 ||x||^2 + lam R(x) >= 0 = its value at x = 0, as R >= 0 = R(0) for all three
        y = np.zeros((16, 16))
        reg = TV(y.shape) if model == "tv" else adareg.load(model)
        options = {"lam": 0.1} if model == "tv" else {"sigma": 0.1}
        result = adareg.solve(Identity(y.shape), y, reg, **options)
        assert result.converged
        assert result.iterations <= 10
        assert not np.any(result.x)

    def test_zero_data_through_a_blur_stops_at_once(self):
        y = np.zeros((16, 16))
        result = adareg.solve(Blur(np.ones((3, 3)) / 9, y.shape), y, adareg.load("wcrr"), lam=0.1, sigma=0.1)
        assert result.converged and result.iterations == 1 and not np.any(result.x)

    def test_one_pixel_with_tv_is_its_projection(self):
        # the differences of one pixel vanish, so the prox of lam TV is the projection onto the box
        result = adareg.solve(Identity((1, 1)), np.array([[1.5]]), TV((1, 1)), lam=0.1, bounds=(0, 1))
        assert result.converged and result.x[0, 0] == 1.0


@pytest.mark.parametrize("model", ["tv", "wcrr", "sa-cnn"])
def test_a_run_stopped_by_its_cap_says_it_did_not_converge(model):
    y = adareg.data.shepp_logan((32, 32)) + 0.1 * np.random.default_rng(0).standard_normal((32, 32))
    reg = TV(y.shape) if model == "tv" else adareg.load(model)
    H = Blur(np.ones((3, 3)) / 9, y.shape)
    result = adareg.solve(H, y, reg, lam=0.05, sigma=None if model == "tv" else 0.1, max_iter=2)
    assert not result.converged and result.iterations == 2
    assert result.message.endswith("not converged")


@pytest.mark.parametrize("denoising", [True, False])
def test_max_time_ends_the_reweighting_too(denoising):
    y = adareg.data.shepp_logan((32, 32)) + 0.1 * np.random.default_rng(0).standard_normal((32, 32))
    H = Identity(y.shape) if denoising else Blur(np.ones((3, 3)) / 9, y.shape)
    result = adareg.solve(H, y, adareg.load("sa-cnn"), lam=0.05, sigma=0.1, tol=0.0, max_time=1e-9)
    assert not result.converged and result.iterations == 1 and "WallTime" in result.message


@pytest.mark.parametrize("denoising", [True, False])
def test_reweighting_stops_at_its_default_tolerance(denoising):
    """Denoising stops at the first step whose residual is below DENOISING_TOL, other operators at DEFAULTS.tol."""
    module = sys.modules["adareg.solvers.reweighting"]  # (adareg.solvers.reweighting is the function)
    tol = module.DENOISING_TOL if denoising else module.DEFAULTS.tol
    y = adareg.data.shepp_logan((32, 32)) + 0.1 * np.random.default_rng(0).standard_normal((32, 32))
    H = Identity(y.shape) if denoising else Diagonal(np.full(y.shape, 0.9))  # (accelerated steps)
    result = adareg.solve(H, y, adareg.load("sa-cnn"), lam=0.05, sigma=0.1)
    residuals = result.history["residual"]
    assert result.converged and residuals[-1] < tol and np.all(residuals[:-1] >= tol)


def _two_mri_images_of_different_sizes():
    """An 8-of-16-row real MRI operator and the data of two images, one ten times the other's size."""
    shape = (16, 17)
    mask = np.zeros(shape, bool)
    mask[::2], mask[7:10] = True, True
    H = adareg.operators.CartesianMRI(mask, real=True)
    rng = np.random.default_rng(0)
    images = rng.random((2,) + shape) * np.array([1.0, 0.1])[:, None, None]
    noise = 0.01 * mask * (rng.standard_normal((2,) + shape) + 1j * rng.standard_normal((2,) + shape))
    return H, H(images) + noise


@pytest.mark.parametrize("family", ["crr", "wcrr"])
def test_a_ridge_batch_solves_each_image_as_alone(family):
    """L-BFGS keeps a quasi-Newton model and a line search per image, so each image of a batch takes the steps
    it takes alone: two MRI images of very different sizes (a model shared by the batch moved them 2 to 3 %)."""
    H, y = _two_mri_images_of_different_sizes()
    options = {"lam": 0.02, "sigma": 10 / 255, "max_iter": 40, "tol": 1e-12}
    batch = adareg.solve(H, y, adareg.load(family), **options)
    for i in range(2):
        alone = adareg.solve(H, y[i], adareg.load(family), **options)
        np.testing.assert_allclose(batch.x[i], alone.x, rtol=0, atol=1e-9 * np.abs(alone.x).max())


@pytest.mark.skipif(not adareg.gpu_available(), reason="CuPy with a CUDA GPU is not available")
def test_a_ridge_batch_on_cupy_reaches_each_image_minimiser():
    """The per-image L-BFGS on CuPy: each image of a batch ends where NumPy's solve of it alone ends. Paths are
    compared only at convergence: these problems are ill-conditioned, and a float32 rounding difference (cuFFT's)
    moves the 40th iterate by 1e-3 (data perturbed by 1e-9 on NumPy do the same). crr is convex (one minimiser);
    at tol 1e-7, data perturbed by 1e-8 moved NumPy's solves by at most 7.6e-5 of the image's maximum."""
    H, y = _two_mri_images_of_different_sizes()
    options = {"lam": 0.02, "sigma": 10 / 255, "max_iter": 3000, "tol": 1e-7}
    batch = adareg.solve(H, adareg.to_device(y, "gpu"), adareg.load("crr"), **options)
    assert batch.converged
    for i in range(2):
        alone = adareg.solve(H, y[i], adareg.load("crr"), **options)
        np.testing.assert_allclose(adareg.to_numpy(batch.x[i]), alone.x, rtol=0, atol=1e-3 * np.abs(alone.x).max())


def test_an_image_on_a_large_offset_gets_a_warning():
    """The stop on the relative change measures the moves against ||x||, which a constant offset makes large: a
    deblurring with TV on an offset of 300 (contrast 1) stopped "converged" 0.2 and more from its minimiser (an audit,
    2026-12-06: 9.1 at 96 x 96).  TV ignores constants and the reflect blur keeps them, so the minimiser with the
    offset is the one without it plus the offset: a reference solved to tol 1e-10 without it."""
    x = adareg.data.image("camera", shape=(32, 32))
    H = Blur(np.ones((3, 3)) / 9, x.shape, boundary="reflect")
    y = H(x) + 0.01 * np.random.default_rng(6).standard_normal(x.shape)
    reference = adareg.solve(H, y, TV(x.shape), lam=2e-3, tol=1e-10, max_iter=50000)
    assert reference.converged
    for offset, far in ((0.0, False), (300.0, True)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = adareg.solve(H, y + offset, TV(x.shape), lam=2e-3)
        warned = any("mostly a constant offset" in str(w.message) for w in caught)
        # a lam too large for the data's scale flattens an image with no offset alike (an audit, 2026-12-08: MRI
        # k-space in scanner units with a preset's lam): the message names that cause too
        assert all("where the data hold no offset, lam flattened the image" in str(w.message) for w in caught
                   if "mostly a constant offset" in str(w.message))
        distance = np.abs(result.x - offset - reference.x).max()
        assert result.converged and warned == far and (distance > 0.2) == far, (offset, distance)


def test_a_noisy_image_far_outside_the_box_gets_a_warning():
    """8-bit values with the tutorials' bounds=(0, 1) gave a certified, nearly all-white image without a word, while
    the learned models warn of the same mistake (an audit, 2026-12-06).  On the right scale, or with a box that
    has no width to judge by, nothing is said."""
    x = adareg.data.shepp_logan((32, 32))
    y = x + 0.1 * np.random.default_rng(0).standard_normal(x.shape)
    for data, bounds, far in ((255 * y, (0, 1), True), (y, (0, 1), False), (255 * y, (0, None), False),
                              (255 * y, (0, 255), False)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = adareg.solve(Identity(y.shape), data, TV(y.shape), lam=0.08, bounds=bounds)
        warned = [str(w.message) for w in caught if "farther outside bounds" in str(w.message)]
        assert bool(warned) == far, (bounds, warned)
        if far:  # what it warns of: the result mostly sits at the box's upper end
            assert "bounds=(0, 1)" in warned[0] and np.mean(result.x == 1) > 0.5


def test_the_box_warning_judges_each_image_by_its_data():
    """The share off the box was taken over the whole batch: one 8-bit image among 120 [0, 1] ones (0.83 % of the
    batch) went unwarned and came out clipped; and placeholders at pixels of weight 0 (an inpainting's), which are
    no data, were warned of (a review of session 35's code, 2026-12-06)."""
    rng = np.random.default_rng(1)
    images = np.clip(adareg.data.shepp_logan((16, 16)) + 0.05 * rng.standard_normal((120, 16, 16)), 0, 1)
    batch = images.copy()
    batch[7] *= 255
    mask = rng.random((16, 16)) > 0.05
    placeholders = np.where(mask, images[0], -1000.0)
    assert np.mean(np.abs(batch - 0.5) > 1.5) < 0.01 < np.mean(placeholders < -1)  # the whole arrays' shares
    for y, weights, far in ((batch, None, True), (images, None, False), (placeholders, mask.astype(float), False),
                            (placeholders, None, True), (batch, mask.astype(float), True)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            adareg.solve(Identity((16, 16)), y, TV((16, 16)), lam=0.05, bounds=(0, 1), weights=weights, max_iter=5)
        warned = [str(w.message) for w in caught if "farther outside bounds" in str(w.message)]
        assert bool(warned) == far, warned
    # the span the message gives is that of the weighted data: placeholders at 1e6 read as "y spans [0, 1e+06]"
    scaled = np.where(mask, 255 * images[0], 1e6)
    with pytest.warns(UserWarning, match=r"y spans \[0, 255\] where it is weighted"):
        adareg.solve(Identity((16, 16)), scaled, TV((16, 16)), lam=0.05, bounds=(0, 1), weights=mask.astype(float),
                     max_iter=5)


def test_measurements_beyond_what_h_makes_of_the_box_get_a_warning():
    """A blurred 8-bit image with bounds=(0, 1) came out clipped, most of it at 1, without a word from TV, wcrr or
    sa-cnn: the box warning was for denoising only (noted in session 36).  For x in the box,
    ||H^T H x|| <= ||H||^2 max(|l|, |u|) sqrt(n), against the pull ||H^T y|| of y's data: the threshold is checked
    against a dense matrix's 2-norm and top singular vector."""
    beyond = "times the most that an image x in the box"
    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((30, 20))
    left, singular, _ = np.linalg.svd(matrix)
    reach = singular[0] ** 2 * 2.0 * np.sqrt(20)  # bounds (-2, 1)
    l1 = WeightedL1Analysis(Identity((20,)))
    for factor, far in ((1.9, False), (2.1, True)):  # ||H^T y|| = factor * reach
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            adareg.solve(MatrixOperator(matrix), factor * reach / singular[0] * left[:, 0], l1, lam=0.1,
                         bounds=(-2, 1), max_iter=5)
        assert any(beyond in str(w.message) for w in caught) == far, factor
    x = adareg.data.shepp_logan((32, 32))
    H = Blur(np.ones((5, 5)) / 25, x.shape, boundary="reflect")
    y = H(x) + 0.01 * rng.standard_normal(x.shape)
    weights = (rng.random(x.shape) > 0.1).astype(float)
    placeholders = np.where(weights > 0, y, 1e4)  # no data where the weight is 0
    cases = {"8-bit": (255 * y, (0, 1), None), "on scale": (y, (0, 1), None), "no upper": (255 * y, (0, None), None),
             "8-bit box": (255 * y, (0, 255), None), "one image 8-bit": (np.stack([y, 255 * y]), (0, 1), None),
             "placeholders": (placeholders, (0, 1), weights), "unweighted": (placeholders, (0, 1), None),
             # weights small where the data are large, as a scan's (e^-p): they must not hide the scale
             "16x, scan-like weights": (16 * y, (0, 1), np.exp(-10 * y)), "scan-like weights": (y, (0, 1),
                                                                                                np.exp(-10 * y))}
    told = {"8-bit": "y", "one image 8-bit": "an image of y", "unweighted": "y", "16x, scan-like weights": "y"}
    for case, (data, bounds, w) in cases.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = adareg.solve(H, data, TV(x.shape), lam=2e-3, bounds=bounds, weights=w, max_iter=300)
        warned = [str(w.message) for w in caught if beyond in str(w.message)]
        assert len(warned) == (case in told), (case, warned)
        if warned:
            assert warned[0].startswith(f"solve: {told[case]} lies beyond what H makes"), warned
        if case == "8-bit":  # what it warns of
            assert np.mean(result.x == 1) > 0.5
    # inpainting through H (docs/operators.md): placeholders where H is zero do not pull, and the box of one point
    # has nothing to clip
    mask = weights > 0
    for data, bounds in ((np.where(mask, x, 255.0), (0, 1)), (x, (0, 0))):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            adareg.solve(Diagonal(mask.astype(float)), data, TV(x.shape), lam=2e-3, bounds=bounds, max_iter=50)
        assert not [w for w in caught if beyond in str(w.message)], bounds


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backtracking_in_float32_keeps_its_step(dtype):
    """The sufficient-decrease test of backtracking had a slack of 1e-12 |E(z)|, far below float32's rounding of the
    data term: near the minimiser L doubled on rounding noise until lam / L was 0 and the prox refused it, or
    the step fell a thousandfold and the run stopped "converged" early (an audit, 2026-12-06).  With the step
    bound of the data term (1 for this blur) backtracking has nothing to shrink: it must run as without it."""
    x = adareg.data.shepp_logan((32, 32))
    H = Blur(np.ones((5, 5)) / 25, x.shape, boundary="reflect")
    y = (H(x) + 0.01 * np.random.default_rng(0).standard_normal(x.shape)).astype(dtype)
    plain = adareg.solve(H, y, TV(x.shape), lam=2e-3, tol=1e-6, max_iter=3000)
    backtracked = adareg.solve(H, y, TV(x.shape), lam=2e-3, tol=1e-6, max_iter=3000, backtracking=True)
    assert backtracked.converged and plain.converged
    assert np.min(backtracked.history["step"]) == np.max(plain.history["step"])
    np.testing.assert_array_equal(backtracked.x, plain.x)


def test_a_tol_below_the_working_precision_gets_a_warning():
    """crr in float32 (the learned models' default) at tol=1e-9 stopped "converged" 8.6e-6 from the minimiser, as a
    relative change below one unit of float32's rounding measures only the last pixels still moving (an audit,
    2026-12-06).  The reference: the same solve in float64."""
    x = adareg.data.shepp_logan((24, 24))
    H = Blur(np.ones((5, 5)) / 25, x.shape, boundary="reflect")
    y = H(x) + 0.01 * np.random.default_rng(0).standard_normal(x.shape)
    reg, options = adareg.load("crr"), dict(lam=0.01, sigma=0.01, max_iter=5000)
    reference = adareg.solve(H, y, reg, precision="float64", tol=1e-9, **options)
    for precision, tol, warned in (("float32", 1e-9, True), ("float32", 1e-6, False), ("float64", 1e-9, False)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = adareg.solve(H, y, reg, precision=precision, tol=tol, **options)
        assert any("rounding" in str(w.message) for w in caught) == warned, (precision, tol)
        if warned:  # the claim it qualifies: converged, yet far beyond tol from the minimiser
            distance = np.linalg.norm(result.x - reference.x) / np.linalg.norm(reference.x)
            assert result.converged and distance > 100 * tol, distance


def test_the_iterations_make_no_adjoint_of_their_own(monkeypatch):
    """An operator holds its adjoint weakly, so ``H.H(r)`` in an iteration made a new adjoint at each call, about
    25 microseconds, the time of a 64 x 64 blur's adjoint, in FISTA's gradient and each dual step of its TV prox,
    and in each PD3O step (a review, 2026-12-06).  Now a run's data term and each prox hold theirs."""
    from adareg.functionals import LeastSquares
    from adareg.operators.base import Adjoint
    from adareg.solvers.primal_dual import primal_dual
    from adareg.stopping import MaxIterations

    made = []
    make = Adjoint.__init__
    monkeypatch.setattr(Adjoint, "__init__", lambda self, op: (made.append(op), make(self, op))[1])
    x = adareg.data.shepp_logan((32, 32))
    H = Blur(np.ones((3, 3)) / 9, x.shape)
    for n in (5, 25):
        made.clear()
        result = adareg.solve(H, H(x), TV(x.shape), lam=1e-3, max_iter=n, tol=0)
        assert np.sum(result.history["inner_iterations"]) >= 2 * n and len(made) <= n + 1  # one per prox
        made.clear()
        primal_dual(LeastSquares(H, H(x)), TV(x.shape), 1e-3, np.zeros_like(x), stop=MaxIterations(n))
        assert len(made) == 2  # H's and W's, whatever the number of steps


class _SoftThreshold(Regularizer):
    """``R(x) = ||x||_1``, as a user writes it: a closed-form prox that takes what it needs and drops the rest
    (``**options``: bounds among them), or gives a plain array or a flattened x when ``mistake`` says so."""

    def __init__(self, shape, mistake=None):
        self.shape, self.mistake = shape, mistake

    def value(self, x):
        return float(np.abs(x).sum())

    def prox(self, v, tau, **options):
        x = np.sign(v) * np.maximum(np.abs(v) - tau, 0)
        if self.mistake == "array":
            return x
        return ProxResult(x=x.reshape(-1) if self.mistake == "flat" else x)


def test_a_user_prox_that_ignores_bounds_or_its_result_s_form_is_named():
    """A prox written with **kwargs (as the design doc's incomplete keyword list led to) dropped the box: bounds=(0, 1)
    gave values in [-0.454, 1.130], "converged"; a flattened x came back as the solution, and a plain array failed
    with "'numpy.ndarray' object has no attribute 'converged'" (an extension-point audit, 2026-12-06)."""
    rng = np.random.default_rng(0)
    y = 0.5 + 0.4 * rng.standard_normal((8, 8))
    unbounded = adareg.solve(Identity((8, 8)), y, _SoftThreshold((8, 8)), lam=0.1)
    np.testing.assert_allclose(unbounded.x, np.sign(y) * np.maximum(np.abs(y) - 0.1, 0), atol=1e-15)
    blur = Blur(np.ones((3, 3)) / 9, (8, 8), boundary="reflect")
    for H in (Identity((8, 8)), blur):
        with pytest.raises(ValueError, match=r"_SoftThreshold.prox gave x spanning \[.*\] outside bounds=\(0.0, 1.0\)"):
            adareg.solve(H, y, _SoftThreshold((8, 8)), lam=0.1, bounds=(0, 1))
        with pytest.raises(TypeError, match="_SoftThreshold.prox must return a ProxResult .* got ndarray"):
            adareg.solve(H, y, _SoftThreshold((8, 8), "array"), lam=0.1)
        with pytest.raises(ValueError, match=r"gave x of shape \(64,\) for v of shape \(8, 8\)"):
            adareg.solve(H, y, _SoftThreshold((8, 8), "flat"), lam=0.1)
    with pytest.raises(ValueError, match=r"gave x spanning \[-0\.\d+, .*\] outside bounds=\(0\.0, 10\.0\)"):
        adareg.solve(Identity((8, 8)), y - 0.3, _SoftThreshold((8, 8)), lam=0.1, bounds=(0, 10))  # below only
    # TV's own prox honours the box as its clip rounds it: 0.1 is 0.10000000149 in float32 (a review, 2026-12-06)
    y32 = (0.1 + 0.03 * rng.standard_normal((8, 8))).astype(np.float32)
    for H, x0 in ((Identity((8, 8)), None), (blur, y32)):
        x = adareg.solve(H, H(y32), TV((8, 8)), lam=1e-3, bounds=(0, 0.1), x0=x0).x
        assert x.dtype == np.float32 and np.max(x) == np.float32(0.1) and float(np.max(x)) > 0.1


def test_a_regularizer_s_minimisation_must_be_one_solve_knows():
    """"Smooth" (a typo of "smooth") took the FISTA path and called the prox of a regularizer that has none
    (an extension-point audit, 2026-12-06)."""

    class Misdeclared(_SoftThreshold):
        minimisation = "Smooth"

    with pytest.raises(ValueError, match=r"^solve: Misdeclared.minimisation must be one of 'prox', 'smooth', "
                                         r"'reweighting' \(how solve minimises it\), got 'Smooth'$"):
        adareg.solve(Identity((8, 8)), np.zeros((8, 8)), Misdeclared((8, 8)), lam=0.1)


def test_8_bit_data_for_a_learned_model_in_a_unit_box_is_told_once():
    """Both the learned models' scale warning and the box warning told of y / 255 (a review of session 35's code,
    2026-12-06); a classical regularizer gets the box warning alone."""
    y = 255 * np.clip(adareg.data.shepp_logan((16, 16)) + 0.05 * np.random.default_rng(0).standard_normal((16, 16)),
                      0, 1)
    for reg, told in ((adareg.load("wcrr"), "solve: y "), (TV((16, 16)), "farther outside bounds")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            adareg.solve(Identity((16, 16)), y, reg, lam=0.1, sigma=None if isinstance(reg, TV) else 0.1,
                         bounds=(0, 1), max_iter=3)
        scale = [str(w.message) for w in caught if "y / 255" in str(w.message)]
        assert len(scale) == 1 and told in scale[0], scale


@pytest.mark.parametrize("case", ["off scale", "outside bounds", "beyond reach", "weight spread", "curvature",
                                  "tol below rounding"])
def test_each_of_solves_warnings_points_at_the_callers_line(case):
    """solve's warnings come from adareg.diagnostics at several depths below solve; each must name the line that
    called solve (a -W filter, or a traceback of the warning, shows the user's code), not the library's."""
    n = 16
    clean = adareg.data.shepp_logan((n, n))
    B, tv = Blur(np.ones((3, 3)) / 9, (n, n)), TV((n, n))
    calls = {
        "off scale": (lambda: adareg.solve(Identity((n, n)), 255 * clean, adareg.load("sa-cnn"), sigma=10 / 255,
                                           max_iter=2), "trained on intensities in"),
        "outside bounds": (lambda: adareg.solve(Identity((n, n)), 255 * clean, tv, lam=0.1, bounds=(0, 1),
                                                max_iter=2), "outside bounds"),
        "beyond reach": (lambda: adareg.solve(B, 255 * B(clean), tv, lam=0.1, bounds=(0, 1), max_iter=2),
                         "beyond what H makes"),
        "weight spread": (lambda: adareg.solve(B, B(clean), tv, lam=0.1, weights=np.where(clean > 0.5, 1, 1e-4),
                                               max_iter=2), "data weights span"),
        "curvature": (lambda: adareg.solve(B, B(clean), adareg.load("crr"), lam=1e6, sigma=10 / 255, max_iter=2),
                      "lam's curvature"),
        "tol below rounding": (lambda: adareg.solve(B, B(clean), tv, lam=0.1, tol=1e-20, max_iter=2),
                               "below float64's rounding"),
    }
    call, words = calls[case]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        call()
    assert any(words in str(w.message) for w in record)
    assert [w.filename for w in record] == [__file__] * len(record)
