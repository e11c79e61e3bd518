"""Set12 denoising: mean PSNR, SSIM, seconds and iterations of TV and the learned families.

    python benchmarks/denoise.py [--data ../shared/data/set12] [--sigmas 5 15 25]
                                 [--methods tv crr wcrr sa-b sa-cnn] [--weights DIR]
                                 [--images N] [--out results/denoise] [--figures docs/figures]

The protocol of ``../shared/data/README.md``: the images sorted by name, as float64 in
[0, 1]; for image ``i`` and noise level ``s``, ``noisy = clean +
default_rng(1000 * s + i).standard_normal(shape) * s / 255``, no clipping; PSNR over the
whole image with data range 1 (``adareg.psnr``), SSIM with a Gaussian window
(``adareg.ssim``).

Each method is run with ``adareg.solve`` and the defaults a user gets, at the true
noise level: the learned families with their trained ``lam(sigma)`` (no tuning on the
test images); ``tv`` with ``lam = c * sigma``, ``c`` tuned per noise level with
``adareg.tune`` on four *training* images (BSD400, never Set12), since TV has no
trained strength.  Seconds are the wall time of each solve (one run per image; the
table reports the mean per image), after one untimed solve per method and image shape,
so that what a model builds once per shape (its ``||W||`` estimate, FFT plans) is not
counted in the first noise level's images alone; iterations are outer reweighting steps (``sa-b``,
``sa-cnn``), L-BFGS iterations (``crr``, ``wcrr``) or dual iterations (``tv``, one prox).

Writes ``OUT/denoise.md`` (the table), ``OUT/denoise.json`` (every image) and, with
``--figures``, ``denoise_set12.png`` (the last image run, every method, at the largest
sigma; ``--images 7 --sigmas 25`` draws image 07, the parrot, as the docs do),
``masks_set12.png`` (the sa-cnn masks of that image) and ``training_curves.png`` (the loss
curves recorded in the shipped files).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import adareg
from adareg.data import protocol_noisy
from adareg.io import read_folder
from adareg.operators import Identity
from adareg.regularizers import TV

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
LEARNED = ("crr", "wcrr", "sa-b", "sa-cnn")


def tune_tv(s: int, training: Path) -> float:
    """``lam`` for TV at noise level ``s``: tuned on four BSD400 images (noise seeds apart from Set12's)."""
    images = list(read_folder(training, 4).values())
    # the protocol's noise at image indices 10**6 + i: seeds far from those of Set12's 12 images
    ys = [protocol_noisy(image, s, 10**6 + i) for i, image in enumerate(images)]
    sigma = s / 255
    reg = TV(images[0].shape)
    return adareg.tune(Identity(images[0].shape), ys, images, reg, lam_range=(0.2 * sigma, 3 * sigma)).lam


def load_models(methods: list[str], weights: Path | None) -> dict[str, Any]:
    models = {}
    for name in methods:
        if name in LEARNED:
            models[name] = adareg.load(str(weights / f"{name}.npz")) if weights else adareg.load(name)
    return models


def warm_up(methods: list[str], models: dict[str, Any], images: list[tuple[str, np.ndarray]], s: int) -> None:
    """One untimed step of each method on one image of each shape (``noise level s``): the per-shape setup that the
    first timed solve of a shape would otherwise pay."""
    first: dict[tuple[int, ...], np.ndarray] = {}
    for i, (_, clean) in enumerate(images):
        first.setdefault(clean.shape, protocol_noisy(clean, s, i))
    for method in methods:
        for y in first.values():
            run(method, models.get(method), y, s / 255, s / 255, max_iter=1)


def run(method: str, model: Any, y: np.ndarray, sigma: float, tv_lam: float | None,
        **options: Any) -> tuple[np.ndarray, float, int]:
    """One solve of ``method`` with the defaults a user gets (and ``options`` of ``adareg.solve``), timed."""
    start = time.perf_counter()
    if method == "tv":
        result = adareg.solve(Identity(y.shape), y, TV(y.shape), lam=tv_lam, **options)
    else:
        result = adareg.solve(Identity(y.shape), y, model, sigma=sigma, **options)
    return result.x, time.perf_counter() - start, result.iterations


def save(fig: Any, path: Path, dpi: int) -> None:
    """Write ``fig`` as a PNG with a 256-colour palette (the docs keep every figure under 300 KB)."""
    from PIL import Image

    fig.savefig(path, dpi=dpi)
    with Image.open(path) as image:
        palette = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                                dither=Image.Dither.NONE)
    palette.save(path, optimize=True)


