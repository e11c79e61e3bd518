"""The outer loop that every iterative solver shares: its history, clock, progress bar, callback and stop."""

from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple

from tqdm.auto import tqdm

from ..backend import Array
from .result import History, Result
from ..stopping import Progress, StoppingRule, verdict


class Report(NamedTuple):
    """What one iteration reports: its ``row`` of the history, the progress bar's ``postfix`` and the ``progress``
    that the stopping rule reads."""

    row: dict[str, float]
    postfix: dict[str, str]
    progress: Progress


#: An iteration ``step(k, elapsed)`` takes iteration ``k`` and reports it; ``elapsed()`` gives the seconds since
#: the loop started, read once the iteration's work is done.
Step = Callable[[int, Callable[[], float]], Report]


def iterate(step: Step, current: Callable[[], Array], *, stop: StoppingRule,
            callback: Callable[[int, Array], Any] | None, columns: tuple[str, ...], desc: str, unit: str,
            progress: bool, counted: str = "iterations",
            ends: Callable[[], tuple[bool, str] | None] | None = None) -> Result:
    """Take iterations ``k = 1, 2, ...`` of ``step`` until the run ends, and return its :class:`~adareg.solvers.Result`.

    After each iteration its row joins the history (``columns``), the progress bar (``desc``,
    ``unit``; shown with ``progress``) moves on and shows the postfix, and
    :func:`~adareg.stopping.verdict` calls ``callback(k, current())`` and reads ``stop``, its
    messages counting ``counted``; then ``ends()``, where given, may end the run on the
    solver's own grounds, overriding the verdict.  ``current()`` is the iterate, read for the
    callback (not formed without one) and for the result.
    """
    history = History(*columns)
    start = time.perf_counter()

    def elapsed() -> float:
        return time.perf_counter() - start

    with tqdm(disable=not progress, desc=desc, unit=unit) as bar:
        k = 0
        while True:
            k += 1
            report = step(k, elapsed)
            history.append(**report.row)
            bar.update()
            bar.set_postfix(**report.postfix, refresh=False)
            ended = verdict(stop, report.progress, callback, current() if callback is not None else None,
                            unit=counted)
            if ends is not None:
                ended = ends() or ended
            if ended is not None:
                converged, message = ended
                break
    return Result(x=current(), converged=converged, iterations=k, history=history, message=message)
