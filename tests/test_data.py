"""Built-in images and phantoms."""

from __future__ import annotations

import numpy as np
import pytest

import adareg


def test_shepp_logan_values():
    p = adareg.data.shepp_logan((200, 200))
    assert p.shape == (200, 200) and p.dtype == np.float64
    assert p.min() == 0.0 and p.max() == 1.0
    assert p[100, 100] == pytest.approx(0.2)  # inside the skull and the brain, outside the small ellipses
    y = 1.0 - (2.0 * np.arange(200) + 1.0) / 200  # pixel centres, top to bottom
    column = p[:, 100]  # x = 0.005
    assert np.all(column[y > 0.921] == 0.0)  # air above the skull (outer ellipse: b = 0.92)
    assert np.all(column[(y < 0.918) & (y > 0.8576)] == 1.0)  # skull (inner ellipse top: 0.874 - 0.0184)
    assert p[int(100 - 0.35 * 100), 100] == pytest.approx(0.3)  # ellipse centred at y = 0.35


def test_shepp_logan_matches_scikit_image():
    data = pytest.importorskip("skimage.data")
    reference = data.shepp_logan_phantom()  # 400 x 400, rasterised independently
    assert np.abs(adareg.data.shepp_logan(reference.shape) - reference).mean() < 0.01


@pytest.mark.parametrize("name", adareg.data.IMAGES)
def test_bundled_images(name):
    pytest.importorskip("skimage")
    picture = adareg.data.image(name, shape=(32, 40), dtype=np.float32)
    assert picture.shape == (32, 40) and picture.dtype == np.float32
    assert 0.0 <= picture.min() < picture.max() <= 1.0


def test_unknown_image():
    with pytest.raises(ValueError, match="unknown image 'lena'"):
        adareg.data.image("lena")


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: adareg.data.image("camera", dtype=np.uint8), TypeError, "image: dtype must be float32 or float64"),
        (lambda: adareg.data.shepp_logan((8, 8), dtype=int), TypeError,
         "shepp_logan: dtype must be float32 or float64"),
        # types that every operator and solver refuses
        (lambda: adareg.data.image("camera", dtype=np.float16), TypeError, "image: dtype must be float32 or float64"),
        (lambda: adareg.data.shepp_logan((8, 8), dtype=">f8"), TypeError, "shepp_logan: dtype must be float32 or"),
        (lambda: adareg.data.shepp_logan(128), TypeError,
         r"shepp_logan: shape must be a pair \(H, W\) of ints, got 128"),
        (lambda: adareg.data.shepp_logan((8.5, 8)), TypeError, "shepp_logan: shape must be a pair"),
        (lambda: adareg.data.image("camera", shape=64), TypeError, "image: shape must be a pair"),
        (lambda: adareg.data.protocol_noisy(np.zeros((4, 4), np.uint8), 25, 0), TypeError,
         "clean must be a float image with values in \\[0, 1\\], got dtype uint8"),
    ],
)
def test_bad_arguments_are_refused_not_cast(make, error, words):
    # (an 8-bit dtype made the images all zeros, an integer image got noise 255 times too weak)
    with pytest.raises(error, match=words):
        make()


