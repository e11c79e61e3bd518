"""Solvers: FISTA (forward-backward splitting), L-BFGS, conjugate gradients, stopping rules, results and histories."""

from .cg import conjugate_gradient
from .fista import fista
from .lbfgs import lbfgs
from .result import History, Result
from .reweighting import reweighting
from .stopping import AnyOf, MaxIterations, Progress, RelativeChange, StoppingRule, WallTime

__all__ = [
    "fista", "lbfgs", "conjugate_gradient", "reweighting", "Result", "History",
    "StoppingRule", "MaxIterations", "RelativeChange", "WallTime", "AnyOf", "Progress",
]
