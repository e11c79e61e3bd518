"""adareg.io.dicom: slice order, Modality LUT values, a derived series written back, and clear refusals.

Test data come only from pydicom's own test files (``pydicom/data/test_files``, installed
with pydicom); multi-file series are built in ``tmp_path`` from ``CT_small.dcm`` by
changing the geometry, the instance tags and the pixel values, under shuffled file names.
Expected values and orders are computed in the tests from the tags, by hand.

* Reading: order along the slice normal (axial and oblique, in-plane offsets that would
  fool a sort by one coordinate), InstanceNumber when a position is missing, CT values
  in HU (``stored * slope + intercept``), enhanced multi-frame rescales, lossless
  compressed files equal to their uncompressed original, skipped non-image files.
* Writing: values within half a slope, input rescale kept when the data fit and span
  256 of its steps and a spanning one otherwise, patient/study/geometry kept, new UIDs,
  atomic on failure.
* Refusals, one line naming the file or folder: several series, no pixel data, colour,
  different sizes, unorderable or coincident slices, undecodable compressed data, a
  mismatched or multi-frame ``like``, non-finite data.
"""

from __future__ import annotations

import copy
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom", minversion="3.0",
                              reason="pydicom >= 3.0 is not installed (pip install adareg[io])")

from adareg.io import dicom  # noqa: E402  (after the skip: the module needs pydicom)
from adareg.io.volumes import Volume, read_volume, write_volume  # noqa: E402

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
CT = TEST_FILES / "CT_small.dcm"
KEPT_TAGS = ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "StudyID", "FrameOfReferenceUID",
             "ImageOrientationPatient", "PixelSpacing", "SliceThickness", "Modality", "SOPClassUID")


def _slice(k: int, position, orientation=(1, 0, 0, 0, 1, 0), series: str | None = None) -> pydicom.Dataset:
    """CT_small as slice ``k``: stored values plus ``3 k``, at ``position``, InstanceNumber ``k + 1``, a new SOP UID."""
    ds = pydicom.dcmread(CT)
    ds.PixelData = (ds.pixel_array + 3 * k).astype("<i2").tobytes()
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.InstanceNumber = k + 1
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if series is not None:
        ds.SeriesInstanceUID = series
    return ds


def _save(folder: Path, datasets, seed: int = 0) -> list[Path]:
    """Save ``datasets`` into ``folder`` under shuffled names; the paths in the order of ``datasets``."""
    folder.mkdir(parents=True, exist_ok=True)
    names = np.random.default_rng(seed).permutation(len(datasets))
    paths = [folder / f"file{names[i]:03d}" for i in range(len(datasets))]
    for ds, path in zip(datasets, paths):
        ds.save_as(path, enforce_file_format=True)
    return paths


def _hu(k: int) -> np.ndarray:
    """Slice ``k``'s values computed from CT_small's tags by hand."""
    ds = pydicom.dcmread(CT)
    return (ds.pixel_array.astype(np.float64) + 3 * k) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def _one_line_error(where: Path, call, *words: str) -> str:
    """``call()`` raises a one-line ValueError that starts with ``where`` and contains ``words``."""
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert message.startswith(str(where)) and "\n" not in message, message
    for word in words:
        assert word in message, message
    return message


# ---------------------------------------------------------------------------------------------- order


def test_shuffled_axial_series_is_read_in_ascending_position(tmp_path):
    z = [30.0, -12.5, 7.0, 0.0, 52.0]
    rng = np.random.default_rng(1)
    # in-plane offsets (along rows and columns) change x and y, not the position along the normal (z)
    datasets = [_slice(k, (rng.uniform(-50, 50), rng.uniform(-50, 50), z[k])) for k in range(5)]
    _save(tmp_path, datasets)
    volume = dicom.read(tmp_path)
    expected = np.argsort(z)  # ascending z: the normal of rows (1,0,0) and columns (0,1,0) is +z
    assert volume.data.dtype == np.float32 and volume.data.shape == (5, 128, 128)
    for i, k in enumerate(expected):
        np.testing.assert_array_equal(volume.data[i], _hu(k))
    assert [float(ds.ImagePositionPatient[2]) for ds in volume.metadata["datasets"]] == sorted(z)
    assert all("PixelData" not in ds for ds in volume.metadata["datasets"])


def test_oblique_series_is_ordered_along_its_normal_not_by_a_coordinate(tmp_path):
    a = np.deg2rad(30)
    row, column = np.array([np.cos(a), np.sin(a), 0.0]), np.array([0.0, 0.0, -1.0])
    normal = np.array([-np.sin(a), np.cos(a), 0.0])  # row x column, worked out by hand
    t = [4.0, -2.0, 9.0, 1.0]
    rng = np.random.default_rng(2)
    positions = [t[k] * normal + rng.uniform(-80, 80) * row + rng.uniform(-80, 80) * column for k in range(4)]
    _save(tmp_path, [_slice(k, positions[k], (*row, *column)) for k in range(4)], seed=3)
    volume = dicom.read(tmp_path)
    for i, k in enumerate(np.argsort(t)):
        np.testing.assert_array_equal(volume.data[i], _hu(k))
    # a sort by any one patient coordinate gives another order here
    for axis in range(3):
        assert list(np.argsort([p[axis] for p in positions])) != list(np.argsort(t))


