"""MRI acquisition helpers: sampling patterns, coil maps and the zero-filled and SENSE baselines.

Used with :class:`adareg.operators.CartesianMRI` and
:class:`adareg.operators.NonCartesianMRI`, whose conventions they follow: the
centred orthonormal Fourier transform with k-space's DC sample at index ``N // 2``,
trajectories in cycles per field of view within ``[-N/2, N/2]``, coil maps of
shape ``(C, *image_shape)``.  Masks, trajectories and simulated maps are NumPy
arrays (move them with :func:`adareg.to_device` if needed); :func:`espirit_maps`,
:func:`zero_filled` and :func:`sense` run on the data's backend (NumPy or CuPy).
Coil maps need SigPy (``pip install adareg[mri]``), imported when called.

For fastMRI data (read by :func:`adareg.io.fastmri.read_fastmri`), in fastMRI's
conventions: :func:`column_mask` (the file's mask, or a retrospective one),
:func:`slice_operator` (one slice's SENSE model with ESPIRiT maps), and fastMRI's
zero-filled baseline :func:`zero_filled_rss` with its pieces :func:`rss` and
:func:`center_crop`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import numpy as np

from . import backend, caches, checks
from .backend import Array
from .operators.base import LinearOperator, as_shape, check_measurements_of
from .io.fastmri import FastMRIData
from .operators.mri import CartesianMRI, check_complex, sigpy_module
from .solvers.cg import conjugate_gradient
from .solvers.result import Result

Seed = int | np.random.Generator | None


# ------------------------------------------------------------------ sampling
def cartesian_mask(shape: Any, acceleration: float, center_fraction: float, *,
                   kind: Literal["random", "equispaced"] = "random", seed: Seed = None) -> np.ndarray:
    r"""A Cartesian undersampling mask in fastMRI's convention: whole columns sampled.

    Of the ``W = shape[-1]`` columns (phase encodes; the readout runs along the
    other axes, which are fully sampled), the ``n_c = round(W * center_fraction)``
    central ones are always sampled (indices ``(W - n_c + 1) // 2`` to
    ``(W - n_c + 1) // 2 + n_c - 1``, which contain the DC column ``W // 2``), and
    the others so that about ``W / acceleration`` columns are sampled in all:

    - ``"random"`` (fastMRI's ``RandomMaskFunc``): each other column independently
      with probability :math:`p = (W / a - n_c) / (W - n_c)`, so the *expected*
      total is exactly ``W / acceleration``;
    - ``"equispaced"`` (fastMRI's ``EquispacedMaskFractionFunc``): every
      :math:`a' = a (W - n_c) / (W - a n_c)`-th column (rounded), from a random offset
      in ``[0, round(a'))``, so that the total is about ``W / acceleration``. Unlike
      fastMRI, whose columns stop before the last one, the last column can be picked,
      so that ``acceleration=1`` samples every column.

    Parameters
    ----------
    shape
        Shape of k-space (and of the image), e.g. ``(H, W)``.
    acceleration
        Undersampling factor ``a >= 1`` (4 for "x4").
    center_fraction
        Fraction of the columns in the fully sampled centre, e.g. 0.08 at x4;
        at most ``1 / acceleration``.
    kind
        ``"random"`` or ``"equispaced"``.
    seed
        Seed (a non-negative int), generator or ``None`` for the random columns
        (or the equispaced offset).

    Returns
    -------
    numpy.ndarray
        Boolean mask of shape ``shape``, constant along all axes but the last.
    """
    shape = as_shape(shape, "cartesian_mask: shape")
    columns = shape[-1]
    acceleration = checks.real_number(acceleration, "cartesian_mask: acceleration")
    center_fraction = checks.real_number(center_fraction, "cartesian_mask: center_fraction")
    if acceleration < 1:
        raise ValueError(f"cartesian_mask: acceleration must be a finite number >= 1, got {acceleration}")
    if not 0 < center_fraction <= 1:
        raise ValueError(f"cartesian_mask: center_fraction must lie in (0, 1], got {center_fraction}")
    if kind not in ("random", "equispaced"):
        raise ValueError(f"cartesian_mask: kind must be 'random' or 'equispaced', got {kind!r}")
    centre = round(columns * center_fraction)
    if centre < 1:
        raise ValueError(f"cartesian_mask: center_fraction {center_fraction} keeps no column of {columns}")
    if centre > columns / acceleration + 1e-9:
        raise ValueError(
            f"cartesian_mask: a centre of {centre} columns (center_fraction {center_fraction}) is more than "
            f"the {columns / acceleration:g} columns that acceleration {acceleration:g} allows; "
            "lower center_fraction or acceleration"
        )
    rng = checks.random_generator(seed, "cartesian_mask: seed")
    mask = np.zeros(columns, dtype=bool)
    if centre < columns:
        if kind == "random":
            probability = (columns / acceleration - centre) / (columns - centre)
            mask = rng.uniform(size=columns) < probability
        elif columns - acceleration * centre > 1e-9:  # (else the centre alone makes the acceleration)
            step = acceleration * (columns - centre) / (columns - acceleration * centre)
            offset = int(rng.integers(0, max(round(step), 1)))
            picked = np.around(np.arange(offset, columns, step)).astype(int)
            mask[picked[picked < columns]] = True
    start = (columns - centre + 1) // 2
    mask[start:start + centre] = True
    return np.broadcast_to(mask, shape).copy()


def _image_2d(image_shape: Any, who: str) -> tuple[int, int]:
    image_shape = as_shape(image_shape, f"{who}: image_shape")
    if len(image_shape) != 2:
        raise ValueError(f"{who}: image_shape must be (H, W), got {image_shape}")
    return image_shape


def radial_trajectory(image_shape: Any, spokes: int, samples: int | None = None, *,
                      golden: bool = False) -> np.ndarray:
    r"""A 2D radial trajectory: ``spokes`` lines through the centre of k-space.

    Spoke ``s`` at angle :math:`\theta_s` carries the samples
    :math:`\kappa = t \, (\tfrac{H}{2} \sin\theta_s, \tfrac{W}{2} \cos\theta_s)`,
    :math:`t = -1 + 2 j / n` for ``j = 0 .. n - 1`` (``n = samples``), so every
    coordinate lies in ``[-N/2, N/2)``.  The angles are :math:`\theta_s = \pi s / S`
    (uniform over [0, pi)), or with ``golden=True`` the golden-angle sequence
    :math:`\theta_s = s \cdot 111.246...^\circ` modulo 180 degrees.

    Parameters
    ----------
    image_shape
        ``(H, W)``.
    spokes
        Number of spokes ``S``.
    samples
        Samples per spoke (default ``max(H, W)``: Nyquist along the spoke).
    golden
        Golden-angle spokes (see above) instead of uniform angles: the first spokes of the
        sequence, however many, cover [0, pi) nearly evenly.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(spokes, samples, 2)``: axis 0 and 1 frequencies.
    """
    h, w = _image_2d(image_shape, "radial_trajectory")
    spokes = checks.count(spokes, "radial_trajectory: spokes")
    samples = max(h, w) if samples is None else checks.count(samples, "radial_trajectory: samples")
    if checks.flag(golden, "radial_trajectory: golden"):
        angles = np.mod(np.arange(spokes) * (np.pi / ((1.0 + math.sqrt(5.0)) / 2.0)), np.pi)
    else:
        angles = np.pi * np.arange(spokes) / spokes
    t = -1.0 + 2.0 * np.arange(samples) / samples
    return np.stack([np.outer(np.sin(angles), t) * (h / 2), np.outer(np.cos(angles), t) * (w / 2)], axis=-1)


def spiral_trajectory(image_shape: Any, interleaves: int, samples: int, *, turns: float | None = None) -> np.ndarray:
    r"""A 2D Archimedean spiral trajectory with ``interleaves`` rotated copies.

    Interleaf ``l`` carries the samples, for :math:`t = j / n`, ``j = 0 .. n - 1``,

    .. math::

        \kappa = t \, \big(\tfrac{H}{2} \sin\varphi, \; \tfrac{W}{2} \cos\varphi\big), \qquad
        \varphi = 2 \pi (T t + l / L)

    with ``T = turns`` and ``L = interleaves``: from the centre out to radius just
    under ``N/2``.  Successive turns of the ``L`` interleaves lie ``N / (2 T L)``
    apart radially, so the default ``T = ceil(max(H, W) / (2 L))`` samples the
    disc at Nyquist rate radially; along the spiral, ``samples`` should be at least
    about :math:`\pi T \max(H, W) / 2`.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(interleaves, samples, 2)``.
    """
    h, w = _image_2d(image_shape, "spiral_trajectory")
    interleaves = checks.count(interleaves, "spiral_trajectory: interleaves")
    samples = checks.count(samples, "spiral_trajectory: samples")
    if turns is None:
        turns = math.ceil(max(h, w) / (2 * interleaves))
    turns = checks.positive(turns, "spiral_trajectory: turns")
    t = np.arange(samples) / samples
    phi = 2 * np.pi * (turns * t[None, :] + np.arange(interleaves)[:, None] / interleaves)
    return np.stack([t * np.sin(phi) * (h / 2), t * np.cos(phi) * (w / 2)], axis=-1)


# ---------------------------------------------------------------- coil maps
def birdcage_maps(image_shape: Any, coils: int = 8, *, radius: float = 1.5) -> np.ndarray:
    r"""Simulated coil sensitivities of a birdcage coil (SigPy's ``birdcage_maps``).

    ``coils`` coils sit on a circle of radius ``radius`` (relative to the image's
    half-width) around the image centre; coil ``c`` has the Biot-Savart-like
    profile :math:`S_c(r) \propto e^{i \varphi_c(r)} / |r - r_c|`, and the maps are
    normalised so that :math:`\sum_c |S_c|^2 = 1` at every pixel.  For 3D images,
    rings of 8 coils are stacked along the first axis.

    Parameters
    ----------
    image_shape
        ``(H, W)`` or ``(D, H, W)``.
    coils
        Number of coils ``C``.
    radius
        Radius of the coil circle, relative to the image half-width: a finite number
        > 1 (the coils outside the field of view).

    Returns
    -------
    numpy.ndarray
        complex128 array of shape ``(C, *image_shape)``.
    """
    image_shape = as_shape(image_shape, "birdcage_maps: image_shape")
    if len(image_shape) not in (2, 3):
        raise ValueError(f"birdcage_maps: image_shape must be (H, W) or (D, H, W), got {image_shape}")
    coils = checks.count(coils, "birdcage_maps: coils")
    radius = checks.real_number(radius, "birdcage_maps: radius")
    if not radius > 1:
        raise ValueError(f"birdcage_maps: radius must be > 1 (coils outside the image), got {radius:g}")
    maps = sigpy_module("sigpy.mri").birdcage_maps((coils, *image_shape), r=radius, dtype=np.complex128)
    return np.asarray(maps)


#: ESPIRiT's default calibration width (:func:`espirit_maps`), and the largest :func:`slice_operator` uses by default.
ESPIRIT_CALIB_WIDTH = 24

#: ESPIRiT's default kernel width (:func:`espirit_maps`), the largest :func:`slice_operator` uses.
ESPIRIT_KERNEL_WIDTH = 6

#: The fewest fully sampled central columns that :func:`slice_operator` estimates multi-coil maps from (a kernel of 3).
ESPIRIT_MIN_CALIB_WIDTH = 6


def _kernel_width(calib_width: int) -> int:
    """The kernel width :func:`slice_operator` gives ESPIRiT: :data:`ESPIRIT_KERNEL_WIDTH`, or half the calibration
    width where that is less (a wider kernel left the maps zero over much of the object, without an error)."""
    return min(ESPIRIT_KERNEL_WIDTH, calib_width // 2)


def espirit_maps(kspace: Array, *, calib_width: int = ESPIRIT_CALIB_WIDTH, threshold: float = 0.02,
                 kernel_width: int = ESPIRIT_KERNEL_WIDTH, crop: float = 0.95, max_iter: int = 100) -> Array:
    r"""Coil sensitivities estimated from the data by ESPIRiT (Uecker et al., 2014), through SigPy.

    The calibration region (the central ``calib_width`` samples on each axis) of
    multi-coil k-space gives, by an SVD of its block-Hankel matrix, the k-space
    kernels that span the coil data; the maps are the eigenvectors of eigenvalue 1
    of the resulting per-pixel operator (power iteration), with phase relative to
    coil 0, :math:`\sum_c |S_c|^2 = 1` where the eigenvalue exceeds ``crop``, and 0
    elsewhere.  The calibration region, ``N // 2 - calib_width // 2`` onwards on each
    axis as SigPy crops it, must be fully sampled: with a Cartesian mask of
    :func:`cartesian_mask`, ``calib_width`` at most its number of central columns, one
    fewer where that number is even and the width ``W`` odd (the centre then starts
    one column to the right of SigPy's region).

    Parameters
    ----------
    kspace
        Multi-coil k-space of shape ``(C, *image_shape)`` (2D or 3D images), in the
        operators' centred convention (DC at index ``N // 2``), unsampled entries 0.
        NumPy or CuPy; the maps come back on the same device.  Not all zero.
    calib_width
        ESPIRiT's calibration width, an int at least ``kernel_width``.  The calibration
        matrix has :math:`(w_{calib} - w_{kernel} + 1)^d` rows for :math:`C \, w_{kernel}^d`
        columns, so ``calib_width`` should be well above ``kernel_width`` (the
        defaults: 24 and 6); below twice ``kernel_width`` the maps can vanish over
        much of the object, which a warning says.
    threshold
        Singular-value threshold :math:`t \in [0, 1)`: the kernels kept are the
        right singular vectors of singular value :math:`\sigma > t \, \sigma_1`,
        relative to the largest :math:`\sigma_1` (at ``t >= 1`` none is kept).
    kernel_width
        ESPIRiT's kernel width, an int at most ``calib_width``.
    crop
        Eigenvalue crop in ``[0, 1]``: the maps are 0 where the eigenvalue is at
        most ``crop``.
    max_iter
        Power iterations, an int >= 1.

    Returns
    -------
    Array
        Complex maps of shape ``kspace.shape``, in ``kspace``'s complex precision.

    Raises
    ------
    ValueError
        For k-space that is all zero, or 0 in every coil somewhere in the calibration
        region (not fully sampled), and when ESPIRiT finds no sensitivities (the
        maps zero everywhere, or NaN): a calibration region too small for the kernel
        or without signal, or ``crop`` or ``threshold`` too high.
    TypeError
        For real ``kspace`` (a magnitude or real part, whose maps would be wrong).
    """
    if not backend.is_array(kspace):
        raise TypeError(f"espirit_maps: kspace must be a NumPy or CuPy array, got {type(kspace).__name__}")
    backend.check_dtype(kspace, "espirit_maps: kspace")
    check_complex(kspace, "espirit_maps: kspace")
    backend.check_finite(kspace, "espirit_maps: kspace")
    if kspace.ndim not in (3, 4):
        raise ValueError(f"espirit_maps: kspace must have shape (coils, *image_shape) with a 2D or 3D image, "
                         f"got shape {tuple(kspace.shape)}")
    calib_width = checks.count(calib_width, "espirit_maps: calib_width")
    kernel_width = checks.count(kernel_width, "espirit_maps: kernel_width")
    if calib_width > min(kspace.shape[1:]) or kernel_width > calib_width:
        raise ValueError(f"espirit_maps: need kernel_width <= calib_width <= the image size, got kernel_width "
                         f"{kernel_width}, calib_width {calib_width} for k-space of shape {tuple(kspace.shape)}")
    if calib_width < 2 * kernel_width:
        warnings.warn(f"espirit_maps: kernel_width {kernel_width} exceeds half of calib_width {calib_width}: the maps "
                      f"can be zero over much of the object; take kernel_width at most {calib_width // 2}",
                      stacklevel=2)
    threshold = checks.real_number(threshold, "espirit_maps: threshold")
    if not 0 <= threshold < 1:
        raise ValueError(f"espirit_maps: threshold must lie in [0, 1) (relative to the largest singular value of the "
                         f"calibration matrix; at 1 or above no kernel is kept), got {threshold:g}")
    crop = checks.real_number(crop, "espirit_maps: crop")
    if not 0 <= crop <= 1:
        raise ValueError(f"espirit_maps: crop must lie in [0, 1] (the maps are 0 where ESPIRiT's eigenvalue, at most "
                         f"about 1, is at most crop), got {crop:g}")
    max_iter = checks.count(max_iter, "espirit_maps: max_iter")
    xp = backend.namespace(kspace)
    if not bool(xp.any(kspace != 0)):
        raise ValueError("espirit_maps: kspace is all zero: no signal to estimate coil maps from")
    # the calibration region as SigPy crops it: the central calib_width samples, from n // 2 - calib_width // 2
    region = kspace[(slice(None),) + tuple(slice(n // 2 - calib_width // 2, n // 2 - calib_width // 2 + calib_width)
                                           for n in kspace.shape[1:])]
    holes = int(xp.count_nonzero(xp.all(region == 0, axis=0)))
    if holes:  # measured k-space is never exactly 0 in every coil: these samples were not acquired
        raise ValueError(f"espirit_maps: {holes} of the {calib_width}^{kspace.ndim - 1} samples of the calibration "
                         f"region (the central calib_width {calib_width}) are 0 in every coil: it must be fully "
                         "sampled, so take calib_width at most the fully sampled centre (the region starts at "
                         "N // 2 - calib_width // 2 on each axis: an even centre of an odd width gives one fewer)")
    sp, mri_app = sigpy_module(), sigpy_module("sigpy.mri.app")
    kspace = kspace.astype(backend.result_dtype(kspace.dtype, np.complex128))
    device = sp.get_device(kspace)
    with np.errstate(divide="ignore", invalid="ignore"):  # the phase of zero maps is NaN: refused below
        maps = mri_app.EspiritCalib(kspace, calib_width=calib_width, thresh=threshold, kernel_width=kernel_width,
                                    crop=crop, max_iter=max_iter, device=device, show_pbar=False).run()
    finite, ndim = bool(xp.all(xp.isfinite(maps))), kspace.ndim - 1
    if not finite or not bool(xp.any(maps != 0)):
        raise ValueError(
            f"espirit_maps: ESPIRiT found no coil sensitivities (the maps "
            f"{'contain NaN or Inf' if not finite else 'are zero everywhere'}) with calib_width {calib_width}, "
            f"kernel_width {kernel_width}, threshold {threshold:g} and crop {crop:g}; likely causes: a calibration "
            f"region too small for the kernel (a calibration matrix of {(calib_width - kernel_width + 1) ** ndim} "
            f"row(s) for {kspace.shape[0] * kernel_width ** ndim} columns: widen calib_width, within the fully sampled "
            "centre) or without signal, or crop or threshold too high"
        )
    return maps


# ----------------------------------------------------------------- baselines
def zero_filled(H: LinearOperator, y: Array) -> Array:
    r"""The zero-filled reconstruction :math:`H^H y`, coils combined.

    For :class:`~adareg.operators.CartesianMRI` this is
    :math:`\sum_c \bar S_c \, \mathcal{F}^{-1}(M y_c)`: the inverse FFT of the
    zero-filled k-space of each coil, combined with the conjugate sensitivities,
    which is the least-squares coil combination when :math:`\sum_c |S_c|^2 = 1`
    (birdcage and ESPIRiT maps); its real part on the real image space.  For a
    :class:`~adareg.operators.NonCartesianMRI` with density weights (and data
    multiplied by ``sqrt(density)``) it is the gridding reconstruction.
    """
    check_measurements_of(H, y, "zero_filled")
    return H.H(y)


def sense(H: LinearOperator, y: Array, *, lam: float = 1e-3, x0: Array | None = None, max_iter: int | None = None,
          tol: float | None = None) -> Result:
    r"""The SENSE reconstruction: Tikhonov-regularised least squares by conjugate gradients.

    .. math::

        x^* = \arg\min_x \tfrac12 \|H x - y\|^2 + \tfrac{\lambda}{2} \|x\|^2
        \quad\Longleftrightarrow\quad (H^H H + \lambda I)\, x^* = H^H y

    solved by :func:`~adareg.solvers.conjugate_gradient` on the normal equations
    (exact for real and complex image spaces alike), until
    :math:`\|r_k\| \le \mathrm{tol} \, \|H^H y\|`.  Batched data are solved as one
    block-diagonal system, on the data's backend, so the tolerance holds for the whole
    batch: a slice much fainter than the others is solved less exactly than alone
    (solve such slices one by one).

    Parameters
    ----------
    H
        Forward operator (any :class:`~adareg.operators.LinearOperator`).
    y
        Measurements of shape ``H.shape_out`` (or ``batch + H.shape_out``).
    lam
        Tikhonov weight :math:`\lambda \ge 0`, as in the formula above (not scaled by
        ``||H||^2``, which is 1 for Cartesian MRI with normalised coil maps).
    x0
        Starting point (default zeros), complex only where the images are (not for
        ``CartesianMRI(..., real=True)``).
    max_iter, tol
        Iteration cap and relative residual tolerance (by default those of
        :func:`~adareg.solvers.conjugate_gradient`).

    Returns
    -------
    Result
        ``x``, ``converged``, ``iterations`` and a history with columns
        ``iteration, residual, seconds`` (``residual`` relative to ``||H^H y||``).

    Raises
    ------
    ValueError
        When :math:`H^H y = 0` for a nonzero ``y``: then :math:`x^* = 0`, as nothing
        of ``y`` reaches the image (coil maps zero, or ``y`` zero where the mask samples).
    """
    check_measurements_of(H, y, "sense")
    lam = checks.real_number(lam, "sense: lam")
    if lam < 0:
        raise ValueError(f"sense: lam must be non-negative, got {lam:g}")
    max_iter = None if max_iter is None else checks.count(max_iter, "sense: max_iter")
    tol = None if tol is None else checks.non_negative(tol, "sense: tol")
    b = H.H(y)
    xp = backend.namespace(b)
    if not bool(xp.any(b != 0)) and bool(xp.any(y != 0)):
        raise ValueError(f"sense: H^H y is zero although y is not: nothing of y reaches the image through {H!r} "
                         "(e.g. coil maps that are zero, or y zero wherever the mask samples), so x would be 0")
    if x0 is not None:
        backend.check_array(x0, H.shape_in, "sense: x0")
        backend.check_finite(x0, "sense: x0")
        if tuple(x0.shape) != tuple(b.shape):
            raise ValueError(f"sense: x0 has shape {tuple(x0.shape)}, expected {tuple(b.shape)}")
        if x0.dtype.kind == "c" and b.dtype.kind != "c":
            raise TypeError(f"sense: x0 is complex ({x0.dtype}) but the images of {H!r} are real (H^H y has dtype "
                            f"{b.dtype}); pass a real x0")
    return conjugate_gradient(lambda v: H.H(H(v)) + lam * v, b, x0=x0, max_iter=max_iter, tol=tol)


# --------------------------------------------------- fastMRI: sampling masks
#: fastMRI challenge's centre fractions, by acceleration (for other accelerations 0.32 / acceleration).
CENTER_FRACTIONS = {4: 0.08, 8: 0.04}


def column_mask(data: FastMRIData, acceleration: float | None = None, center_fraction: float | None = None, *,
                kind: Literal["random", "equispaced"] = "random", seed: Seed = 0) -> np.ndarray:
    """The columns sampled: the file's own mask, or a retrospective undersampling of fully sampled data.

    Parameters
    ----------
    data
        A file read by :func:`adareg.io.fastmri.read_fastmri`.
    acceleration
        ``None``: the file's ``mask`` (test and challenge files; an error for a file
        without one).  Otherwise the undersampling factor of a mask drawn by
        :func:`adareg.mri.cartesian_mask` (fastMRI's ``RandomMaskFunc`` or
        ``EquispacedMaskFractionFunc``) over the ``columns`` phase encodes, for fully
        sampled files only (an error for a file with a ``mask``).
    center_fraction
        Fraction of fully sampled central columns; by default the fastMRI challenge's:
        0.08 at x4, 0.04 at x8, and ``0.32 / acceleration`` otherwise (the same 0.32 of
        the columns sampled in the centre as at x4 and x8).
    kind
        ``"random"`` or ``"equispaced"`` (see :func:`adareg.mri.cartesian_mask`).
    seed
        Seed or generator of the drawn mask (the same seed gives the same mask).

    Returns
    -------
    numpy.ndarray
        bool array of shape ``(columns,)``, a copy.
    """
    if not isinstance(data, FastMRIData):
        raise TypeError(f"column_mask: data must be FastMRIData (from read_fastmri), got {type(data).__name__}")
    name = data.path if data.path is not None else "column_mask"
    if acceleration is None:
        if center_fraction is not None:
            raise ValueError(f"{name}: center_fraction is given without acceleration; give both for a "
                             "retrospective mask, or neither for the file's own mask")
        if data.mask is None:
            raise ValueError(f"{name}: the file has no 'mask' (fully sampled data); pass acceleration (e.g. 4) "
                             "for a retrospective mask")
        return np.array(data.mask, dtype=bool)
    if data.mask is not None:
        raise ValueError(f"{name}: the file's k-space is already undersampled (it has a 'mask'); a retrospective "
                         "mask needs fully sampled data: call column_mask(data) for the file's own mask")
    acceleration = checks.real_number(acceleration, "column_mask: acceleration")
    if acceleration < 1:
        raise ValueError(f"column_mask: acceleration must be a finite number >= 1, got {acceleration:g}")
    columns = data.kspace.shape[-1]
    if center_fraction is None:
        center_fraction = CENTER_FRACTIONS.get(acceleration, 0.32 / acceleration)
        if round(columns * center_fraction) < 1:
            raise ValueError(f"{name}: the default center_fraction at x{acceleration:g}, {center_fraction:g}, keeps "
                             f"no column of {columns}: give a center_fraction or a lower acceleration")
    return cartesian_mask((columns,), acceleration, center_fraction, kind=kind, seed=seed)


def calibration_width(mask: Any) -> int:
    """The number of columns in the contiguous sampled run that contains the centre column ``columns // 2``.

    0 when the centre column is not sampled.  ``mask`` is a column mask ``(columns,)``
    (bool or 0/1; NumPy or CuPy).
    """
    mask = _column_mask(mask, "calibration_width")
    centre = mask.size // 2
    if not mask[centre]:
        return 0
    unsampled = np.flatnonzero(~mask)
    left = unsampled[unsampled < centre]
    right = unsampled[unsampled > centre]
    start = int(left[-1]) + 1 if left.size else 0
    stop = int(right[0]) if right.size else mask.size
    return stop - start


def _column_mask(mask: Any, who: str) -> np.ndarray:
    mask = backend.to_numpy(mask) if backend.is_array(mask) else np.asarray(mask)
    if mask.ndim != 1 or mask.size == 0:
        raise ValueError(f"{who}: mask must be a column mask of shape (columns,), got shape {mask.shape}")
    if mask.dtype != bool:
        if mask.dtype.kind not in "biuf" or not np.all((mask == 0) | (mask == 1)):
            raise ValueError(f"{who}: mask must be boolean or 0/1, got dtype {mask.dtype}")
        mask = mask.astype(bool)
    return mask


def _centred_width(mask: np.ndarray) -> int:
    """The widest calibration window ESPIRiT can use: columns ``N//2 - w//2`` to ``N//2 - w//2 + w - 1`` all sampled.

    (SigPy crops the calibration region this way.)  Equals :func:`calibration_width`
    for fastMRI's masks, whose centre is that window; less when random columns next to
    the centre make the sampled run lopsided.
    """
    centre = mask.size // 2
    width = 0
    while width < mask.size:
        start = centre - (width + 1) // 2
        if start < 0 or start + width + 1 > mask.size or not mask[start:start + width + 1].all():
            break
        width += 1
    return width


# ------------------------------------------------ fastMRI: slice operators
def slice_operator(kspace_slice: Array, mask: Any, *, calib_width: int | None = None, real: bool = False
                   ) -> CartesianMRI:
    r"""The SENSE forward model of one slice, with coil maps estimated from its own k-space by ESPIRiT.

    The maps are :func:`adareg.mri.espirit_maps` of the masked k-space ``mask * kspace_slice``
    (calibration on its central ``calib_width`` x ``calib_width`` samples); the operator is
    ``CartesianMRI(mask broadcast to (rows, columns), maps, real=False)`` on complex images
    of shape ``(rows, columns)``, mapping to ``(coils, rows, columns)``, so that
    ``H(x) ~ mask * kspace_slice`` for the slice's image ``x`` (up to the maps' phase,
    which ESPIRiT sets relative to coil 0).  A single-coil slice (``coils = 1``) gets the
    map 1 (no ESPIRiT, no SigPy needed).

    With ``real=True`` the operator acts on real images: the maps are multiplied by the
    phase :math:`e^{i\varphi}` of the low-resolution image of the calibration region,
    :math:`\varphi = \arg \sum_c \bar S_c \mathcal{F}^{-1}(C y_c)` (``C`` keeps the
    central ``calib_width`` x ``calib_width`` samples), so that the slice is a real,
    nonnegative magnitude image under the smooth phase estimated from its own data: the
    image space of adareg's learned models, which are trained on real images.

    Parameters
    ----------
    kspace_slice
        One slice's k-space ``(coils, rows, columns)``, complex, NumPy or CuPy (the maps
        are computed on its device), e.g. ``data.kspace[i]``.
    mask
        Column mask ``(columns,)``, e.g. :func:`column_mask`'s.
    calib_width
        ESPIRiT's calibration width.  Default: ``min(calibration_width(mask), 24)``
        (:data:`ESPIRIT_CALIB_WIDTH`), where the sampled run is taken as the widest
        window centred as SigPy crops it (the same for fastMRI's masks).  It must be at
        least 6 (:data:`ESPIRIT_MIN_CALIB_WIDTH`), and its centred window fully
        sampled.  ESPIRiT's kernel is 6 wide (:data:`ESPIRIT_KERNEL_WIDTH`), or half
        the calibration width where that is less.  For one coil it is the width of the phase's
        calibration window with ``real=True`` (any width from 1), unused with ``real=False``.
    real
        Real image space, with the calibration phase in the maps (see above).

    Returns
    -------
    CartesianMRI
    """
    who = "slice_operator"
    if not backend.is_array(kspace_slice):
        raise TypeError(f"{who}: kspace_slice must be a NumPy or CuPy array, got {type(kspace_slice).__name__}")
    if kspace_slice.ndim != 3 or kspace_slice.dtype.kind != "c":
        raise ValueError(f"{who}: kspace_slice must be complex of shape (coils, rows, columns), got shape "
                         f"{tuple(kspace_slice.shape)} and dtype {kspace_slice.dtype}; for one slice of a "
                         "FastMRIData use data.kspace[i]")
    coils, rows, columns = (int(n) for n in kspace_slice.shape)
    real = checks.flag(real, f"{who}: real")
    mask = _column_mask(mask, who)
    if mask.size != columns:
        raise ValueError(f"{who}: mask has {mask.size} columns but kspace_slice has {columns}")
    image_mask = np.broadcast_to(mask, (rows, columns))
    xp = backend.namespace(kspace_slice)
    if not bool(xp.any(kspace_slice != 0)):
        raise ValueError(f"{who}: the slice's k-space is all zero: no signal to reconstruct or to estimate coil maps "
                         "from")
    available = _centred_width(mask)
    if coils == 1 and not real:  # the map is 1 and no phase is estimated: nothing to calibrate
        return CartesianMRI(image_mask, xp.ones((1, rows, columns), dtype=kspace_slice.dtype), real=False)
    if coils == 1 and available == 0:  # the phase's calibration window would sample nothing
        raise ValueError(f"{who}: real=True takes the image's phase from the fully sampled columns centred on "
                         f"column {mask.size // 2}, which the mask does not sample; use a mask that samples the "
                         "centre of k-space, or real=False")
    espirit = coils > 1  # one coil calibrates only the phase, on a window of any width
    if calib_width is None:
        calib_width = min(available, ESPIRIT_CALIB_WIDTH, rows)
        if espirit and calib_width < ESPIRIT_MIN_CALIB_WIDTH:
            raise ValueError(
                f"{who}: the mask's fully sampled window centred on column {mask.size // 2} has {available} "
                f"columns (of a sampled run of {calibration_width(mask)}), fewer than the "
                f"{ESPIRIT_MIN_CALIB_WIDTH} that ESPIRiT needs for coil maps; use a mask with a wider centre "
                "(a lower acceleration or a larger center_fraction)"
            )
    else:
        calib_width = checks.count(calib_width, f"{who}: calib_width")
        if espirit and calib_width < ESPIRIT_MIN_CALIB_WIDTH:
            raise ValueError(f"{who}: calib_width {calib_width} is less than the {ESPIRIT_MIN_CALIB_WIDTH} that "
                             "ESPIRiT needs for coil maps")
        if calib_width > available:
            raise ValueError(f"{who}: calib_width {calib_width} reaches unsampled columns: only the central "
                             f"{available} columns are fully sampled")
    if not espirit:
        return _phased(image_mask, xp.ones((1, rows, columns), dtype=kspace_slice.dtype), kspace_slice,
                       calib_width, real)
    masked = kspace_slice * caches.DeviceCache(mask).like(kspace_slice, backend.real_dtype(kspace_slice.dtype))
    maps = espirit_maps(masked, calib_width=calib_width, kernel_width=_kernel_width(calib_width))  # refuses zero maps
    return _phased(image_mask, maps, masked, calib_width, real)


def _phased(image_mask: np.ndarray, maps: Array, kspace: Array, calib_width: int, real: bool) -> CartesianMRI:
    """``CartesianMRI`` of the maps; on real images with the calibration image's phase put into the maps."""
    if not real:
        return CartesianMRI(image_mask, maps, real=False)
    rows, columns = image_mask.shape
    centre = np.zeros((rows, columns), dtype=bool)
    top, left = rows // 2 - calib_width // 2, columns // 2 - calib_width // 2
    centre[max(top, 0):top + calib_width, max(left, 0):left + calib_width] = True
    low = CartesianMRI(centre & image_mask, maps, real=False).H(kspace)
    xp = backend.namespace(low)
    magnitude = xp.abs(low)
    phase = xp.where(magnitude > 0, low / xp.where(magnitude > 0, magnitude, 1), 1)
    return CartesianMRI(image_mask, maps * phase, real=True)


# ------------------------------------------------- fastMRI: images, baseline
def reconstruction_crop(recon_shape: Any, image_shape: tuple[int, int], who: str) -> tuple[int, int]:
    """The crop ``(h, w)`` of a reconstruction of ``image_shape`` to ``recon_shape`` by fastMRI's "FLAIR 203" rule.

    fastMRI's baselines crop to ``recon_shape``, except where it is wider than the
    k-space's columns (some FLAIR files): then to ``(columns, columns)``.  ``who`` names
    the caller in the ``ValueError`` for a crop taller than the images.
    """
    rows, columns = image_shape
    h, w = _shape2(recon_shape, f"{who}: recon_shape")
    if w > columns:  # fastMRI's run_zero_filled: "check for FLAIR 203"
        h, w = columns, columns
    if h > rows:
        raise ValueError(f"{who}: recon_shape {(h, w)} is larger than the images' {(rows, columns)}")
    return h, w


def center_crop(images: Array, shape: Any) -> Array:
    """The central ``shape = (h, w)`` of the last two axes, as fastMRI's ``center_crop``.

    The crop starts at ``(size - crop) // 2`` on each axis (for an odd difference, one
    more row or column is dropped at the end than at the start).  A view, on the
    input's backend.

    Raises
    ------
    ValueError
        ``shape`` not two positive ints, or larger than the images.
    """
    if not backend.is_array(images):
        raise TypeError(f"center_crop: images must be a NumPy or CuPy array, got {type(images).__name__}")
    h, w = _shape2(shape, "center_crop: shape")
    if images.ndim < 2:
        raise ValueError(f"center_crop: images must have at least 2 axes, got shape {tuple(images.shape)}")
    rows, columns = images.shape[-2:]
    if h > rows or w > columns:
        raise ValueError(f"center_crop: crop {(h, w)} is larger than the images' {(rows, columns)}")
    top, left = (rows - h) // 2, (columns - w) // 2
    return images[..., top:top + h, left:left + w]


def _shape2(shape: Any, what: str) -> tuple[int, int]:
    try:
        values = tuple(shape)
    except TypeError:
        values = ()
    if len(values) != 2 or any(not checks.is_int(n) or n < 1 for n in values):
        raise ValueError(f"{what} must be two positive ints (h, w), got {shape!r}")
    return int(values[0]), int(values[1])


def rss(coil_images: Array, axis: int = -3) -> Array:
    r"""Root-sum-of-squares coil combination :math:`\sqrt{\sum_c |z_c|^2}` over ``axis``.

    Real output in the input's precision (complex64 -> float32), on its backend.  The
    sum runs over the magnitudes divided by their largest, :math:`m \sqrt{\sum_c (|z_c| / m)^2}`,
    so that no square over- or underflows where the result itself is representable.
    """
    if not backend.is_array(coil_images):
        raise TypeError(f"rss: coil_images must be a NumPy or CuPy array, got {type(coil_images).__name__}")
    backend.check_plain(coil_images, "rss: coil_images")
    if not -coil_images.ndim <= axis < coil_images.ndim:
        raise ValueError(f"rss: axis {axis} is out of range for shape {tuple(coil_images.shape)}")
    xp = backend.namespace(coil_images)
    magnitude = xp.abs(coil_images)
    if magnitude.dtype.kind != "f":
        magnitude = xp.astype(magnitude, xp.float64)
    largest = xp.max(magnitude, axis=axis, keepdims=True)
    scaled = magnitude / xp.where(largest > 0, largest, 1)
    return xp.squeeze(largest, axis=axis) * xp.sqrt(xp.sum(scaled * scaled, axis=axis))


def _ifft2c(kspace: Array) -> Array:
    """fastMRI's ``ifft2c``: ``fftshift(ifft2(ifftshift(k), norm="ortho"))`` over the last two axes."""
    xp = backend.namespace(kspace)
    axes = (-2, -1)
    image = backend.fft(kspace).ifftn(xp.fft.ifftshift(kspace, axes=axes), axes=axes, norm="ortho")
    return xp.fft.fftshift(image, axes=axes)


def zero_filled_rss(kspace: Array, mask: Any, recon_shape: Any) -> Array:
    r"""fastMRI's zero-filled baseline: ``center_crop(rss(|ifft2c(mask * kspace)|), recon_shape)``.

    Parameters
    ----------
    kspace
        ``(slices, coils, rows, columns)`` (or one slice, ``(coils, rows, columns)``),
        complex, NumPy or CuPy.  Computed slice by slice, so memory stays at one slice's
        coil images.
    mask
        Column mask ``(columns,)``, or ``None`` for k-space used as stored (the test
        files' k-space is already zero-filled).
    recon_shape
        The crop ``(h, w)``, e.g. ``data.recon_shape``.  As fastMRI's baseline does (its
        "FLAIR 203" rule), a crop wider than the k-space's columns becomes
        ``(columns, columns)``.

    Returns
    -------
    Array
        Magnitude images ``(slices, h, w)`` (``(h, w)`` for one slice), float32 for
        complex64 k-space, on the input's backend.  With a full mask this is fastMRI's
        ``reconstruction_rss``.
    """
    who = "zero_filled_rss"
    if not backend.is_array(kspace):
        raise TypeError(f"{who}: kspace must be a NumPy or CuPy array, got {type(kspace).__name__}")
    if kspace.ndim not in (3, 4) or kspace.dtype.kind != "c":
        raise ValueError(f"{who}: kspace must be complex of shape (slices, coils, rows, columns) or (coils, rows, "
                         f"columns), got shape {tuple(kspace.shape)} and dtype {kspace.dtype}")
    backend.check_dtype(kspace, f"{who}: kspace")
    backend.check_finite(kspace, f"{who}: kspace")  # one NaN sample spreads over its slice's whole image
    rows, columns = (int(n) for n in kspace.shape[-2:])
    h, w = reconstruction_crop(recon_shape, (rows, columns), who)
    weights = None
    if mask is not None:
        host = _column_mask(mask, who)
        if host.size != columns:
            raise ValueError(f"{who}: mask has {host.size} columns but kspace has {columns}")
        weights = caches.DeviceCache(host).like(kspace, backend.real_dtype(kspace.dtype))
    xp = backend.namespace(kspace)
    volume = kspace if kspace.ndim == 4 else kspace[None]
    images = []
    for slice_kspace in volume:
        if weights is not None:
            slice_kspace = slice_kspace * weights
        images.append(center_crop(rss(_ifft2c(slice_kspace), axis=-3), (h, w)))
    out = xp.stack(images)
    return out if kspace.ndim == 4 else out[0]
