"""A batch in chunks of images, each a run of its own: what :func:`~adareg.solvers.fista` and
:func:`~adareg.solvers.lbfgs` share when they are given their objective chunk by chunk.

The images of a batch are independent problems.  Run as one piece, a batch stops when its
slowest image does, and every other image steps on past its own stop; run chunk by chunk,
each chunk with its own objective (e.g. :meth:`~adareg.functionals.LeastSquares.images`),
step size, state and stop, an image of a one-image chunk comes out as it would alone, and
a batch costs what its images' single calls do.  ``solve`` cuts a batch so on the host
(:func:`adareg.backend.image_chunks`); on a GPU a batch stays one piece.
"""

from __future__ import annotations

from typing import Any, Sequence

from .. import backend
from ..backend import Array


def check_chunks(chunks: Sequence[Any], count: int, batch_ndim: int, what: str) -> list[tuple[slice, Any]]:
    """``chunks`` as a list, if they are ``(images, objective)`` pairs whose ``images`` slices cut a batch of
    ``count`` images (its axes flattened) in order; ``what`` names the argument in errors."""
    if not batch_ndim:
        raise ValueError(f"{what} in chunks needs a batch (batch_ndim >= 1)")
    end = 0
    for pair in chunks:
        index = pair[0] if isinstance(pair, tuple) and len(pair) == 2 else None
        if not (isinstance(index, slice) and index.step in (None, 1) and index.start == end
                and isinstance(index.stop, int) and end < index.stop <= count):
            raise ValueError(f"{what} in chunks must be (slice, objective) pairs whose slices cut the batch's "
                             f"{count} images in order, got {pair!r} after images 0:{end}")
        end = index.stop
    if end != count:
        raise ValueError(f"{what} in chunks covers images 0:{end} of the batch's {count}")
    return list(chunks)


def joined(parts: list[Array], shape: tuple[int, ...]) -> Array:
    """The chunks' images ``parts`` as one batch of ``shape``."""
    return (parts[0] if len(parts) == 1 else backend.namespace(parts[0]).concatenate(parts)).reshape(shape)
