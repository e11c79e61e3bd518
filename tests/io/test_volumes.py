"""adareg.io.volumes: NPY volumes in the image convention, and values read as stored (sinograms).

* NPY volumes: uint8/uint16 divided by hand by 255/65535, signed integers and bool
  refused naming the file, float volumes on another scale warned about, as 2D images
  are; ``adareg denoise`` of a uint8 ``.npy`` volume is not clipped to white.
* ``as_stored=True``: TIFF and NPY values unscaled, compared with the raw arrays written;
  ``adareg ct`` reconstructs a uint16 sinogram stack alike from TIFF and NPY, as the FBP
  of the raw values computed here.
* A uint8/uint16 NPY stack written as TIFF keeps its bit depth (read back with tifffile);
  empty volumes and values beyond float32's range are refused naming the file, and empty
  data before anything is written.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from adareg import cli
from adareg.io import IntensityWarning
from adareg.io.volumes import Volume, intensity_window, read_volume, write_volume

tifffile = pytest.importorskip("tifffile", reason="tifffile is not installed (pip install adareg[io])")


@pytest.mark.parametrize("dtype, top", [(np.uint8, 255), (np.uint16, 65535)])
def test_unsigned_npy_volumes_are_scaled_by_their_range(tmp_path, dtype, top):
    stored = np.random.default_rng(0).integers(0, top, (3, 5, 4), endpoint=True).astype(dtype)
    np.save(tmp_path / "v.npy", stored)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        volume = read_volume(tmp_path / "v.npy")
    np.testing.assert_allclose(volume.data, stored.astype(np.float64) / top, rtol=1e-6)
    assert intensity_window(volume) == (0.0, 1.0)


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_the_window_of_values_read_as_stored_is_their_range(tmp_path, suffix):
    """It was (0, 1), as for intensities, though the values as stored are not."""
    stored = np.random.default_rng(0).integers(11, 4085, (2, 8, 8)).astype(np.uint16)
    path = tmp_path / f"v{suffix}"
    np.save(path, stored) if suffix == ".npy" else tifffile.imwrite(path, stored)
    assert intensity_window(read_volume(path, as_stored=True)) == (float(stored.min()), float(stored.max()))
    with pytest.warns(IntensityWarning, match="12-bit data stored in 16 bits"):  # values below 4096 as intensities
        assert intensity_window(read_volume(path)) == (0.0, 1.0)


def test_a_window_set_by_a_few_values_warns():
    # one bright voxel made [min, max] five times the data's range: the model saw the other slices in a fifth of
    # its grey levels at a mismatched noise level (slice 1 of three fell from 27.4 to 17.1 dB), without a word
    rng = np.random.default_rng(0)
    data = np.clip(np.kron(rng.random((3, 4, 4)), np.ones((1, 16, 16))) + 0.05 * rng.standard_normal((3, 64, 64)),
                   0, 1).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert intensity_window(Volume(data, "nifti")) == (float(data.min()), float(data.max()))
        # a CT volume's air, soft tissue and bone (HU) fill their window: no warning either
        ct = np.select([data < 0.3, data < 0.8], [-1000.0, 40.0], 1200.0).astype(np.float32)
        assert intensity_window(Volume(ct, "dicom")) == (-1000.0, 1200.0)
        assert intensity_window(Volume(np.full((2, 4, 4), 7.0, np.float32), "nifti")) == (7.0, 8.0)
    data[0, 3, 5] = 5.0
    with pytest.warns(IntensityWarning, match=r"a few values set the nifti volume's range \[0, 5\].* 99\.9 % of the "
                                              r"values lie in \[0, 1\], 20\.0% of it"):
        assert intensity_window(Volume(data, "nifti")) == (0.0, 5.0)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint32, bool])
def test_other_integer_npy_volumes_are_refused(tmp_path, dtype):
    path = tmp_path / "v.npy"
    np.save(path, np.ones((2, 3, 3), dtype=dtype))
    with pytest.raises(ValueError, match=rf"^{path}: pixels of type \w+ have no intensity convention.*uint8"):
        read_volume(path)


@pytest.mark.parametrize("channels, kind", [(1, "an image with a channel axis"), (2, "an image with a channel axis"),
                                            (3, "a colour image"), (4, "a colour image")])
def test_an_npy_image_with_channels_is_refused_rather_than_read_as_slices(tmp_path, channels, kind):
    # (32, 32, 3) was read as 32 slices of 32 x 3 pixels: TV "denoised" it without a word; (32, 32, 1) and grey
    # + alpha likewise, until later
    path = tmp_path / "rgb.npy"
    np.save(path, np.random.default_rng(0).random((32, 32, channels)))
    with pytest.raises(ValueError, match=rf"rgb.npy: shape \(32, 32, {channels}\) looks like {kind}"):
        read_volume(path)
    output = tmp_path / "out.npy"
    assert cli.main(["denoise", str(path), "--sigma", "25", "--model", "tv", "--quiet", "-o", str(output)]) != 0
    assert not output.exists()
    np.save(path, np.random.default_rng(0).random((3, 32, 32)))  # three slices of 32 x 32: a volume
    assert read_volume(path).data.shape == (3, 32, 32)


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_float_volumes_on_another_scale_warn_at_the_callers_line(tmp_path, suffix):
    import tifffile

    path = tmp_path / f"v{suffix}"
    data = np.arange(2 * 8 * 8).reshape(2, 8, 8) % 256 * 1.0
    if suffix == ".npy":
        np.save(path, data)
    else:
        tifffile.imwrite(path, data.astype(np.float32), photometric="minisblack")
    with pytest.warns(IntensityWarning, match=f"{path}: .*divide by 255") as record:
        read_volume(path)
    assert [w.filename for w in record] == [__file__]  # (it pointed at adareg/io/volumes.py)


def test_denoising_a_uint8_npy_volume_keeps_its_values(tmp_path):
    stored = np.kron(np.random.default_rng(1).integers(40, 215, (3, 4, 4)), np.ones((1, 6, 6))).astype(np.uint8)
    np.save(tmp_path / "v.npy", stored)
    status = cli.main(["denoise", str(tmp_path / "v.npy"), "--sigma", "10", "--model", "tv", "--quiet", "-o",
                       str(tmp_path / "out.npy")])
    assert status == 0
    result = np.load(tmp_path / "out.npy")
    # TV keeps piecewise constant blocks but for a contrast loss of about lam per edge: far below 0.1
    np.testing.assert_allclose(result, stored / 255.0, atol=0.1)


def _sinograms(tmp_path) -> np.ndarray:
    """A uint16 stack of sinograms over most of the type's range, written as TIFF and as NPY."""
    from adareg.operators import RayTransform

    H = RayTransform((16, 16), 12)
    disc = (np.hypot(*np.mgrid[-7.5:8.5, -7.5:8.5]) < 6).astype(np.float32)
    line_integrals = np.stack([H(disc), H(0.5 * disc)])
    stored = np.round(line_integrals / line_integrals.max() * 60000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "sino.tif", stored, photometric="minisblack")
    np.save(tmp_path / "sino.npy", stored)
    return stored


