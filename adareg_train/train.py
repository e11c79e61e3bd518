"""The training loop: Adam on the denoising error (squared or absolute), with validation, checkpoints and export."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import adareg
from adareg import checks, params
from adareg.data import protocol_noisy
from adareg.io import IMAGE_SUFFIXES, UNREAD_IMAGE_SUFFIXES, IntensityWarning, read_folder
from adareg.intensities import INTENSITY_FLOOR

from .data import PatchSampler
from .families import (GRADIENTS, MODELS, SIGMA_RANGE, Adaptive, Denoiser, build, families_with, model_class,
                       smallest_side)

CHECKPOINT = "checkpoint.pt"
#: What every checkpoint written by :func:`train` holds.
CHECKPOINT_KEYS = frozenset({"settings", "model", "optimizer", "generator", "step", "seconds", "history"})
#: The keys of a checkpoint (and of a file's ``training`` metadata) that record the file a run started from.
ORIGINS = ("continued_from", "bank_from")
#: The training losses: the mean squared error or the mean absolute error of the denoised patches.
LOSSES = ("mse", "l1")
#: How far (relative to an array's largest magnitude) ``--init`` may move a file's array before the record says it
#: was projected: above float32's rounding of a round trip through the torch model.
PROJECTION_TOL = 1e-5


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
    loss: str = "mse"  # "mse" (mean squared error) or "l1" (mean absolute error, WCRR-NN's)
    decay_every: int | None = None  # None: lr halved at 60% and 80% of the steps; else times decay_factor every so many
    decay_factor: float = 0.75
    group_lr: dict[str, float] | None = None  # learning rates of parameter groups (parameter_groups); 0 freezes one

    def check(self, given: Collection[str] | None = None) -> None:
        """Refuse a bad setting with an error that names it (a ``RuntimeError`` for a missing CUDA device).

        A setting of the wrong type (``steps=True``, ``lr="0.1"``, ``data=None``) raises a ``TypeError``,
        a bad value a ``ValueError``.  A setting that has no effect on this run (:meth:`unused`) is refused too
        when it was given: when its name is in ``given`` (the settings set explicitly, e.g. the command line's
        options) or, with ``given`` ``None``, when it differs from its default.
        """
        model_class(self.family)  # a ValueError naming the families
        for name in ("data", "validation", "init"):
            value = getattr(self, name)
            if not (isinstance(value, (str, os.PathLike)) or (value is None and name != "data")):
                raise TypeError(f"{name} (--{name}) must be a path (str or os.PathLike)"
                                f"{'' if name == 'data' else ' or None'}, got {value!r} ({type(value).__name__})")
        for name in ("steps", "batch_size", "patch_size", "validate_every", "checkpoint_every", "phantom_steps",
                     "contraction_iterations"):
            checks.count(getattr(self, name), name)
        checks.positive(self.lr, "lr")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got {self.seed!r} ({type(self.seed).__name__})")
        if not 0 <= self.seed < 2**64:  # torch takes -2**63 too, as 2**64 + seed: two seeds, one run
            raise ValueError(f"seed must be an int from 0 to 2**64 - 1 (a torch generator's seed), got {self.seed}")
        checks.non_negative(self.contraction, "contraction")
        if self.contraction and not issubclass(model_class(self.family), Adaptive):
            raise ValueError(f"contraction is a penalty of the reweighting families "
                             f"({', '.join(sorted(f for f, c in MODELS.items() if issubclass(c, Adaptive)))}), "
                             f"not of {self.family!r}")
        checks.non_negative(self.contraction_target, "contraction_target")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(map(repr, LOSSES))}, got {self.loss!r}")
        if self.decay_every is not None:
            checks.count(self.decay_every, "decay_every")
        if not (checks.positive(self.decay_factor, "decay_factor") <= 1):
            raise ValueError(f"decay_factor must be in (0, 1], got {self.decay_factor}")
        if self.group_lr is not None:
            if not isinstance(self.group_lr, dict):
                raise TypeError(f"group_lr must be a dict of group names to learning rates or None, got "
                                f"{self.group_lr!r} ({type(self.group_lr).__name__})")
            names = sorted(parameter_groups(build(self.family, self.architecture, seed=0)))
            unknown = sorted(str(name) for name in self.group_lr if name not in names)
            if unknown:
                raise ValueError(f"group_lr: {self.family} has no parameter group {', '.join(map(repr, unknown))}; "
                                 f"its groups are {', '.join(names)}")
            for name, value in self.group_lr.items():
                checks.non_negative(value, f"group_lr[{name!r}]")
            if all(self.group_lr.get(name, self.lr) == 0 for name in names):
                raise ValueError(f"group_lr freezes every parameter group of {self.family} ({', '.join(names)}): "
                                 "nothing would be trained")
        if self.architecture is not None:
            if not isinstance(self.architecture, dict):
                raise TypeError(f"architecture must be a dict or None (the family's default), got "
                                f"{self.architecture!r} ({type(self.architecture).__name__})")
            keys = model_class(self.family).default_architecture.keys()
            missing, unknown = sorted(keys - self.architecture.keys()), sorted(self.architecture.keys() - keys)
            if missing or unknown:
                raise ValueError(f"architecture of {self.family!r} must have the keys {', '.join(sorted(keys))}"
                                 + (f"; missing {', '.join(missing)}" if missing else "")
                                 + (f"; unknown {', '.join(map(str, unknown))}" if unknown else ""))
            _check_architecture(self.family, self.architecture)
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
        smallest = smallest_side(self.architecture or model_class(self.family).default_architecture)
        if self.patch_size < smallest:
            raise ValueError(f"patch_size must be at least {smallest} for this architecture (more pixels than its "
                             f"widest kernel's reflect padding), got {self.patch_size}")
        defaults = {field.name: field.default for field in dataclasses.fields(self)}
        for name, reason in self.unused().items():
            if name in given if given is not None else getattr(self, name) != defaults[name]:
                raise ValueError(f"{name} (--{name.replace('_', '-')}) has no effect {reason}")
        if self.init is not None and Path(self.init).suffix == ".pt":
            raise ValueError(f"init {self.init} is a training checkpoint, not a parameter file: export it first "
                             f"(python -m adareg_train export --out {Path(self.init).parent}) and start from the "
                             f".npz file that writes")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for, but torch finds no CUDA device")

    def plain(self) -> Settings:
        """These settings with paths as ``str`` and NumPy scalars as Python numbers, at any depth: what the
        exported file's JSON and the checkpoint's ``torch.load(weights_only=True)`` can hold."""
        return Settings(**{name: _plain(value) for name, value in dataclasses.asdict(self).items()})

    def unused(self) -> dict[str, str]:
        """The settings that have no effect on this run, each with the reason (the family and gradient known)."""
        unused = {}
        if self.validation is None:
            unused["validate_every"] = "without validation images (--validation)"
        if gradient_method(self) != "phantom":
            unused["phantom_steps"] = (f"with the {gradient_method(self)} gradient of this run: it sets the phantom "
                                       f"gradient's (--gradient phantom, {', '.join(families_with('phantom'))})")
        if not self.contraction:
            for name in ("contraction_target", "contraction_iterations"):
                unused[name] = "without the contraction penalty (--contraction WEIGHT, sa-b and sa-cnn)"
        if self.decay_every is None:
            unused["decay_factor"] = "without --decay-every (the default schedule halves the rate at 60% and 80%)"
        elif self.decay_every >= self.steps:
            unused["decay_factor"] = (f"with --decay-every {self.decay_every} of at least the run's {self.steps} "
                                      "steps: the rate never decays")
        return unused


def _plain(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    return value


#: Architecture entries the torch models do not vary, and why: a file stating another value would describe
#: another model than the one trained.
FIXED_ARCHITECTURE = {
    "boundary": "the torch filter bank pads by reflection",
    "lam_knots": "lambda(sigma) has its knots at 0, 5, ..., 30 / 255 (families.SIGMA_KNOTS)",
    "scale_knots": "the scale profile has its knots at 0, 5, ..., 30 / 255 (families.SIGMA_KNOTS)",
}


def _check_architecture(family: str, architecture: dict[str, Any]) -> None:
    """Refuse, before any step, an architecture whose model could not be trained or exported as described.

    The fixed entries (:data:`FIXED_ARCHITECTURE`) must keep the family's defaults; the rest must
    build a torch model whose untrained parameters :func:`adareg.params.save` accepts, i.e. a file
    :func:`adareg.load` builds (the checks the export would apply after the last step).
    """
    default = model_class(family).default_architecture
    for key, reason in FIXED_ARCHITECTURE.items():
        if key in default and architecture[key] != default[key]:
            raise ValueError(f"architecture[{key!r}] must be {default[key]!r} in adareg_train ({reason}), got "
                             f"{architecture[key]!r}")
    try:
        model = build(family, architecture, seed=0).to(torch.float64)
        arrays = model.arrays()
    except (ArithmeticError, IndexError, KeyError, RuntimeError, TypeError, ValueError) as err:
        raise ValueError(f"architecture: no {family} model can be built from it ({type(err).__name__}: "
                         f"{checks.one_line(err)})") from None
    metadata = {"family": family, "architecture": model.architecture, "sigma_range": list(SIGMA_RANGE),
                "training": {}, "validation": {}}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "architecture.npz"
        try:
            params.save(path, arrays, metadata)
        except (params.ParameterFileError, TypeError) as err:
            raise ValueError(f"architecture: its model would be exported to a file that adareg refuses "
                             f"({checks.one_line(err).replace(f'{path}: ', '')})") from None


def gradient_method(settings: Settings) -> str:
    """The run's way of differentiating through the fixed point (the family's default where not set)."""
    return settings.gradient or model_class(settings.family).gradients[0]


def learning_rate(settings: Settings, step: int) -> float:
    """The learning rate of ``step`` (counted from 0): ``lr`` times ``decay_factor ** (step // decay_every)``,
    or, without ``decay_every``, constant and then halved at 60% and again at 80% of the steps.

    Parameter groups with their own rate (``group_lr``) follow the same schedule.
    """
    if settings.decay_every is not None:
        return settings.lr * settings.decay_factor ** (step // settings.decay_every)
    return settings.lr * (0.5 ** (step >= 0.6 * settings.steps)) * (0.5 ** (step >= 0.8 * settings.steps))


def schedule_text(settings: Settings) -> str:
    """The learning rates and their schedule in words (for the exported metadata)."""
    rates = f"learning rate {settings.lr:g}" + "".join(f", {name} {rate:g}"
                                                        for name, rate in sorted((settings.group_lr or {}).items()))
    if settings.decay_every is not None:
        return f"{rates}, times {settings.decay_factor:g} every {settings.decay_every} steps"
    return f"{rates}, halved at 60% and 80% of the steps"


def parameter_groups(model: Denoiser) -> dict[str, list[torch.nn.Parameter]]:
    """A model's parameters by group: the first part of each name, without a ``_raw`` suffix
    (``bank``, ``lam``, ``masks`` for ``sa-cnn``; ``bank``, ``lam``, ``profile``, ``scale`` for the ridges)."""
    groups: dict[str, list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        groups.setdefault(name.split(".")[0].removesuffix("_raw"), []).append(parameter)
    return groups


def adam(model: Denoiser, settings: Settings) -> torch.optim.Adam:
    """Adam over the model's parameters, one group per learning rate (``lr``, and each of ``group_lr``);
    a group at rate 0 is frozen (no gradient is computed for it).

    Each group keeps its rate over ``lr`` as ``lr_scale``, which :func:`training_step` applies to the
    scheduled rate (:func:`learning_rate`).
    """
    rates = settings.group_lr or {}
    by_rate: dict[float, list[torch.nn.Parameter]] = {}
    for group, parameters in parameter_groups(model).items():
        rate = float(rates.get(group, settings.lr))
        for parameter in parameters:
            parameter.requires_grad_(rate > 0)
            if rate > 0:
                by_rate.setdefault(rate, []).append(parameter)
    return torch.optim.Adam([{"params": params, "lr": rate, "lr_scale": rate / settings.lr}
                             for rate, params in by_rate.items()], lr=settings.lr)


def read_images(folder: str, option: str) -> dict[str, np.ndarray]:
    """The images of ``folder`` (:func:`adareg.io.read_folder`), keyed by file path.

    The reader's errors (a missing or empty folder, a colour image) start with ``option`` (the
    setting naming the folder), their type kept; so does the ``ValueError`` that refuses an
    image the reader warns of (an :class:`~adareg.io.IntensityWarning`: floats on another scale
    than [0, 1], 12-bit values in a 16-bit file, read as [0, 1/16]), or an image that peaks
    below :data:`adareg.intensities.INTENSITY_FLOOR`, where the training noise would drown it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", IntensityWarning)
        warnings.filterwarnings("ignore", message="read_folder: .* formats it does not read")  # train() names them
        try:
            images = read_folder(folder)
        except IntensityWarning as err:
            raise ValueError(f"{option}: {err}") from None
        except (ValueError, OSError) as err:
            raise type(err)(f"{option}: {err}") from None
    files = {path.stem: path for path in Path(folder).iterdir() if path.suffix.lower() in IMAGE_SUFFIXES}
    for stem, image in images.items():
        peak = float(image.max())
        if peak < INTENSITY_FLOOR:
            raise ValueError(f"{option}: {files[stem]} peaks at {peak:.4g}, where the models are trained on "
                             f"intensities in [0, 1] and noise up to {SIGMA_RANGE[1] * 255:g}/255 would drown it "
                             "(10- or 12-bit values in a 16-bit file?): rescale the images to [0, 1] first")
    return {str(files[stem]): image for stem, image in images.items()}


