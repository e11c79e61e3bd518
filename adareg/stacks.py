"""A 2D reconstruction over every slice of a volume: batched, bounded memory, in-process or on Dask.

:func:`map_slices` applies a *slice task* — a picklable callable that maps a chunk of
slices ``(n, ...)`` to their reconstructions ``(n, ...)`` — to every slice of a stack
and returns the results in slice order.  By default it runs in this process, one
chunk at a time (so memory is that of one chunk's solve, plus the stack and its
result); ``workers=N`` starts a :class:`dask.distributed.LocalCluster` of N
single-threaded processes, and ``scheduler="tcp://host:port"`` (or a
:class:`dask.distributed.Client`) uses an existing cluster (``pip install
adareg[distributed]``).

On Dask, each chunk is one task that carries its own slices, so that the scheduler
can recompute it when a worker is lost; at most ``2 x threads`` chunks are in flight,
which bounds the memory held by the cluster; each result is placed at its slice
indices, so a chunk computed twice is still written once.  The tasks of this module
(:class:`Denoise`, :class:`CTReconstruction`, :class:`FastMRIReconstruction`) hold
only names and numbers: each process loads a model or builds an operator once and
keeps it (:func:`functools.lru_cache`), not once per slice.

A task that fails is rerun slice by slice within its chunk, so that the
:class:`SliceError` raised names the first slice of that chunk that fails: in this
process the first failing slice of the stack, on Dask that of the first failing chunk
to finish (chunks run at once).  The warnings a task raises (e.g. a
:class:`ConvergenceWarning` where a solve stopped at its cap) are raised again in the
calling process, once per chunk and naming its slices, also from Dask workers.  The
solve of a chunk's slices together tells whether all converged, not which did not:
its warning says so, and ``chunk=1`` names the slice.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import math
import os
import secrets
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np
from tqdm.auto import tqdm

from . import backend, checks, mri, params, thread_warnings, threads
from .ct import check_window, fbp, transmission_weights
from .io.images import first_slice_outside
from .io.volumes import Volume
from .operators import Identity, RayTransform
from .reconstruction import solve
from .regularizers import TV

SliceTask = Callable[[np.ndarray], np.ndarray]

#: The Dask setting by which worker processes start with ``MALLOC_TRIM_THRESHOLD_`` (``None`` means not set).
TRIM_SETTING = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"


class ConvergenceWarning(UserWarning):
    """A slice task's solve stopped at its iteration or time cap before its tolerance: the slice is its last iterate."""


#: The warnings a chunk's task raised, each category with its message, once.
Notes = list[thread_warnings.Note]


class SliceError(RuntimeError):
    """A slice's reconstruction failed; the message names the slice's index in the stack."""


