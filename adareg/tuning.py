r"""``adareg.tune``: choose :math:`\lambda` (and a learned model's :math:`\sigma`) on calibration images.

For CT and MRI the regularizers trained on Gaussian denoising are reused as they
are; what changes with the forward operator is the regularisation weight
:math:`\lambda` and the noise level :math:`\sigma` handed to the model.  Both are
chosen, as in the reference works, by a coarse-to-fine grid search that
maximises the mean PSNR of the reconstructions of a few calibration pairs
(measurements ``y_i`` with ground truths ``x_i``):

.. math::

    (\lambda^*, \sigma^*) = \arg\max_{\lambda, \sigma} \frac1n \sum_{i=1}^n
        \mathrm{PSNR}\big(\hat x(y_i; \lambda, \sigma), x_i\big),
    \qquad \hat x(y; \lambda, \sigma) = \texttt{adareg.solve}(H, y, R, \lambda, \sigma).
"""

from __future__ import annotations

import inspect
import math
import numbers
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from . import backend, checks, thread_warnings
from .backend import Array
from .diagnostics import intensity_mismatch
from .functionals import check_weights
from .metrics import psnr as _psnr
from .operators.base import LinearOperator, check_operator
from .operators.basic import Diagonal
from .reconstruction import CONTROL_CHECKS, solve
from .regularizers.base import Regularizer
from .regularizers.learned import LearnedRegularizer
from .solvers.result import History, Result
from .stopping import check_callback, stops

#: Default search range of lam for classical regularizers, in decades around the
#: reference scale rms(H^H y), and for learned ones around ||H||^2 lambda(sigma).
_CLASSICAL_DECADES = (-4.0, 0.0)
_LEARNED_DECADES = (-2.0, 2.0)

#: A zero lower end of a noise-level range is replaced by ``high / _SIGMA_SPAN`` (log-space search).
_SIGMA_SPAN = 30.0

#: The beginnings of the warnings about a candidate's image that :func:`tune` does not tell: a far candidate may
#: give an image that spans widely or is faint, and its score says so.
CANDIDATE_IMAGE_WARNINGS = ("solve: the reconstruction", "psnr: x spans")

#: A line of candidates whose PSNRs differ by at most this, relative to the PSNR (dB), is a plateau: they gave the
#: same image, up to rounding, so that the variable had no effect there.
FLAT_PSNR = 1e-9

#: The keywords that :func:`adareg.solve` takes, which ``solve_options`` may hold.
_SOLVE_KEYWORDS = frozenset(inspect.signature(solve).parameters) - {"H", "y", "reg"}

#: The options of :func:`adareg.solve` that ``tune`` sets itself.
_RESERVED_OPTIONS = {
    "lam": "lam is what tune searches (fix it with tune's lam=...)",
    "sigma": "sigma is set by tune (fix it with tune's sigma=...)",
    "x0": "a starting point differs between calibration pairs",
}


@dataclass
class Tuning:
    """Outcome of :func:`~adareg.tune`.

    Attributes
    ----------
    lam
        The best regularisation weight found.
    sigma
        The best noise level for a learned regularizer; ``None`` for a classical one
        (so that ``adareg.solve(H, y, reg, lam=t.lam, sigma=t.sigma)`` works for both).
    psnr
        Mean PSNR (dB) over the calibration pairs at ``(lam, sigma)``.
    table
        Every evaluation in the order made: columns ``lam, sigma, psnr,
        iterations, cut, converged, seconds`` (``sigma`` NaN for classical
        regularizers; ``iterations`` the most any pair's solve took; ``cut`` 1 where
        the row's PSNR is that of solves ``patience`` cut short, else 0 (a cut
        candidate that still scored above the best was solved again in full, and its
        row is that full solve's); ``converged`` 1 where every pair's solve met its
        tolerance, else 0 (a cut solve has not); ``seconds`` spent on that
        evaluation's solves, a full solve after a cut included).
    """

    lam: float
    sigma: float | None
    psnr: float
    table: History = field(repr=False)