def test_instance_number_orders_the_slices_when_a_position_is_missing(tmp_path):
    datasets = [_slice(k, (0, 0, z)) for k, z in enumerate([5.0, 1.0, 3.0, 2.0])]
    numbers = [2, 4, 1, 3]  # disagrees with the positions
    for ds, number in zip(datasets, numbers):
        ds.InstanceNumber = number
    del datasets[2].ImagePositionPatient
    _save(tmp_path, datasets)
    volume = dicom.read(tmp_path)
    for i, k in enumerate(np.argsort(numbers)):
        np.testing.assert_array_equal(volume.data[i], _hu(k))


def test_missing_position_and_instance_number_is_a_clear_error(tmp_path):
    datasets = [_slice(k, (0, 0, k)) for k in range(3)]
    del datasets[0].ImagePositionPatient
    del datasets[1].InstanceNumber
    paths = _save(tmp_path, datasets)
    _one_line_error(tmp_path, lambda: dicom.read(tmp_path), "ImagePositionPatient", "InstanceNumber",
                    paths[0].name, paths[1].name)


def test_coincident_slices_are_refused(tmp_path):
    paths = _save(tmp_path, [_slice(k, (0, 0, z)) for k, z in enumerate([1.0, 2.0, 1.0])])
    _one_line_error(tmp_path, lambda: dicom.read(tmp_path), "same position", paths[0].name, paths[2].name)


@pytest.mark.parametrize("orientation", [(0, 0, 0, 0, 0, 0), (1, 0, 0, 1, 0, 0)])
def test_an_orientation_without_a_normal_is_named(tmp_path, orientation):
    # every slice lay at position 0 along a zero normal: "have the same position along the slice normal (0)"
    _save(tmp_path, [_slice(k, (0, 0, k), orientation) for k in range(3)])
    _one_line_error(tmp_path, lambda: dicom.read(tmp_path), "is not two orthogonal unit directions")


def test_non_image_files_hidden_files_and_subfolders_are_skipped(tmp_path):
    _save(tmp_path, [_slice(k, (0, 0, -k)) for k in range(2)])
    shutil.copy(TEST_FILES / "dicomdirtests" / "DICOMDIR", tmp_path / "DICOMDIR")
    shutil.copy(TEST_FILES / "rtplan.dcm", tmp_path / "plan.dcm")
    shutil.copy(TEST_FILES / "README.txt", tmp_path / "README.txt")
    (tmp_path / "empty").write_bytes(b"")
    np.save(tmp_path / "array.npy", np.arange(4096.0))  # bytes that pydicom's forced reading makes nothing of
    shutil.copy(TEST_FILES / "MR_small.dcm", tmp_path / ".hidden.dcm")
    (tmp_path / "sub").mkdir()
    shutil.copy(TEST_FILES / "MR_small.dcm", tmp_path / "sub" / "other.dcm")
    volume = dicom.read(tmp_path)
    np.testing.assert_array_equal(volume.data, np.stack([_hu(1), _hu(0)]))


@pytest.mark.parametrize("cut", [132, 300, 600])
def test_an_image_file_cut_short_in_its_header_is_refused_not_left_out(tmp_path, cut):
    # pydicom reads such a file without an error; it has no Rows, and was skipped like a DICOMDIR: the volume came
    # out one slice short without a word
    paths = _save(tmp_path, [_slice(k, (0, 0, k)) for k in range(3)])
    paths[1].write_bytes(paths[1].read_bytes()[:cut])
    assert "Rows" not in pydicom.dcmread(paths[1])
    _one_line_error(tmp_path, lambda: dicom.read(tmp_path), paths[1].name, "without Rows")


def test_images_without_the_file_preamble_or_meta_header_are_read(tmp_path):
    # ACR-NEMA-style files (no preamble, no 'DICM', no group 2) were skipped unseen, and the volume lost their
    # slices; files with the preamble but no group 2 were refused as undecodable
    datasets = [_slice(k, (0, 0, k)) for k in range(3)]
    paths = _save(tmp_path, datasets)
    bare = copy.deepcopy(datasets[1])
    del bare.file_meta
    bare.preamble = None
    pydicom.dcmwrite(paths[1], bare, implicit_vr=True, little_endian=True, enforce_file_format=False)
    no_meta = copy.deepcopy(datasets[2])
    del no_meta.file_meta
    pydicom.dcmwrite(paths[2], no_meta, implicit_vr=False, little_endian=True, enforce_file_format=False)
    assert not pydicom.misc.is_dicom(paths[1]) and pydicom.misc.is_dicom(paths[2])
    np.testing.assert_array_equal(dicom.read(tmp_path).data, np.stack([_hu(k) for k in range(3)]))
    np.testing.assert_array_equal(dicom.read(paths[1]).data[0], _hu(1))


# ---------------------------------------------------------------------------------------------- values


def test_ct_values_are_hounsfield_units_from_the_rescale_tags(tmp_path):
    ds = pydicom.dcmread(CT)
    assert float(ds.RescaleSlope) == 1 and float(ds.RescaleIntercept) == -1024
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(dicom.read(CT).data[0], expected)
    ds.RescaleSlope, ds.RescaleIntercept = "0.5", "-1000.25"
    ds.save_as(tmp_path / "scaled.dcm")
    np.testing.assert_array_equal(dicom.read(tmp_path / "scaled.dcm").data[0],
                                  (ds.pixel_array * 0.5 - 1000.25).astype(np.float32))