def map_slices(task: SliceTask, stack: np.ndarray, *, chunk: int = 8, workers: int | None = None,
               scheduler: Any = None, progress: bool = True, numbers: Sequence[int] | None = None) -> np.ndarray:
    """Apply ``task`` to every slice of ``stack``, ``chunk`` slices per call; the results in slice order.

    Parameters
    ----------
    task
        Maps an array of ``n <= chunk`` slices, ``stack[i:i + n]``, to an array of
        ``n`` results, all of one shape and dtype.  It gets a read-only view (the
        caller's stack, in process), so it cannot change the slices that a retry
        or the caller sees.  Picklable for Dask (a module-level
        function, :func:`functools.partial` of one, or an instance such as
        :class:`Denoise`).
    stack
        NumPy array of slices along its first axis (a CuPy array is copied to the host).
        An array of another library that reads on demand (a dask array, an h5py or
        zarr dataset) is read a chunk at a time, as the chunk's turn comes: only
        the chunks in flight and the results are held in memory.
    chunk
        Slices per call: the batch of one solve (the operators and solvers take
        leading batch axes).  A batched solve stops when each slice of its batch
        has converged; each slice keeps its own momentum and restarts, so a slice
        follows its own path and only runs on until the slowest one stops, but the
        step size and an iterative prox's tolerance are the batch's (docs/volumes.md);
        ``chunk=1`` reproduces one-by-one solves exactly.
    workers
        Start a local Dask cluster of this many single-threaded worker processes.
    scheduler
        Address of a running Dask scheduler (``"tcp://host:port"``) or a
        :class:`dask.distributed.Client` (one made with its ``security`` for a TLS
        scheduler); not with ``workers``.
    progress
        Show a progress bar over slices.
    numbers
        The slices' numbers, by which errors and warnings name them (default: their
        positions in ``stack``), e.g. a file's indices of the slices read from it.

    Notes
    -----
    Each chunk's warnings are recorded in the thread that computes it and raised again
    by the caller, named with the chunk's slices; warnings that other threads raise
    meanwhile are not taken for the chunk's (:mod:`adareg.thread_warnings`).

    Returns
    -------
    numpy.ndarray
        ``(len(stack), *result_shape)``.

    Raises
    ------
    SliceError
        A slice's reconstruction raised; the message names its index and the cause.
    ValueError
        Bad arguments (no slice, slices of different shapes, ``chunk < 1``, both
        ``workers`` and ``scheduler``, a closed client as ``scheduler``), or chunks whose
        results differ in shape or dtype (e.g. a complex chunk after real ones), which one
        output array cannot hold without loss.
    """
    if not callable(task) or isinstance(task, type):  # else named as every slice's failure
        raise TypeError(f"map_slices: task must be a callable on a chunk of slices, e.g. stacks.Denoise(...), "
                        f"got {task!r:.80}")
    if isinstance(stack, Volume):
        raise TypeError("map_slices: stack is a Volume; pass its slices, volume.data")
    backend.check_plain(stack, "map_slices: stack")  # a mask would be dropped unseen by the conversion below
    if not _read_by_chunks(stack):
        try:
            stack = backend.to_numpy(stack)  # a CuPy stack is copied to the host, where the chunks are cut
        except ValueError as err:  # e.g. a list of slices of different shapes
            raise ValueError(f"map_slices: stack: NumPy cannot make it one array ({checks.one_line(err)}); give "
                             "slices of one shape (crop or pad them, or call map_slices once per shape)") from err
    if len(stack.shape) < 1 or stack.shape[0] == 0:
        raise ValueError(f"map_slices: stack must hold at least one slice, got shape {tuple(stack.shape)}")
    chunk = checks.count(chunk, "map_slices: chunk")
    progress = checks.flag(progress, "map_slices: progress")
    if workers is not None and scheduler is not None:
        raise ValueError("map_slices: give workers (a local cluster) or scheduler (a running one), not both")
    count = int(stack.shape[0])
    numbers = list(range(count)) if numbers is None else _slice_numbers(numbers)
    if len(numbers) != count:
        raise ValueError(f"map_slices: numbers names {len(numbers)} slices, but stack holds {count}")
    starts = range(0, count, chunk)
    bar = functools.partial(tqdm, total=count, unit="slice", disable=not progress, desc="slices")
    if workers is None and scheduler is None:
        with bar() as shown:
            done = ((start, *run_chunk(task, _slices(stack, start, chunk), numbers[start:start + chunk]))
                    for start in starts)
            return _assemble(done, numbers, shown)
    # the bar once the client stands: a missing Dask or a wrong address is reported alone
    with _client(workers, scheduler) as client, bar() as shown:
        done = _on_dask(client, task, stack, starts, chunk, numbers)
        try:
            return _assemble(done, numbers, shown)
        finally:
            done.close()  # cancels the chunks in flight while the client is open (not later, at collection)


def _read_by_chunks(stack: Any) -> bool:
    """Whether ``stack`` is another library's array that slices and tells its shape (a dask array, an h5py
    dataset, a torch tensor): read a chunk at a time; others (e.g. a PIL image) are converted whole."""
    return backend.is_foreign_array(stack) and hasattr(stack, "shape") and hasattr(stack, "__getitem__")


def _slices(stack: Any, start: int, count: int) -> np.ndarray:
    """``stack[start:start + count]`` as a NumPy array: a view of a NumPy stack, read here from another library's."""
    return backend.to_numpy(backend.as_array(stack[start:start + count], "map_slices: stack"))


def _slice_numbers(numbers: Any) -> list[int]:
    """``map_slices``' ``numbers`` as ints: a sequence (or 1D array) of whole numbers, not a string."""
    values = list(numbers) if not isinstance(numbers, (str, bytes)) and np.ndim(numbers) == 1 else None
    if values is None or not all(checks.integral(checks.unwrapped(n)) for n in values):
        raise TypeError(f"map_slices: numbers must be a sequence of whole numbers (the slices' indices), got "
                        f"{numbers!r:.60}")
    return [int(n) for n in values]


