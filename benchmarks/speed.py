"""Speed of the learned regularizers: the filter bank against torch, and denoising runs per family.

    python benchmarks/speed.py [--size 512] [--device cpu|gpu] [--repeats 5] [--threads 2]
                               [--families sa-cnn crr wcrr sa-b] [--skip-torch] [--trained]
                               [--batches 1 8 64] [--tables 1 2 3 4 5 6]

Prints up to six tables:

1. The filter bank ``W`` (random models: 1 -> 4 -> 8 -> 60 channels, 5x5 kernels;
   ``--trained``: the shipped bank, 32 channels; composed into one 13x13 correlation,
   reflect boundary) on a ``size x size`` and a 481x321 float32 image: median seconds
   of ``W`` and ``W^T`` against torch's ``conv2d`` + ``conv_transpose2d`` for the same
   filters, as three layers and as the composed kernel, on the same device and thread
   count, and the ratio (target, issue 21's: at most :data:`TORCH_TARGET` times torch's
   faster form).  torch is imported here only, never by adareg.
2. For each learned family, a ``size x size`` denoise at sigma = 25/255 with
   ``adareg.solve``'s defaults: median seconds, outer steps, inner (dual FISTA) iterations,
   filter-bank applications (``W`` and ``W^T``, counted by instrumenting the bank's
   operator in this script), peak memory allocated during the solve (tracemalloc for
   NumPy, the CuPy memory pool's size for CuPy), PSNR.  The first solve on an image
   shape also estimates ``||W||``; that is done (and reported) before the timed solve.
3. ``sa-cnn`` on a 481x321 image to its fixed point: seconds against the 4 s target, which
   the first solve on a shape must meet too (the median solve plus the ``||W||`` estimate).
4. TV denoising of the ``size x size`` image, for reference.
5. With ``--batches``: ``sa-cnn`` and ``wcrr`` denoising batches of ``size x size``
   images (one noise draw per image) in one call: median seconds per call and images
   per second (the throughput issue 21 asks for on a GPU), and the ratio to as many
   single-image calls (target: at most 0.5).
6. On the CPU, where the ``bm3d`` package is installed (a peer, never a dependency
   of adareg): the shipped models of every family against BM3D on four natural 481x321 images
   (:data:`BM3D_IMAGES`), for float64 and float32 input: mean seconds per image, each
   repeat with freshly loaded models so that the first call on the shape (its
   ``||W||`` estimate) is included, the methods taking turns on each image; the ratio
   to BM3D's time in the same repeat (median over repeats; targets: 1 for sa-cnn, wcrr
   and crr, 1.5 for sa-b), mean PSNR and outer steps.

By default the models have *random* parameters in a 60-channel layout (written as
parameter files and read back with ``adareg.load``), so the iteration counts are only
indicative; ``--trained`` times the shipped models (``adareg.load(family)``) instead.
A family is a line of ``FAMILIES``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

import adareg
from adareg import backend, params, regularizers, threads
from adareg.operators import Identity
from adareg.regularizers import TV

from timing import median_seconds  # benchmarks/timing.py, beside this script

#: Environment variables that fix the BLAS thread count; read once, when NumPy loads BLAS.
BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
SIGMA = 25 / 255
SIGMA_RANGE = [0.0, 30 / 255]
#: The shipping filter bank: channels and kernel sizes of its layers.
BANK = {"bank_channels": [4, 8, 60], "bank_kernels": [5, 5, 5], "boundary": "reflect"}
#: sa-cnn's mask network (the image and the noise level in, one mask per filter out).
MASKS = {"mask_channels": [16, 16, 60], "mask_kernels": [3, 3, 3], "activation": "leaky_relu"}
#: Profiles of crr, wcrr (phi') and sa-b (psi'): knots on a uniform grid, and the response scale alpha(sigma).
PROFILE = {"profile_knots": 21, "scale_knots": 2}
#: Table 6's images: 481x321 crops of scikit-image's bundled images, none of them in BSD400 or Set12.
BM3D_IMAGES = ("camera", "moon", "brick", "grass")
#: Table 6's targets: each family's time as a multiple of BM3D's.
BM3D_TARGETS = {"sa-cnn": 1.0, "wcrr": 1.0, "crr": 1.0, "sa-b": 1.5}
#: Table 1's target (issue 21): the bank's W + W^T in at most torch's conv2d + conv_transpose2d time.
TORCH_TARGET = 1.0


# ------------------------------------------------------------------ random models in the shipping layout
def he(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """He-initialised kernels ``(c_out, c_in, k, k)``."""
    return rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))


def bank_arrays(rng: np.random.Generator, lam: float) -> dict[str, np.ndarray]:
    inputs = [1, *BANK["bank_channels"][:-1]]
    arrays = {f"bank_{l}": he(rng, (c, c_in, k, k))
              for l, (c, c_in, k) in enumerate(zip(BANK["bank_channels"], inputs, BANK["bank_kernels"]))}
    # lam(sigma) linear in sigma, lam(25/255) = lam
    return arrays | {"lam_knots": np.array(SIGMA_RANGE), "lam_values": np.array([0.0, lam * 30 / 25])}


def profile_arrays(kind: str, grid: list[float]) -> dict[str, np.ndarray]:
    """``phi'`` (crr: a clipped identity; wcrr: a redescending one) or ``psi'`` (sa-b: decreasing, positive, its
    last segment flat as adareg requires, so that it stays positive beyond the grid)."""
    channels, knots = BANK["bank_channels"][-1], PROFILE["profile_knots"]
    t = grid[0] + grid[1] * np.arange(knots)
    widths = np.linspace(0.5, 1.5, channels)[:, None]
    profile = {"crr": np.clip(t / widths, -1.0, 1.0),
               "wcrr": t / widths * np.exp(-0.5 * (t / widths) ** 2),
               "sa-b": 1.0 / (1.0 + np.minimum(t, t[-2]) / (0.1 * widths))}[kind]
    return {"profile": profile, "scale_knots": np.array(SIGMA_RANGE), "scale_values": np.array([40.0, 20.0])}


def sa_cnn_file(rng: np.random.Generator) -> tuple[dict, dict]:
    inputs = [2, *MASKS["mask_channels"][:-1]]
    arrays = bank_arrays(rng, lam=0.05)
    for j, (c, c_in, k) in enumerate(zip(MASKS["mask_channels"], inputs, MASKS["mask_kernels"])):
        arrays[f"mask_kernel_{j}"], arrays[f"mask_bias_{j}"] = he(rng, (c, c_in, k, k)), np.zeros(c)
    return arrays, BANK | MASKS | {"lam_knots": 2}


def ridge_file(family: str) -> Callable[[np.random.Generator], tuple[dict, dict]]:
    def make(rng: np.random.Generator) -> tuple[dict, dict]:
        grid = [-2.0, 0.2]
        arrays = bank_arrays(rng, lam=5.0) | profile_arrays(family, grid)
        return arrays, BANK | PROFILE | {"profile_grid": grid, "lam_knots": 2}
    return make


def sa_b_file(rng: np.random.Generator) -> tuple[dict, dict]:
    grid = [0.0, 0.2]
    arrays = bank_arrays(rng, lam=0.05) | profile_arrays("sa-b", grid)
    arrays["blur"] = rng.random((BANK["bank_channels"][-1], 5, 5))
    return arrays, BANK | PROFILE | {"profile_grid": grid, "blur_kernel": 5, "lam_knots": 2}


#: family -> (class that must exist in adareg.regularizers, maker of random parameter arrays and architecture)
FAMILIES: dict[str, tuple[str, Callable[[np.random.Generator], tuple[dict, dict]]]] = {
    "sa-cnn": ("SACNN", sa_cnn_file),
    "crr": ("Ridge", ridge_file("crr")),
    "wcrr": ("Ridge", ridge_file("wcrr")),
    "sa-b": ("SAB", sa_b_file),
}


def random_model(family: str, folder: str, seed: int = 0) -> Any:
    """A learned regularizer with random parameters, written as a parameter file and read with ``adareg.load``."""
    arrays, architecture = FAMILIES[family][1](np.random.default_rng(seed))
    metadata = {"family": family, "architecture": architecture, "sigma_range": SIGMA_RANGE,
                "training": {"note": "random parameters for benchmarks/speed.py"}, "validation": {}}
    path = params.save(os.path.join(folder, f"{family}-{seed}.npz"), arrays, metadata)
    return adareg.load(str(path))


# ------------------------------------------------------------------ measuring
class Passes:
    """Counts applications of ``W`` and ``W^T`` by wrapping the operator instance's ``_apply``/``_adjoint``."""

    def __init__(self, W: Any):
        self.forward = self.adjoint = 0
        apply, adjoint = W._apply, W._adjoint

        def counted_apply(x: Any) -> Any:
            self.forward += 1
            return apply(x)

        def counted_adjoint(y: Any) -> Any:
            self.adjoint += 1
            return adjoint(y)

        W._apply, W._adjoint = counted_apply, counted_adjoint

    def take(self) -> tuple[int, int]:
        """``(W, W^T)`` applications since the last call."""
        counts = (self.forward, self.adjoint)
        self.forward = self.adjoint = 0
        return counts