def tune(H: LinearOperator, ys: Sequence[Array] | Array, xs: Sequence[Array] | Array,
         reg: Regularizer | LearnedRegularizer, *, lam: float | None = None, sigma: float | None = None,
         lam_range: tuple[float, float] | None = None, sigma_range: tuple[float, float] | None = None,
         start: Mapping[str, float] | None = None, levels: int = 3, points: int = 7, data_range: float = 1.0,
         solve_options: dict[str, Any] | None = None, patience: float | None = None, progress: bool = False) -> Tuning:
    r"""Choose ``lam`` (and, for a learned regularizer, ``sigma``) maximising the mean PSNR on calibration pairs.

    Every candidate is evaluated by reconstructing each calibration measurement
    with ``adareg.solve(H, y_i, reg, lam=lam, sigma=sigma, **solve_options)``
    and averaging ``adareg.psnr(x_hat_i, x_i, data_range)``.  No solve is
    warm-started, so the reported PSNR is exactly what :func:`~adareg.solve` gives
    at the returned values.

    **Patience.**  Candidates far from the best are often the slowest to solve
    (an adaptive model at ten times its best ``lam`` may run to its step cap,
    with ever longer steps), and their PSNR only has to lose.  With ``patience``
    set, the solves of a candidate stop at the first iteration (or reweighting
    step) that ends after ``patience * s_i`` seconds, ``s_i`` the seconds the
    best candidate so far took on pair ``i``; a candidate so cut is scored by
    its PSNR at the cut, and one that still scores above the best is solved
    again in full before it may win.  So the returned values and PSNR are always
    those of full solves, and the search can differ from the exact one only
    where a candidate that needs more than ``patience`` times the best's time
    would, solved in full, have won.  The cuts are measured in seconds rather
    than iterations because the steps of an adaptive model differ in cost (their
    prox budgets grow); the price is that which losing candidates are cut, and
    where, depends on the machine's speed at the time.  The first candidate of
    every line is the current best, then the others by their distance from it,
    so that the first caps come from near the best.

    **Search.**  The searched variables (``lam`` unless fixed; ``sigma`` for a
    learned regularizer unless fixed) are handled in ``log10`` space, one at a
    time (coordinate search, ``lam`` first).  With ``m = (points - 1) / 2``:

    * level 0 evaluates ``points`` log-spaced values over each variable's range,
      the others held at their current best (initially the centre of their range,
      or ``start``), and the current best itself where ``start`` put it off that grid;
    * each further level evaluates ``points`` values spaced by the previous
      spacing divided by ``m + 1``, centred on the current best, so they fill the
      interval between the previous best's neighbours (final resolution: the
      range's width / ``(points - 1) (m + 1)^(levels - 1)``; by default
      ``10**(4 / 96)``, a factor 1.10 in ``lam``);
    * when the best value of a line lies at its end, the line is extended a step
      at a time while that improves the PSNR (at most ``points - 1`` steps),
      inside the range where the range is a hard limit: always for ``sigma``
      (the model is trained on its range) and for ``lam`` when ``lam_range`` is
      given.  The default ``lam`` range is only a first guess and may be left
      (a best ``lam`` that is the largest or smallest evaluated, the extensions
      having ended with the PSNR still rising, is warned about).  Ties keep the
      current best, so a line on which every candidate scores the same (a
      plateau, e.g. a ``lam`` so large that each image is flat) stays where it
      started, and is warned about (``adareg.tuning.FLAT_PSNR``);
    * for two variables, which trade along a ridge (a larger ``sigma`` wants a
      smaller ``lam``), the last level's final ``sigma`` line can leave ``lam``
      far from its best at the new ``sigma``.  Rounds follow: the finest lines
      through the best point, ``lam``'s then ``sigma``'s, then the round's move
      repeated while it improves the PSNR and stays inside the ranges, or inside
      the span a line extended the default ``lam`` range by (a pattern search
      along the ridge, at most ``(m + 1)^(levels - 1)`` times, the finest steps in
      a level-0 spacing), until a round moves neither (at most ``points``
      rounds); a search that ends so, not by that cap, has no neighbour along
      either axis at the final resolution that scores higher (a diagonal one may).

    Without extensions and final rounds this makes at most
    ``levels * (points - 1) + 1`` evaluations for one variable and
    ``2 * levels * (points - 1) + 1`` for two (19 and 37 by default; fewer where a
    hard limit cuts a line, one more per variable that ``start`` puts off the
    level-0 grid), each of ``len(ys)`` solves; a final round adds up to two per
    variable (more where a line is extended), and each repeated move one.  The
    PSNR is a smooth, unimodal-looking function of ``log lam`` in practice, but the
    search is a local one: it finds the maximum only if the level-0 grid brackets it.

    Parameters
    ----------
    H
        Forward operator.
    ys
        Calibration measurements: a sequence of arrays of shape ``H.shape_out``,
        or one array of shape ``(n, *H.shape_out)`` (or ``H.shape_out`` for a
        single pair).
    xs
        Ground truths, as ``ys`` with ``H.shape_in`` and the same number of pairs;
        real images.  A constant one (a blank slice) is warned about: its PSNR has
        no upper bound, so it could decide the mean alone.
    reg
        A classical regularizer (e.g. :class:`~adareg.regularizers.TV`) or a
        learned one (``adareg.load("sa-cnn")``, ...).
    lam
        Fix ``lam`` (a positive number) instead of searching it.
    sigma
        Fix the model's noise level instead of searching it (learned
        regularizers only; must lie in ``reg.sigma_range``).
    lam_range
        ``(low, high)``, ``0 < low <= high``: the level-0 range of ``lam``, and a
        hard limit (a best ``lam`` at one of its ends is warned about: the best
        value may lie beyond it).  Default: for classical regularizers
        ``s * [1e-4, 1]`` with ``s = mean_i ||H^H (w y_i)|| / sqrt(N)`` (the RMS of
        the weighted back-projections; for ``H = c I`` it is ``w c^2`` times the
        image's RMS, and the optimal weight of a 1-homogeneous regularizer scales
        the same way); for learned ones ``||w^(1/2) H||^2 lambda(sigma_0) * [1e-2, 1e2]``,
        with ``lambda`` the trained weight for denoising and ``sigma_0`` the fixed
        ``sigma`` or the centre of the ``sigma`` range (the RMS rule where that
        weight is 0).  ``w`` are the data weights in ``solve_options`` (1 without;
        each pair's, and the first pair's for learned ones, where they differ), so
        that multiplying them by a constant multiplies the range by it too.
        With ``start["lam"]`` the default range is that many decades centred on it.
    sigma_range
        ``(low, high)`` inside ``reg.sigma_range``: the range of ``sigma``
        (default: ``reg.sigma_range``).  A zero ``low`` is replaced by
        ``high / 30`` (1/255 for the usual [0, 30]/255), since the search is in
        log-space; a best ``sigma`` at that stand-in end is warned about (a lower
        one may be better: give a positive lower end below it), as is one at an
        end of a given range short of the trained range's.
    start
        A first guess of the searched values, e.g. weights tuned for a
        neighbouring acquisition (``adareg.presets.preset(...)``): ``{"lam": ...,
        "sigma": ...}``, either key optional, each a searched variable; a value
        inside its range, moved to the nearest point of the search's finest
        grid (for ``lam`` a factor 1.10 apart by default).  The search starts
        from it, so that its first candidate is a good one and ``patience``
        cuts the far ones early; as the search is local, it may also end at
        another local maximum than a search from the centre.  Default: the
        centre of each range.
    levels
        Number of grid levels (>= 1).
    points
        Grid points per level and variable; odd, >= 3.
    data_range
        Intensity range for the PSNR.
    solve_options
        Further keyword arguments of :func:`adareg.solve` (``tol``, ``max_iter``,
        ``bounds``, ``weights``, ...); not ``lam``, ``sigma`` or ``x0``.  ``weights``
        are one set for every pair, or one per pair: a list of ``len(ys)`` arrays
        or numbers, or an array stacked on a first axis of that length (e.g. the
        Poisson weights of each calibration scan).
    patience
        ``None`` (default: every solve in full, the exact search) or a number
        >= 1: cut the solves of a candidate at that many times the seconds
        of the best so far (see above).
    progress
        Show a progress bar over the evaluations.

    Returns
    -------
    Tuning
        ``lam``, ``sigma`` (``None`` for classical regularizers), the mean
        ``psnr`` there, and the ``table`` of all evaluations.  With both ``lam``
        and ``sigma`` fixed, the single point is evaluated.  A warning says when
        the solves of the chosen values did not all converge (``solve_options``'
        ``max_iter`` or ``max_time`` ended them), and when a chosen value is an end
        of what the search could reach (above), short of the model's trained
        ``sigma`` range.

    Notes
    -----
    The warnings that the candidates' solves raise are recorded (in this thread only:
    :mod:`adareg.thread_warnings`) and told once each when the search ends, but for
    two about a candidate's image (``"solve: the reconstruction ..."`` and ``"psnr: x
    spans ..."``: a far candidate may give such an image, and its score says so).

    Examples
    --------
    >>> t = adareg.tune(H, ys, xs, adareg.load("sa-cnn"))          # doctest: +SKIP
    >>> x = adareg.solve(H, y, reg, lam=t.lam, sigma=t.sigma).x    # doctest: +SKIP
    """
    check_operator(H, "tune")
    if not isinstance(reg, (Regularizer, LearnedRegularizer)):
        raise TypeError(f"tune: reg must be a Regularizer, got {type(reg).__name__}")
    pairs = _calibration_pairs(H, ys, xs)
    for i, (_, x) in enumerate(pairs):
        xp = backend.namespace(x)
        if bool(xp.all(x == x.reshape(-1)[0])):
            warnings.warn(f"tune: xs[{i}] is constant: the PSNR of its reconstructions has no upper bound (one "
                          "equal to it scores inf), so this pair can decide the mean PSNR alone; leave it out",
                          stacklevel=2)
    if isinstance(reg, LearnedRegularizer):  # the candidates' reconstructions take the truths' scale
        for i, (_, x) in enumerate(pairs):
            mismatch = intensity_mismatch(reg, x, len(H.shape_in))
            if mismatch is not None:
                warnings.warn(f"tune: xs[{i}] {mismatch}: put ys and xs on that scale", stacklevel=2)
    levels = checks.count(levels, "tune: levels")
    points = checks.count(points, "tune: points")
    if not (points >= 3 and points % 2 == 1):
        raise ValueError(f"tune: points must be an odd integer >= 3 (each grid is centred on the best point), "
                         f"got {points!r}")
    data_range = checks.positive(data_range, "tune: data_range")
    progress = checks.flag(progress, "tune: progress")
    options = _check_solve_options(solve_options)
    patience = _check_patience(patience)
    start = _check_start(start, lam, sigma, reg)
    weights = _pair_weights(options.pop("weights", None), pairs)
    fixed, axes = _search_axes(H, pairs, reg, lam, sigma, lam_range, sigma_range, weights, start.get("lam"))
    for name in start.keys() - {axis.name for axis in axes}:
        raise ValueError(f"tune: start[{name!r}] is given, but {name} is not searched (its range is a single value)")
    candidate = _Candidate(H, pairs, weights, reg, options, data_range)

    table = History("lam", "sigma", "psnr", "iterations", "cut", "converged", "seconds")
    bar = tqdm(disable=not progress, desc="tune", unit="evaluation")
    # the best candidate solved in full: its PSNR and seconds per pair (patience's caps)
    best: dict[str, Any] = {"psnr": -math.inf, "seconds": None}
    evaluate = _evaluator(candidate, fixed, patience, table, bar, best)
    notes: list[thread_warnings.Note] = []
    try:
        with thread_warnings.recording() as notes:
            chosen, score = _coordinate_search(evaluate, axes, levels=levels, points=points, start=start)
    finally:  # also where the search failed
        bar.close()
        # a warning about the data, the same for every candidate, is told once
        for category, message in dict.fromkeys(notes):
            if not message.startswith(CANDIDATE_IMAGE_WARNINGS):
                warnings.warn(message, category, stacklevel=2)
    _warn_about_the_choice(chosen, axes, table)
    return Tuning(lam=chosen.get("lam", fixed["lam"]), sigma=chosen.get("sigma", fixed["sigma"]), psnr=score,
                  table=table)


