"""adareg.stacks: every slice of a volume, in-process and on a local Dask cluster."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import adareg
from adareg import stacks
from adareg.io import Volume
from adareg.operators import Identity
from adareg.params import ParameterFileError
from tests.helpers import ForeignArray

SIGMA = 0.1
WEIGHTS = Path(adareg.__file__).parent / "weights"
MARK = -0.75  # a first pixel that makes DieOnce end its worker (exact in float32)


def noisy_stack(count: int = 5, size: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clean = np.stack([np.roll(adareg.data.shepp_logan((size, size)), 2 * i, axis=1) for i in range(count)])
    return (clean + SIGMA * rng.standard_normal(clean.shape)).astype(np.float32)


def one_by_one(stack: np.ndarray, model: str) -> np.ndarray:
    """The reference: adareg.solve called on each slice in turn."""
    reg = adareg.load(model)
    shape = stack.shape[1:]
    return np.stack([adareg.solve(Identity(shape), s, reg, sigma=SIGMA, bounds=(0.0, 1.0)).x for s in stack])


class DieOnce:
    """Denoise; the first call for slice 2 ends its worker process (a lost worker) before returning."""

    def __init__(self, marker: str):
        self.marker = marker

    def __call__(self, slices: np.ndarray) -> np.ndarray:
        result = stacks.Denoise("crr", SIGMA)(slices)
        if slices.shape[0] and float(slices[0, 0, 0]) == MARK and not Path(self.marker).exists():
            Path(self.marker).touch()
            os._exit(1)
        return result


def die_at_marked_slices(slices: np.ndarray) -> np.ndarray:
    """Ends its worker process at every call on a chunk whose first pixel is :data:`MARK`, e.g. out of memory."""
    if float(slices[0, 0, 0]) == MARK:
        os._exit(1)
    return -slices


def test_one_slice_per_chunk_is_the_slice_by_slice_loop():
    stack = noisy_stack(3)
    out = stacks.map_slices(stacks.Denoise("crr", SIGMA), stack, chunk=1, progress=False)
    np.testing.assert_array_equal(out, one_by_one(stack, "crr"))


def test_batched_chunks_agree_with_the_loop_to_the_solver_tolerance():
    stack = noisy_stack(3, size=24)
    reference = one_by_one(stack, "sa-cnn")
    out = stacks.map_slices(stacks.Denoise("sa-cnn", SIGMA), stack, chunk=2, progress=False)
    assert out.shape == stack.shape and out.dtype == np.float32
    for got, want in zip(out, reference):
        # a batch stops when all of it has converged: its slices take a few more steps than alone
        assert np.linalg.norm(got - want) <= 1e-2 * np.linalg.norm(want)


def test_denoise_maps_the_units_to_the_unit_interval_and_back():
    stack = noisy_stack(2)
    low, high = -1000.0, 3000.0
    in_units = low + (high - low) * stack
    out = stacks.map_slices(stacks.Denoise("crr", SIGMA, low=low, high=high), in_units, progress=False)
    unit = stacks.map_slices(stacks.Denoise("crr", SIGMA), stack, progress=False)
    # the two float32 inputs differ by rounding, which moves the solver's path by about
    # its tolerance (1e-5), not by a wrong mapping (which would move pixels by units)
    np.testing.assert_allclose(out, low + (high - low) * unit, rtol=1e-5, atol=1e-5 * (high - low))


def test_a_failing_slice_is_named():
    stack = noisy_stack(5)
    stack[3, 4, 4] = np.nan
    with pytest.raises(stacks.SliceError, match=r"^slice 3: ValueError: .*finite"):
        stacks.map_slices(stacks.Denoise("crr", SIGMA), stack, chunk=2, progress=False)
    # by the numbers given, e.g. a file's indices of the slices read (they named positions in the selection)
    with pytest.raises(stacks.SliceError, match=r"^slice 16: ValueError: .*finite"):
        stacks.map_slices(stacks.Denoise("crr", SIGMA), stack, chunk=2, progress=False, numbers=[10, 12, 14, 16, 18])
    with pytest.raises(ValueError, match="numbers names 2 slices, but stack holds 5"):
        stacks.map_slices(np.negative, stack, numbers=[1, 2])
    # [0.5, 1.7, ...] named slices 0 and 1 (truncated), "56789" slice 9, and NaN failed in int() unnamed
    for numbers in ([0.5, 1.7, 2.2, 3.9, 4.1], "56789", [np.nan] * 5, [True] * 5):
        with pytest.raises(TypeError, match="map_slices: numbers must be a sequence of whole numbers"):
            stacks.map_slices(np.negative, stack, numbers=numbers)
    assert stacks.map_slices(np.negative, stack, numbers=np.arange(5.0) + 7, progress=False).shape == stack.shape


def _doubled_in_place(slices):
    slices *= 2
    return slices


def test_a_chunk_s_fft_threads_hold_in_its_own_thread_alone():
    """run_chunk(fft_threads=1) set the process's setting and put it back after: other threads saw 1 meanwhile, and
    two chunks overlapping on a worker of several threads left it at 1 for good (an audit)."""
    from adareg import threads

    seen, inside, release = {}, threading.Event(), threading.Event()

    def task(slices: np.ndarray) -> np.ndarray:
        seen["chunk"] = threads.fft_workers()
        inside.set()
        release.wait(30.0)
        return -slices

    previous = threads.set_fft_workers(3)
    try:
        chunk = threading.Thread(target=stacks.run_chunk, args=(task, np.zeros((1, 4, 4)), [0], 1))
        chunk.start()
        inside.wait(30.0)
        seen["other"] = threads.fft_workers()
        release.set()
        chunk.join(30.0)
        seen["after"] = threads.fft_workers()
    finally:
        threads.set_fft_workers(previous)
    assert seen == {"chunk": 1, "other": 3, "after": 3}


def test_a_task_cannot_change_the_stack_it_is_given():
    # in process the task got views: the caller's stack was doubled, and a retry saw doubled slices
    stack = np.ones((4, 2, 2), np.float32)
    with pytest.raises(stacks.SliceError, match="^slice 0: ValueError: output array is read-only"):
        stacks.map_slices(_doubled_in_place, stack, chunk=2, progress=False)
    np.testing.assert_array_equal(stack, 1.0)
    np.testing.assert_array_equal(stacks.map_slices(lambda s: s * 2, stack, chunk=2, progress=False), 2.0)


class _OnDemand:
    """A stack read on demand, as an h5py dataset is: it records the slices asked of it, and reading it whole is
    an error."""

    def __init__(self, data: np.ndarray):
        self.data, self.shape, self.ndim, self.dtype, self.reads = data, data.shape, data.ndim, data.dtype, []

    def __getitem__(self, index):
        self.reads.append(index)
        return self.data[index].copy()

    def __array__(self, dtype=None):
        raise AssertionError("the whole stack was read")


def test_a_stack_of_another_library_is_read_a_chunk_at_a_time():
    # it was read whole before the first chunk ran (np.asarray of a dask array computes every block)
    data = np.random.default_rng(2).random((5, 3, 4))
    lazy = _OnDemand(data)
    np.testing.assert_array_equal(stacks.map_slices(np.negative, lazy, chunk=2, progress=False), -data)
    assert lazy.reads == [slice(0, 2), slice(2, 4), slice(4, 6)]
    # one that only converts (as a PIL image, which has no shape) is read whole, as before
    np.testing.assert_array_equal(stacks.map_slices(np.negative, ForeignArray(data), chunk=2, progress=False),
                                  -data)
    whole = type("ArrayOnly", (), {"__array__": lambda self, dtype=None: data})()
    np.testing.assert_array_equal(stacks.map_slices(np.negative, whole, chunk=2, progress=False), -data)
    dask_array = pytest.importorskip("dask.array", reason="dask is not installed (pip install adareg[distributed])")
    stack = dask_array.from_array(data, chunks=(2, 3, 4))
    np.testing.assert_array_equal(stacks.map_slices(np.negative, stack, chunk=3, progress=False), -data)


def test_a_list_of_slices_of_different_shapes_is_named():
    """NumPy's 'setting an array element with a sequence' named neither map_slices nor its argument."""
    with pytest.raises(ValueError, match=r"^map_slices: stack: NumPy cannot make it one array \(.*\); give slices "
                                         r"of one shape"):
        stacks.map_slices(np.negative, [np.zeros((4, 4)), np.zeros((3, 4))], progress=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"chunk": 0}, "chunk"),
    ({"workers": 2, "scheduler": "tcp://127.0.0.1:1"}, "not both"),
    ({"scheduler": 3}, "scheduler must be an address"),
])
def test_bad_arguments(kwargs, message):
    if "scheduler" in kwargs:
        pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install adareg[distributed])")
    with pytest.raises((ValueError, TypeError), match=message):
        stacks.map_slices(np.negative, np.zeros((2, 3, 3)), progress=False, **kwargs)