def test_values_as_stored_are_not_scaled(tmp_path):
    stored = _sinograms(tmp_path)
    for name in ("sino.tif", "sino.npy"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            volume = read_volume(tmp_path / name, as_stored=True)
        np.testing.assert_array_equal(volume.data, stored.astype(np.float32), err_msg=name)
    assert read_volume(tmp_path / "sino.tif", as_stored=True).metadata == {"bits": None, "as_stored": True}
    np.testing.assert_allclose(read_volume(tmp_path / "sino.tif").data, stored / 65535.0, rtol=1e-6)


def test_ct_reconstructs_a_uint16_sinogram_stack_alike_from_tiff_and_npy(tmp_path):
    from adareg.ct import fbp
    from adareg.operators import RayTransform

    stored = _sinograms(tmp_path)
    for name in ("sino.tif", "sino.npy"):
        status = cli.main(["ct", str(tmp_path / name), "--angles", "12", "--image-size", "16", "--quiet", "-o",
                           str(tmp_path / f"{name}.out.npy")])
        assert status == 0, name
    H = RayTransform((16, 16), 12, detector_count=stored.shape[-1])
    expected = np.stack([fbp(H, s.astype(np.float32), window="hann") for s in stored])
    for name in ("sino.tif", "sino.npy"):
        result = np.load(tmp_path / f"{name}.out.npy")
        np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max(), err_msg=name)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_an_integer_npy_stack_written_as_tiff_keeps_its_bit_depth(tmp_path, dtype):
    stored = np.random.default_rng(2).integers(0, np.iinfo(dtype).max, (3, 4, 5), endpoint=True).astype(dtype)
    np.save(tmp_path / "in.npy", stored)
    volume = read_volume(tmp_path / "in.npy")
    write_volume(tmp_path / "out.tif", volume.data, like=volume)
    written = tifffile.imread(tmp_path / "out.tif")
    assert written.dtype == dtype
    np.testing.assert_array_equal(written, stored)