def run_chunk(task: SliceTask, slices: np.ndarray, numbers: Sequence[int], fft_threads: int | None = None
              ) -> tuple[np.ndarray, Notes]:
    """``task(slices)``, checked, and the warnings it raised; on failure the slices one by one, to name the first
    that fails.

    ``fft_threads`` sets the threads of the calling thread's FFTs during the call
    (:func:`adareg.threads.fft_workers_here`: Dask workers compute one task per thread,
    so their FFTs use one).  The warnings are recorded, not shown, so that they reach
    the caller from another process too; those of this thread only
    (:func:`adareg.thread_warnings.recording`), so that a worker's threads record each their own chunk's.
    """
    slices = slices.view()
    slices.flags.writeable = False  # a task that wrote to its input would change the stack and the retries' slices
    fft_setting = contextlib.nullcontext() if fft_threads is None else threads.fft_workers_here(fft_threads)
    with fft_setting, thread_warnings.recording() as notes:
        result = _run_chunk(task, slices, numbers)
    return result, list(dict.fromkeys(notes))


def _run_chunk(task: SliceTask, slices: np.ndarray, numbers: Sequence[int]) -> np.ndarray:
    try:
        return _checked(task(slices), len(slices))
    except Exception as err:
        if len(slices) == 1:
            raise SliceError(f"slice {numbers[0]}: {type(err).__name__}: {checks.one_line(err)}") from err
    parts = []
    for offset in range(len(slices)):
        try:
            parts.append(_checked(task(slices[offset:offset + 1]), 1))
        except Exception as err:
            raise SliceError(f"slice {numbers[offset]}: {type(err).__name__}: {checks.one_line(err)}") from err
    return np.concatenate(parts)  # the chunk failed as a whole, but every slice alone succeeded


def _checked(result: Any, count: int) -> np.ndarray:
    result = backend.to_numpy(result)
    if result.ndim < 1 or len(result) != count:
        raise ValueError(f"the task returned shape {result.shape} for {count} slices")
    return result


def _assemble(done: Iterator[tuple[int, np.ndarray, Notes]], numbers: list[int], bar: Any) -> np.ndarray:
    """Place each chunk's results at its positions as they arrive, and raise its warnings again here."""
    count = len(numbers)
    out: np.ndarray | None = None
    for start, result, notes in done:
        where = _named(numbers[start:start + len(result)])
        for category, message in notes:
            warnings.warn(f"{where}: {message}", category, stacklevel=3)
        if out is None:
            out = np.empty((count, *result.shape[1:]), dtype=result.dtype)
        elif result.shape[1:] != out.shape[1:]:
            raise ValueError(f"map_slices: {where} gave results of shape {result.shape[1:]}, earlier ones "
                             f"{out.shape[1:]}")
        elif result.dtype != out.dtype:
            raise ValueError(f"map_slices: {where} gave results of dtype {result.dtype}, earlier ones "
                             f"{out.dtype}; the task must return one dtype for every chunk")
        out[start:start + len(result)] = result
        bar.update(len(result))
    assert out is not None
    return out


def _named(numbers: list[int]) -> str:
    """``slice 3``, ``slices 3-5`` (consecutive) or ``slices 1, 4, 9``."""
    if len(numbers) == 1:
        return f"slice {numbers[0]}"
    if numbers == list(range(numbers[0], numbers[0] + len(numbers))):
        return f"slices {numbers[0]}-{numbers[-1]}"
    return f"slices {', '.join(map(str, numbers))}"


# ------------------------------------------------------------------------------------------------- dask
def _distributed() -> Any:
    try:
        return importlib.import_module("distributed")
    except ImportError:
        raise ImportError("running on several processes or machines needs Dask: pip install adareg[distributed]"
                          ) from None


