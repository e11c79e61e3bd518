"""CT: the ray transform's physical scaling, FBP, noise models, TV against FBP, and errors."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import ndimage

import adareg
from adareg.regularizers import TV
from tests.conftest import DEVICES

astra = pytest.importorskip("astra", reason="the ASTRA toolbox is not installed (pip install adareg[ct])")
from adareg.ct import STARVED_RAYS, fbp, gaussian_noise, poisson_transmission, transmission_weights  # noqa: E402
from adareg.operators import RayTransform  # noqa: E402


def disk(n: int, radius: float) -> np.ndarray:
    """A centred disk of value 1 and the given radius in pixels."""
    y, x = np.mgrid[0:n, 0:n] - (n - 1) / 2
    return (x**2 + y**2 <= radius**2).astype(np.float64)


@pytest.mark.parametrize("geometry", ["parallel", "fan"])
def test_projections_are_chord_lengths_in_physical_units(geometry):
    n, radius, pixel = 128, 40.0, 0.5
    extra = {"source_distance": 400 * pixel, "detector_distance": 0.0} if geometry == "fan" else {}
    H = RayTransform((n, n), 8, geometry=geometry, pixel_size=pixel, detector_spacing=pixel / 2, **extra)
    sinogram = H(disk(n, radius))
    # detector coordinate of each cell centre; the disk (radius R in length units) projects to 2 sqrt(R^2 - s^2)
    s = (np.arange(H.detector_count) - (H.detector_count - 1) / 2) * H.detector_spacing
    R = radius * pixel
    if geometry == "fan":  # detector at the rotation centre: a ray at s is at distance s D / sqrt(D^2 + s^2)
        D = H.source_distance
        s = s * D / np.sqrt(D**2 + s**2)
    chords = 2 * np.sqrt(np.maximum(R**2 - s**2, 0))
    inside = np.abs(s) < 0.9 * R
    np.testing.assert_allclose(sinogram[:, inside], np.broadcast_to(chords[inside], sinogram[:, inside].shape),
                               rtol=0.03, atol=0.02 * R)


def test_the_geometry_is_the_documented_one():
    """A small disk off the centre lands where the documented geometry puts it (docs/tutorials/ct.md): a scan
    of another system whose angles or cells run the other way must be flipped first, and its FBP would be turned."""
    n, (a, b), radius = 128, (0.25, 0.15), 0.03
    rows, columns = np.mgrid[0:n, 0:n]
    x, y = (columns - (n - 1) / 2) / n, ((n - 1) / 2 - rows) / n  # x to the right, y up: row 0 at the top
    disk = ((x - a) ** 2 + (y - b) ** 2 <= radius**2).astype(float)
    angles = np.array([0.0, np.pi / 6, np.pi / 2, 2.0])

    def centroids(H):
        sinogram = H(disk)
        m = sinogram.shape[1]
        return (sinogram @ np.arange(m) / sinogram.sum(axis=1) - (m - 1) / 2) / n  # cells as wide as pixels

    # parallel beam: the line x cos(theta) + y sin(theta) = u through the disk's centre
    np.testing.assert_allclose(centroids(RayTransform((n, n), angles, pixel_size=1 / n)),
                               a * np.cos(angles) + b * np.sin(angles), atol=0.1 / n)
    # fan beam: the ray from the source at D_s (sin, -cos) through the centre meets the detector line
    # -D_d (sin, -cos) + u (cos, sin)
    source_distance, detector_distance = 2.0, 1.0
    expected = []
    for theta in angles:
        towards, along = np.array([np.sin(theta), -np.cos(theta)]), np.array([np.cos(theta), np.sin(theta)])
        source = source_distance * towards
        _, u = np.linalg.solve(np.column_stack([np.array([a, b]) - source, -along]),
                               -detector_distance * towards - source)
        expected.append(u)
    fan = RayTransform((n, n), angles, geometry="fan", pixel_size=1 / n, source_distance=source_distance,
                       detector_distance=detector_distance)
    np.testing.assert_allclose(centroids(fan), expected, atol=0.15 / n)


@pytest.mark.parametrize("geometry", ["parallel", "fan"])
def test_fbp_of_a_noiseless_phantom_with_many_angles(geometry):
    n = 128
    # smoothed by 2 pixels, so that the pixel grid resolves it (measured errors: 1.8% parallel, 1.7-2.4% fan)
    phantom = ndimage.gaussian_filter(adareg.data.shepp_logan((n, n)), 2.0)
    fan = {"geometry": "fan", "source_distance": 2.0, "detector_distance": 1.0} if geometry == "fan" else {}
    H = RayTransform((n, n), 360, pixel_size=1.0 / n, **fan)
    for window, bound in (("ram-lak", 0.05), ("hann", 0.10)):
        x = fbp(H, H(phantom), window=window)
        assert np.linalg.norm(x - phantom) <= bound * np.linalg.norm(phantom), window
    assert fbp(H, H(phantom)).mean() == pytest.approx(phantom.mean(), rel=2e-3)
    assert fbp(H, H(phantom).astype(np.float64)).dtype == np.float32  # as H.H's, for either geometry
    batch = np.stack([phantom, 2 * phantom])
    np.testing.assert_allclose(fbp(H, H(batch))[1], 2 * fbp(H, H(phantom)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cells", [1.5, 2.0, 3.0])
def test_parallel_fbp_with_detector_cells_wider_than_pixels_interpolates(cells):
    """ASTRA's transpose spreads each ray over the pixels it crosses, which leaves the pixels between two rays short
    once cells are wider than pixels: the back-projection of a blurred phantom lost 5 to 11 dB at cells 2 to 3 pixels
    wide (an audit, 2026-12-06). Against an independent back-projection: NumPy's interpolation of the same ramp-
    filtered projections at r . theta, in ASTRA's frame (x to the right, y up)."""
    n = 64
    phantom = ndimage.gaussian_filter(adareg.data.shepp_logan((n, n)), 2.0)
    H = RayTransform((n, n), 180, pixel_size=1.0 / n, detector_spacing=cells / n)
    sinogram = H(phantom).astype(np.float64)
    response = adareg.ct.ramp_filter(H.detector_count, H.detector_spacing)
    size = 2 * (len(response) - 1)
    filtered = np.fft.irfft(np.fft.rfft(sinogram, n=size) * response, n=size)[:, : H.detector_count]
    centres = (np.arange(n) - (n - 1) / 2) / n
    x, y = np.meshgrid(centres, -centres)
    cell = np.arange(H.detector_count)
    reference = sum(np.interp((x * np.cos(t) + y * np.sin(t)) / H.detector_spacing + (H.detector_count - 1) / 2,
                              cell, row, left=0, right=0) for t, row in zip(H.angles, filtered)) * np.pi / 180
    image = fbp(H, H(phantom))
    assert image.dtype == np.float32
    np.testing.assert_allclose(image, reference, rtol=0, atol=1e-4)
    assert np.linalg.norm(image - phantom) <= 0.03 * cells * np.linalg.norm(phantom)  # the cells set the resolution
    np.testing.assert_allclose(fbp(H, np.stack([H(phantom), 2 * H(phantom)]))[1], 2 * image, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("geometry, angles, words", [
    ("fan", np.linspace(0, np.pi, 90, endpoint=False), r"leave a gap of 3.18 rad \(modulo 2 pi\), 45.5 times"),
    ("parallel", np.linspace(0, 2 * np.pi / 3, 40, endpoint=False), r"leave a gap of 1.1 rad \(modulo pi\), 14.0 tim"),
    ("parallel", np.r_[np.linspace(0, 0.5, 10), np.linspace(2.5, 3.1, 12)], r"leave a gap of 2 rad"),
])
def test_fbp_warns_where_the_angles_break_its_assumption(geometry, angles, words):
    """FBP weighs each angle by the directions between it and its neighbours, modulo pi (parallel) or 2 pi (fan):
    where a gap leaves many out, its image is worse than that of the same number of angles all round."""
    n = 64
    phantom = ndimage.gaussian_filter(adareg.data.shepp_logan((n, n)), 1.0)
    fan = {"geometry": "fan", "source_distance": 2.0, "detector_distance": 1.0} if geometry == "fan" else {}
    H = RayTransform((n, n), angles, pixel_size=1.0 / n, **fan)
    with pytest.warns(UserWarning, match=rf"fbp: the {len(angles)} angles .* {words}.*needs angles all round"):
        wrong = fbp(H, H(phantom))
    right = RayTransform((n, n), len(angles), pixel_size=1.0 / n, **fan)  # the full range, uniformly
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert adareg.psnr(fbp(right, right(phantom)), phantom) > adareg.psnr(wrong, phantom) + 0.5
        uniform = RayTransform((n, n), np.linspace(0, np.pi if not fan else 2 * np.pi, 30), pixel_size=1.0 / n,
                               **fan)  # both ends included: one duplicate direction, still uniform
        fbp(uniform, uniform(phantom))


@pytest.mark.parametrize("angles", [np.mod(np.arange(100) * np.pi * (math.sqrt(5) - 1) / 2, np.pi),
                                    np.mod(np.arange(89) * np.pi * (math.sqrt(5) - 1) / 2, np.pi),
                                    np.linspace(0, 1.5 * np.pi, 90, endpoint=False)], ids=["golden", "fibonacci",
                                                                                         "1.5 turns"])
def test_fbp_of_uneven_angles_all_round_is_as_good_as_uniform_ones(angles):
    # golden-angle gaps take two or three sizes (a factor 1.6 apart) and three half turns of a parallel beam see
    # half the directions twice: FBP weighed each angle alike, 1.9 dB (100 golden angles) and 12.7 dB (1.5 turns)
    # below as many uniform angles, with a warning; each now weighs by its gaps to the neighbouring directions
    n = 64
    phantom = ndimage.gaussian_filter(adareg.data.shepp_logan((n, n)), 1.0)
    H = RayTransform((n, n), angles, pixel_size=1.0 / n)
    uniform = RayTransform((n, n), len(angles), pixel_size=1.0 / n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = fbp(H, H(phantom))
    assert adareg.psnr(image, phantom) > adareg.psnr(fbp(uniform, uniform(phantom)), phantom) - 0.5


@pytest.mark.parametrize("geometry", ["parallel", "fan"])
def test_fbp_of_repeated_angles_is_that_of_one_pass_and_a_single_angle_warns(geometry):
    # two passes over the same angles raised ZeroDivisionError (their median gap is 0); one angle passed silently;
    # a pass and a sixth of another weighed the repeated directions twice (with a warning)
    n = 32
    phantom = adareg.data.shepp_logan((n, n))
    fan = {"geometry": "fan", "source_distance": 2.0, "detector_distance": 1.0} if geometry == "fan" else {}
    once = np.linspace(0, np.pi if not fan else 2 * np.pi, 30, endpoint=False)
    one_pass = RayTransform((n, n), once, pixel_size=1.0 / n, **fan)
    two_passes = RayTransform((n, n), np.concatenate([once, once]), pixel_size=1.0 / n, **fan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        twice = fbp(two_passes, two_passes(phantom))
        more = RayTransform((n, n), np.concatenate([once, once[:5]]), pixel_size=1.0 / n, **fan)
        partly_twice = fbp(more, more(phantom))
    expected = fbp(one_pass, one_pass(phantom))
    np.testing.assert_allclose(twice, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(partly_twice, expected, rtol=1e-5, atol=1e-5)
    H = RayTransform((n, n), np.array([0.3]), pixel_size=1.0 / n, **fan)
    with pytest.warns(UserWarning, match="fbp: the one angle .* is one direction, which covers no range"):
        fbp(H, H(phantom))


@pytest.mark.parametrize("geometry", ["parallel", "fan"])
def test_angle_groups_on_host_threads_project_as_one_astra_projector(geometry):
    """Above THREADED_PROJECTION_SIZE the host projects groups of angles on several threads (here three groups of
    16 angles: 6, 5 and 5): the sinogram is ASTRA's own of all the angles (create_sino, one projector), and the
    back-projection its adjoint to float32 rounding."""
    from adareg import threads
    from adareg.operators.ct import THREADED_PROJECTION_SIZE

    options = {"source_distance": 200.0, "detector_distance": 100.0} if geometry == "fan" else {}
    H = RayTransform((72, 68), 16, geometry=geometry, **options)
    assert 16 * 72 * 68 >= THREADED_PROJECTION_SIZE
    rng = np.random.default_rng(2)
    x, y = rng.random((2, *H.shape_in)), rng.random((2, *H.shape_out))
    with threads.fft_workers_here(3):
        Hx, Hty = H(x), H.H(y)
    kind = "linear" if geometry == "parallel" else "line_fanflat"
    pid = astra.create_projector(kind, H.proj_geom, H.vol_geom)
    try:
        for i in range(2):
            sid, sinogram = astra.create_sino(x[i].astype(np.float32), pid)
            astra.data2d.delete(sid)
            np.testing.assert_array_equal(Hx[i], sinogram)
    finally:
        astra.projector.delete(pid)
    np.testing.assert_allclose(np.sum(Hx * y), np.sum(x * Hty), rtol=1e-6)


@pytest.mark.parametrize("geometry", ["parallel", "fan"])
def test_copies_and_pickles_outlive_the_operator(geometry):
    # the copy shared the original's ASTRA projector ids, freed with it: "Projector not found"
    import copy
    import gc
    import pickle

    options = {"source_distance": 40.0, "detector_distance": 20.0} if geometry == "fan" else {}
    R = RayTransform((12, 12), 7, geometry=geometry, **options)
    x = np.random.default_rng(1).random((12, 12))
    sinogram, back = R(x), R.H(R(x))
    copies = [copy.deepcopy(R), pickle.loads(pickle.dumps(R))]
    del R
    gc.collect()
    for other in copies:
        np.testing.assert_array_equal(other(x), sinogram)
        np.testing.assert_array_equal(other.H(sinogram), back)


def test_tv_beats_fbp_on_a_sparse_view_scan():
    n = 64
    phantom = adareg.data.shepp_logan((n, n))
    H = RayTransform((n, n), 20, pixel_size=1.0 / n)
    y = gaussian_noise(H(phantom), 0.01, seed=0)
    x_fbp = fbp(H, y, window="hann")
    x_tv = adareg.solve(H, y, TV((n, n)), lam=1e-4, bounds=(0, None), max_iter=300).x
    # measured: FBP 17.6 dB, TV 22.7 dB
    assert adareg.psnr(x_tv, phantom) >= adareg.psnr(x_fbp, phantom) + 4.0


def test_poisson_transmission_statistics():
    sinogram = np.full((200, 300), 0.7)
    noisy, weights = poisson_transmission(sinogram, 1e4, seed=1)
    counts = weights * 1e4
    assert counts.mean() == pytest.approx(1e4 * np.exp(-0.7), rel=1e-2)
    assert counts.var() == pytest.approx(1e4 * np.exp(-0.7), rel=5e-2)  # Poisson: variance = mean
    np.testing.assert_allclose(noisy, -np.log(weights))
    clean, _ = poisson_transmission(sinogram, 1e12, seed=1)
    np.testing.assert_allclose(clean, sinogram, atol=1e-4)
    # NumPy's sampler fails beyond about 9.2e18 expected counts ('lam value too large'): named instead
    with pytest.raises(ValueError, match=r"photons \* exp\(-p\) reaches 4.97e\+29, above the 1e\+18 .* lower photons"):
        poisson_transmission(sinogram, 1e30, seed=1)
    # below one photon a ray without counts (taken as one) would read a negative line integral, weight above 1
    with pytest.raises(ValueError, match=r"photons must be at least 1 \(the expected count of an unobstructed ray\), "
                                         r"got 1e-06"):
        poisson_transmission(sinogram, 1e-6, seed=1)
    generator = np.random.default_rng(1)  # a generator is used as it is, as the seed 1 would be
    np.testing.assert_array_equal(poisson_transmission(sinogram, 1e4, seed=generator)[0], noisy)
    for dtype in (np.float64, np.float32):  # float64 outputs were a cache's read-only host copy
        for out in poisson_transmission(sinogram.astype(dtype), 1e4, seed=1):
            assert out.dtype == dtype
            out[out > 1.0] = 1.0  # the caller's to edit, e.g. to clip


def test_detector_cells_in_other_units_than_the_pixels_warn():
    # pixel_size 1/64 (an image spanning one unit) with detector_spacing 1 gave a sinogram of zeros, and the
    # reverse a view of a thin central strip (12.9 dB), both without a word
    phantom = adareg.data.shepp_logan((64, 64))
    with pytest.warns(UserWarning, match=r"RayTransform: a detector cell spans 64 pixels at the rotation centre, "
                                         r"so that the image \(64 pixels wide\) falls on about 1 cells") as record:
        coarse = RayTransform((64, 64), 30, pixel_size=1 / 64, detector_spacing=1.0, detector_count=92)
    assert record[0].filename == __file__ and np.abs(coarse(phantom)).max() < 0.05  # the rays all but miss it
    with pytest.warns(UserWarning, match=r"RayTransform: the 92 detector cells cover 1.44 of the image's 64 pixels "
                                         r"across at the rotation centre"):
        RayTransform((64, 64), 30, detector_spacing=1 / 64, detector_count=92)
    # a fan beam magnifies the image twice here: cells 10 wide on the detector are 5 pixels at the centre
    fan = {"geometry": "fan", "source_distance": 100.0, "detector_distance": 100.0}
    with pytest.warns(UserWarning, match="a detector cell spans 5 pixels"):
        RayTransform((64, 64), 30, detector_spacing=10.0, detector_count=40, **fan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matching units, and a detector a third of the image wide (interior)
        RayTransform((64, 64), 30, pixel_size=1 / 64)
        RayTransform((64, 64), 30, detector_count=22)
        RayTransform((64, 64), 30, detector_spacing=2.0, detector_count=60, **fan)


def test_a_scan_that_starves_its_rays_warns():
    # line integrals in pixel units (pixel_size 1 on a 64 x 64 phantom, up to 16.5) starved 29 % of the rays at
    # 1e4 photons, each then read as one photon, without a word
    phantom = adareg.data.shepp_logan((64, 64))
    sinogram = RayTransform((64, 64), 30)(phantom)
    with pytest.warns(UserWarning, match=r"poisson_transmission: (\d+\.?\d*) % of the rays received no photon") \
            as record:
        _, weights = poisson_transmission(sinogram, 1e4, seed=0)
    share = float(re.search(r"(\d+\.?\d*) %", str(record[0].message)).group(1)) / 100
    drawn = np.random.default_rng(0).poisson(1e4 * np.exp(-sinogram.astype(np.float64)))  # the same draws
    assert share == pytest.approx(np.mean(drawn == 0), abs=1e-3) and share > STARVED_RAYS
    assert np.all(weights[drawn == 0] == 1e-4)  # each counted as one photon
    assert record[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same scan in units of an image spanning one: line integrals below 1
        poisson_transmission(RayTransform((64, 64), 30, pixel_size=1 / 64)(phantom), 1e4, seed=0)


@pytest.mark.parametrize("simulate", [lambda seed: gaussian_noise(np.zeros((2, 3)), 0.1, seed=seed),
                                      lambda seed: poisson_transmission(np.zeros((2, 3)), 1e3, seed=seed)])
@pytest.mark.parametrize("seed, error", [(1.5, TypeError), ("a", TypeError), (True, TypeError), (-1, ValueError)])
def test_noise_helpers_name_a_bad_seed(simulate, seed, error):
    with pytest.raises(error, match=r"(gaussian_noise|poisson_transmission): seed must be a non-negative int or None"):
        simulate(seed)


def test_gaussian_noise_level():
    noisy = gaussian_noise(np.zeros((300, 300), dtype=np.float32), 0.2, seed=2)
    assert noisy.dtype == np.float32 and noisy.std() == pytest.approx(0.2, rel=1e-2)


@pytest.mark.parametrize("simulate", [lambda s: gaussian_noise(s, 0.5), lambda s: poisson_transmission(s, 1e4)])
def test_noise_helpers_refuse_bad_sinograms(simulate):
    # an integer sinogram made gaussian_noise round the noise away (std 0.34 for sigma 0.5)
    with pytest.raises(TypeError, match="sinogram must be a float32 or float64 array of line integrals, got dtype"):
        simulate(np.zeros((4, 6), dtype=np.int64))
    with pytest.raises(TypeError, match="got list"):
        simulate([[0.0] * 6] * 4)
    sinogram = np.zeros((4, 6))
    sinogram[1, 2] = np.nan
    with pytest.raises(ValueError, match="sinogram contains 1 NaN or Inf value"):
        simulate(sinogram)
    with pytest.raises(TypeError, match="sinogram must be a float32 or float64 array of line integrals, got dtype "
                                        "float16"):
        simulate(np.zeros((4, 6), dtype=np.float16))


def test_batches_and_dtypes():
    H = RayTransform((16, 16), 10)
    x = np.random.default_rng(3).random((2, 16, 16))
    assert H(x).dtype == np.float32  # ASTRA computes in float32
    np.testing.assert_allclose(H(x)[1], H(x[1]), rtol=1e-6)
    assert H(x.astype(np.complex128)).dtype == np.complex64


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: RayTransform((16, 16), 0), ValueError, "angles must be a positive count"),
        (lambda: RayTransform((16, 16), []), ValueError, "non-empty 1D array"),
        (lambda: RayTransform((16, 16), 10.0), TypeError,  # "a non-empty 1D array, got shape ()" before
         r"^RayTransform: angles must be an int count or a 1D array of angles in radians, got 10\.0$"),
        (lambda: RayTransform((16, 16), [0.0, np.nan]), ValueError, "NaN"),
        (lambda: RayTransform((16, 16), [[0.0, 1.0], [2.0]]), TypeError,  # NumPy's ValueError came through
         "^RayTransform: angles must be an array or nested lists of numbers; NumPy cannot convert the list given"),
        (lambda: RayTransform((16, 16), 10, geometry="fan"), ValueError, "needs source_distance"),
        (lambda: RayTransform((16, 16), 10, geometry="fan", source_distance=5, detector_distance=5), ValueError,
         "source must lie outside the image"),
        (lambda: RayTransform((16, 16), 10, geometry="cone"), ValueError, "takes geometry"),
        (lambda: RayTransform((16, 16), 10, source_distance=50), ValueError, "fan and cone beam only"),
        (lambda: RayTransform((16, 16), 10, detector_rows=5), ValueError,  # ignored before
         "detector_rows applies to 3D images only, got 5 for a 16 x 16 image"),
        (lambda: RayTransform((16,), 10), ValueError, "must be \\(H, W\\) or \\(D, H, W\\)"),
        (lambda: RayTransform((16, 16), 10, pixel_size=0), ValueError, "must be positive"),
        (lambda: RayTransform((16, 16), 10, detector_count=5.7), TypeError, "detector_count must be an int"),
        (lambda: RayTransform((16, 16), 10, detector_count=True), TypeError, "detector_count must be an int"),
        (lambda: RayTransform((16, 16), 10, detector_count=np.nan), TypeError, "detector_count must be an int"),
        (lambda: RayTransform((16, 16), 10, detector_count=0), ValueError, "detector_count must be at least 1"),
        (lambda: RayTransform((16, 16), [0.0, 1.0 + 0.5j]), TypeError, "array of real angles, got dtype complex"),
        (lambda: RayTransform((16, 16), 10, pixel_size=np.inf), ValueError, "pixel_size must be finite"),
        (lambda: RayTransform((16, 16), 10, detector_spacing=np.inf), ValueError,
         "detector_spacing must be finite"),
        (lambda: RayTransform((16, 16), 10, detector_spacing="1"), TypeError,
         "detector_spacing must be a real number"),
        (lambda: RayTransform((16, 16), 10, geometry="fan", source_distance=np.inf, detector_distance=5),
         ValueError, "source_distance must be finite"),
        (lambda: RayTransform((16, 16), 10, geometry="fan", source_distance=50, detector_distance=np.inf),
         ValueError, "detector_distance must be finite"),
    ],
)
def test_bad_geometries(make, error, words):
    with pytest.raises(error, match=words):
        make()


@pytest.mark.parametrize("geometry, distances", [("parallel", {}),
                                                  ("fan", {"source_distance": 60.0, "detector_distance": 40.0})])
def test_fitting_image_size_is_the_largest_image_the_detector_row_covers(geometry, distances):
    from adareg.operators.ct import fitting_image_size

    detectors = 101
    n = fitting_image_size(detectors, geometry=geometry, **distances)
    turn = 2 * np.pi if geometry == "fan" else np.pi
    angles = np.linspace(0, turn, 180, endpoint=False)
    shadow = RayTransform((n, n), angles, geometry=geometry, detector_count=detectors, **distances)(np.ones((n, n)))
    assert shadow[:, [0, -1]].max() == 0 and shadow.max() > 0  # the image's shadow lies within the row
    # one pixel more needs more cells than there are, by RayTransform's own default count
    assert RayTransform((n, n), 4, geometry=geometry, **distances).detector_count <= detectors
    assert RayTransform((n + 1, n + 1), 4, geometry=geometry, **distances).detector_count > detectors
    if geometry == "parallel":  # the closed form without magnification
        assert n == int((detectors - 1) / np.sqrt(2))
    else:  # the magnification shrinks the image, and a nearer source more so
        assert n < int((detectors - 1) / np.sqrt(2))
        assert fitting_image_size(detectors, geometry="fan", source_distance=30.0, detector_distance=40.0) < n
    with pytest.raises(ValueError, match="no image fits 1 detectors"):
        fitting_image_size(1)
    # named RayTransform before (an audit, 2026-12-06)
    with pytest.raises(ValueError, match="^fitting_image_size: geometry 'fan' needs source_distance and detector"):
        fitting_image_size(detectors, geometry="fan")
    with pytest.raises(ValueError, match="^fitting_image_size: source_distance and detector_distance apply to fan"):
        fitting_image_size(detectors, source_distance=100.0, detector_distance=10.0)


def test_angles_in_degrees_are_flagged():
    with pytest.warns(UserWarning, match=r"the angles span 174 radians, more than a full turn"):
        RayTransform((16, 16), np.arange(0.0, 180.0, 6.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RayTransform((16, 16), np.deg2rad(np.arange(0.0, 180.0, 6.0)))
        RayTransform((16, 16), np.linspace(0, 2 * np.pi, 30, endpoint=False), geometry="fan", source_distance=40.0,
                     detector_distance=40.0)


def test_wrong_sinogram_shape():
    H = RayTransform((16, 16), 10)
    with pytest.raises(ValueError, match=r"sinogram has shape \(10, 5\); expected \(10, 24\)"):
        fbp(H, np.zeros((10, 5)))
    with pytest.raises(ValueError, match=r"RayTransform.*has shape \(9, 24\)"):
        H.H(np.zeros((9, 24)))
    with pytest.raises(ValueError, match="fbp: window must be 'ram-lak' or 'hann', got 'cosine'"):
        fbp(H, np.zeros(H.shape_out), window="cosine")  # it named ramp_filter
    sinogram = np.zeros(H.shape_out)
    sinogram[2, 3] = np.inf
    with pytest.raises(ValueError, match="fbp: sinogram contains 1 NaN or Inf value"):
        fbp(H, sinogram)
    with pytest.raises(TypeError, match="fbp: sinogram must be real"):
        fbp(H, np.zeros(H.shape_out, dtype=complex))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transmission_weights_are_the_relative_photon_counts(dtype):
    """e^-p of a measured line integral p = -log(N / I0) is N / I0: the weights poisson_transmission gives from the
    counts themselves, for a sinogram whose counts were not kept."""
    sinogram = np.random.default_rng(3).uniform(0, 4, (30, 40)).astype(dtype)
    noisy, counts_over_photons = poisson_transmission(sinogram, 1e3, seed=2)  # a few rays without photons at 4
    weights = transmission_weights(noisy)
    assert weights.dtype == dtype
    np.testing.assert_allclose(weights, counts_over_photons, rtol=10 * np.finfo(dtype).eps)
    with pytest.raises(ValueError, match=r"^transmission_weights: line integrals from -200 to -200 give weights "
                                         r"e\^-p beyond float32's range"):
        transmission_weights(np.full((3, 3), -200.0, np.float32))
    # e^-120 underflows to 0 in float32 (a ray dropped, where "positive weights" were promised): counts before the
    # log, or line integrals in other units
    for p in (120.0, 5000.0):
        assert np.exp(np.float32(-p)) == 0
        with pytest.raises(ValueError, match=rf"from 0 to {p:g} give .* --data-weights uniform"):
            transmission_weights(np.array([[0.0, p]], np.float32))
    with pytest.raises(TypeError, match="^transmission_weights: sinogram must be a float32 or float64 array"):
        transmission_weights(np.ones((3, 3), int))


def test_a_transposed_parallel_beam_sinogram_warns():
    # closed-form projections of an off-centre disk (radius R at c): chords 2 sqrt(R^2 - (u - c.e)^2), the same
    # area at every angle; a square sinogram, so that its transpose has the expected shape
    n, R, c = 48, 0.25, np.array([0.15, -0.1])
    H = RayTransform((n, n), 69, pixel_size=1 / n)  # 69 detector cells by default
    u = (np.arange(H.detector_count) - (H.detector_count - 1) / 2) * H.detector_spacing
    offsets = c @ np.stack([np.cos(H.angles), np.sin(H.angles)])
    sinogram = 2 * np.sqrt(np.maximum(R**2 - (u[None] - offsets[:, None]) ** 2, 0.0))
    noisy, _ = poisson_transmission(sinogram, 1e3, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for y in (sinogram, noisy, np.stack([noisy, sinogram])):
            fbp(H, y)
            adareg.solve(H, y, TV((n, n)), lam=1e-3, max_iter=2)
    transposed = np.ascontiguousarray(sinogram.T)
    for call, who in ((lambda y: fbp(H, y), "fbp: sinogram"),
                      (lambda y: adareg.solve(H, y, TV((n, n)), lam=1e-3, max_iter=2), "solve: y")):
        with pytest.warns(UserWarning, match=rf"{who}: the rows of this parallel-beam sinogram sum to totals that "
                                             r"spread by [\d.]+ of their mean.*\(detectors, angles\) rather than"):
            call(np.stack([sinogram, transposed]))


@pytest.mark.parametrize("count, spacing, error, words", [
    (8, -1.0, ValueError, "spacing must be positive"),
    (8, 0.0, ValueError, "spacing must be positive"),
    (8, np.inf, ValueError, "spacing must be finite"),
    (-5, 1.0, ValueError, "detector_count must be at least 1"),
    (8.0, 1.0, TypeError, "detector_count must be an int"),
])
def test_ramp_filter_checks_its_arguments(count, spacing, error, words):
    from adareg.ct import ramp_filter

    with pytest.raises(error, match=f"ramp_filter: {words}"):
        ramp_filter(count, spacing)


@pytest.mark.skipif(astra.use_cuda(), reason="checks the error raised when CUDA is missing")
def test_3d_without_cuda_raises_and_the_process_survives():
    code = ("from adareg.operators import RayTransform\n"
            "try:\n    RayTransform((8, 8, 8), 10)\nexcept RuntimeError as e:\n    print('raised:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "raised: RayTransform: 3D geometries need ASTRA with CUDA" in out.stdout


@pytest.mark.parametrize("device", [d for d in DEVICES if d.id == "cupy"])
def test_gpu_projector_agrees_with_the_cpu_one(device):
    n = 64
    phantom = adareg.data.shepp_logan((n, n)).astype(np.float32)
    H = RayTransform((n, n), 30)
    on_gpu = H(adareg.to_device(phantom, device))
    assert adareg.backend.is_cupy(on_gpu)
    cpu = H(phantom)
    assert np.linalg.norm(adareg.to_numpy(on_gpu) - cpu) <= 0.05 * np.linalg.norm(cpu)
    y = adareg.to_device(np.random.default_rng(0).standard_normal(H.shape_out).astype(np.float32), device)
    x = adareg.to_device(np.random.default_rng(1).standard_normal(H.shape_in).astype(np.float32), device)
    assert H.adjoint_error(x, y) <= 0.05  # ASTRA's CUDA back-projector is matched only approximately


def test_a_float64_solve_on_a_float32_projector_runs_in_float64_and_converges():
    """ASTRA projects in float32.  The default start took H^H y's dtype, so a float64 y or precision="float64" ran
    in float32; and with float64 iterates L-BFGS's line search allowed float64's rounding of F, which the projector
    cannot give: crr halved its steps on rounding noise and stopped "no decrease" 6.1e-3 from the minimiser (an
    audit, 2026-12-06).  The reference: SciPy's L-BFGS-B on the projector's dense float64 matrix."""
    pytest.importorskip("astra")
    from scipy.optimize import minimize

    n = 16
    R = RayTransform((n, n), 16)
    y = R(adareg.data.shepp_logan((n, n))).astype(np.float64)
    y += 0.01 * np.abs(y).max() * np.random.default_rng(0).standard_normal(y.shape)
    reg, lam = adareg.load("crr"), 0.5
    ridge = reg.at(0.01)
    A = np.stack([R(e.reshape(n, n)).ravel() for e in np.eye(n * n)], axis=1).astype(np.float64)

    def objective(v):
        x = v.reshape(n, n)
        residual = A @ v - y.ravel()
        return 0.5 * residual @ residual + lam * ridge.value(x), A.T @ residual + lam * ridge.grad(x).ravel()

    reference = minimize(objective, np.zeros(n * n), jac=True, method="L-BFGS-B",
                         options={"maxiter": 20000, "gtol": 1e-12, "ftol": 1e-16}).x.reshape(n, n)
    dtypes = set()
    result = adareg.solve(R, y, reg, lam=lam, sigma=0.01, tol=1e-7, max_iter=5000, precision="float64",
                          callback=lambda k, x: dtypes.add(x.dtype))
    assert dtypes == {np.dtype(np.float64)}
    assert result.converged, result.message
    assert np.linalg.norm(result.x - reference) < 2e-4 * np.linalg.norm(reference)
    iterates = set()
    adareg.solve(R, y, TV((n, n)), lam=0.01, max_iter=3, callback=lambda k, x: iterates.add(x.dtype))
    assert iterates == {np.dtype(np.float64)}  # y's precision, as solve documents