def test_float_and_as_stored_npy_stacks_are_written_as_float_tiff(tmp_path):
    np.save(tmp_path / "float.npy", np.full((2, 3, 4), 0.25))
    np.save(tmp_path / "sino.npy", np.full((2, 3, 4), 60000, np.uint16))
    for name, as_stored in (("float.npy", False), ("sino.npy", True)):
        volume = read_volume(tmp_path / name, as_stored=as_stored)
        write_volume(tmp_path / "out.tif", volume.data, like=volume)
        written = tifffile.imread(tmp_path / "out.tif")
        assert written.dtype == np.float32, name
        np.testing.assert_array_equal(written, volume.data, err_msg=name)


@pytest.mark.parametrize("dtype", [np.uint16, np.int64, bool, np.float64])
def test_npy_and_tiff_outputs_hold_the_same_values(tmp_path, dtype):
    # an integer array went to .npy as stored, so uint16 1000 read back as 1000 / 65535 where .tif gave 1000
    data = (np.arange(2 * 3 * 4).reshape(2, 3, 4) % 2 * 1000).astype(dtype)
    for name in ("out.npy", "out.tif"):
        write_volume(tmp_path / name, data)
    stored = np.load(tmp_path / "out.npy")
    assert stored.dtype == np.float32
    np.testing.assert_array_equal(stored, data.astype(np.float64))
    np.testing.assert_array_equal(stored, tifffile.imread(tmp_path / "out.tif"))


def test_outputs_that_are_no_volume_are_named_as_outputs(tmp_path):
    # "out.png: not a volume file; adareg reads .dcm, ... files" spoke of reading, and listed .dcm, which is
    # refused as an output; an existing folder named out.series was told that DICOM outputs are folders
    with pytest.raises(ValueError, match=r"out.png: not a volume output; adareg writes a volume to a \.nii, "
                                         r"\.nii\.gz, \.tif, \.tiff, \.npy file or a DICOM folder"):
        write_volume(tmp_path / "out.png", np.zeros((2, 4, 4)))
    (tmp_path / "out.series").mkdir()
    with pytest.raises(ValueError, match=r"out.series: a DICOM output folder's name has no suffix \(this one ends "
                                         r"in '.series'\)"):
        write_volume(tmp_path / "out.series", np.zeros((2, 4, 4)))
    assert not (tmp_path / "out.png").exists() and not any((tmp_path / "out.series").iterdir())


def test_npy_outputs_beyond_float32_are_refused(tmp_path):
    # written before, but refused by read_volume, as TIFF and NIfTI outputs are refused
    with pytest.raises(ValueError, match=r"write_volume: .*out.npy: the data to write contains 1 value beyond float32"):
        write_volume(tmp_path / "out.npy", np.array([[[0.5, 1e39]]]))
    assert not (tmp_path / "out.npy").exists()


@pytest.mark.parametrize("shape", [(0, 4, 4), (2, 0, 4), (2, 4, 0), (0, 4)])
def test_empty_npy_volumes_are_refused_naming_the_file(tmp_path, shape):
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match=r"non-empty volume, got shape \(\d, \d, \d\)") as info:
        read_volume(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".nii", ".nii.gz"])
def test_empty_data_are_refused_before_writing(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    with pytest.raises(ValueError, match=rf"^write_volume: {path}: expected non-empty data, got shape \(0, 4, 4\)"):
        write_volume(path, np.zeros((0, 4, 4), np.float32))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".nii", ".nii.gz"])
def test_complex_data_are_refused_before_writing(tmp_path, suffix):
    """A cast to float would keep the real part only (NumPy's ComplexWarning at most); no reader takes them back."""
    path = tmp_path / f"out{suffix}"
    with pytest.raises(TypeError, match=rf"^write_volume: {path}: expected real data, got dtype complex64"):
        write_volume(path, np.full((2, 4, 4), 1 + 1j, np.complex64))
    assert list(tmp_path.iterdir()) == []


