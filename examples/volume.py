"""Denoising a real MR volume slice by slice: TV and the learned sa-cnn through adareg.stacks.

    python examples/volume.py [--sigma 15] [--seed 0] [--chunk 8] [--workers N] [--output volume.png]

Reads the small T1-weighted head volume that ships with nibabel's tests
(``nibabel/tests/data/anatomical.nii``, 33 x 41 x 25 voxels of 2 mm) with
``adareg.io.read_volume`` (slices, rows, columns), scales it to [0, 1] by its range,
adds white Gaussian noise of standard deviation sigma/255, and denoises every slice
with ``adareg.stacks.map_slices``, ``--chunk`` slices per solve:

* ``Denoise("tv", sigma, lam=0.8 sigma)``, the rule of ``adareg denoise`` and
  ``examples/denoise.py`` (chosen on other images), and
* ``Denoise("sa-cnn", sigma)`` with its trained lam(sigma).

Prints the PSNR of the whole volume (``adareg.psnr``), fastMRI's volume SSIM
(``adareg.metrics.volume_ssim``) and seconds (best first; in this process the model
is loaded when its task is built, before the clock starts; with ``--workers N`` a run's
seconds include starting the local Dask cluster of N processes and each worker's
loading of the model), and writes a figure of three orthogonal central slices (axial, coronal,
sagittal, in RAS orientation as the NIfTI affine gives it, patient's right on the
right, drawn at the voxels' physical size; white is the clean volume's 99.9th
percentile, as a few bright voxels set its range) of the clean, noisy and denoised
volumes.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import nibabel.orientations
import numpy as np
from matplotlib.figure import Figure  # not pyplot, whose backend is the calling program's

import adareg
import adareg.io
from adareg import stacks
from adareg.examples.comparison import parse_arguments, positive, whole
from adareg.metrics import volume_ssim

#: The volume: a T1-weighted head scan among nibabel's test files (found without nibabel.testing, which imports
#: pytest, a package users need not have).
VOLUME = Path(importlib.util.find_spec("nibabel").origin).parent / "tests" / "data" / "anatomical.nii"

#: The views: name, the RAS axis held fixed, and the axes drawn (horizontal, vertical).
VIEWS = (("axial", 2, (0, 1)), ("coronal", 1, (0, 2)), ("sagittal", 0, (1, 2)))


def ras(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A volume ``(slices, rows, columns)`` read from NIfTI as a RAS+ array ``[x, y, z]`` and its voxel sizes (mm)."""
    voxels = data.transpose(2, 1, 0)  # adareg.io.nifti's convention: data[k, j, i] is voxel (i, j, k)
    orientation = nibabel.orientations.io_orientation(affine)
    sizes = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))  # voxel size along i, j, k
    reordered = np.empty(3)
    reordered[orientation[:, 0].astype(int)] = sizes
    return nibabel.orientations.apply_orientation(voxels, orientation), reordered


def figure(volumes: list[tuple[str, np.ndarray]], affine: np.ndarray, white: float, output: str) -> None:
    """Three orthogonal central slices (rows) of each volume (columns), at the voxels' physical aspect."""
    views = []
    for title, volume in volumes:
        array, sizes = ras(volume, affine)
        for view, fixed, (across, up) in VIEWS:
            picture = np.take(array, array.shape[fixed] // 2, axis=fixed)  # axes (across, up), in this order
            views.append((picture.T, (0, array.shape[across] * sizes[across], 0, array.shape[up] * sizes[up])))
    heights = [extent[3] / extent[1] for _, extent in views[:len(VIEWS)]]  # each row's height / width
    fig = Figure(figsize=(2.6 * len(volumes), 2.6 * sum(heights) + 0.6), layout="constrained")
    axes = fig.subplots(len(VIEWS), len(volumes), gridspec_kw={"height_ratios": heights})
    for index, (picture, extent) in enumerate(views):
        column, row = divmod(index, len(VIEWS))
        ax = axes[row, column]
        ax.imshow(picture, cmap="gray", vmin=0, vmax=white, origin="lower", extent=extent, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if row == 0:
            ax.set_title(volumes[column][0], fontsize=10)
        if column == 0:
            ax.set_ylabel(VIEWS[row][0])
    fig.savefig(output, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sigma", type=positive, default=15.0, help="noise level on the 0-255 scale")
    parser.add_argument("--seed", type=whole(0), default=0, help="seed of the noise")
    parser.add_argument("--chunk", type=whole(1), default=8, help="slices per solve")
    parser.add_argument("--workers", type=whole(1), default=None,
                        help="denoise on a local Dask cluster of N processes (default: in this process)")
    parser.add_argument("--output", default="volume.png", help="figure to write")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parse_arguments(parser)

    volume = adareg.io.read_volume(VOLUME)
    low, high = float(volume.data.min()), float(volume.data.max())
    clean = ((volume.data - low) / (high - low)).astype(np.float32)
    sigma = args.sigma / 255.0
    noise = np.random.default_rng(args.seed).standard_normal(clean.shape) * sigma
    noisy = (clean + noise).astype(np.float32)

    tasks = {"tv": stacks.Denoise("tv", sigma, lam=0.8 * sigma), "sa-cnn": stacks.Denoise("sa-cnn", sigma)}
    results = {}
    for name, task in tasks.items():
        start = time.perf_counter()
        denoised = stacks.map_slices(task, noisy, chunk=args.chunk, workers=args.workers, progress=not args.quiet)
        results[name] = (denoised, time.perf_counter() - start)

    _, sizes = ras(clean, volume.metadata["affine"])
    where = "this process" if args.workers is None else f"a local Dask cluster of {args.workers} processes"
    print(f"{VOLUME.name} (nibabel's test data): {len(clean)} slices of {clean.shape[1]}x{clean.shape[2]}, "
          f"{'x'.join(f'{s:g}' for s in sizes)} mm voxels, [{low:g}, {high:g}] scaled to [0, 1]; "
          f"sigma = {args.sigma:g}/255; {args.chunk} slices per solve in {where}")
    print(f"{'method':10} {'PSNR (dB)':>10} {'SSIM':>7} {'seconds':>8}")
    for name, (x, seconds) in sorted(results.items(), key=lambda item: -adareg.psnr(item[1][0], clean)):
        print(f"{name:10} {adareg.psnr(x, clean):10.2f} {volume_ssim(x, clean):7.4f} {seconds:8.2f}")
    print(f"{'noisy':10} {adareg.psnr(noisy, clean):10.2f} {volume_ssim(noisy, clean):7.4f}")

    panels = [("clean", clean), (f"noisy, {adareg.psnr(noisy, clean):.2f} dB", noisy)]
    panels += [(f"{name}, {adareg.psnr(x, clean):.2f} dB", x) for name, (x, _) in results.items()]
    white = float(np.percentile(clean, 99.9))
    figure(panels, volume.metadata["affine"], white, args.output)
    print(f"figure written to {args.output} (grey levels 0 to {white:.2f}, the clean volume's 99.9th percentile)")


if __name__ == "__main__":
    main()
