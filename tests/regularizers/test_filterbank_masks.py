"""The filter bank and the mask CNN against layer-by-layer computations with scipy.ndimage."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy import ndimage

from adareg.regularizers.filterbank import FilterBank
from adareg.regularizers.masks import LEAKY_SLOPE, MaskCNN


def correlate_layer(h: np.ndarray, kernel: np.ndarray, mode: str) -> np.ndarray:
    """Multi-channel 'same' correlation (odd kernels) of h (c_in, H, W) with kernel (c_out, c_in, k, k)."""
    return np.stack([sum(ndimage.correlate(h[i], kernel[o, i], mode=mode) for i in range(kernel.shape[1]))
                     for o in range(kernel.shape[0])])


def random_layers(seed: int, channels=(4, 8, 6), size: int = 5):
    rng = np.random.default_rng(seed)
    sizes = (1, *channels)
    return [rng.standard_normal((sizes[l + 1], sizes[l], size, size)) for l in range(len(channels))]


def test_filter_bank_is_the_layer_composition_zero_mean_and_normalised():
    layers = random_layers(0)
    bank = FilterBank(layers, boundary="periodic")
    x = np.random.default_rng(1).standard_normal((20, 24))
    h = x[None]
    first = layers[0] - layers[0].mean(axis=(-2, -1), keepdims=True)
    for kernel in [first, *layers[1:]]:
        h = correlate_layer(h, kernel, mode="wrap")  # periodic layers compose exactly
    W = bank.operator(x.shape)
    out = W(x)
    scale = np.vdot(out, h) / np.vdot(h, h)  # the normalisation, a positive constant
    assert scale > 0
    np.testing.assert_allclose(out, scale * h, atol=1e-12 * np.abs(out).max())
    assert bank.operator((256, 256)).norm() == pytest.approx(1.0, abs=1e-9)  # exact periodic norm on the grid
    assert np.abs(W(np.ones((20, 24)))).max() < 1e-12  # zero-mean first layer: constants are annihilated


def test_a_bank_of_many_filters_is_normalised_in_bounded_memory():
    """The normalisation held every filter's 256 x 256 symbol at once: 400 filters of a 23 kB file took 661 MB."""
    layers = [np.random.default_rng(2).standard_normal((200, 1, 3, 3))]
    tracemalloc.start()
    try:
        bank = FilterBank(layers, boundary="periodic")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20
    assert bank.operator((256, 256)).norm() == pytest.approx(1.0, abs=1e-9)  # exact periodic norm on the grid


def test_filter_bank_with_reflect_boundary_mirrors_the_image():
    layers = random_layers(2, channels=(3,), size=3)
    bank = FilterBank(layers)
    x = np.random.default_rng(3).standard_normal((9, 10))
    first = layers[0] - layers[0].mean(axis=(-2, -1), keepdims=True)
    expected = correlate_layer(x[None], first, mode="mirror")  # scipy's mirror = numpy/torch reflect
    out = bank.operator(x.shape)(x)
    np.testing.assert_allclose(out, expected * (np.vdot(out, expected) / np.vdot(expected, expected)), atol=1e-12)


def test_filter_bank_names_the_smallest_image_it_can_mirror():
    bank = FilterBank(random_layers(4))  # three 5x5 layers: a 13x13 kernel, reflected 6 pixels deep
    assert bank.operator((7, 30))(np.ones((7, 30))).shape == (6, 7, 30)
    with pytest.raises(ValueError, match=r"needs images of at least 7x7 pixels, got \(6, 30\)"):
        bank.operator((6, 30))
    assert FilterBank(random_layers(4), boundary="periodic").operator((6, 30)).shape_in == (6, 30)
    for shape in ((32.7, 32), ("32", 32), (True, 32)):
        with pytest.raises(TypeError, match="FilterBank: image_shape must be a tuple of ints"):
            bank.operator(shape)
    assert bank.operator((16.0, 16)) is bank.operator((16, 16))


@pytest.mark.parametrize(
    "layers, words",
    [
        ([], "at least one layer"),
        ([np.ones((4, 2, 5, 5))], r"layer 0 must have shape \(c_out, 1, k, k\)"),
        ([np.ones((4, 1, 4, 4))], "odd k"),
        ([np.ones((4, 1, 5, 5)), np.ones((8, 3, 5, 5))], r"layer 1 must have shape \(c_out, 4, k, k\)"),
        ([np.full((4, 1, 3, 3), np.nan)], "finite values"),
        ([np.ones((4, 1, 3, 3))], "all zero"),  # zero-mean constant kernels vanish
        # finite layers whose composition overflows gave an all-zero bank (a tampered file loaded and did nothing)
        ([1e160 * np.arange(9.0).reshape(1, 1, 3, 3)], "overflow float64"),
        ([1e300 * np.arange(9.0).reshape(1, 1, 3, 3), 1e300 * np.ones((2, 1, 3, 3))], "overflow float64"),
    ],
)
def test_filter_bank_rejects_bad_layers(layers, words):
    with pytest.raises(ValueError, match=words):
        FilterBank(layers)


