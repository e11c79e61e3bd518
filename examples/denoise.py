"""Total-variation denoising of a built-in grey image.

    python examples/denoise.py [--image camera] [--sigma 25] [--lam LAM] [--size N] [--output denoise.png]

Adds white Gaussian noise of standard deviation sigma/255 to the image, solves

    x* = argmin_x 1/2 ||x - y||^2 + lam TV(x)   over 0 <= x <= 1

with adareg.solve (exact dual FISTA, stopped on a certified duality gap), prints
PSNR, SSIM and seconds, and writes a side-by-side figure.  The default
lam = 0.8 sigma/255 was chosen on the images coins, brick and text, not on the
default test image.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from matplotlib.figure import Figure  # not pyplot, whose backend is the calling program's

import adareg
from adareg.examples.comparison import parse_arguments, positive, whole
from adareg.operators import Identity
from adareg.regularizers import TV


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="camera", choices=adareg.data.IMAGES, help="built-in image")
    parser.add_argument("--sigma", type=positive, default=25.0, help="noise level on the 0-255 scale")
    parser.add_argument("--lam", type=positive, default=None, help="TV weight (default: 0.8 sigma/255)")
    parser.add_argument("--size", type=whole(1), default=None, help="resize the image to size x size")
    parser.add_argument("--seed", type=whole(0), default=0, help="seed of the noise")
    parser.add_argument("--output", default="denoise.png", help="figure to write")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parse_arguments(parser)

    shape = None if args.size is None else (args.size, args.size)
    clean = adareg.data.image(args.image, shape=shape)
    sigma = args.sigma / 255.0
    noisy = clean + np.random.default_rng(args.seed).standard_normal(clean.shape) * sigma
    lam = 0.8 * sigma if args.lam is None else args.lam

    start = time.perf_counter()
    result = adareg.solve(Identity(clean.shape), noisy, TV(clean.shape), lam=lam, bounds=(0.0, 1.0),
                          progress=not args.quiet)
    seconds = time.perf_counter() - start
    denoised = result.x

    print(f"image {args.image} {clean.shape}, sigma = {args.sigma:g}/255, lam = {lam:.4g}")
    print(f"{'':10} {'PSNR (dB)':>10} {'SSIM':>7} {'seconds':>8}")
    print(f"{'noisy':10} {adareg.psnr(noisy, clean):10.2f} {adareg.ssim(noisy, clean):7.4f} {'':>8}")
    print(f"{'TV':10} {adareg.psnr(denoised, clean):10.2f} {adareg.ssim(denoised, clean):7.4f} {seconds:8.2f}")
    print(result.message)

    panels = [("clean", clean), (f"noisy, {adareg.psnr(noisy, clean):.2f} dB", noisy),
              (f"TV, {adareg.psnr(denoised, clean):.2f} dB", denoised)]
    fig = Figure(figsize=(12, 4.4), layout="tight")
    axes = fig.subplots(1, 3)
    for ax, (title, picture) in zip(axes, panels):
        ax.imshow(picture, cmap="gray", vmin=0, vmax=1)
        ax.set_title(title)
        ax.axis("off")
    fig.savefig(args.output, dpi=100)
    print(f"figure written to {args.output}")


if __name__ == "__main__":
    main()
