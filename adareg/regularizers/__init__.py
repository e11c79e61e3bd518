"""Regularizers ``R(x)``: the interface the solvers use and the families built on it."""

from .analysis import WeightedL1Analysis
from .base import ProxResult, Regularizer
from .tv import TV

__all__ = ["Regularizer", "ProxResult", "WeightedL1Analysis", "TV"]