def test_filter_bank_takes_integer_taps_as_floats_and_names_other_dtypes():
    # hand-written difference filters as nested lists of ints were refused as not "finite floats"
    taps = [[[[0, 0, 0], [-1, 1, 0], [0, 0, 0]]], [[[0, -1, 0], [0, 1, 0], [0, 0, 0]]]]
    bank = FilterBank([taps])
    x = np.random.default_rng(0).random((8, 8))
    differences = np.stack([x - np.pad(x, ((0, 0), (1, 0)), mode="reflect")[:, :-1],  # x[i, j] - x[i, j - 1]
                            x - np.pad(x, ((1, 0), (0, 0)), mode="reflect")[:-1]])
    assert bank.layers[0].dtype == np.float64
    Wx = bank.operator(x.shape)(x)  # the differences over the bank's norm
    np.testing.assert_allclose(Wx * (np.linalg.norm(differences) / np.linalg.norm(Wx)), differences, atol=1e-12)
    for dtype in (bool, complex, object):
        with pytest.raises(TypeError, match=f"FilterBank: layer 0 has dtype {np.dtype(dtype)}; expected real"):
            FilterBank([np.ones((2, 1, 3, 3), dtype=dtype)])


def test_filter_bank_rejects_a_bad_boundary_when_made():
    # it was refused only when the first operator was made, far from the mistake
    with pytest.raises(ValueError, match="FilterBank: boundary must be one of zero, periodic, reflect, got 'foo'"):
        FilterBank([np.arange(9.0).reshape(1, 1, 3, 3)], boundary="foo")


def test_filter_bank_keeps_copies_of_its_layers_and_names_a_non_sequence():
    """.layers held the caller's arrays: an edit after construction left them inconsistent with .kernel."""
    layer = np.arange(9.0).reshape(1, 1, 3, 3)
    bank = FilterBank([layer], boundary="zero")
    layer[0, 0, 0, 0] = 100.0
    assert bank.layers[0][0, 0, 0, 0] == 0.0
    assert repr(bank) == "FilterBank(1 -> 1 channels, 3x3 composed kernel, boundary='zero')"
    for layers in (None, 3.0):  # "'NoneType' object is not iterable"
        with pytest.raises(TypeError, match="^FilterBank: layers must be a sequence of kernels"):
            FilterBank(layers)


def reference_masks(x, sigma, kernels, biases, activation):
    """Layer by layer, with the noise level as a real constant input channel."""
    h = np.stack([x, np.full_like(x, sigma)])
    for l, (kernel, bias) in enumerate(zip(kernels, biases)):
        h = correlate_layer(h, kernel, mode="mirror") + bias[:, None, None]
        if l < len(kernels) - 1:
            h = np.maximum(h, 0) if activation == "relu" else np.where(h > 0, h, LEAKY_SLOPE * h)
    return 1 / (1 + np.exp(-h))


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_mask_cnn_matches_a_layer_by_layer_computation(activation):
    rng = np.random.default_rng(4)
    kernels = [rng.standard_normal((6, 2, 3, 3)), rng.standard_normal((6, 6, 3, 3)), rng.standard_normal((5, 6, 5, 5))]
    biases = [rng.standard_normal(6), rng.standard_normal(6), rng.standard_normal(5)]
    cnn = MaskCNN(kernels, biases, activation=activation)
    x = rng.random((2, 12, 11))  # a batch of two images
    masks = cnn(x, 0.1)
    assert masks.shape == (2, 5, 12, 11) and masks.min() >= 0 and masks.max() <= 1
    for i in range(2):
        np.testing.assert_allclose(masks[i], reference_masks(x[i], 0.1, kernels, biases, activation), atol=1e-12)
    assert cnn(x.astype(np.float32), 0.1).dtype == np.float32


def test_mask_cnn_errors():
    k, b = np.ones((3, 2, 3, 3)), np.zeros(3)
    with pytest.raises(ValueError, match="as many biases as kernels"):
        MaskCNN([k], [])
    with pytest.raises(ValueError, match=r"kernel 0 must have shape \(c_out, 2, k, k\)"):
        MaskCNN([np.ones((3, 1, 3, 3))], [b])
    with pytest.raises(ValueError, match=r"bias 0 must have shape \(3,\)"):
        MaskCNN([k], [np.zeros(4)])
    with pytest.raises(TypeError, match="kernel 0 must be real numbers, got dtype complex128"):
        MaskCNN([k + 1j], [b])  # the imaginary part was dropped with a ComplexWarning
    with pytest.raises(TypeError, match="bias 0 must be real numbers, got dtype <U1"):
        MaskCNN([k], [np.array(["a", "b", "c"])])
    with pytest.raises(ValueError, match="activation must be"):
        MaskCNN([k], [b], activation="tanh")
    with pytest.raises(TypeError, match="must be real"):
        MaskCNN([k], [b])(np.ones((4, 4), dtype=complex), 0.1)
    for sigma, error, words in [(float("nan"), ValueError, "sigma must be finite"),
                                (-0.1, ValueError, "sigma must be non-negative"),
                                (True, TypeError, "sigma must be a real number")]:
        with pytest.raises(error, match=f"MaskCNN: {words}"):
            MaskCNN([k], [b])(np.ones((4, 4)), sigma)