class _client:
    """The Dask client of ``workers`` (a new local cluster, closed after) or ``scheduler`` (an address or a client).

    A client made here is not made Dask's default client, which stays the caller's (one left connecting at an
    address where no scheduler answered took its place).
    """

    def __init__(self, workers: int | None, scheduler: Any):
        distributed = _distributed()
        self.own: list[Any] = []
        if isinstance(scheduler, distributed.Client):
            if scheduler.status in ("closing", "closed"):  # Dask's own calls on it fail deep inside, unnamed
                raise ValueError(f"map_slices: scheduler is a dask Client that is {scheduler.status} (it, or its "
                                 "cluster, was closed); pass an open one")
            self.client = scheduler
        elif scheduler is not None:
            if not isinstance(scheduler, str):
                raise TypeError(f"map_slices: scheduler must be an address or a dask Client, got "
                                f"{type(scheduler).__name__}")
            try:
                self.client = _connected(distributed, scheduler)
            except (OSError, ValueError, MemoryError) as err:  # MemoryError: another service's reply read as a size
                raise ConnectionError(f"map_slices: scheduler {scheduler!r}: no Dask scheduler answered there "
                                      f"({type(err).__name__}: {checks.one_line(err)}); expected its address, e.g. "
                                      "tcp://HOST:8786 (not the dashboard's port)") from err
            except TypeError as err:  # Dask's connector of tls:// without a Security, of ucx:// without UCX
                scheme = scheduler.partition("://")[0]
                raise ConnectionError(f"map_slices: scheduler {scheduler!r}: Dask cannot connect by {scheme}:// "
                                      f"with this process's settings ({type(err).__name__}: {checks.one_line(err)}); "
                                      "pass a dask Client made with the protocol's settings instead (tls: "
                                      "distributed.security.Security; ucx: the distributed-ucxx package)") from err
            self.own = [self.client]
        else:
            workers = checks.count(workers, "map_slices: workers")
            # Dask starts workers with MALLOC_TRIM_THRESHOLD_ set, which turns every large temporary array into
            # a fresh memory mapping and doubles a solve's time; glibc's own threshold is kept instead.
            # The dashboard goes on a free port: None would still serve on 8787 and warn when it is taken.
            with importlib.import_module("dask").config.set({TRIM_SETTING: None}):
                cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                   dashboard_address=":0")
            try:
                self.client = distributed.Client(cluster, set_as_default=False)
            except BaseException:  # (a timeout, Ctrl-C): the workers would outlive the call
                cluster.close()
                raise
            self.own = [self.client, cluster]

    def __enter__(self) -> Any:
        return self.client

    def __exit__(self, *exc: Any) -> None:
        for thing in self.own:
            thing.close()


def _connected(distributed: Any, address: str) -> Any:
    """A client of the scheduler at ``address``; one that fails to connect is closed here, in this thread.

    Left to the garbage collector, it was closed in whichever thread collected it, e.g. in another client's event
    loop as it started, where the close waited for a lock that the start held, until the start timed out.  A
    client that Dask closed itself (a refused port) left its event loop's thread running, one per call.
    """
    client = distributed.Client.__new__(distributed.Client)  # held before it connects, to be closed if it cannot
    try:
        client.__init__(address, set_as_default=False)
    except BaseException:
        with contextlib.suppress(Exception):  # the connection's error is the one to tell
            client.close()
        with contextlib.suppress(Exception):  # (Dask's private loop runner: close leaves it where Dask closed first)
            client._loop_runner.stop()
        raise
    return client


def _on_dask(client: Any, task: SliceTask, stack: Any, starts: range, chunk: int, numbers: list[int]
             ) -> Iterator[tuple[int, np.ndarray, Notes]]:
    """The chunks' results as Dask computes them, at most two per worker thread (as many as there are now) in flight."""
    distributed = _distributed()
    run = f"adareg-slices-{secrets.token_hex(6)}"
    pending = iter(starts)
    in_flight: dict[Any, int] = {}
    window = distributed.as_completed(loop=client.loop)  # else the default client's loop, which may be another's

    def refill() -> None:
        room = 2 * max(1, sum(client.nthreads().values())) - len(in_flight)
        for start in _take(pending, room):
            with warnings.catch_warnings():  # each chunk carries its slices by design (fastMRI slices are large)
                warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
                future = client.submit(_run_chunk_on_dask, task, _slices(stack, start, chunk),
                                       numbers[start:start + chunk], key=f"{run}-{start}")
            in_flight[future] = start
            window.add(future)

    refill()
    try:
        for future in window:
            start = in_flight[future]
            try:
                result, notes = future.result()
            except distributed.KilledWorker:
                raise SliceError(f"{_named(numbers[start:start + chunk])}: the worker computing them died at every "
                                 "try (killed for lack of memory? try a smaller chunk, or more memory per worker)"
                                 ) from None
            if isinstance(result, SliceError):
                raise result
            del in_flight[future]  # only now: a failed chunk is cancelled below, which releases its data on Dask
            refill()
            yield start, result, notes
    finally:
        client.cancel(list(in_flight))


