"""adareg.io: intensity conventions of the readers, refusals that name the file, safe writes, and a fuzz test.

* Reading: integer images scaled by their type's range (PNG, TIFF, NPY), palette, grey +
  alpha and bilevel images as grey, colour refused, float images as stored with an
  ``IntensityWarning`` on another scale, multi-page TIFFs refused, big-endian data
  accepted, NaN/Inf refused; 16-bit RGB TIFFs at 16 bits and float64/float16 TIFFs (as
  tifffile writes them), 16-bit colour PNGs (which Pillow narrows to 8 bits) refused;
  a folder of two images of one stem refused.
* Lying files: an ``.npy`` header declaring more than the file holds is refused before
  ``np.load`` runs; Pillow's decompression-bomb limit is a ``ValueError``.
* Writing: integer and NaN images refused, the mode follows the umask, a replaced file keeps its mode, SIGTERM/SIGHUP
  leave no temporary file, errors name the output; ``check_output`` and ``same_file``.
* Fuzz: mutated PNG/TIFF/NPY files and arbitrary bytes give a result or the readers'
  own errors, in a subprocess whose address space is limited to 1 GiB.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import stat
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest

from adareg import io
from adareg.io import IntensityWarning, check_output, read_array, read_folder, read_image, read_volume, same_file, \
    write_array, write_image

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def Image():
    return pytest.importorskip("PIL.Image", reason="Pillow is not installed (pip install adareg[examples])")


@pytest.fixture
def umask():
    """Set the process's umask for a test, and restore it."""
    saved = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(saved)


def _grey_palette(Image, grey: np.ndarray, colour: bool = False):
    """A palette image showing ``grey`` through a reversed palette (index i is grey 255 - i), or a colour one."""
    picture = Image.fromarray((255 - grey).astype(np.uint8), mode="L").convert("P")
    entries = [(255 - i, i if colour else 255 - i, 255 - i) for i in range(256)]
    picture.putpalette([value for entry in entries for value in entry])
    return picture


@contextlib.contextmanager
def _no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# -------------------------------------------------------------------------------- integer scaling


@pytest.mark.parametrize("suffix", [".png", ".tif", ".npy"])
@pytest.mark.parametrize("dtype, bits", [(np.uint8, 8), (np.uint16, 16)])
def test_integer_images_are_scaled_by_their_range(Image, tmp_path, suffix, dtype, bits):
    data = np.random.default_rng(bits).integers(0, np.iinfo(dtype).max, (9, 7), endpoint=True, dtype=dtype)
    data[0, :2] = (0, np.iinfo(dtype).max)
    path = tmp_path / f"image{suffix}"
    np.save(path, data) if suffix == ".npy" else Image.fromarray(data).save(path)
    image, depth = read_image(path)
    assert depth == bits and image.dtype == np.float64
    np.testing.assert_array_equal(image, data.astype(np.float64) / (2**bits - 1))
    assert image.min() == 0 and image.max() == 1


def test_big_endian_data_are_read_in_native_order(Image, tmp_path):
    data = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
    Image.frombytes("I;16B", (4, 3), data.astype(">u2").tobytes()).save(tmp_path / "big.tif")
    np.save(tmp_path / "big16.npy", data.astype(">u2"))
    np.save(tmp_path / "big.npy", (data / 65535).astype(">f8"))
    np.save(tmp_path / "kspace.npy", (data + 1j * data).astype(">c16"))
    for name in ("big.tif", "big16.npy", "big.npy"):
        image, _ = read_image(tmp_path / name)
        np.testing.assert_allclose(image, data / 65535, rtol=0, atol=1e-15, err_msg=name)
    kspace = read_array(tmp_path / "kspace.npy")
    assert kspace.dtype == np.complex128 and kspace.dtype.isnative
    np.testing.assert_array_equal(kspace, data + 1j * data)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint32, np.bool_])
def test_other_integer_npy_images_are_refused(tmp_path, dtype):
    path = tmp_path / "image.npy"
    np.save(path, np.ones((4, 4), dtype=dtype))
    with pytest.raises(ValueError, match=rf"{path}: pixels of type \w+ have no intensity convention.*uint8"):
        read_image(path)


def test_signed_tiff_is_refused(Image, tmp_path):
    path = tmp_path / "signed.tif"
    Image.fromarray(np.int32([[1, -2], [3, 4]])).save(path)
    with pytest.raises(ValueError, match=f"{path}: pixels of type int32 have no intensity convention"):
        read_image(path)


# -------------------------------------------------------------------------------- palette, alpha, colour


@pytest.mark.parametrize("transparency", [None, 7])
def test_palette_images_read_as_their_grey_values(Image, tmp_path, transparency):
    grey = np.random.default_rng(3).integers(0, 255, (8, 6), endpoint=True)
    picture = _grey_palette(Image, grey)
    path = tmp_path / "palette.png"
    picture.save(path) if transparency is None else picture.save(path, transparency=transparency)
    assert Image.open(path).mode == "P"
    with _no_warning():
        image, bits = read_image(path)
    assert bits == 8
    np.testing.assert_allclose(image, grey / 255, rtol=0, atol=1 / 255)


