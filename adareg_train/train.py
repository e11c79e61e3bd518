"""The training loop: Adam on the mean squared denoising error, with validation, checkpoints and export."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import adareg
from adareg import params
from adareg.data import protocol_noisy
from adareg.io import read_folder

from .data import PatchSampler
from .families import GRADIENTS, MODELS, SIGMA_RANGE, Adaptive, Denoiser, build, families_with, model_class

CHECKPOINT = "checkpoint.pt"


@dataclasses.dataclass
class Settings:
    """Everything that defines a training run (stored in its checkpoint and its parameter file)."""

    family: str
    data: str
    steps: int = 2000
    batch_size: int = 16
    patch_size: int = 40
    lr: float = 2e-3
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    validation: str | None = None
    validate_every: int = 100
    checkpoint_every: int = 50
    init: str | None = None
    architecture: dict[str, Any] | None = None  # None: the family's default (its model's default_architecture)
    gradient: str | None = None  # one of the family's gradients ("implicit", "phantom", "jfb"); None: its default
    phantom_steps: int = 5  # fixed-point map steps with a graph of the phantom gradient
    contraction: float = 0.0  # weight of the contraction penalty (adaptive families; 0: none)
    contraction_target: float = 0.9  # the bound on the reweighting map's Jacobian the penalty aims below
    contraction_iterations: int = 5  # power iterations of the bound's estimate per training step

    def check(self) -> None:
        for name in ("steps", "batch_size", "patch_size", "validate_every", "checkpoint_every", "phantom_steps",
                     "contraction_iterations"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not (math.isfinite(self.contraction) and self.contraction >= 0):
            raise ValueError(f"contraction must be a non-negative weight, got {self.contraction}")
        if self.contraction and not issubclass(model_class(self.family), Adaptive):
            raise ValueError(f"contraction is a penalty of the reweighting families "
                             f"({', '.join(sorted(f for f, c in MODELS.items() if issubclass(c, Adaptive)))}), "
                             f"not of {self.family!r}")
        if not (math.isfinite(self.contraction_target) and self.contraction_target >= 0):
            raise ValueError(f"contraction_target must be non-negative, got {self.contraction_target}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if self.gradient not in (None, *GRADIENTS):
            raise ValueError(f"gradient must be one of {', '.join(map(repr, GRADIENTS))}, got {self.gradient!r}")
        supported = model_class(self.family).gradients
        if self.gradient is not None and self.gradient not in supported:
            raise ValueError(f"gradient {self.gradient!r} exists for {', '.join(families_with(self.gradient))} only, "
                             f"not {self.family!r}; use {' or '.join(map(repr, supported))}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for, but torch finds no CUDA device")


def gradient_method(settings: Settings) -> str:
    """The run's way of differentiating through the fixed point (the family's default where not set)."""
    return settings.gradient or model_class(settings.family).gradients[0]


def learning_rate(settings: Settings, step: int) -> float:
    """Constant, then halved at 60% and again at 80% of the steps."""
    return settings.lr * (0.5 ** (step >= 0.6 * settings.steps)) * (0.5 ** (step >= 0.8 * settings.steps))


def validation_pairs(folder: str, sigma: float = 25 / 255, crop: int = 96, count: int = 4) -> list[tuple[Any, Any]]:
    """Central ``crop`` squares of the first ``count`` images, with the Set12 noise protocol at ``sigma``.

    The noise is drawn for the whole image (:func:`adareg.data.protocol_noisy`).
    """
    pairs = []
    for i, clean in enumerate(read_folder(folder, count).values()):
        noisy = protocol_noisy(clean, round(sigma * 255), i)
        top, left = (clean.shape[0] - crop) // 2, (clean.shape[1] - crop) // 2
        window = (slice(top, top + crop), slice(left, left + crop))
        pairs.append((clean[window], noisy[window]))
    return pairs


def validate(model: Denoiser, pairs: list[tuple[Any, Any]], sigma: float, device: str) -> float:
    """Mean PSNR (dB) of the model's fixed points on ``pairs``."""
    values = []
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        for clean, noisy in pairs:
            y = torch.as_tensor(noisy, device=device, dtype=dtype)[None, None]
            x = model(y, torch.tensor([sigma], dtype=dtype, device=device))[0, 0].cpu().double().numpy()
            values.append(adareg.psnr(x, clean))
    return float(np.mean(values))


def _model(settings: Settings) -> Denoiser:
    """The seeded starting model of a run, on its device and in its precision."""
    model = build(settings.family, settings.architecture, seed=settings.seed)
    model.use_gradient(gradient_method(settings), settings.phantom_steps)
    return model.to(settings.device, getattr(torch, settings.dtype))