def figures(folder: Path, name: str, clean: np.ndarray, noisy: np.ndarray, outputs: dict[str, np.ndarray], s: int,
            model: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    panels = [("clean", clean), (f"noisy {adareg.psnr(noisy, clean):.2f} dB", noisy)]
    panels += [(f"{m} {adareg.psnr(x, clean):.2f} dB", x) for m, x in outputs.items()]
    columns = (len(panels) + 1) // 2  # two rows, so that the titles stay readable at the page's width
    fig, axes = plt.subplots(2, columns, figsize=(3.2 * columns, 7.0))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, image) in zip(axes.ravel(), panels):
        ax.imshow(np.clip(image, 0, 1), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=13)
    fig.suptitle(f"Set12 {name}, sigma = {s}/255", fontsize=14)
    fig.tight_layout()
    save(fig, folder / "denoise_set12.png", dpi=70)
    plt.close(fig)
    if model is None or "sa-cnn" not in outputs:
        return
    masks = model.weights(outputs["sa-cnn"], s / 255)  # Lambda at the fixed point
    order = np.argsort(masks.mean(axis=(1, 2)))
    picks = order[np.linspace(0, len(order) - 1, 8).astype(int)]
    fig, axes = plt.subplots(2, 4, figsize=(10, 6.0))
    for ax, c in zip(axes.ravel(), picks):
        ax.imshow(masks[c], cmap="magma", vmin=0, vmax=1)
        ax.set_title(f"Lambda_{c} (mean {masks[c].mean():.2f})", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"sa-cnn masks at the fixed point, Set12 {name}, sigma = {s}/255 (0 black, 1 bright)", fontsize=10)
    fig.tight_layout()
    save(fig, folder / "masks_set12.png", dpi=70)
    plt.close(fig)


def write_tables(out: Path, methods: list[str], sigmas: list[int], table: dict, rows: list[dict]) -> None:
    """``out/denoise.md`` (the command, then a Markdown table of means per method and sigma) and ``out/denoise.json`` (every image), so far."""
    lines = ["| method | " + " | ".join(f"sigma {s}: PSNR / SSIM / s / it" for s in sigmas) + " |",
             "| --- |" + " --- |" * len(sigmas)]
    for method in methods:
        cells = [f"{t['psnr']:.2f} / {t['ssim']:.3f} / {t['seconds']:.1f} / {t['iterations']:.0f}"
                 for t in (table[(method, s)] for s in sigmas)]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/denoise.py " + " ".join(sys.argv[1:])
    (out / "denoise.md").write_text(f"`{command}` ({os.cpu_count()} CPU cores):\n\n{text}\n")
    (out / "denoise.json").write_text(json.dumps(rows, indent=1))


def curve(training: dict) -> tuple[np.ndarray, np.ndarray, float]:
    """Patches seen, recorded batch losses as a PSNR, and seconds of a file's training, earlier runs included.

    The x axis counts patches (steps times the batch size), since the stages of a file
    may have trained with different batch sizes.  A stage trained on the mean absolute
    error (``--loss l1``) recorded no squared error, so it has no PSNR: NaN, a gap in the curve.
    """
    steps, losses = np.array(training["loss_curve"], dtype=float).T
    patches, seconds = steps * training["batch_size"], training["seconds"]
    squared = not training.get("loss", "mean squared error").startswith("mean absolute error")
    psnr = -10 * np.log10(losses) if squared else np.full_like(losses, np.nan)  # sigma uniform in [0, 30]/255
    if "continued_from" in training:
        before_patches, before_psnr, before_seconds = curve(training["continued_from"])
        patches = np.concatenate([before_patches, patches + patches_seen(training["continued_from"])])
        psnr, seconds = np.concatenate([before_psnr, psnr]), seconds + before_seconds
    return patches, psnr, seconds