def test_protocol_noise_is_the_documented_draw():
    """../shared/data/README.md: rng = default_rng(1000 s + i), noisy = clean + N(0, 1) s / 255, no clipping."""
    clean = np.linspace(0, 1, 48).reshape(6, 8)
    noisy = adareg.data.protocol_noisy(clean, 15, 3)
    noise = np.random.default_rng(15003).standard_normal((6, 8)) * 15 / 255
    np.testing.assert_array_equal(noisy, clean + noise)
    assert noisy.max() > 1 or noisy.min() < 0  # not clipped
    np.testing.assert_array_equal(adareg.data.protocol_noisy(clean, 0, 3), clean)
    single = adareg.data.protocol_noisy(clean.astype(np.float32), 15, 3)  # float64 before (an audit, 2026-12-06)
    assert single.dtype == np.float32
    np.testing.assert_array_equal(single, (clean.astype(np.float32) + noise).astype(np.float32))
    for bad in ({"level": 2.5, "index": 0}, {"level": 5, "index": -1}, {"level": True, "index": 0},
                {"level": 300, "index": 0}, {"level": 5, "index": False}):  # True was level 1
        with pytest.raises(ValueError, match="protocol_noisy: (level|index) must be"):
            adareg.data.protocol_noisy(clean, **bad)
    # 0-255 images got noise of 25/255, 0.05 % of their scale; NaN came out as NaN
    with pytest.raises(ValueError, match=r"47 of 48 values of clean lie outside \[-0.5, 1.5\]"):
        adareg.data.protocol_noisy(clean * 255, 25, 0)  # all but the 0
    with pytest.raises(ValueError, match="clean contains NaN"):
        adareg.data.protocol_noisy(np.where(clean > 0.5, np.nan, clean), 25, 0)
    # a stack got one draw for all its images, none of them its image's protocol noise
    with pytest.raises(ValueError, match=r"^protocol_noisy: clean must be one image \(H, W\), got shape \(2, 6, 8\)"):
        adareg.data.protocol_noisy(np.stack([clean, clean]), 25, 0)


def test_read_folder_sorts_by_name_and_explains_errors(tmp_path):
    from adareg.io import read_folder, write_image

    images = {name: np.full((4, 5), value) for name, value in (("b", 0.2), ("a", 0.6), ("c", 1.0))}
    for name, image in images.items():
        write_image(tmp_path / f"{name}.png", image)
    (tmp_path / "notes.txt").write_text("not an image")
    read = read_folder(tmp_path)
    assert list(read) == ["a", "b", "c"]
    np.testing.assert_allclose(read["a"], np.round(0.6 * 255) / 255)
    assert list(read_folder(tmp_path, 2)) == ["a", "b"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .png"):
        read_folder(tmp_path / "empty")
    with pytest.raises(ValueError, match="count"):
        read_folder(tmp_path, 0)


@pytest.mark.parametrize("name", sorted(adareg.data.SLICES))
def test_medical_slices(name):
    pytest.importorskip("pydicom")
    pytest.importorskip("skimage")
    picture = adareg.data.medical_slice(name, shape=(64, 64), dtype=np.float32)
    assert picture.shape == (64, 64) and picture.dtype == np.float32
    assert 0 <= picture.min() and picture.max() <= 1 and picture.std() > 0.05


def test_a_slice_this_pydicom_does_not_ship_is_named_not_downloaded(monkeypatch):
    """pydicom 3.0.0 ships no examples_overlay.dcm and would try the network for it."""
    pydicom_data = pytest.importorskip("pydicom.data")
    asked = []

    def shipped_file(name, read=False, download=True):
        asked.append(download)
        return None  # not among this version's files

    monkeypatch.setattr(pydicom_data, "get_testdata_file", shipped_file)
    with pytest.raises(FileNotFoundError, match=r"^medical_slice: 'mr-abdomen' is pydicom's test file "
                                                r"examples_overlay\.dcm, which pydicom .* does not ship; pip install "
                                                r"'pydicom>=3\.0\.1'$"):
        adareg.data.medical_slice("mr-abdomen")
    assert asked == [False]


def test_ct_slice_is_its_hounsfield_units_in_the_window():
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))  # 128 x 128, square: no crop
    hounsfield = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    expected = np.clip((hounsfield + 1000.0) / 2000.0, 0, 1)
    np.testing.assert_allclose(adareg.data.medical_slice("ct-spine"), expected)
    with pytest.raises(ValueError, match="unknown slice"):
        adareg.data.medical_slice("nosuch")
    # the central square was stretched to a non-square shape without a word
    with pytest.raises(ValueError, match=r"^medical_slice: shape must be square \(N, N\), got \(64, 128\)"):
        adareg.data.medical_slice("ct-spine", shape=(64, 128))