def starting_model(settings: Settings) -> tuple[Denoiser, dict[str, Any] | None]:
    """The model a run starts from, on its device and in its precision, and the record of the file it continues.

    The model is seeded, then set from ``settings.init`` if given (see :func:`_initialise`);
    the record is that file's ``training`` metadata when it set every parameter, else ``None``.
    """
    if settings.device == "cuda":
        # float32 means float32: no TF32 in the mask CNN's convolutions (adareg infers in full precision)
        torch.backends.cudnn.allow_tf32 = False
    model = _model(settings)
    return model, (_initialise(model, settings.init) if settings.init is not None else None)


def training_step(model: Denoiser, optimizer: torch.optim.Optimizer, sampler: PatchSampler,
                  generator: torch.Generator, settings: Settings, lr: float) -> dict[str, torch.Tensor]:
    """One Adam step on the mean squared error of a fresh batch (plus the contraction penalty where set).

    Returns the batch's ``loss`` (the mean squared error) and, with the penalty, the mean
    ``contraction`` bound of its fixed points (:meth:`Adaptive.contraction`), on the device.
    The penalty is ``settings.contraction`` times the mean of ``max(0, bound - target)^2``.
    """
    clean, noisy, sigma = sampler.batch(settings.batch_size, generator)
    clean, noisy, sigma = (t.to(settings.device, getattr(torch, settings.dtype)) for t in (clean, noisy, sigma))
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad()
    values = {}
    if settings.contraction:
        x, p, W, lam = model.equilibrium(noisy, sigma)
        output = model.map_from(noisy, sigma, x, p, W, lam)
        bound = model.contraction(noisy, sigma, x, p, W, lam, settings.contraction_iterations, generator)
        penalty = settings.contraction * torch.mean(torch.relu(bound - settings.contraction_target) ** 2)
        values["contraction"] = bound.detach().mean()
    else:
        output, penalty = model(noisy, sigma), 0.0
    loss = torch.mean((output - clean) ** 2)
    (loss + penalty).backward()
    optimizer.step()
    return {"loss": loss.detach(), **values}


def _checkpoint_settings(state: dict[str, Any]) -> Settings:
    """A checkpoint's settings, with the method its run used where it predates a setting.

    Checkpoints written before ``gradient`` existed used JFB; so did those of a family whose
    default is the phantom gradient (``sa-b``, ``sa-cnn``) written before ``phantom_steps`` existed.
    """
    stored = {"gradient": "jfb", **state["settings"]}
    default = model_class(stored["family"]).gradients[0]
    if stored["gradient"] is None and "phantom_steps" not in stored and default == "phantom":
        stored["gradient"] = "jfb"
    return Settings(**stored)


def _resolved(settings: Settings) -> dict[str, Any]:
    """The settings with ``gradient`` resolved to the method the run uses (to compare runs)."""
    return dataclasses.asdict(settings) | {"gradient": gradient_method(settings)}


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def _initialise(model: Denoiser, source: str) -> dict[str, Any] | None:
    """Start ``model`` from a parameter file (read safely by adareg).

    A file of the same family and architecture sets every parameter (to continue or
    fine-tune a model), and its ``training`` metadata is returned, to be kept in the
    new file's; any other file sets the filter bank only (``None`` returned), which
    must have the same layers.
    """
    file = params.read(source)
    if file.family == model.family and file.metadata["architecture"] == model.architecture:
        model.load_arrays(file.arrays)
        return {"file": str(source), **file.metadata.get("training", {})}
    for l, layer in enumerate(model.bank.layers):
        array = file.arrays.get(f"bank_{l}")
        if array is None or array.shape != tuple(layer.shape):
            raise ValueError(f"--init {source}: its bank_{l} does not fit this architecture "
                             f"({None if array is None else array.shape} for {tuple(layer.shape)})")
        with torch.no_grad():
            layer.copy_(torch.from_numpy(np.asarray(array, dtype=np.float64)))
    return None


