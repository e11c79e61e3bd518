"""Regularizers ``R(x)``: the interface the solvers use, the classical ones, and the learned families.

Classical: :class:`TV` and :class:`WeightedL1Analysis` (exact dual prox).  Learned
(parameters from :func:`adareg.load`): :class:`Ridge` (``crr``, ``wcrr``; smooth),
:class:`SAB` (``sa-b``) and :class:`SACNN` (``sa-cnn``), the spatially adaptive
ones solved by reweighting; their building blocks :class:`FilterBank`,
:class:`LinearSpline`, :class:`MaskCNN` and :class:`SigmaProfile`.
"""

from .adaptive import SAB, SACNN, AdaptiveRegularizer
from .analysis import DualBall, DualState, WeightedL1Analysis
from .base import ProxResult, Regularizer, Reweighted
from .filterbank import FilterBank
from .learned import LearnedRegularizer, SigmaProfile
from .masks import MaskCNN
from .ridge import Ridge
from .splines import LinearSpline
from .tv import TV

__all__ = [
    "Regularizer", "ProxResult", "Reweighted", "WeightedL1Analysis", "DualState", "DualBall", "TV",
    "LearnedRegularizer", "AdaptiveRegularizer", "Ridge", "SAB", "SACNN",
    "FilterBank", "LinearSpline", "MaskCNN", "SigmaProfile",
]
