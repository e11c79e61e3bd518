"""X-ray transforms on the ASTRA toolbox: 2D parallel and fan beam, 3D parallel and cone beam."""

from __future__ import annotations

import importlib
import math
import numbers
import warnings
import weakref
from types import ModuleType
from typing import Any, Literal

import numpy as np

from .. import backend, checks, threads
from ..backend import Array
from .base import LinearOperator, as_shape, batch_shape

Geometry = Literal["parallel", "fan", "cone"]


#: :class:`RayTransform` warns where a detector cell, at the rotation centre, is wider than this many pixels
#: (most pixels then share their rays), or where the detector row covers less than :data:`LEAST_COVERAGE` of
#: the image's narrower side: both what ``pixel_size`` and ``detector_spacing`` in different units give.
WIDEST_CELL_PIXELS = 4.0
LEAST_COVERAGE = 0.25
#: :meth:`~adareg.operators.RayTransform.check_measurements` warns where the totals of a 2D parallel-beam
#: sinogram's rows spread (their standard deviation) by more than this fraction of their mean magnitude: each row
#: of line integrals sums to the object's mass, so noise moves the totals by a few per cent at most, while a
#: transposed sinogram (detectors, angles) spreads them by most of their mean.
ROW_TOTAL_SPREAD = 0.1
#: Angles times image pixels of a 2D projection from which the host projects groups of angles on
#: several threads at once (ASTRA's CPU projectors run on one thread each); below it a thread's start
#: costs about what it saves (measured in docs/results-log.md, "CT projections on two threads").
THREADED_PROJECTION_SIZE = 1 << 16


def _covering_count(image_shape: tuple[int, ...], pixel_size: float, spacing: float, magnification: float) -> int:
    """Detector cells that cover the image's diagonal, magnified, from every angle: :class:`RayTransform`'s default."""
    return math.ceil(math.hypot(*image_shape[-2:]) * pixel_size * magnification / spacing) + 1


def fitting_image_size(detector_count: int, *, geometry: Geometry = "parallel", pixel_size: float = 1.0,
                       detector_spacing: float | None = None, source_distance: float | None = None,
                       detector_distance: float | None = None) -> int:
    r"""The largest ``N`` such that the detector row covers an ``N x N`` image from every angle.

    That is, the largest ``N`` whose :class:`RayTransform` default ``detector_count``
    is at most the given one: :math:`\lceil \sqrt 2 N p M / s \rceil + 1`, with pixel
    size :math:`p`, detector spacing :math:`s` (default :math:`p`) and, for a fan beam,
    the magnification :math:`M = (D_s + D_d) / (D_s - r)` of the image's corner
    (:math:`r = N p / \sqrt 2`), which shrinks the image that fits; a parallel beam
    has :math:`M = 1`.  2D geometries (``"parallel"``, ``"fan"``) only.

    Raises
    ------
    ValueError
        If no image of at least one pixel fits (too few detectors, or a source too near).
    """
    detector_count = checks.count(detector_count, "fitting_image_size: detector_count")
    pixel_size = checks.positive(pixel_size, "fitting_image_size: pixel_size")
    spacing = pixel_size if detector_spacing is None else checks.positive(detector_spacing,
                                                                           "fitting_image_size: detector_spacing")
    if geometry not in ("parallel", "fan"):
        raise ValueError(f"fitting_image_size: geometry must be 'parallel' or 'fan', got {geometry!r}")

    def fits(n: int) -> bool:
        if geometry == "fan" and not source_distance > 0.5 * pixel_size * math.hypot(n, n):
            return False  # the source would lie inside the image
        magnification = _distances(geometry, (n, n), pixel_size, source_distance, detector_distance,
                                   "fitting_image_size")[2]
        return _covering_count((n, n), pixel_size, spacing, magnification) <= detector_count

    if geometry == "fan":  # the distances are checked once, on the smallest image
        _distances(geometry, (1, 1), pixel_size, source_distance, detector_distance, "fitting_image_size")
    # the count grows with n: bisect on [1, the parallel beam's bound]
    low, high = 0, max(1, math.floor((detector_count - 1) * spacing / (math.sqrt(2) * pixel_size)))
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    if low == 0:
        raise ValueError(f"fitting_image_size: no image fits {detector_count} detectors of spacing {spacing:g} "
                         f"(pixel size {pixel_size:g}" + (f", source distance {source_distance:g})" if geometry == "fan"
                                                          else ")"))
    return low


