"""Training data: noisy/clean patch pairs drawn from a folder of grey images."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

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
        Grey images in [0, 1], each at least ``patch_size`` on both sides.
    patch_size
        Side of the square patches.
    sigma_range
        The range of the noise levels.
    names
        The images' names (e.g. their files) for the messages; default ``image 0``, ``image 1``, ...
    """

    def __init__(self, images: list[np.ndarray], patch_size: int = 40,
                 sigma_range: tuple[float, float] = SIGMA_RANGE, names: list[str] | None = None):
        small = [i for i, image in enumerate(images) if min(image.shape) < patch_size]
        if small:
            name = names[small[0]] if names is not None else f"image {small[0]}"
            raise ValueError(f"PatchSampler: {name} ({images[small[0]].shape[0]} x {images[small[0]].shape[1]} "
                             f"pixels) is smaller than patch_size = {patch_size}")
        self.images = [torch.from_numpy(np.ascontiguousarray(image, dtype=np.float64)) for image in images]
        self.patch_size = patch_size
        self.sigma_range = sigma_range

    def batch(self, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """``(clean, noisy, sigma)``: shapes ``(size, 1, P, P)``, ``(size, 1, P, P)``, ``(size,)``."""
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
