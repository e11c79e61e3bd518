"""Set12 convergence of the reweighting: fixed-point residual and PSNR per step of each adaptive file.

    python benchmarks/convergence.py [--data ../shared/data/set12] [--files sa-cnn sa-b]
                                     [--sigmas 5 15 25] [--images N] [--start K] [--tol 1e-5]
                                     [--figure docs/figures/convergence_set12.png]
                                     [--out docs/figures/convergence_set12.md]

Denoises the Set12 images under the protocol of ``../shared/data/README.md`` (as
``benchmarks/denoise.py`` does) with each ``sa-b`` / ``sa-cnn`` file (a shipped name or
a path) at its trained ``lam(sigma)``, every default of ``adareg.solve`` kept except the
tolerance on the fixed-point residual ``||x_{k+1} - x_k|| / ||x_k||``: ``--tol`` (1e-5)
instead of the denoising default (``DENOISING_TOL``, 1.5e-3 since 2026-12-02; 1e-3
before), so that the curves show the tail a default solve never reaches, under the
default cap of 100 reweighting steps.

Prints one row per file and sigma: the images that reached ``--tol`` within the cap; the
median and largest number of steps to reach 1e-3, 1e-4 and 1e-5; the
steps whose residual was no smaller than every earlier one at the same dual budget
(after the first three, where the weights settle); the largest dual budget a step used;
the median seconds; and the mean PSNR at the default stop (the first step at or below
``DENOISING_TOL``) and at the end, so that the gain of the tail is in view.
``--figure`` draws every residual curve, one panel per file, one colour per sigma, with
the default tolerance and ``--tol`` dashed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

import adareg
from adareg.data import protocol_noisy
from adareg.io import read_folder
from adareg.operators import Identity
from adareg.regularizers import Regularizer
from adareg.solvers.reweighting import DENOISING_TOL

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: Residuals whose first crossing the table reports (the denoising default, ``DENOISING_TOL``, has its own
#: "PSNR at" column).
LEVELS = (1e-3, 1e-4, 1e-5)
#: Steps at the start not counted as stalls: the weights move most there.
SETTLING_STEPS = 3


def run(model: Regularizer, y: np.ndarray, clean: np.ndarray, sigma: float, tol: float) -> dict:
    """One solve to ``tol``: its residuals, dual iterations, seconds and PSNR after every step."""
    psnrs: list[float] = []

    def record(k: int, x: np.ndarray) -> None:
        psnrs.append(adareg.psnr(x, clean))  # outside the timed work that matters: ~1 ms a step

    start = time.perf_counter()
    result = adareg.solve(Identity(y.shape), y, model, sigma=sigma, tol=tol, callback=record)
    seconds = time.perf_counter() - start
    history = result.history
    return {"residual": history["residual"], "inner": history["inner_iterations"], "psnr": np.array(psnrs),
            "seconds": seconds, "converged": result.converged}


def first_below(residual: np.ndarray, level: float) -> int | None:
    """The 1-based step at which ``residual`` first falls below ``level`` (None: never)."""
    below = np.flatnonzero(residual < level)
    return int(below[0]) + 1 if below.size else None


def stalls(residual: np.ndarray, budget: np.ndarray) -> int:
    """Steps after the settling ones whose residual is no smaller than every earlier one at the same budget.

    The first step after a budget grows is longer, so its larger change is not a stall: the
    reweighting's own rule compares a step only with the steps of its budget.
    """
    count = 0
    for k in range(SETTLING_STEPS, len(residual)):
        same_budget = residual[:k][budget[:k] == budget[k]]
        count += bool(same_budget.size and residual[k] >= same_budget.min())
    return count


def summary(file: str, s: int, runs: list[dict], tol: float) -> str:
    """One table row for a file at noise level ``s``."""
    cells = []
    for level in (lv for lv in LEVELS if lv >= tol):
        steps = [first_below(r["residual"], level) for r in runs]
        reached = [k for k in steps if k is not None]
        cells.append(f"{np.median(reached):.0f} / {max(reached)}" if len(reached) == len(runs)
                     else f"{len(reached)}/{len(runs)} reached")
    default_stop = [first_below(r["residual"], DENOISING_TOL) or len(r["residual"]) for r in runs]
    psnr_default = np.mean([r["psnr"][k - 1] for r, k in zip(runs, default_stop)])
    psnr_end = np.mean([r["psnr"][-1] for r in runs])
    converged = sum(r["converged"] for r in runs)
    return (f"| {file} | {s} | {converged}/{len(runs)} | " + " | ".join(cells) +
            f" | {sum(stalls(r['residual'], r['inner']) for r in runs)} | {max(int(r['inner'].max()) for r in runs)}"
            f" | {np.median([r['seconds'] for r in runs]):.1f} | {psnr_default:.3f} | {psnr_end:.3f} |")


def header(tol: float) -> list[str]:
    levels = [f"steps to {lv:g} (median / max)" for lv in LEVELS if lv >= tol]
    columns = ["file", "sigma", f"reached {tol:g}", *levels, "stalls", "largest budget", "median s",
               f"PSNR at {DENOISING_TOL:g}", "PSNR at end"]
    return ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]


def draw(path: Path, curves: dict[str, dict[int, list[dict]]], tol: float) -> None:
    """Every residual curve: one panel per file, one colour per sigma, the default stop and ``tol`` dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.4), sharey=True, squeeze=False)
    for ax, (file, by_sigma) in zip(axes[0], curves.items()):
        for colour, (s, runs) in zip(("tab:blue", "tab:orange", "tab:red", "tab:green"), by_sigma.items()):
            for i, r in enumerate(runs):
                steps = np.arange(1, len(r["residual"]) + 1)
                ax.semilogy(steps, r["residual"], color=colour, lw=0.9, alpha=0.7,
                            label=f"sigma {s}/255" if i == 0 else None)
        for level in (DENOISING_TOL, tol):
            ax.axhline(level, color="0.4", ls="--", lw=0.8)
        ax.set_title(f"{Path(file).stem}, Set12", fontsize=10)
        ax.set_xlabel("reweighting step")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("fixed-point residual")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA / "set12")
    parser.add_argument("--files", nargs="+", default=["sa-cnn", "sa-b"], help="sa-b / sa-cnn files (names or paths)")
    parser.add_argument("--sigmas", type=int, nargs="+", default=[5, 15, 25])
    parser.add_argument("--images", type=int, help="only the first N images")
    parser.add_argument("--start", type=int, default=1, help="begin at the K-th image (1-based; Set12's 512 x 512 "
                        "images are 8 to 12), its noise still drawn with its own index")
    parser.add_argument("--tol", type=float, default=1e-5, help="fixed-point residual at which a solve stops")
    parser.add_argument("--figure", type=Path, help="PNG of the residual curves")
    parser.add_argument("--out", type=Path, help="also write the table here (Markdown, after the command)")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"convergence.py: no Set12 images at {args.data} (see ../shared/data/README.md)", file=sys.stderr)
        return 2
    if args.start < 1:
        parser.error(f"--start must be at least 1, got {args.start}")
    images = list(read_folder(args.data, args.images).items())
    numbered = list(enumerate(images))[args.start - 1:]  # the protocol's noise seed is the image's index
    if not numbered:
        parser.error(f"--start {args.start}: only {len(images)} images")
    curves: dict[str, dict[int, list[dict]]] = {}
    for file in args.files:
        model = adareg.load(file)
        curves[file] = {}
        for s in args.sigmas:
            curves[file][s] = []
            for i, (name, clean) in numbered:
                r = run(model, protocol_noisy(clean, s, i), clean, s / 255, args.tol)
                curves[file][s].append(r)
                print(f"{file} sigma {s:2d} {name:10s} {len(r['residual']):3d} steps, residual "
                      f"{r['residual'][-1]:.1e}, largest budget {int(r['inner'].max())}, {r['seconds']:.1f} s, "
                      f"{r['psnr'][-1]:.3f} dB", flush=True)
    rows = header(args.tol) + [summary(file, s, runs, args.tol)
                               for file, by_sigma in curves.items() for s, runs in by_sigma.items()]
    table = "\n".join(rows)
    print(table)
    if args.out:
        command = "python benchmarks/convergence.py " + " ".join(sys.argv[1:] if argv is None else argv)
        args.out.write_text(f"`{command}` ({os.cpu_count()} CPU cores):\n\n{table}\n")
    if args.figure:
        draw(args.figure, curves, args.tol)
    return 0


if __name__ == "__main__":
    sys.exit(main())