def test_a_task_that_is_no_callable_or_a_volume_for_a_stack_is_named():
    """Each was named as slice 0's failure ("'str' object is not callable", "The truth value of an array ... is
    ambiguous" for the class Denoise) or as a stack of shape () (an audit, 2026-12-06)."""
    for task in ("sa-cnn", stacks.Denoise):
        with pytest.raises(TypeError, match=r"^map_slices: task must be a callable on a chunk of slices, e\.g\. "
                                            r"stacks\.Denoise\(\.\.\.\), got "):
            stacks.map_slices(task, np.zeros((2, 3, 3)), progress=False)
    volume = Volume(np.zeros((2, 3, 3), np.float32), "npy", {"bits": None})
    with pytest.raises(TypeError, match=r"^map_slices: stack is a Volume; pass its slices, volume\.data$"):
        stacks.map_slices(np.negative, volume, progress=False)


def complex_after_the_first_chunk(slices: np.ndarray) -> np.ndarray:
    """A task whose later chunks are complex: slices whose first pixel is nonzero."""
    return slices.astype(complex) if slices[0, 0, 0] else slices


def test_chunks_of_another_dtype_are_refused_not_cast():
    stack = np.zeros((4, 3, 3))
    stack[2:, 0, 0] = 1.0  # marks slices 2 and 3, which come back complex
    with pytest.raises(ValueError, match=r"slices 2-3 gave results of dtype complex128, earlier ones float64"):
        stacks.map_slices(complex_after_the_first_chunk, stack, chunk=2, progress=False)


