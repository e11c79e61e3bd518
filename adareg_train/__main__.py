"""Command line: ``python -m adareg_train train --family sa-cnn --data ../shared/data/bsd400 --out runs/sa-cnn``."""

from __future__ import annotations

import argparse
import copy
import json
import sys
from typing import TYPE_CHECKING

from adareg import checks

from .families import GRADIENTS, MODELS, families_with

if TYPE_CHECKING:
    from .train import Settings


def _gradient_help() -> str:
    """The ``--gradient`` help: which families support each method, and each family's default."""
    defaults = ", ".join(f"{family} {cls.gradients[0]}" for family, cls in sorted(MODELS.items()))
    return (f"differentiation through the fixed point: implicit ({', '.join(families_with('implicit'))}), the "
            f"phantom gradient ({', '.join(families_with('phantom'))}: --phantom-steps map steps with a graph) or "
            f"Jacobian-free backpropagation ({', '.join(families_with('jfb'))}: one map step); default: {defaults}")


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m adareg_train", description=__doc__)
    commands = main.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train one family for Gaussian denoising and export it",
                                description="Train one model for every sigma in [0, 30]/255 on patches of a folder "
                                            "of grey images; checkpoints and the exported parameter file "
                                            "(OUT/FAMILY.npz, loadable with adareg.load) go to OUT.")
    train.add_argument("--family", required=True, choices=sorted(MODELS))
    train.add_argument("--data", required=True, help="folder of training images (PNG/TIFF, grey)")
    train.add_argument("--out", required=True, help="folder for the checkpoint and the parameter file")
    train.add_argument("--steps", type=int, default=2000, help="Adam steps (default 2000)")
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--patch-size", type=int, default=40)
    train.add_argument("--lr", type=float, default=2e-3,
                       help="learning rate (halved at 60%% and 80%% of the steps, or see --decay-every)")
    train.add_argument("--group-lr", action="append", metavar="GROUP=LR",
                       help="learning rate of one parameter group (repeatable), e.g. bank=5e-3 or profile=5e-5; "
                            "0 freezes the group; an unknown name lists the family's groups")
    train.add_argument("--decay-every", type=int,
                       help="multiply the learning rates by --decay-factor every so many steps (WCRR-NN: 500)")
    train.add_argument("--decay-factor", type=float, help="the factor of --decay-every (default 0.75)")
    train.add_argument("--loss", choices=("mse", "l1"), default="mse",
                       help="mean squared error (default) or mean absolute error (WCRR-NN's) of the denoised patches")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    train.add_argument("--validation", help="folder of validation images (e.g. ../shared/data/set12)")
    train.add_argument("--validate-every", type=int, help="steps between validations (default 100)")
    train.add_argument("--checkpoint-every", type=int, default=50)
    train.add_argument("--init", help="parameter file to start from: every parameter if it is of the same family and "
                            "architecture (fine-tuning), else its filter bank (same bank layout)")
    train.add_argument("--architecture", action="append", metavar="KEY=JSON",
                       help="one entry of the family's architecture changed from its default (repeatable), the value "
                            "in JSON, e.g. bank_channels=[4,8,80] or profile_knots=101; an unknown key lists the "
                            "family's")
    train.add_argument("--gradient", choices=GRADIENTS, help=_gradient_help())
    train.add_argument("--phantom-steps", type=int,
                       help="fixed-point map steps differentiated by the phantom gradient (default 5)")
    train.add_argument("--contraction", type=float, default=0.0,
                       help="weight of the contraction penalty (sa-b, sa-cnn): the mean of max(0, bound - target)^2, "
                            "the bound on the Jacobian of the reweighting map at each patch's fixed point "
                            "(default 0: none)")
    train.add_argument("--contraction-target", type=float,
                       help="the bound the penalty aims below (default 0.9)")
    train.add_argument("--contraction-iterations", type=int,
                       help="power iterations of the bound's estimate per step (default 5)")
    train.add_argument("--no-resume", action="store_true", help="start afresh even if OUT holds a checkpoint "
                       "(which the first save of the new run replaces)")
    train.add_argument("--max-minutes", type=float,
                       help="stop after the step that ends past this many minutes (e.g. a lent GPU's time), "
                            "checkpoint and export the run as it stands; the same command resumes it")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    export = commands.add_parser("export", help="export the model of a run's checkpoint",
                                 description="Write OUT/FAMILY.npz from OUT/checkpoint.pt, e.g. for a run "
                                             "stopped before its last step (its metadata records the steps done).")
    export.add_argument("--out", required=True, help="the run's folder")
    return main