def test_one_rescale_tag_alone_counts_and_is_written_back_alike(tmp_path):
    # pydicom rescales only with both tags: an intercept alone was ignored on reading, but the writer read the
    # missing slope as 1 and kept the intercept, so that the derived series showed every value 1024 HU too high
    ds = pydicom.dcmread(CT)
    stored = ds.pixel_array.astype(np.float64)
    for tag, kept, expected in (("RescaleSlope", "RescaleIntercept", stored - 1024),
                                ("RescaleIntercept", "RescaleSlope", 2 * stored)):
        one = copy.deepcopy(ds)
        one.RescaleSlope = "2"
        delattr(one, tag)
        folder = tmp_path / f"without-{tag}"
        _save(folder, [one])
        volume = read_volume(folder)
        np.testing.assert_array_equal(volume.data[0], expected.astype(np.float32))
        write_volume(tmp_path / f"written-{tag}", volume.data + 2, like=volume)  # a multiple of the slope
        written = _written(tmp_path / f"written-{tag}")[0]
        by_hand = written.pixel_array * float(written.RescaleSlope) + float(written.RescaleIntercept)
        np.testing.assert_array_equal(by_hand, expected + 2)
        assert kept in written


@pytest.mark.parametrize("tag, value, words", [
    ("RescaleSlope", "0", "RescaleSlope is 0, which maps every stored value to the intercept"),
    ("RescaleSlope", ["1", "2"], "RescaleSlope [1, 2] is not one number"),
    ("RescaleIntercept", ["0", "1"], "RescaleIntercept [0, 1] is not one number"),
])
def test_a_malformed_rescale_is_named(tmp_path, tag, value, words):
    ds = pydicom.dcmread(CT)
    setattr(ds, tag, value)
    ds.save_as(tmp_path / "bad.dcm")
    _one_line_error(tmp_path / "bad.dcm", lambda: dicom.read(tmp_path / "bad.dcm"), words)


def test_malformed_geometry_and_sizes_are_named(tmp_path):
    # a TypeError, a float conversion's "could not convert string to float: ''" and an AttributeError before,
    # naming neither the file nor the tag
    datasets = [_slice(k, (0, 0, k)) for k in range(2)]
    datasets[1].ImagePositionPatient = ["0", "0", ""]
    paths = _save(tmp_path / "position", datasets)
    _one_line_error(paths[1], lambda: dicom.read(tmp_path / "position"),
                    "ImagePositionPatient ['0', '0', ''] is not a list of numbers")
    datasets = [_slice(k, (0, 0, k)) for k in range(2)]
    del datasets[0].Columns
    paths = _save(tmp_path / "columns", datasets)
    _one_line_error(paths[0], lambda: dicom.read(tmp_path / "columns"), "Columns is missing")
    _one_line_error(paths[0], lambda: dicom.read(paths[0]), "Columns is missing")


def test_values_without_rescale_are_the_stored_values():
    ds = pydicom.dcmread(TEST_FILES / "MR_small.dcm")
    assert "RescaleSlope" not in ds
    np.testing.assert_array_equal(dicom.read(TEST_FILES / "MR_small.dcm").data[0], ds.pixel_array)


def test_multi_frame_file_gives_its_frames_as_slices():
    path = TEST_FILES / "rtdose.dcm"
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array
    volume = dicom.read(path)
    assert frames.shape == (15, 10, 10)
    np.testing.assert_allclose(volume.data, frames * float(ds.DoseGridScaling), rtol=1e-6)  # an RT Dose: in Gy
    (dataset,) = volume.metadata["datasets"]
    assert dataset.NumberOfFrames == 15 and "PixelData" not in dataset


def test_enhanced_multi_frame_rescales_per_frame_then_shared(tmp_path):
    ds = pydicom.dcmread(CT)
    stored = ds.pixel_array
    ds.PixelData = np.stack([stored, stored + 1, stored + 2]).astype("<i2").tobytes()
    ds.NumberOfFrames = 3
    del ds.RescaleSlope, ds.RescaleIntercept

    def transformation(slope: str, intercept: str) -> pydicom.Dataset:
        group, item = pydicom.Dataset(), pydicom.Dataset()
        item.RescaleSlope, item.RescaleIntercept, item.RescaleType = slope, intercept, "HU"
        group.PixelValueTransformationSequence = [item]
        return group

    ds.SharedFunctionalGroupsSequence = [transformation("2", "-1000")]
    ds.PerFrameFunctionalGroupsSequence = [pydicom.Dataset(), transformation("0.5", "10"), pydicom.Dataset()]
    ds.save_as(tmp_path / "enhanced.dcm")
    data = dicom.read(tmp_path / "enhanced.dcm").data
    np.testing.assert_array_equal(data[0], stored * 2.0 - 1000)
    np.testing.assert_array_equal(data[1], (stored + 1) * 0.5 + 10)
    np.testing.assert_array_equal(data[2], (stored + 2) * 2.0 - 1000)


@pytest.mark.parametrize("name", ["rtdose.dcm", "rtdose_1frame.dcm"])
def test_rt_dose_is_read_in_dose_units(name):
    # the stored values were returned as they are: 795000 to 1254000 where the file means 0.795 to 1.254
    ds = pydicom.dcmread(TEST_FILES / name)
    assert ds.Modality == "RTDOSE" and "RescaleSlope" not in ds
    expected = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns) * float(ds.DoseGridScaling)
    np.testing.assert_allclose(dicom.read(TEST_FILES / name).data, expected, rtol=1e-6)
    assert 0.7 < expected.min() and expected.max() < 1.3


