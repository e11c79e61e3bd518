"""What the CT and MRI examples share: test images, weights from presets or a tuning, the solves, the report.

A comparison solves ``argmin_{x >= 0} 1/2 ||H x - y||_w^2 + lam R(x)`` with each
regularizer (``tv`` or a shipped model) at its weights, prints PSNR, SSIM and
seconds best first, and draws the reconstructions, their errors and the masks that
``sa-cnn`` put on its reconstruction.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from matplotlib.figure import Figure  # not pyplot, whose backend is the calling program's

import adareg
from adareg.regularizers import TV

#: The calibration image of ``--tune`` and of the shipped presets (another patient than the test slices).
CALIBRATION = "ct-head-2"

#: One reconstruction: method, image, seconds, note.
Row = tuple[str, np.ndarray, float, str]


def ground_truth(name: str, size: int) -> np.ndarray:
    """A real slice of :data:`adareg.data.SLICES`, or ``"phantom"`` for the Shepp-Logan phantom."""
    if name == "phantom":
        return adareg.data.shepp_logan((size, size)).astype(np.float32)
    return adareg.data.medical_slice(name, shape=(size, size), dtype=np.float32)


def regularizer(name: str, size: int) -> Any:
    """``"tv"`` or a shipped model."""
    return TV((size, size)) if name == "tv" else adareg.load(name)


def stopping(name: str, iterations: int) -> dict[str, Any]:
    """``adareg.solve``'s options: ``x >= 0``, the reweighting's residual or the relative change of FISTA (tv) or
    L-BFGS (the ridge models)."""
    if name in ("sa-cnn", "sa-b"):  # solve's default residual and steps (at most 100)
        return {"bounds": (0.0, None)}
    return {"bounds": (0.0, None), "tol": 1e-4, "max_iter": iterations}


def patience(text: str) -> float | None:
    """``--patience``: a number >= 1 for ``adareg.tune``'s ``patience``, or ``off`` for the exact search."""
    if text == "off":
        return None
    value = _number(text)
    if not value >= 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1 or off, got {text!r}")
    return value


