"""Conv2d and Blur against scipy.ndimage and a brute-force sum."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage, signal
from scipy.sparse import linalg as sparse_linalg

import adareg
from adareg import threads
from adareg.operators import Blur, Conv2d, DepthwiseConv2d, conv
from tests.operators.harness import dense

SCIPY_MODE = {"zero": "constant", "periodic": "wrap", "reflect": "mirror"}


@pytest.mark.parametrize("method", ["direct", "fft"])
@pytest.mark.parametrize("boundary", ["zero", "periodic", "reflect"])
@pytest.mark.parametrize("size", [(3, 3), (5, 3), (4, 4), (2, 5)])
def test_conv2d_matches_scipy_correlate(size, boundary, method):
    rng = np.random.default_rng(1)
    image, kernel = rng.standard_normal((9, 11)), rng.standard_normal(size)
    # torch's "same" padding puts (k-1)//2 samples before; scipy centres on k//2: origin -1 for even k
    origin = [-1 if k % 2 == 0 else 0 for k in size]
    expected = ndimage.correlate(image, kernel, mode=SCIPY_MODE[boundary], cval=0.0, origin=origin)
    np.testing.assert_allclose(Conv2d(kernel, image.shape, boundary=boundary, method=method)(image), expected,
                               atol=1e-12)


@pytest.mark.parametrize("method", ["direct", "fft"])
def test_multichannel_conv2d_matches_brute_force(method):
    rng = np.random.default_rng(2)
    c_out, c_in, kh, kw, h, w = 3, 2, 3, 4, 6, 7
    kernel = rng.standard_normal((c_out, c_in, kh, kw)) + 1j * rng.standard_normal((c_out, c_in, kh, kw))
    x = rng.standard_normal((c_in, h, w))
    padded = np.pad(x, ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2)))
    expected = np.zeros((c_out, h, w), dtype=complex)
    for o in range(c_out):
        for i in range(h):
            for j in range(w):
                expected[o, i, j] = np.sum(kernel[o] * padded[:, i : i + kh, j : j + kw])
    np.testing.assert_allclose(Conv2d(kernel, (h, w), method=method)(x), expected, atol=1e-12)


@pytest.mark.parametrize("boundary", ["zero", "periodic", "reflect"])
def test_blur_matches_scipy_convolve(boundary):
    rng = np.random.default_rng(3)
    image, psf = rng.standard_normal((8, 10)), rng.random((4, 3))
    expected = ndimage.convolve(image, psf, mode=SCIPY_MODE[boundary], cval=0.0)
    np.testing.assert_allclose(Blur(psf, image.shape, boundary=boundary)(image), expected, atol=1e-12)


def test_direct_and_fft_agree_in_float32():
    rng = np.random.default_rng(4)
    kernel = rng.standard_normal((4, 5, 5))
    x = rng.standard_normal((3, 16, 16)).astype(np.float32)  # a batch of three images
    a = Conv2d(kernel, (16, 16), method="direct", boundary="reflect")
    b = Conv2d(kernel, (16, 16), method="fft", boundary="reflect")
    assert a(x).dtype == b(x).dtype == np.float32
    np.testing.assert_allclose(a(x), b(x), atol=1e-4)
    y = rng.standard_normal((3, 4, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(a.H(y), b.H(y), atol=1e-4)


def test_periodic_norm_is_exact():
    kernel = np.random.default_rng(5).standard_normal((3, 2, 5, 5))
    A = Conv2d(kernel, (6, 5), boundary="periodic")
    assert A.norm() == pytest.approx(np.linalg.svd(dense(A), compute_uv=False)[0], rel=1e-10)


def top_singular_value(A):
    """``||A||`` by ARPACK on ``A^H A`` (an implementation independent of adareg's Lanczos)."""
    n = int(np.prod(A.shape_in))
    gram = sparse_linalg.LinearOperator((n, n), matvec=lambda v: A.H(A(v.reshape(A.shape_in))).ravel(),
                                        dtype=np.float64)
    return float(np.sqrt(sparse_linalg.eigsh(gram, k=1, which="LA", tol=1e-10)[0][0]))


def composed_bank(seed, channels=(4, 8), size=5):
    """A zero-mean composed bank like the learned ones: 1 -> 4 -> 8 channels of 5x5, a 9x9 kernel."""
    rng = np.random.default_rng(seed)
    first = rng.standard_normal((channels[0], size, size))
    first -= first.mean(axis=(1, 2), keepdims=True)
    second = rng.standard_normal((channels[1], channels[0], size, size))
    # full 2D convolution of each second-layer filter with each first-layer one, summed
    return np.stack([sum(signal.convolve2d(first[i], second[o, i][::-1, ::-1]) for i in range(channels[0]))
                     for o in range(channels[1])])


@pytest.mark.parametrize("kernel, shape", [
    (composed_bank(0), (150, 97)),
    (composed_bank(1), (70, 200)),
    (np.random.default_rng(2).standard_normal((6, 7, 7)), (120, 90)),
    (np.array([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]]), (90, 81)),  # top vector: a checkerboard
    (np.random.default_rng(3).standard_normal((3, 2, 5, 5)), (67, 100)),
    # a sharp spectrum: the proxy's top vector misses the image's, whose Lanczos run certified a lower eigenvalue
    # (2.3 % low; the step sizes' norm_bound 1.3 % below the norm)
    (np.outer(np.cos(0.65 * np.arange(-6, 7)), np.cos(0.65 * np.arange(-6, 7))), (66, 67)),
])
def test_reflect_norm_started_on_a_small_image(kernel, shape):
    """On images larger than the proxy square, the estimate from its informed start is ARPACK's norm."""
    A = Conv2d(kernel, shape, boundary="reflect", method="fft")
    assert A._norm_start(1e-2) is not None
    expected = top_singular_value(A)
    assert Conv2d(kernel, shape, boundary="reflect", method="fft").norm_bound() >= expected
    # certified to 1e-2 on ||A||^2: within 0.5% below, never above
    assert expected * (1 - 6e-3) <= A.norm(tol=1e-2) <= expected * (1 + 1e-9)
    assert expected * (1 - 6e-5) <= Conv2d(kernel, shape, boundary="reflect").norm(tol=1e-4) <= expected * (1 + 1e-9)


