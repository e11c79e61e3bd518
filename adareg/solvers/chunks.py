"""A batch in chunks of images, each a run of its own: how large a chunk is, and what
:func:`~adareg.solvers.fista` and :func:`~adareg.solvers.lbfgs` share when they are given their
objective chunk by chunk.

The images of a batch are independent problems.  Run as one piece, a batch stops when its
slowest image does, and every other image steps on past its own stop; run chunk by chunk,
each chunk with its own objective (e.g. :meth:`~adareg.functionals.LeastSquares.images`),
step size, state and stop, an image of a one-image chunk comes out as it would alone, and
a batch costs what its images' single calls do.  ``solve`` cuts a batch so on the host
(:func:`objective_in_chunks`); on a GPU, and where the regularizer holds weights per image,
a batch stays one piece.

A chunk holds about :data:`CHUNK_PIXELS` pixels for FISTA and L-BFGS (:func:`image_chunks`)
and about :data:`CHUNK_BYTES` of the reweighting's largest arrays (:func:`batch_chunks`), one
image at least; a CuPy batch is one chunk.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from .. import backend, threads
from ..backend import Array
from ..functionals import LeastSquares
from ..operators.base import batch_shape
from ..stopping import Progress, StoppingRule


#: Bytes of the largest arrays (e.g. a dual of C channels) of one chunk of :func:`batch_chunks`; a
#: dual iteration makes several passes over them, which stay in a core's cache at about this size
#: (chosen by timing whole denoising solves of batches, docs/results.md).
CHUNK_BYTES = 1 << 21


def batch_chunks(count: int, nbytes: int, like: Array) -> list[slice]:
    """Consecutive chunks of a batch of ``count`` images, ``nbytes`` the size of one image's largest array.

    On the host, chunks of about :data:`CHUNK_BYTES` (one image at least): an iterative
    solver that steps a batch chunk by chunk keeps each chunk's arrays in cache through
    its passes, where a whole large batch would stream through memory each pass.  For
    CuPy arrays (``like``) one chunk, the whole batch: a GPU is fastest on large arrays.
    """
    return _chunks(count, count * nbytes // CHUNK_BYTES, like)


#: Pixels of one chunk of :func:`image_chunks`, one image a chunk at 128 x 128 and up (chosen by timing
#: batches of CT and MRI slices against their single calls, docs/results.md).
CHUNK_PIXELS = 128 * 128


def image_chunks(count: int, pixels: int, like: Array) -> list[slice]:
    """Consecutive chunks of a batch of ``count`` images of ``pixels`` each, for a solver that runs each chunk on
    its own (FISTA, L-BFGS; :func:`objective_in_chunks`).

    On the host, chunks of about :data:`CHUNK_PIXELS` (one image at least): a chunk stops
    on its own, where a larger chunk would step its images on to its slowest one's stop,
    but each chunk pays the overhead of its calls, which images smaller than a chunk share.
    For CuPy arrays (``like``) one chunk, the whole batch.
    """
    return _chunks(count, count * pixels // CHUNK_PIXELS, like)


def _chunks(count: int, wanted: int, like: Array) -> list[slice]:
    """``wanted`` chunks of a batch of ``count`` images (at least one, each of at least one image), or one for
    CuPy."""
    return threads.even_slices(count, 1 if backend.is_cupy(like) else max(1, min(count, wanted)))


def holds_weights_per_image(reg: Any) -> bool:
    """Whether ``reg`` holds weights for each image of a batch (a ``batch_shape`` of more than one image, e.g. TV's
    weight maps, batch axes and all): it acts on the whole batch, which then runs as one piece."""
    return math.prod(getattr(reg, "batch_shape", ())) > 1


#: How many times the largest data weight of one image of a batch may exceed another's before each image is a
#: chunk of its own on the host (:func:`objective_in_chunks`): FISTA's step follows its chunk's largest weight.
WEIGHT_SCALES = 2.0


def objective_in_chunks(data: LeastSquares, objective: Callable[[LeastSquares], Any], reg: Any) -> Any:
    """What :func:`~adareg.solvers.fista` or :func:`~adareg.solvers.lbfgs` is given for the batch of ``data``:
    ``objective(data)`` for the batch as one piece, or ``[(images, objective(data.images(images)))]``, one pair per
    chunk of images (:func:`image_chunks`: on the host, more than one where the batch is large
    enough), each chunk then stopping on its own.  The batch is one piece where ``reg``, the regularizer, holds
    weights per image (:func:`holds_weights_per_image`); on the host each image is a chunk where the images'
    largest data weights differ by more than :data:`WEIGHT_SCALES` (a chunk steps as its largest weight allows).
    """
    count = math.prod(batch_shape(data.y, data.H.shape_out))
    if holds_weights_per_image(reg):
        chunks = [slice(0, count)]
    else:
        pixels = math.prod(data.H.shape_in)
        if not backend.is_cupy(data.y) and _weight_scales_differ(data, count):
            pixels = max(pixels, CHUNK_PIXELS)  # one image a chunk
        chunks = image_chunks(count, pixels, like=data.y)
    return objective(data) if len(chunks) == 1 else [(chunk, objective(data.images(chunk))) for chunk in chunks]


def _weight_scales_differ(data: LeastSquares, count: int) -> bool:
    """Whether the images' largest data weights differ by more than :data:`WEIGHT_SCALES`."""
    weights = data.weights
    if count < 2 or weights is None or weights.ndim <= len(data.H.shape_out):  # one image, or weights shared
        return False
    xp = backend.namespace(weights)
    largest = xp.max(xp.reshape(xp.broadcast_to(weights, data.y.shape), (count, -1)), axis=1)
    return float(xp.max(largest)) > WEIGHT_SCALES * float(xp.min(largest))


