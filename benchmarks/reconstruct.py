"""CT and MRI reconstruction speed: TV, the ridge models and sa-cnn side by side, to their stopping rules.

    python benchmarks/reconstruct.py [--cases ct256 ct512 mri320] [--models tv crr wcrr sa-cnn]
                                     [--repeats 3] [--device cpu|gpu] [--curve STEPS | --limits STEPS]

Cases (real slices from pydicom's test files, as in the examples):

* ``ctN``: ``medical_slice("ct-head")`` at N x N, 60 parallel-beam angles, 1e4 photons
  per ray, Poisson weights, ``x >= 0``;
* ``mriN``: ``medical_slice("mr-abdomen")`` at N x N, 8 birdcage coils, Cartesian x4
  (8 % central columns), noise 0.01, ``x >= 0``.

Each model runs at the weights of the examples' presets (``adareg.presets``) for the
case's size where they have one for it (tuned on the calibration slice at that size),
else at those of the nearest size it was tuned at (the PSNR column shows how well they
carry over); a model without a preset is skipped with a note.
The stopping rules are the examples' but for the cap (2000 iterations here, 500 in the
examples): a relative change of 1e-4 (FISTA for TV, L-BFGS
for crr and wcrr), the reweighting to solve's default fixed-point residual (3e-3; 10 accelerated
iterations per step).  Printed per model: PSNR, iterations (FISTA, L-BFGS) or reweighting steps, the
applications of ``H`` and of ``W`` (forward + adjoint) in one solve, the median seconds
of ``--repeats`` solves after a warm-up, the ratio to TV's seconds, the peak memory
allocated during one solve (tracemalloc, NumPy; the CuPy pool on a GPU) and the image
size whose preset gave the weights.  The models take turns in each of the ``--repeats``
rounds, so that a slow spell of the machine falls on all of them, and ``x TV`` is the
median over the rounds of the model's seconds over TV's in the same round.

``--curve STEPS`` prints instead, for each case, the convergence of ``sa-cnn``'s
reweighting without a tolerance: every step's fixed-point residual, PSNR and seconds,
for ``STEPS`` steps.

``--limits STEPS`` prints instead, for each case and model, how long each takes to come
within a relative distance of 1e-2, 3e-3 and 1e-3 of its own limit, so that the models
are compared at the same tolerance whatever their stopping rules measure.  The limit is
the iterate after ``10 STEPS`` iterations, or for sa-cnn the first whose fixed-point
residual is below 1e-4 (within ``STEPS`` reweighting steps: their budgets grow, so a
fixed number of them would cost ever more); a second run, timed without the distance computations, stops
at the smallest distance or after half as many iterations.  Its last distance is printed
as ``settled``: at most 1e-3 where it reached that (and then no measure of the limit),
above where the half run ended first, a limit not settled to 1e-3.  The distances are
checked at each callback: every iteration, but every reweighting step for the adaptive
models, whose times can so read up to a step late.  The default stop's seconds and
distance are printed too.
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import time

import numpy as np

import adareg
from adareg import mri
from adareg.ct import poisson_transmission
from adareg.examples.comparison import regularizer, stopping
from adareg.operators import CartesianMRI, RayTransform
from adareg.stopping import relative_change

from speed import Passes, peak_memory  # benchmarks/speed.py, beside this script
from timing import seconds_in_turns  # benchmarks/timing.py, beside this script

#: The examples' acquisitions, by modality, without the image size that ends a preset's name.
ACQUISITIONS = {"ct": "ct-parallel-60-1e+04", "mri": "mri-cartesian-8-x4-0.01"}


def split_case(name: str) -> tuple[str, int]:
    """``("ct", 256)`` for the case ``ct256``: its modality and image size."""
    return name.rstrip("0123456789"), int(name.lstrip("ctmri"))


def preset_weights(name: str, model: str) -> tuple[dict[str, float], int]:
    """The preset weights of ``model`` for case ``name``, and the image size they were tuned at.

    The preset of the case's size where it has one for ``model``, else that of the nearest
    size it was tuned at (:func:`adareg.presets.nearest`; a ``ValueError`` where it has none).
    """
    modality, size = split_case(name)
    acquisition = adareg.presets.nearest(f"{ACQUISITIONS[modality]}-", model, size)
    return adareg.presets.preset(acquisition, model), int(acquisition.rsplit("-", 1)[1])


def case(name: str, device: str) -> tuple[object, object, np.ndarray, dict]:
    """``(H, y, truth, extra solve options)`` of a case ``ctN`` or ``mriN``."""
    modality, size = split_case(name)
    if modality == "ct":
        truth = adareg.data.medical_slice("ct-head", shape=(size, size), dtype=np.float32)
        H = RayTransform((size, size), 60, pixel_size=1.0 / size)
        y, weights = poisson_transmission(H(adareg.to_device(truth, device)), 1e4, seed=0)
        return H, y, truth, {"weights": weights}
    if modality == "mri":
        truth = adareg.data.medical_slice("mr-abdomen", shape=(size, size), dtype=np.float32)
        H = CartesianMRI(mri.cartesian_mask(truth.shape, 4.0, 0.08, seed=0), mri.birdcage_maps(truth.shape, 8),
                         real=True)
        y = noisy_kspace(H, truth, np.random.default_rng(1))
        return H, adareg.to_device(y, device), truth, {}
    raise SystemExit(f"unknown case {name!r}: use ctN or mriN")


def noisy_kspace(H: CartesianMRI, truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The MRI cases' data of ``truth`` (an image or a batch): complex Gaussian noise of 0.01 on the positions
    ``H.mask`` samples of ``H(truth)``."""
    y = H(truth)
    return y + (0.01 * H.mask * (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape))).astype(y.dtype)


