"""adareg.io.tiff through read_volume/write_volume, checked against tifffile and Pillow.

* Reading: every page of a stack (read_image refuses it, read_volume reads it whole);
  uint8/uint16 scaled by 1/255 and 1/65535 (12-bit values in 16-bit samples warned of),
  float pages as stored; one page is one slice;
  single pages made grey as Pillow does (palette, bilevel, white-is-zero, grey + alpha,
  RGB with equal channels), compared with Pillow's conversion and with read_image.
* Refusals in one line naming the file: colour, int32, 4- or 12-bit samples, several
  samples per pixel that are not alpha, pages of different sizes or types, more samples
  than MAX_ELEMENTS, a truncated stack (not read as fewer pages), corrupt data, NaN,
  values beyond float32.
* Writing, read back with tifffile: page count, bit depth kept, values within half a
  grey level, float32 without ``like``, ImageDescription; values beyond float32 refused.
"""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from adareg.io import IntensityWarning, read_image
from adareg.io.tiff import logged_damage
from adareg.io.volumes import is_volume, read_volume, write_volume

tifffile = pytest.importorskip("tifffile", reason="tifffile is not installed (pip install adareg[io])")


@pytest.fixture
def Image():
    return pytest.importorskip("PIL.Image", reason="Pillow is not installed (pip install adareg[examples])")


def _ramp(shape, dtype) -> np.ndarray:
    """Distinct values over the type's range: each page, row and column differs."""
    top = np.iinfo(dtype).max
    return (np.arange(np.prod(shape)).reshape(shape) * 7919 % (top + 1)).astype(dtype)


