"""Read-only and memory-mapped inputs, which ASTRA's DLPack link refuses unless they are copied."""

from __future__ import annotations

import copy
import importlib.util
import pickle

import numpy as np
import pytest

from adareg.operators import Conv2d, RayTransform


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geometry", ["parallel", "fan"])
def test_ray_transform_on_memory_mapped_arrays(tmp_path, geometry, dtype):
    pytest.importorskip("astra", reason="the ASTRA toolbox is not installed (pip install adareg[ct])")
    options = {"source_distance": 60.0, "detector_distance": 30.0} if geometry == "fan" else {}
    R = RayTransform((24, 20), 15, geometry=geometry, **options)
    rng = np.random.default_rng(0)
    for op, shape in ((R, R.shape_in), (R.H, R.shape_out)):
        for batch in ((), (2,)):
            a = rng.standard_normal((*batch, *shape)).astype(dtype)
            np.save(tmp_path / "a.npy", a)
            mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
            assert not mapped.flags.writeable
            np.testing.assert_array_equal(op(mapped), op(a))
            np.testing.assert_array_equal(mapped, a)  # the file is untouched


def _edit_after_use(make, coefficients: np.ndarray, edit, x: np.ndarray):
    """An operator made from ``coefficients``, applied at float32 (caching a cast copy), then the caller's
    array edited in place: the operator must act as the one made from a copy of the original."""
    reference = make(coefficients.copy())
    op = make(coefficients)
    op(x.astype(np.float32))
    edit(coefficients)
    for dtype in (np.float32, np.float64):
        np.testing.assert_allclose(op(x.astype(dtype)), reference(x.astype(dtype)), rtol=1e-6)
    assert op.norm() == pytest.approx(reference.norm(), rel=1e-6)


def test_operators_keep_their_own_coefficients():
    # Diagonal and Conv2d cached a float32 copy but kept the caller's float64 array (two operators in
    # one), and CartesianMRI on odd shapes applied its mask by reference while A.mask stayed in step
    from adareg.operators import CartesianMRI, Conv2d, Diagonal

    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 7))
    kernel = np.zeros((3, 3))
    kernel[1, 1] = 1.0

    def zero(a):
        a[...] = 0
        a.flat[3] = 1

    _edit_after_use(Diagonal, np.ones((5, 7)), lambda a: a.__imul__(10), x)
    _edit_after_use(lambda k: Conv2d(k, (5, 7)), kernel, lambda k: k.__imul__(5), x)
    _edit_after_use(lambda m: CartesianMRI(m, real=True), np.ones((5, 7), bool), zero, x)


def test_the_coefficients_an_operator_shows_are_read_only():
    """H.mask, H.maps and RayTransform.angles could be edited in place: the operator went on applying the old ones
    (a mask edited to sample everything: 0.655 from an operator made with it), while its norm and checks read the
    new ones (an audit, 2026-12-06)."""
    from adareg.operators import CartesianMRI

    mask = np.zeros((6, 8), bool)
    mask[:, ::2] = True
    maps = np.ones((2, 6, 8), complex) / np.sqrt(2)
    H = CartesianMRI(mask, maps, real=False)
    copies = [H, pickle.loads(pickle.dumps(H)), copy.deepcopy(H)]  # NumPy's pickling drops the flag
    arrays = [array for G in copies for array in (G.mask, G.maps)]
    if importlib.util.find_spec("astra") is not None:
        R = RayTransform((8, 8), 5)
        arrays += [R.angles, pickle.loads(pickle.dumps(R)).angles]
    for array in arrays:
        with pytest.raises(ValueError, match="read-only"):
            array[...] = 1
    mask[:] = True  # the caller's own arrays stay theirs
    maps *= 2


def test_a_non_cartesian_operator_pickles_and_computes_as_the_original():
    """It held the SigPy module, so pickling it (multiprocessing, copy.deepcopy) failed: "cannot pickle 'module'
    object"."""
    pytest.importorskip("sigpy", reason="SigPy is not installed (pip install adareg[mri])")
    from adareg import mri
    from adareg.operators import NonCartesianMRI

    H = NonCartesianMRI(mri.radial_trajectory((16, 16), 8), (16, 16), real=True)
    x = np.random.default_rng(0).random((16, 16))
    for G in (pickle.loads(pickle.dumps(H)), copy.deepcopy(H)):
        np.testing.assert_array_equal(G(x), H(x))
        assert not G.trajectory.flags.writeable