def test_an_enhanced_single_frame_file_is_written_back_with_its_values(tmp_path):
    # the functional group's rescale, which readers prefer, was kept stale beside the new top-level one
    ds = pydicom.dcmread(CT)
    stored = ds.pixel_array.astype(np.float64)
    ds.NumberOfFrames = 1
    group, item = pydicom.Dataset(), pydicom.Dataset()
    item.RescaleSlope, item.RescaleIntercept, item.RescaleType = "2", "-1000", "HU"
    group.PixelValueTransformationSequence = [item]
    ds.SharedFunctionalGroupsSequence = [group]
    del ds.RescaleSlope, ds.RescaleIntercept
    ds.save_as(tmp_path / "enhanced.dcm")
    like = dicom.read(tmp_path / "enhanced.dcm")
    np.testing.assert_array_equal(like.data[0], stored * 2 - 1000)
    data = like.data + 0.3 * np.random.default_rng(3).standard_normal(like.data.shape)
    dicom.write(tmp_path / "out", data, like, "derived")
    (out,) = _written(tmp_path / "out")
    (transformation,) = out.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence
    written = out.pixel_array * float(transformation.RescaleSlope) + float(transformation.RescaleIntercept)
    assert np.abs(written - data[0]).max() <= float(transformation.RescaleSlope) / 2 + 1e-9
    np.testing.assert_allclose(dicom.read(tmp_path / "out").data[0], written, atol=1e-3)


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
                                  "MR_small_bigendian.dcm", "MR_small_implicit.dcm"])
def test_other_encodings_read_as_the_original_or_name_the_missing_decoder(name):
    path = TEST_FILES / name
    try:
        pydicom.dcmread(path).pixel_array
    except RuntimeError as err:  # no decoder installed for this transfer syntax
        syntax = pydicom.dcmread(path).file_meta.TransferSyntaxUID.name
        message = _one_line_error(path, lambda: dicom.read(path), syntax)
        for line in str(err).splitlines()[1:]:  # pydicom's list of plugins and the packages they need
            assert line.strip() in message
        return
    original = pydicom.dcmread(TEST_FILES / "MR_small.dcm").pixel_array
    np.testing.assert_array_equal(dicom.read(path).data[0], original)


def test_a_file_no_decoder_can_read_is_one_line_naming_file_syntax_and_packages():
    path = TEST_FILES / "MR_small_jpeg_ls_lossless.dcm"
    try:
        pydicom.dcmread(path).pixel_array
    except RuntimeError as err:
        packages = [line.split(" - ")[0].strip() for line in str(err).splitlines()[1:]]
    else:
        pytest.skip("a JPEG-LS decoder is installed (pylibjpeg-libjpeg, gdcm or pyjpegls)")
    _one_line_error(path, lambda: dicom.read(path), "JPEG-LS Lossless Image Compression", *packages)


# ---------------------------------------------------------------------------------------------- refusals


def test_a_folder_of_two_series_is_refused_naming_them(tmp_path):
    first = [_slice(k, (0, 0, k), series="1.2.3.1") for k in range(2)]
    second = [_slice(k, (0, 0, k), series="1.2.3.2") for k in range(2, 4)]
    for ds in first:
        ds.SeriesDescription, ds.SeriesNumber = "soft tissue", 2
    for ds in second:
        ds.SeriesDescription, ds.SeriesNumber = "bone", 3
    _save(tmp_path, first + second)
    _one_line_error(tmp_path, lambda: dicom.read(tmp_path), "2 series", "soft tissue", "bone", "2", "3",
                    "give one series' folder")


def test_a_file_without_pixel_data_is_refused():
    path = TEST_FILES / "rtplan.dcm"
    _one_line_error(path, lambda: dicom.read(path), "has no pixel data")


def test_an_image_file_that_lost_its_pixel_data_is_refused_in_a_folder(tmp_path):
    datasets = [_slice(k, (0, 0, k)) for k in range(2)]
    del datasets[1].PixelData
    paths = _save(tmp_path, datasets)
    _one_line_error(paths[1], lambda: dicom.read(tmp_path), "has no pixel data")


def test_a_folder_without_images_is_refused(tmp_path):
    shutil.copy(TEST_FILES / "rtplan.dcm", tmp_path / "plan.dcm")
    shutil.copy(TEST_FILES / "README.txt", tmp_path / "README.txt")
    _one_line_error(tmp_path, lambda: dicom.read(tmp_path), "no DICOM image files")
    # a folder of PNG images was told only that it held no DICOM (an audit, 2026-12-08)
    _one_line_error(tmp_path, lambda: dicom.read(tmp_path), "a folder is read as one DICOM series; give a stack of "
                    "other images as one multi-page TIFF")


def test_a_non_dicom_file_is_refused():
    path = TEST_FILES / "README.txt"
    _one_line_error(path, lambda: dicom.read(path), "not a DICOM file")