@contextlib.contextmanager
def peak_memory(on_gpu: bool) -> Iterator[dict[str, int]]:
    """``{"peak": bytes}`` once the block ends: tracemalloc's peak for NumPy, the CuPy pool's size for CuPy."""
    result = {"peak": 0}
    if on_gpu:
        pool = backend.cupy_module().get_default_memory_pool()
        pool.free_all_blocks()
        yield result
        result["peak"] = pool.total_bytes()  # blocks held since free_all_blocks: at least the peak in use
    else:
        tracemalloc.start()
        try:
            yield result
            result["peak"] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def sample_image(shape: tuple[int, int]) -> np.ndarray:
    try:
        return adareg.data.image("camera", shape=shape, dtype=np.float32)
    except ImportError:  # scikit-image missing: the phantom
        return adareg.data.shepp_logan(shape, dtype=np.float32)


def crop(name: str, dtype: Any = np.float64) -> np.ndarray:
    """The 481 x 321 top-left crop of scikit-image's picture ``name``: the images of the BM3D table."""
    return adareg.data.image(name, dtype=dtype)[:321, :481]


def noisy(clean: np.ndarray, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(clean.shape).astype(np.float32)
    return clean + np.float32(SIGMA) * noise


# ------------------------------------------------------------------ 1. the filter bank against torch
def filter_bank_table(bank: Any, shapes: list[tuple[int, int]], device: str, repeats: int, threads: int,
                      sync: Callable[[], None], use_torch: bool) -> None:
    print(f"\n1. Filter bank W ({bank}), float32, median of {repeats} runs, seconds")
    torch = None
    if use_torch:
        try:
            import torch
        except ImportError:
            print("   torch is not installed: the comparison is left out")
    if torch is not None:
        torch.set_num_threads(threads)
    print(f"{'image':>9} {'form':26} {'forward':>9} {'adjoint':>9} {'sum':>9} {'adareg / torch':>15}")
    for shape in shapes:
        filter_bank_rows(bank, shape, device, repeats, sync, torch)


def filter_bank_rows(bank: Any, shape: tuple[int, int], device: str, repeats: int, sync: Callable[[], None],
                     torch: Any) -> None:
    """adareg's ``W``, ``W^T`` on one image, then torch's layered and composed forms of the same filters."""
    W = bank.operator(shape)
    x = adareg.to_device(sample_image(shape), device)
    y = W(x)
    t_fwd = median_seconds(lambda: W(x), repeats, sync)
    t_adj = median_seconds(lambda: W.H(y), repeats, sync)
    ours = t_fwd + t_adj
    label = f"{shape[1]}x{shape[0]}"
    print(f"{label:>9} {'adareg (one FFT Conv2d)':26} {t_fwd:9.4f} {t_adj:9.4f} {ours:9.4f}")
    if torch is None:
        return
    F = torch.nn.functional
    tdev = "cuda" if device == "gpu" else "cpu"
    tsync = torch.cuda.synchronize if device == "gpu" else (lambda: None)
    # the same filters: the layers (first zero-mean, last scaled by the bank's normalisation) and the composed kernel
    layers = [bank.layers[0] - bank.layers[0].mean(axis=(-2, -1), keepdims=True), *bank.layers[1:]]
    layers[-1] = layers[-1] * float(np.linalg.norm(bank.kernel) / np.linalg.norm(_composed(bank)))
    tl = [torch.tensor(k, dtype=torch.float32, device=tdev) for k in layers]
    tk = torch.tensor(bank.kernel, dtype=torch.float32, device=tdev)
    pad = (bank.kernel.shape[-1] - 1) // 2
    tx = torch.as_tensor(backend.to_numpy(x), device=tdev)[None, None]
    ty = torch.as_tensor(backend.to_numpy(y), device=tdev)[None]

    def layered_forward() -> Any:
        h = F.pad(tx, (pad,) * 4, mode="reflect")  # reflect once, then valid layers: the composed correlation
        for k in tl:
            h = F.conv2d(h, k)
        return h

    def layered_adjoint() -> Any:  # (the reflect fold onto the image, a few row/column adds, left out)
        h = ty
        for k in reversed(tl):
            h = F.conv_transpose2d(h, k)
        return h

    forms = {
        "torch, 3 layers": (layered_forward, layered_adjoint),
        f"torch, {tk.shape[-1]}x{tk.shape[-1]} kernel": (lambda: F.conv2d(F.pad(tx, (pad,) * 4, mode="reflect"), tk),
                                                         lambda: F.conv_transpose2d(ty, tk)),
    }
    best = np.inf
    with torch.no_grad():
        difference = max(float((forward() - ty).abs().max()) for forward, _ in forms.values())
        for name, (forward, adjoint) in forms.items():
            f_s, a_s = median_seconds(forward, repeats, tsync), median_seconds(adjoint, repeats, tsync)
            best = min(best, f_s + a_s)
            print(f"{label:>9} {name:26} {f_s:9.4f} {a_s:9.4f} {f_s + a_s:9.4f} {ours / (f_s + a_s):15.2f}")
    verdict = "meets" if ours <= TORCH_TARGET * best else "MISSES"
    print(f"{label:>9} ratio to torch's faster form {ours / best:.2f} ({verdict} the {TORCH_TARGET:g}x target); "
          f"largest difference of W x from torch's {difference / float(ty.abs().max()):.1e} (relative)")


def _composed(bank: Any) -> np.ndarray:
    from adareg.regularizers.filterbank import compose_kernels
    first = bank.layers[0] - bank.layers[0].mean(axis=(-2, -1), keepdims=True)
    return compose_kernels([first, *bank.layers[1:]])


# ------------------------------------------------------------------ 2.-4. denoising runs
HEADER = (f"{'model':8} {'image':>9} {'seconds':>8} {'outer':>6} {'inner':>6} {'W':>6} {'W^T':>6} "
          f"{'peak MiB':>9} {'PSNR':>6}  notes")


def denoise_row(name: str, reg: Any, clean: np.ndarray, device: str, sync: Callable[[], None],
                time_limit: float, repeats: int, target: float | None = None) -> None:
    """Denoise ``clean`` + noise with ``reg`` (solve's defaults) and print one row of the table.

    One solve counts the passes and the peak memory (tracemalloc slows NumPy's
    allocations, so it is not timed); ``repeats`` more give the median seconds.
    """
    shape = clean.shape
    y = adareg.to_device(noisy(clean), device)
    label = f"{shape[1]}x{shape[0]}"
    notes, passes, norm_seconds = [], None, 0.0
    if isinstance(reg, TV):
        options = {"lam": 0.08}
    else:
        W = reg.bank.operator(shape)
        passes = Passes(W)
        start = time.perf_counter()
        W.norm_bound(like=y)  # what the first solve on this shape does
        sync()
        norm_seconds, (nf, na) = time.perf_counter() - start, passes.take()
        notes.append(f"||W|| estimate: {norm_seconds:.2f} s, {nf} W + {na} W^T (not in the row)")
        options = {"sigma": SIGMA, "callback": lambda k, x: time.perf_counter() > deadline}  # deadline: below
    with peak_memory(device == "gpu") as memory:
        deadline = time.perf_counter() + time_limit
        result = adareg.solve(Identity(shape), y, reg, **options)
        sync()
    forward, adjoint = passes.take() if passes else ("-", "-")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        deadline = start + time_limit
        adareg.solve(Identity(shape), y, reg, **options)
        sync()
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times))
    history = result.history
    if "residual" in history.columns:  # reweighting: outer steps, dual iterations in all
        outer, inner = result.iterations, int(np.sum(history["inner_iterations"]))
    elif "gap" in history.columns:  # a prox (TV): dual iterations only
        outer, inner = "-", result.iterations
    else:  # L-BFGS on a smooth objective
        outer, inner = result.iterations, "-"
    psnr = adareg.psnr(backend.to_numpy(result.x), clean)
    if not result.converged:
        notes.insert(0, "NOT converged: " + result.message)
    if target is not None:
        first = seconds + norm_seconds
        notes.insert(0, f"target {target:g} s: {'met' if first <= target else 'missed'} by the first solve "
                        f"on this shape ({first:.2f} s with the ||W|| estimate)")
    print(f"{name:8} {label:>9} {seconds:8.2f} {outer!s:>6} {inner!s:>6} {forward!s:>6} {adjoint!s:>6} "
          f"{memory['peak'] / 2**20:9.1f} {psnr:6.2f}  {'; '.join(notes)}")