def export(model: Denoiser, path: Path, settings: Settings, step: int, seconds: float,
           history: list[dict[str, float]], threads: int | None,
           continued_from: dict[str, Any] | None = None) -> Path:
    """Write the model as an adareg parameter file, with how it was trained.

    ``threads``: torch's, if known; ``continued_from``: the training metadata of the
    file the run started from (every parameter), kept under ``training.continued_from``.
    """
    validation = [h for h in history if "validation_psnr" in h]
    metadata = {
        "family": model.family,
        "architecture": model.architecture,
        "sigma_range": list(SIGMA_RANGE),
        "training": {
            **_resolved(settings),
            "steps_done": step,
            "seconds": round(seconds, 1),
            "method": {"implicit": "implicit differentiation at the minimiser (conjugate gradients on the Hessian)",
                       "jfb": "Jacobian-free backpropagation at the fixed point",
                       "phantom": f"phantom gradient: {settings.phantom_steps} fixed-point map steps with a graph"
                       }[gradient_method(settings)]
                      + " (adareg_train.families)",
            "loss": "mean squared error, sigma uniform in [0, 30]/255 per patch, random flips and rotations"
                    + (f", plus {settings.contraction} times the mean of max(0, bound - "
                       f"{settings.contraction_target})^2, the bound on the reweighting map's Jacobian estimated by "
                       f"{settings.contraction_iterations} power iterations (adareg_train.families.Adaptive.contraction)"
                       if settings.contraction else ""),
            "optimizer": "Adam",
            "hardware": f"{platform.machine()} {settings.device}, torch {torch.__version__}, "
                        + (f"{threads} threads" if threads else "threads not recorded"),
            "loss_curve": [[h["step"], round(h["loss"], 8)] for h in history if "loss" in h][:: max(1, step // 100)],
            **({"contraction_curve": [[h["step"], round(h["contraction"], 6)] for h in history
                                      if "contraction" in h][:: max(1, step // 100)]} if settings.contraction else {}),
        },
        "validation": {"crop96_psnr_sigma25": validation[-1]["validation_psnr"]} if validation else {},
    }
    if continued_from is not None:
        metadata["training"]["continued_from"] = continued_from
    # the constrained arrays computed in float64 from the (possibly float32) parameters
    return params.save(path, copy.deepcopy(model).to(torch.float64).arrays(), metadata)


def export_checkpoint(out: str | os.PathLike) -> Path:
    """Export the model of ``out/checkpoint.pt`` as ``out/<family>.npz`` (e.g. a run stopped before its end)."""
    checkpoint = Path(out) / CHECKPOINT
    if not checkpoint.exists():
        raise FileNotFoundError(f"no checkpoint at {checkpoint}")
    state = torch.load(checkpoint, weights_only=True)
    settings = _checkpoint_settings(state)
    model = _model(settings)
    model.load_state_dict(state["model"])
    return export(model, Path(out) / f"{settings.family}.npz", settings, state["step"], state["seconds"],
                  state["history"], state.get("threads"), state.get("continued_from"))


def train(settings: Settings, out: str | os.PathLike, *, resume: bool = True, progress: bool = True) -> Path:
    """Train one model; return the path of its exported parameter file ``out/<family>.npz``.

    A checkpoint (model, optimizer, random state, loss history) is written every
    ``checkpoint_every`` steps to ``out/checkpoint.pt``; with ``resume`` a run
    finds it there and goes on from its step, with the same batches it would have drawn.
    """
    settings.check()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / CHECKPOINT
    sampler = PatchSampler(list(read_folder(settings.data).values()), settings.patch_size)
    model, continued_from = starting_model(settings)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    generator = torch.Generator().manual_seed(settings.seed)
    step, seconds, history = 0, 0.0, []
    if resume and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=True)
        if _resolved(_checkpoint_settings(state)) != _resolved(settings):
            raise ValueError(f"{checkpoint} was written with other settings ({json.dumps(state['settings'])}); "
                             "use another --out or --no-resume")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        step, seconds, history = state["step"], state["seconds"], state["history"]
        continued_from = state.get("continued_from", continued_from)
    pairs = validation_pairs(settings.validation) if settings.validation else []

    bar = tqdm(total=settings.steps, initial=step, disable=not progress, desc=f"train {settings.family}")
    while step < settings.steps:
        start = time.perf_counter()
        values = training_step(model, optimizer, sampler, generator, settings, learning_rate(settings, step))
        step += 1
        seconds += time.perf_counter() - start
        record = {"step": step, **{name: value.item() for name, value in values.items()}}
        if pairs and (step % settings.validate_every == 0 or step == settings.steps):
            record["validation_psnr"] = validate(model, pairs, 25 / 255, settings.device)
        history.append(record)
        bar.update()
        bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "step"}, refresh=False)
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            _save_checkpoint(checkpoint, {"settings": dataclasses.asdict(settings), "model": model.state_dict(),
                                          "optimizer": optimizer.state_dict(), "generator": generator.get_state(),
                                          "step": step, "seconds": seconds, "history": history,
                                          "threads": torch.get_num_threads(), "continued_from": continued_from})
    bar.close()
    return export(model, out / f"{settings.family}.npz", settings, step, seconds, history, torch.get_num_threads(),
                  continued_from)