def test_a_volume_for_data_is_named(tmp_path):
    """It was refused as data "of shape ()" (an audit, 2026-12-06)."""
    np.save(tmp_path / "in.npy", np.zeros((2, 4, 4), np.float32))
    volume = read_volume(tmp_path / "in.npy")
    with pytest.raises(TypeError, match=r"^write_volume: data is a Volume; pass its slices, volume\.data"):
        write_volume(tmp_path / "out.npy", volume, like=volume)


@pytest.mark.parametrize("shape", [(6, 8, 3), (9, 9, 1)])
def test_npy_slices_that_would_read_back_as_channels_are_refused(tmp_path, shape):
    """Written, then refused by read_volume as an image with channels (an audit, 2026-12-06); as TIFF they read
    back."""
    data = np.random.default_rng(2).random(shape).astype(np.float32)
    with pytest.raises(ValueError, match=r"would read back from \.npy as an image with channels"):
        write_volume(tmp_path / "out.npy", data)
    assert not (tmp_path / "out.npy").exists()
    write_volume(tmp_path / "out.tif", data)
    np.testing.assert_allclose(read_volume(tmp_path / "out.tif").data, data, atol=1e-7)


def test_npy_values_beyond_float32_are_refused_not_read_as_inf(tmp_path):
    path = tmp_path / "big.npy"
    np.save(path, np.array([[[0.5, 1e300], [-1e39, 0.25]]]))
    for as_stored in (False, True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IntensityWarning)
            warnings.simplefilter("error", RuntimeWarning)  # no overflow in a cast either
            with pytest.raises(ValueError, match=rf"^{path} contains 2 values beyond float32's range"):
                read_volume(path, as_stored=as_stored)


@pytest.mark.parametrize("like", ["in.npy", {"bits": 8}, np.zeros((1, 2, 2))])
def test_like_must_be_a_volume_not_a_path_or_its_metadata(tmp_path, like):
    # a path has a .format method, so a str like was silently not matched: a TIFF lost its bit depth
    np.save(tmp_path / "in.npy", np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(TypeError, match=rf"^like must be the Volume .* or None, got {type(like).__name__}$"):
        write_volume(tmp_path / "out.tif", np.zeros((1, 2, 2)), like=like)
    with pytest.raises(TypeError, match="^write_volume: description must be a str, got NoneType$"):
        write_volume(tmp_path / "out.tif", np.zeros((1, 2, 2)), description=None)
    assert not (tmp_path / "out.tif").exists()


def test_a_non_bool_as_stored_is_refused(tmp_path):
    np.save(tmp_path / "u8.npy", np.full((1, 2, 2), 255, np.uint8))
    with pytest.raises(TypeError, match=r"^read_volume: as_stored must be True or False, got 'no' \(str\)$"):
        read_volume(tmp_path / "u8.npy", as_stored="no")


def test_an_integer_tiff_output_takes_float_intensities_and_warns_where_it_clips(tmp_path):
    np.save(tmp_path / "in.npy", np.zeros((2, 3, 4), np.uint8))
    volume = read_volume(tmp_path / "in.npy")  # 8 bits: [0, 1] intensities written as uint8
    with pytest.raises(ValueError, match=r"out.tif: a 8-bit TIFF is written from float intensities in \[0, 1\], got "
                                         r"uint8 data \(divide 8-bit integers by 255"):
        write_volume(tmp_path / "out.tif", np.full((2, 3, 4), 200, np.uint8), like=volume)
    with pytest.warns(IntensityWarning, match=r"out.tif: 24 of 24 values lie outside \[-0.5, 1.5\] and are clipped") \
            as record:
        write_volume(tmp_path / "out.tif", np.full((2, 3, 4), 200.0), like=volume)  # a 0-255 volume saturates
    assert len(record) == 1  # told once: not also as values clipped by more than a grey level
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), 255)
    ramp = np.linspace(-0.05, 1.05, 24).reshape(2, 3, 4)  # 2 values clipped by more than a grey level
    with pytest.warns(IntensityWarning, match=r"out.tif: 2 of 24 values lie beyond \[0, 1\] by more than one grey "
                                              r"level \(1/255\) and are clipped to \[0, 1\] for the 8-bit output"):
        write_volume(tmp_path / "out.tif", ramp, like=volume)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), np.round(np.clip(ramp, 0, 1) * 255))
    with warnings.catch_warnings():
        warnings.simplefilter("error", IntensityWarning)  # an overshoot within a grey level is clipped without a word
        write_volume(tmp_path / "out.tif", np.linspace(-0.9 / 255, 1 + 0.9 / 255, 24).reshape(2, 3, 4), like=volume)
