"""adareg.io.nifti through read_volume/write_volume, checked against nibabel's own reading.

* Reading: values (the header's scaling applied) and orientation against nibabel's
  array transposed by hand; the convention on a hand-built array (voxel (i, j, k) is
  data[k, j, i]); 2D and one-volume 4D files; NIfTI-2.
* Refusals in one line naming the file: several volumes, 5D, truncated or corrupt files,
  complex and RGB data, NaN, an empty volume.
* Writing: ``.nii`` and ``.nii.gz`` keep the affine, pixdim, qform/sform codes, units,
  intent and get ``descrip``; float32 without scaling; a fresh header without ``like``;
  values beyond float32's range refused.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from adareg.io.volumes import read_volume, write_volume

nibabel = pytest.importorskip("nibabel", reason="nibabel is not installed (pip install adareg[io])")
from nibabel.testing import data_path  # noqa: E402

DATA = Path(data_path)


def _expected(image) -> np.ndarray:
    """nibabel's scaled voxels (i, j, k) as adareg's (k, j, i), element by element."""
    voxels = np.asarray(image.dataobj, dtype=np.float64)
    expected = np.empty(voxels.shape[::-1])
    for i, j, k in np.ndindex(voxels.shape):
        expected[k, j, i] = voxels[i, j, k]
    return expected


def _file_header(path: Path):
    """The header as stored in the file (nibabel.load moves the scaling out of the header it returns)."""
    with (gzip.open if path.name.endswith(".gz") else open)(path, "rb") as file:
        return nibabel.Nifti1Header.from_fileobj(file)


def _refusal(path: Path, match: str) -> str:
    with pytest.raises(ValueError, match=match) as info:
        read_volume(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


def _oblique_image(kind=None, dtype=np.int16):
    """An image with a rotated, shifted affine, distinct zooms, codes, units, intent and scaling (2, -100)."""
    kind = kind or nibabel.Nifti1Image
    rng = np.random.default_rng(0)
    voxels = rng.integers(0, 1000, size=(6, 5, 4)).astype(dtype)
    c, s = np.cos(0.3), np.sin(0.3)
    affine = np.array([[0.5 * c, -0.7 * s, 0, 10], [0.5 * s, 0.7 * c, 0, -20], [0, 0, 2.0, 5], [0, 0, 0, 1]])
    image = kind(voxels, affine)
    image.header.set_qform(affine, code=1)
    image.header.set_sform(affine, code=4)
    image.header.set_xyzt_units("mm", "sec")
    image.header.set_intent("estimate", name="recon")
    image.header.set_slope_inter(2.0, -100.0)
    return image


# ---------------------------------------------------------------------------------------------- reading


def test_anatomical_values_and_orientation():
    path = DATA / "anatomical.nii"
    image = nibabel.load(path)
    volume = read_volume(path)
    assert volume.format == "nifti" and volume.data.dtype == np.float32 and volume.data.flags.c_contiguous
    assert volume.data.shape == (25, 41, 33)
    np.testing.assert_array_equal(volume.data, _expected(image))
    assert volume.metadata["affine"].dtype == np.float64
    np.testing.assert_array_equal(volume.metadata["affine"], image.affine)
    assert volume.metadata["header"]["descrip"] == image.header["descrip"]


def test_convention_on_a_hand_built_array(tmp_path):
    voxels = np.array([[[100 * i + 10 * j + k for k in range(4)] for j in range(3)] for i in range(2)], np.float32)
    nibabel.save(nibabel.Nifti1Image(voxels, np.eye(4)), tmp_path / "v.nii")
    data = read_volume(tmp_path / "v.nii").data
    assert data.shape == (4, 3, 2)
    for i, j, k in np.ndindex(2, 3, 4):
        assert data[k, j, i] == 100 * i + 10 * j + k


def test_2d_is_one_slice_and_4d_of_one_volume_is_read(tmp_path):
    plane = np.arange(6, dtype=np.float32).reshape(2, 3)  # (i, j)
    nibabel.save(nibabel.Nifti1Image(plane, np.eye(4)), tmp_path / "plane.nii")
    np.testing.assert_array_equal(read_volume(tmp_path / "plane.nii").data, [[[0, 3], [1, 4], [2, 5]]])
    one = np.arange(24, dtype=np.float32).reshape(2, 3, 4, 1)
    nibabel.save(nibabel.Nifti1Image(one, np.eye(4)), tmp_path / "one.nii.gz")
    assert read_volume(tmp_path / "one.nii.gz").data.shape == (4, 3, 2)
    assert read_volume(tmp_path / "one.nii.gz").data[3, 2, 1] == one[1, 2, 3, 0]


def test_nifti2_is_read_and_written_back_as_nifti2(tmp_path):
    series = nibabel.load(DATA / "example_nifti2.nii.gz")
    first = series.slicer[..., 0]
    nibabel.save(first, tmp_path / "first.nii.gz")
    volume = read_volume(tmp_path / "first.nii.gz")
    np.testing.assert_array_equal(volume.data, _expected(nibabel.load(tmp_path / "first.nii.gz")))
    assert isinstance(volume.metadata["header"], nibabel.Nifti2Header)
    write_volume(tmp_path / "out.nii.gz", volume.data, like=volume)
    written = nibabel.load(tmp_path / "out.nii.gz")
    assert type(written) is nibabel.Nifti2Image and int(written.header["sizeof_hdr"]) == 540
    np.testing.assert_allclose(written.affine, series.affine)


@pytest.mark.parametrize("name", ["a.Nii", "b.Nii.gz", "c.nIi", "d.NII.GZ", "e.nii.Gz"])
@pytest.mark.parametrize("kind", ["Nifti1Image", "Nifti2Image"])
def test_suffixes_in_any_case_are_written_and_read(tmp_path, name, kind):
    # nibabel derives the file it writes or reads from a mixed-case suffix (a.Nii -> a.nii): the output was
    # left empty beside a hidden temporary holding the data, and reading looked for another file
    data = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    like = tmp_path / "like.nii"
    nibabel.save(getattr(nibabel, kind)(np.zeros((4, 3, 2), np.float32), np.diag([2.0, 3.0, 4.0, 1.0])), like)
    write_volume(tmp_path / name, data, like=read_volume(like))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["like.nii", name])
    compressed = name.lower().endswith(".gz")
    with (gzip.open if compressed else open)(tmp_path / name, "rb") as file:  # the bytes, read without nibabel
        header = np.frombuffer(file.read(4), "<i4")[0]
    assert header == (540 if kind == "Nifti2Image" else 348)
    volume = read_volume(tmp_path / name)
    np.testing.assert_array_equal(volume.data, data)
    np.testing.assert_array_equal(volume.metadata["affine"], np.diag([2.0, 3.0, 4.0, 1.0]))


def test_scaled_integers_are_read_as_scaled_values(tmp_path):
    stored = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    image = nibabel.Nifti1Image(stored, np.eye(4))
    image.header.set_data_dtype(np.int16)
    image.header.set_slope_inter(2.0, -100.0)
    nibabel.save(image, tmp_path / "scaled.nii")
    header = _file_header(tmp_path / "scaled.nii")
    assert (float(header["scl_slope"]), float(header["scl_inter"])) == (2.0, -100.0)
    # the file holds the integers unscaled
    np.testing.assert_array_equal(nibabel.load(tmp_path / "scaled.nii").dataobj.get_unscaled(), stored)
    data = read_volume(tmp_path / "scaled.nii").data
    assert data[3, 2, 1] == 2 * stored[1, 2, 3] - 100
    np.testing.assert_array_equal(data, 2.0 * stored.transpose(2, 1, 0) - 100)


# ---------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("name, count", [("example4d.nii.gz", 2), ("functional.nii", 20)])
def test_a_series_of_volumes_is_refused(name, count):
    message = _refusal(DATA / name, f"series of {count} volumes")
    assert "adareg reads one 2D or 3D volume" in message


def test_5d_is_refused(tmp_path):
    nibabel.save(nibabel.Nifti1Image(np.zeros((2, 3, 4, 1, 2), np.float32), np.eye(4)), tmp_path / "five.nii")
    _refusal(tmp_path / "five.nii", r"shape \(2, 3, 4, 1, 2\) are 5D data")


def test_one_volume_with_trailing_axes_of_length_one_is_read_and_1d_is_named(tmp_path):
    """A (2, 3, 4, 1, 1) file, one volume, was refused as 5D data; a 1D file got the advice to slice a series."""
    voxels = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    nibabel.save(nibabel.Nifti1Image(voxels[..., None, None], np.eye(4)), tmp_path / "one.nii")
    np.testing.assert_array_equal(read_volume(tmp_path / "one.nii").data, voxels.transpose(2, 1, 0))
    nibabel.save(nibabel.Nifti1Image(np.zeros(5, np.float32), np.eye(4)), tmp_path / "line.nii")
    message = _refusal(tmp_path / "line.nii", r"NIfTI data of shape \(5,\) are 1D data; adareg reads one 2D or 3D "
                                              "volume")
    assert "slicer" not in message


@pytest.mark.parametrize("keep", [100, 1000])  # a cut header, cut data
def test_truncated_nii_is_refused(tmp_path, keep):
    path = tmp_path / "cut.nii"
    path.write_bytes((DATA / "anatomical.nii").read_bytes()[:keep])
    _refusal(path, "NIfTI")


def test_truncated_nii_gz_is_refused(tmp_path):
    nibabel.save(nibabel.load(DATA / "anatomical.nii"), tmp_path / "whole.nii.gz")
    path = tmp_path / "cut.nii.gz"
    path.write_bytes((tmp_path / "whole.nii.gz").read_bytes()[:2000])
    _refusal(path, "unreadable NIfTI data")


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_a_pair_header_or_a_voxel_offset_of_zero_is_refused(tmp_path, suffix):
    """Both were read from byte 0: the header's own bytes came back as voxels, the voxels shifted."""
    single = tmp_path / "single.nii"
    nibabel.save(nibabel.Nifti1Image(np.arange(1, 25, dtype=np.float32).reshape(2, 3, 4), np.eye(4)), single)
    stored = bytearray(single.read_bytes())
    stored[108:112] = np.float32(0).tobytes()  # vox_offset
    zero, pair = tmp_path / f"zero{suffix}", tmp_path / f"pair{suffix}"
    write = gzip.compress if suffix == ".nii.gz" else bytes
    zero.write_bytes(write(bytes(stored)))
    _refusal(zero, "the NIfTI header's vox_offset is 0: the standard places the voxels at byte 352")
    stored[344:348] = b"ni1\0"  # magic
    pair.write_bytes(write(bytes(stored)))
    _refusal(pair, r"the header of a NIfTI .hdr/.img pair \(magic 'ni1'\)")


