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