def patches_seen(training: dict) -> int:
    """Patches a file's training saw, earlier runs included (each run's ``steps_done`` counts its own steps)."""
    before = patches_seen(training["continued_from"]) if "continued_from" in training else 0
    return before + training["steps_done"] * training["batch_size"]


def training_curves(folder: Path) -> None:
    """``training_curves.png``: the loss curves recorded in the shipped files' metadata."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    for name, metadata in adareg.params.available().items():
        patches, psnr, seconds = curve(metadata["training"])
        line, = ax.plot(patches, psnr, lw=0.6, alpha=0.35)
        window = min(10, len(psnr))  # running mean over the recorded points: the trend under the batch noise
        mean = np.convolve(psnr, np.ones(window) / window, mode="valid")
        ax.plot(patches[window - 1 :], mean, color=line.get_color(), lw=1.8,
                label=f"{name} ({seconds:.0f} s)")
    ax.set_xscale("log")
    ax.set_xlabel("training patches seen (40x40)")
    ax.set_ylabel("batch PSNR (dB), running mean")
    ax.set_title("Training curves of the shipped models", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, folder / "training_curves.png", dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA / "set12")
    parser.add_argument("--training", type=Path, default=DATA / "bsd400", help="images for tuning TV's lam")
    parser.add_argument("--sigmas", type=int, nargs="+", default=[5, 15, 25])
    parser.add_argument("--methods", nargs="+", default=["tv", *LEARNED], choices=["tv", *LEARNED])
    parser.add_argument("--weights", type=Path, help="folder of <family>.npz files (default: the shipped models)")
    parser.add_argument("--images", type=int, help="only the first N images")
    parser.add_argument("--out", type=Path, default=Path("results/denoise"))
    parser.add_argument("--figures", type=Path, help="folder for the figures (e.g. docs/figures)")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"denoise.py: no Set12 images at {args.data} (see ../shared/data/README.md)", file=sys.stderr)
        return 2

    images = list(read_folder(args.data, args.images).items())
    models = load_models(args.methods, args.weights)
    warm_up(args.methods, models, images, args.sigmas[0])
    rows, table = [], {}
    for s in args.sigmas:
        sigma = s / 255
        tv_lam = tune_tv(s, args.training) if "tv" in args.methods else None
        last: dict[str, np.ndarray] = {}
        for method in args.methods:
            for i, (name, clean) in enumerate(images):
                y = protocol_noisy(clean, s, i)
                x, seconds, iterations = run(method, models.get(method), y, sigma, tv_lam)
                rows.append({"method": method, "sigma": s, "image": name, "psnr": adareg.psnr(x, clean),
                             "ssim": adareg.ssim(x, clean), "seconds": seconds, "iterations": iterations})
                print(f"sigma {s:2d} {method:6s} {name:12s} {rows[-1]['psnr']:6.2f} dB {seconds:7.2f} s "
                      f"{iterations} it", flush=True)
                if i == len(images) - 1:
                    last[method] = x
            mine = [r for r in rows if r["method"] == method and r["sigma"] == s]
            table[(method, s)] = {k: float(np.mean([r[k] for r in mine])) for k in ("psnr", "ssim", "seconds",
                                                                                       "iterations")}
        write_tables(args.out, args.methods, [t for t in args.sigmas if (args.methods[0], t) in table], table, rows)
        if args.figures and s == max(args.sigmas):
            name, clean = images[-1]
            figures(args.figures, name, clean, protocol_noisy(clean, s, len(images) - 1), last, s, models.get("sa-cnn"))
            if args.weights is None:
                training_curves(args.figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
