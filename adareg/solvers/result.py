"""What a solver returns: the solution, whether it converged, and a history table."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..backend import Array


class History:
    """A table with one row per recorded iteration, read by column.

    >>> h = History("iteration", "objective")
    >>> h.append(iteration=1, objective=2.5)
    >>> h["objective"]
    array([2.5])
    >>> h.as_dict()  # e.g. for pandas.DataFrame
    {'iteration': array([1.]), 'objective': array([2.5])}
    """

    def __init__(self, *columns: str):
        self._rows: dict[str, list[float]] = {name: [] for name in columns}

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self._rows)

    def append(self, **row: float) -> None:
        """Add a row; every column must be given."""
        if set(row) != set(self._rows):
            raise ValueError(f"History.append: expected columns {self.columns}, got {tuple(row)}")
        for name, value in row.items():
            self._rows[name].append(float(value))

    def __getitem__(self, column: str) -> np.ndarray:
        return np.asarray(self._rows[column])

    def __len__(self) -> int:
        return len(next(iter(self._rows.values()), []))

    def as_dict(self) -> dict[str, np.ndarray]:
        """The columns as NumPy arrays."""
        return {name: self[name] for name in self._rows}

    def __repr__(self) -> str:
        lines = ["  ".join(f"{name:>15}" for name in self._rows)]
        n = len(self)
        shown = list(range(n)) if n <= 10 else [*range(5), -1, *range(n - 4, n)]
        for i in shown:
            if i < 0:
                lines.append("  ".join(f"{'...':>15}" for _ in self._rows))
            else:
                lines.append("  ".join(f"{values[i]:>15.6g}" for values in self._rows.values()))
        return "\n".join(lines)


@dataclass
class Result:
    """Output of a solver.

    Attributes
    ----------
    x
        The solution, on the input's backend and device.
    converged
        Whether a convergence criterion (rather than an iteration or time budget) ended the run.
    iterations
        Iterations performed.
    history
        Per-iteration table (see the solver for its columns).
    message
        Why the run stopped.

    Examples
    --------
    >>> import adareg
    >>> from adareg.operators import Identity
    >>> from adareg.regularizers import TV
    >>> y = adareg.data.shepp_logan((32, 32))
    >>> result = adareg.solve(Identity(y.shape), y, TV(y.shape), lam=0.01)
    >>> result.converged, result.x.shape
    (True, (32, 32))
    >>> result.history.columns
    ('iteration', 'objective', 'gap', 'seconds')
    >>> int(result.history["iteration"][-1]) == result.iterations
    True
    >>> result.message  # doctest: +ELLIPSIS
    'duality gap ... certifies the tolerance after ... iterations (... s)'
    """

    x: Array
    converged: bool
    iterations: int
    history: History = field(repr=False)
    message: str = ""
