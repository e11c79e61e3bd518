"""PSNR in closed form, SSIM against scikit-image's independent implementation."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

import adareg
from tests.conftest import DEVICES


def test_psnr_closed_form():
    x = np.zeros((10, 10))
    assert adareg.psnr(x + 0.1, x) == pytest.approx(20.0)  # 10 log10(1 / 0.01)
    assert adareg.psnr(x + 2.0, x, data_range=255.0) == pytest.approx(10 * math.log10(255.0**2 / 4.0))
    assert adareg.psnr(x, x) == math.inf


def test_ssim_matches_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    clean = adareg.data.image("camera", shape=(96, 96))
    noisy = clean + 0.1 * rng.standard_normal(clean.shape)
    expected = metrics.structural_similarity(noisy, clean, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                             use_sample_covariance=False)
    assert adareg.ssim(noisy, clean) == pytest.approx(expected, abs=1e-10)
    assert adareg.ssim(clean, clean) == pytest.approx(1.0)


def test_ssim_refuses_colour_channels_last():
    # (H, W, 3) was read as H images of shape (W, 3): a window of 3 (sigma 0.4) blurred across the colours and
    # returned 0.62 where scikit-image's SSIM over the channels is 0.44; the default window raised an error about
    # images "smaller than the 11-pixel window"
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(2)
    clean = rng.random((32, 32, 3))
    noisy = clean + 0.1 * rng.standard_normal(clean.shape)
    with pytest.raises(ValueError, match=r"look like colour channels last \(H, W, 3\).*numpy.moveaxis\(x, -1, 0\)"):
        adareg.ssim(noisy, clean, sigma=0.4)
    expected = metrics.structural_similarity(noisy, clean, data_range=1.0, channel_axis=-1, gaussian_weights=True,
                                             sigma=0.4, use_sample_covariance=False)
    moved = adareg.ssim(np.moveaxis(noisy, -1, 0), np.moveaxis(clean, -1, 0), sigma=0.4)
    assert moved == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("scale", [1e200, 1e-200])
def test_metrics_of_extreme_scales_are_those_of_the_unit_scale(scale):
    # squares of values near 1e200 overflowed (an OverflowError from data_range**2, inf from the differences) and
    # those of 1e-200 underflowed to a PSNR of inf, though the ratio to the range is moderate
    rng = np.random.default_rng(1)
    clean = rng.random((32, 32))
    noisy = clean + 0.05 * rng.standard_normal(clean.shape)
    mse = np.mean((noisy - clean) ** 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert adareg.psnr(scale * noisy, scale * clean, data_range=scale) == pytest.approx(-10 * math.log10(mse))
        scaled = adareg.ssim(scale * noisy, scale * clean, data_range=scale)
    assert scaled == pytest.approx(adareg.ssim(noisy, clean), rel=1e-12)


@pytest.mark.parametrize("metric", [adareg.psnr, adareg.ssim])
def test_metric_errors(metric):
    with pytest.raises(ValueError, match="x has shape"):
        metric(np.zeros((16, 16)), np.zeros((16, 17)))
    with pytest.raises(TypeError, match="complex"):
        metric(np.zeros((16, 16), dtype=complex), np.zeros((16, 16)))
    with pytest.raises(TypeError, match="NumPy or CuPy array"):
        metric([[0.0]], np.zeros((1, 1)))
    with pytest.raises(TypeError, match="reference is a masked array, whose mask adareg would ignore"):
        metric(np.zeros((16, 16)), np.ma.masked_greater(np.eye(16), 0.5))
    with pytest.raises(TypeError, match="x is a numpy.matrix"):
        metric(np.asmatrix(np.zeros((16, 16))), np.zeros((16, 16)))
    with pytest.raises(ValueError, match="reference contains 1 NaN or Inf value"):
        metric(np.zeros((16, 16)), np.where(np.eye(16) * np.arange(16) == 3, np.nan, 0.0))
    with pytest.raises(ValueError, match="x contains 256 NaN or Inf values"):
        metric(np.full((16, 16), np.inf), np.zeros((16, 16)))
    for data_range in (0.0, -1.0):
        with pytest.raises(ValueError, match=f"{metric.__name__}: data_range must be positive"):
            metric(np.ones((16, 16)), np.zeros((16, 16)), data_range=data_range)


@pytest.mark.parametrize("metric", [adareg.psnr, adareg.ssim])
def test_a_reference_on_another_scale_than_data_range_warns(metric):
    rng = np.random.default_rng(3)
    clean = adareg.data.shepp_logan((32, 32))
    noisy = clean + 0.1 * rng.standard_normal(clean.shape)
    words = rf"{metric.__name__}: the reference spans 255, more than twice data_range = 1"
    with pytest.warns(UserWarning, match=words):
        metric(255 * noisy, 255 * clean)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metric(noisy, clean)
        metric(255 * noisy, 255 * clean, data_range=255)


@pytest.mark.parametrize("metric", [adareg.psnr, adareg.ssim])
def test_a_data_range_far_above_the_reference_warns(metric):
    # [0, 1] images with data_range=255: psnr 48 dB too high without a word
    rng = np.random.default_rng(5)
    clean = adareg.data.shepp_logan((32, 32))
    noisy = clean + 0.1 * rng.standard_normal(clean.shape)
    with pytest.warns(UserWarning, match=rf"{metric.__name__}: the reference spans only 1, less than a fiftieth of "
                                         r"data_range = 255"):
        metric(noisy, clean, data_range=255)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metric(20 * noisy, 20 * clean, data_range=255)  # a dark 8-bit image: a twelfth of the range
        metric(np.full((16, 16), 0.6), np.full((16, 16), 0.5), data_range=255)  # a constant says nothing of scale
        adareg.metrics.volume_psnr(1000 + noisy[None], 1000 + clean[None])  # fastMRI's range: the maximum


@pytest.mark.parametrize("metric", [adareg.psnr, adareg.ssim])
def test_an_image_on_another_scale_than_its_reference_warns(metric):
    # 8-bit values against a [0, 1] reference: psnr was -43 dB without a word
    clean = adareg.data.shepp_logan((32, 32))
    with pytest.warns(UserWarning, match=rf"{metric.__name__}: x spans 255, more than ten times data_range = 1"):
        metric(np.round(255 * clean).astype(np.uint8), clean)
    noisy = 5 * clean + 0.1 * np.random.default_rng(4).standard_normal(clean.shape)  # a span of 5.6: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metric(noisy, clean)


@pytest.mark.parametrize("metric", [adareg.psnr, adareg.ssim])
def test_integer_references_span_in_float64(metric):
    # int8 -100..100 spans 200; max - min in int8 would wrap to -56 and hide the warning
    reference = np.array([[-100, 100]] * 128, np.int8).reshape(16, 16)
    x = reference + np.int8(1)
    with pytest.warns(UserWarning, match=f"{metric.__name__}: the reference spans 200, more than twice data_range = 1"):
        metric(x, reference, data_range=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert metric(x, reference, data_range=200) == pytest.approx(
            20 * math.log10(200) if metric is adareg.psnr else adareg.ssim(x.astype(float), reference.astype(float),
                                                                           data_range=200))


@pytest.mark.parametrize("metric", [adareg.psnr, adareg.ssim, adareg.metrics.nmse, adareg.metrics.volume_psnr,
                                    adareg.metrics.volume_ssim])
def test_metrics_refuse_bool_object_and_empty_images(metric):
    name, ones = metric.__name__, np.ones((2, 16, 16))
    with pytest.raises(TypeError, match=f"{name}: x has dtype bool; expected real intensities"):
        metric(ones > 0, ones)
    with pytest.raises(TypeError, match=f"{name}: reference has dtype bool; expected real intensities"):
        metric(ones, ones > 0)
    with pytest.raises(TypeError, match=f"{name}: reference has dtype object; expected real intensities"):
        metric(ones, ones.astype(object))
    for shape in ((0,), (2, 0, 16)):
        with pytest.raises(ValueError, match=re.escape(f"{name}: the images are empty (shape {shape})")):
            metric(np.zeros(shape), np.zeros(shape))


def test_ssim_window_must_be_positive():
    with pytest.raises(ValueError, match="ssim: sigma must be positive, got -1"):
        adareg.ssim(np.ones((16, 16)), np.zeros((16, 16)), sigma=-1.0)


def test_ssim_names_the_axes_it_takes_as_the_image():
    # a (48, 48, 3) colour image was "smaller than the 11-pixel window" without saying which axes were the image
    # (colour channels last are now refused as such: test_ssim_refuses_colour_channels_last)
    with pytest.raises(ValueError, match=r"ssim: images of shape \(48, 6\) \(the last two axes of \(2, 48, 6\); "
                                         r"leading axes are batch axes\) are smaller than the 11-pixel window"):
        adareg.ssim(np.ones((2, 48, 6)), np.ones((2, 48, 6)))


# ------------------------------------------------------------------ fastMRI's conventions
def _volumes(dtype=np.float64):
    """A reference magnitude volume (slices, H, W) with slices of different brightness, and a noisy estimate."""
    rng = np.random.default_rng(1)
    phantom = adareg.data.shepp_logan((40, 33))
    reference = np.stack([s * phantom for s in (0.5, 1.0, 2.0)])
    estimate = np.abs(reference + 0.05 * rng.standard_normal(reference.shape))
    return estimate.astype(dtype), reference.astype(dtype)


def test_nmse_closed_form():
    reference = np.arange(1.0, 13.0).reshape(3, 4)
    x = reference + 0.5 * np.where(np.arange(12).reshape(3, 4) % 2, 1.0, -1.0)
    assert adareg.metrics.nmse(x, reference) == pytest.approx(12 * 0.25 / np.sum(reference**2), rel=1e-12)
    assert adareg.metrics.nmse(reference, reference) == 0.0
    estimate, gt = _volumes()
    expected = np.linalg.norm(gt - estimate) ** 2 / np.linalg.norm(gt) ** 2  # fastMRI's evaluate.nmse
    assert adareg.metrics.nmse(estimate, gt) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="nmse: the reference is zero everywhere"):
        adareg.metrics.nmse(np.ones((4, 4)), np.zeros((4, 4)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_volume_psnr_matches_scikit_image(dtype):
    metrics = pytest.importorskip("skimage.metrics", reason="scikit-image (the independent reference) is not "
                                                            "installed")
    estimate, gt = _volumes(dtype)
    expected = metrics.peak_signal_noise_ratio(gt, estimate, data_range=gt.max())
    assert adareg.metrics.volume_psnr(estimate, gt) == pytest.approx(expected, rel=1e-6)
    # the data range is the volume's maximum, not 1: a closed form
    reference = np.zeros((2, 8, 8))
    reference[0, 0, 0] = 4.0
    assert adareg.metrics.volume_psnr(reference + 0.1, reference) == pytest.approx(10 * math.log10(16.0 / 0.01))
    assert adareg.metrics.volume_psnr(gt, gt) == math.inf
    # some slices of a volume: the whole volume's maximum given as the data range
    assert adareg.metrics.volume_psnr(reference[1:] + 0.1, reference[1:], 4.0) == pytest.approx(
        10 * math.log10(16.0 / 0.01))
    with pytest.raises(ValueError, match="volume_psnr: data_range must be positive"):
        adareg.metrics.volume_psnr(gt, gt, 0.0)


@pytest.mark.parametrize("metric", [adareg.metrics.volume_psnr, adareg.metrics.volume_ssim])
def test_a_volume_metric_warns_of_a_data_range_on_another_scale(metric):
    """volume_psnr(x, ref, 1.0) on fastMRI's scanner units (max ~1e-3) gave 90 dB without a word."""
    rng = np.random.default_rng(4)
    reference = 1e-3 * rng.random((2, 16, 16))
    x = reference + 3e-5 * rng.standard_normal(reference.shape)
    name = metric.__name__
    for data_range in (1.0, 0.9 * reference.max()):  # another scale; less than the slices' own maximum
        with pytest.warns(UserWarning, match=rf"^{name}: the reference's maximum is 0\.000\d+, but data_range "):
            metric(x, reference, data_range)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metric(x, reference, 5 * reference.max())  # a brighter volume's maximum: in range
        metric(x, reference, float(reference.max()))
        metric(x, np.zeros_like(reference), 1.0) if metric is adareg.metrics.volume_psnr else None  # dark slices