@pytest.mark.parametrize("name", ["SC_rgb_small_odd.dcm", "examples_palette.dcm"])
def test_colour_images_are_refused(name, tmp_path):
    path = TEST_FILES / name
    _one_line_error(path, lambda: dicom.read(path), "colour")
    _save(tmp_path, [_slice(0, (0, 0, 0))])
    shutil.copy(path, tmp_path / "colour.dcm")
    ds = pydicom.dcmread(tmp_path / "colour.dcm")
    ds.SeriesInstanceUID = pydicom.dcmread(next(tmp_path.glob("file*"))).SeriesInstanceUID
    ds.save_as(tmp_path / "colour.dcm")
    _one_line_error(tmp_path / "colour.dcm", lambda: dicom.read(tmp_path), "colour")


def test_slices_of_different_sizes_are_refused(tmp_path):
    ct = _slice(0, (0, 0, 0))
    mr = pydicom.dcmread(TEST_FILES / "MR_small.dcm")
    mr.SeriesInstanceUID = ct.SeriesInstanceUID
    _save(tmp_path, [ct, mr])
    _one_line_error(tmp_path, lambda: dicom.read(tmp_path), "different sizes", "128x128", "64x64")


# ---------------------------------------------------------------------------------------------- writing


def _series_volume(folder: Path, count: int = 4) -> tuple[Volume, list[float]]:
    """A shuffled series of ``count`` slices read back, and the slices' z in the order read."""
    z = list(np.random.default_rng(5).permutation(count) * 2.5 - 4.0)
    _save(folder, [_slice(k, (-158.1, -179.0, z[k])) for k in range(count)], seed=6)
    return dicom.read(folder), sorted(z)


def _written(folder: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(path) for path in sorted(folder.iterdir())]


