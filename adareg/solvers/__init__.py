"""Solvers: FISTA, L-BFGS, PD3O, conjugate gradients, the reweighting loop, results and histories.

The stopping rules they share live in :mod:`adareg.stopping` and are re-exported here.
PD3O is the module :mod:`adareg.solvers.primal_dual` (its function ``primal_dual`` is not
re-exported, so that the module keeps its name here).
"""

from . import primal_dual
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