@pytest.mark.parametrize("args, kwargs, message", [
    (("crr", SIGMA), {"low": 5.0, "high": 5.0}, "finite low < high"),
    (("crr", SIGMA), {"low": 1.0, "high": 0.0}, "finite low < high"),
    (("crr", SIGMA), {"high": float("nan")}, "Denoise: high must be finite"),
    (("tv", None), {"lam": 0.1, "high": "1"}, r"Denoise: high must be a real number, got '1'"),
    (("tv", None), {"lam": 0.1, "low": None}, "Denoise: low must be a real number, got None"),
    (("tv", None), {"lam": 0.1, "high": True}, "Denoise: high must be a real number, got True"),
    (("tv", SIGMA), {}, "lam is required for 'tv'"),
    (("crr", None), {}, "sigma is required for the learned model 'crr'"),
    # named only on the first slice before, and on Dask after the cluster had started
    (("tv", None), {"lam": -1.0}, "Denoise: lam must be positive"),
    (("crr", 0.0), {}, "Denoise: sigma must be positive"),
    (("tv", None), {"lam": 0.1, "device": "foo"}, "Denoise: device must be 'cpu' or 'gpu'"),
    (("nosuchmodel", SIGMA), {}, "unknown model 'nosuchmodel'"),
])
def test_denoise_refuses_what_it_cannot_solve_at_construction(args, kwargs, message):
    with pytest.raises(TypeError if "real number" in message else ValueError, match=message):
        stacks.Denoise(*args, **kwargs)


def test_denoise_refuses_data_in_other_units_than_it_is_told():
    """8-bit values with the default units [0, 1] would come back cut off at 1; noise beyond the units is kept."""
    stack = noisy_stack(1, size=16)
    with pytest.raises(ValueError, match=r"values of a slice lie beyond the units \[low, high\] = "
                                         r"\[0, 1\].*high=255"):
        stacks.Denoise("tv", None, lam=0.05)(255 * stack)
    noisy = stack + 0.4 * (np.arange(stack.size).reshape(stack.shape) % 2 - 0.5)  # up to 0.2 beyond [0, 1]
    assert stacks.Denoise("tv", None, lam=0.05)(noisy).shape == stack.shape


def test_unsigned_slices_in_int_units_are_mapped_without_wrapping_around():
    """uint16 slices minus an int low stayed uint16 and wrapped around: a pixel 20 below low became about 65500
    (an audit, 2026-12-06); the units are floats now, and the slices come out as their float32 copy does."""
    clean = np.full((1, 16, 16), 1020.0)
    clean[:, :, 8:] = 2980.0
    stack = np.clip(clean + 30 * np.random.default_rng(3).standard_normal(clean.shape), 0, None).astype(np.uint16)
    assert np.mean(stack < 1000) > 0.1
    task = stacks.Denoise("tv", None, lam=0.02, low=1000, high=3000)
    assert isinstance(task.low, float) and isinstance(task.high, float)
    out = task(stack)
    np.testing.assert_allclose(out, task(stack.astype(np.float32)), rtol=0, atol=1e-3)
    assert out.max() <= 3000 and abs(out[:, :, :8].mean() - 1020) < 10


def test_a_parameter_file_rewritten_in_place_is_loaded_again(tmp_path):
    """The cache of loaded models was keyed on the path's text: a file rewritten (by more training, say) gave the
    model loaded before it for the rest of the process."""
    path = tmp_path / "model.npz"
    path.write_bytes((WEIGHTS / "crr.npz").read_bytes())
    assert stacks.cached_model(str(path)).family == "crr"
    assert stacks.cached_model(str(path)) is stacks.cached_model(str(path))  # loaded once while unchanged
    path.write_bytes((WEIGHTS / "wcrr.npz").read_bytes())
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # a later time, whatever the clock
    assert stacks.cached_model(str(path)).family == "wcrr"


def test_a_parameter_file_replaced_with_its_old_time_is_loaded_again(tmp_path):
    """cp -p, rsync -a and tar keep a file's modification time, and models of one layout have one size: the cache
    gave the model loaded before (an audit, 2026-12-06)."""
    path, other = tmp_path / "model.npz", tmp_path / "other.npz"
    path.write_bytes((WEIGHTS / "crr.npz").read_bytes())
    other.write_bytes(path.read_bytes())
    with np.load(other) as arrays:
        entries = dict(arrays)
    entries["lam_values"] = entries["lam_values"] / 2
    np.savez(other, **entries)
    assert other.stat().st_size == path.stat().st_size
    first = stacks.cached_model(str(path))
    times = (path.stat().st_atime_ns, path.stat().st_mtime_ns)
    os.replace(other, path)  # as cp -p or rsync -a do: another file under the name, its time set back
    os.utime(path, ns=times)
    again = stacks.cached_model(str(path))
    assert again is not first
    np.testing.assert_array_equal(again.lam.values, first.lam.values / 2)


def test_one_slice_in_other_units_is_refused_whatever_the_chunk():
    """One 0-255 slice among 150 is under 1 % of a chunk's values: a chunk of 150 cut it off to a constant 1
    without a word, while chunks of 8 refused it.  The message names the slice by its number in the stack alone
    (it named the chunk's slice 0 too, the failing chunk being rerun slice by slice)."""
    stack = np.random.default_rng(0).uniform(0.25, 0.75, (150, 16, 16)).astype(np.float32)
    stack[70] *= 255
    for chunk in (150, 8):
        with pytest.raises(stacks.SliceError, match=r"^slice 70: .*256 of 256 values of a slice lie beyond the "
                                                     r"units") as refused:
            stacks.map_slices(stacks.Denoise("tv", None, lam=0.05), stack, chunk=chunk, progress=False)
        assert re.findall(r"slices? (\d+)", str(refused.value)) == ["70"]