def _refusal(path: Path, match: str) -> str:
    with pytest.raises(ValueError, match=match) as info:
        read_volume(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


# ---------------------------------------------------------------------------------------------- reading


def test_a_multi_page_tiff_is_read_whole(tmp_path):
    stack = _ramp((3, 4, 5), np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    with pytest.raises(ValueError, match="3 pages"):
        read_image(tmp_path / "stack.tif")  # one image per file there
    volume = read_volume(tmp_path / "stack.tif")
    assert volume.format == "tiff" and volume.metadata == {"bits": 16}
    assert volume.data.shape == (3, 4, 5) and volume.data.dtype == np.float32
    np.testing.assert_allclose(volume.data, stack / 65535.0, rtol=1e-7)


@pytest.mark.parametrize("options", [{"imagej": True}, {}], ids=["imagej", "tifffile"])
def test_a_truncated_stack_is_refused_not_read_as_one_page(tmp_path, options):
    # truncate=True (as ImageJ writes beyond 4 GB) keeps the first page's header only: 6 slices were read as 1
    tifffile.imwrite(tmp_path / "cut.tif", _ramp((6, 8, 9), np.uint8), truncate=True, **options)
    _refusal(tmp_path / "cut.tif", "declares 6 images but holds 1 page")
    with pytest.raises(ValueError, match="declares 6 images but holds 1 page"):
        read_image(tmp_path / "cut.tif")


@pytest.mark.parametrize("axes", ["ZCYX", "TZYX"])
def test_a_hyperstack_is_refused_not_read_as_interleaved_slices(tmp_path, axes):
    # pages in file order run through both axes: 2 slices of 3 channels were read as 6 slices, channels mixed
    tifffile.imwrite(tmp_path / "hyper.tif", _ramp((2, 3, 8, 9), np.uint16), imagej=True, metadata={"axes": axes})
    _refusal(tmp_path / "hyper.tif", f"a hyperstack of axes {axes} and shape \\(2, 3, 8, 9\\)")


def test_an_ome_hyperstack_is_refused_and_an_ome_stack_read(tmp_path):
    # an OME-TIFF of 2 channels of 5 slices was read as 10 slices, channels and slices merged, without a word
    tifffile.imwrite(tmp_path / "hyper.ome.tif", _ramp((2, 5, 8, 9), np.uint16), ome=True,
                     metadata={"axes": "CZYX"}, photometric="minisblack")
    _refusal(tmp_path / "hyper.ome.tif", r"a hyperstack of axes CZYX and shape \(2, 5, 8, 9\)")
    stack = _ramp((5, 8, 9), np.uint16)
    tifffile.imwrite(tmp_path / "stack.ome.tif", stack, ome=True, metadata={"axes": "ZYX"}, photometric="minisblack")
    np.testing.assert_allclose(read_volume(tmp_path / "stack.ome.tif").data, stack / 65535.0, rtol=1e-7)


@pytest.mark.parametrize("axes", ["ZYX", "TYX", "CYX"])
def test_an_imagej_stack_of_one_axis_is_read_in_file_order(tmp_path, axes):
    stack = _ramp((4, 8, 9), np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", stack, imagej=True, metadata={"axes": axes})
    np.testing.assert_allclose(read_volume(tmp_path / "stack.tif").data, stack / 65535.0, rtol=1e-7)


def test_axes_of_length_one_count_for_nothing(tmp_path):
    # tifffile stores a (rows, columns, 1) array as axes YXQ: the file "declared 16 images but held 1 page",
    # and the advice given, to rewrite it with tifffile.imwrite(new, tifffile.imread(path)), made the same file
    image = _ramp((16, 20), np.uint16)
    tifffile.imwrite(tmp_path / "one.tif", image[..., None])
    np.testing.assert_array_equal(read_image(tmp_path / "one.tif")[0], image / 65535)
    stack = _ramp((4, 16, 20), np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", stack[..., None], photometric="minisblack")
    np.testing.assert_allclose(read_volume(tmp_path / "stack.tif").data, stack / 65535.0, rtol=1e-7)
    tifffile.imwrite(tmp_path / "hyper.tif", _ramp((2, 1, 3, 8, 9), np.uint16)[..., None], photometric="minisblack")
    _refusal(tmp_path / "hyper.tif", "a hyperstack of axes")  # two axes of several pages, singletons apart


@pytest.mark.parametrize("count", [3, 4])
def test_a_stack_stored_as_one_planar_page_is_refused(tmp_path, count):
    # tifffile's default made one RGB(A) page: 4 slices came back as 1 (the fourth as alpha), 3 equal ones as grey
    stack = np.repeat(_ramp((1, 8, 9), np.uint8), count, axis=0)
    with pytest.warns(DeprecationWarning):
        tifffile.imwrite(tmp_path / "planes.tif", stack)
    _refusal(tmp_path / "planes.tif", f"page 1 holds {count} planes of 8 x 9")


def test_reduced_resolution_pages_are_not_slices(tmp_path):
    full, thumbnail = _ramp((2, 8, 9), np.uint8), np.full((8, 9), 255, np.uint8)
    with tifffile.TiffWriter(tmp_path / "thumb.tif") as writer:
        writer.write(full[0], photometric="minisblack")
        writer.write(thumbnail, photometric="minisblack", subfiletype=1)  # NewSubfileType: reduced resolution
        writer.write(full[1], photometric="minisblack")
    np.testing.assert_allclose(read_volume(tmp_path / "thumb.tif").data, full / 255.0, rtol=1e-7)


def test_one_page_with_a_thumbnail_is_an_image_not_a_volume(tmp_path):
    """The CLI took such a file for a volume of one slice (an output .png refused, --masks refused)."""
    image = _ramp((1, 8, 9), np.uint8)[0]
    with tifffile.TiffWriter(tmp_path / "one.tif") as writer:
        writer.write(image, photometric="minisblack")
        writer.write(image[::4, ::4], photometric="minisblack", subfiletype=1)
    assert not is_volume(tmp_path / "one.tif")
    np.testing.assert_allclose(read_image(tmp_path / "one.tif")[0], image / 255.0, rtol=1e-7)
    with tifffile.TiffWriter(tmp_path / "two.tif") as writer:
        writer.write(image, photometric="minisblack")
        writer.write(image, photometric="minisblack")
    assert is_volume(tmp_path / "two.tif")


def test_pages_written_one_by_one_are_read_in_file_order(tmp_path):
    pages = _ramp((4, 6, 3), np.uint8)
    with tifffile.TiffWriter(tmp_path / "pages.tiff") as writer:
        for page in pages:
            writer.write(page, photometric="minisblack", metadata=None)
    volume = read_volume(tmp_path / "pages.tiff")
    assert volume.metadata == {"bits": 8}
    np.testing.assert_allclose(volume.data, pages / 255.0, rtol=1e-7)


def test_float_pages_are_read_as_stored(tmp_path):
    stack = np.random.default_rng(0).normal(0.5, 0.2, size=(2, 5, 4)).astype(np.float32)
    tifffile.imwrite(tmp_path / "float.tif", stack, photometric="minisblack")
    volume = read_volume(tmp_path / "float.tif")
    assert volume.metadata == {"bits": None}
    np.testing.assert_array_equal(volume.data, stack)


def test_imagej_signed_16_bit_stacks_are_read_as_stored_with_their_calibration(tmp_path):
    # ImageJ stores signed 16-bit values as uint16 plus 32768 and says so in its calibration, which was ignored:
    # a sinogram came back offset by 32768
    signed = np.array([[[-1000, -1, 0, 500]], [[-2, 3, 1200, -32768]]], np.int16)
    stored = (signed.astype(np.int32) + 32768).astype(np.uint16)
    tifffile.imwrite(tmp_path / "signed.tif", stored, imagej=True,
                     metadata={"axes": "ZYX", "cf": 0, "c0": -32768.0, "c1": 1.0, "vunit": "Gray Value"})
    np.testing.assert_array_equal(read_volume(tmp_path / "signed.tif", as_stored=True).data, signed)
    np.testing.assert_array_equal(read_volume(tmp_path / "signed.tif").data, stored / np.float32(65535))
    tifffile.imwrite(tmp_path / "poly.tif", stored, imagej=True,
                     metadata={"axes": "ZYX", "cf": 1, "c0": 0.0, "c1": 1.0, "c2": 0.5})
    with pytest.raises(ValueError, match="an ImageJ calibration of function cf=1, which adareg does not apply"):
        read_volume(tmp_path / "poly.tif", as_stored=True)


def test_one_page_is_one_slice_and_big_endian_is_read(tmp_path):
    page = _ramp((4, 5), np.uint16)
    tifffile.imwrite(tmp_path / "one.tif", page, byteorder=">", photometric="minisblack")
    data = read_volume(tmp_path / "one.tif").data
    assert data.shape == (1, 4, 5)
    np.testing.assert_allclose(data[0], page / 65535.0, rtol=1e-7)


def test_rgb_pages_with_equal_channels_are_grey(tmp_path):
    grey = _ramp((2, 4, 5), np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", np.stack([grey] * 3, axis=-1), photometric="rgb")
    np.testing.assert_allclose(read_volume(tmp_path / "rgb.tif").data, grey / 255.0, rtol=1e-7)


def test_float_pages_on_another_scale_warn(tmp_path):
    tifffile.imwrite(tmp_path / "255.tif", _ramp((2, 4, 5), np.uint8).astype(np.float32), photometric="minisblack")
    with pytest.warns(IntensityWarning, match="divide by 255"):
        read_volume(tmp_path / "255.tif")


def test_12_bit_values_in_16_bit_samples_warn_once_and_are_scaled_by_1_65535(tmp_path):
    """Values 0-4095 in uint16 were read in [0, 0.0625] without a word, so that a noise level on the 0-255 scale was
    16 times too large for them (an audit, 2026-12-08)."""
    stored = np.arange(2 * 4096, dtype=np.uint16).reshape(2, 64, 64) % 4096
    tifffile.imwrite(tmp_path / "page.tif", stored[0], photometric="minisblack")
    tifffile.imwrite(tmp_path / "stack.tif", stored, photometric="minisblack")
    advice = r"uint16 values up to 4095, below 4096: 12-bit data .* multiply them by 65535/4095 or save them as float"
    with pytest.warns(IntensityWarning, match=advice) as record:
        image, bits = read_image(tmp_path / "page.tif")
    assert len(record) == 1 and record[0].filename == __file__  # pointed at the caller
    np.testing.assert_array_equal(image, stored[0] / 65535.0)
    assert bits == 16
    with pytest.warns(IntensityWarning, match=advice) as record:
        volume = read_volume(tmp_path / "stack.tif")
    assert len(record) == 1
    np.testing.assert_array_equal(volume.data, (stored / 65535.0).astype(np.float32))
    tifffile.imwrite(tmp_path / "black.tif", np.zeros((2, 4, 5), np.uint16), photometric="minisblack")
    tifffile.imwrite(tmp_path / "full.tif", stored.astype(np.uint16) * 16 + 15, photometric="minisblack")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # all black, or 12-bit values scaled up to 16 bits: no warning
        read_volume(tmp_path / "black.tif")
        read_volume(tmp_path / "full.tif")


def _pillow_pages(Image, tmp_path: Path) -> dict[str, Path]:
    """One-page TIFFs that Pillow reads as grey: palette, bilevel (white is zero), grey + alpha, white-is-zero."""
    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, size=(6, 7), dtype=np.uint8)
    palette = Image.fromarray(grey, mode="L").convert("P")
    palette.putpalette([value for i in range(256) for value in (255 - i,) * 3])
    palette.save(tmp_path / "palette.tif")
    tifffile.imwrite(tmp_path / "bilevel.tif", rng.random((6, 7)) > 0.5)  # tifffile stores bool as white-is-zero
    tifffile.imwrite(tmp_path / "alpha.tif", np.stack([grey, 255 - grey], axis=-1), photometric="minisblack",
                     extrasamples=["unassalpha"])
    tifffile.imwrite(tmp_path / "white.tif", grey, photometric="miniswhite")
    return {name: tmp_path / f"{name}.tif" for name in ("palette", "bilevel", "alpha", "white")}


def test_single_pages_are_grey_as_read_image_reads_them(Image, tmp_path):
    for name, path in _pillow_pages(Image, tmp_path).items():
        with Image.open(path) as picture:
            pillow = np.asarray(picture.convert("L")) / 255.0  # Pillow's grey
        image, bits = read_image(path)
        volume = read_volume(path)
        assert bits == 8 and volume.metadata == {"bits": 8}, name
        np.testing.assert_allclose(volume.data[0], pillow, rtol=1e-7, err_msg=name)
        np.testing.assert_allclose(image, pillow, rtol=1e-7, err_msg=name)
    with Image.open(tmp_path / "white.tif") as picture:  # white-is-zero: Pillow inverts, as the TIFF standard says
        assert np.asarray(picture)[0, 0] == 255 - tifffile.imread(tmp_path / "white.tif")[0, 0]


# ---------------------------------------------------------------------------------------------- refusals


def test_a_colour_stack_is_refused(tmp_path):
    colour = _ramp((2, 4, 5, 3), np.uint8)
    tifffile.imwrite(tmp_path / "colour.tif", colour, photometric="rgb")
    _refusal(tmp_path / "colour.tif", "a colour image")


def test_samples_that_are_not_alpha_are_refused(tmp_path):
    channels = _ramp((2, 4, 5, 3), np.uint8)
    tifffile.imwrite(tmp_path / "channels.tif", channels, photometric="minisblack", planarconfig="contig")
    tifffile.imwrite(tmp_path / "channel.tif", channels[0], photometric="minisblack", planarconfig="contig")
    words = r"page 1 has 3 samples per pixel, 1 grey and extra samples that are not all alpha"
    _refusal(tmp_path / "channels.tif", words)
    with pytest.raises(ValueError, match=f"^{tmp_path / 'channel.tif'}: {words}"):
        read_image(tmp_path / "channel.tif")
    tifffile.imwrite(tmp_path / "rgbx.tif", _ramp((4, 5, 4), np.uint8), photometric="rgb", extrasamples=["unspecified"])
    _refusal(tmp_path / "rgbx.tif", "page 1 has 4 samples per pixel, 3 RGB and extra samples that are not all alpha")


def test_more_samples_than_adareg_reads_are_refused_before_reading(tmp_path, monkeypatch):
    import adareg.io.tiff

    tifffile.imwrite(tmp_path / "big.tif", _ramp((2, 4, 5), np.uint8), photometric="minisblack")
    monkeypatch.setattr(adareg.io.tiff, "MAX_ELEMENTS", 39)
    monkeypatch.setattr(tifffile.TiffPage, "asarray", lambda *args, **kwargs: pytest.fail("pixels were read"))
    _refusal(tmp_path / "big.tif", r"2 pages of shape \(4, 5\) declare 40 samples, more than the 39 adareg reads")


def test_int32_pages_are_refused(tmp_path):
    tifffile.imwrite(tmp_path / "int32.tif", np.arange(40, dtype=np.int32).reshape(2, 4, 5), photometric="minisblack")
    _refusal(tmp_path / "int32.tif", "pixels of type int32 have no intensity convention")


@pytest.mark.parametrize("bits", [4, 12])
def test_pages_of_4_or_12_bit_samples_are_refused_before_reading(tmp_path, monkeypatch, bits):
    """With imagecodecs, tifffile decodes them to uint8 or uint16, which were scaled as such: a 4-bit white, 15,
    read as 15/255 (an audit, 2026-12-06; Pillow scales 4-bit grey to 0-255)."""
    path = tmp_path / f"grey{bits}.tif"
    tifffile.imwrite(path, _ramp((4, 5), np.uint8 if bits < 8 else np.uint16), photometric="minisblack")
    with tifffile.TiffFile(path, mode="r+b") as tif:  # the tag alone: the refusal comes before the pixels
        tif.pages[0].tags["BitsPerSample"].overwrite(bits)
    monkeypatch.setattr(tifffile.TiffPage, "asarray", lambda *args, **kwargs: pytest.fail("pixels were read"))
    _refusal(path, rf"page 1 has {bits}-bit samples; adareg reads 8- and 16-bit integer \(and float\) pages")


def test_cmyk_and_float_white_is_zero_pages_are_refused(tmp_path):
    tifffile.imwrite(tmp_path / "cmyk.tif", _ramp((4, 5, 4), np.uint8), photometric="separated")
    _refusal(tmp_path / "cmyk.tif", "photometric interpretation SEPARATED")
    tifffile.imwrite(tmp_path / "white.tif", np.zeros((2, 4, 5), np.float32), photometric="miniswhite")
    _refusal(tmp_path / "white.tif", "white-is-zero with float32 pixels")


@pytest.mark.parametrize("second", [np.zeros((4, 6), np.uint16), np.zeros((4, 5), np.uint8)], ids=["size", "type"])
def test_pages_of_different_sizes_or_types_are_refused(tmp_path, second):
    with tifffile.TiffWriter(tmp_path / "mixed.tif") as writer:
        writer.write(np.zeros((4, 5), np.uint16), photometric="minisblack")
        writer.write(second, photometric="minisblack")
    message = _refusal(tmp_path / "mixed.tif", "page 2 is")
    assert "page 1 is (4, 5) uint16" in message


def test_a_truncated_stack_is_refused_not_read_as_fewer_pages(tmp_path, caplog):
    tifffile.imwrite(tmp_path / "whole.tif", _ramp((3, 40, 50), np.uint16), photometric="minisblack", metadata=None)
    whole = (tmp_path / "whole.tif").read_bytes()
    with tifffile.TiffFile(tmp_path / "whole.tif") as tif:
        second = tif.pages[1].offset  # where the second page's directory starts
    (tmp_path / "cut.tif").write_bytes(whole[:second])
    with tifffile.TiffFile(tmp_path / "cut.tif") as tif:
        assert len(tif.pages) == 1  # tifffile alone sees one page (and only logs the damage)
    assert [record.name for record in caplog.records] == ["tifffile"]
    caplog.clear()
    _refusal(tmp_path / "cut.tif", "damaged TIFF file")
    assert not is_volume(tmp_path / "cut.tif")  # as the command line asks first: one page, for the image reader
    assert caplog.records == []  # told in the error alone: standard error showed it before, twice


def test_the_damage_collected_is_this_thread_s_alone(caplog):
    """A read collects the errors tifffile logs in its own thread; another thread's are logged as ever."""
    log = logging.getLogger("tifffile")
    with logged_damage() as logged:
        log.error("here")
        log.warning("a warning here")
        elsewhere = threading.Thread(target=log.error, args=("elsewhere",))
        elsewhere.start()
        elsewhere.join()
    log.error("after")
    assert logged == ["here"]
    assert [record.getMessage() for record in caplog.records] == ["a warning here", "elsewhere", "after"]


def test_truncated_pixel_data_and_corrupt_files_are_refused(tmp_path):
    tifffile.imwrite(tmp_path / "one.tif", _ramp((40, 50), np.uint16), photometric="minisblack", metadata=None)
    (tmp_path / "cut.tif").write_bytes((tmp_path / "one.tif").read_bytes()[:-1000])
    _refusal(tmp_path / "cut.tif", "not a readable TIFF file")
    (tmp_path / "junk.tif").write_bytes(b"II*\x00" + b"\xff" * 100)
    _refusal(tmp_path / "junk.tif", "TIFF")
    (tmp_path / "empty.tif").write_bytes(b"II*\x00\x00\x00\x00\x00")  # a header whose first page is at 0
    _refusal(tmp_path / "empty.tif", "a TIFF file without pages")


def test_nan_pages_are_refused_with_their_count(tmp_path):
    stack = np.zeros((2, 3, 4), np.float32)
    stack[1, :, 0] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", stack, photometric="minisblack")
    _refusal(tmp_path / "nan.tif", "3 NaN or Inf values")


# ---------------------------------------------------------------------------------------------- writing


@pytest.mark.parametrize("dtype, scale", [(np.uint16, 65535), (np.uint8, 255)])
def test_write_keeps_the_bit_depth_of_the_stack_read(tmp_path, dtype, scale):
    tifffile.imwrite(tmp_path / "in.tif", _ramp((3, 4, 5), dtype), photometric="minisblack")
    like = read_volume(tmp_path / "in.tif")
    result = np.random.default_rng(1).uniform(-0.2, 1.2, size=(3, 4, 5)).astype(np.float32)
    with pytest.warns(IntensityWarning, match="by more than one grey level"):  # some 25% clipped
        write_volume(tmp_path / "out.tif", result, like=like, description="adareg wcrr denoising")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert len(tif.pages) == 3
        assert tif.pages[0].description == "adareg wcrr denoising"
        assert all(page.dtype == dtype and page.photometric == 1 for page in tif.pages)  # minisblack
        written = tif.asarray()
    expected = np.clip(result.astype(np.float64), 0, 1) * scale
    assert np.max(np.abs(written - expected)) <= 0.5
    np.testing.assert_allclose(read_volume(tmp_path / "out.tif").data, written / scale, rtol=1e-7)


def test_reading_then_writing_integers_gives_the_same_pixels(tmp_path):
    stack = _ramp((3, 4, 5), np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", stack, photometric="minisblack")
    like = read_volume(tmp_path / "in.tif")
    write_volume(tmp_path / "out.tif", like.data, like=like)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), stack)


@pytest.mark.parametrize("orientation, shown", [(1, ((2, 1), (5, 2))), (6, ((5, 2), (2, 1)))])
def test_writing_keeps_the_pixel_density_of_the_stack_read(tmp_path, orientation, shown):
    """A TIFF read and written back lost its XResolution, YResolution and unit (the voxel spacing)."""
    with tifffile.TiffWriter(tmp_path / "in.tif") as tif:
        for page in _ramp((2, 4, 5), np.uint16):
            tif.write(page, photometric="minisblack", resolution=((2, 1), (5, 2)), resolutionunit="CENTIMETER",
                      extratags=[(274, "H", 1, orientation, True)])
    like = read_volume(tmp_path / "in.tif")
    write_volume(tmp_path / "out.tif", like.data, like=like)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        tags = tif.pages[0].tags  # as shown: x and y exchange where the Orientation transposes the page
        assert (tags.valueof("XResolution"), tags.valueof("YResolution")) == shown
        assert tags.valueof("ResolutionUnit") == 3 and tags.valueof(274, 1) == 1 and len(tif.pages) == 2


def test_write_without_like_stores_float32_as_is(tmp_path):
    data = np.random.default_rng(2).normal(size=(2, 3, 4)).astype(np.float32)
    write_volume(tmp_path / "out.tiff", data, description="sigma σ")
    with tifffile.TiffFile(tmp_path / "out.tiff") as tif:
        assert len(tif.pages) == 2 and tif.pages[0].dtype == np.float32
        assert tif.pages[0].description == "sigma \\u03c3"  # TIFF strings are ASCII
        np.testing.assert_array_equal(tif.asarray(), data)


def test_one_slice_writes_one_page_and_pillow_reads_it(Image, tmp_path):
    tifffile.imwrite(tmp_path / "in.tif", _ramp((1, 4, 5), np.uint8), photometric="minisblack")
    data = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    write_volume(tmp_path / "out.tif", data, like=read_volume(tmp_path / "in.tif"))
    with Image.open(tmp_path / "out.tif") as picture:
        assert picture.n_frames == 1 and picture.mode == "L"
        np.testing.assert_array_equal(np.asarray(picture), np.round(data * 255).astype(np.uint8))


def test_nan_is_refused_before_writing(tmp_path):
    data = np.zeros((2, 3, 4), np.float32)
    data[0, 0, :2] = np.inf
    with pytest.raises(ValueError, match="2 NaN or Inf values"):
        write_volume(tmp_path / "out.tif", data)
    assert list(tmp_path.iterdir()) == []


def test_no_warning_for_an_ordinary_stack(tmp_path):
    tifffile.imwrite(tmp_path / "stack.tif", _ramp((2, 3, 4), np.uint16), photometric="minisblack")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_volume(tmp_path / "stack.tif")


def test_values_beyond_float32_are_refused(tmp_path):
    tifffile.imwrite(tmp_path / "big.tif", np.full((2, 3, 4), 1e300), photometric="minisblack")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntensityWarning)
        _refusal(tmp_path / "big.tif", "24 values beyond float32's range")
    with pytest.raises(ValueError, match=f"^{tmp_path / 'out.tif'}: the data to write contains 1 value beyond "
                                         "float32's range"):
        write_volume(tmp_path / "out.tif", np.array([[[0.5, -1e300]]]))
    assert not (tmp_path / "out.tif").exists()
