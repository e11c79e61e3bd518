"""Warnings recorded per thread: what one piece of work raised (a chunk of slices, a tuning search) while other
threads run others.

:func:`warnings.catch_warnings` swaps process-wide state as it enters and leaves: used
by several threads at once (a Dask worker computes a task in each of its threads), each
records the others' warnings, and the last to leave restores another's recorder (and
its filters).
:func:`recording` instead installs, once, a filter that lets every warning of a
recording thread through (as ``simplefilter("always")`` would) and a
:func:`warnings.showwarning` that hands such a warning to that thread's list; other
threads' warnings go, filtered as before, to the handler that was in place.  The
recording is a context variable, so work that runs in the recording thread's context
(:func:`adareg.threads.blockwise`'s blocks) records into the same list.

Code that swaps the process's handler while a recording runs (another thread's
``catch_warnings(record=True)``, ``logging.captureWarnings``) takes the recorded
warnings for itself until it restores it; the next :func:`recording` installs the
filter and the handler again.  Each handler installed keeps the one it replaced, so
one restored later still shows other warnings where they went before it.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TextIO

Note = tuple[type[Warning], str]  # a warning as recorded: its category and its message

#: The list the warnings of this context go to; ``None`` where nothing records them.
_notes: contextvars.ContextVar[list[Note] | None] = contextvars.ContextVar("adareg_warning_notes", default=None)
_install_lock = threading.Lock()


class _Recording(type):
    def __subclasscheck__(cls, category: type) -> bool:
        return _notes.get() is not None


class _RaisedWhileRecording(Warning, metaclass=_Recording):
    """The category of the filter that lets every warning through in a recording context: a filter matches
    a warning's category by ``issubclass``, which this class answers by the context, not by the category."""


def _handler(before: Callable[..., Any]) -> Callable[..., None]:
    """A :func:`warnings.showwarning` that records the warnings of a recording context and hands the others to
    ``before``, the handler it replaces.  Each keeps its own ``before``, so that a handler restored by whoever
    replaced it (``catch_warnings`` leaving) still shows the other warnings where they went."""

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        notes = _notes.get()
        if notes is None:
            before(message, category, filename, lineno, file, line)
        else:
            notes.append((category, str(message)))

    show._adareg_recording = True  # type: ignore[attr-defined]
    return show


@contextlib.contextmanager
def recording() -> Iterator[list[Note]]:
    """Record the warnings that this thread (this context) raises while the ``with`` block runs.

    Yields the list that receives each warning as ``(category, message)``, every
    occurrence (none is filtered out, as under ``simplefilter("always")``), in the
    order raised; the warnings are not shown.  Other threads' warnings are not recorded
    and are shown as before.  A recording within a recording takes the warnings of its
    block for itself.
    """
    with _install_lock:
        # at the front of the filters, again if another filter came first; it also resets the registries of
        # warnings shown once (as any change of the filters does), so that a repeated warning is seen again
        warnings.filterwarnings("always", category=_RaisedWhileRecording)
        if not getattr(warnings.showwarning, "_adareg_recording", False):
            warnings.showwarning = _handler(warnings.showwarning)
    notes: list[Note] = []
    token = _notes.set(notes)
    try:
        yield notes
    finally:
        _notes.reset(token)