def _evaluator(candidate: _Candidate, fixed: dict[str, Any], patience: float | None, table: History, bar: tqdm,
               best: dict[str, Any]) -> Callable[[dict[str, float]], float]:
    """The objective of the search: the mean PSNR of a candidate, its searched values by name (the others
    ``fixed``), each evaluation a row of ``table`` and a tick of ``bar``.

    With ``patience``, a candidate's solves are cut at ``patience`` times the seconds per pair of ``best`` (the best
    candidate solved in full: its ``psnr`` and ``seconds`` per pair, updated
    in place), and a cut candidate that scores above ``best`` is solved again in full before it may win.
    """

    def evaluate(values: dict[str, float]) -> float:
        lam_k, sigma_k = (values.get(name, fixed[name]) for name in ("lam", "sigma"))
        start = time.perf_counter()
        caps = None
        if patience is not None and best["seconds"] is not None:
            caps = [patience * s for s in best["seconds"]]
        mean, iterations, seconds, cut, converged = candidate.score(lam_k, sigma_k, caps)
        if cut and mean > best["psnr"]:  # it may win: solve it in full first
            mean, iterations, seconds, cut, converged = candidate.score(lam_k, sigma_k, None)
        if mean > best["psnr"]:
            best.update(psnr=mean, seconds=seconds)
        table.append(lam=lam_k, sigma=math.nan if sigma_k is None else sigma_k, psnr=mean,
                     iterations=max(iterations), cut=float(cut), converged=float(converged),
                     seconds=time.perf_counter() - start)
        bar.update()
        bar.set_postfix(lam=f"{lam_k:.3g}", psnr=f"{mean:.2f}", refresh=False)
        return mean

    return evaluate