def _values(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_a_dicom_file_named_by_a_scanner_is_read_as_a_volume(tmp_path):
    # IM0001.IMA or a UID as the name: the ending named no format, and the CLI took the file for an image
    from adareg import io

    for name in ("IM0001.IMA", "1.2.840.113619.2.55.3.5"):
        shutil.copy(CT, tmp_path / name)
        assert io.is_volume(tmp_path / name)
        np.testing.assert_array_equal(read_volume(tmp_path / name).data[0], _hu(0))
    (tmp_path / "notes.IMA").write_bytes(b"not DICOM" * 20)
    with pytest.raises(ValueError, match=r"notes\.IMA: not a volume file"):
        read_volume(tmp_path / "notes.IMA")


def test_a_dicom_file_named_by_a_scanner_is_known_without_pydicom(tmp_path, monkeypatch):
    """Its format was found through pydicom only, so an install without the io extra called IM0001.IMA an
    "unsupported image type" rather than naming pydicom (an installed-package audit, 2026-12-06)."""
    from adareg.io.volumes import volume_format

    shutil.copy(CT, tmp_path / "IM0001.IMA")
    (tmp_path / "notes.IMA").write_bytes(b"not DICOM" * 20)
    monkeypatch.setitem(sys.modules, "pydicom", None)
    assert volume_format(tmp_path / "IM0001.IMA") == "dicom"
    with pytest.raises(ValueError, match=r"notes\.IMA: not a volume file"):
        volume_format(tmp_path / "notes.IMA")


def test_a_series_written_as_nifti_keeps_its_geometry_as_the_affine(tmp_path):
    nibabel = pytest.importorskip("nibabel", reason="nibabel is not installed (pip install adareg[io])")
    a = np.deg2rad(30)
    row, column = np.array([np.cos(a), np.sin(a), 0.0]), np.array([0.0, 0.0, -1.0])
    normal = np.array([-np.sin(a), np.cos(a), 0.0])  # row x column, worked out by hand
    order = [2, 0, 3, 1]  # slice k lies 3 mm times order[k] along the normal
    datasets = [_slice(k, (10.0, -20.0, 30.0) + 3.0 * order[k] * normal, (*row, *column)) for k in range(4)]
    for ds in datasets:
        ds.PixelSpacing = [0.5, 0.8]  # between rows, between columns
    _save(tmp_path / "in", datasets)
    volume = read_volume(tmp_path / "in")
    write_volume(tmp_path / "out.nii.gz", volume.data, volume)
    image = nibabel.load(tmp_path / "out.nii.gz")
    assert (int(image.header["sform_code"]), int(image.header["qform_code"])) == (1, 1)
    assert image.header.get_xyzt_units()[0] == "mm"
    np.testing.assert_array_equal(np.asarray(image.dataobj).transpose(2, 1, 0), volume.data)
    for i, j, position in [(0, 0, 0), (127, 0, 1), (5, 90, 3), (127, 127, 2)]:
        ds = datasets[order.index(position)]  # the file of the volume's slice at this position
        # DICOM's pixel position (PS3.3 C.7.6.2.1.1): IPP + column * spacing * X + row * spacing * Y, in LPS
        lps = np.array(ds.ImagePositionPatient, dtype=float) + i * 0.8 * row + j * 0.5 * column
        np.testing.assert_allclose(image.affine @ [i, j, position, 1.0], [-lps[0], -lps[1], lps[2], 1.0],
                                   atol=1e-4)


def test_a_series_with_a_slice_missing_written_as_nifti_names_the_slice_misplaced(tmp_path):
    """Positions 0, 2, 4, 8 and 10 mm got an affine of one 2.5 mm step, which put the middle slices up to 1.5 mm
    from their positions without a word (an audit, 2026-12-07)."""
    pytest.importorskip("nibabel", reason="nibabel is not installed (pip install adareg[io])")
    _save(tmp_path / "in", [_slice(k, (0.0, 0.0, z)) for k, z in enumerate([0.0, 2.0, 4.0, 8.0, 10.0])])
    volume = read_volume(tmp_path / "in")
    # slice k at 2.5 k mm: 0, 0.5, 1, 0.5 and 0 mm from its position
    with pytest.warns(UserWarning, match=r"not evenly spaced \(steps of 2 to 4 mm.*places slice 2 \(from 0\) 1 mm "
                                         r"from its ImagePositionPatient") as caught:
        write_volume(tmp_path / "out.nii", volume.data, volume)
    assert caught[0].filename == __file__
    _save(tmp_path / "even", [_slice(k, (0.0, 0.0, 2.0 * k + 0.01 * (k % 2))) for k in range(5)])  # rounding
    volume = read_volume(tmp_path / "even")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_volume(tmp_path / "even.nii", volume.data, volume)


def test_a_tilted_series_written_as_nifti_is_placed_by_its_sform_alone(tmp_path):
    """A gantry tilt shears the affine, which a qform cannot hold: nibabel stored a nearby rotation under the code
    "scanner", which placed the slices 0.25 mm a slice away from the sform (an audit, 2026-12-07)."""
    nibabel = pytest.importorskip("nibabel", reason="nibabel is not installed (pip install adareg[io])")
    _save(tmp_path / "in", [_slice(k, (0.0, 0.5 * k, 2.0 * k)) for k in range(4)])  # a tilt of atan(0.25)
    volume = read_volume(tmp_path / "in")
    write_volume(tmp_path / "out.nii", volume.data, volume)
    header = nibabel.load(tmp_path / "out.nii").header
    assert (int(header["sform_code"]), int(header["qform_code"])) == (1, 0)
    np.testing.assert_allclose(header.get_sform()[:3, 2], [0.0, -0.5, 2.0])  # RAS: y negated


def test_a_series_without_geometry_written_as_nifti_warns_of_its_identity_affine(tmp_path):
    nibabel = pytest.importorskip("nibabel", reason="nibabel is not installed (pip install adareg[io])")
    ds = _slice(0, (0.0, 0.0, 0.0))
    del ds.ImagePositionPatient
    _save(tmp_path / "in", [ds])
    volume = read_volume(tmp_path / "in")
    with pytest.warns(UserWarning, match=r"out\.nii: the DICOM input gives no geometry .* identity affine"):
        write_volume(tmp_path / "out.nii", volume.data, volume)
    np.testing.assert_array_equal(nibabel.load(tmp_path / "out.nii").affine, np.eye(4))


def test_written_series_keeps_values_tags_and_order_with_new_uids(tmp_path):
    like, z = _series_volume(tmp_path / "in")
    data = like.data * 0.8 + np.random.default_rng(7).uniform(-3, 3, like.data.shape)
    description = "adareg sa-cnn denoising, sigma 10/255"
    dicom.write(tmp_path / "out", data, like, description)
    written = _written(tmp_path / "out")
    sources = [pydicom.dcmread(p) for p in (tmp_path / "in").iterdir()]
    assert [p.name for p in sorted((tmp_path / "out").iterdir())] == ["IM0001.dcm", "IM0002.dcm", "IM0003.dcm",
                                                                     "IM0004.dcm"]
    for i, ds in enumerate(written):
        assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)  # the input's: data fit
        assert np.max(np.abs(_values(ds) - data[i])) <= 0.5 * float(ds.RescaleSlope) + 1e-9
        assert float(ds.ImagePositionPatient[2]) == z[i]
        for keyword in KEPT_TAGS:
            assert ds[keyword].value == sources[0][keyword].value, keyword
        assert ds.SeriesDescription == description
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert (ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation,
                ds.SamplesPerPixel) == ("MONOCHROME2", 16, 16, 1, 1)
    series = {ds.SeriesInstanceUID for ds in written}
    assert len(series) == 1 and series.isdisjoint({ds.SeriesInstanceUID for ds in sources})
    uids = [ds.SOPInstanceUID for ds in written]
    assert len(set(uids)) == 4 and set(uids).isdisjoint({ds.SOPInstanceUID for ds in sources})
    again = dicom.read(tmp_path / "out")
    assert [float(ds.ImagePositionPatient[2]) for ds in again.metadata["datasets"]] == z
    assert np.max(np.abs(again.data - data)) <= 0.5 + 1e-4


def test_data_outside_int16_with_the_input_rescale_get_a_spanning_rescale(tmp_path):
    like = dicom.read(CT)
    data = like.data * 40.0 + 0.123  # about [-36000, 47000]: beyond int16 at 1 HU steps
    dicom.write(tmp_path / "out", data, like, "x" * 100)
    (ds,) = _written(tmp_path / "out")
    slope = float(ds.RescaleSlope)
    assert slope != 1.0 and len(str(ds.RescaleSlope)) <= 16 and len(str(ds.RescaleIntercept)) <= 16
    assert np.max(np.abs(_values(ds) - data[0])) <= 0.5 * slope * (1 + 1e-9)
    stored = ds.pixel_array.astype(np.int64)
    assert stored.min() >= -32768 and stored.max() <= 32767 and stored.max() - stored.min() > 60000
    assert ds.SeriesDescription == "x" * 64