def curve(name: str, device: str, steps: int) -> None:
    """Print ``sa-cnn``'s reweighting on case ``name`` step by step: residual, PSNR, seconds."""
    H, y, truth, extra = case(name, device)
    chosen, tuned_at = preset_weights(name, "sa-cnn")
    print(f"{name}: sa-cnn without a tolerance, {steps} steps, the preset of {tuned_at} x {tuned_at}")
    print(f"{'step':>5} {'residual':>10} {'PSNR':>6} {'seconds':>8}")
    previous, start = None, time.perf_counter()

    def record(k: int, x: object) -> None:
        nonlocal previous
        residual = relative_change(x, previous) if previous is not None else float("inf")
        psnr = adareg.psnr(adareg.to_numpy(x), truth)
        print(f"{k:5d} {residual:10.2e} {psnr:6.2f} {time.perf_counter() - start:8.1f}", flush=True)
        previous = x

    adareg.solve(H, y, adareg.load("sa-cnn"), **{**stopping("sa-cnn", 0), **extra, **chosen, "tol": 0,
                                                "max_iter": steps}, callback=record)


#: Relative distances to a model's own limit at which ``--limits`` reports the seconds taken.
DISTANCES = (1e-2, 3e-3, 1e-3)
#: The fixed-point residual at which ``--limits`` takes a reweighting's iterate as its limit.
LIMIT_RESIDUAL = 1e-4