def _warn_about_the_choice(chosen: dict[str, float], axes: list[_Axis], table: History) -> None:
    """Warn (pointing at :func:`tune`'s caller) where a ``chosen`` value is an end of what the search could
    reach short of the variable's own limits (the model's trained ``sigma`` range), so that the best value may lie
    beyond it; where the PSNR did not change along a searched variable's line (a plateau: every candidate gave
    the same image, so the choice is arbitrary); and where the solves of the chosen values did not all converge.

    The ends: those of a given ``lam_range``; on the default (soft) ``lam`` range, the largest or smallest ``lam``
    evaluated (its lines stopped extending with the PSNR still rising); ``high / 30``, which stands in for a
    ``sigma`` range's lower end 0; and a given ``sigma_range``'s ends inside the trained range.
    """
    full = table["cut"] == 0  # rows of candidates solved in full
    for axis in axes:
        value = chosen[axis.name]
        line = full & np.all([table[name] == chosen[name] for name in chosen if name != axis.name], axis=0)
        values, scores = table[axis.name][line], table["psnr"][line]
        if np.unique(values).size >= 3 and np.ptp(scores) <= FLAT_PSNR * max(1.0, float(np.max(np.abs(scores)))):
            warnings.warn(f"tune: the PSNR is the same for every {axis.name} evaluated along the chosen line, "
                          f"[{values.min():g}, {values.max():g}] ({float(scores[0]):.4g} dB): there {axis.name} has "
                          f"no effect (every candidate gave the same image, e.g. flattened by too large a lam), so "
                          f"the choice is arbitrary; give {axis.name}_range or start where it matters", stacklevel=3)
        elif axis.name == "lam" and axis.hard and value in (axis.low, axis.high):
            warnings.warn(f"tune: the best lam, {value:g}, is an end of lam_range [{axis.low:g}, "
                          f"{axis.high:g}]: the best value may lie beyond it; widen lam_range", stacklevel=3)
        elif axis.name == "lam" and not axis.hard and value in (table["lam"].min(), table["lam"].max()):
            side = "largest" if value == table["lam"].max() else "smallest"
            warnings.warn(f"tune: the best lam, {value:g}, is the {side} the search evaluated (it stopped extending "
                          f"the default range [{axis.low:g}, {axis.high:g}] before the PSNR fell): the best value "
                          "may lie beyond it; give lam_range or start around it", stacklevel=3)
        elif axis.name == "sigma" and axis.stand_in_low and value == axis.low:
            warnings.warn(f"tune: the best sigma, {value:g} ({value * 255:.3g}/255), is the lowest the search "
                          f"evaluates: it stands in for the range's lower end 0, which a search in log-space cannot "
                          f"reach, so a lower sigma may be better; give sigma_range a positive lower end below it",
                          stacklevel=3)
        elif axis.name == "sigma" and (value == axis.low > axis.limits[0] or value == axis.high < axis.limits[1]):
            warnings.warn(f"tune: the best sigma, {value:g} ({value * 255:.3g}/255), is an end of sigma_range "
                          f"[{axis.low:g}, {axis.high:g}], inside the model's trained range [{axis.limits[0]:g}, "
                          f"{axis.limits[1]:g}]: the best value may lie beyond it; widen sigma_range", stacklevel=3)
    chosen_rows = full & np.all([table[name] == value for name, value in chosen.items()], axis=0)
    if not np.all(table["converged"][chosen_rows][-1:]):  # the last full solve of the chosen values
        warnings.warn("tune: the solves of the chosen values did not all converge (their max_iter or max_time "
                      "ended them first): the PSNR is that of unconverged reconstructions; give solve_options a "
                      "larger max_iter to choose on converged ones", stacklevel=3)