def test_tv_denoise_needs_no_sigma():
    stack = noisy_stack(1, size=16)
    with_sigma = stacks.Denoise("tv", SIGMA, lam=0.05)(stack)
    np.testing.assert_array_equal(stacks.Denoise("tv", None, lam=0.05)(stack), with_sigma)


def test_a_ct_geometry_is_checked_whatever_was_built_before():
    """The cache of ray transforms told 48 from 48.0 (and 1 from True) by ==, so a geometry that RayTransform
    refuses was taken after an equal one of the right type had been built (an audit, 2026-12-06)."""
    pytest.importorskip("astra")
    geometry = {"detector_count": 48}
    stacks.CTReconstruction(32, 30, geometry, "fbp")
    with pytest.raises(TypeError, match="detector_count"):
        stacks.CTReconstruction(32, 30, {"detector_count": 48.0}, "fbp")


def test_an_iterative_ct_reconstruction_starts_from_the_fbp_of_its_window(monkeypatch):
    pytest.importorskip("astra")
    from adareg.ct import fbp

    task = stacks.CTReconstruction(16, 12, (("detector_count", 23), ("geometry", "parallel")), "tv", lam=1e-2,
                                   window="ram-lak")
    H = stacks.cached_ray_transform(task.size, task.angles, task.geometry)
    sinograms = H(adareg.data.shepp_logan((16, 16)))[None].astype(np.float32)
    starts = []

    def recording(*args, **kwargs):
        starts.append(kwargs["x0"])
        return adareg.solve(*args, **kwargs)

    monkeypatch.setattr(stacks, "solve", recording)
    task(sinograms)
    np.testing.assert_allclose(starts[0], fbp(H, sinograms, window="ram-lak"), atol=1e-6)
    assert not np.allclose(starts[0], fbp(H, sinograms, window="hann"), atol=1e-3)


def test_an_iterative_ct_reconstruction_weighs_rays_by_their_photon_counts():
    """As adareg ct: the weights N / I0 the CT presets were tuned with (here poisson_transmission's, from the
    counts), each slice its own (a review found no test with more than one slice), or none with
    data_weights="uniform"."""
    pytest.importorskip("astra")
    from adareg.ct import fbp, poisson_transmission
    from adareg.regularizers import TV

    geometry = {"detector_count": 23, "pixel_size": 1 / 16}
    H = stacks.cached_ray_transform(16, 12, tuple(sorted(geometry.items())))
    phantom = adareg.data.shepp_logan((16, 16))
    sinograms, counts_over_photons = poisson_transmission(H(np.stack([phantom, 3 * phantom.T])), 1e3, seed=0)
    for data_weights, weights in (("transmission", counts_over_photons), ("uniform", None)):
        task = stacks.CTReconstruction(16, 12, geometry, "tv", lam=1e-3, data_weights=data_weights)
        expected = adareg.solve(H, sinograms, TV((16, 16)), lam=1e-3, bounds=(0, None), weights=weights,
                                x0=fbp(H, sinograms, window="hann")).x
        np.testing.assert_allclose(task(sinograms), expected, atol=1e-4)


@pytest.mark.parametrize("task, shape, expected", [
    (stacks.Denoise("tv", None, 0.1), (16, 16), r"\(n, H, W\) images, got shape \(1, 16\)"),
    (stacks.CTReconstruction(16, 10, ()), (10, 23), r"\(n, angles, detectors\) sinograms, got shape \(1, 23\)"),
    (stacks.FastMRIReconstruction((True,) * 8, (8, 8)), (2, 8, 8), r"\(n, coils, rows, columns\) k-space"),
])
def test_a_stack_without_its_slice_axis_is_refused(task, shape, expected):
    # a 2D image given as a stack is a stack of rows: Denoise used to solve chunks of 8 rows as one image
    with pytest.raises(stacks.SliceError, match=f"expected a chunk of {expected}.* image\\[None\\] for one image"):
        stacks.map_slices(task, np.zeros(shape, np.float32), progress=False)


@pytest.mark.parametrize("task", [stacks.Denoise("tv", None, 0.1), stacks.CTReconstruction(16, 10, ())])
def test_complex_slices_are_refused_where_real_ones_are_expected(task):
    # the cast to float32 would drop the imaginary parts with no more than NumPy's ComplexWarning
    with pytest.raises(stacks.SliceError, match=r"expected real .*, got dtype complex128; pass magnitudes"):
        stacks.map_slices(task, np.ones((2, 10, 16), complex), progress=False)


def test_ct_geometry_is_a_dict_or_pairs_kept_sorted():
    # a dict failed in the workers' cache ("unhashable type: 'dict'")
    task = stacks.CTReconstruction(16, 10, {"pixel_size": 1.0, "detector_count": 23})
    assert task.geometry == (("detector_count", 23), ("pixel_size", 1.0)) and hash(task)
    assert stacks.CTReconstruction(16, 10, [("pixel_size", 1.0), ("detector_count", 23)]) == task
    for geometry in (3, [("pixel_size",)], [(1, 2)]):
        with pytest.raises(TypeError, match="geometry must be a dict or \\(name, value\\) pairs"):
            stacks.CTReconstruction(16, 10, geometry)