def limits(name: str, models: list[str], device: str, steps: int) -> None:
    """Print, for each model on case ``name``, its seconds to each of :data:`DISTANCES` from its own limit."""
    H, y, truth, extra = case(name, device)
    print(f"{name}: seconds to a relative distance from each model's own limit ({10 * steps} iterations, "
          f"a reweighting to a residual of {LIMIT_RESIDUAL:g})")
    print(f"{'model':7} {'default stop':>22} {'limit PSNR':>10} {'settled':>8} "
          + " ".join(f"{d:>8.0e}" for d in DISTANCES))
    for model in models:
        chosen, _ = preset_weights(name, model)
        reg = regularizer(model, truth.shape[-1])
        options = {**stopping(model, 2000), **extra, **chosen}
        adaptive = model in ("sa-cnn", "sa-b")
        iterations = steps if adaptive else 10 * steps
        adareg.solve(H, y, reg, **options)  # warm-up: norms, projector, FFT plans
        start = time.perf_counter()
        stopped = adareg.to_numpy(adareg.solve(H, y, reg, **options).x)
        stop_seconds = time.perf_counter() - start
        limit_tol = LIMIT_RESIDUAL if adaptive else 0
        limit = adareg.to_numpy(adareg.solve(H, y, reg, **{**options, "tol": limit_tol, "max_iter": iterations}).x)

        def distance(x: object) -> float:
            return float(np.linalg.norm(adareg.to_numpy(x) - limit) / np.linalg.norm(limit))

        reached: dict[float, float] = {}
        last, excluded = math.inf, 0.0
        start = time.perf_counter()

        def record(k: int, x: object) -> bool:
            nonlocal last, excluded
            now = time.perf_counter()
            last = distance(x)
            for d in DISTANCES:
                if last <= d and d not in reached:
                    reached[d] = now - start - excluded
            excluded += time.perf_counter() - now
            return last <= min(DISTANCES)

        adareg.solve(H, y, reg, **{**options, "tol": 0, "max_iter": iterations // 2}, callback=record)
        default = f"{stop_seconds:.2f} s at {distance(stopped):.1e}"
        print(f"{model:7} {default:>22} {adareg.psnr(limit, truth):10.2f} {last:8.1e} "
              + " ".join(f"{reached[d]:8.2f}" if d in reached else f"{'-':>8}" for d in DISTANCES), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["ct256", "ct512", "mri320"])
    parser.add_argument("--models", nargs="+", default=["tv", "crr", "wcrr", "sa-cnn"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--curve", type=int, metavar="STEPS", help="sa-cnn's residual curve over STEPS steps")
    parser.add_argument("--limits", type=int, metavar="STEPS",
                        help="seconds to come near each model's limit (10 STEPS iterations)")
    args = parser.parse_args()
    if args.curve:
        for name in args.cases:
            curve(name, args.device, args.curve)
        return
    if args.limits:
        for name in args.cases:
            limits(name, args.models, args.device, args.limits)
        return
    on_gpu = args.device == "gpu"
    sync = (lambda: adareg.backend.cupy_module().cuda.Device().synchronize()) if on_gpu else (lambda: None)

    print(f"{'case':7} {'model':7} {'PSNR':>6} {'its/steps':>10} {'H passes':>9} {'W passes':>9} "
          f"{'seconds':>8} {'x TV':>5} {'peak MiB':>9} {'preset':>6}")
    for name in args.cases:
        H, y, truth, extra = case(name, args.device)
        runs, operators, sizes = {}, {}, {}
        for model in args.models:
            try:
                chosen, sizes[model] = preset_weights(name, model)
            except ValueError:
                print(f"{name:7} {model:7} skipped: no preset")
                continue
            reg = regularizer(model, truth.shape[-1])
            operators[model] = reg.W if model == "tv" else reg.bank.operator(truth.shape)
            runs[model] = functools.partial(adareg.solve, H, y, reg, **stopping(model, 2000), **extra, **chosen)
        times = seconds_in_turns(runs, args.repeats, sync)  # after a warm-up each: norms, projector, FFT plans
        for model, run in runs.items():
            H_passes, W_passes = Passes(H), Passes(operators[model])
            with peak_memory(on_gpu) as memory:
                result = run()
                sync()
            h, w = sum(H_passes.take()), sum(W_passes.take())
            ratio = (f"{statistics.median(t / tv for t, tv in zip(times[model], times['tv'])):5.2f}"
                     if "tv" in times else "    -")
            psnr = adareg.psnr(adareg.to_numpy(result.x), truth)
            print(f"{name:7} {model:7} {psnr:6.2f} {result.iterations:10d} {h:9d} {w:9d} "
                  f"{statistics.median(times[model]):8.2f} {ratio} {memory['peak'] / 2**20:9.1f} {sizes[model]:6d}",
                  flush=True)


if __name__ == "__main__":
    main()