def batch_row(name: str, reg: Any, clean: np.ndarray, batch: int, device: str, sync: Callable[[], None],
              repeats: int) -> None:
    """Denoise ``batch`` noisy copies of ``clean`` (independent noise) in one call; print seconds, images/s and
    the ratio to ``batch`` single-image calls (each image alone, the same noise)."""
    y = adareg.to_device(np.stack([noisy(clean, seed) for seed in range(batch)]), device)
    H = Identity(clean.shape)
    result = adareg.solve(H, y, reg, sigma=SIGMA)  # also the warm-up: ||W||, FFT plans
    sync()
    seconds = median_seconds(lambda: adareg.solve(H, y, reg, sigma=SIGMA), repeats, sync)

    def one_by_one() -> None:
        for image in y:
            adareg.solve(H, image, reg, sigma=SIGMA)

    alone = median_seconds(one_by_one, repeats, sync) if batch > 1 else seconds
    psnr = np.mean([adareg.psnr(x, clean) for x in backend.to_numpy(result.x)])
    print(f"{name:8} {batch:6d} {seconds:9.3f} {batch / seconds:10.1f} {seconds / alone:9.2f} "
          f"{result.iterations!s:>6} {psnr:6.2f}")


def bm3d_table(families: list[str], repeats: int) -> None:
    """Table 6: every family against BM3D, side by side, on :data:`BM3D_IMAGES` (see the module docstring).

    The methods take turns image by image within each repeat (BM3D, then each family), so
    that a slow spell of the machine falls on all of them alike; a family's ratio is the
    median over the repeats of its time over BM3D's in the same repeat.
    """
    try:
        import bm3d
    except ImportError:
        print("\n6. bm3d is not installed (pip install bm3d): the comparison is left out")
        return
    clean = [crop(name) for name in BM3D_IMAGES]
    print(f"\n6. Against BM3D (bm3d {importlib.metadata.version('bm3d')}) on "
          f"{', '.join(BM3D_IMAGES)} (481x321 crops), sigma = 25/255; mean per image, median of {repeats} "
          "repeats, the methods in turn on each image, each repeat with fresh models (first call on the "
          "shape included)")
    print(f"{'model':8} {'input':8} {'s/image':>8} {'x BM3D':>7} {'PSNR':>6} {'steps':>9}  target")
    methods = ["bm3d", *families]
    for dtype in (np.float64, np.float32):
        noisy_images = [noisy(image).astype(dtype) for image in clean]
        seconds = {method: np.zeros((repeats, len(clean))) for method in methods}
        outputs: dict[str, list[Any]] = {method: [] for method in methods}
        steps: dict[str, list[int]] = {method: [] for method in methods}
        for repeat in range(repeats):
            models = {family: adareg.load(family) for family in families}
            for i, y in enumerate(noisy_images):
                for method in methods:
                    start = time.perf_counter()
                    if method == "bm3d":
                        x, n = bm3d.bm3d(y, sigma_psd=SIGMA), None
                    else:
                        result = adareg.solve(Identity(y.shape), y, models[method], sigma=SIGMA)
                        x, n = result.x, result.iterations
                    seconds[method][repeat, i] = time.perf_counter() - start
                    if repeat == 0:
                        outputs[method].append(x)
                        steps[method] += [] if n is None else [n]
        per_image = {method: seconds[method].mean(axis=1) for method in methods}  # per repeat
        for method in methods:
            ratio = float(np.median(per_image[method] / per_image["bm3d"]))
            psnr = np.mean([adareg.psnr(np.asarray(x, dtype=np.float64), c) for x, c in zip(outputs[method], clean)])
            span = f"{min(steps[method])}-{max(steps[method])}" if steps[method] else "-"
            target = BM3D_TARGETS.get(method)
            verdict = "" if target is None else f"{target:g}x: {'met' if ratio <= target else 'MISSED'}"
            print(f"{method:8} {np.dtype(dtype).name:8} {np.median(per_image[method]):8.2f} {ratio:7.2f} "
                  f"{psnr:6.2f} {span:>9}  {verdict}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="side of the square test image (default 512)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--repeats", type=int, default=5, help="runs per median (operators and solves)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for FFTs, BLAS and torch")
    parser.add_argument("--families", nargs="+", default=None, help="learned families to run (default: all)")
    parser.add_argument("--skip-torch", action="store_true", help="leave out the comparison with torch")
    parser.add_argument("--trained", action="store_true",
                        help="time the shipped models (adareg.load(family)) instead of random ones")
    parser.add_argument("--batches", type=int, nargs="+", default=[],
                        help="batch sizes of table 5 (sa-cnn and wcrr denoising batches in one call)")
    parser.add_argument("--tables", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6],
                        help="tables to print (default all; 5 needs --batches, 6 the bm3d package and a CPU)")
    parser.add_argument("--time-limit", type=float, default=600.0,
                        help="stop a learned model's solve after the step that passes this many seconds")
    return parser.parse_args()