def test_grey_alpha_bilevel_and_equal_channel_images_are_grey(Image, tmp_path):
    grey = np.random.default_rng(4).integers(0, 255, (5, 6), endpoint=True).astype(np.uint8)
    alpha = np.random.default_rng(5).integers(0, 255, (5, 6), endpoint=True).astype(np.uint8)
    Image.fromarray(np.stack([grey, alpha], axis=-1), mode="LA").save(tmp_path / "la.png")
    Image.fromarray(np.stack([grey] * 3 + [alpha], axis=-1), mode="RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(tmp_path / "rgb.tif")
    Image.fromarray(grey > 127).convert("1").save(tmp_path / "bilevel.png")
    for name in ("la.png", "rgba.png", "rgb.tif"):
        image, bits = read_image(tmp_path / name)
        assert bits == 8
        np.testing.assert_array_equal(image, grey / 255, err_msg=name)
    image, bits = read_image(tmp_path / "bilevel.png")
    np.testing.assert_array_equal(image, (grey > 127).astype(float))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_an_orientation_tag_is_applied_as_viewers_show_the_image(Image, tmp_path, orientation):
    # the pixels were read as stored: a phone's PNG tagged "turn a quarter" came out, and was written, lying on
    # its side; Pillow's exif_transpose, what viewers show, is the reference, for TIFF's tag 274 too
    from PIL import ImageOps

    stored = (np.arange(12).reshape(3, 4) * 20).astype(np.uint8)
    exif = Image.Exif()
    exif[274] = orientation
    Image.fromarray(stored).save(tmp_path / "photo.png", exif=exif)
    with Image.open(tmp_path / "photo.png") as picture:
        shown = np.asarray(ImageOps.exif_transpose(picture)) / 255
    np.testing.assert_array_equal(read_image(tmp_path / "photo.png")[0], shown)
    tifffile = pytest.importorskip("tifffile", reason="tifffile is not installed (pip install adareg[io])")
    tifffile.imwrite(tmp_path / "page.tif", stored, photometric="minisblack",
                     extratags=[(274, "H", 1, orientation, True)])
    np.testing.assert_array_equal(read_image(tmp_path / "page.tif")[0], shown)
    np.testing.assert_array_equal(read_volume(tmp_path / "page.tif").data[0], shown.astype(np.float32))


def test_16_bit_rgb_and_alpha_tiffs_are_read_at_16_bits(tmp_path):
    tifffile = pytest.importorskip("tifffile", reason="tifffile is not installed (pip install adareg[io])")
    grey = np.random.default_rng(9).integers(0, 65535, (5, 6), endpoint=True).astype(np.uint16)
    tifffile.imwrite(tmp_path / "rgb.tif", np.stack([grey] * 3, axis=-1), photometric="rgb")
    tifffile.imwrite(tmp_path / "rgba.tif", np.stack([grey] * 3 + [grey // 2], axis=-1), photometric="rgb",
                     extrasamples=["unassalpha"])
    tifffile.imwrite(tmp_path / "la.tif", np.stack([grey, grey // 2], axis=-1), photometric="minisblack",
                     extrasamples=["unassalpha"])
    for name in ("rgb.tif", "rgba.tif", "la.tif"):
        image, bits = read_image(tmp_path / name)
        assert bits == 16, name
        np.testing.assert_array_equal(image, grey / 65535, err_msg=name)


def test_tiffs_tifffile_cannot_decode_are_read_by_pillow(Image, tmp_path, monkeypatch):
    # LZW and JPEG need imagecodecs in tifffile; Pillow decodes them, as it did before tifffile read images
    pytest.importorskip("tifffile", reason="tifffile is not installed (pip install adareg[io])")
    grey = np.random.default_rng(4).integers(0, 255, (5, 6), endpoint=True).astype(np.uint8)
    deep = (grey.astype(np.uint16) * 257)
    Image.fromarray(grey).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    Image.fromarray(deep).save(tmp_path / "lzw16.tif", compression="tiff_lzw")
    # the floating-point predictor (GDAL's and libtiff's for float rasters) was refused as "not a readable TIFF"
    flat = np.random.default_rng(5).random((5, 6)).astype(np.float32)
    Image.fromarray(flat).save(tmp_path / "predictor.tif", compression="tiff_adobe_deflate", tiffinfo={317: 3})
    for name, expected, depth in (("lzw.tif", grey / 255, 8), ("lzw16.tif", deep / 65535, 16),
                                  ("predictor.tif", flat, None)):
        image, bits = read_image(tmp_path / name)
        assert bits == depth
        np.testing.assert_array_equal(image, expected)
    # without tifffile, a 16-bit colour page would come out of Pillow at 8 bits: refused
    import tifffile

    tifffile.imwrite(tmp_path / "rgb16.tif", np.stack([deep] * 3, axis=-1), photometric="rgb")
    tifffile.imwrite(tmp_path / "white8.tif", grey, photometric="miniswhite")
    tifffile.imwrite(tmp_path / "white16.tif", deep, photometric="miniswhite")

    def no_tifffile(*args, **kwargs):
        raise ImportError("reading and writing tiff files needs tifffile: pip install adareg[io]")

    monkeypatch.setattr("adareg.io.tiff.stack", no_tifffile)
    with pytest.raises(ValueError, match=r"rgb16.tif: 16-bit colour, which Pillow reads at 8 bits per sample"):
        read_image(tmp_path / "rgb16.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "lzw.tif")[0], grey / 255)
    # white is zero: Pillow inverts 8-bit pages, but 16-bit ones it returned as stored, a negative image
    np.testing.assert_array_equal(read_image(tmp_path / "white8.tif")[0], (255 - grey) / 255)
    with pytest.raises(ValueError, match=r"white16.tif: a 16-bit white-is-zero page, which Pillow reads without "
                                         r"inverting and tifffile cannot decode here"):
        read_image(tmp_path / "white16.tif")


def _png16(path: Path, samples: np.ndarray, colour_type: int) -> Path:
    """A 16-bit PNG of ``samples`` (rows, columns, channels), encoded here by hand (Pillow writes no 16-bit colour)."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    rows, columns = samples.shape[:2]
    scanlines = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in samples)
    header = struct.pack(">IIBBBBB", columns, rows, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(scanlines))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("colour_type, channels, kind", [(2, 3, "RGB"), (4, 2, "grey \\+ alpha"), (6, 4, "RGBA")])
def test_16_bit_colour_pngs_are_refused_not_read_at_8_bits(Image, tmp_path, colour_type, channels, kind):
    grey = np.arange(30, dtype=np.uint16).reshape(5, 6) * 2000 + 1  # grey levels that 8 bits cannot hold
    path = _png16(tmp_path / "deep.png", np.stack([grey] * channels, axis=-1), colour_type)
    with pytest.raises(ValueError, match=f"^{path}: a 16-bit {kind} PNG, which Pillow reads at 8 bits"):
        read_image(path)


def test_colour_is_refused_whatever_its_storage(Image, tmp_path):
    grey = np.arange(30, dtype=np.uint8).reshape(5, 6)
    Image.fromarray(np.stack([grey, grey, grey + 1], axis=-1)).save(tmp_path / "rgb.png")
    _grey_palette(Image, grey, colour=True).save(tmp_path / "palette.png")
    for name in ("rgb.png", "palette.png"):
        with pytest.raises(ValueError, match=f"{tmp_path / name}: a colour image; adareg reads grey images"):
            read_image(tmp_path / name)


# -------------------------------------------------------------------------------- floats, pages, NaN


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_float_images_are_returned_as_stored(Image, tmp_path, suffix):
    rng = np.random.default_rng(6)
    noisy = (np.kron(rng.random((4, 4)), np.ones((8, 8))) + 30 / 255 * rng.standard_normal((32, 32)))
    noisy[0, :2] = (0, 1)  # noise of sigma 30/255 goes beyond [0, 1] without a warning
    noisy = noisy.astype(np.float32)
    path = tmp_path / f"noisy{suffix}"
    np.save(path, noisy) if suffix == ".npy" else Image.fromarray(noisy).save(path)
    with _no_warning():
        image, bits = read_image(path)
    assert bits is None and image.dtype == np.float64
    np.testing.assert_array_equal(image, noisy.astype(np.float64))
    assert image.min() < 0 and image.max() > 1


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
@pytest.mark.parametrize("top, hint", [(255, "an 8-bit image stored as float\\? divide by 255"),
                                       (4095, "a 16-bit image stored as float\\? divide by 65535"),
                                       (-1, r"values span \[-1, 1\]: rescale them to \[0, 1\]")])
def test_float_images_on_another_scale_warn(Image, tmp_path, suffix, top, hint):
    grid = np.linspace(0, 1, 64).reshape(8, 8)
    data = np.round(grid * top) if top > 0 else 2 * grid - 1
    path = tmp_path / f"scaled{suffix}"
    np.save(path, data) if suffix == ".npy" else Image.fromarray(data.astype(np.float32)).save(path)
    with pytest.warns(IntensityWarning, match=f"{path}: .*outside \\[-0.5, 1.5\\].*{hint}") as record:
        image, _ = read_image(path)
    np.testing.assert_array_equal(image, data if suffix == ".npy" else data.astype(np.float32))  # as stored
    assert [w.filename for w in record] == [__file__]  # the user's line
    if suffix == ".tif":  # (read_folder reads PNG and TIFF files; it pointed at adareg/io/images.py)
        with pytest.warns(IntensityWarning, match=f"{path}") as record:
            read_folder(tmp_path)
        assert [w.filename for w in record] == [__file__]


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_writing_an_image_on_another_scale_warns_of_the_clipping(Image, tmp_path, suffix):
    # a 0-255 float image written as 8 bits saturates: every value above 1 becomes 255
    grid = np.linspace(0, 1, 64).reshape(8, 8)
    path = tmp_path / f"out{suffix}"
    with pytest.warns(IntensityWarning, match=f"write_image: {path}: 63 of 64 values lie outside .* clipped") as record:
        write_image(path, 255 * grid)
    assert np.count_nonzero(read_image(path)[0] == 1.0) == 63
    assert len(record) == 1  # told once: not also as values clipped by more than a grey level
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_image(path, (1 + 0.9 / 255) * grid - 0.45 / 255)  # an overshoot within a grey level: no word
        write_image(tmp_path / "out.npy", 255 * grid)  # .npy keeps the values


@pytest.mark.parametrize("suffix, bits", [(".png", 8), (".tif", 16)])
def test_writing_an_image_mostly_clipped_within_its_scale_warns(Image, tmp_path, suffix, bits):
    """Values in [-0.5, 1.5] were clipped to [0, 1] without a word however many: an image of 1.4 came out all white
    (an audit, 2026-12-08).  More than 1% of the values clipped by more than a grey level now warn."""
    path, top = tmp_path / f"out{suffix}", 2**bits - 1
    ramp = np.linspace(-0.3, 1.3, 400).reshape(20, 20)
    few = np.full((20, 20), 0.5)
    few.flat[:4] = 1.4  # 1%, not more: clipped without a word
    for image in (np.full((20, 20), 1.4), ramp, np.where(np.arange(400).reshape(20, 20) < 5, 1.4, few)):
        clipped = np.count_nonzero((image < -1 / top) | (image > 1 + 1 / top))
        words = rf"write_image: {path}: {clipped} of 400 values lie beyond \[0, 1\] by more than one grey level " \
                rf"\(1/{top}\) and are clipped"
        with pytest.warns(IntensityWarning, match=words) as record:
            write_image(path, image, bits=bits)
        assert len(record) == 1 and record[0].filename == __file__
        with Image.open(path) as picture:
            np.testing.assert_array_equal(np.asarray(picture), np.round(np.clip(image, 0, 1) * top))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_image(path, few, bits=bits)


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_float_tiffs_of_any_width_are_read_as_stored(tmp_path, dtype):
    tifffile = pytest.importorskip("tifffile", reason="tifffile is not installed (pip install adareg[io])")
    stored = np.random.default_rng(10).random((5, 6)).astype(dtype)
    tifffile.imwrite(tmp_path / "float.tif", stored)
    image, bits = read_image(tmp_path / "float.tif")
    assert bits is None
    np.testing.assert_array_equal(image, stored.astype(np.float64))


def test_multi_page_tiff_is_refused(Image, tmp_path):
    path = tmp_path / "stack.tif"
    pages = [Image.fromarray(np.full((4, 4), value, np.uint8)) for value in (1, 2, 3)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    with pytest.raises(ValueError, match=f"{path}: 3 pages; adareg reads one 2D image per file"):
        read_image(path)


def test_non_finite_values_are_refused(Image, tmp_path):
    data = np.zeros((6, 6))
    data[0, 0], data[1, 1], data[2, 2] = np.nan, np.inf, -np.inf
    np.save(tmp_path / "image.npy", data)
    Image.fromarray(data.astype(np.float32)).save(tmp_path / "image.tif")
    np.save(tmp_path / "kspace.npy", data + 1j)
    for read, name in ((read_image, "image.npy"), (read_image, "image.tif"), (read_array, "kspace.npy")):
        with pytest.raises(ValueError, match=f"{tmp_path / name} contains 3 NaN or Inf values"):
            read(tmp_path / name)


def test_read_folder_names_a_missing_folder_and_a_file(tmp_path):
    # a file was reported as a folder that "does not exist"
    with pytest.raises(FileNotFoundError, match="read_folder: folder .*missing' does not exist"):
        read_folder(tmp_path / "missing")
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="read_folder: .*a.png' is a file, not a folder of images"):
        read_folder(tmp_path / "a.png")


def test_read_folder_applies_the_conventions(Image, tmp_path):
    grey = np.arange(20).reshape(4, 5) * 3000
    Image.fromarray(grey.astype(np.uint16)).save(tmp_path / "a16.png")
    _grey_palette(Image, grey // 257).save(tmp_path / "b.png")
    read = read_folder(tmp_path)
    np.testing.assert_array_equal(read["a16"], grey / 65535)
    np.testing.assert_array_equal(read["b"], (grey // 257) / 255)
    Image.fromarray(np.float32(grey / 257)).save(tmp_path / "c.tif")
    with pytest.warns(IntensityWarning, match="c.tif"):
        read_folder(tmp_path)


def test_read_folder_names_the_images_it_skips(Image, tmp_path):
    """Images in formats read_folder does not read were skipped without a word: a folder of PNGs and JPEGs
    was read in part."""
    grey = np.zeros((4, 4), np.uint8)
    Image.fromarray(grey).save(tmp_path / "a.png")
    for name in ("b.jpg", "c.JPEG", "d.bmp", "e.pgm", "f.ppm", "g.gif", "h.webp"):
        Image.fromarray(grey).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match=r"holds 7 images in formats it does not read \(b.jpg, c.JPEG, d.bmp, "
                                         r"e.pgm, f.ppm and 2 more\), skipped: only PNG and TIFF are read"):
        assert list(read_folder(tmp_path)) == ["a"]
    for path in tmp_path.glob("[b-h].*"):
        path.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a text file beside the images is no image skipped
        assert list(read_folder(tmp_path)) == ["a"]


@pytest.mark.parametrize("count", [True, False, 0, 1.0])
def test_read_folder_refuses_a_bad_count(Image, tmp_path, count):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match=f"read_folder: count must be a positive int or None, got {count!r}"):
        read_folder(tmp_path, count=count)
    assert list(read_folder(tmp_path, count=1)) == ["a"]
    assert list(read_folder(tmp_path, count=np.int64(1))) == ["a"]  # NumPy's ints count too


def test_read_folder_refuses_a_count_beyond_its_images(Image, tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"read_folder: count is 2, but folder .* holds 1 images"):
        read_folder(tmp_path, count=2)  # returned one image before, where a protocol numbers two


def test_read_folder_skips_hidden_files_and_subfolders(Image, tmp_path):
    Image.fromarray(np.full((4, 4), 51, np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "._a.png").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")  # not an image: refused before
    (tmp_path / "b.png").mkdir()
    assert {name: image.tolist() for name, image in read_folder(tmp_path).items()} == {"a": [[0.2] * 4] * 4}


def test_read_folder_refuses_two_images_of_one_stem(Image, tmp_path):
    for name in ("a.png", "a.tif", "b.png"):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / name)
    with pytest.raises(ValueError, match=r"read_folder: folder .* holds images of one name in two files \(a.png and "
                                         r"a.tif\)"):
        read_folder(tmp_path)


# -------------------------------------------------------------------------------- lying and corrupt files


def _npy_header(path: Path, shape: tuple[int, ...], payload: bytes = b"") -> Path:
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": shape})
        f.write(payload)
    return path


@pytest.mark.parametrize("shape, words", [((2**20, 2**20), "1099511627776 elements, more than the 2147483648"),
                                          ((1000, 1000), "8000000 bytes.* holds 80 bytes of data: truncated"),
                                          ((-1, 5), "invalid shape")])
def test_npy_headers_are_checked_before_allocating(tmp_path, monkeypatch, shape, words):
    path = _npy_header(tmp_path / "lying.npy", shape, bytes(80))
    monkeypatch.setattr(np, "load", lambda *args, **kwargs: pytest.fail("np.load ran on a refused header"))
    for read in (read_array, read_image):
        with pytest.raises(ValueError, match=f"{path}: .*{words}"):
            read(path)


def test_non_numeric_and_corrupt_npy_files_are_refused(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(tmp_path / "record.npy", np.zeros(3, dtype=[("a", "<f8"), ("b", "<i4")]))
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    (tmp_path / "text-file.npy").write_text("not an array")
    with open(tmp_path / "archive.npy", "wb") as f:
        np.savez(f, a=np.zeros(3))
    (tmp_path / "folder.npy").mkdir()
    cases = {"objects.npy": "Python objects", "record.npy": "not numeric", "text.npy": "not numeric",
             "text-file.npy": "not a readable .npy", "archive.npy": "not a readable .npy",
             "folder.npy": "not a readable .npy"}
    for name, words in cases.items():
        with pytest.raises(ValueError, match=f"{tmp_path / name}: .*{words}"):
            read_array(tmp_path / name)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'missing.npy'}: no such file"):
        read_array(tmp_path / "missing.npy")


def test_memory_errors_are_value_errors(Image, tmp_path, monkeypatch):
    np.save(tmp_path / "a.npy", np.zeros((3, 3)))
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / "a.png")

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(np, "load", exhausted)
    monkeypatch.setattr(Image.Image, "load", exhausted)
    for read, name in ((read_array, "a.npy"), (read_image, "a.npy"), (read_image, "a.png")):
        with pytest.raises(ValueError, match=f"{tmp_path / name}: too large to read into memory"):
            read(tmp_path / name)


def _png_header(width: int, height: int) -> bytes:
    """A PNG with a valid IHDR declaring ``width`` x ``height`` grey pixels, and no pixel data."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + \
        chunk(b"IEND", b"")


def test_decompression_bombs_are_value_errors(Image, tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(100_000, 100_000))
    with pytest.raises(ValueError, match=f"{bomb}: too many pixels to read safely"):
        read_image(bomb)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 144 pixels: Pillow's warning, not yet its error
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(tmp_path / "twelve.png")
    with pytest.raises(ValueError, match=f"{tmp_path / 'twelve.png'}: too many pixels to read safely"):
        read_image(tmp_path / "twelve.png")
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(tmp_path / "jpeg.png", format="JPEG")  # no PNG header
    with pytest.warns(Image.DecompressionBombWarning), \
            pytest.raises(ValueError, match=f"{tmp_path / 'jpeg.png'}: too many pixels to read safely"):
        read_image(tmp_path / "jpeg.png")


def test_reading_leaves_the_process_s_warning_filters_alone(Image, tmp_path, monkeypatch):
    """Each read turned Pillow's DecompressionBombWarning into an error with a filter, which is process-wide: reads
    overlapping in threads left it behind, and the program's own Image.open of a large image raised (an audit)."""
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(tmp_path / "twelve.png")
    opened, seen = Image.open, []

    def watched(*args, **kwargs):
        seen.append(list(warnings.filters))
        return opened(*args, **kwargs)

    monkeypatch.setattr(Image, "open", watched)
    before = list(warnings.filters)
    read_image(tmp_path / "twelve.png")
    assert seen == [before]


def test_unreadable_images_name_the_file(Image, tmp_path):
    (tmp_path / "truncated.png").write_bytes(_png_header(64, 64)[:30])
    (tmp_path / "folder.png").mkdir()
    for name in ("truncated.png", "folder.png"):
        with pytest.raises(ValueError, match=f"{tmp_path / name}: not a readable image"):
            read_image(tmp_path / name)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'missing.tif'}: no such file"):
        read_image(tmp_path / "missing.tif")
    with pytest.raises(ValueError, match="unsupported image type '.jpg'"):
        read_image(tmp_path / "photo.jpg")


# -------------------------------------------------------------------------------- writing


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_new_files_follow_the_umask(Image, tmp_path, umask, mask):
    umask(mask)
    write_image(tmp_path / "new.png", np.zeros((4, 4)))
    write_array(tmp_path / "new.npy", np.zeros(3))
    for name in ("new.png", "new.npy"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o666 & ~mask, name


@pytest.mark.parametrize("mode, mask", [(0o644, 0o077), (0o600, 0o022), (0o664, 0o022)])
def test_replaced_files_keep_their_mode(tmp_path, umask, mode, mask):
    path = tmp_path / "old.npy"
    write_array(path, np.zeros(3))
    os.chmod(path, mode)
    umask(mask)
    write_array(path, np.ones(3))
    assert stat.S_IMODE(os.stat(path).st_mode) == mode
    np.testing.assert_array_equal(np.load(path), np.ones(3))


def test_names_at_the_file_system_limit_are_written(tmp_path):
    # the temporary twin's name added some 30 characters: a legal name passed the output check, then the write
    # failed after the computation with "File name too long"
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    image = tmp_path / ("r" * (limit - 4) + ".png")
    write_image(image, np.eye(4))
    np.testing.assert_array_equal(read_image(image)[0], np.eye(4))
    folder = tmp_path / ("f" * limit)
    io.files.write_folder_atomically(folder, lambda temporary: (temporary / "a").write_bytes(b"a"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([image.name, folder.name])


SLOW_WRITE = """
import sys, time
from pathlib import Path
from adareg import io

def slow(temporary):
    Path(temporary).write_bytes(b"half")
    print("writing", flush=True)
    time.sleep(60)

io.files.write_atomically(Path(sys.argv[1]), slow)
"""


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_termination_during_a_write_leaves_no_temporary_file(tmp_path, name):
    number = getattr(signal, name, None)
    if number is None:
        pytest.skip(f"no {name} on this platform")
    target = tmp_path / "out.npy"
    target.write_bytes(b"old")
    child = subprocess.Popen([sys.executable, "-c", SLOW_WRITE, str(target)], stdout=subprocess.PIPE, text=True,
                             cwd=ROOT)
    try:
        assert child.stdout.readline() == "writing\n"
        assert len(list(tmp_path.glob(".out.npy.*"))) == 1  # the temporary file exists mid-write
        child.send_signal(number)
        assert child.wait(timeout=30) == 128 + number
    finally:
        child.kill()
        child.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npy"]
    assert target.read_bytes() == b"old"


def test_signal_handlers_are_restored_and_custom_ones_kept(tmp_path):
    seen = []
    before = signal.getsignal(signal.SIGTERM)
    io.files.write_atomically(tmp_path / "a.npy", lambda t: seen.append(signal.getsignal(signal.SIGTERM)))
    assert seen[0] is io.files._exit and signal.getsignal(signal.SIGTERM) == before

    def custom(number, frame):
        raise AssertionError("not sent")

    signal.signal(signal.SIGTERM, custom)
    try:
        io.files.write_atomically(tmp_path / "b.npy", lambda t: seen.append(signal.getsignal(signal.SIGTERM)))
        assert seen[1] is custom and signal.getsignal(signal.SIGTERM) is custom
    finally:
        signal.signal(signal.SIGTERM, before)


def test_write_errors_name_the_output_and_leave_nothing(tmp_path):
    target = tmp_path / "out.npy"

    def full_disk(temporary: str) -> None:
        Path(temporary).write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), temporary)

    with pytest.raises(OSError, match=f"cannot write {target}: {os.strerror(errno.ENOSPC)}$"):
        io.files.write_atomically(target, full_disk)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError, match=f"cannot write {tmp_path / 'file' / 'out.npy'}: "):
        io.files.write_atomically(tmp_path / "file" / "out.npy", full_disk)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a POSIX user whom permissions bind")
def test_read_only_folders_are_reported(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o500)
    try:
        with pytest.raises(ValueError, match=f"{folder / 'out.npy'}: the folder {folder} is not writable"):
            check_output(folder / "out.npy", (".npy",))
        with pytest.raises(OSError, match=f"cannot write {folder / 'out.npy'}: Permission denied"):
            io.files.write_atomically(folder / "out.npy", lambda t: None)
    finally:
        folder.chmod(0o700)


def test_check_output(tmp_path):
    suffixes = io.IMAGE_SUFFIXES + io.ARRAY_SUFFIXES
    assert check_output(str(tmp_path / "out.PNG"), suffixes) == tmp_path / "out.PNG"
    assert check_output(tmp_path / "new" / "deeper" / "out.npy", suffixes) == tmp_path / "new" / "deeper" / "out.npy"
    assert not (tmp_path / "new").exists()  # checked, not created
    with pytest.raises(ValueError, match=r"out.jpg: the output must end in .png, .tif, .tiff, .npy"):
        check_output(tmp_path / "out.jpg", suffixes)
    (tmp_path / "dir.npy").mkdir()
    with pytest.raises(ValueError, match=f"{tmp_path / 'dir.npy'}: is a directory"):
        check_output(tmp_path / "dir.npy", suffixes)
    for hidden in (".png", ".NPY"):  # a hidden file's name has no suffix (Path.suffix is ""): not an image name
        with pytest.raises(ValueError, match="the output needs a name before its suffix"):
            io.write_image(tmp_path / hidden, np.zeros((4, 4)))
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=f"cannot create the output's folder, {tmp_path / 'file'} is not a direc"):
        check_output(tmp_path / "file" / "sub" / "out.npy", suffixes)
    with pytest.raises(ValueError, match="the output must end in .npy"):
        write_array(tmp_path / "out.png", np.zeros(3))
    with pytest.raises(ValueError, match=f"^write_image: {re.escape(str(tmp_path / 'out.png'))}: bits must be 8, 16 or "
                                         "None, got 12"):  # as the docstring says, the message names the path
        write_image(tmp_path / "out.png", np.zeros((2, 2)), bits=12)


def test_same_file(tmp_path, monkeypatch):
    path = tmp_path / "a.npy"
    path.write_bytes(b"")
    (tmp_path / "b.npy").write_bytes(b"")
    (tmp_path / "link.npy").symlink_to(path)
    os.link(path, tmp_path / "hard.npy")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    for other in ("a.npy", "./a.npy", tmp_path / "sub" / ".." / "a.npy", "link.npy", "hard.npy"):
        assert same_file(path, other), other
    for other in ("b.npy", "missing.npy", tmp_path / "missing" / "a.npy"):
        assert not same_file(path, other), other
    assert not same_file("missing.npy", "missing.npy")


def test_files_written_together_replace_their_targets_all_or_none(tmp_path):
    first, second = tmp_path / "first.npy", tmp_path / "sub" / "second.npy"
    np.save(first, np.zeros(2))
    with pytest.raises(RuntimeError, match="between"):
        with io.written_together():
            write_array(first, np.ones(2))
            np.testing.assert_array_equal(np.load(first), np.zeros(2))  # not yet in place
            write_array(second, np.ones(3))
            raise RuntimeError("a failure between the outputs and the end")
    np.testing.assert_array_equal(np.load(first), np.zeros(2))
    assert not second.exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["first.npy", "sub"]  # no temporary file
    with io.written_together():
        write_array(first, np.ones(2))
        write_array(second, np.ones(3))
    np.testing.assert_array_equal(np.load(first), np.ones(2))
    np.testing.assert_array_equal(np.load(second), np.ones(3))
    write_array(first, np.full(2, 2.0))  # outside a group, in place at once
    np.testing.assert_array_equal(np.load(first), np.full(2, 2.0))


def test_a_write_protected_output_is_refused(tmp_path, monkeypatch):
    """Replacing a file needs only its folder's permission, so a file its owner made read-only was replaced (an
    audit, 2026-12-06); as cp and a shell's redirection, adareg refuses it (the test stands in for a user who may
    not write it, since root may)."""
    path = tmp_path / "kept.npy"
    path.write_bytes(b"")
    access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: not (mode & os.W_OK and Path(p) == path) and access(p, mode))
    with pytest.raises(ValueError, match=f"{path}: the file is write-protected"):
        check_output(path, (".npy",))
    with pytest.raises(ValueError, match="write-protected"):
        write_array(path, np.zeros(2))
    assert path.read_bytes() == b""
    check_output(tmp_path / "new.npy", (".npy",))


def test_an_output_that_is_a_link_is_written_through_it(tmp_path, monkeypatch):
    """A link was replaced by a regular file, and the file it names kept the old data; cp writes through it."""
    target, link = tmp_path / "data" / "target.bin", tmp_path / "out.npy"
    target.parent.mkdir()
    target.write_bytes(b"old")
    link.symlink_to(target)
    write_array(link, np.arange(3.0))  # the temporary takes the link's suffix, which np.save needs
    assert link.is_symlink()
    np.testing.assert_array_equal(np.load(target), np.arange(3.0))
    folder, series = tmp_path / "empty", tmp_path / "series"
    folder.mkdir()
    series.symlink_to(folder)
    io.files.write_folder_atomically(io.check_output_folder(series), lambda t: (t / "1.dcm").write_bytes(b"x"))
    assert series.is_symlink() and (folder / "1.dcm").read_bytes() == b"x"
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    with pytest.raises(ValueError, match="is the current folder"):  # it said "PosixPath('.') has an empty name"
        io.check_output_folder(".")


@pytest.mark.skipif(os.name != "posix", reason="needs POSIX file-size limits (resource.RLIMIT_FSIZE)")
@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_a_write_cut_short_is_an_error(Image, tmp_path, suffix):
    """Pillow's TIFF writer ignores a short write, so a full disk left a truncated TIFF and no error (an audit,
    2026-12-06).  A process limited to files of 4 KiB stands in for the full disk: writes past it fail."""
    script = (
        "import resource, signal, sys, numpy\n"
        "from adareg.io import write_image\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of ending the process\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "write_image(sys.argv[1], numpy.random.default_rng(9).random((64, 64)), bits=16)\n"  # 8 KiB of pixels
    )
    path = tmp_path / f"out{suffix}"
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode != 0 and f"OSError: cannot write {path}: File too large" in out.stderr, out.stderr
    assert list(tmp_path.iterdir()) == []


def test_round_trip_at_16_bits(Image, tmp_path):
    image = np.random.default_rng(8).random((6, 7))
    for suffix in (".png", ".tif"):
        write_image(tmp_path / f"out{suffix}", image, bits=16)
        read, bits = read_image(tmp_path / f"out{suffix}")
        assert bits == 16
        np.testing.assert_allclose(read, image, rtol=0, atol=0.5 / 65535)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_write_image_refuses_integers_and_non_finite_values(Image, tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    with pytest.raises(ValueError, match=f"write_image: {path}: expected a non-empty 2D float array of intensities "
                                         r"in \[0, 1\], got uint8"):
        write_image(path, np.full((4, 4), 200, np.uint8))
    with pytest.raises(ValueError, match=f"write_image: {path}: expected a non-empty 2D float array .* shape \\(0, 8\\)"):
        write_image(path, np.ones((0, 8)))
    image = np.full((4, 4), 0.5)
    image[1, 2] = np.nan
    with pytest.raises(ValueError, match=f"write_image: {path}: the image contains 1 NaN or Inf value"):
        write_image(path, image)
    assert not path.exists()


@pytest.mark.parametrize("array, words", [
    (np.array([["a", "b"]]), "expected a numeric array .* got dtype <U1"),
    (np.array([[1, None]], dtype=object), "expected a numeric array .* got dtype object"),
    (np.array([[0.5, np.nan]]), "the array contains 1 NaN or Inf value"),
    (np.array([[1j, np.inf]]), "the array contains 1 NaN or Inf value"),
])
def test_write_array_refuses_what_read_array_would(tmp_path, array, words):
    path = tmp_path / "out.npy"
    with pytest.raises(ValueError, match=f"write_array: {path}: {words}"):
        io.write_array(path, array)
    assert not path.exists()
    io.write_array(path, np.array([[True, False]]))  # bool, integers, floats and complex are written
    assert io.read_array(path).dtype == bool


# -------------------------------------------------------------------------------- fuzz


def _fix_png_checksums(data: bytearray) -> None:
    """Recompute each PNG chunk's CRC, so that a mutation reaches Pillow's parser instead of its CRC check."""
    position = 8
    while position + 12 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        end = position + 12 + length
        if end > len(data):
            return
        data[end - 4 : end] = zlib.crc32(data[position + 4 : end - 4]).to_bytes(4, "big")
        position = end


def _seeds(Image, folder: Path) -> dict[str, bytes]:
    """Valid files of each kind the readers take, as bytes keyed by a name with the file's suffix."""
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (12, 10)).astype(np.uint8)
    pictures = {
        "grey.png": Image.fromarray(grey), "deep.png": Image.fromarray(grey.astype(np.uint16) * 257),
        "palette.png": Image.fromarray(grey).convert("P"), "la.png": Image.fromarray(grey).convert("LA"),
        "grey.tif": Image.fromarray(grey), "deep.tif": Image.fromarray(grey.astype(np.uint16) * 257),
        "float.tif": Image.fromarray(grey.astype(np.float32) / 255), "rgb.tif": Image.fromarray(grey).convert("RGB"),
    }
    for name, picture in pictures.items():
        picture.save(folder / name)
    pictures["grey.tif"].save(folder / "pages.tif", save_all=True, append_images=[pictures["grey.tif"]])
    arrays = {"float.npy": grey / 255, "big.npy": (grey / 255).astype(">f4"), "uint8.npy": grey,
              "complex.npy": grey * 1j, "mask.npy": grey > 100}
    for name, array in arrays.items():
        np.save(folder / name, array)
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _fuzz_readers(folder: Path, examples: int, memory: int) -> None:
    """Run in a subprocess by the fuzz test: every input gives a result or the readers' own errors."""
    import resource

    from hypothesis import given, settings
    from hypothesis import strategies as st
    from PIL import Image

    (folder / "seeds").mkdir()
    seeds = _seeds(Image, folder / "seeds")
    resource.setrlimit(resource.RLIMIT_AS, (memory, resource.getrlimit(resource.RLIMIT_AS)[1]))

    @st.composite
    def mutated(draw) -> tuple[str, bytes]:
        name = draw(st.sampled_from(sorted(seeds)))
        data = bytearray(seeds[name])
        for _ in range(draw(st.integers(1, 4))):
            where = draw(st.integers(0, max(0, len(data) - 1)) | st.integers(0, min(len(data), 160) - 1))
            action = draw(st.sampled_from(["flip", "set", "truncate", "insert"]))
            if action == "flip":
                data[where] ^= 1 << draw(st.integers(0, 7))
            elif action == "set":
                data[where] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
            elif action == "truncate":
                del data[where:]
            else:
                data[where:where] = draw(st.binary(min_size=1, max_size=8))
            if not data:
                break
        if name.endswith(".png") and draw(st.booleans()):
            _fix_png_checksums(data)
        return Path(name).suffix, bytes(data)

    arbitrary = st.tuples(st.sampled_from([".png", ".tif", ".npy"]), st.binary(max_size=600))

    @settings(max_examples=examples, deadline=None, database=None, derandomize=bool(os.environ.get("CI")))
    @given(mutated() | arbitrary)
    def check(case: tuple[str, bytes]) -> None:
        suffix, data = case
        path = folder / f"case{suffix}"
        path.write_bytes(data)
        readers = (read_image, read_array) if suffix == ".npy" else (read_image,)
        for read in readers:
            try:
                result = read(path)
            except (ValueError, FileNotFoundError) as err:
                assert str(path) in str(err), err
                continue
            if read is read_image:
                image, bits = result
                assert image.ndim == 2 and image.dtype == np.float64 and np.isfinite(image).all()
                assert bits in (8, 16, None) and (bits is None or 0 <= image.min() <= image.max() <= 1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # IntensityWarning and Pillow's notes on odd metadata are not failures
        check()


def test_readers_survive_fuzzing(tmp_path):
    pytest.importorskip("PIL.Image", reason="Pillow is not installed (pip install adareg[examples])")
    resource = pytest.importorskip("resource", reason="needs resource.setrlimit (POSIX)")
    if not hasattr(resource, "RLIMIT_AS"):
        pytest.skip("no RLIMIT_AS on this platform")
    code = ("import sys, pathlib; from tests.io.test_images import _fuzz_readers; "
            "_fuzz_readers(pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path), "300", str(2**30)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
