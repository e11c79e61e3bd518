"""Solvers: FISTA (forward-backward splitting), stopping rules, results and histories."""

from .fista import fista
from .result import History, Result
from .stopping import AnyOf, MaxIterations, Progress, RelativeChange, StoppingRule, WallTime

__all__ = [
    "fista", "Result", "History",
    "StoppingRule", "MaxIterations", "RelativeChange", "WallTime", "AnyOf", "Progress",
]