class _Candidate:
    """The mean PSNR of one ``(lam, sigma)`` over the calibration pairs, each solve optionally cut short."""

    def __init__(self, H: LinearOperator, pairs: list[tuple[Array, Array]], weights: list[Array | None],
                 reg: Regularizer | LearnedRegularizer, options: dict[str, Any], data_range: float):
        self.H, self.pairs, self.weights, self.reg, self.data_range = H, pairs, weights, reg, data_range
        # the caller's, called before the cut (checked now: it would fail only inside the first solve)
        self.callback = check_callback(options.pop("callback", None), "tune: solve_options['callback']")
        self.options = options

    def score(self, lam: float, sigma: float | None,
              caps: list[float] | None) -> tuple[float, list[int], list[float], bool, bool]:
        """``(mean PSNR, iterations and seconds per pair, whether a solve was cut, whether all converged)``.

        ``caps``: seconds per pair.
        """
        total, iterations, seconds, cut, converged = 0.0, [], [], False, True
        for i, (y, x) in enumerate(self.pairs):
            start = time.perf_counter()
            result, stopped = self._solve(i, lam, sigma, None if caps is None else caps[i])
            seconds.append(time.perf_counter() - start)
            total += _psnr(result.x, x, self.data_range)
            iterations.append(result.iterations)
            cut, converged = cut or stopped, converged and result.converged
        return total / len(self.pairs), iterations, seconds, cut, converged

    def _solve(self, i: int, lam: float, sigma: float | None, cap: float | None) -> tuple[Result, bool]:
        """``adareg.solve`` of pair ``i`` stopped after ``cap`` seconds (``None``: in full), and whether the cap
        stopped it."""
        stopped = []
        start = time.perf_counter()

        def callback(k: int, x_k: Array) -> bool:
            if self.callback is not None and stops(self.callback(k, x_k)):
                return True
            if cap is not None and time.perf_counter() - start >= cap:
                stopped.append(k)
                return True
            return False

        result = solve(self.H, self.pairs[i][0], self.reg, lam=lam, sigma=sigma, weights=self.weights[i],
                       callback=callback, **self.options)
        return result, bool(stopped)


def _search_axes(H: LinearOperator, pairs: list[tuple[Array, Array]], reg: Regularizer | LearnedRegularizer,
                 lam: Any, sigma: Any, lam_range: Any, sigma_range: Any, weights: list[Array | None],
                 lam_start: float | None) -> tuple[dict[str, Any], list[_Axis]]:
    """The fixed values (``{"lam": ..., "sigma": ...}``, ``None`` where searched) and the searched axes, ``lam`` first.

    ``weights``: the data weights of each pair's solves (:func:`_pair_weights`), which scale the default ``lam``
    range;
    ``lam_start``: the first guess of ``lam`` that the default range is centred on, if any.
    """
    if not isinstance(reg, LearnedRegularizer) and (sigma is not None or sigma_range is not None):
        raise ValueError(f"tune: sigma is a parameter of learned regularizers only; {type(reg).__name__} has none")
    if lam is not None:
        lam = checks.positive(lam, "tune: lam")
        if lam_range is not None:
            raise ValueError("tune: give lam (fixed) or lam_range (searched), not both")
    axes: list[_Axis] = []
    if isinstance(reg, LearnedRegularizer):
        sigma, axis = _sigma_axis(reg, sigma, sigma_range)
        axes += [axis] if axis is not None else []
    if lam is None:
        if lam_range is not None:
            (low, high), hard = _range(lam_range, "lam_range"), True
        else:
            sigma_0 = sigma if sigma is not None else (axes[0].value_at_centre() if axes else None)
            (low, high), hard = _default_lam_range(H, pairs, reg, sigma_0, weights), False
            if lam_start is not None:  # the same width, centred on the guess
                reach = math.sqrt(high / low)
                low, high = lam_start / reach, lam_start * reach
        if low == high:
            lam = low
        else:
            axes.insert(0, _Axis("lam", low, high, hard=hard))
    return {"lam": lam, "sigma": sigma}, axes


def _sigma_axis(reg: LearnedRegularizer, sigma: Any, sigma_range: Any) -> tuple[float | None, _Axis | None]:
    """A fixed ``sigma`` (checked), or the axis that searches it (``sigma`` ``None``)."""
    if sigma is not None:
        if sigma_range is not None:
            raise ValueError("tune: give sigma (fixed) or sigma_range (searched), not both")
        return reg.check_sigma(sigma), None
    low, high = reg.sigma_range if sigma_range is None else _range(sigma_range, "sigma_range", allow_zero=True)
    if sigma_range is not None:
        try:
            low, high = reg.check_sigma(low), reg.check_sigma(high)
        except ValueError as err:  # named by the argument given
            raise ValueError(f"tune: sigma_range [{low:g}, {high:g}] reaches beyond the trained range: {err}") from None
    if high <= 0:
        raise ValueError(f"tune: the sigma range [{low:g}, {high:g}] has no positive part to search")
    stand_in = low == 0
    low = high / _SIGMA_SPAN if stand_in else low
    if low == high:
        return low, None
    return None, _Axis("sigma", low, high, hard=True, stand_in_low=stand_in, limits=reg.sigma_range)