def test_a_ct_task_is_checked_when_it_is_built():
    # an array of angles failed on every chunk ("unhashable type: 'numpy.ndarray'"), an unknown model or a
    # missing lam only at the first chunk, and lam with model "fbp" was ignored
    angles = np.linspace(0, np.pi, 10, endpoint=False)
    task = stacks.CTReconstruction(16, angles, {"detector_count": 23})
    assert task.angles == tuple(angles) and hash(task)
    if importlib.util.find_spec("astra") is not None:  # the angles reach the operator as given
        np.testing.assert_array_equal(stacks.cached_ray_transform(16, task.angles, task.geometry).angles, angles)
    for kwargs, error, words in [
        ({"model": "FBP"}, ValueError, "FBP"), ({"model": "tv"}, ValueError, "lam is required for 'tv'"),
        ({"model": "wcrr", "lam": 0.1}, ValueError, "sigma is required for the learned model 'wcrr'"),
        ({"model": "tv", "lam": 0.1, "sigma": 0.1}, ValueError, "sigma is a parameter of the learned models"),
        ({"model": "fbp", "lam": 0.1}, ValueError, "lam applies to the iterative models; 'fbp' has none"),
        ({"device": "cuda"}, ValueError, "device must be 'cpu' or 'gpu'"),
        ({"data_weights": "poisson"}, ValueError, "data_weights must be one of 'transmission', 'uniform', got "
                                                  "'poisson'"),
    ]:
        with pytest.raises(error, match=words):
            stacks.CTReconstruction(16, 10, (), **kwargs)
    for angles in ("ten", True, [[0.1, 0.2]]):
        with pytest.raises(TypeError, match="angles must be a count or a sequence of angles in radians"):
            stacks.CTReconstruction(16, angles, ())


def test_a_ct_task_with_a_wrong_geometry_or_window_is_refused_when_it_is_built():
    """A misspelt RayTransform keyword or an unknown window failed only in the chunks, as each slice's error."""
    pytest.importorskip("astra", reason="the ASTRA toolbox is not installed (pip install adareg[ct])")
    with pytest.raises(TypeError, match="^CTReconstruction: .*unexpected keyword argument 'pixel_sise'"):
        stacks.CTReconstruction(16, 10, {"pixel_sise": 0.5})
    with pytest.raises(ValueError, match="^CTReconstruction: window must be 'ram-lak' or 'hann', got 'hamming'"):
        stacks.CTReconstruction(16, 10, (), window="hamming")
    with pytest.raises(ValueError, match="^CTReconstruction: RayTransform: "):
        stacks.CTReconstruction(16, 10, {"pixel_size": -1.0})
    with pytest.raises(ValueError, match="^CTReconstruction: RayTransform: angles must be a positive count"):
        stacks.CTReconstruction(16, 0, ())


def test_map_slices_refuses_a_progress_that_is_not_a_bool():
    with pytest.raises(TypeError, match="^map_slices: progress must be True or False, got 'no'"):
        stacks.map_slices(stacks.Denoise("tv", lam=0.1), np.ones((1, 8, 8)), progress="no")


def capped_stack(count: int) -> np.ndarray:
    """Slices of noise whose TV denoising at lam 0.3 stops at the prox's 500 iterations, not converged."""
    stack = np.random.default_rng(0).random((count, 32, 32)).astype(np.float32)
    assert not any(adareg.solve(Identity(s.shape), s, adareg.regularizers.TV(s.shape), lam=0.3, bounds=(0, 1)).converged
                   for s in stack)
    return stack


def test_a_solve_stopped_at_its_cap_is_warned_about_naming_its_slices():
    # the tasks return only images: map_slices reported nothing, and adareg denoise of a volume exited quietly
    with pytest.warns(stacks.ConvergenceWarning) as caught:
        stacks.map_slices(stacks.Denoise("tv", lam=0.3), capped_stack(3), chunk=2, progress=False)
    messages = [str(w.message) for w in caught if w.category is stacks.ConvergenceWarning]
    assert len(messages) == 2
    assert messages[0].startswith("slices 0-1: solved together, at least one of these 2 slices did not converge "
                                  "(stopped after 500 iterations")
    assert messages[1].startswith("slice 2: the solver did not converge")
    with pytest.warns(stacks.ConvergenceWarning, match=r"^slices 7, 9: solved together"):
        stacks.map_slices(stacks.Denoise("tv", lam=0.3), capped_stack(2), progress=False, numbers=[7, 9])


def test_a_chunk_s_warning_does_not_blame_its_slices_that_converge_alone():
    """Of four slices, only slice 2 (noise) stops at the prox's cap when each is solved alone (chunk 1, the
    reference); solved together, the warning named all four as not converged."""
    rows, columns = np.mgrid[:32, :32]
    noise = np.random.default_rng(0).random((32, 32))
    stack = np.stack([0.5 + 0.3 * np.sin(columns / 3), np.full((32, 32), 0.4), noise,
                      0.5 + 0.3 * np.cos(rows / 4)]).astype(np.float32)
    task = stacks.Denoise("tv", lam=0.3)
    with pytest.warns(stacks.ConvergenceWarning) as alone:
        stacks.map_slices(task, stack, chunk=1, progress=False)
    assert [str(w.message).split(" (")[0] for w in alone] == ["slice 2: the solver did not converge"]
    with pytest.warns(stacks.ConvergenceWarning) as together:
        stacks.map_slices(task, stack, chunk=4, progress=False)
    assert len(together) == 1
    message = str(together[0].message)
    assert message.startswith("slices 0-3: solved together, at least one of these 4 slices did not converge (")
    assert message.endswith("one slice per chunk (map_slices' chunk=1, adareg's --chunk 1) tells which")