def validation_images(folder: str, count: int = 4) -> dict[str, np.ndarray]:
    """The images that validation scores: the first ``count`` of ``folder`` (all, where it holds fewer), by path."""
    return dict(list(read_images(folder, "validation").items())[:count])


def trained_on(images: dict[str, np.ndarray], folder: str) -> list[str]:
    """The paths of the validation images of ``folder`` whose pixels equal one of the training ``images``.

    A validation figure measured on training images says how well the model fits them,
    not how it does on images it has not seen, yet the exported file would record it as
    its validation PSNR.
    """
    def pixels(image: np.ndarray) -> tuple[tuple[int, ...], str]:
        return image.shape, hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()

    training = {pixels(image) for image in images.values()}
    return [path for path, image in validation_images(folder).items() if pixels(image) in training]


def validation_pairs(folder: str, sigma: float = 25 / 255, crop: int = 96, count: int = 4) -> list[tuple[Any, Any]]:
    """Central ``crop`` squares of the first ``count`` images (all, where fewer), with the Set12 noise protocol at
    ``sigma``.

    The noise is drawn for the whole image (:func:`adareg.data.protocol_noisy`), whose levels
    are whole numbers on the 0-255 scale: ``sigma`` must be one of them over 255 (e.g. ``25 / 255``).
    A ``crop`` under 1, or an image smaller than ``crop``, is refused (a ``ValueError`` naming it).
    """
    level = checks.non_negative(sigma, "sigma") * 255
    if not (1 <= round(level) <= 255 and math.isclose(level, round(level), rel_tol=0, abs_tol=1e-6)):
        raise ValueError(f"sigma must be a whole positive level over 255 (the noise protocol "
                         f"uses integer levels, e.g. 25 / 255), got {sigma:g} = {level:g} / 255")
    checks.count(crop, "crop")
    checks.count(count, "count")
    pairs = []
    for i, (name, clean) in enumerate(validation_images(folder, count).items()):
        if min(clean.shape) < crop:
            raise ValueError(f"validation: {name} is {clean.shape[0]} x {clean.shape[1]} pixels, smaller than the "
                             f"{crop} x {crop} crop that validation scores")
        noisy = protocol_noisy(clean, round(level), i)
        top, left = (clean.shape[0] - crop) // 2, (clean.shape[1] - crop) // 2
        window = (slice(top, top + crop), slice(left, left + crop))
        pairs.append((clean[window], noisy[window]))
    return pairs


