"""The backend helpers: dtypes, devices, namespaces and FFTs."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import adareg
from adareg import backend, threads


@pytest.mark.parametrize(
    "given, coefficients, expected",
    [
        (np.float32, np.float64, np.float32),
        (np.float64, np.float64, np.float64),
        (np.float32, np.complex128, np.complex64),
        (np.complex128, np.float64, np.complex128),
        (np.complex64, np.complex128, np.complex64),
    ],
)
def test_result_dtype_keeps_the_input_precision(given, coefficients, expected):
    assert backend.result_dtype(given, coefficients) == np.dtype(expected)


def test_numpy_round_trip():
    x = np.arange(3.0)
    assert adareg.to_numpy(x) is x or np.array_equal(adareg.to_numpy(x), x)
    assert backend.device_of(adareg.to_device(x, "cpu")) == "cpu"


def test_namespace_rejects_non_arrays():
    with pytest.raises(TypeError, match="expected NumPy or CuPy arrays"):
        backend.namespace([1.0, 2.0])


def test_unknown_device():
    with pytest.raises(ValueError, match="device must be 'cpu' or 'gpu'"):
        adareg.to_device(np.zeros(2), "tpu")


@pytest.mark.skipif(adareg.gpu_available(), reason="checks the error raised when no GPU is present")
def test_gpu_request_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="CuPy with a CUDA device is not available"):
        adareg.to_device(np.zeros(2), "gpu")


@pytest.mark.skipif(not adareg.gpu_available(), reason="CuPy with a CUDA GPU is not available")
def test_gpu_round_trip():
    x = np.random.default_rng(0).standard_normal(5).astype(np.float32)
    on_gpu = adareg.to_device(x, "gpu")
    assert backend.is_cupy(on_gpu) and on_gpu.dtype == np.float32
    np.testing.assert_array_equal(adareg.to_numpy(on_gpu), x)


@pytest.mark.skipif(not adareg.gpu_available(), reason="CuPy with a CUDA GPU is not available")
def test_writers_and_slice_maps_take_gpu_arrays(tmp_path):
    """NumPy's asarray refuses CuPy arrays: write_image(path, solve(...).x) on a GPU raised a TypeError."""
    from adareg import io, stacks

    image = np.random.default_rng(0).random((2, 8, 8)).astype(np.float32)
    on_gpu = adareg.to_device(image, "gpu")
    io.write_array(tmp_path / "a.npy", on_gpu)
    io.write_image(tmp_path / "b.npy", on_gpu[0])
    io.write_volume(tmp_path / "c.npy", on_gpu, None, "test")
    for name, expected in (("a", image), ("b", image[0]), ("c", image)):
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}.npy"), expected)
    denoised = stacks.map_slices(stacks.Denoise("tv", None, 0.05), on_gpu, progress=False)
    np.testing.assert_allclose(denoised, stacks.map_slices(stacks.Denoise("tv", None, 0.05), image, progress=False))
    noisy = adareg.data.protocol_noisy(on_gpu[0].astype(np.float64), 25, 0)
    np.testing.assert_array_equal(noisy, adareg.data.protocol_noisy(image[0].astype(np.float64), 25, 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fft_matches_numpy_and_keeps_the_precision(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 9, 14)).astype(dtype)
    fft = backend.fft(x)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    spectrum = fft.rfftn(x, s=(12, 16), axes=(-2, -1))
    assert spectrum.dtype == np.result_type(dtype, np.complex64)
    np.testing.assert_allclose(spectrum, np.fft.rfftn(x.astype(np.float64), s=(12, 16), axes=(-2, -1)),
                               atol=tol * 100)
    np.testing.assert_allclose(fft.irfftn(spectrum, s=(12, 16), axes=(-2, -1))[..., :9, :14], x, atol=tol)
    z = x + 1j * x[::-1]
    np.testing.assert_allclose(fft.ifftn(fft.fftn(z, axes=(-2, -1)), axes=(-2, -1)), z, atol=tol)
    columns = fft.ifft(np.fft.fft(z, axis=-2), axis=-2)
    np.testing.assert_allclose(columns, z, atol=tol)
    np.testing.assert_allclose(fft.irfft(np.fft.rfft(x, n=20, axis=-1), n=20, axis=-1)[..., :14], x, atol=tol)
    assert fft.next_fast_len(493) == 495 and fft.next_fast_len(512) == 512


def test_small_ffts_run_on_one_thread(monkeypatch):
    """Below THREADED_FFT_BYTES of input a host FFT is handed no second thread (which would cost it more than it
    saves); from there on it runs on fft_workers() threads."""
    import scipy.fft

    calls = []

    def recording(transform):
        def call(*args, workers=None, **kwargs):
            calls.append(workers)
            return transform(*args, **kwargs)
        return call

    for name in ("fftn", "ifftn", "rfftn", "irfftn", "ifft", "irfft"):
        monkeypatch.setattr(scipy.fft, name, recording(getattr(scipy.fft, name)))
    small = np.zeros((2, 16, 16), dtype=np.float32)
    large = np.zeros(backend.THREADED_FFT_BYTES // 8, dtype=np.float64)
    try:
        threads.set_fft_workers(2)
        fft = backend.fft(small)
        for x in (small, large):
            fft.fftn(x), fft.ifftn(x), fft.rfftn(x), fft.irfftn(x + 0j), fft.ifft(x), fft.irfft(x + 0j)
    finally:
        threads.set_fft_workers(None)
    assert calls == [1] * 6 + [2] * 6


@pytest.mark.parametrize("dtype, advice", [(np.uint8, r"x.astype\(numpy.float32\) / 255, for intensities in \[0, 1\]"),
                                           (np.uint16, r"x.astype\(numpy.float32\) / 65535, for intensities"),
                                           (np.int32, r"x.astype\(numpy.float32\)\)$")])
def test_the_advice_for_integer_pixels_scales_them(dtype, advice):
    """The advice for 8-bit images was a plain cast, which kept them at 0-255: TV with bounds (0, 1) then gave
    5.6 dB where y / 255 gives 28.3, converged and without a word (an audit, 2026-12-06)."""
    with pytest.raises(TypeError, match=f"^y has dtype {np.dtype(dtype).name}; expected float32, .*{advice}"):
        backend.check_dtype(np.zeros((4, 4), dtype), "y")


def _masked_entry_points(tmp_path):
    """Each entry that converts an array argument with ``asarray`` or ``to_numpy``, given a masked array, and the
    argument's name."""
    from adareg import io, stacks
    from adareg.operators import Blur, CartesianMRI, Subsample

    stack = np.ma.masked_greater(np.random.default_rng(0).random((2, 8, 8)), 0.9)
    box = np.ma.masked_equal(np.ones((8, 8), dtype=bool), False)
    yield lambda: stacks.map_slices(stacks.Denoise("tv", lam=0.1), stack), "map_slices: stack"
    yield lambda: io.write_array(tmp_path / "a.npy", stack), "write_array: .*a.npy: the array"
    yield lambda: io.write_image(tmp_path / "a.png", stack[0]), "write_image: .*a.png: the image"
    yield lambda: io.write_volume(tmp_path / "v.npy", stack), "write_volume: .*v.npy: data"
    yield lambda: Blur(stack[0, :3, :3], (8, 8)), "Blur: psf"
    yield lambda: CartesianMRI(box, real=True), "CartesianMRI: mask"
    yield lambda: Subsample((8, 8), box), "Subsample: mask"
    yield lambda: adareg.data.protocol_noisy(stack[0], 25, 0), "protocol_noisy: clean"
    if importlib.util.find_spec("astra") is not None:
        from adareg.ct import poisson_transmission
        from adareg.operators import RayTransform

        yield lambda: RayTransform((8, 8), np.ma.masked_greater(np.linspace(0, 3, 5), 2)), "RayTransform: angles"
        yield lambda: poisson_transmission(stack[0], 1e3), "poisson_transmission: sinogram"


def test_masked_arrays_are_refused_where_a_conversion_would_drop_their_mask(tmp_path):
    # each of these used the values under the mask as data, silently
    for call, name in _masked_entry_points(tmp_path):
        with pytest.raises(TypeError, match=f"^{name} is a masked array, whose mask adareg would ignore"):
            call()
    assert list(tmp_path.iterdir()) == []  # nothing written