def test_data_on_a_finer_scale_than_the_input_rescale_get_a_fitted_one(tmp_path):
    """CT mapped to [0, 1] and written with the input's slope 1 came back as 0 and 1 only, half the range off (an
    audit, 2026-12-08)."""
    like, _ = _series_volume(tmp_path / "in", count=2)
    low, high = float(like.data.min()), float(like.data.max())
    data = (like.data.astype(np.float64) - low) / (high - low)
    write_volume(tmp_path / "out", data, like=like)
    back = read_volume(tmp_path / "out").data
    for k in range(2):
        # the best int16 quantisation of the slice's range: steps of its range / 65534, half a step off at most
        step = float(data[k].max() - data[k].min()) / 65534
        assert np.max(np.abs(back[k] - data[k])) <= 0.5 * step * (1 + 1e-6) + 1e-7  # + float32's rounding near 1


@pytest.mark.parametrize("keyword, dtype", [("FloatPixelData", "<f4"), ("DoubleFloatPixelData", "<f8")])
def test_float_pixel_data_get_a_rescale_of_their_own(tmp_path, keyword, dtype):
    """An ADC map stored as floats (no rescale tags: slope 1 and intercept 0, which fit in int16) was written back
    in whole units, all zeros (an audit, 2026-12-07)."""
    values = np.random.default_rng(1).uniform(0.0, 3e-3, (128, 128))
    ds = pydicom.dcmread(CT)
    for tag in ("PixelData", "PixelRepresentation", "BitsStored", "HighBit", "RescaleSlope", "RescaleIntercept"):
        delattr(ds, tag)
    ds.BitsAllocated = 8 * np.dtype(dtype).itemsize
    setattr(ds, keyword, values.astype(dtype).tobytes())
    _save(tmp_path / "in", [ds])
    like = dicom.read(tmp_path / "in")
    assert like.metadata["float_pixels"]
    np.testing.assert_allclose(like.data[0], values, rtol=1e-6)
    dicom.write(tmp_path / "out", like.data, like, "derived")
    (out,) = _written(tmp_path / "out")
    slope = float(out.RescaleSlope)
    assert slope <= 3e-3 / 65534 * (1 + 1e-6)  # the values' range onto int16's
    assert np.max(np.abs(_values(out) - like.data[0])) <= 0.5 * slope * (1 + 1e-6)


def test_other_maps_of_the_stored_values_go_with_the_input_rescale(tmp_path):
    """A re-fitted rescale left the input's Real World Value Mapping and Philips' private scale slope, which map the
    stored values, in the derived files: real-world values of -16383 where the data were 0 (an audit, 2026-12-07)."""
    ds = _slice(0, (0, 0, 0))
    mapping = pydicom.Dataset()
    mapping.RealWorldValueSlope, mapping.RealWorldValueIntercept = 0.5, 0.0
    mapping.RealWorldValueFirstValueMapped, mapping.RealWorldValueLastValueMapped = -32768, 32767
    ds.RealWorldValueMappingSequence = [mapping]
    philips = ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True)
    philips.add_new(0x0D, "FL", 0.0)
    philips.add_new(0x0E, "FL", 2.0)
    _save(tmp_path / "in", [ds])
    like = dicom.read(tmp_path / "in")
    for name, data, kept in (("same", like.data, True), ("wider", like.data * 40.0, False)):
        dicom.write(tmp_path / name, data, like, "derived")
        (out,) = _written(tmp_path / name)
        assert (float(out.RescaleSlope) == float(ds.RescaleSlope)) == kept
        assert ("RealWorldValueMappingSequence" in out) == kept
        assert all((tag in out) == kept for tag in (0x2005100D, 0x2005100E))
        assert out[0x20050010].value == "Philips MR Imaging DD 001"


def test_lossy_history_kept_and_stale_pixel_tags_dropped(tmp_path):
    ds = _slice(0, (0, 0, 0))
    ds.LossyImageCompression, ds.LossyImageCompressionRatio = "01", 8.0
    for keyword, value in (("SmallestImagePixelValue", 0), ("LargestImagePixelValue", 10),
                           ("PixelPaddingValue", -2000)):
        ds.add_new(keyword, "SS", value)
    ds.WindowCenter, ds.WindowWidth = 40, 400
    _save(tmp_path / "in", [ds])
    like = dicom.read(tmp_path / "in")
    dicom.write(tmp_path / "out", like.data, like, "derived")
    (out,) = _written(tmp_path / "out")
    assert out.LossyImageCompression == "01" and float(out.LossyImageCompressionRatio) == 8.0
    assert (float(out.WindowCenter), float(out.WindowWidth)) == (40.0, 400.0)
    for keyword in ("SmallestImagePixelValue", "LargestImagePixelValue", "PixelPaddingValue"):
        assert keyword not in out
    np.testing.assert_array_equal(_values(out), _hu(0))


def test_a_non_ascii_description_is_written_in_utf8(tmp_path):
    # pydicom stored 'débruitage ?=10/255 ? test' with a warning, the input's set (ISO_IR 100) lacking sigma
    ds = pydicom.dcmread(CT)
    assert ds.SpecificCharacterSet == "ISO_IR 100"
    ds.PatientName = "Müller^Jörg"  # in the input's Latin-1
    ds.save_as(tmp_path / "in.dcm")
    like = dicom.read(tmp_path / "in.dcm")
    dicom.write(tmp_path / "out", like.data, like, "débruitage σ=10/255 — test")
    (out,) = _written(tmp_path / "out")
    assert out.SpecificCharacterSet == "ISO_IR 192"
    assert out.SeriesDescription == "débruitage σ=10/255 — test" and out.PatientName == "Müller^Jörg"
    raw = (tmp_path / "out" / "IM0001.dcm").read_bytes()
    assert "Müller^Jörg".encode("utf-8") in raw and "σ".encode("utf-8") in raw