def main(args: argparse.Namespace) -> None:
    sys.stdout.reconfigure(line_buffering=True)  # rows appear as they are measured
    on_gpu = args.device == "gpu"
    if on_gpu:
        cupy = backend.cupy_module()
        sync = lambda: cupy.cuda.Device().synchronize()
    else:
        sync = lambda: None
    threads.set_fft_workers(args.threads)
    what = "the shipped models" if args.trained else \
        "random parameters in the shipping layout (iteration counts are indicative)"
    print(f"python {' '.join(sys.argv)}\ndevice {args.device}, {args.threads} threads, sigma = 25/255, {what}")
    with tempfile.TemporaryDirectory() as folder:
        def model(family: str) -> Any:
            return adareg.load(family) if args.trained else random_model(family, folder)

        families = args.families or list(FAMILIES)
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            raise SystemExit(f"unknown families {unknown}; known: {list(FAMILIES)}")
        available = {}
        for family in families:
            class_name = FAMILIES[family][0]
            if not hasattr(regularizers, class_name):
                print(f"note: {family} is skipped: adareg.regularizers.{class_name} does not exist yet")
                continue
            available[family] = class_name

        bank = model("sa-cnn").bank if "sa-cnn" in available else None
        if bank is None and available:
            bank = model(next(iter(available))).bank
        if bank is not None and 1 in args.tables:
            filter_bank_table(bank, [(args.size, args.size), (321, 481)], args.device, args.repeats,
                              args.threads, sync, not args.skip_torch)

        size = (args.size, args.size)
        if 2 in args.tables:
            print(f"\n2. Denoising {size[1]}x{size[0]} at sigma = 25/255 with adareg.solve's defaults "
                  "(inner: dual FISTA iterations; W, W^T: filter-bank applications)")
            if on_gpu:  # CuPy compiles each kernel at its first use (a fresh machine has no kernel cache)
                start = time.perf_counter()
                for family in available:
                    adareg.solve(Identity((32, 32)), adareg.to_device(noisy(sample_image((32, 32))), "gpu"),
                                 model(family), sigma=SIGMA)
                sync()
                print(f"(a first solve of a 32x32 image per family, compiling CuPy's kernels: "
                      f"{time.perf_counter() - start:.2f} s, not in the rows)")
            print(HEADER)
            for family in available:
                denoise_row(family, model(family), sample_image(size), args.device, sync, args.time_limit,
                            args.repeats)

        if "sa-cnn" in available and 3 in args.tables:
            print("\n3. sa-cnn to its fixed point on 481x321")
            print(HEADER)
            denoise_row("sa-cnn", model("sa-cnn"), sample_image((321, 481)), args.device, sync,
                        args.time_limit, args.repeats, target=4.0)

        if 4 in args.tables:
            print(f"\n4. TV denoising {size[1]}x{size[0]} (lam = 0.08, isotropic), for reference")
            print(HEADER)
            denoise_row("tv", TV(size), sample_image(size), args.device, sync, args.time_limit, args.repeats)

        batched = [family for family in ("sa-cnn", "wcrr") if family in available]
        if args.batches and batched and 5 in args.tables:
            print(f"\n5. Batches of {size[1]}x{size[0]} images in one call, sigma = 25/255, median of "
                  f"{args.repeats} calls")
            print(f"{'model':8} {'batch':>6} {'seconds':>9} {'images/s':>10} {'x alone':>9} {'outer':>6} {'PSNR':>6}")
            for family in batched:
                for batch in args.batches:
                    batch_row(family, model(family), sample_image(size), batch, args.device, sync, args.repeats)

        if 6 in args.tables and not on_gpu:
            bm3d_table(list(available), args.repeats)


if __name__ == "__main__":
    arguments = parse_args()
    if any(os.environ.get(variable) != str(arguments.threads) for variable in BLAS_THREADS):
        # BLAS fixed its thread count when NumPy was imported: run again with the count set
        os.environ.update({variable: str(arguments.threads) for variable in BLAS_THREADS})
        os.execv(sys.executable, [sys.executable, *sys.argv])
    main(arguments)
