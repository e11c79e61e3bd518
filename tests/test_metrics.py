"""PSNR in closed form, SSIM against scikit-image's independent implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest

import adareg


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


@pytest.mark.parametrize("metric", [adareg.psnr, adareg.ssim])
def test_metric_errors(metric):
    with pytest.raises(ValueError, match="x has shape"):
        metric(np.zeros((16, 16)), np.zeros((16, 17)))
    with pytest.raises(TypeError, match="complex"):
        metric(np.zeros((16, 16), dtype=complex), np.zeros((16, 16)))
    with pytest.raises(TypeError, match="NumPy or CuPy array"):
        metric([[0.0]], np.zeros((1, 1)))
    with pytest.raises(ValueError, match="reference contains 1 NaN or Inf value"):
        metric(np.zeros((16, 16)), np.where(np.eye(16) * np.arange(16) == 3, np.nan, 0.0))
    with pytest.raises(ValueError, match="x contains 256 NaN or Inf values"):
        metric(np.full((16, 16), np.inf), np.zeros((16, 16)))