def test_write_refuses_a_missing_mismatched_or_multi_frame_like(tmp_path):
    like = dicom.read(CT)
    out = tmp_path / "out"
    _one_line_error(out, lambda: dicom.write(out, like.data, None, "d"), "like")
    _one_line_error(out, lambda: dicom.write(out, np.zeros((2, 128, 128)), like, "d"), "(2, 128, 128)", "(1, 128, 128)")
    _one_line_error(out, lambda: dicom.write(out, np.zeros((1, 128, 64)), like, "d"), "(1, 128, 64)")
    frames = dicom.read(TEST_FILES / "rtdose.dcm")
    _one_line_error(out, lambda: dicom.write(out, frames.data, frames, "d"), "multi-frame")
    dose = dicom.read(TEST_FILES / "rtdose_1frame.dcm")  # its DoseGridScaling would not hold for new values
    _one_line_error(out, lambda: dicom.write(out, dose.data, dose, "d"), "an RT Dose")
    _one_line_error(out, lambda: write_volume(out, dose.data, dose), "an RT Dose")  # checked before any work too
    bad = like.data.copy()
    bad[0, 3, 4] = np.nan
    _one_line_error(out, lambda: dicom.write(out, bad, like, "d"), "NaN")
    bad = like.data.astype(np.float64)
    bad[0, 3, 4] = 1e39  # written as inf before, though the other formats refuse it
    _one_line_error(out, lambda: dicom.write(out, bad, like, "d"), "1 value beyond float32's range")
    assert list(tmp_path.iterdir()) == []


def test_write_takes_the_sop_class_from_the_file_meta_or_refuses_a_like_without_one(tmp_path):
    ds = pydicom.dcmread(CT)
    del ds.SOPClassUID  # an AttributeError from inside the writer before
    ds.save_as(tmp_path / "no_class.dcm")
    like = dicom.read(tmp_path / "no_class.dcm")
    write_volume(tmp_path / "out", like.data, like)
    written, = _written(tmp_path / "out")
    assert written.SOPClassUID == written.file_meta.MediaStorageSOPClassUID == ds.file_meta.MediaStorageSOPClassUID
    del like.metadata["datasets"][0].file_meta.MediaStorageSOPClassUID
    out = tmp_path / "out2"
    _one_line_error(out, lambda: write_volume(out, like.data, like), "no SOP class", "NIfTI")
    assert not out.exists()


def test_rescaled_values_beyond_float32_are_refused_not_read_as_inf(tmp_path):
    ds = pydicom.dcmread(CT)
    ds.RescaleSlope = "1e36"
    ds.save_as(tmp_path / "huge.dcm")
    _one_line_error(tmp_path / "huge.dcm", lambda: dicom.read(tmp_path / "huge.dcm"), "beyond float32's range")


def test_write_leaves_nothing_behind_when_it_fails_midway(tmp_path, monkeypatch):
    like, _ = _series_volume(tmp_path / "in")
    (tmp_path / "out").mkdir()
    saved = []
    original = pydicom.dcmwrite

    def fail_on_third(filename, dataset, **kwargs):
        if len(saved) == 2:
            raise OSError(28, "No space left on device")
        saved.append(filename)
        original(filename, dataset, **kwargs)

    monkeypatch.setattr(pydicom, "dcmwrite", fail_on_third)
    with pytest.raises(OSError, match="No space left"):
        dicom.write(tmp_path / "out", like.data, like, "d")
    assert len(saved) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]
    assert list((tmp_path / "out").iterdir()) == []


def test_a_series_written_together_with_a_file_lands_with_it_or_not_at_all(tmp_path):
    """A series folder replaced its target at once inside written_together, so a group that failed after writing a
    NIfTI file and a series left the series alone in place (an audit, 2026-12-08)."""
    pytest.importorskip("nibabel", reason="nibabel is not installed (pip install adareg[io])")
    from adareg import io

    like, _ = _series_volume(tmp_path / "in", count=2)
    nifti, series = tmp_path / "out.nii.gz", tmp_path / "out"
    with pytest.raises(RuntimeError, match="after both"):
        with io.written_together():
            write_volume(nifti, like.data, like=like)
            write_volume(series, like.data, like=like)
            assert not series.exists()  # held back until the end of the group
            raise RuntimeError("a failure after both outputs")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # neither output, no temporary twin
    with io.written_together():
        write_volume(nifti, like.data, like=like)
        write_volume(series, like.data, like=like)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "out.nii.gz"]
    np.testing.assert_array_equal(read_volume(series).data, like.data)
    np.testing.assert_array_equal(read_volume(nifti).data, like.data)


def test_read_volume_and_write_volume_use_this_module(tmp_path):
    like = read_volume(CT)
    assert like.format == "dicom"
    write_volume(tmp_path / "series", like.data - 10.0, like, "minus ten")
    np.testing.assert_array_equal(read_volume(tmp_path / "series").data, like.data - 10.0)


def test_datasets_of_the_volume_are_copies_the_write_does_not_change(tmp_path):
    like = dicom.read(CT)
    before = copy.deepcopy(like.metadata["datasets"][0])
    dicom.write(tmp_path / "out", like.data, like, "d")
    assert like.metadata["datasets"][0] == before