def _astra() -> ModuleType:
    try:
        astra = importlib.import_module("astra")
        importlib.import_module("astra.experimental")
    except ImportError:
        raise ImportError("RayTransform needs the ASTRA toolbox: pip install adareg[ct]") from None
    return astra


def _distances(geometry: str, image_shape: tuple[int, ...], pixel_size: float, source_distance: Any,
               detector_distance: Any, who: str) -> tuple[float | None, float | None, float]:
    """Checked source and detector distances (``None`` for parallel beam) and the largest magnification; ``who``
    names the caller in errors."""
    if geometry == "parallel":
        if source_distance is not None or detector_distance is not None:
            raise ValueError(f"{who}: source_distance and detector_distance apply to fan and cone beam only")
        return None, None, 1.0
    if source_distance is None or detector_distance is None:
        raise ValueError(f"{who}: geometry {geometry!r} needs source_distance and detector_distance")
    source_distance = checks.real_number(source_distance, f"{who}: source_distance")
    detector_distance = checks.real_number(detector_distance, f"{who}: detector_distance")
    radius = 0.5 * pixel_size * math.hypot(*image_shape[-2:])
    if not source_distance > radius or detector_distance < 0:
        raise ValueError(
            f"{who}: the source must lie outside the image (source_distance > {radius:.4g}) "
            f"and detector_distance must be >= 0, got {source_distance} and {detector_distance}"
        )
    return source_distance, detector_distance, (source_distance + detector_distance) / (source_distance - radius)


def _warn_on_coverage(image_shape: tuple[int, ...], pixel_size: float, spacing: float, count: int,
                      magnification: float) -> None:
    """Warn where the detector row sees the image at far coarser cells than its pixels, or misses most of it
    (:data:`WIDEST_CELL_PIXELS`, :data:`LEAST_COVERAGE`); ``magnification`` that of the rotation centre."""
    cell = spacing / magnification / pixel_size  # a detector cell at the rotation centre, in pixels
    width = min(image_shape[-2:])
    units = "detector_spacing and pixel_size are in one unit"
    if cell > WIDEST_CELL_PIXELS:
        warnings.warn(f"RayTransform: a detector cell spans {cell:.3g} pixels at the rotation centre, so that the "
                      f"image ({width} pixels wide) falls on about {width / cell:.3g} cells ({units})", stacklevel=3)
    elif count * cell < LEAST_COVERAGE * width:
        warnings.warn(f"RayTransform: the {count} detector cells cover {count * cell:.3g} of the image's {width} "
                      f"pixels across at the rotation centre, so that the rays miss most of it ({units}; the "
                      "default detector_count covers the whole image)", stacklevel=3)