def test_an_empty_stack_is_refused():
    with pytest.raises(ValueError, match="at least one slice"):
        stacks.map_slices(np.negative, np.zeros((0, 3, 3)), progress=False)


@pytest.mark.parametrize("where", [{"workers": 2}, {"scheduler": "tcp://127.0.0.1:8786"}])
def test_without_dask_workers_are_refused_before_any_progress_bar(monkeypatch, capsys, where):
    monkeypatch.setitem(sys.modules, "distributed", None)  # an import of it raises ModuleNotFoundError
    with pytest.raises(ImportError, match=r"needs Dask: pip install adareg\[distributed\]"):
        stacks.map_slices(np.negative, np.zeros((3, 4, 4)), progress=True, **where)
    assert capsys.readouterr().err == ""  # no bar of slices that never ran


# --------------------------------------------------------------------------------------------- on Dask
@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed "
                                                            "(pip install adareg[distributed])")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_two_workers_give_the_in_process_result_in_slice_order(client):
    stack = noisy_stack(4, size=24)
    task = stacks.Denoise("sa-cnn", SIGMA)
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl is not installed")
    with threadpoolctl.threadpool_limits(1, user_api="blas"):  # as Dask's workers: BLAS sums in one order
        here = stacks.map_slices(task, stack, chunk=2, progress=False)
    there = stacks.map_slices(task, stack, chunk=2, scheduler=client, progress=False)
    np.testing.assert_array_equal(there, here)
    loads = client.run(lambda: stacks._load_version.cache_info().misses)
    assert sum(loads.values()) <= 2 and max(loads.values()) == 1  # one load per worker, not one per slice


def test_a_scheduler_address_is_a_running_cluster(client):
    stack = noisy_stack(2, size=16)
    out = stacks.map_slices(np.negative, stack, scheduler=client.scheduler.address, progress=False)
    np.testing.assert_array_equal(out, -stack)


def test_a_lost_worker_s_slices_are_recomputed(client, tmp_path):
    stack = noisy_stack(6)
    stack[2, 0, 0] = MARK  # marks slice 2, whose first run ends its worker
    expected = stacks.map_slices(stacks.Denoise("crr", SIGMA), stack, chunk=1, scheduler=client, progress=False)
    marker = tmp_path / "died"
    out = stacks.map_slices(DieOnce(str(marker)), stack, chunk=1, scheduler=client, progress=False)
    assert marker.exists()  # a worker did die
    np.testing.assert_array_equal(out, expected)


def test_a_failing_slice_is_named_on_dask_and_leaves_nothing_there(client):
    """The failed chunk stayed on the scheduler, and the stack in the client's memory, while the client lived
    (the caller's own client: 5 failed calls on a 64 MiB stack took 460 MiB)."""
    import time

    stack = noisy_stack(4)
    stack[1, 4, 4] = np.inf
    with pytest.raises(stacks.SliceError, match=r"^slice 1: ValueError"):
        stacks.map_slices(stacks.Denoise("crr", SIGMA), stack, chunk=2, scheduler=client, progress=False)

    def ours(dask_scheduler) -> list[str]:
        return [str(key) for key in dask_scheduler.tasks if str(key).startswith("adareg-slices")]

    deadline = time.monotonic() + 10.0  # the cancellation reaches the scheduler asynchronously
    while client.run_on_scheduler(ours) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.run_on_scheduler(ours) == []


def test_a_worker_that_dies_at_every_try_is_named_with_its_slices():
    """Dask's KilledWorker named a task key with the stack's position, not the slices, and no likely cause.
    On a cluster of its own: chunks queued on a dying worker fail with it, and the restarts would slow the
    other tests' cluster."""
    pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install adareg[distributed])")
    stack = noisy_stack(2, size=8)
    stack[0, 0, 0] = MARK
    with pytest.raises(stacks.SliceError, match=r"^slices 12-13: the worker computing them died at every try "
                                                r"\(killed for lack of memory\?"):
        stacks.map_slices(die_at_marked_slices, stack, chunk=2, workers=1, progress=False, numbers=[12, 13])


def test_a_chunk_above_dask_s_graph_size_warning_is_sent_without_it(client):
    """Each chunk carries its slices by design; Dask warned "Sending large graph ... consider loading the data
    with Dask directly" at every fastMRI run with workers (a slice of 27 MiB)."""
    import warnings

    stack = np.zeros((2, 1200, 1200), np.float32)  # 11 MiB, above Dask's 10 MiB
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = stacks.map_slices(np.negative, stack, chunk=2, scheduler=client, progress=False)
    assert out.shape == stack.shape