def pieces(objective: Any, x: Array, batch_ndim: int, what: str) -> list[tuple[slice | None, Any, Array, int]]:
    """The runs of a solver given ``objective`` and its start ``x``: ``(images, objective, start, batch_ndim)``
    each, ``images`` ``None`` for the batch as one run (``objective`` not a list), else one per chunk.

    Chunks must be ``(images, objective)`` pairs whose ``images`` slices cut the batch's images
    (its axes flattened) in order; ``what`` names the argument in errors.
    """
    if not isinstance(objective, (list, tuple)):  # the batch as one run, batch axes and all
        return [(None, objective, x, batch_ndim)]
    if not batch_ndim:
        raise ValueError(f"{what} in chunks needs a batch (batch_ndim >= 1)")
    images, end = x.reshape(-1, *x.shape[batch_ndim:]), 0
    for pair in objective:
        index = pair[0] if isinstance(pair, tuple) and len(pair) == 2 else None
        if not (isinstance(index, slice) and index.step in (None, 1) and index.start == end
                and isinstance(index.stop, int) and end < index.stop <= len(images)):
            raise ValueError(f"{what} in chunks must be (slice, objective) pairs whose slices cut the batch's "
                             f"{len(images)} images in order, got {pair!r} after images 0:{end}")
        end = index.stop
    if end != len(images):
        raise ValueError(f"{what} in chunks covers images 0:{end} of the batch's {len(images)}")
    return [(index, part, images[index], 1) for index, part in objective]


def stopped_alone(stop: StoppingRule, k: int, relative_change: float, seconds: float) -> StoppingRule | None:
    """The rule of ``stop`` that stops a chunk after iteration ``k``: one that converges and fires on the chunk's own
    relative change (the others, iterations and time, end the whole batch at once); ``None`` to go on."""
    fired = stop.check(Progress(iteration=k, relative_change=relative_change, seconds=seconds))
    return fired if fired is not None and fired.converged else None


def joined(parts: list[Array], shape: tuple[int, ...]) -> Array:
    """The chunks' images ``parts`` as one batch of ``shape``."""
    return (parts[0] if len(parts) == 1 else backend.namespace(parts[0]).concatenate(parts)).reshape(shape)
