"""adareg.io.fastmri against independent NumPy computations on files built here in fastMRI's layout.

Each file holds the k-space of known images (a Shepp-Logan phantom scaled per slice,
rows != columns) under known coil maps, computed in the test with ``numpy.fft``
(``fftshift(fft2(ifftshift(S_c x), norm="ortho"))``, fastMRI's ``fft2c``), and a valid
ISMRMRD header (encoded matrix the full size, recon matrix 32 x 32).

* reading: shapes, dtypes, values, header sizes, attributes; slice selection by int,
  slice (also reversed and strided) and sequence (unsorted, repeated); single-coil files;
* the zero-filled baseline against the test's own RSS of the inverse FFT, cropped; with
  the full mask it is |x| sqrt(sum |S_c|^2), cropped, and the file's reference;
* masks: the file's own, and retrospective ones equal to ``adareg.mri.cartesian_mask``;
* ESPIRiT (SigPy): the slice operator reproduces the masked k-space of the true image
  up to the maps' phase, and SENSE with the estimated maps recovers |x|;
* malformed files: one line naming the file for each problem.
"""

from __future__ import annotations

import re
import sys
import warnings

import numpy as np
import pytest

import adareg
from adareg.io import fastmri
from adareg.io.fastmri import FastMRIData, read_fastmri
from adareg.mri import calibration_width, cartesian_mask, center_crop, column_mask, rss, slice_operator, zero_filled_rss
from tests.conftest import DEVICES
from adareg.stacks import FastMRIReconstruction, map_slices

ROWS, COLUMNS, SLICES, COILS = 96, 72, 3, 6
RECON = (32, 32)
AXES = (-2, -1)


@pytest.fixture
def h5py():
    return pytest.importorskip("h5py", reason="h5py is not installed (pip install adareg[io])")


@pytest.fixture
def sigpy():
    return pytest.importorskip("sigpy", reason="SigPy is not installed (pip install adareg[mri]); ESPIRiT needs it")


# ------------------------------------------------------------------------------ independent references
def fft2c(z):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(z, axes=AXES), norm="ortho"), axes=AXES)


def ifft2c(k):
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=AXES), norm="ortho"), axes=AXES)


def crop(images, shape):
    """fastMRI's center_crop, written out: start (size - crop) // 2 on each axis."""
    top, left = (images.shape[-2] - shape[0]) // 2, (images.shape[-1] - shape[1]) // 2
    return images[..., top:top + shape[0], left:left + shape[1]]


def smooth_maps(shape, coils):
    """Smooth coil maps without SigPy: Gaussian profiles from coils on a circle, linear phases, sum |S|^2 = 1."""
    r = np.linspace(-1, 1, shape[0])[:, None]
    c = np.linspace(-1, 1, shape[1])[None, :]
    maps = []
    for i in range(coils):
        angle = 2 * np.pi * i / coils
        profile = np.exp(-((r - 1.5 * np.sin(angle)) ** 2 + (c - 1.5 * np.cos(angle)) ** 2) / 2.0)
        maps.append(profile * np.exp(1j * (np.pi * (r * np.cos(angle) + c * np.sin(angle)) / 2 + i)))
    maps = np.array(maps)
    return maps / np.sqrt(np.sum(np.abs(maps) ** 2, axis=0))


def phantom_volume():
    return np.stack([(1.0 + s) * adareg.data.shepp_logan((ROWS, COLUMNS)) for s in range(SLICES)])


HEADER = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <encoding>
    <trajectory>cartesian</trajectory>
    <encodedSpace>
      <matrixSize><x>{ex}</x><y>{ey}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>280</x><y>210</y><z>4.5</z></fieldOfView_mm>
    </encodedSpace>
    <reconSpace>
      <matrixSize><x>{rx}</x>{ry}<z>1</z></matrixSize>
      <fieldOfView_mm><x>140</x><y>140</y><z>3</z></fieldOfView_mm>
    </reconSpace>
  </encoding>