@contextlib.contextmanager
def another_service() -> Iterator[str]:
    """The address of a service that speaks first, as SSH does, where no Dask scheduler answers."""
    server = socket.create_server(("127.0.0.1", 0))

    def banner() -> None:
        connection, _ = server.accept()
        connection.sendall(b"SSH-2.0-OpenSSH_9.6 protocol banner of another service\r\n" * 4)
        connection.close()

    threading.Thread(target=banner, daemon=True).start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def test_an_address_where_no_scheduler_answers_is_named():
    """Another service's reply was read as a message size: "out of memory: Unable to allocate 2.82 EiB"."""
    pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install adareg[distributed])")
    with another_service() as address:
        with pytest.raises(ConnectionError, match=rf"^map_slices: scheduler '{address}': no Dask scheduler answered "
                                                  r"there \(.*\); expected its address, e.g. tcp://HOST:8786"):
            stacks.map_slices(np.negative, noisy_stack(2, size=8), scheduler=address, progress=False)


@contextlib.contextmanager
def a_closed_port() -> Iterator[str]:
    """The address of a port where nothing listens (Dask retries it until its connect timeout, here 1 s)."""
    import dask

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        yield f"tcp://127.0.0.1:{port}"


@contextlib.contextmanager
def a_tls_address_without_security() -> Iterator[str]:
    """A TLS address where this process has no certificates: Dask's connector fails before it connects."""
    yield "tls://127.0.0.1:1"


@pytest.mark.parametrize("address", ["tls://127.0.0.1:1", "ucx://127.0.0.1:1"])
def test_a_protocol_without_its_settings_is_named(address):
    """Dask's TypeErrors, "TLS expects a `ssl_context` argument" and "Can't instantiate abstract class
    UCXConnector" (where UCX support is not installed), named neither the argument nor what to do."""
    pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install adareg[distributed])")
    if address.startswith("ucx") and importlib.util.find_spec("distributed_ucxx") is not None:
        pytest.skip("UCX support is installed here")
    scheme = address.partition("://")[0]
    with pytest.raises(ConnectionError, match=rf"^map_slices: scheduler '{address}': Dask cannot connect by "
                                              rf"{scheme}:// .*pass a dask Client made with the protocol's settings"):
        stacks.map_slices(np.negative, noisy_stack(2, size=8), scheduler=address, progress=False)


@pytest.mark.parametrize("where", [another_service, a_closed_port, a_tls_address_without_security])
def test_an_address_where_no_scheduler_answers_leaves_nothing_behind(client, where):
    """map_slices' client, left connecting there, became the process's default client in place of the caller's, and
    its event loop ran on until the garbage collector closed it, in whichever thread (a deadlock, see _connected);
    where Dask closed it first (a closed port), the thread of its event loop ran on for good."""
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
    default = distributed.default_client()
    loops = {thread for thread in threading.enumerate() if thread.name == "IO loop"}
    with where() as address, pytest.raises(ConnectionError) as refused:
        stacks.map_slices(np.negative, noisy_stack(2, size=8), scheduler=address, progress=False)
    assert distributed.default_client() is default
    assert {thread for thread in threading.enumerate() if thread.name == "IO loop"} == loops
    del refused  # whose traceback held the client


def test_a_client_that_fails_early_is_named_by_its_own_error():
    """Closing a client whose construction failed early, e.g. on a wrong Dask setting, raised AttributeError
    ('_timeout'), which hid the cause (a review of _connected)."""
    pytest.importorskip("distributed", reason="dask.distributed is not installed")
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "bogus"}), \
            pytest.raises(KeyError, match="Invalid time unit: bogus"):
        stacks.map_slices(np.negative, noisy_stack(2, size=8), scheduler="tcp://127.0.0.1:1", progress=False)


def test_a_closed_client_or_one_of_a_closed_cluster_is_named():
    """A client that was closed, or whose cluster was, failed with AttributeError from Dask ('NoneType' object has
    no attribute 'ncores')."""
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0")
    closed, orphan = (distributed.Client(cluster, set_as_default=False) for _ in range(2))
    try:
        closed.close()
        cluster.close()
        for client in (closed, orphan):
            with pytest.raises(ValueError, match=r"^map_slices: scheduler is a dask Client that is closed"):
                stacks.map_slices(np.negative, np.zeros((2, 4, 4)), scheduler=client, progress=False)
    finally:
        for thing in (closed, orphan, cluster):
            thing.close()


def test_a_client_that_is_not_dask_s_default_computes_the_slices(client):
    """The chunks were awaited in the event loop of Dask's default client: where that was another, such as a client
    left connecting at an address where no scheduler answered, the wait could last forever (a CI run hung)."""
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
    import dask

    stack = noisy_stack(4, size=8)
    out = []
    failed = distributed.Client.__new__(distributed.Client)  # held, to be closed here (see stacks._connected)
    with dask.config.set(scheduler=dask.config.get("scheduler", None)):  # which a new client sets for the process
        with another_service() as address, pytest.raises((OSError, ValueError, MemoryError)):
            failed.__init__(address)
        try:
            assert distributed.default_client() is failed
            run = threading.Thread(target=lambda: out.append(stacks.map_slices(np.negative, stack, chunk=2,
                                                                               scheduler=client, progress=False)),
                                   daemon=True)
            run.start()
            run.join(60.0)
        finally:
            failed.close()
    assert out, "map_slices did not return within 60 s"
    np.testing.assert_array_equal(out[0], -stack)


def test_a_worker_s_warnings_reach_the_caller(client):
    with pytest.warns(stacks.ConvergenceWarning) as caught:
        stacks.map_slices(stacks.Denoise("tv", lam=0.3), capped_stack(4), chunk=2, scheduler=client, progress=False)
    starts = sorted(str(w.message).split(":")[0] for w in caught if w.category is stacks.ConvergenceWarning)
    assert starts == ["slices 0-1", "slices 2-3"]