#: The model's solver settings while it validates: its fixed points to a relative change of 1e-6, where the
#: training solves stop early, short of the minimisers that adareg gives the exported file (docs/training.md).
VALIDATION_SOLVES = {"iterations": 1000, "outer": 100, "tol": 1e-6}


@contextlib.contextmanager
def _validation_solves(model: Denoiser) -> Iterator[None]:
    """The model with :data:`VALIDATION_SOLVES` for those of its solver settings it has, restored after, and with
    the ridges' warm start of ``||W||`` (``norm_vector``) as training left it: else the next step's norm, and the
    trained parameters, hung on when validation ran (``--validate-every``, a stop at ``--max-minutes``)."""
    saved = {name: getattr(model, name) for name in (*VALIDATION_SOLVES, "norm_vector") if hasattr(model, name)}
    for name in saved.keys() & VALIDATION_SOLVES.keys():
        setattr(model, name, VALIDATION_SOLVES[name])
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(model, name, value)


def validate(model: Denoiser, pairs: list[tuple[Any, Any]], sigma: float, device: str) -> float:
    """Mean PSNR (dB) of the model's fixed points on ``pairs``, solved to :data:`VALIDATION_SOLVES`."""
    values = []
    dtype = next(model.parameters()).dtype
    with torch.no_grad(), _validation_solves(model):
        for clean, noisy in pairs:
            y = torch.as_tensor(noisy, device=device, dtype=dtype)[None, None]
            x = model(y, torch.tensor([sigma], dtype=dtype, device=device))[0, 0].cpu().double().numpy()
            values.append(adareg.psnr(x, clean))
    return float(np.mean(values))