def _angles(angles: Any, full_circle: bool) -> np.ndarray:
    """Projection angles in radians: ``n`` equispaced angles, or the given array."""
    if checks.is_int(angles):
        if angles < 1:
            raise ValueError(f"RayTransform: angles must be a positive count or an array of angles, got {angles}")
        span = 2 * np.pi if full_circle else np.pi
        return np.linspace(0.0, span, int(angles), endpoint=False)
    # a float count (e.g. n / 2) or a single angle: counts are ints, as detector_count is
    if isinstance(angles, numbers.Number) or getattr(angles, "shape", None) == ():
        raise TypeError(f"RayTransform: angles must be an int count or a 1D array of angles in radians, got "
                        f"{angles!r:.60}")
    backend.check_plain(angles, "RayTransform: angles")  # asarray would drop a mask unseen
    values = backend.to_numpy(backend.as_array(angles, "RayTransform: angles"))
    if values.dtype.kind not in "iuf":
        raise TypeError(f"RayTransform: angles must be a positive count or an array of real angles, got dtype "
                        f"{values.dtype}")
    values = values.astype(np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(
            f"RayTransform: angles must be a positive count or a non-empty 1D array, got shape {values.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError("RayTransform: angles contain NaN or Inf")
    span = float(values.max() - values.min())
    if span > 2 * np.pi + 1e-9:  # more than one turn: most likely degrees
        warnings.warn(f"RayTransform: the angles span {span:.4g} radians, more than a full turn; angles are in "
                      "radians (numpy.deg2rad converts degrees)", stacklevel=3)
    return values


class RayTransform(LinearOperator):
    r"""The X-ray (Radon) transform of an image: its line integrals along the rays of a scan.

    .. math:: (A x)(\theta, s) = \int_{\mathrm{ray}(\theta, s)} x(r) \, \mathrm{d}r

    discretised by ASTRA's projectors (Joseph's linear interpolation for 2D
    parallel beam, ray-driven line integrals for 2D fan beam on the CPU; ASTRA's
    CUDA projectors on the GPU).  Lengths are physical: pixels have side
    ``pixel_size`` and detector cells ``detector_spacing``, in the same unit, so a
    disk of diameter ``d`` (in that unit) and value 1 projects to ``d``.

    The image is a centred ``H x W`` (2D) or ``D x H x W`` (3D) grid.  The output is
    the sinogram, ``(n_angles, detector_count)`` in 2D and ASTRA's
    ``(detector_rows, n_angles, detector_count)`` in 3D.  In 2D, with ``x`` along the
    columns and ``y`` up (row 0 at the top), cell ``j`` of ``m`` lies at
    :math:`u_j = (j - (m - 1)/2) \, d` along :math:`e = (\cos\theta, \sin\theta)`: a
    parallel ray is the line :math:`x \cos\theta + y \sin\theta = u_j`; a fan ray runs
    from the source at :math:`D_s (\sin\theta, -\cos\theta)` to the cell at
    :math:`-D_d (\sin\theta, -\cos\theta) + u_j e` (docs/tutorials/ct.md, "Geometry
    conventions").

    ``A.H`` is the transpose of the same projector: an exact adjoint on the CPU
    (checked to float32 rounding); on the GPU, ASTRA's CUDA back-projector, which
    interpolates with the texture units and is the adjoint only to about their
    precision (a relative mismatch of order 1e-3).

    The array decides where it runs: NumPy arrays use the CPU projectors, CuPy
    arrays the CUDA projectors directly on GPU memory (through DLPack, no host
    copies).  3D geometries exist on the GPU only: without CUDA they raise a
    ``RuntimeError`` here rather than crash inside ASTRA.

    ASTRA computes in float32: inputs are converted once at the boundary and
    the outputs are float32 (complex64 for complex inputs, whose real and
    imaginary parts are projected separately).

    Parameters
    ----------
    image_shape
        ``(H, W)`` for 2D, ``(D, H, W)`` for 3D.
    angles
        Number (an int) of equispaced angles (over [0, pi) for parallel beam, [0, 2 pi)
        for fan and cone beam), or an array of angles in radians (one that spans more
        than a full turn, as degrees would, gets a warning).
    geometry
        ``"parallel"`` (2D or 3D), ``"fan"`` (2D, flat detector) or ``"cone"`` (3D, flat detector).
    detector_count
        Detector cells per row (default: enough to see the whole image).
    detector_spacing
        Width of a detector cell (default: ``pixel_size``).
    pixel_size
        Side of a pixel (voxel).
    source_distance, detector_distance
        Source-to-rotation-centre and rotation-centre-to-detector distances (fan and cone beam),
        finite: the source outside the image, the detector at ``>= 0``.
    detector_rows
        Detector rows in 3D (default: ``D``, or enough for the cone).
    """

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("angles", "geometry", "pixel_size", "detector_spacing", "detector_count", "source_distance",
              "detector_distance", "vol_geom", "proj_geom")

    precision = np.dtype(np.float32)

    def __init__(self, image_shape: Any, angles: Any, *, geometry: Geometry = "parallel",
                 detector_count: int | None = None, detector_spacing: float | None = None,
                 pixel_size: float = 1.0, source_distance: float | None = None,
                 detector_distance: float | None = None, detector_rows: int | None = None):
        astra = _astra()
        image_shape = as_shape(image_shape, "image_shape")
        if len(image_shape) not in (2, 3):
            raise ValueError(f"RayTransform: image_shape must be (H, W) or (D, H, W), got {image_shape}")
        dims = len(image_shape)
        allowed = ("parallel", "fan") if dims == 2 else ("parallel", "cone")
        if geometry not in allowed:
            raise ValueError(f"RayTransform: a {dims}D image takes geometry {' or '.join(map(repr, allowed))}, "
                             f"got {geometry!r}")
        if dims == 3 and not astra.use_cuda():
            # ASTRA's 3D code kills the process (SIGFPE) without CUDA instead of raising.
            raise RuntimeError("RayTransform: 3D geometries need ASTRA with CUDA and a GPU; none is available here")
        pixel_size = checks.positive(pixel_size, "RayTransform: pixel_size")
        spacing = pixel_size if detector_spacing is None else checks.positive(detector_spacing,
                                                                               "RayTransform: detector_spacing")
        divergent = geometry in ("fan", "cone")
        source_distance, detector_distance, magnification = _distances(geometry, image_shape, pixel_size,
                                                                       source_distance, detector_distance,
                                                                       "RayTransform")
        if detector_count is None:
            detector_count = _covering_count(image_shape, pixel_size, spacing, magnification)
        detector_count = checks.count(detector_count, "RayTransform: detector_count")
        _warn_on_coverage(image_shape, pixel_size, spacing, detector_count,
                          1.0 if not divergent else (source_distance + detector_distance) / source_distance)
        self.angles = backend.read_only(_angles(angles, full_circle=divergent))  # the projectors were built from them
        self.geometry, self.pixel_size, self.detector_spacing = geometry, pixel_size, spacing
        self.detector_count = detector_count
        self.source_distance, self.detector_distance = source_distance, detector_distance
        if dims == 3:
            detector_rows = (math.ceil(image_shape[0] * magnification) if detector_rows is None
                             else checks.count(detector_rows, "RayTransform: detector_rows"))
        elif detector_rows is not None:  # a 2D detector is one row: the argument would be ignored
            raise ValueError(f"RayTransform: detector_rows applies to 3D images only, got {detector_rows!r} for a "
                             f"{image_shape[0]} x {image_shape[1]} image")
        shape_out = self._create_geometries(astra, image_shape, detector_rows)
        super().__init__(image_shape, shape_out, np.float64)
        self._projectors: dict[str, Any] = {}

    def _source_and_detector(self) -> tuple[float, ...]:
        """The distances that ASTRA's divergent-beam geometries take after the angles (none for parallel beam)."""
        return () if self.geometry == "parallel" else (self.source_distance, self.detector_distance)

    def _projection_geometry_2d(self, astra: Any, angles: np.ndarray) -> dict[str, Any]:
        """ASTRA's 2D projection geometry of this operator's detector at ``angles`` (all or a group of them)."""
        kind = "parallel" if self.geometry == "parallel" else "fanflat"
        return astra.create_proj_geom(kind, self.detector_spacing, self.detector_count, angles,
                                      *self._source_and_detector())

    def _create_geometries(self, astra: Any, image_shape: tuple[int, ...], detector_rows: int | None) -> tuple[int, ...]:
        """ASTRA's volume and projection geometries (``vol_geom``, ``proj_geom``); returns the sinogram shape."""
        h, w = image_shape[-2:]
        pixel_size, spacing, count = self.pixel_size, self.detector_spacing, self.detector_count
        half_w, half_h = 0.5 * w * pixel_size, 0.5 * h * pixel_size
        if len(image_shape) == 2:
            self.vol_geom = astra.create_vol_geom(h, w, -half_w, half_w, -half_h, half_h)
            self.proj_geom = self._projection_geometry_2d(astra, self.angles)
            return (len(self.angles), count)
        half_d = 0.5 * image_shape[0] * pixel_size
        rows = int(detector_rows)
        self.vol_geom = astra.create_vol_geom(h, w, image_shape[0], -half_w, half_w, -half_h, half_h, -half_d, half_d)
        kind = "parallel3d" if self.geometry == "parallel" else "cone"
        self.proj_geom = astra.create_proj_geom(kind, spacing, spacing, rows, count, self.angles,
                                                *self._source_and_detector())
        return (rows, len(self.angles), count)

    def __getstate__(self) -> dict[str, Any]:
        """A copy or an unpickled operator (e.g. in another process) makes its own ASTRA projectors: the ids
        are this process's and are freed with this operator."""
        state = super().__getstate__()
        state["_projectors"] = {}
        return state

    def _cuda_projector(self) -> int:
        """ASTRA's CUDA projector id (of 2D images in CuPy arrays, or of 3D images, which ASTRA projects on the GPU
        alone), created on first use and freed with the operator."""
        if "cuda" not in self._projectors:
            astra = _astra()
            if len(self.shape_in) == 3:
                pid = astra.create_projector("cuda3d", self.proj_geom, self.vol_geom)
                weakref.finalize(self, astra.projector3d.delete, pid)
            else:
                if not astra.use_cuda():
                    raise RuntimeError("RayTransform: CuPy arrays need ASTRA built with CUDA")
                pid = astra.create_projector("cuda", self.proj_geom, self.vol_geom)
                weakref.finalize(self, astra.projector.delete, pid)
            self._projectors["cuda"] = pid
        return self._projectors["cuda"]

    def _angle_groups(self) -> list[tuple[slice, int]]:
        """The angles in consecutive groups, one per host thread (:func:`adareg.threads.fft_workers`; one group
        below :data:`THREADED_PROJECTION_SIZE`), each its rows of the sinogram and its ASTRA CPU projector id
        (created on first use and freed with the operator)."""
        size = len(self.angles) * math.prod(self.shape_in)
        count = min(threads.fft_workers(), len(self.angles)) if size >= THREADED_PROJECTION_SIZE else 1
        key = f"cpu/{count}"
        if key not in self._projectors:
            astra = _astra()
            kind = "linear" if self.geometry == "parallel" else "line_fanflat"
            groups = []
            for rows in threads.even_slices(len(self.angles), count):
                pid = astra.create_projector(kind, self._projection_geometry_2d(astra, self.angles[rows]),
                                             self.vol_geom)
                weakref.finalize(self, astra.projector.delete, pid)
                groups.append((rows, pid))
            self._projectors[key] = groups
        return self._projectors[key]

    def _run(self, a: Array, forward: bool) -> Array:
        """Project (``forward``) or back-project every item of a batch, real and imaginary parts apart."""
        xp = backend.namespace(a)
        if a.dtype.kind == "c":
            return self._run(xp.real(a), forward) + 1j * self._run(xp.imag(a), forward)
        experimental = importlib.import_module("astra.experimental")
        shape_in, shape_out = (self.shape_in, self.shape_out) if forward else (self.shape_out, self.shape_in)
        batch = batch_shape(a, shape_in)
        items = xp.reshape(xp.astype(a, xp.float32, copy=False), (-1, *shape_in))
        # ASTRA links NumPy arrays through DLPack, which refuses read-only ones (np.load(mmap_mode="r")):
        # those are copied, as are non-contiguous ones
        items = xp.ascontiguousarray(items) if backend.is_cupy(a) else np.require(items, requirements=["C", "W"])
        out = xp.zeros((items.shape[0], *shape_out), dtype=xp.float32)
        # each item (and each group's rows of a sinogram): C-contiguous float32 of the geometry's exact shape, as
        # ASTRA needs
        three_d = len(self.shape_in) == 3
        if three_d or backend.is_cupy(a):
            pid = self._cuda_projector()
            project = experimental.direct_FP3D if three_d else experimental.direct_FP2D
            back_project = experimental.direct_BP3D if three_d else experimental.direct_BP2D
            for i in range(items.shape[0]):
                project(pid, items[i], out[i]) if forward else back_project(pid, out[i], items[i])
        else:
            groups = self._angle_groups()
            for i in range(items.shape[0]):
                if forward:  # each group projects into its rows
                    threads.in_parallel(lambda group: experimental.direct_FP2D(group[1], items[i], out[i][group[0]]),
                                        groups)
                else:  # the sum of the groups' back-projections
                    parts = [out[i], *(np.zeros_like(out[i]) for _ in groups[1:])]
                    threads.in_parallel(lambda j: experimental.direct_BP2D(groups[j][1], parts[j],
                                                                           items[i][groups[j][0]]),
                                        range(len(groups)))
                    for part in parts[1:]:
                        out[i] += part
        return xp.reshape(out, (*batch, *shape_out))

    def check_measurements(self, y: Array, who: str) -> None:
        r"""Warn where the rows of a 2D parallel-beam sinogram do not sum to one total.

        Each row holds the line integrals across the object at one angle, so
        :math:`d \sum_j p(\theta, u_j) = \int x` at every angle (the zeroth moment
        condition) wherever the detector row covers the object.  A spread of the rows'
        totals (per image) above :data:`~adareg.operators.ct.ROW_TOTAL_SPREAD` of their mean
        magnitude warns: the sinogram is then most likely transposed (detectors, angles), or of
        an object wider than the detector row.  Fan and cone beams have no such simple invariant.
        """
        if self.geometry != "parallel" or len(self.shape_in) != 2 or len(self.angles) < 2:
            return
        xp = backend.namespace(y)
        totals = backend.to_numpy(xp.sum(y.real, axis=-1)).reshape(-1, len(self.angles))  # one row per image
        magnitudes = backend.to_numpy(xp.sum(xp.abs(y), axis=-1)).reshape(totals.shape).mean(axis=-1)
        spread = np.std(totals, axis=-1) / np.where(magnitudes > 0, magnitudes, np.inf)
        if spread.max() > ROW_TOTAL_SPREAD:
            warnings.warn(f"{who}: the rows of this parallel-beam sinogram sum to totals that spread by "
                          f"{spread.max():.2g} of their mean, where each row's total is the object's mass: is it "
                          "(detectors, angles) rather than (angles, detectors), or of an object wider than the "
                          "detector row?", stacklevel=4)

    def _apply(self, x: Array) -> Array:
        return self._run(x, forward=True)

    def _adjoint(self, y: Array) -> Array:
        return self._run(y, forward=False)

    def _upper_bound(self, like: Array | None) -> float:
        # The projector's matrix is non-negative (interpolation weights, intersection lengths): its
        # Collatz-Wielandt bound is guaranteed and converges in a few steps.  On the GPU, A^T is
        # ASTRA's CUDA back-projector, the transpose of the forward one up to texture interpolation.
        return self._nonnegative_bound(like)

    def __repr__(self) -> str:
        return f"RayTransform({self.geometry}, {self.shape_in} -> {self.shape_out})"