def test_an_assembly_error_on_dask_cancels_its_chunks_while_the_client_is_open(monkeypatch):
    # the chunks in flight were cancelled when the generator was collected, after the client had closed:
    # "Exception ignored in generator ... RuntimeError: IOLoop is closed" after the error
    pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install adareg[distributed])")
    import gc

    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    stack = np.zeros((8, 3, 3))
    stack[2:, 0, 0] = 1.0
    with pytest.raises(ValueError, match="gave results of dtype complex128"):
        stacks.map_slices(complex_after_the_first_chunk, stack, chunk=2, workers=1, progress=False)
    gc.collect()
    assert unraisable == []


def test_a_local_cluster_leaves_the_failure_it_names_out_of_standard_error(capfd):
    """Dask's worker logged the failed slice's traceback, 12 lines on standard error, before map_slices named it
    (the command line's errors are one line)."""
    pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install adareg[distributed])")
    stack = noisy_stack(2, size=8)
    stack[1, 4, 4] = np.inf
    with pytest.raises(stacks.SliceError, match=r"^slice 1: ValueError"):
        stacks.map_slices(stacks.Denoise("tv", lam=0.1), stack, chunk=1, workers=1, progress=False)
    assert capfd.readouterr().err == ""


def test_workers_start_and_close_a_local_cluster():
    pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install adareg[distributed])")
    stack = noisy_stack(2, size=16)
    out = stacks.map_slices(np.negative, stack, workers=1, progress=False)
    np.testing.assert_array_equal(out, -stack)


@pytest.mark.parametrize("kwargs, words", [
    ({"lam": 123.0, "sigma": 5.0}, "lam and sigma apply to the iterative models; 'zero-filled' has none"),
    ({"model": "sense", "sigma": 0.1}, "sigma is a parameter of the learned models; 'sense' has none"),
    ({"model": "sense", "lam": -1.0}, "lam must be non-negative"),
    ({"model": "tv"}, "lam is required for 'tv'"),
    ({"model": "tv", "lam": 0.1, "sigma": 0.1}, "sigma is a parameter of the learned models; 'tv' has none"),
    ({"model": "sa-cnn", "lam": 0.1}, "sigma is required for the learned model 'sa-cnn'"),
    ({"model": "sa_cnn", "lam": 0.1, "sigma": 0.1}, "unknown model 'sa_cnn'"),
    ({"device": "tpu"}, "device must be 'cpu' or 'gpu', got 'tpu'"),
])
def test_a_fastmri_task_is_checked_when_it_is_built(kwargs, words):
    """lam and sigma were ignored where the model takes none, and the rest was named only at the first slice (an
    audit, 2026-12-06), as the CT task's were before."""
    with pytest.raises((ValueError, ParameterFileError), match=words):
        stacks.FastMRIReconstruction((True,) * 8, (8, 8), **kwargs)


def test_a_fastmri_sense_task_takes_a_tikhonov_weight_of_zero_as_mri_sense_does():
    """lam=0 was refused here ("must be positive") but taken by adareg.mri.sense and adareg mri on .npy k-space."""
    assert stacks.FastMRIReconstruction((True,) * 8, (8, 8), "sense", lam=0.0).lam == 0.0


@pytest.mark.skipif(adareg.gpu_available(), reason="checks the error raised when no GPU is present")
def test_the_zero_filled_fastmri_task_runs_on_the_device_asked_for():
    """device='gpu' ran the zero-filled reconstruction on the CPU without a word (SENSE and the models named the
    missing GPU)."""
    kspace = np.ones((1, 2, 8, 8), np.complex64)
    with pytest.raises(RuntimeError, match="CuPy with a CUDA device is not available"):
        stacks.FastMRIReconstruction((True,) * 8, (8, 8), device="gpu")(kspace)
    on_cpu = stacks.FastMRIReconstruction((True,) * 8, (8, 8))(kspace)
    assert on_cpu.shape == (1, 8, 8) and on_cpu.dtype == np.float32


@pytest.mark.parametrize("model", [None, 3, ["sa-cnn"]])
def test_a_model_that_is_no_name_is_refused_naming_it(model):
    """It met pathlib first: "expected str, bytes or os.PathLike object, not NoneType" (an audit, 2026-12-06)."""
    for task in (lambda: stacks.Denoise(model, lam=0.1), lambda: stacks.regularizer(model, (8, 8))):
        with pytest.raises(TypeError, match="model must be 'tv', a shipped model's name or a parameter file, got"):
            task()


def test_a_local_cluster_whose_client_fails_is_closed(monkeypatch):
    """The cluster was started, then the client connected; where that failed (a timeout on a loaded machine, Ctrl-C),
    the cluster's worker processes ran on for the rest of the session (an audit, 2026-12-06)."""
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
    started = []

    class Recorded(distributed.LocalCluster):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    class Failing(distributed.Client):
        def __init__(self, *args, **kwargs):
            raise OSError("timed out connecting")

    monkeypatch.setattr(distributed, "LocalCluster", Recorded)
    monkeypatch.setattr(distributed, "Client", Failing)
    with pytest.raises(OSError, match="timed out connecting"):
        stacks.map_slices(np.negative, noisy_stack(2, size=16), workers=1, progress=False)
    assert len(started) == 1 and started[0].status.name == "closed"