def test_a_pickled_convolution_leaves_its_cached_spectra_behind():
    """This bank pickled to 9.4 MB once used, 13 kB unused: the spectra of its FFT path went along, and after a
    GPU solve they would be CuPy arrays, carried to processes that may have no GPU."""
    rng = np.random.default_rng(0)
    W = Conv2d(rng.standard_normal((32, 1, 7, 7)), (128, 128), method="fft")
    unused = len(pickle.dumps(W))
    x = rng.standard_normal((1, 128, 128))
    expected = W.H(W(x))
    copy_ = pickle.loads(pickle.dumps(W))
    assert len(pickle.dumps(W)) < 1.05 * unused
    np.testing.assert_array_equal(copy_.H(copy_(x)), expected)  # the copy remakes them


def test_an_operators_or_regularizers_parameters_cannot_be_reassigned():
    """Assigning tv.weights, H.mask or Blur.boundary changed the attribute and not what the object computes: the
    prox and value kept the old weights (0.255 from a TV built with the new ones), the MRI operator its old mask,
    the blur its old norm bound with the new padding (an audit, 2026-12-06).  Each assignment raises now, naming
    the attribute, and the object computes as built; a TV with other weights comes from with_weights."""
    from adareg.operators import Blur, CartesianMRI
    from adareg.regularizers import TV

    rng = np.random.default_rng(4)
    x = rng.random((6, 8))
    mask = np.zeros((6, 8), bool)
    mask[:, ::2] = True
    tv, H, B = TV((6, 8)), CartesianMRI(mask, real=True), Blur(np.ones((3, 3)) / 9, (6, 8))
    expected = (tv.value(x), H(x), B(x))
    reassignments = [(tv, "weights", 0.25), (tv, "W", B), (H, "mask", np.ones((6, 8), bool)),
                     (B, "boundary", "reflect"), (B, "psf", np.ones((1, 1))), (H, "real", False)]
    for obj, name, value in reassignments:
        with pytest.raises(AttributeError, match=f"{type(obj).__name__}.{name} cannot be changed"):
            setattr(obj, name, value)
    for got, want in zip((tv.value(x), H(x), B(x)), expected):
        np.testing.assert_array_equal(got, want)
    assert tv.weights == 1.0 and tv.with_weights(0.25).value(x) == pytest.approx(0.25 * tv.value(x))
    H.new_name = 1  # attributes not set before stay the caller's to add
    for G in (pickle.loads(pickle.dumps(H)), copy.deepcopy(H)):
        with pytest.raises(AttributeError, match="CartesianMRI.mask cannot be changed"):
            G.mask = np.ones((6, 8), bool)


def test_a_learned_models_layers_cannot_be_replaced_one_by_one():
    """MaskCNN.kernels and .biases and FilterBank.layers were lists: ``m.kernels[1] = k`` reached only the
    convolutions built afterwards, for image shapes not met before, never the bias caches, so a solve's result
    depended on the shapes solved before it (an audit, 2026-12-06)."""
    from adareg.regularizers.filterbank import FilterBank
    from adareg.regularizers.masks import MaskCNN

    rng = np.random.default_rng(5)
    masks = MaskCNN([rng.standard_normal((4, 2, 3, 3)), rng.standard_normal((2, 4, 3, 3))],
                    [rng.standard_normal(4), rng.standard_normal(2)])
    bank = FilterBank([rng.standard_normal((3, 1, 3, 3))])
    x = rng.random((10, 12))
    expected = masks(x, 0.1)
    for sequence, item in ((masks.kernels, rng.standard_normal((2, 4, 3, 3))), (masks.biases, np.zeros(2)),
                           (bank.layers, rng.standard_normal((3, 1, 3, 3)))):
        with pytest.raises(TypeError):
            sequence[-1] = item
        with pytest.raises(ValueError, match="read-only"):
            sequence[-1][...] = item
    np.testing.assert_array_equal(masks(x, 0.1), expected)