def _check_solve_options(solve_options: Any) -> dict[str, Any]:
    """A copy of ``solve_options`` (``{}`` for ``None``): a mapping of keywords of :func:`adareg.solve` that
    ``tune`` does not set itself (:data:`_RESERVED_OPTIONS`)."""
    if solve_options is not None and not isinstance(solve_options, Mapping):
        raise TypeError(f"tune: solve_options must be a dict of adareg.solve's keywords, got "
                        f"{type(solve_options).__name__}")
    options = dict(solve_options or {})
    for name, why in _RESERVED_OPTIONS.items():
        if name in options:
            raise ValueError(f"tune: solve_options may not contain {name!r}: {why}")
    unknown = sorted(map(str, options.keys() - _SOLVE_KEYWORDS))
    if unknown:
        raise TypeError(f"tune: solve_options has {', '.join(map(repr, unknown))}, which adareg.solve does not take")
    for name, check in CONTROL_CHECKS.items():  # else refused inside the first solve, as solve's own argument
        if options.get(name) is not None:
            options[name] = check(options[name], f"tune: solve_options[{name!r}]")
    return options


def _check_patience(patience: Any) -> float | None:
    """``patience`` as a float >= 1 (a multiple of the best candidate's seconds), or ``None``."""
    if patience is None:
        return None
    patience = checks.positive(patience, "tune: patience")
    if patience < 1:
        raise ValueError(f"tune: patience must be >= 1 (a multiple of the best candidate's time), got {patience:g}")
    return patience


def _check_start(start: Any, lam: Any, sigma: Any, reg: Regularizer | LearnedRegularizer) -> dict[str, float]:
    """``start`` as a dict of positive floats keyed by searched variables (``{}`` for ``None``)."""
    if start is None:
        return {}
    if not isinstance(start, Mapping):
        raise TypeError(f"tune: start must be a mapping such as {{'lam': 0.01, 'sigma': 0.05}}, "
                        f"got {type(start).__name__}")
    searched = [name for name, fixed in (("lam", lam), ("sigma", sigma))
                if fixed is None and (name == "lam" or isinstance(reg, LearnedRegularizer))]
    for name in start:
        if name not in searched:
            raise ValueError(f"tune: start may only give searched variables ({', '.join(searched) or 'none'}), "
                             f"got {name!r}")
    return {name: checks.positive(value, f"tune: start[{name!r}]") for name, value in start.items()}


# ----------------------------------------------------------------------------- the search


class _Axis:
    """One searched variable: ``log10`` of its value on a lattice over ``[low, high]``.

    Points are integer lattice indices ``k``; ``k = 0`` is ``low`` and
    ``k = kmax`` is ``high`` exactly, others ``10**(log10 low + k * step)``.
    """

    def __init__(self, name: str, low: float, high: float, *, hard: bool, stand_in_low: bool = False,
                 limits: tuple[float, float] = (0.0, math.inf)):
        self.name, self.low, self.high, self.hard = name, float(low), float(high), hard
        self.stand_in_low = stand_in_low  # low is not the range's own lower end, 0, but high / _SIGMA_SPAN
        self.limits = limits  # the variable's own limits, which [low, high] lies in (sigma: the trained range)
        self.kmax = 1  # set by _coordinate_search once the lattice is known

    def value(self, k: int) -> float:
        if k == 0:
            return self.low
        if k == self.kmax:
            return self.high
        t = math.log10(self.low) + k * (math.log10(self.high) - math.log10(self.low)) / self.kmax
        return 10.0**t

    def value_at_centre(self) -> float:
        """The range's centre in log-space (the starting point of the search)."""
        return math.sqrt(self.low * self.high)

    def inside(self, k: int) -> bool:
        return not self.hard or 0 <= k <= self.kmax

    def nearest(self, value: float) -> int:
        """The lattice index nearest to ``value`` in log-space, which must lie in ``[low, high]`` (a value beyond
        an end by float32 rounding only, e.g. ``np.float32(30 / 255)``, is taken as that end)."""
        inside = checks.within(value, self.low, self.high)
        if inside is None:
            raise ValueError(f"tune: start[{self.name!r}] = {value:g} lies outside the {self.name} range "
                             f"[{self.low:g}, {self.high:g}]")
        value = inside
        if self.low == self.high:
            return 0
        span = math.log10(self.high) - math.log10(self.low)
        return round((math.log10(value) - math.log10(self.low)) / span * self.kmax)