</ismrmrdHeader>
"""


def header(ex=ROWS, ey=COLUMNS, rx=RECON[0], ry=f"<y>{RECON[1]}</y>"):
    return HEADER.format(ex=ex, ey=ey, rx=rx, ry=ry)


def write_file(h5py, path, kspace, *, mask=None, reference=None, reference_name="reconstruction_rss",
               xml=None, attrs=None):
    with h5py.File(path, "w") as file:
        if kspace is not None:
            file.create_dataset("kspace", data=kspace)
        if mask is not None:
            file.create_dataset("mask", data=mask)
        if reference is not None:
            file.create_dataset(reference_name, data=reference)
        if xml is not False:
            file.create_dataset("ismrmrd_header", data=(header() if xml is None else xml).encode())
        for key, value in (attrs or {}).items():
            file.attrs[key] = value
    return path


@pytest.fixture
def volume():
    """Images (slices, rows, columns), maps (coils, rows, columns), full k-space and its RSS reference."""
    x = phantom_volume()
    maps = smooth_maps((ROWS, COLUMNS), COILS)
    kspace = fft2c(maps[None] * x[:, None]).astype(np.complex64)
    reference = crop(np.sqrt(np.sum(np.abs(ifft2c(kspace.astype(np.complex128))) ** 2, axis=1)), RECON)
    return x, maps, kspace, reference.astype(np.float32)


@pytest.fixture
def multicoil(h5py, tmp_path, volume):
    x, maps, kspace, reference = volume
    attrs = {"acquisition": "CORPD_FBK", "max": float(reference.max()), "norm": 1.5, "patient_id": b"abc123"}
    return write_file(h5py, tmp_path / "file1000001.h5", kspace, reference=reference, attrs=attrs)


# ----------------------------------------------------------------------------------------- reading
def test_read_multicoil_file(multicoil, volume):
    _, _, kspace, reference = volume
    data = read_fastmri(multicoil)
    assert isinstance(data, FastMRIData)
    assert data.kspace.shape == (SLICES, COILS, ROWS, COLUMNS) and data.kspace.dtype == np.complex64
    np.testing.assert_array_equal(data.kspace, kspace)
    assert data.reference.dtype == np.float32
    np.testing.assert_array_equal(data.reference, reference)
    assert data.mask is None
    assert data.encoded_shape == (ROWS, COLUMNS) and data.recon_shape == RECON
    assert data.attrs["acquisition"] == "CORPD_FBK" and data.attrs["patient_id"] == "abc123"
    assert data.attrs["norm"] == 1.5 and isinstance(data.attrs["norm"], float)
    np.testing.assert_array_equal(data.slices, np.arange(SLICES))
    assert data.path == multicoil


@pytest.mark.parametrize("slices, expected", [
    (1, [1]), (-1, [2]), (np.int64(0), [0]),
    (slice(1, None), [1, 2]), (slice(None, None, 2), [0, 2]), (slice(None, None, -1), [2, 1, 0]),
    (slice(-2, 3), [1, 2]),
    ([2, 0], [2, 0]), ([1, 1, 0], [1, 1, 0]), ((0, 2), [0, 2]), (np.array([2, 1]), [2, 1]),
])
def test_slice_selection(multicoil, volume, slices, expected):
    _, _, kspace, reference = volume
    data = read_fastmri(multicoil, slices)
    np.testing.assert_array_equal(data.slices, expected)
    np.testing.assert_array_equal(data.kspace, kspace[expected])
    np.testing.assert_array_equal(data.reference, reference[expected])


def test_only_the_selected_slices_are_read(h5py, multicoil, monkeypatch):
    reads = []
    original = h5py.Dataset.__getitem__

    def recording(self, selection):
        reads.append((self.name, selection))
        return original(self, selection)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", recording)
    read_fastmri(multicoil, [2, 0])
    read_fastmri(multicoil, 1)
    kspace_reads = [selection for name, selection in reads if name == "/kspace"]
    assert kspace_reads == [[0, 2], slice(1, 2)]


def test_header_as_variable_length_string_and_without_namespace(h5py, tmp_path, volume):
    _, _, kspace, _ = volume
    path = tmp_path / "vlen.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("kspace", data=kspace)
        file.create_dataset("ismrmrd_header", data=header(rx=40).replace(' xmlns="http://www.ismrm.org/ISMRMRD"', ""),
                            dtype=h5py.string_dtype())
    data = read_fastmri(path)
    assert data.encoded_shape == (ROWS, COLUMNS) and data.recon_shape == (40, 32)
    assert data.reference is None


def test_kspace_in_another_axis_order_than_the_header_s_matrix_is_named(h5py, tmp_path, volume):
    """Coils stored last were read as rows, and the rows as columns, with no message (a 4 x 4 crop of nonsense)."""
    _, _, kspace, _ = volume
    path = write_file(h5py, tmp_path / "coils-last.h5", kspace.transpose(0, 2, 3, 1))
    with pytest.warns(UserWarning, match=rf"coils-last.h5: 'kspace' has {COLUMNS} rows and {COILS} columns, but "
                                         rf"the header's encoded matrix is {ROWS} x {COLUMNS}"):
        read_fastmri(path)


def test_single_coil_file(h5py, tmp_path):
    x = phantom_volume()
    kspace = fft2c(x).astype(np.complex64)  # (slices, rows, columns)
    reference = crop(np.abs(x), RECON).astype(np.float32)
    path = write_file(h5py, tmp_path / "single.h5", kspace, reference=reference, reference_name="reconstruction_esc")
    data = read_fastmri(path, [2, 0])
    assert data.kspace.shape == (2, 1, ROWS, COLUMNS)
    np.testing.assert_array_equal(data.kspace[:, 0], kspace[[2, 0]])
    np.testing.assert_array_equal(data.reference, reference[[2, 0]])
    zero_filled = zero_filled_rss(data.kspace, None, data.recon_shape)
    np.testing.assert_allclose(zero_filled, reference[[2, 0]], rtol=0, atol=1e-5 * x.max())
    # one coil: the operator is the plain masked centred FFT (map 1), no ESPIRiT
    mask = column_mask(data, 4, seed=1)
    H = slice_operator(data.kspace[0], mask)
    assert H.shape_in == (ROWS, COLUMNS) and H.shape_out == (1, ROWS, COLUMNS)
    np.testing.assert_allclose(H(x[2])[0], fft2c(x[2]) * mask, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------------- zero-filled baseline
@pytest.mark.parametrize("device", DEVICES)
def test_zero_filled_rss_matches_numpy(volume, device):
    _, _, kspace, _ = volume
    mask = cartesian_mask((COLUMNS,), 4, 0.08, seed=5)
    expected = crop(np.sqrt(np.sum(np.abs(ifft2c(kspace.astype(np.complex128) * mask)) ** 2, axis=1)), RECON)
    result = zero_filled_rss(adareg.to_device(kspace, device), adareg.to_device(mask, device), RECON)
    assert adareg.backend.device_of(result) == device
    result = adareg.to_numpy(result)
    assert result.shape == (SLICES, *RECON) and result.dtype == np.float32
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-5 * expected.max())
    # one slice (coils, rows, columns) gives one image
    np.testing.assert_allclose(zero_filled_rss(kspace[1], mask, RECON), expected[1], rtol=0,
                               atol=1e-5 * expected.max())


def test_full_mask_recovers_magnitude_times_coil_sensitivity(multicoil, volume):
    x, maps, _, _ = volume
    data = read_fastmri(multicoil)
    result = zero_filled_rss(data.kspace, np.ones(COLUMNS, dtype=bool), data.recon_shape)
    expected = crop(np.abs(x) * np.sqrt(np.sum(np.abs(maps) ** 2, axis=0)), RECON)
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-5 * x.max())
    np.testing.assert_allclose(result, data.reference, rtol=0, atol=1e-5 * x.max())  # fastMRI's reference


def test_flair_203_rule_crops_to_a_square_of_the_columns(volume):
    _, _, kspace, _ = volume
    narrow = kspace[..., 20:52]  # 32 columns; a recon width of 40 becomes (32, 32), as fastMRI's baseline does
    assert zero_filled_rss(narrow, None, (40, 40)).shape == (SLICES, 32, 32)
    # and so do the other reconstructions of the slice tasks (sense refused the crop before)
    full = tuple([True] * 32)
    for model in ("zero-filled", "sense"):
        wide = map_slices(FastMRIReconstruction(full, (40, 40), model), narrow, progress=False)
        square = map_slices(FastMRIReconstruction(full, (32, 32), model), narrow, progress=False)
        np.testing.assert_array_equal(wide, square, err_msg=model)


# ------------------------------------------------------------------------------------------------- masks
def test_file_mask_is_used(h5py, tmp_path, volume):
    _, _, kspace, _ = volume
    mask = cartesian_mask((COLUMNS,), 4, 0.08, seed=7)
    path = write_file(h5py, tmp_path / "test.h5", kspace * mask, mask=mask.astype(np.uint8))
    data = read_fastmri(path)
    assert data.mask.dtype == bool
    np.testing.assert_array_equal(data.mask, mask)
    np.testing.assert_array_equal(column_mask(data), mask)
    with pytest.raises(ValueError, match=f"^{path}: the file's k-space is already undersampled"):
        column_mask(data, 4)
    # the stored k-space is already zero-filled: no mask needed for the baseline
    np.testing.assert_allclose(zero_filled_rss(data.kspace, None, data.recon_shape),
                               zero_filled_rss(kspace, mask, RECON), rtol=1e-6, atol=0)


@pytest.mark.parametrize("acceleration, center_fraction, expected_fraction", [
    (4, None, 0.08), (8, None, 0.04), (2, None, 0.16), (4, 0.1, 0.1),
])
@pytest.mark.parametrize("kind", ["random", "equispaced"])
def test_column_mask_is_cartesian_mask(multicoil, acceleration, center_fraction, expected_fraction, kind):
    data = read_fastmri(multicoil, 0)
    mask = column_mask(data, acceleration, center_fraction, kind=kind, seed=11)
    assert mask.shape == (COLUMNS,) and mask.dtype == bool
    np.testing.assert_array_equal(mask, cartesian_mask((COLUMNS,), acceleration, expected_fraction, kind=kind,
                                                       seed=11))
    np.testing.assert_array_equal(column_mask(data, acceleration, center_fraction, kind=kind), column_mask(
        data, acceleration, center_fraction, kind=kind, seed=0))  # default seed 0: reproducible


def test_column_mask_errors(multicoil):
    data = read_fastmri(multicoil, 0)
    with pytest.raises(ValueError, match=f"^{multicoil}: the file has no 'mask'.*acceleration"):
        column_mask(data)
    with pytest.raises(ValueError, match="center_fraction is given without acceleration"):
        column_mask(data, center_fraction=0.08)
    with pytest.raises(ValueError, match="^column_mask: acceleration must be a finite number >= 1, got 0.5"):
        column_mask(data, 0.5)
    # the centre fraction the user did not give is named as the default (it read "cartesian_mask: center_fraction")
    with pytest.raises(ValueError, match=f"^{multicoil}: the default center_fraction at x64, 0.005, keeps no column "
                                         f"of {COLUMNS}: give a center_fraction"):
        column_mask(data, 64)


def test_calibration_width():
    mask = np.zeros(20, dtype=bool)
    mask[8:13] = True  # centre column 10
    assert calibration_width(mask) == 5
    mask[[0, 2, 15, 19]] = True
    assert calibration_width(mask) == 5
    mask[13] = True  # a random column next to the centre lengthens the run
    assert calibration_width(mask) == 6
    assert calibration_width(np.ones(9)) == 9
    mask[10] = False
    assert calibration_width(mask) == 0
    m = cartesian_mask((368,), 4, 0.08, seed=0)  # fastMRI knee width: round(368 * 0.08) = 29 central columns
    assert calibration_width(m) >= 29
    with pytest.raises(ValueError, match=r"calibration_width: mask must be a column mask of shape \(columns,\)"):
        calibration_width(np.ones((4, 4)))


# ---------------------------------------------------------------------------------------- ESPIRiT operator
def test_slice_operator_with_espirit_maps(sigpy, h5py, tmp_path):
    x = phantom_volume()
    maps = adareg.mri.birdcage_maps((ROWS, COLUMNS), 8)
    kspace = fft2c(maps[None] * x[:, None]).astype(np.complex64)
    path = write_file(h5py, tmp_path / "birdcage.h5", kspace)
    data = read_fastmri(path, 1)
    mask = column_mask(data, 2, seed=0)  # 0.16 * 72 = 12 central columns (ESPIRiT's kernel is 6 wide)
    assert calibration_width(mask) >= 12
    H = slice_operator(data.kspace[0], mask)
    assert H.shape_in == (ROWS, COLUMNS) and H.shape_out == (8, ROWS, COLUMNS) and not H.real
    y = kspace[1] * mask
    # ESPIRiT's maps equal the true ones up to a phase per pixel: S_true = S_est * r with
    # r = sum_c conj(S_est,c) S_true,c (|r| = 1 where sum |S|^2 = 1), so H(r x) is the data
    r = np.sum(np.conj(H.maps) * maps, axis=0)
    support = x[1] > 0
    assert np.abs(np.abs(r[support]) - 1).max() < 0.02
    assert np.linalg.norm(H(r * x[1]) - y) / np.linalg.norm(y) < 0.06
    # SENSE with the estimated maps recovers the magnitude of the image on its support
    result = adareg.mri.sense(H, y, lam=1e-4, max_iter=200)
    error = np.linalg.norm(np.abs(result.x)[support] - x[1][support]) / np.linalg.norm(x[1][support])
    assert error < 0.05


def test_real_slice_operator_puts_the_calibration_phase_into_the_maps(sigpy, h5py, tmp_path):
    x = phantom_volume()
    maps = adareg.mri.birdcage_maps((ROWS, COLUMNS), 8)
    kspace = fft2c(maps[None] * x[:, None]).astype(np.complex64)
    data = read_fastmri(write_file(h5py, tmp_path / "birdcage.h5", kspace), 1)
    mask = column_mask(data, 2, seed=0)
    H = slice_operator(data.kspace[0], mask, real=True)
    assert H.real and H.shape_in == (ROWS, COLUMNS)
    y = kspace[1] * mask
    # the real, nonnegative image itself explains the data: the maps carry its phase, estimated from
    # 12 central columns (the complex operator's ESPIRiT error is ~4%; the low-resolution phase adds ~3%)
    assert np.linalg.norm(H(x[1]) - y) / np.linalg.norm(y) < 0.1
    result = adareg.mri.sense(H, y, lam=1e-4, max_iter=200)
    support = x[1] > 0
    assert np.linalg.norm(result.x[support] - x[1][support]) / np.linalg.norm(x[1][support]) < 0.05


def test_an_empty_slice_is_refused_before_espirit(volume):
    _, _, kspace, _ = volume
    with pytest.raises(ValueError, match="all zero: no signal"):
        slice_operator(np.zeros_like(kspace[0]), np.ones(COLUMNS, dtype=bool))


def test_a_real_flag_that_is_not_a_bool_and_nan_k_space_are_refused(volume):
    """slice_operator(real="no") built the real-image operator; one NaN sample made zero_filled_rss all NaN."""
    _, _, kspace, _ = volume
    with pytest.raises(TypeError, match="^slice_operator: real must be True or False, got 'no'"):
        slice_operator(kspace[0], np.ones(COLUMNS, dtype=bool), real="no")
    bad = kspace.copy()
    bad[0, 0, 5, 3] = np.nan
    with pytest.raises(ValueError, match="^zero_filled_rss: kspace contains 1 NaN or Inf value"):
        zero_filled_rss(bad, None, RECON)


def test_a_single_coil_real_operator_needs_the_centre_sampled(volume):
    """A mask without the centre column failed as "CartesianMRI: mask samples nothing" (the phase's window)."""
    _, _, kspace, _ = volume
    mask = np.zeros(COLUMNS, dtype=bool)
    mask[::2] = True
    mask[COLUMNS // 2 - 1:COLUMNS // 2 + 1] = False
    with pytest.raises(ValueError, match="^slice_operator: real=True takes the image's phase from the fully sampled "
                                         f"columns centred on column {COLUMNS // 2}, which the mask does not sample"):
        slice_operator(kspace[0, :1], mask, real=True)
    assert slice_operator(kspace[0, :1], mask).shape_in == (ROWS, COLUMNS)


def test_a_single_coil_real_operator_takes_its_phase_from_the_calibration_width():
    """One coil ignored calib_width: the phase came from the whole sampled centre, any given width was taken."""
    rng = np.random.default_rng(3)
    x = adareg.data.shepp_logan((ROWS, COLUMNS))
    phase = np.exp(1j * (np.linspace(-2, 2, ROWS)[:, None] + np.linspace(-1, 3, COLUMNS)[None, :] ** 2))
    mask = np.zeros(COLUMNS, dtype=bool)
    mask[COLUMNS // 2 - 20:COLUMNS // 2 + 20] = True  # 40 central columns, beyond the default's 24
    mask[rng.permutation(COLUMNS)[:10]] = True
    kspace = (fft2c(phase * x) * mask)[None].astype(np.complex64)

    def expected(width):  # the phase of the image of the central width x width samples
        centre = np.zeros((ROWS, COLUMNS), dtype=bool)
        top, left = ROWS // 2 - width // 2, COLUMNS // 2 - width // 2
        centre[top:top + width, left:left + width] = True
        low = ifft2c(kspace[0] * centre)
        return fft2c(low / np.abs(low) * x) * mask

    for width, given in [(24, None), (8, 8), (40, 40)]:
        H = slice_operator(kspace, mask, calib_width=given, real=True)
        np.testing.assert_allclose(H(x)[0], expected(width), rtol=0, atol=1e-5 * np.abs(kspace).max())
    with pytest.raises(ValueError, match="^slice_operator: calib_width 41 reaches unsampled columns: only the "
                                         "central 40"):
        slice_operator(kspace, mask, calib_width=41, real=True)
    with pytest.raises(ValueError, match="^slice_operator: calib_width must be at least 1, got 0"):
        slice_operator(kspace, mask, calib_width=0, real=True)


def test_a_narrow_centre_gets_a_kernel_that_fits_it(sigpy):
    """With 10 central columns (fastMRI's x8 on a 250-column slice) ESPIRiT's kernel of 6 left the maps zero on 43 %
    of the object, and SENSE's images wrong there (relative error 3.3), without a word (an audit, 2026-12-07); against
    the true maps of a synthetic 8-coil slice, the estimate now covers the object."""
    from adareg.mri import birdcage_maps, espirit_maps
    from adareg.operators import CartesianMRI

    rows, columns = 48, 250
    maps = birdcage_maps((rows, columns), 8)
    y, x = np.mgrid[:rows, :columns]
    image = (((y - rows / 2) / (0.4 * rows)) ** 2 + ((x - columns / 2) / (0.35 * columns)) ** 2 < 1) * (
        1 + 0.5 * np.sin(x / 5.0))
    kspace = CartesianMRI(np.ones((rows, columns)), maps, real=False)(image.astype(complex)).astype(np.complex64)
    mask = np.zeros(columns, dtype=bool)
    mask[::8] = True  # x8, and the central 10 columns, columns // 2 - 5 onwards (119 and 130 are not sampled)
    mask[120:130] = True
    assert calibration_width(mask) == 10  # the premise
    estimated = slice_operator(kspace * mask, mask).maps
    inside = image > 0
    power = np.sum(np.abs(estimated) ** 2, axis=0)
    overlap = np.abs(np.sum(np.conj(estimated) * maps, axis=0))  # |<S_est, S_true>|: 1 where the phase alone differs
    assert power[inside].min() > 0.99 and overlap[inside].min() > 0.99
    with pytest.warns(UserWarning, match="espirit_maps: kernel_width 6 exceeds half of calib_width 10: the maps can "
                      "be zero over much of the object; take kernel_width at most 5"):
        narrow = espirit_maps(kspace * mask, calib_width=10, kernel_width=6)
    assert np.mean(np.sum(np.abs(narrow[:, inside]) ** 2, axis=0) < 0.5) > 0.2  # what the warning is about


def test_slice_operator_errors(sigpy, volume):
    _, _, kspace, _ = volume
    narrow = cartesian_mask((COLUMNS,), 8, 0.04, seed=0)  # round(0.04 * 72) = 3 central columns
    with pytest.raises(ValueError, match=r"has 3 columns \(of a sampled run of 3\), fewer than the 6 that "
                                         "ESPIRiT needs"):
        slice_operator(kspace[0], narrow)
    mask = cartesian_mask((COLUMNS,), 2, 0.16, seed=0)
    with pytest.raises(ValueError, match="calib_width 30 reaches unsampled columns"):
        slice_operator(kspace[0], mask, calib_width=30)
    with pytest.raises(ValueError, match="calib_width 4 is less than the 6 that ESPIRiT needs for coil maps"):
        slice_operator(kspace[0], mask, calib_width=4)
    with pytest.raises(ValueError, match="mask has 10 columns but kspace_slice has 72"):
        slice_operator(kspace[0], np.ones(10, dtype=bool))
    with pytest.raises(ValueError, match=r"kspace_slice must be complex of shape \(coils, rows, columns\)"):
        slice_operator(kspace, mask)


# ---------------------------------------------------------------------------------------- crop and rss
@pytest.mark.parametrize("device", DEVICES)
def test_center_crop_and_rss(device):
    rng = np.random.default_rng(0)
    images = rng.standard_normal((2, 3, 7, 10)) + 1j * rng.standard_normal((2, 3, 7, 10))
    a = adareg.to_device(images, device)
    cropped = adareg.to_numpy(center_crop(a, (4, 5)))
    np.testing.assert_array_equal(cropped, images[..., 1:5, 2:7])  # starts (7 - 4) // 2 = 1, (10 - 5) // 2 = 2
    np.testing.assert_array_equal(adareg.to_numpy(center_crop(a, (7, 10))), images)
    combined = adareg.to_numpy(rss(a))
    np.testing.assert_allclose(combined, np.sqrt((np.abs(images) ** 2).sum(axis=1)), rtol=1e-12)
    np.testing.assert_allclose(adareg.to_numpy(rss(a, axis=0)), np.sqrt((np.abs(images) ** 2).sum(axis=0)),
                               rtol=1e-12)
    assert rss(images.astype(np.complex64)).dtype == np.float32
    with pytest.raises(ValueError, match=r"center_crop: crop \(8, 5\) is larger than the images' \(7, 10\)"):
        center_crop(a, (8, 5))
    with pytest.raises(ValueError, match="center_crop: shape must be two positive ints"):
        center_crop(a, (0, 5))


@pytest.mark.parametrize("scale", [1e-23, 1.0, 1e20])
def test_rss_of_values_whose_squares_leave_the_precision_is_the_float64_one(scale):
    # complex64 coil images of 1e20 gave inf and of 1e-23 gave 0 (their squares over- and underflow float32), with
    # a NumPy RuntimeWarning only
    images = np.random.default_rng(4).standard_normal((8, 5, 6)) * (1 + 1j)
    expected = np.sqrt((np.abs(images) ** 2).sum(axis=0)) * scale
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        combined = rss((scale * images).astype(np.complex64))
    assert combined.dtype == np.float32
    np.testing.assert_allclose(combined, expected, rtol=1e-6)
    with pytest.raises(TypeError, match="rss: coil_images is a masked array"):
        rss(np.ma.masked_array(images))


# ------------------------------------------------------------------------------------------ bad files
def _bad_files(h5py, tmp_path, kspace):
    """(name, writer, slices, expected message after the path) for each malformed file."""
    mask = np.ones(COLUMNS, dtype=bool)
    return {
        "not hdf5": (lambda p: p.write_bytes(b"not an HDF5 file\n" * 20), None,
                     r"not an HDF5 file"),
        "truncated": (lambda p: (write_file(h5py, p, kspace), p.write_bytes(p.read_bytes()[:3000])), None,
                      r"unreadable"),
        "no kspace": (lambda p: write_file(h5py, p, None, mask=mask), None,
                      r"no 'kspace' dataset; the file holds: ismrmrd_header, mask"),
        "wrong rank": (lambda p: write_file(h5py, p, kspace[0, 0]), None,
                       r"'kspace' must have shape \(slices, coils, rows, columns\) or \(slices, rows, columns\), "
                       r"got \(96, 72\)"),
        "not complex": (lambda p: write_file(h5py, p, np.abs(kspace)), None,
                        r"'kspace' must be complex, got dtype float32"),
        "mask length": (lambda p: write_file(h5py, p, kspace, mask=np.ones(COLUMNS - 1, dtype=bool)), None,
                        r"'mask' must have shape \(columns,\) = \(72,\), got \(71,\)"),
        "no header": (lambda p: write_file(h5py, p, kspace, xml=False), None,
                      r"no 'ismrmrd_header' dataset"),
        "header element": (lambda p: write_file(h5py, p, kspace, xml=header(ry="")), None,
                           r"'ismrmrd_header' has no encoding/reconSpace/matrixSize/y element"),
        "header value": (lambda p: write_file(h5py, p, kspace, xml=header(rx="big")), None,
                         r"'ismrmrd_header' encoding/reconSpace/matrixSize/x is 'big', expected a positive integer"),
        "header xml": (lambda p: write_file(h5py, p, kspace, xml="<ismrmrdHeader><encoding>"), None,
                       r"'ismrmrd_header' is not valid XML"),
        "slice int": (lambda p: write_file(h5py, p, kspace), 3,
                      r"slice 3 out of range; the file has 3 slices \(0 to 2\)"),
        "slice list": (lambda p: write_file(h5py, p, kspace), [0, -4],
                       r"slice -4 out of range; the file has 3 slices"),
        "slice empty": (lambda p: write_file(h5py, p, kspace), slice(5, None),
                        r"slices slice\(5, None, None\) select none of the file's 3 slices"),
        "reference": (lambda p: write_file(h5py, p, kspace, reference=np.zeros((2, 32, 32))), None,
                      r"'reconstruction_rss' must be a real array of shape \(slices, h, w\) with 3 slices"),
        # a NaN gave a slice of NaN images, refused only by the writer at the end of a whole volume's run
        "not finite": (lambda p: write_file(h5py, p, _with(kspace, (1, 0, 5, 7), np.nan)), None,
                       r"'kspace' holds 1 NaN or Inf value \(in slice 1\); expected finite values"),
        "not finite, selected": (lambda p: write_file(h5py, p, _with(_with(kspace, (0, 1, 0, 0), np.inf),
                                                                     (2, 0, 3, 3), np.nan)), [2, 1, 0],
                                 r"'kspace' holds 2 NaN or Inf values \(in slices 2, 0\)"),
        # a finite value beyond complex64's range was named NaN or Inf, with NumPy's overflow warning
        "beyond complex64": (lambda p: write_file(h5py, p, _with(kspace.astype(np.complex128), (1, 0, 5, 7), 1e300)),
                             None, r"'kspace' holds 1 value beyond complex64's range \(in slice 1\)"),
        # a float bound was left to NumPy ("slice indices must be integers"), a bool taken as 0 or 1
        "slice bounds": (lambda p: write_file(h5py, p, kspace), slice(1.5, 3),
                         r"slices slice\(1.5, 3, None\) must have int \(or None\) bounds and a non-zero int step"),
        "slice bool": (lambda p: write_file(h5py, p, kspace), slice(True, 3),
                       r"slices slice\(True, 3, None\) must have int \(or None\) bounds"),
    }


def _with(kspace, index, value):
    """A copy of ``kspace`` with ``value`` at ``index``."""
    changed = kspace.copy()
    changed[index] = value
    return changed


BAD = ["not hdf5", "truncated", "no kspace", "wrong rank", "not complex", "mask length", "no header",
       "header element", "header value", "header xml", "slice int", "slice list", "slice empty", "reference",
       "not finite", "not finite, selected", "beyond complex64", "slice bounds", "slice bool"]


@pytest.mark.parametrize("case", BAD)
def test_malformed_files_give_one_line_naming_the_file(h5py, tmp_path, volume, case):
    writer, slices, message = _bad_files(h5py, tmp_path, volume[2])[case]
    path = tmp_path / "bad.h5"
    writer(path)
    with pytest.raises(ValueError) as info:
        read_fastmri(path, slices)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: ")
    assert re.search(message, text), text


def test_other_read_errors(h5py, tmp_path, multicoil):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_fastmri(tmp_path / "missing.h5")
    with pytest.raises(TypeError, match="slice indices must be ints"):
        read_fastmri(multicoil, [0.5])
    with pytest.raises(TypeError, match="slices must be None, an int, a slice or a sequence of ints"):
        read_fastmri(multicoil, "0")


def test_missing_h5py_gives_an_install_hint(monkeypatch, tmp_path):
    path = tmp_path / "file.h5"
    path.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"fastmri files needs h5py: pip install adareg\[io\]"):
        read_fastmri(path)


def test_module_is_documented():
    assert "rows" in fastmri.__doc__ and "readout" in fastmri.__doc__


def test_a_lopsided_calibration_run_is_named_by_its_centred_window():
    """Columns 20-25 are sampled around the centre 24, but ESPIRiT's centred window is 22-25 (4 columns); the
    error said "has 6 columns, fewer than the 6"."""
    mask = np.zeros(48, dtype=bool)
    mask[[2, 3, 11, 13, 15, 20, 21, 22, 23, 24, 25, 32]] = True
    kspace = np.random.default_rng(0).standard_normal((2, 16, 48)) * (1 + 0j)
    with pytest.raises(ValueError, match=r"window centred on column 24 has 4 columns \(of a sampled run of 6\), "
                                         "fewer than the 6"):
        slice_operator(kspace, mask)