def _model(settings: Settings) -> Denoiser:
    """The seeded starting model of a run, on its device and in its precision (a fresh run's and a resumed one's)."""
    if settings.device == "cuda":
        # float32 means float32: no TF32 in the mask CNN's convolutions (adareg infers in full precision)
        torch.backends.cudnn.allow_tf32 = False
    model = build(settings.family, settings.architecture, seed=settings.seed)
    model.use_gradient(gradient_method(settings), settings.phantom_steps)
    return model.to(settings.device, getattr(torch, settings.dtype))


def starting_model(settings: Settings) -> tuple[Denoiser, dict[str, dict[str, Any]]]:
    """The model a run starts from, on its device and in its precision, and what it took from which file.

    The model is seeded, then set from ``settings.init`` if given (see :func:`_initialise`,
    which gives the second value; ``{}`` without ``init``).
    """
    model = _model(settings)
    return model, (_initialise(model, settings.init) if settings.init is not None else {})


def training_step(model: Denoiser, optimizer: torch.optim.Optimizer, sampler: PatchSampler,
                  generator: torch.Generator, settings: Settings, lr: float) -> dict[str, torch.Tensor]:
    """One Adam step on the loss of a fresh batch (plus the contraction penalty where set), at the rate ``lr``.

    The loss is the mean squared error, or with ``settings.loss == "l1"`` the mean absolute
    error, of the denoised patches.  ``optimizer`` comes from :func:`adam`: each group
    steps at ``lr`` times its ``lr_scale``.  Returns the batch's ``loss`` and, with the
    penalty, the mean ``contraction`` bound of its fixed points (:meth:`Adaptive.contraction`),
    on the device.  The penalty is ``settings.contraction`` times the mean of
    ``max(0, bound - target)^2``.
    """
    clean, noisy, sigma = sampler.batch(settings.batch_size, generator)
    clean, noisy, sigma = (t.to(settings.device, getattr(torch, settings.dtype)) for t in (clean, noisy, sigma))
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_scale"]
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
    loss = torch.mean(torch.abs(output - clean) if settings.loss == "l1" else (output - clean) ** 2)
    (loss + penalty).backward()
    optimizer.step()
    return {"loss": loss.detach(), **values}


def _load_checkpoint(checkpoint: Path) -> dict[str, Any]:
    """The state :func:`train` saved in ``checkpoint``, its tensors on the CPU (a GPU run's too), or a
    ``ValueError`` naming the file."""
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several kinds for a damaged or foreign file
        raise ValueError(f"{checkpoint}: not a readable adareg_train checkpoint ({type(err).__name__}: "
                         f"{checks.one_line(err)}); use another --out, or --no-resume to replace it") from None
    missing = sorted(CHECKPOINT_KEYS - set(state)) if isinstance(state, dict) else ["everything"]
    if missing:
        raise ValueError(f"{checkpoint}: not an adareg_train checkpoint (missing {', '.join(missing)}); use another "
                         "--out, or --no-resume to replace it")
    return state


