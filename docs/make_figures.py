"""Regenerate the figures and printed results of the documentation by running the examples.

    python docs/make_figures.py [--only denoise|ct_recon|mri_recon|volume ...]

Runs each script of ``examples/`` with its default settings (the commands shown on
the results page), stores what it prints in ``docs/figures/<name>.txt`` (the
results page includes these files verbatim, so no number is typed by hand) and its
figure, downscaled to at most ``WIDTH`` pixels and re-encoded with a 256-colour
palette, in ``docs/figures/<name>.png`` (each well under 300 KB).  The machine it
ran on goes to ``docs/figures/environment.txt``.  It takes about 40 s on 2 CPU
cores (the volume example about 10 s more) and needs the ``ct``, ``mri``, ``io`` and
``examples`` extras.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "docs" / "figures"

#: Example name -> width (pixels) of the figure in the docs.
WIDTH = {"denoise": 900, "ct_recon": 800, "mri_recon": 900, "volume": 800}

#: Packages whose versions the results depend on.
PACKAGES = ("numpy", "scipy", "scikit-image", "astra-toolbox", "sigpy", "nibabel", "matplotlib")


def run_example(name: str) -> None:
    """Run ``examples/<name>.py``; write its output and its downscaled figure into ``docs/figures``."""
    with tempfile.TemporaryDirectory() as tmp:
        figure = Path(tmp) / f"{name}.png"
        command = [sys.executable, str(ROOT / "examples" / f"{name}.py"), "--quiet", "--output", str(figure)]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"examples/{name}.py failed:\n{done.stdout}\n{done.stderr}")
        lines = [line for line in done.stdout.splitlines() if not line.startswith("figure written to")]
        text = "\n".join([f"$ python examples/{name}.py", *lines]) + "\n"
        (FIGURES / f"{name}.txt").write_text(text)
        with Image.open(figure) as picture:
            picture = picture.convert("RGB")
            width = min(WIDTH[name], picture.width)
            height = round(picture.height * width / picture.width)
            small = picture.resize((width, height), Image.Resampling.LANCZOS)
            palette = small.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            palette.save(FIGURES / f"{name}.png", optimize=True)
    print(text, end="")


def environment() -> str:
    """Where the figures were made: date, Python, packages, CPU."""
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return "\n".join([
        f"date:     {datetime.date.today().isoformat()}",
        f"CPU:      {cpu}, {cores} cores available",
        f"Python:   {platform.python_version()} on {platform.system()}",
        f"packages: {', '.join(versions)}",
    ]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(WIDTH), help="run these examples only")
    args = parser.parse_args()
    FIGURES.mkdir(exist_ok=True)
    for name in args.only or WIDTH:
        run_example(name)
    (FIGURES / "environment.txt").write_text(environment())
    print(environment(), end="")


if __name__ == "__main__":
    main()
