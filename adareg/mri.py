"""MRI acquisition helpers: sampling patterns, coil maps and the zero-filled and SENSE baselines.

Used with :class:`adareg.operators.CartesianMRI` and
:class:`adareg.operators.NonCartesianMRI`, whose conventions they follow: the
centred orthonormal Fourier transform with k-space's DC sample at index ``N // 2``,
trajectories in cycles per field of view within ``[-N/2, N/2]``, coil maps of
shape ``(C, *image_shape)``.  Masks, trajectories and simulated maps are NumPy
arrays (move them with :func:`adareg.to_device` if needed); :func:`espirit_maps`,
:func:`zero_filled` and :func:`sense` run on the data's backend (NumPy or CuPy).
Coil maps need SigPy (``pip install adareg[mri]``), imported when called.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from . import backend, checks
from .backend import Array
from .operators.base import LinearOperator, as_shape
from .operators.mri import check_complex, sigpy_module
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


def espirit_maps(kspace: Array, *, calib_width: int = 24, threshold: float = 0.02, kernel_width: int = 6,
                 crop: float = 0.95, max_iter: int = 100) -> Array:
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
    calib_width, kernel_width
        ESPIRiT's calibration width and kernel width, ints with
        ``kernel_width <= calib_width``.  The calibration matrix has
        :math:`(w_{calib} - w_{kernel} + 1)^d` rows for :math:`C \, w_{kernel}^d`
        columns, so ``calib_width`` should be well above ``kernel_width`` (the
        defaults: 24 and 6).
    threshold
        Singular-value threshold :math:`t \in [0, 1)`: the kernels kept are the
        right singular vectors of singular value :math:`\sigma > t \, \sigma_1`,
        relative to the largest :math:`\sigma_1` (at ``t >= 1`` none is kept).
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
def _check_data(H: LinearOperator, y: Array, who: str) -> None:
    if not isinstance(H, LinearOperator):
        raise TypeError(f"{who}: H must be a LinearOperator, got {type(H).__name__}")
    backend.check_array(y, H.shape_out, f"{who}: y (measurements of {H!r})")
    backend.check_finite(y, f"{who}: y")
    H.check_measurements(y, f"{who}: y")


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
    _check_data(H, y, "zero_filled")
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
    _check_data(H, y, "sense")
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