def tune(H: Any, y: Any, truth: Any, models: list[str], options: Callable[[str], dict[str, Any]],
         quiet: bool, patience: float | None, starts: dict[str, dict[str, float]] | None = None
         ) -> dict[str, dict[str, float]]:
    """Each model's ``lam`` (and ``sigma``) chosen by ``adareg.tune`` on one calibration pair.

    ``starts``: first guesses by model (``adareg.tune``'s ``start``); the others start at their ranges' centres.
    """
    found = {}
    for name in models:
        start = time.perf_counter()
        t = adareg.tune(H, [y], [truth], regularizer(name, truth.shape[-1]), start=(starts or {}).get(name),
                        levels=2, points=7, solve_options=options(name), patience=patience, progress=not quiet)
        found[name] = {"lam": t.lam} if t.sigma is None else {"lam": t.lam, "sigma": t.sigma}
        print(f"tuned {name} on {CALIBRATION}: {found[name]}, {t.psnr:.2f} dB, {len(t.table)} evaluations, "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    return found


def positive(text: str) -> float:
    """An argument that must be a positive number (a noise level, say)."""
    value = _number(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def non_negative(text: str) -> float:
    """An argument that must be a finite number >= 0 (a noise level that may be 0, say)."""
    value = _number(text)
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def whole(minimum: int) -> Callable[[str], int]:
    """The type of an argument that must be a whole number >= ``minimum`` (a size or a count: 1; a seed: 0)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
        return value
    return parse


def _number(text: str) -> float:
    """``text`` as a float, NaN where it is not a number."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def scientific(value: float) -> str:
    """``value`` in an acquisition's name: ``1e+04`` for 10000, every digit kept (``1.4e+04``, not ``1e+04``)."""
    return np.format_float_scientific(value, trim="-", exp_digits=2)


def check_figure(output: str) -> None:
    """Refuse, before any work, a figure that matplotlib cannot write: another suffix, or a missing folder.

    Raises
    ------
    ValueError
        Naming ``output`` and what was expected.
    """
    from pathlib import Path

    from matplotlib.backend_bases import FigureCanvasBase

    adareg.io.check_output(output, tuple(f".{kind}" for kind in sorted(FigureCanvasBase.get_supported_filetypes())))
    folder = Path(output).absolute().parent
    if not folder.is_dir():
        raise ValueError(f"{output}: the folder {folder} does not exist; create it first")


def parse_arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The command line, with ``--output`` checked (:func:`check_figure`) and, where there are any,
    ``--models`` (known names, each once) and ``--from-preset`` (a positive size) before any work."""
    args = parser.parse_args()
    try:
        check_figure(args.output)
    except ValueError as error:
        parser.error(f"--output: {error}")
    models = getattr(args, "models", [])
    known = ("tv", *adareg.params.available())
    for name in models:
        if name not in known:
            parser.error(f"--models: unknown model {name!r}; choose among {', '.join(known)}")
    if len(set(models)) < len(models):
        parser.error(f"--models: each model once, got {' '.join(models)}")
    if getattr(args, "from_preset", None) is not None and args.from_preset < 0:
        parser.error(f"--from-preset: SIZE must be a positive image size, got {args.from_preset}")
    return args


def add_tuning_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tune``, ``--patience`` and ``--from-preset`` (which implies ``--tune``; see :func:`preset_starts`)."""
    parser.add_argument("--tune", action="store_true", help=f"choose every weight on {CALIBRATION!r} first")
    parser.add_argument("--patience", type=patience, default=1.5,
                        help="--tune: cut a candidate's solves at this many times the best one's seconds "
                             "(off: the exact search)")
    parser.add_argument("--from-preset", type=int, nargs="?", const=0, metavar="SIZE",
                        help="--tune, each model's search started from its preset for this acquisition at the "
                             "size nearest to SIZE (default: --size) instead of its ranges' centres (a model "
                             "without such a preset starts there, with a word)")


def preset_starts(args: argparse.Namespace, prefix: str) -> dict[str, dict[str, float]] | None:
    """``--from-preset``'s first guesses by model: the presets of acquisition ``prefix...`` at the nearest size.

    ``None`` without ``--from-preset``; models without a preset for such an acquisition
    are left out (their searches start at the ranges' centres).
    """
    if args.from_preset is None:
        return None
    starts = {}
    for name in args.models:
        try:
            acquisition = adareg.presets.nearest(prefix, name, args.from_preset or args.size)
        except ValueError:
            print(f"--from-preset: no {prefix} preset of {name}; its search starts at the ranges' centres")
            continue
        starts[name] = adareg.presets.preset(acquisition, name)
        print(f"--from-preset: {name} starts from {acquisition}: {starts[name]}")
    return starts


def chosen_weights(acquisition: str, models: list[str], tuning: Callable[[], dict[str, dict[str, float]]] | None,
                   fail: Callable[[str], Any]) -> dict[str, dict[str, float]]:
    """The weights of each model: from ``tuning()`` (printed as a presets entry) or from ``adareg.presets``."""
    if tuning is not None:
        found = tuning()
        print(json.dumps({acquisition: {"models": found}}, indent=1))
        return found
    try:
        return {name: adareg.presets.preset(acquisition, name) for name in models}
    except ValueError as error:
        return fail(f"{error}; run with --tune to choose the weights for this acquisition")


def solve_each(H: Any, y: Any, models: list[str], weights_of: dict[str, dict[str, float]],
               options: Callable[[str], dict[str, Any]], quiet: bool) -> list[Row]:
    """``adareg.solve`` with each model at its weights, timed (the solve only, not the model's loading); a solve
    that stopped at its cap before converging says so in its note."""
    rows = []
    for name in models:
        chosen, reg = weights_of[name], regularizer(name, H.shape_in[-1])
        start = time.perf_counter()
        result = adareg.solve(H, y, reg, **chosen, **options(name), progress=not quiet)
        seconds = time.perf_counter() - start
        unit = "steps" if "residual" in result.history.columns else "iterations"
        note = f"{result.iterations} {unit}{'' if result.converged else ' (not converged)'}, " + \
            ", ".join(f"{k} {v:.3g}" for k, v in chosen.items())
        rows.append((name, adareg.to_numpy(result.x), seconds, note))
    return rows


def report(rows: list[Row], truth: np.ndarray, weights_of: dict[str, dict[str, float]], data: tuple[str, np.ndarray],
           output: str) -> None:
    """Print the table best first, and draw the images, their errors, the data and sa-cnn's masks."""
    rows = sorted(rows, key=lambda row: -adareg.psnr(row[1], truth))
    print(f"{'method':12} {'PSNR (dB)':>10} {'SSIM':>7} {'seconds':>8}")
    for name, x, seconds, note in rows:
        print(f"{name:12} {adareg.psnr(x, truth):10.2f} {adareg.ssim(x, truth):7.4f} {seconds:8.2f}  {note}")

    masks = None
    if "sa-cnn" in weights_of:
        x = next(x for name, x, *_ in rows if name == "sa-cnn")
        masks = adareg.load("sa-cnn").weights(x, weights_of["sa-cnn"]["sigma"])
    columns, lines = len(rows) + 1, 2 if masks is None else 3
    fig = Figure(figsize=(3.6 * columns + 0.8, 3.6 * lines), layout="constrained")
    axes = fig.subplots(lines, columns)
    axes[0, 0].imshow(truth, cmap="gray", vmin=0, vmax=1)
    axes[0, 0].set_title("ground truth")
    title, picture = data
    axes[1, 0].imshow(picture, cmap="gray", aspect="auto")
    axes[1, 0].set_title(title)
    for column, (name, x, _, _) in enumerate(rows, start=1):
        axes[0, column].imshow(x, cmap="gray", vmin=0, vmax=1)
        axes[0, column].set_title(f"{name}, {adareg.psnr(x, truth):.2f} dB")
        errors = axes[1, column].imshow(np.abs(x - truth), cmap="magma", vmin=0, vmax=0.15)
        axes[1, column].set_title(f"|error| of {name}")
    if masks is not None:
        # the channels whose masks vary most over the image: where sa-cnn regularises less (dark) or more
        order = np.argsort(masks.reshape(len(masks), -1).std(axis=1))[::-1]
        axes[2, 0].imshow(masks.mean(axis=0), cmap="viridis", vmin=0, vmax=1)
        axes[2, 0].set_title("sa-cnn: mean mask")
        for column, channel in enumerate(order[: columns - 1], start=1):
            shown = axes[2, column].imshow(masks[channel], cmap="viridis", vmin=0, vmax=1)
            axes[2, column].set_title(f"sa-cnn: mask {channel}")
        fig.colorbar(shown, ax=axes[2, :].tolist(), shrink=0.9, label="mask value")
    fig.colorbar(errors, ax=axes[1, 1:].tolist(), shrink=0.9, extend="max", label="|error| (intensity, [0, 1] scale)")
    for ax in axes.ravel():
        ax.axis("off")
    fig.savefig(output, dpi=80)
    print(f"figure written to {output}")
