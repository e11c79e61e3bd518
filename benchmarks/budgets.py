"""Reweighting files, dual budgets and tolerances side by side: steps, seconds and PSNR of ``adareg.solve``.

    python benchmarks/budgets.py [--files OLD.npz sa-cnn] [--budgets 4 5 6 8] [--tols 1e-3 1.5e-3]
                                 [--repeats 5] [--threads 2] [--images camera moon brick grass]

Denoises ``benchmarks/speed.py``'s 481 x 321 image (scikit-image's camera, resized), or
with ``--images`` 481 x 321 crops of the named scikit-image pictures (speed.py's BM3D
table uses camera, moon, brick and grass), at sigma = 25/255 (float32, noise seed 0),
with each ``sa-b`` / ``sa-cnn`` file (a shipped name or a path): the last file at each
budget of dual iterations per reweighting step (``inner_max_iter``) and each fixed-point
tolerance (``tol``; default solve's own), the files before it at their family's default
budget and tolerance; solve's other defaults. The cases run in turn within each of
``--repeats`` rounds, so a slow spell of the machine hits them alike; the first round
also prints each case's reweighting steps, stopping message and PSNR. Medians of the
rounds' seconds (summed over the images), each file's first call (the ``||W||`` estimate
for this shape) excluded.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import adareg
from adareg import threads

from speed import SIGMA, crop, noisy, sample_image  # benchmarks/speed.py's test images, beside this script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", nargs="+", default=["sa-cnn"], help="sa-b / sa-cnn files (names or paths)")
    parser.add_argument("--budgets", type=int, nargs="+", default=[4, 5, 6, 8],
                        help="dual iterations per reweighting step, for the last file")
    parser.add_argument("--tols", type=float, nargs="+", default=[None],
                        help="fixed-point tolerances, for the last file's budgets (default: solve's)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="FFT workers")
    parser.add_argument("--images", nargs="+", help="scikit-image names, 481x321 crops (default: speed.py's image)")
    args = parser.parse_args()
    threads.set_fft_workers(args.threads)
    if args.images:
        names, clean = args.images, [crop(name, np.float32) for name in args.images]
    else:
        names, clean = ["camera (resized)"], [sample_image((321, 481))]
    noisy_images = [noisy(image) for image in clean]
    H = adareg.operators.Identity(noisy_images[0].shape)
    models = {file: adareg.load(file) for file in args.files}
    for model in models.values():
        adareg.solve(H, noisy_images[0], model, sigma=SIGMA)  # the ||W|| estimate for this shape, kept by the model
    cases = [(file, models[file].step_iterations, None) for file in args.files[:-1]] + \
            [(args.files[-1], budget, tol) for budget in args.budgets for tol in args.tols]
    seconds: dict[tuple[str, int, float | None], list[float]] = {case: [] for case in cases}
    print(f"481x321 {', '.join(names)}, sigma = 25/255, float32, {args.threads} threads, "
          f"medians of {args.repeats}")
    for round_ in range(args.repeats):
        for case in cases:
            file, budget, tol = case
            start = time.perf_counter()
            results = [adareg.solve(H, y, models[file], sigma=SIGMA, inner_max_iter=budget, tol=tol)
                       for y in noisy_images]
            seconds[case].append(time.perf_counter() - start)
            if round_ == 0:
                for name, image, result in zip(names, clean, results):
                    print(f"{label(case)} {name}: {result.iterations} steps, "
                          f"{adareg.psnr(result.x, image):.3f} dB ({result.message})", flush=True)
    for case, values in seconds.items():
        print(f"{label(case)}: {np.median(values):.2f} s for {len(names)} image(s)")


def label(case: tuple[str, int, float | None]) -> str:
    file, budget, tol = case
    return f"{file} budget {budget}" + ("" if tol is None else f" tol {tol:g}")


if __name__ == "__main__":
    main()