def _run_chunk_on_dask(task: SliceTask, slices: np.ndarray, numbers: Sequence[int]
                       ) -> tuple[np.ndarray | SliceError, Notes]:
    """:func:`run_chunk` with one FFT thread; a failed slice's :class:`SliceError` is returned, for the caller to
    raise: raised on the worker, it was logged there too ("Compute Failed", the task and a traceback)."""
    try:
        return run_chunk(task, slices, numbers, fft_threads=1)
    except SliceError as err:
        return err, []


def _take(iterator: Iterator[int], count: int) -> list[int]:
    return [value for _, value in zip(range(count), iterator)]


# -------------------------------------------------------------------------------------------- slice tasks
def regularizer(model: str, shape: tuple[int, int]) -> Any:
    """The regularizer named ``model``: ``"tv"`` on ``shape``, or a shipped model or parameter file (cached)."""
    if model == "tv":

        return TV(shape)
    return cached_model(model)


def cached_model(model: str) -> Any:
    """A learned model by name or parameter file, loaded once per process, and again for a file that has changed.

    A file is known by its resolved path, inode, size and modification and change times:
    one rewritten in place (e.g. by further training), one put in its place with its old
    modification time (``cp -p``, ``rsync -a``: the change time moves all the same), or a
    relative path after a change of folder, is not the model loaded before.
    """
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be 'tv', a shipped model's name or a parameter file, got {model!r:.60}")
    path = Path(model)
    version = None
    if path.is_file():
        status = path.stat()
        version = (str(path.resolve()), status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
    return _load_version(model, version)


@functools.lru_cache(maxsize=8)
def _load_version(model: str, version: tuple[str, int, int, int, int] | None) -> Any:
    """``params.load(model)``, once per ``version`` of its file (see :func:`cached_model`)."""
    return params.load(model)


@dataclass(frozen=True)
class Denoise:
    """Denoise slices ``(n, H, W)`` in the units ``low`` to ``high`` (mapped to [0, 1] for the model).

    Each slice is ``low + (high - low) x`` with ``x`` the solution of
    :func:`adareg.solve` (``H = I``, bounds [0, 1]) for the slice mapped to [0, 1].
    ``sigma`` is the noise level on that [0, 1] scale (required for a learned model,
    unused by ``"tv"``); ``lam`` defaults to the trained value of a learned model (and
    is required for ``"tv"``).

    Raises
    ------
    ValueError
        At construction: ``"tv"`` without ``lam``, a learned model without ``sigma``,
        ``sigma`` or ``lam`` not positive, an unknown ``device``, or ``low``, ``high``
        not finite with ``low < high`` (a ``TypeError`` where one is not a number); an
        unknown model or unreadable parameter file
        (a :class:`~adareg.params.ParameterFileError`; a file must be readable here as
        well as on the workers).  On a chunk: where more
        than 1% of a slice's values lie beyond ``low`` and ``high`` by more than half their
        span (:func:`adareg.intensities.far_outside`), which noise does not do: the
        units are another scale's (e.g. 8-bit values with the default ``high = 1``),
        and the output, kept within ``[low, high]``, would be cut off.
    """

    model: str
    sigma: float | None = None
    lam: float | None = None
    low: float = 0.0
    high: float = 1.0
    device: str = "cpu"

    def __post_init__(self) -> None:
        _check_device("Denoise", self.device)
        for name in ("sigma", "lam"):
            if getattr(self, name) is not None:
                checks.positive(getattr(self, name), f"Denoise: {name}")
        if self.model != "tv":
            cached_model(self.model)  # an unknown name or a bad file, named here rather than on every slice
        if self.model == "tv" and self.lam is None:
            raise ValueError("Denoise: lam is required for 'tv' (it has no trained value; e.g. 0.8 sigma)")
        if self.model != "tv" and self.sigma is None:
            raise ValueError(f"Denoise: sigma is required for the learned model {self.model!r} (its noise level)")
        for name in ("low", "high"):  # floats (frozen: set once, here): uint8 slices - an int low would wrap around
            object.__setattr__(self, name, checks.real_number(getattr(self, name), f"Denoise: {name}"))
        if not self.low < self.high:
            raise ValueError(f"Denoise: the units need finite low < high (mapped to 0 and 1), got low {self.low:g}, "
                             f"high {self.high:g}")

    def __call__(self, slices: np.ndarray) -> np.ndarray:
        _check_slices(slices, "Denoise", "(n, H, W) images")
        shape = tuple(slices.shape[-2:])
        reg = regularizer(self.model, shape)
        span = self.high - self.low
        found = first_slice_outside(slices, self.low, self.high)
        if found:
            number, outside = found
            image = slices[number]
            raise ValueError(f"Denoise: {outside} of {image.size} values of a slice lie beyond "
                             f"the units [low, high] = [{self.low:g}, {self.high:g}] by more than half their span "
                             f"(the slice spans [{float(np.min(image)):g}, {float(np.max(image)):g}]); the output "
                             "is kept within [low, high], so give the data's own units (e.g. high=255 for 8-bit "
                             "values)")
        y = backend.to_device(((slices - self.low) / span).astype(np.float32), self.device)
        learned = self.model != "tv"
        result = solve(Identity(shape), y, reg, lam=self.lam, sigma=self.sigma if learned else None,
                       bounds=(0.0, 1.0))
        _warn_unconverged(result, len(slices))
        return (self.low + span * backend.to_numpy(result.x)).astype(np.float32)


def _warn_unconverged(result: Any, slices: int, together: bool = True) -> None:
    """A :class:`ConvergenceWarning` where ``result`` stopped at a cap: the task returns only its images.

    ``result`` is the solve of ``slices`` slices of a chunk at once (``together``), whose
    result tells whether all converged, not which did not; or of one of them alone.
    """
    if result.converged:
        return
    if slices == 1:
        message = f"the solver did not converge ({result.message}); the output is its last iterate"
    else:
        which, output = ((f"solved together, at least one of these {slices} slices", "their outputs are") if together
                         else (f"one of these {slices} slices, each solved alone,", "its output is"))
        message = (f"{which} did not converge ({result.message}); {output} the solver's last iterate; one slice "
                   "per chunk (map_slices' chunk=1, adareg's --chunk 1) tells which")
    warnings.warn(message, ConvergenceWarning, stacklevel=2)


def _check_slices(slices: np.ndarray, task: str, expected: str, ndim: int = 3, real: bool = True) -> None:
    """Refuse a chunk without its slice axis (a 2D image would be cut into rows, ``chunk`` of them an image), and
    where ``real``, complex values (whose imaginary part the cast to float32 would drop)."""
    if np.ndim(slices) != ndim:
        raise ValueError(f"{task}: expected a chunk of {expected}, got shape {np.shape(slices)}; give map_slices a "
                         "stack with the slices along its first axis (e.g. image[None] for one image)")
    if real and np.iscomplexobj(slices):
        dtype = slices.dtype if hasattr(slices, "dtype") else np.asarray(slices).dtype  # no host copy of CuPy's
        raise TypeError(f"{task}: expected real {expected}, got dtype {dtype}; pass "
                        "magnitudes (abs) or the real part, as fits the data")


def _check_device(task: str, device: Any) -> None:
    """A ``ValueError`` naming ``task`` unless ``device`` is ``"cpu"`` or ``"gpu"`` (checked when a task is built)."""
    if device not in get_args(backend.Device):
        raise ValueError(f"{task}: device must be 'cpu' or 'gpu', got {device!r}")


def _check_iterative(task: str, model: str, lam: Any, sigma: Any) -> None:
    """The weights of an iterative ``model`` of ``task``: ``lam`` (required: a trained value holds for denoising
    only), and ``sigma`` for a learned model only; an unknown model or a bad file is named here, once, rather
    than on every chunk."""
    if model != "tv":
        cached_model(model)
    if lam is None:
        raise ValueError(f"{task}: lam is required for {model!r} (its trained value holds for denoising only; "
                         "adareg.presets or adareg.tune give one)")
    checks.positive(lam, f"{task}: lam")
    if model != "tv" and sigma is None:
        raise ValueError(f"{task}: sigma is required for the learned model {model!r}")
    if sigma is not None:
        if model == "tv":
            raise ValueError(f"{task}: sigma is a parameter of the learned models; 'tv' has none")
        checks.positive(sigma, f"{task}: sigma")


def _refuse_weights(task: str, model: str, lam: Any, sigma: Any) -> None:
    """A ``ValueError`` for ``lam`` or ``sigma`` given to a direct ``model`` of ``task``, which would ignore them."""
    given = [name for name, value in (("lam", lam), ("sigma", sigma)) if value is not None]
    if given:
        raise ValueError(f"{task}: {' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to the "
                         f"iterative models; {model!r} has none")


def cached_ray_transform(size: int, angles: int | tuple[float, ...], geometry: tuple[tuple[str, Any], ...]) -> Any:
    """A :class:`~adareg.operators.RayTransform`, built once per process for one geometry.

    The cache tells the arguments apart by their types too (``48`` from ``48.0``, ``1``
    from ``True``), so that whether an argument is accepted does not hang on what was
    built before.
    """
    typed = tuple((type(value).__name__, value) for value in (size, angles, *(value for _, value in geometry)))
    return _ray_transform(size, angles, geometry, typed)


@functools.lru_cache(maxsize=4)
def _ray_transform(size: int, angles: Any, geometry: tuple[tuple[str, Any], ...], typed: tuple) -> Any:
    """:func:`cached_ray_transform`, cached on ``typed``, the arguments with their types."""
    return RayTransform((size, size), angles, **dict(geometry))


#: SENSE's Tikhonov weight where :class:`FastMRIReconstruction` and ``adareg mri --model sense`` get no ``lam``.
SENSE_LAM = 1e-2

#: The data weights of :class:`CTReconstruction` (and ``adareg ct --data-weights``).
DATA_WEIGHTS = ("transmission", "uniform")


@dataclass(frozen=True)
class CTReconstruction:
    """Reconstruct sinograms ``(n, angles, detectors)`` as ``(n, size, size)`` images.

    ``angles`` is a count or the angles in radians (kept as a tuple), and ``geometry``
    holds :class:`~adareg.operators.RayTransform`'s other keyword arguments, a dict or
    ``(name, value)`` pairs, kept as sorted pairs (hashable, so each process builds the
    operator once).  ``model="fbp"`` gives the filtered back-projection; otherwise
    :func:`adareg.solve` with ``x >= 0`` and ``lam`` (and a learned model's ``sigma``),
    started from the FBP of ``window``, with the data weights ``data_weights``:
    ``"transmission"``, :func:`adareg.ct.transmission_weights` (those the CT presets were
    tuned with, for the log-transformed data of a transmission scan), or ``"uniform"``.
    The arguments are checked here, not on every chunk (the geometry by building the
    operator, where ASTRA is installed).
    """

    size: int
    angles: int | tuple[float, ...]
    geometry: tuple[tuple[str, Any], ...] | dict[str, Any]  # kept as sorted pairs
    model: str = "fbp"
    lam: float | None = None
    sigma: float | None = None
    window: str = "hann"
    device: str = "cpu"
    data_weights: str = "transmission"

    def __post_init__(self) -> None:
        checks.count(self.size, "CTReconstruction: size")
        if self.data_weights not in DATA_WEIGHTS:
            raise ValueError(f"CTReconstruction: data_weights must be one of {', '.join(map(repr, DATA_WEIGHTS))}, "
                             f"got {self.data_weights!r}")
        _check_device("CTReconstruction", self.device)
        if not checks.is_int(self.angles):
            values = np.asarray(backend.to_numpy(self.angles) if backend.is_array(self.angles) else self.angles)
            if values.dtype.kind not in "iuf" or values.ndim != 1:
                raise TypeError(f"CTReconstruction: angles must be a count or a sequence of angles in radians, got "
                                f"{self.angles!r:.60}")
            # frozen: set once, here, as a hashable tuple (the workers' operator cache needs one)
            object.__setattr__(self, "angles", tuple(float(a) for a in values))
        if self.model == "fbp":
            _refuse_weights("CTReconstruction", self.model, self.lam, self.sigma)
        else:
            _check_iterative("CTReconstruction", self.model, self.lam, self.sigma)
        pairs = self.geometry.items() if isinstance(self.geometry, dict) else self.geometry
        try:
            pairs = tuple(sorted((name, value) for name, value in pairs))
        except (TypeError, ValueError):
            pairs = None
        if pairs is None or not all(isinstance(name, str) for name, _ in pairs):
            raise TypeError(f"CTReconstruction: geometry must be a dict or (name, value) pairs of RayTransform's "
                            f"keyword arguments, got {self.geometry!r:.80}")
        object.__setattr__(self, "geometry", pairs)  # frozen: set once, here
        check_window(self.window, "CTReconstruction")
        try:  # the operator, built once here: a wrong geometry is the task's error, not a failure of each slice
            cached_ray_transform(self.size, self.angles, self.geometry)
        except ImportError:  # no ASTRA in this process (a client of workers that have it): they check it
            pass
        except (TypeError, ValueError) as error:
            raise type(error)(f"CTReconstruction: {error}") from error

    def __call__(self, sinograms: np.ndarray) -> np.ndarray:
        _check_slices(sinograms, "CTReconstruction", "(n, angles, detectors) sinograms")
        H = cached_ray_transform(self.size, self.angles, self.geometry)
        y = backend.to_device(sinograms.astype(np.float32), self.device)
        if self.model == "fbp":
            return backend.to_numpy(fbp(H, y, window=self.window))
        reg = regularizer(self.model, (self.size, self.size))
        weights = transmission_weights(y) if self.data_weights == "transmission" else None
        result = solve(H, y, reg, lam=self.lam, sigma=self.sigma, bounds=(0.0, None), x0=fbp(H, y, window=self.window),
                       weights=weights)
        _warn_unconverged(result, len(sinograms))
        return backend.to_numpy(result.x)


@dataclass(frozen=True)
class FastMRIReconstruction:
    """Reconstruct fastMRI k-space slices ``(n, coils, rows, columns)`` as magnitude images ``(n, h, w)``.

    Per slice: the sampled k-space ``M y`` (``mask`` over columns), ESPIRiT coil maps
    from it (:func:`adareg.mri.slice_operator`), and

    - ``"zero-filled"``: the root-sum-of-squares of the coil images (fastMRI's baseline);
    - ``"sense"``: :func:`adareg.mri.sense`;
    - otherwise :func:`adareg.solve` for a real, nonnegative image under the phase of
      the fully sampled centre (``slice_operator(..., real=True)``: the learned models
      are trained on real images), with the data scaled so that the zero-filled
      image's largest value is 1 (``lam`` and ``sigma`` refer to that scale) and
      scaled back.

    The magnitude is cropped to ``recon_shape`` as fastMRI does, by every model
    (:func:`~adareg.mri.reconstruction_crop`).  The model, its weights and the
    device are checked here, not on every chunk: ``lam`` and ``sigma`` are refused
    where the model takes none (``"sense"`` takes ``lam``, its Tikhonov weight,
    :data:`SENSE_LAM` by default).
    """

    mask: tuple[bool, ...]
    recon_shape: tuple[int, int]
    model: str = "zero-filled"
    lam: float | None = None
    sigma: float | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        _check_device("FastMRIReconstruction", self.device)
        if self.model == "zero-filled":
            _refuse_weights("FastMRIReconstruction", self.model, self.lam, self.sigma)
        elif self.model == "sense":
            if self.sigma is not None:
                raise ValueError("FastMRIReconstruction: sigma is a parameter of the learned models; 'sense' has none")
            if self.lam is not None:  # its Tikhonov weight may be 0, as for adareg.mri.sense
                checks.non_negative(self.lam, "FastMRIReconstruction: lam")
        else:
            _check_iterative("FastMRIReconstruction", self.model, self.lam, self.sigma)

    def __call__(self, kspace: np.ndarray) -> np.ndarray:
        _check_slices(kspace, "FastMRIReconstruction", "(n, coils, rows, columns) k-space", ndim=4, real=False)
        return np.stack([self._one(k, len(kspace)) for k in kspace])

    def _one(self, kspace: np.ndarray, chunk: int) -> np.ndarray:
        """One slice's reconstruction, of a ``chunk`` of this many (named in a warning)."""
        mask = np.asarray(self.mask)
        if self.model == "zero-filled":  # on the device asked for, as every model (a missing GPU is named)
            rss = mri.zero_filled_rss(backend.to_device(kspace[None], self.device), mask, self.recon_shape)
            return backend.to_numpy(rss[0])
        y = backend.to_device(np.asarray(kspace * mask, dtype=np.complex64), self.device)
        if self.model == "sense":
            result = mri.sense(mri.slice_operator(y, mask), y, lam=SENSE_LAM if self.lam is None else self.lam)
            x = result.x
        else:
            H = mri.slice_operator(y, mask, real=True)
            scale = float(backend.namespace(y).max(backend.namespace(y).abs(H.H(y))))
            scale = scale if scale > 0 and math.isfinite(scale) else 1.0
            reg = regularizer(self.model, tuple(kspace.shape[-2:]))
            result = solve(H, y / scale, reg, lam=self.lam, sigma=self.sigma, bounds=(0.0, None))
            x = result.x * scale
        _warn_unconverged(result, chunk, together=False)
        magnitude = backend.to_numpy(backend.namespace(x).abs(x))
        crop = mri.reconstruction_crop(self.recon_shape, magnitude.shape, "FastMRIReconstruction")
        return mri.center_crop(magnitude, crop).astype(np.float32)