def test_not_a_nifti_file_is_refused(tmp_path):
    path = tmp_path / "junk.nii"
    path.write_bytes(b"not a NIfTI header " * 40)
    _refusal(path, "not a readable NIfTI file")


def test_complex_and_rgb_are_refused(tmp_path):
    nibabel.save(nibabel.Nifti1Image(np.ones((2, 3, 4), np.complex64), np.eye(4)), tmp_path / "complex.nii")
    _refusal(tmp_path / "complex.nii", "complex")
    rgb = np.zeros((2, 3, 4), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    nibabel.save(nibabel.Nifti1Image(rgb, np.eye(4)), tmp_path / "rgb.nii")
    _refusal(tmp_path / "rgb.nii", "RGB")


def test_nan_and_inf_are_refused_with_their_count(tmp_path):
    voxels = np.zeros((2, 3, 4), np.float32)
    voxels[0, 0, :2] = np.nan
    voxels[1, 2, 3] = np.inf
    nibabel.save(nibabel.Nifti1Image(voxels, np.eye(4)), tmp_path / "nan.nii")
    _refusal(tmp_path / "nan.nii", "3 NaN or Inf values")


def test_values_beyond_float32_are_named_as_such(tmp_path):
    voxels = np.zeros((2, 3, 4), np.int16)
    voxels[0, 0, :2] = 10
    image = nibabel.Nifti1Image(voxels, np.eye(4))
    image.header.set_slope_inter(1e38, 0.0)  # 1e39: finite, beyond float32 (named "NaN or Inf" before)
    nibabel.save(image, tmp_path / "big.nii")
    _refusal(tmp_path / "big.nii", "2 values beyond float32's range")


# ---------------------------------------------------------------------------------------------- writing


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_round_trip_keeps_geometry_and_header(tmp_path, suffix):
    source = _oblique_image()
    nibabel.save(source, tmp_path / f"in{suffix}")
    assert float(_file_header(tmp_path / f"in{suffix}")["scl_slope"]) == 2.0
    volume = read_volume(tmp_path / f"in{suffix}")
    result = volume.data * 0.5 + 0.25
    write_volume(tmp_path / f"out{suffix}", result, like=volume, description="adareg sa-cnn, sigma 10/255")

    assert ((tmp_path / f"out{suffix}").read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".nii.gz")
    written = nibabel.load(tmp_path / f"out{suffix}")
    header = written.header
    np.testing.assert_allclose(written.affine, source.affine, atol=1e-6)
    np.testing.assert_allclose(header.get_sform(), source.affine, atol=1e-6)
    np.testing.assert_allclose(header.get_qform(), source.affine, atol=1e-5)
    assert (int(header["qform_code"]), int(header["sform_code"])) == (1, 4)
    np.testing.assert_allclose(header.get_zooms(), (0.5, 0.7, 2.0), rtol=1e-6)
    assert header.get_xyzt_units() == ("mm", "sec")
    assert header.get_intent() == ("estimate", (), "recon")
    assert header["descrip"].item() == b"adareg sa-cnn, sigma 10/255"
    assert header.get_data_dtype() == np.float32
    stored_header = _file_header(tmp_path / f"out{suffix}")  # the input's scaling (2, -100) is not kept
    assert np.isnan(stored_header["scl_slope"]) or float(stored_header["scl_slope"]) == 1.0
    assert np.isnan(stored_header["scl_inter"]) or float(stored_header["scl_inter"]) == 0.0
    stored = np.asarray(written.dataobj.get_unscaled())
    assert stored.dtype == np.float32
    voxels = 2.0 * np.asarray(source.dataobj, dtype=np.float64) - 100  # the input file's scaled values
    for i, j, k in np.ndindex(voxels.shape):
        assert stored[i, j, k] == np.float32(voxels[i, j, k] * 0.5 + 0.25)


def test_data_of_another_shape_than_like_are_refused(tmp_path):
    # like's affine and pixdim were kept for (2, 10, 7) data computed from a (5, 32, 32) volume
    nibabel.save(nibabel.Nifti1Image(np.zeros((32, 32, 5), np.float32), np.diag([2.0, 2.0, 3.0, 1.0])),
                 tmp_path / "in.nii")
    like = read_volume(tmp_path / "in.nii")
    with pytest.raises(ValueError, match=r"data of shape \(2, 10, 7\) do not match the input volume's \(5, 32, 32\)"):
        write_volume(tmp_path / "out.nii", np.zeros((2, 10, 7)), like=like)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.nii"]


def test_write_without_like_is_a_fresh_nifti1_with_identity_affine(tmp_path):
    data = np.random.default_rng(1).random((3, 4, 5), dtype=np.float32)
    write_volume(tmp_path / "out.nii.gz", data, description="x" * 100)
    written = nibabel.load(tmp_path / "out.nii.gz")
    assert type(written) is nibabel.Nifti1Image
    np.testing.assert_array_equal(written.affine, np.eye(4))
    assert written.shape == (5, 4, 3) and written.get_data_dtype() == np.float32
    np.testing.assert_array_equal(np.asarray(written.dataobj), data.transpose(2, 1, 0))
    assert written.header["descrip"].item() == b"x" * 80


def test_non_ascii_description_is_escaped(tmp_path):
    write_volume(tmp_path / "out.nii", np.zeros((1, 2, 2), np.float32), description="sigma σ")
    assert nibabel.load(tmp_path / "out.nii").header["descrip"].item() == b"sigma \\u03c3"


def test_2d_data_is_written_as_one_slice(tmp_path):
    write_volume(tmp_path / "out.nii", np.arange(6, dtype=np.float32).reshape(2, 3))
    written = nibabel.load(tmp_path / "out.nii")
    assert written.shape == (3, 2, 1)
    assert written.get_fdata()[2, 1, 0] == 5


def test_nan_is_refused_before_writing(tmp_path):
    data = np.zeros((2, 3, 4), np.float32)
    data[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="1 NaN or Inf value"):
        write_volume(tmp_path / "out.nii.gz", data)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_volume_is_refused(tmp_path):
    nibabel.save(nibabel.Nifti1Image(np.zeros((4, 4, 0), np.float32), np.eye(4)), tmp_path / "empty.nii")
    _refusal(tmp_path / "empty.nii", r"non-empty volume, got shape \(0, 4, 4\)")


def test_values_beyond_float32_are_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match=f"^{tmp_path / 'big.nii'}: the data to write contains 4 values beyond "
                                         "float32's range"):
        write_volume(tmp_path / "big.nii", np.full((1, 2, 2), 1e300))
    assert list(tmp_path.iterdir()) == []


def test_the_input_display_range_is_not_kept(tmp_path):
    """cal_min/cal_max describe the input's values; the output's range is another (0, 0: unset)."""
    image = nibabel.Nifti1Image(np.linspace(0, 100, 24, dtype=np.float32).reshape(2, 3, 4), np.eye(4))
    image.header["cal_min"], image.header["cal_max"] = 0, 100
    nibabel.save(image, tmp_path / "in.nii")
    volume = read_volume(tmp_path / "in.nii")
    write_volume(tmp_path / "out.nii", 10 * volume.data, like=volume)
    written = nibabel.load(tmp_path / "out.nii").header
    assert (float(written["cal_min"]), float(written["cal_max"])) == (0.0, 0.0)