@pytest.mark.parametrize("device", DEVICES)
def test_volume_ssim_matches_fastmri_evaluation_with_scikit_image(device):
    metrics = pytest.importorskip("skimage.metrics", reason="scikit-image (the independent reference) is not "
                                                            "installed")
    estimate, gt = _volumes()
    # fastMRI's evaluate.ssim: default structural_similarity per slice, data range the volume's max, averaged
    expected = np.mean([metrics.structural_similarity(gt[i], estimate[i], data_range=gt.max())
                        for i in range(gt.shape[0])])
    result = adareg.metrics.volume_ssim(adareg.to_device(estimate, device), adareg.to_device(gt, device))
    assert isinstance(result, float)
    assert result == pytest.approx(expected, rel=1e-6)
    assert adareg.metrics.volume_ssim(gt, gt) == pytest.approx(1.0, rel=1e-12)
    # the volume's maximum, not each slice's, is the data range: a dim slice scores as fastMRI scores it
    per_slice_range = np.mean([metrics.structural_similarity(gt[i], estimate[i], data_range=gt[i].max())
                               for i in range(gt.shape[0])])
    assert abs(result - per_slice_range) > 1e-3
    # some slices of a volume: the whole volume's maximum given as the data range
    given = np.mean([metrics.structural_similarity(gt[i], estimate[i], data_range=2 * gt.max())
                     for i in range(1, gt.shape[0])])
    assert adareg.metrics.volume_ssim(estimate[1:], gt[1:], 2 * float(gt.max())) == pytest.approx(given, rel=1e-6)