def _coordinate_search(objective: Callable[[dict[str, float]], float], axes: list[_Axis], *, levels: int,
                       points: int, start: Mapping[str, float] | None = None) -> tuple[dict[str, float], float]:
    """Maximise ``objective`` over ``axes`` coarse to fine, one axis at a time (see :func:`tune`).

    ``start``: first values by axis name (others start at their range's centre).
    Returns the best point (values by axis name) and its score; NaN scores count
    as worst.
    """
    if not axes:
        return {}, objective({})
    m = (points - 1) // 2
    unit = (m + 1) ** (levels - 1)  # lattice steps per level-0 spacing
    for axis in axes:
        axis.kmax = (points - 1) * unit
    scores: dict[tuple[int, ...], float] = {}

    def score(k: tuple[int, ...]) -> float:
        if k not in scores:
            value = objective({axis.name: axis.value(ki) for axis, ki in zip(axes, k)})
            scores[k] = -math.inf if math.isnan(value) else value
        return scores[k]

    start = start or {}
    best = tuple(axis.nearest(start[axis.name]) if axis.name in start else axis.kmax // 2 for axis in axes)
    for level in range(levels):
        step = unit // (m + 1) ** level
        for i, axis in enumerate(axes):
            first = 0 if level == 0 else best[i] - m * step
            line = [j for j in (first + step * d for d in range(points)) if axis.inside(j)]
            line = sorted(set(line) | {best[i]})  # a start off the level-0 grid is a candidate too
            best = _line_search(score, best, i, line, step, axis)
    # two variables: a last sigma line that moved leaves lam unsearched there (on a ridge, far from lam's best);
    # the finest lines through the best, alternately, each round's move repeated while it gains (a pattern
    # search), until neither moves
    for _ in range(points if len(axes) > 1 else 0):
        previous = best
        for i, axis in enumerate(axes):
            line = [j for j in (best[i] - step, best[i], best[i] + step) if axis.inside(j)]
            best = _line_search(score, best, i, line, step, axis)
        if best == previous:
            break
        # at most a level-0 spacing of finest steps, inside the ranges, or a soft range and the span a line extended
        # it by (a move that ran on along a soft axis could leave it without end)
        for _ in range(unit):
            jump = tuple(2 * b - p for b, p in zip(best, previous))
            if not all(min(0, b) <= j <= max(axis.kmax, b) for axis, j, b in zip(axes, jump, best)) \
                    or score(jump) <= score(best):
                break
            previous, best = best, jump
    return {axis.name: axis.value(k) for axis, k in zip(axes, best)}, scores[best]


def _line_search(score: Callable[[tuple[int, ...]], float], best: tuple[int, ...], i: int, line: list[int],
                 step: int, axis: _Axis) -> tuple[int, ...]:
    """The best point of ``best`` with coordinate ``i`` on ``line``, extending the line past an end that wins.

    The line contains ``best[i]``; ties keep the earlier candidate in grid order (the current best first).
    """
    def at(j: int) -> tuple[int, ...]:
        return best[:i] + (j,) + best[i + 1:]

    for j in sorted(line, key=lambda j: (abs(j - best[i]), j)):  # evaluate from the best outwards, then compare
        score(at(j))
    top = best[i]
    for j in line:
        if score(at(j)) > score(at(top)):
            top = j
    lowest, highest = min(line), max(line)
    for _ in range(len(line) - 1):
        if top == highest != lowest:
            j = highest = highest + step
        elif top == lowest != highest:
            j = lowest = lowest - step
        else:
            break
        if not axis.inside(j) or score(at(j)) <= score(at(top)):
            break
        top = j
    return at(top)


# ------------------------------------------------------------------------------ arguments


def _calibration_pairs(H: LinearOperator, ys: Any, xs: Any) -> list[tuple[Array, Array]]:
    """``[(y_i, x_i)]`` from sequences or stacked arrays, every shape checked."""
    ys = _as_list(ys, H.shape_out, "ys")
    xs = _as_list(xs, H.shape_in, "xs")
    if len(ys) != len(xs):
        raise ValueError(f"tune: ys has {len(ys)} measurements but xs has {len(xs)} ground truths")
    if not ys:
        raise ValueError("tune: the calibration set is empty (ys and xs hold no pairs)")
    for i, (y, x) in enumerate(zip(ys, xs)):
        backend.check_array(y, H.shape_out, f"tune: ys[{i}] (measurements of {H!r})")
        backend.check_array(x, H.shape_in, f"tune: xs[{i}] (ground truth for {H!r})")
        backend.check_finite(y, f"tune: ys[{i}]")
        backend.check_finite(x, f"tune: xs[{i}]")
        for what, a, shape in (("ys", y, H.shape_out), ("xs", x, H.shape_in)):
            if tuple(a.shape) != tuple(shape):
                raise ValueError(f"tune: {what}[{i}] has shape {tuple(a.shape)}; expected {tuple(shape)} "
                                 "(one image per pair)")
        if x.dtype.kind == "c":
            raise TypeError(f"tune: xs[{i}] is complex; the PSNR compares real images (use abs(x) for magnitudes)")
        if backend.is_cupy(x) != backend.is_cupy(ys[0]) or backend.is_cupy(y) != backend.is_cupy(ys[0]):
            # else the PSNR fails after the first full solve
            device = "a GPU (CuPy)" if backend.is_cupy(ys[0]) else "the host (NumPy)"
            raise TypeError(f"tune: ys[{i}] and xs[{i}] must be on the device of ys[0], {device} "
                            "(adareg.to_device(a, 'cpu' or 'gpu'))")
        _warn_on_another_scale(H, y, x, i)
    for i, (y, x) in enumerate(zip(ys, xs)):  # every pair: a complex one after the first failed in its PSNR
        if y.dtype.kind == "c" and H.H(y).dtype.kind == "c":  # then so are the reconstructions
            if H(x).dtype.kind != "c":
                raise TypeError(f"tune: ys[{i}] is complex ({y.dtype}), but {H!r} maps real images to real "
                                "measurements: give real ones")
            raise TypeError(f"tune: {H!r} reconstructs complex images (H^H ys[{i}] is complex), but the PSNR "
                            "compares real ones: use an operator on real images (e.g. CartesianMRI(..., real=True))")
    return list(zip(ys, xs))


#: How far ``||y|| / ||H x||`` of a calibration pair may lie from 1 before :func:`tune` warns: noise of any
#: level a reconstruction can undo moves it far less, another intensity scale (e.g. 0-255 data) far more.
SCALE_MISMATCH = 10.0


def _warn_on_another_scale(H: LinearOperator, y: Array, x: Array, i: int) -> None:
    """Warn where a measurement and the forward model of its ground truth differ in scale by a factor
    :data:`SCALE_MISMATCH` or more: then no ``lam`` reconstructs the truth, and the search says only that."""
    Hx = H(x)
    forward = math.sqrt(backend.real_inner(Hx, Hx))
    ratio = math.sqrt(backend.real_inner(y, y)) / forward if forward > 0 else 1.0
    if not 1 / SCALE_MISMATCH < ratio < SCALE_MISMATCH:
        warnings.warn(f"tune: ys[{i}] is {ratio:.3g} times the size of H xs[{i}] (||y|| / ||H x||): the measurements "
                      "and the ground truths are on different scales (e.g. 0-255 data and [0, 1] truths), so no "
                      "reconstruction matches the truth; put both on one scale", stacklevel=4)


def _pair_weights(weights: Any, pairs: list[tuple[Array, Array]]) -> list[Array | None]:
    """``solve_options['weights']`` for each pair, checked: one set that every ``y`` takes, or one per pair (a
    list or tuple of ``len(ys)`` arrays or numbers, or an array stacked on a first axis of that length, as ``ys``
    may be)."""
    what = "tune: solve_options['weights']"
    n = len(pairs)
    if weights is None:
        return [None] * n
    # arrays of another library (e.g. torch tensors) as NumPy ones, so that they are read as NumPy's are
    if backend.is_foreign_array(weights):
        weights = backend.as_array(weights, what)
    elif isinstance(weights, (list, tuple)):
        weights = [backend.as_array(w, f"{what}[{i}]") if backend.is_foreign_array(w) else w
                   for i, w in enumerate(weights)]
    stacked = backend.is_array(weights) and weights.ndim == pairs[0][0].ndim + 1 and weights.shape[0] == n
    images = isinstance(weights, (list, tuple)) and all(backend.is_array(w) and w.ndim == pairs[0][0].ndim
                                                         for w in weights)
    if images and len(weights) != n:  # else read as one set of weights, refused as not broadcasting to y
        raise ValueError(f"{what} is a list of {len(weights)} weight array{'s' * (len(weights) != 1)}: one per pair "
                         f"needs {n}, one per measurement of ys (a single set that every pair takes is one array)")
    # a number per pair too, as NumPy's scalars are (a list of numbers as one weight array would be ambiguous)
    listed = isinstance(weights, (list, tuple)) and len(weights) == n and all(
        backend.is_array(w) or (isinstance(w, numbers.Real) and not isinstance(w, bool)) for w in weights)
    if stacked or listed:
        return [check_weights(w, y, f"{what}[{i}]") for i, (w, (y, _)) in enumerate(zip(weights, pairs))]
    return [check_weights(weights, y, what) for y, _ in pairs]


def _as_list(a: Any, shape: tuple[int, ...], what: str) -> list[Any]:
    """A sequence, or an array of shape ``(n, *shape)`` or ``shape``, as a list of its items."""
    if backend.is_array(a):
        if a.ndim == len(shape) + 1:
            return [a[i] for i in range(a.shape[0])]
        if a.ndim == len(shape):
            return [a]
        raise ValueError(f"tune: {what} has shape {tuple(a.shape)}; expected (n, *{tuple(shape)}) or a "
                         f"sequence of arrays of shape {tuple(shape)}")
    if isinstance(a, (str, bytes)) or not isinstance(a, Sequence):
        raise TypeError(f"tune: {what} must be a sequence of arrays or a stacked array, got {type(a).__name__}")
    return list(a)


def _range(bounds: Any, what: str, *, allow_zero: bool = False) -> tuple[float, float]:
    try:
        low, high = bounds
    except (TypeError, ValueError):
        raise TypeError(f"tune: {what} must be a pair of numbers (low, high), got {bounds!r}") from None
    low, high = checks.real_number(low, f"tune: {what}[0]"), checks.real_number(high, f"tune: {what}[1]")
    if not ((low >= 0 if allow_zero else low > 0) and low <= high):
        relation = "0 <= low <= high" if allow_zero else "0 < low <= high"
        raise ValueError(f"tune: {what} must satisfy {relation}, got ({low:g}, {high:g})")
    return low, high


def _default_lam_range(H: LinearOperator, pairs: list[tuple[Array, Array]], reg: Any, sigma_0: float | None,
                       weights: list[Array | None]) -> tuple[float, float]:
    """The default level-0 range of ``lam`` (see :func:`tune`), for the data weights of each pair's solves."""
    y_0, w_0 = pairs[0][0], weights[0]
    if sigma_0 is not None and reg.lam(sigma_0) > 0:
        # the curvature of the weighted data term: ||w^(1/2) H||^2 (of the first pair's weights)
        weighted = H if w_0 is None else Diagonal(backend.namespace(y_0).sqrt(w_0), H.shape_out) @ H
        scale = weighted.norm(like=y_0) ** 2 * reg.lam(sigma_0)
        decades = _LEARNED_DECADES
    else:
        size = math.prod(H.shape_in)
        scale = sum(float(backend.namespace(y).linalg.vector_norm(H.H(y if w is None else w * y)))
                    for (y, _), w in zip(pairs, weights))
        scale /= len(pairs) * math.sqrt(size)
        decades = _CLASSICAL_DECADES
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError("tune: the measurements give no scale for lam (H^H y is zero); give lam_range")
    return scale * 10.0 ** decades[0], scale * 10.0 ** decades[1]