def _restore(target: torch.nn.Module | torch.optim.Optimizer, saved: dict[str, Any], checkpoint: Path) -> None:
    """Load a checkpoint's model or optimizer state into ``target``, or a ``ValueError`` naming the file where
    its arrays do not fit the model its settings build."""
    try:
        target.load_state_dict(saved)
    except (RuntimeError, ValueError, KeyError) as err:  # torch's size and key mismatches
        what = "optimizer" if isinstance(target, torch.optim.Optimizer) else "model"
        raise ValueError(f"{checkpoint}: its {what} state does not fit the model of its settings "
                         f"({checks.one_line(err)}); use another --out, or --no-resume to replace it") from None


def _checkpoint_settings(state: dict[str, Any], checkpoint: Path) -> Settings:
    """A checkpoint's settings, with the method its run used where it predates a setting.

    Checkpoints written before ``gradient`` existed used JFB; so did those of a family whose
    default is the phantom gradient (``sa-b``, ``sa-cnn``) written before ``phantom_steps`` existed.
    """
    stored = {"gradient": "jfb", **state["settings"]}
    try:
        default = model_class(stored["family"]).gradients[0]
        if stored["gradient"] is None and "phantom_steps" not in stored and default == "phantom":
            stored["gradient"] = "jfb"
        return Settings(**stored)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{checkpoint}: its settings are not those of this adareg_train ({err})") from None


def _resolved(settings: Settings) -> dict[str, Any]:
    """The settings with ``gradient`` resolved to the method the run uses (as exported)."""
    return dataclasses.asdict(settings) | {"gradient": gradient_method(settings)}


def _comparable(settings: Settings) -> dict[str, Any]:
    """:func:`_resolved` with the paths as absolute ones, to compare runs (``data/`` and ``./data`` are one), and
    without the device: a run stopped on a lent GPU goes on on the CPU, or the other way (its hardware record
    names both, :func:`resumed_record`)."""
    paths = {name: str(Path(value).resolve()) for name in ("data", "validation", "init")
             if (value := getattr(settings, name)) is not None}
    return {name: value for name, value in (_resolved(settings) | paths).items() if name != "device"}


def data_fingerprint(images: dict[str, np.ndarray]) -> str:
    """A SHA-256 digest of the training images' file names, shapes and values, in name order: a resumed run
    checks that it draws its batches from the images its checkpoint was trained on."""
    digest = hashlib.sha256()
    for path in sorted(images, key=lambda path: Path(path).name):
        image = np.ascontiguousarray(images[path])
        digest.update(f"{Path(path).name}:{image.shape}:{image.dtype.str};".encode())
        digest.update(image.tobytes())
    return digest.hexdigest()


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())  # on disk before the rename, so that a power cut leaves the old checkpoint or the new
    os.replace(temporary, path)


def _initialise(model: Denoiser, source: str) -> dict[str, dict[str, Any]]:
    """Start ``model`` from a parameter file (read and checked by ``adareg.load``), and say what it took from where.

    A file of the same family and architecture sets every parameter (to continue or
    fine-tune a model): returned as ``{"continued_from": record}``; any other file sets the
    filter bank only, which must have the same layers: ``{"bank_from": record}``.  The
    ``record`` is the file's path, family and ``training`` metadata, kept in the new file's,
    so that it names every stage its parameters went through.
    """
    try:  # checked as adareg.load checks it (arrays missing, constraints its family's build enforces)
        params.load(source)
        file = params.read(source)
    except params.ParameterFileError as err:  # the reader's message, with the option that named the file
        raise params.ParameterFileError(f"--init: {err}", file=err.file, field=err.field) from None
    record = {"file": str(source), "family": file.family, **file.metadata.get("training", {})}
    # compared as JSON holds them: an architecture given with tuples (the Python API) has lists in its file
    if file.family == model.family and file.metadata["architecture"] == json.loads(json.dumps(model.architecture)):
        model.load_arrays(file.arrays)
        # the family's constraints hold what they train (a profile's slope bounds and value at 0, wcrr's bound on lam):
        # a file's arrays beyond them start the run projected, which the record says
        held = model.arrays()
        projected = [name for name, array in file.arrays.items()
                     if np.abs(held[name] - array).max() > PROJECTION_TOL * np.abs(array).max()]
        if projected:
            warnings.warn(f"--init {source}: the {model.family} constraints changed its {', '.join(projected)}: the "
                          "run starts from their projection, not from the file's model", stacklevel=2)
            record["projected"] = projected
        return {"continued_from": record}
    for l, layer in enumerate(model.bank.layers):
        array = file.arrays.get(f"bank_{l}")
        if array is None or array.shape != tuple(layer.shape):
            raise ValueError(f"--init {source}: its bank_{l} does not fit this architecture "
                             f"({None if array is None else array.shape} for {tuple(layer.shape)})")
        with torch.no_grad():
            layer.copy_(torch.from_numpy(np.asarray(array, dtype=np.float64)))
    return {"bank_from": record}