def test_volume_ssim_argument_order_and_float32():
    metrics = pytest.importorskip("skimage.metrics", reason="scikit-image (the independent reference) is not "
                                                            "installed")
    estimate, gt = _volumes()
    # SSIM is symmetric in its images, but the data range comes from the reference (second argument)
    swapped = np.mean([metrics.structural_similarity(estimate[i], gt[i], data_range=estimate.max())
                       for i in range(gt.shape[0])])
    assert adareg.metrics.volume_ssim(gt, estimate) == pytest.approx(swapped, rel=1e-6)
    # float32 volumes are computed in float64: equal to scikit-image on the same values in float64
    e32, g32 = estimate.astype(np.float32), gt.astype(np.float32)
    expected = np.mean([metrics.structural_similarity(g32[i].astype(np.float64), e32[i].astype(np.float64),
                                                      data_range=float(g32.max())) for i in range(3)])
    assert adareg.metrics.volume_ssim(e32, g32) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("metric", [adareg.metrics.nmse, adareg.metrics.volume_psnr, adareg.metrics.volume_ssim])
def test_fastmri_metric_errors(metric):
    with pytest.raises(ValueError, match="x has shape"):
        metric(np.zeros((2, 16, 16)), np.zeros((2, 16, 17)))
    with pytest.raises(TypeError, match="complex"):
        metric(np.zeros((2, 16, 16), dtype=complex), np.ones((2, 16, 16)))
    with pytest.raises(TypeError, match="NumPy or CuPy array"):
        metric([[[0.0]]], np.ones((1, 1, 1)))
    with pytest.raises(ValueError, match="reference contains 1 NaN or Inf value"):
        metric(np.zeros((1, 16, 16)), np.where(np.eye(16) * np.arange(16) == 3, np.nan, 1.0)[None])
    with pytest.raises(ValueError, match="x contains 256 NaN or Inf values"):
        metric(np.full((1, 16, 16), np.inf), np.ones((1, 16, 16)))
    name = metric.__name__
    if name != "nmse":
        with pytest.raises(ValueError, match=f"{name}: the reference's maximum is 0"):
            metric(np.ones((1, 16, 16)), np.zeros((1, 16, 16)))


def test_volume_ssim_shape_errors():
    with pytest.raises(ValueError, match=r"volume_ssim: expected volumes of shape \(slices, H, W\)"):
        adareg.metrics.volume_ssim(np.ones((16, 16)), np.ones((16, 16)))
    with pytest.raises(ValueError, match=r"volume_ssim: slices of shape \(6, 16\) are smaller than the 7x7 window "
                                         r"\(the slices' axis comes first"):
        adareg.metrics.volume_ssim(np.ones((2, 6, 16)), np.ones((2, 6, 16)))
