"""Solvers: FISTA, L-BFGS, PD3O, conjugate gradients, the reweighting loop, results and histories.

The stopping rules they share live in :mod:`adareg.stopping` and are re-exported here.
"""

from .cg import conjugate_gradient
from .fista import fista
from .lbfgs import lbfgs
from .result import History, Result
from .reweighting import reweighting
from ..stopping import AnyOf, Defaults, MaxIterations, Progress, RelativeChange, Residual, StoppingRule, WallTime

__all__ = [
    "fista", "lbfgs", "conjugate_gradient", "reweighting", "Result", "History",
    "StoppingRule", "MaxIterations", "RelativeChange", "Residual", "WallTime", "AnyOf", "Progress", "Defaults",
]