def code_version() -> str:
    """``adareg <version>``, with the git commit of the source tree when it is a checkout (and whether it
    had uncommitted changes), so that a parameter file names the code that wrote it."""
    version = f"adareg {adareg.__version__}"
    tree = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        modified = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                                  capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):  # no git, or not a checkout (an installed package)
        return version
    return f"{version}, commit {commit}" + (" with uncommitted changes" if modified else "")


def hardware(device: str) -> str:
    """The machine a run trains on: architecture, device (with the GPU's name on CUDA), torch and its threads."""
    where = f"cuda ({torch.cuda.get_device_name()})" if device == "cuda" else device
    return f"{platform.machine()} {where}, torch {torch.__version__}, {torch.get_num_threads()} threads"


def resumed_record(before: str, here: str, step: int) -> str:
    """The hardware (or code) record of a run resumed after ``step`` on ``here``, where the checkpoint says
    ``before``: ``before`` where they are the same, else both, ``"<before>; from step <step + 1>: <here>"``
    (a run stopped on one lent GPU may go on on another kind, or on the CPU, or after a commit)."""
    return before if before.rsplit(": ", 1)[-1] == here else f"{before}; from step {step + 1}: {here}"


def export(model: Denoiser, path: Path, settings: Settings, step: int, seconds: float,
           history: list[dict[str, float]], machine: str, code: str,
           origin: dict[str, dict[str, Any]] | None = None, images: int | None = None) -> Path:
    """Write the model as an adareg parameter file, with how it was trained.

    ``machine``: :func:`hardware` where the run trained; ``code``: :func:`code_version` of the code that
    trained it; ``origin``: the records of the file the run started
    from, ``{"continued_from": record}`` (every parameter) or ``{"bank_from": record}`` (the filter bank; see
    :func:`_initialise`), kept under those keys of ``training``;
    ``images``: the number of training images read from ``settings.data``, if known
    (``training.data_images``).
    """
    validation = _validation_at(history, step)  # of these parameters, never an earlier step's
    metadata = {
        "family": model.family,
        "architecture": model.architecture,
        "sigma_range": list(SIGMA_RANGE),
        "training": {
            **_resolved(settings),
            **({"data_images": images} if images is not None else {}),
            "steps_done": step,
            "seconds": round(seconds, 1),
            "method": {"implicit": "implicit differentiation at the minimiser (conjugate gradients on the Hessian)",
                       "jfb": "Jacobian-free backpropagation at the fixed point",
                       "phantom": f"phantom gradient: {settings.phantom_steps} fixed-point map steps with a graph"
                       }[gradient_method(settings)]
                      + " (adareg_train.families)",
            "loss": {"mse": "mean squared error", "l1": "mean absolute error"}[settings.loss]
                    + ", sigma uniform in [0, 30]/255 per patch, random flips and rotations"
                    + (f", plus {settings.contraction} times the mean of max(0, bound - "
                       f"{settings.contraction_target})^2, the bound on the reweighting map's Jacobian estimated by "
                       f"{settings.contraction_iterations} power iterations (adareg_train.families.Adaptive.contraction)"
                       if settings.contraction else ""),
            "optimizer": "Adam, " + schedule_text(settings),
            "hardware": machine,
            "code": code,
            "loss_curve": [[h["step"], round(h["loss"], 8)] for h in history if "loss" in h][:: max(1, step // 100)],
            **({"contraction_curve": [[h["step"], round(h["contraction"], 6)] for h in history
                                      if "contraction" in h][:: max(1, step // 100)]} if settings.contraction else {}),
        },
        "validation": {"crop96_psnr_sigma25": validation} if validation is not None else {},
    }
    metadata["training"].update(origin or {})
    # the constrained arrays computed in float64 from the (possibly float32) parameters
    return params.save(path, copy.deepcopy(model).to(torch.float64).arrays(), metadata)


def export_checkpoint(out: str | os.PathLike) -> Path:
    """Export the model of ``out/checkpoint.pt`` as ``out/<family>.npz`` (e.g. a run stopped before its end).

    A run validates at its last step, but a run cut short (e.g. killed at a lent GPU's time
    limit) may have checkpointed a step it did not validate: its model is then validated
    here, on the CPU, where the run's validation folder can be read, and exported without a
    validation figure (said on stderr) where it cannot, never with an earlier step's.
    """
    checkpoint = Path(out) / CHECKPOINT
    if not checkpoint.exists():
        raise FileNotFoundError(f"no checkpoint at {checkpoint}")
    state = _load_checkpoint(checkpoint)
    settings = _checkpoint_settings(state, checkpoint)
    model = _model(dataclasses.replace(settings, device="cpu"))  # only its arrays are exported: any machine will do
    _restore(model, state["model"], checkpoint)
    step, history = state["step"], state["history"]
    if settings.validation is not None and _validation_at(history, step) is None:
        try:
            pairs = validation_pairs(settings.validation)
        except FileNotFoundError as err:
            print(f"adareg_train: exported without a validation figure: step {step} was not validated and "
                  f"{checks.one_line(err)}", file=sys.stderr)
        else:
            history = [*history, {"step": step, "validation_psnr": validate(model, pairs, 25 / 255, "cpu")}]
    return export(model, Path(out) / f"{settings.family}.npz", settings, step, state["seconds"],
                  history, _checkpoint_hardware(state, settings), _checkpoint_code(state), _origin(state),
                  state.get("images"))


def _validation_at(history: list[dict[str, float]], step: int) -> float | None:
    """The validation PSNR that ``history`` records at ``step`` (the last, if recorded twice), or ``None``."""
    measured = [h["validation_psnr"] for h in history if h["step"] == step and "validation_psnr" in h]
    return measured[-1] if measured else None


def _origin(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The records of the file a checkpoint's run started from (:func:`_initialise`; none for older checkpoints)."""
    return {key: state[key] for key in ORIGINS if state.get(key) is not None}


def _checkpoint_hardware(state: dict[str, Any], settings: Settings) -> str:
    """Where a checkpoint's run trained: its ``hardware``, or for checkpoints written before that was kept (with
    torch's ``threads`` only) the device, the architecture and torch of this machine, as the exports of then."""
    if "hardware" in state:
        return state["hardware"]
    threads = state.get("threads")
    return (f"{platform.machine()} {settings.device}, torch {torch.__version__}, "
            + (f"{threads} threads" if threads else "threads not recorded"))


def _checkpoint_code(state: dict[str, Any]) -> str:
    """The code that trained a checkpoint's run: its ``code``, or for checkpoints written before that was kept the
    code here, as the exports of then."""
    return state.get("code") or code_version()


def _not_finite(model: Denoiser, loss: torch.Tensor) -> str | None:
    """What is not finite after a training step (``loss``, then the updated parameters), or ``None``."""
    finite = torch.stack([torch.isfinite(loss), *(torch.isfinite(p).all() for p in model.parameters())]).cpu()
    if bool(finite.all()):
        return None
    return f"the loss is {loss.item()}" if not finite[0] else "a parameter is not finite after the update"


def _differences(stored: dict[str, Any], wanted: dict[str, Any]) -> str:
    """The settings of ``wanted`` that differ from ``stored``'s: ``name: stored value there, wanted value now``."""
    return "; ".join(f"{name}: {json.dumps(stored.get(name))} there, {json.dumps(value)} now"
                     for name, value in wanted.items() if stored.get(name) != value)


def _training_data(settings: Settings,
                   progress: bool) -> tuple[dict[str, np.ndarray], PatchSampler, list[tuple[Any, Any]]]:
    """The training images of ``settings.data`` by name, their patch sampler and the validation pairs, with a line
    on the images read (with ``progress``) and on the files not read, and a warning where validation images are
    training images."""
    images = read_images(settings.data, "data")
    skipped = sorted(p.name for p in Path(settings.data).iterdir() if p.suffix.lower() in UNREAD_IMAGE_SUFFIXES)
    if progress or skipped:
        plural = "s" if len(images) != 1 else ""
        print(f"adareg_train: {len(images)} training image{plural} (PNG/TIFF) in {settings.data}"
              + (f"; not read: {len(skipped)} files of other formats ({', '.join(skipped[:3])}"
                 f"{', ...' if len(skipped) > 3 else ''})" if skipped else ""), file=sys.stderr)
    sampler = PatchSampler(list(images.values()), settings.patch_size, names=list(images))
    pairs = validation_pairs(settings.validation) if settings.validation else []
    repeated = trained_on(images, settings.validation) if settings.validation else []
    if repeated:
        print(f"adareg_train: warning: {len(repeated)} of the {len(pairs)} validation images are training images "
              f"too ({', '.join(Path(path).name for path in repeated)}): the validation PSNR will measure the fit to "
              "them, not how the model denoises images it has not seen", file=sys.stderr)
    return images, sampler, pairs


def _resumed_state(checkpoint: Path, settings: Settings, images: int, fingerprint: str) -> dict[str, Any]:
    """The checkpoint's state, refused where it cannot continue this run: written with other settings, or when
    ``settings.data`` held another number of images (the batches drawn next would differ) or other ones."""
    state = _load_checkpoint(checkpoint)
    stored, wanted = _comparable(_checkpoint_settings(state, checkpoint)), _comparable(settings)
    if stored != wanted:
        raise ValueError(f"{checkpoint} was written with other settings ({_differences(stored, wanted)}): "
                         "use another --out to keep it, or --no-resume to start over, which replaces it")
    if state.get("images", images) != images:
        raise ValueError(f"{checkpoint} was written when {settings.data} held {state['images']} training images; "
                         f"it holds {images} now: restore them, or use another --out to keep the checkpoint, "
                         "or --no-resume to start over, which replaces it")
    if state.get("data_fingerprint", fingerprint) != fingerprint:  # older checkpoints have none
        raise ValueError(f"{checkpoint} was written with other training images in {settings.data} (as many, "
                         "but other names or contents): restore them, or use another --out to keep the "
                         "checkpoint, or --no-resume to start over, which replaces it")
    return state


def train(settings: Settings, out: str | os.PathLike, *, resume: bool = True, progress: bool = True,
          max_seconds: float | None = None) -> Path:
    """Train one model; return the path of its exported parameter file ``out/<family>.npz``.

    A checkpoint (model, optimizer, random state, loss history) is written every
    ``checkpoint_every`` steps to ``out/checkpoint.pt``; with ``resume`` a run
    finds it there and goes on from its step, with the same batches it would have drawn
    (the ``init`` file is not read again).  An ``out/<family>.npz`` without a checkpoint
    beside it, i.e. not from this run, is refused rather than replaced.  A step whose loss or updated parameters are not finite stops the run with a
    ``RuntimeError`` before anything is saved, so the checkpoint keeps the last good step.
    With ``progress``, a line says how many images were read, and a bar shows the steps;
    a line names the files of ``settings.data`` that are not read (:data:`adareg.io.UNREAD_IMAGE_SUFFIXES`) in any
    case.

    ``max_seconds`` bounds this call's time (e.g. a lent GPU's): after the first step that ends
    later, the run is validated, checkpointed and exported as it stands (the file's
    ``steps_done`` says how far it got), and the same call resumes it.  It is no setting of the
    run, so a resumed run may have another bound or none.
    """
    settings.check()
    settings = settings.plain()
    resume = checks.flag(resume, "resume")
    progress = checks.flag(progress, "progress")
    if max_seconds is not None:
        checks.positive(max_seconds, "max_seconds")
    began = time.perf_counter()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out {out} is a file; it must be a folder (for the checkpoint and the parameter file)")
    target = out / f"{settings.family}.npz"
    if settings.init is not None and Path(settings.init).resolve() == target.resolve():
        raise ValueError(f"init {settings.init} is the file this run exports, which would overwrite it: "
                         "use another --out, or start from a copy")
    images, sampler, pairs = _training_data(settings, progress)
    fingerprint = data_fingerprint(images)
    machine, code = hardware(settings.device), code_version()
    checkpoint = out / CHECKPOINT
    if target.exists() and not checkpoint.exists():
        raise ValueError(f"{target} exists and no checkpoint of its run is in {out}: use another --out, "
                         "or move the file away first")
    state = _resumed_state(checkpoint, settings, len(images), fingerprint) if resume and checkpoint.exists() else None
    # a resumed run takes every parameter from its checkpoint: the init file need not exist any more
    model, origin = (_model(settings), {}) if state is not None else starting_model(settings)
    out.mkdir(parents=True, exist_ok=True)  # once the start is good: a refused --init leaves no empty folder
    optimizer = adam(model, settings)
    generator = torch.Generator().manual_seed(settings.seed)
    step, seconds, history, saved = 0, 0.0, [], None
    if state is not None:
        _restore(model, state["model"], checkpoint)
        if state.get("norm_vector") is not None:  # the ridges' warm start of ||W||: its tolerance leaves it in
            model.norm_vector = state["norm_vector"].to(settings.device)
        scales = [group["lr_scale"] for group in optimizer.param_groups]
        _restore(optimizer, state["optimizer"], checkpoint)  # its groups' settings replace these (older: no lr_scale)
        for group, scale in zip(optimizer.param_groups, scales):
            group["lr_scale"] = scale
        generator.set_state(state["generator"])
        step, seconds, history = state["step"], state["seconds"], state["history"]
        origin = _origin(state)
        saved = step
        # a finished run's export again: no step runs here
        before, code_before = _checkpoint_hardware(state, settings), _checkpoint_code(state)
        machine = resumed_record(before, machine, step) if step < settings.steps else before
        code = resumed_record(code_before, code, step) if step < settings.steps else code_before

    bar = tqdm(total=settings.steps, initial=step, disable=not progress, desc=f"train {settings.family}")
    while step < settings.steps:
        start = time.perf_counter()
        values = training_step(model, optimizer, sampler, generator, settings, learning_rate(settings, step))
        step += 1
        seconds += time.perf_counter() - start
        problem = _not_finite(model, values["loss"])
        if problem is not None:
            bar.close()
            raise RuntimeError(f"training diverged at step {step}: {problem}; the run stopped without saving it"
                               + (f" ({checkpoint} keeps step {saved})" if saved is not None else "")
                               + f"; try a lower --lr than {settings.lr:g}")
        record = {"step": step, **{name: value.item() for name, value in values.items()}}
        last = step == settings.steps or (max_seconds is not None and time.perf_counter() - began >= max_seconds)
        if pairs and (step % settings.validate_every == 0 or last):
            record["validation_psnr"] = validate(model, pairs, 25 / 255, settings.device)
        history.append(record)
        bar.update()
        bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "step"}, refresh=False)
        if step % settings.checkpoint_every == 0 or last:
            _save_checkpoint(checkpoint, {"settings": dataclasses.asdict(settings), "model": model.state_dict(),
                                          "optimizer": optimizer.state_dict(), "generator": generator.get_state(),
                                          "step": step, "seconds": seconds, "history": history,
                                          "hardware": machine, "code": code, **origin,
                                          "images": len(images), "data_fingerprint": fingerprint,
                                          "norm_vector": getattr(model, "norm_vector", None)})
            saved = step
        if last:
            break
    bar.close()
    if step < settings.steps:
        print(f"adareg_train: stopped after step {step} of {settings.steps} at the time limit "
              f"({max_seconds:g} s); the same command resumes the run", file=sys.stderr)
    return export(model, target, settings, step, seconds, history, machine, code, origin, len(images))
