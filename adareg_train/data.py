"""Training data: noisy/clean patch pairs drawn from a folder of grey images."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from adareg import checks

from .families import SIGMA_RANGE


class PatchSampler:
    """Random training batches: patches with random flips and rotations, noise of a random level.

    Each sample is a ``patch_size`` square cut from a random image at a random place,
    one of the 8 flips/rotations, and white Gaussian noise with ``sigma`` drawn
    uniformly in ``sigma_range`` (one level per sample).  All randomness comes from
    ``generator``, so a seed (and a saved generator state) reproduces the batches.

    Parameters
    ----------
    images
        Grey images: 2D float arrays with values in [0, 1], each at least ``patch_size`` on both sides.
    patch_size
        Side of the square patches (a positive int).
    sigma_range
        The range ``(low, high)`` of the noise levels on the images' [0, 1] scale, ``0 <= low <= high <= 1``.
    names
        The images' names (e.g. their files) for the messages; default ``image 0``, ``image 1``, ...

    Raises
    ------
    TypeError
        For a ``patch_size`` that is not an int, a ``sigma_range`` that is not two real numbers, or an
        image that is not a float array (an integer one, e.g. 0-255, must be divided by 255 first).
    ValueError
        For no images, an image that is not 2D, has values outside [0, 1] or is smaller than
        ``patch_size``, or a bad ``patch_size`` or ``sigma_range``.
    """

    def __init__(self, images: list[np.ndarray], patch_size: int = 40,
                 sigma_range: tuple[float, float] = SIGMA_RANGE, names: list[str] | None = None):
        patch_size = checks.count(patch_size, "PatchSampler: patch_size")
        if not (isinstance(sigma_range, (tuple, list)) and len(sigma_range) == 2):
            raise TypeError(f"PatchSampler: sigma_range must be two noise levels (low, high), got {sigma_range!r}")
        low, high = (checks.non_negative(s, f"PatchSampler: sigma_range[{k}]") for k, s in enumerate(sigma_range))
        if low > high:
            raise ValueError(f"PatchSampler: sigma_range must be (low, high) with low <= high, got {sigma_range!r}")
        if high > 1:  # a level on the 0-255 scale would bury the [0, 1] images in noise
            raise ValueError(f"PatchSampler: sigma_range must hold noise levels on the images' [0, 1] scale "
                             f"(at most 1; 30 on a 0-255 scale is 30 / 255), got {sigma_range!r}")
        if len(images) == 0:
            raise ValueError("PatchSampler: images is empty; give at least one grey image")
        if names is not None and len(names) != len(images):
            raise ValueError(f"PatchSampler: names must name each image once, got {len(names)} names for "
                             f"{len(images)} images")
        images = [np.asarray(image) for image in images]
        for i, image in enumerate(images):
            name = names[i] if names is not None else f"image {i}"
            if image.ndim != 2:
                raise ValueError(f"PatchSampler: {name} must be a 2D grey image, got shape {image.shape}")
            if image.dtype.kind != "f":
                hint = " (divide it by its type's maximum, e.g. 255 for uint8)" if image.dtype.kind in "iu" else ""
                raise TypeError(f"PatchSampler: {name} must be a float image in [0, 1], got dtype {image.dtype}{hint}")
            if min(image.shape) < patch_size:
                raise ValueError(f"PatchSampler: {name} ({image.shape[0]} x {image.shape[1]} pixels) is smaller than "
                                 f"patch_size = {patch_size}")
            if not (0 <= image.min() and image.max() <= 1):  # NaN fails too
                raise ValueError(f"PatchSampler: {name} must have values in [0, 1], got {image.min():g} to "
                                 f"{image.max():g}")
        self.images = [torch.from_numpy(np.ascontiguousarray(image, dtype=np.float64)) for image in images]
        self.patch_size = patch_size
        self.sigma_range = (low, high)

    def batch(self, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """``(clean, noisy, sigma)`` of ``size`` (a positive int) samples, shapes ``(size, 1, P, P)`` twice and
        ``(size,)``."""
        size = checks.count(size, "PatchSampler.batch: size")
        n = self.patch_size
        patches = []
        for _ in range(size):
            image = self.images[int(torch.randint(len(self.images), (1,), generator=generator))]
            i = int(torch.randint(image.shape[0] - n + 1, (1,), generator=generator))
            j = int(torch.randint(image.shape[1] - n + 1, (1,), generator=generator))
            patch = image[i : i + n, j : j + n]
            turn = int(torch.randint(8, (1,), generator=generator))
            patch = torch.rot90(patch, turn % 4)
            patches.append(patch.flip(0) if turn >= 4 else patch)
        clean = torch.stack(patches)[:, None]
        low, high = self.sigma_range
        sigma = low + (high - low) * torch.rand(size, generator=generator, dtype=torch.float64)
        noisy = clean + sigma.view(-1, 1, 1, 1) * torch.randn(clean.shape, generator=generator, dtype=torch.float64)
        return clean, noisy, sigma
