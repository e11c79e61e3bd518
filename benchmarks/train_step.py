"""Seconds per training step of ``adareg_train`` for several batch sizes: what a run's ``--steps`` costs.

    python benchmarks/train_step.py [--family sa-cnn] [--init adareg/weights/sa-cnn.npz]
                                    [--batches 16 64 128 256] [--device cpu|cuda] [--repeats 4]
                                    [--data ../shared/data/bsd400] [--threads 2]

Each batch size gets a model as ``python -m adareg_train train`` starts it (its seed,
``--init``, the family's default gradient: the phantom gradient for ``sa-b`` / ``sa-cnn``,
implicit for the ridges; float32) and takes two warm-up steps and ``--repeats`` timed
ones, each a fresh batch through the fixed point, backward and an Adam step, timed to
the device's completion. Prints the median seconds per step and the patches per second:
the way to choose ``--batch-size`` and ``--steps`` for the time a machine is lent.

Needs torch (``adareg_train``) and the training images.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from adareg.io import read_folder
from adareg_train.data import PatchSampler
from adareg_train.train import Settings, adam, starting_model, training_step

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bsd400"


def seconds_per_step(settings: Settings, sampler: PatchSampler, repeats: int) -> float:
    model, _ = starting_model(settings)
    optimizer = adam(model, settings)
    generator = torch.Generator().manual_seed(settings.seed)
    sync = torch.cuda.synchronize if settings.device == "cuda" else (lambda: None)
    times = []
    for _ in range(2 + repeats):
        sync()
        start = time.perf_counter()
        training_step(model, optimizer, sampler, generator, settings, settings.lr)["loss"].item()
        times.append(time.perf_counter() - start)
    return float(np.median(times[2:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="sa-cnn", choices=("crr", "wcrr", "sa-b", "sa-cnn"))
    parser.add_argument("--init", help="parameter file to start from, as --init of the training")
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 64, 128, 256])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeats", type=int, default=4, help="timed steps per batch size (default 4)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--threads", type=int, default=2, help="torch's CPU threads")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"--data {args.data}: no such folder (the training images, e.g. ../shared/data/bsd400)")
    torch.set_num_threads(args.threads)
    sampler = PatchSampler(list(read_folder(str(args.data)).values()), 40)
    print(f"{args.family} on {args.device}, float32, 40x40 patches, init {args.init or 'random'}, "
          f"medians of {args.repeats} steps")
    for batch in args.batches:
        settings = Settings(family=args.family, data=str(args.data), batch_size=batch, device=args.device,
                            init=args.init)
        settings.check()
        seconds = seconds_per_step(settings, sampler, args.repeats)
        print(f"batch {batch:4}: {seconds:.3f} s per step, {batch / seconds:.0f} patches per second", flush=True)


if __name__ == "__main__":
    main()