#: The options whose default is the Settings' (argparse's default None): refused where they have no effect if given.
OPTIONAL = ("validate_every", "phantom_steps", "contraction_target", "contraction_iterations", "decay_every",
            "decay_factor")


def group_rates(pairs: list[str] | None) -> dict[str, float] | None:
    """``--group-lr`` values (``NAME=LR``) as a dict, or a ``ValueError`` naming the one that is not of that form."""
    if not pairs:
        return None
    rates = {}
    for pair in pairs:
        name, _, rate = pair.partition("=")
        try:
            value = float(rate)
        except ValueError:
            raise ValueError(f"--group-lr takes GROUP=LR, e.g. bank=5e-3, got {pair!r}") from None
        if name.strip() in rates:  # the last would silently win
            raise ValueError(f"--group-lr gives group {name.strip()!r} twice ({rates[name.strip()]:g} and {value:g})")
        rates[name.strip()] = value
    return rates


def architecture(family: str, pairs: list[str] | None) -> dict | None:
    """The family's default architecture with ``--architecture`` entries (``KEY=JSON``) in place, or ``None``
    (the default) without any; a ``ValueError`` names an entry that is not of that form or not the family's."""
    if not pairs:
        return None
    default = MODELS[family].default_architecture
    changed: dict = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        key = key.strip()
        if key not in default:
            raise ValueError(f"--architecture {pair!r}: {family} has no entry {key!r}; its entries are "
                             f"{', '.join(sorted(default))}")
        if key in changed:  # the last would silently win
            raise ValueError(f"--architecture gives {key!r} twice")
        try:
            changed[key] = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(f"--architecture takes KEY=JSON, e.g. bank_channels=[4,8,80], got {pair!r}") from None
    return {**copy.deepcopy(default), **changed}  # (the class's lists stay untouched)


def checked_settings(args: argparse.Namespace) -> Settings:
    """The run's settings from the ``train`` command's arguments, checked (:meth:`Settings.check`: an option
    given without effect is refused too)."""
    from .train import Settings

    given = {name: getattr(args, name) for name in OPTIONAL if getattr(args, name) is not None}
    settings = Settings(family=args.family, data=args.data, steps=args.steps, batch_size=args.batch_size,
                        patch_size=args.patch_size, lr=args.lr, seed=args.seed, device=args.device, dtype=args.dtype,
                        validation=args.validation, checkpoint_every=args.checkpoint_every, init=args.init,
                        gradient=args.gradient, contraction=args.contraction, loss=args.loss,
                        group_lr=group_rates(args.group_lr), architecture=architecture(args.family, args.architecture),
                        **given)
    settings.check(given)
    return settings


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from .train import export_checkpoint, train  # torch is imported only once the arguments are fine

    if args.command == "export":
        try:
            print(f"wrote {export_checkpoint(args.out)}")
        except (ValueError, OSError) as err:
            print(f"adareg_train: error: {err}", file=sys.stderr)
            return 2
        return 0
    try:
        settings = checked_settings(args)
        max_seconds = None if args.max_minutes is None else 60 * checks.positive(args.max_minutes, "--max-minutes")
        path = train(settings, args.out, resume=not args.no_resume, progress=not args.quiet, max_seconds=max_seconds)
    except (ValueError, OSError, RuntimeError) as err:
        print(f"adareg_train: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