def test_depthwise_reflect_norm_started_on_a_small_image():
    A = DepthwiseConv2d(np.random.default_rng(4).standard_normal((3, 5, 5)), (80, 70), boundary="reflect")
    assert A._norm_start(1e-2) is not None
    assert A.norm(tol=1e-4) == pytest.approx(top_singular_value(A), rel=1e-4)


def test_reflect_norm_of_a_corner_mode_takes_one_step_on_the_image():
    """The shipped sa-cnn bank's top vector lives at a corner: the proxy's, moved there, is certified at once."""
    kernel = adareg.load("sa-cnn").bank.kernel[:, 0]
    A = Conv2d(kernel, (300, 200), boundary="reflect", method="fft")
    applications = []
    apply = A._apply
    A._apply = lambda x: applications.append(1) or apply(x)
    value = A.norm(tol=1e-2)
    assert len(applications) == 1  # a random start takes 30
    assert value == pytest.approx(top_singular_value(Conv2d(kernel, (300, 200), boundary="reflect")), rel=6e-3)


@pytest.mark.parametrize(
    "kernel, shape, boundary, error, words",
    [
        (np.ones((2, 2, 2, 2, 2)), (5, 5), "zero", ValueError, "kernel must have shape"),
        (np.ones((3, 3)), (5, 5, 5), "zero", ValueError, "image_shape must be (H, W)"),
        (np.ones((3, 3)), (5, 5), "mirror", ValueError, "boundary must be one of"),
        (np.ones((7, 7)), (3, 3), "reflect", ValueError, "boundary='reflect'"),
        (np.full((3, 3), np.nan), (5, 5), "zero", ValueError, "NaN"),
        (np.ones((3, 3), dtype=int), (5, 5), "zero", TypeError, "dtype int64"),
        (np.zeros((3, 0)), (8, 8), "zero", ValueError, "kernel must have at least one tap and one channel"),
        (np.zeros((0, 3, 3)), (8, 8), "zero", ValueError, "got shape (0, 3, 3)"),
        (np.zeros((2, 0, 3, 3)), (8, 8), "periodic", ValueError, "at least one tap"),
    ],
)
def test_conv2d_rejects_bad_arguments(kernel, shape, boundary, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        Conv2d(kernel, shape, boundary=boundary)


def test_blur_needs_2d_psf():
    with pytest.raises(ValueError, match="psf must be a 2D array"):
        Blur(np.ones((2, 3, 3)), (5, 5))
    # the psf's errors name it (they named Conv2d's kernel), and a later edit of it changes nothing
    with pytest.raises(TypeError, match="Blur: psf has dtype int64"):
        Blur(np.ones((3, 3), dtype=np.int64), (5, 5))
    with pytest.raises(ValueError, match="Blur: psf contains 1 NaN"):
        Blur(np.array([[1.0, np.nan]]), (5, 5))
    psf = np.full((3, 3), 1 / 9)
    blur = Blur(psf, (5, 5))
    psf[1, 1] = 5.0
    np.testing.assert_allclose(blur(np.ones((5, 5)))[2, 2], 1.0)
    assert not blur.psf.flags.writeable and blur.psf[1, 1] == pytest.approx(1 / 9)
    # errors raised by Conv2d for a subclass named Conv2d and its kernel (an audit, 2026-12-06)
    with pytest.raises(ValueError, match=r"^Blur: psf must be a 2D array of at least one tap, got shape \(0, 3\)"):
        Blur(np.ones((0, 3)), (5, 5))
    with pytest.raises(ValueError, match=r"^Blur: image_shape must be \(H, W\)"):
        Blur(psf, (8,))
    with pytest.raises(TypeError, match="^DepthwiseConv2d: kernel has dtype int64"):
        DepthwiseConv2d(np.ones((2, 3, 3), dtype=np.int64), (5, 5))


@pytest.mark.parametrize("method", ["direct", "fft"])
@pytest.mark.parametrize("boundary", ["zero", "periodic", "reflect"])
def test_depthwise_conv2d_correlates_each_channel_with_its_kernel(boundary, method):
    rng = np.random.default_rng(6)
    kernels, x = rng.standard_normal((3, 3, 5)), rng.standard_normal((2, 3, 8, 9))
    out = DepthwiseConv2d(kernels, (8, 9), boundary=boundary, method=method)(x)
    expected = [[ndimage.correlate(x[b, c], kernels[c], mode=SCIPY_MODE[boundary]) for c in range(3)] for b in range(2)]
    np.testing.assert_allclose(out, np.array(expected), atol=1e-12)


@pytest.mark.parametrize("block_bytes", [None, 8])
@pytest.mark.parametrize("channels_per_group", [1, 2])
def test_depthwise_direct_sums_groups_of_channels(monkeypatch, channels_per_group, block_bytes):
    """Channel groups smaller than C (large images on the CPU), the last one short, and with ``block_bytes``
    each channel its own block of ``threads.blockwise``: forward against SciPy's correlation per channel,
    adjoint by the inner-product identity."""
    rng = np.random.default_rng(7)
    kernels, x, y = rng.standard_normal((3, 5, 3)), rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((2, 3, 9, 8))
    A = DepthwiseConv2d(kernels, (9, 8), boundary="reflect", method="direct")
    row_bytes = (9 + 4) * (8 + 2) * x.itemsize  # one channel on the padded grid: the longest run summed
    monkeypatch.setitem(conv._DEPTHWISE_GROUP_BYTES, "cpu", channels_per_group * row_bytes)
    if block_bytes is not None:
        monkeypatch.setattr(threads, "BLOCK_BYTES", block_bytes)
    expected = [[ndimage.correlate(x[b, c], kernels[c], mode="mirror") for c in range(3)] for b in range(2)]
    np.testing.assert_allclose(A(x), np.array(expected), atol=1e-12)
    assert np.vdot(A(x), y) == pytest.approx(np.vdot(x, A.H(y)), rel=1e-12)


@pytest.mark.parametrize("method", ["direct", "fft"])
def test_periodic_kernel_wider_than_the_image_has_the_dense_adjoint(method):
    """A periodic border longer than the image wraps onto it more than once (not one run of samples)."""
    rng = np.random.default_rng(6)
    h, w = 2, 3
    K = Conv2d(rng.standard_normal((2, 5, 7)), (h, w), boundary="periodic", method=method)
    dense = np.stack([K(e.reshape(h, w)).ravel() for e in np.eye(h * w)], axis=1)
    y = rng.standard_normal((2, h, w))
    np.testing.assert_allclose(K.H(y).ravel(), dense.T @ y.ravel(), atol=1e-12)
