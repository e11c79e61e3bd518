"""CT helpers: filtered back-projection and measurement noise on sinograms.

Used with :class:`adareg.operators.RayTransform`; all functions run on NumPy or
CuPy arrays (the sinogram's backend).
"""

from __future__ import annotations

import importlib
import math
import warnings
from typing import Any, Literal, get_args

import numpy as np

from . import backend, caches, checks
from .backend import Array
from .operators.ct import RayTransform

#: The windows of the ramp filter, none (Ram-Lak) or Hann's.
Window = Literal["ram-lak", "hann"]


def check_window(window: Any, who: str) -> None:
    """Raise a ``ValueError`` naming ``who`` unless ``window`` is one of :data:`Window`'s."""
    if window not in get_args(Window):
        raise ValueError(f"{who}: window must be 'ram-lak' or 'hann', got {window!r}")


def ramp_filter(detector_count: int, spacing: float, window: Window = "ram-lak") -> np.ndarray:
    r"""Frequency response of the discrete ramp filter, for sinogram rows zero-padded to ``2^k >= 2 n``.

    Built from the band-limited ramp's exact samples (Kak & Slaney, eq. 3.61),
    :math:`h[0] = 1 / (4 d^2)`, :math:`h[k] = -1 / (\pi k d)^2` for odd ``k`` and 0 for even
    ``k`` — so the zero frequency is handled correctly — multiplied by ``d`` (the
    convolution's quadrature weight) and, for ``"hann"``, by the Hann window
    :math:`\tfrac12 (1 + \cos(\pi f / f_{\max}))`.

    Parameters
    ----------
    detector_count
        Number ``n`` of detector cells, at least 1.
    spacing
        Width ``d`` of a detector cell, positive.
    window
        ``"ram-lak"`` or ``"hann"``.

    Returns
    -------
    numpy.ndarray
        The real response at the ``rfft`` frequencies of the padded length.
    """
    detector_count = checks.count(detector_count, "ramp_filter: detector_count")
    spacing = checks.positive(spacing, "ramp_filter: spacing")
    check_window(window, "ramp_filter")
    size = 2 ** math.ceil(math.log2(max(2 * detector_count, 2)))
    k = np.concatenate([np.arange(size // 2 + 1), np.arange(-(size // 2) + 1, 0)])
    h = np.zeros(size)
    h[0] = 1.0 / (4.0 * spacing**2)
    odd = k % 2 == 1
    h[odd] = -1.0 / (np.pi * k[odd] * spacing) ** 2
    response = np.real(np.fft.rfft(h)) * spacing
    if window == "hann":
        frequency = np.fft.rfftfreq(size)  # cycles per sample, up to 1/2
        response *= 0.5 * (1.0 + np.cos(2.0 * np.pi * frequency))
    return response


def fbp(H: RayTransform, sinogram: Array, window: Window = "ram-lak") -> Array:
    r"""Filtered back-projection for a 2D parallel- or fan-beam :class:`~adareg.operators.RayTransform`.

    Parallel beam, angles covering [0, pi) (modulo pi):

    .. math::

        x(r) \approx \sum_\theta \Delta_\theta \, (p_\theta * h)(r \cdot \theta)
             = \frac{d}{\delta^2} \, A^T \big(\Delta \, (p * h)\big)

    with :math:`\Delta_\theta` each angle's share of the half turn (half the gaps to
    its neighbours modulo pi, split among the angles of one direction: :math:`\pi / n_\theta`
    for uniform angles, and the quadrature that keeps golden-angle or overlapping
    scans undistorted), ``h`` the ramp filter (:func:`ramp_filter`), ``d`` the detector spacing and
    ``delta`` the pixel size: ASTRA's back-projector (the transpose of its
    projector) sums each projection with weight ``delta^2 / d`` per pixel.  That
    holds while detector cells are no wider than pixels (``d <= delta``); for wider
    cells the sum over the angles samples each filtered projection at the pixels'
    centres by linear interpolation instead.

    Fan beam with a flat detector, angles covering [0, 2 pi) (Kak & Slaney,
    section 3.4.2, with the shares of the turn as above): on a virtual detector through the rotation
    centre (coordinate ``s``, source distance ``D``), the projections are weighted
    by :math:`D / \sqrt{D^2 + s^2}`, filtered with ``h / 2``, and back-projected
    along the fan with the weight :math:`1 / U^2`, where ``U D`` is the distance
    from the source to the pixel along the central ray:

    .. math::

        x(r) \approx \sum_\beta \Delta_\beta \frac{1}{U(r, \beta)^2} \,
             \Big(\big(\tfrac{D}{\sqrt{D^2 + s^2}} \, p_\beta\big) * \tfrac{h}{2}\Big)\big(s(r, \beta)\big)

    (one loop over the angles, vectorised over the pixels, with linear interpolation).

    Parameters
    ----------
    H
        A 2D parallel- or fan-beam ray transform.
    sinogram
        Real (float32 or float64), of shape ``H.shape_out`` or ``batch + H.shape_out``.
    window
        ``"ram-lak"`` (the plain ramp) or ``"hann"`` (less noise, less resolution).

    Returns
    -------
    Array
        The image(s), ``batch + H.shape_in``, float32 as :class:`~adareg.operators.RayTransform`'s outputs
        (ASTRA's precision) for either geometry.
    """
    _check_fbp_arguments(H, sinogram, window)
    shares = _angle_shares(H.angles, _period(H))[:, None]
    weighted = sinogram * caches.DeviceCache(shares).like(sinogram, backend.real_dtype(sinogram.dtype))
    if H.geometry == "parallel" and H.detector_spacing <= H.pixel_size:
        return H.detector_spacing / H.pixel_size**2 * H.H(_filter(weighted, H.detector_spacing, window))
    if H.geometry == "parallel":
        image = _interpolated_backprojection(H, _filter(weighted, H.detector_spacing, window))
        return backend.namespace(image).astype(image, np.float32)
    return _fan_beam_fbp(H, weighted, window)


def _period(H: RayTransform) -> float:
    """The angles' period for FBP: pi for a parallel beam (a ray half a turn later is the same line), 2 pi for a fan."""
    return math.pi if H.geometry == "parallel" else 2 * math.pi


def _directions(angles: np.ndarray, period: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The distinct directions of ``angles`` modulo ``period`` (to 1e-9 rad, so that a full turn of a parallel
    beam folds onto its first half), sorted; each angle's index among them; how many angles each has; and the
    gap from each to the next, the last wrapping round to the first."""
    phase = np.mod(np.round(np.mod(np.asarray(angles, dtype=np.float64), period), 9), period)
    values, index, counts = np.unique(phase, return_inverse=True, return_counts=True)
    return values, index, counts, np.diff(np.append(values, values[0] + period))


def _angle_shares(angles: np.ndarray, period: float) -> np.ndarray:
    r"""Each angle's share :math:`\Delta` of the ``period`` in FBP's sum over the angles: half the gaps to the
    neighbouring directions, split equally among the angles of one direction (they sum to ``period``)."""
    _, index, counts, gaps = _directions(angles, period)
    return ((gaps + np.roll(gaps, 1)) / 2 / counts)[index]


def _check_fbp_arguments(H: RayTransform, sinogram: Array, window: Window) -> None:
    """:func:`fbp`'s errors, and its warnings on the sinogram (:meth:`RayTransform.check_measurements`) and the
    angles."""
    if not isinstance(H, RayTransform) or len(H.shape_in) != 2:
        raise ValueError(f"fbp: needs a 2D RayTransform, got {H!r}; 3D data can be reconstructed with adareg.solve")
    check_window(window, "fbp")
    backend.check_array(sinogram, H.shape_out, "fbp: sinogram")
    if sinogram.dtype.kind == "c":
        raise TypeError(f"fbp: sinogram must be real (line integrals), got dtype {sinogram.dtype}")
    backend.check_finite(sinogram, "fbp: sinogram")
    H.check_measurements(sinogram, "fbp: sinogram")  # at the stack depth of solve's call, for its stacklevel
    _warn_uneven_coverage(H.angles, _period(H), H.geometry)


#: How many times the directions' mean spacing a gap between two of them (modulo the period) may span in
#: :func:`fbp`'s angles before a warning.
LARGEST_GAP = 3.0


def _warn_uneven_coverage(angles: np.ndarray, period: float, geometry: str) -> None:
    r"""Warn where the angles leave directions out: FBP weighs each by its share of the ``period``
    (:func:`_angle_shares`), which stands in for the directions between it and its neighbours, well only while no
    gap between the :math:`m` distinct directions (modulo the period) exceeds :data:`LARGEST_GAP` times their mean
    spacing ``period / m`` (a limited-angle scan, or a fan over half a turn).
    """
    values, _, _, gaps = _directions(angles, period)
    if len(values) < 2:
        found = f"{'is' if len(angles) == 1 else 'are'} one direction, which covers no range"
    elif float(gaps.max()) > LARGEST_GAP * period / len(values):
        found = (f"leave a gap of {float(gaps.max()):.3g} rad (modulo {'pi' if geometry == 'parallel' else '2 pi'}), "
                 f"{float(gaps.max()) * len(values) / period:.1f} times their mean spacing")
    else:
        return
    needed = "[0, pi)" if geometry == "parallel" else "[0, 2 pi)"
    subject = f"the {len(angles)} angles" if len(angles) > 1 else "the one angle"
    warnings.warn(f"fbp: {subject} (from {float(np.min(angles)):.3g} to {float(np.max(angles)):.3g} rad) "
                  f"{found}; FBP for a {geometry} beam needs angles all round {needed}, so this image is distorted "
                  "(adareg.solve assumes no such coverage)", stacklevel=4)


def _filter(sinogram: Array, spacing: float, window: Window) -> Array:
    """Each projection (last axis) convolved with the ramp filter, in the sinogram's dtype."""
    xp = backend.namespace(sinogram)
    n = sinogram.shape[-1]
    response = caches.DeviceCache(ramp_filter(n, spacing, window)).like(sinogram, backend.real_dtype(sinogram.dtype))
    size = 2 * (response.shape[0] - 1)
    filtered = xp.fft.irfft(xp.fft.rfft(sinogram, n=size, axis=-1) * response, n=size, axis=-1)[..., :n]
    return xp.astype(filtered, sinogram.dtype, copy=False)


def _pixel_centres(H: RayTransform, like: Array) -> tuple[Array, Array]:
    """The pixels' centres ``(x, y)`` in ASTRA's frame (x to the right, y up: row 0 at the top), ``like``'s backend."""
    h, w = H.shape_in
    x = (np.arange(w) - (w - 1) / 2) * H.pixel_size
    y = ((h - 1) / 2 - np.arange(h)) * H.pixel_size
    dtype = backend.real_dtype(like.dtype)
    return tuple(caches.DeviceCache(a).like(like, dtype) for a in np.meshgrid(x, y))


def _sample(row: Array, index: Array) -> Array:
    """``row`` (its last axis: the detector cells) at the fractional cells ``index`` (an image of them), linearly
    interpolated; 0 beyond the first and last cells' centres."""
    xp = backend.namespace(row)
    n = row.shape[-1]
    low = xp.floor(index)
    frac = index - low
    low = xp.astype(low, xp.int64)
    inside = (low >= 0) & (low < n - 1)
    low = low.clip(0, n - 2)  # the array's own clip (see regularizers.base.project)
    shape = (*row.shape[:-1], *index.shape)
    value = (1 - frac) * xp.take(row, low.ravel(), axis=-1).reshape(shape) + \
        frac * xp.take(row, (low + 1).ravel(), axis=-1).reshape(shape)
    return xp.where(inside, value, 0.0)


def _interpolated_backprojection(H: RayTransform, filtered: Array) -> Array:
    r""":math:`\sum_\theta p_\theta(s(r, \theta))` for a parallel beam, with linear interpolation in the detector
    coordinate ``s`` of each pixel's centre ``r``.

    ASTRA's back-projector, the transpose of its projector, spreads each ray over the
    pixels it crosses: an interpolation while detector cells are no wider than pixels,
    but with wider cells the pixels between two rays get too little (a sinogram of ones
    does not back-project to a constant).
    """
    astra = importlib.import_module("astra")
    xp = backend.namespace(filtered)
    px, py = _pixel_centres(H, filtered)
    image = xp.zeros((*filtered.shape[:-2], *H.shape_in), dtype=backend.real_dtype(filtered.dtype))
    for k, vector in enumerate(astra.geom_2vec(H.proj_geom)["Vectors"]):
        # parallel_vec: the ray's direction, the detector's centre, the step from one cell to the next
        centre, cell = vector[2:4], vector[4:6]
        index = ((px - centre[0]) * cell[0] + (py - centre[1]) * cell[1]) / float(cell @ cell)
        image += _sample(filtered[..., k, :], index + (H.detector_count - 1) / 2)
    return image


def _fan_beam_fbp(H: RayTransform, sinogram: Array, window: Window) -> Array:
    """:func:`fbp` along the fan, of a ``sinogram`` whose rows come weighted by their shares of the turn."""
    astra = importlib.import_module("astra")
    xp = backend.namespace(sinogram)
    dtype = backend.real_dtype(sinogram.dtype)
    D, n = H.source_distance, H.detector_count
    spacing = H.detector_spacing * D / (D + H.detector_distance)  # on the virtual detector
    s = (np.arange(n) - (n - 1) / 2) * spacing
    weighted = sinogram * caches.DeviceCache(D / np.sqrt(D**2 + s**2)).like(sinogram, dtype)
    filtered = 0.5 * _filter(weighted, spacing, window)
    px, py = _pixel_centres(H, sinogram)
    image = xp.zeros((*sinogram.shape[:-2], *H.shape_in), dtype=dtype)
    for k, vector in enumerate(astra.geom_2vec(H.proj_geom)["Vectors"]):
        source, along = vector[0:2], vector[4:6] / np.linalg.norm(vector[4:6])
        central = -source / np.linalg.norm(source)  # unit vector from the source through the centre
        depth = D + px * central[0] + py * central[1]  # U * D
        position = D * (px * along[0] + py * along[1]) / depth  # s on the virtual detector
        image += _sample(filtered[..., k, :], position / spacing + (n - 1) / 2) * (D / depth) ** 2
    return xp.astype(image, xp.float32)


def _check_sinogram(sinogram: Any, caller: str) -> None:
    """A finite float sinogram (line integrals), or an error naming ``caller``."""
    backend.check_plain(sinogram, f"{caller}: sinogram")  # the conversions would drop a mask unseen
    if not backend.is_array(sinogram) or np.dtype(sinogram.dtype).newbyteorder("=") not in (np.float32, np.float64):
        kind = f"dtype {sinogram.dtype}" if backend.is_array(sinogram) else type(sinogram).__name__
        raise TypeError(f"{caller}: sinogram must be a float32 or float64 array of line integrals, got {kind}")
    backend.check_finite(sinogram, f"{caller}: sinogram")


def gaussian_noise(sinogram: Array, sigma: float, *, seed: int | np.random.Generator | None = None) -> Array:
    """``sinogram + sigma * n`` with ``n`` standard normal (same dtype and device)."""
    _check_sinogram(sinogram, "gaussian_noise")
    sigma = checks.non_negative(sigma, "gaussian_noise: sigma")
    noise = checks.random_generator(seed, "gaussian_noise: seed").standard_normal(tuple(sinogram.shape))
    return sinogram + caches.DeviceCache(noise).like(sinogram, sinogram.dtype) * sigma


#: The largest expected count of :func:`poisson_transmission` (NumPy's Poisson sampler refuses more than about 9.2e18).
POISSON_LIMIT = 1e18

#: The share of rays without a photon beyond which :func:`poisson_transmission` warns; such rays carry no
#: measurement (each counts as one photon), and a scan whose line integrals are in other units than intended
#: (``RayTransform``'s ``pixel_size``) starves many.
STARVED_RAYS = 0.01


def poisson_transmission(sinogram: Array, photons: float, *,
                         seed: int | np.random.Generator | None = None) -> tuple[Array, Array]:
    r"""Simulate a transmission scan with Poisson counting noise, and return the log data.

    A ray with line integral :math:`p` receives :math:`N \sim \mathrm{Poisson}(I_0 e^{-p})`
    photons out of :math:`I_0` = ``photons``; the measured line integral is
    :math:`-\log(\max(N, 1) / I_0)` (a ray with no photon counts as one).  Its variance
    is about :math:`1 / N`, so the inverse-variance weights for a weighted
    least-squares data term are proportional to :math:`N`; they are returned as
    :math:`N / I_0` (between 0 and about 1).  ``photons`` is at least 1: with fewer, the
    photon that a ray with none counts as would exceed what an unobstructed ray expects.
    Where more than :data:`STARVED_RAYS` of the rays receive no photon, a warning says so.

    Returns
    -------
    noisy, weights
        The noisy sinogram and the data weights, on the sinogram's backend.
    """
    _check_sinogram(sinogram, "poisson_transmission")
    photons = checks.real_number(photons, "poisson_transmission: photons")
    if not photons >= 1:
        raise ValueError(f"poisson_transmission: photons must be at least 1 (the expected count of an unobstructed "
                         f"ray), got {photons:g}")
    rng = checks.random_generator(seed, "poisson_transmission: seed")
    expected = photons * np.exp(-backend.to_numpy(sinogram).astype(np.float64))
    if not float(expected.max()) <= POISSON_LIMIT:
        raise ValueError(f"poisson_transmission: photons * exp(-p) reaches {float(expected.max()):.3g}, above the "
                         f"{POISSON_LIMIT:g} expected counts that NumPy's Poisson sampler draws; lower photons")
    drawn = rng.poisson(expected)
    starved = float(np.mean(drawn == 0))
    if starved > STARVED_RAYS:
        warnings.warn(f"poisson_transmission: {100 * starved:.3g} % of the rays received no photon (each counted as "
                      f"one), as their line integrals reach {float(np.max(backend.to_numpy(sinogram))):.3g} where "
                      f"log(photons) = {math.log(photons):.3g}: more photons, or line integrals in the intended units "
                      "(RayTransform's pixel_size: 1/N for an N x N image spanning one unit)", stacklevel=2)
    counts = np.maximum(drawn, 1).astype(np.float64)
    noisy = -np.log(counts / photons)
    dtype = backend.real_dtype(sinogram.dtype)

    def to_sinogram(a: np.ndarray) -> Array:
        """A new array in the sinogram's precision, on its device: the caller's to edit (a cache's host copy
        would be read-only)."""
        a = a.astype(dtype)
        return caches.DeviceCache(a).like(sinogram) if backend.is_cupy(sinogram) else a

    return to_sinogram(noisy), to_sinogram(counts / photons)


def transmission_weights(sinogram: Array) -> Array:
    r"""The data weights of a measured transmission sinogram: :math:`e^{-p}` for each line integral :math:`p`.

    A ray that receives :math:`N` of :math:`I_0` photons is measured as
    :math:`p = -\log(N / I_0)`, so :math:`e^{-p} = N / I_0`: the inverse-variance weights
    that :func:`poisson_transmission` returns (up to rounding), for a sinogram whose
    photon counts were not kept.  They are the weights the CT presets were tuned with
    (:mod:`adareg.presets`), and ``adareg ct``'s default.  Meant for the log-transformed
    data of a transmission scan, dimensionless line integrals; a sinogram of other data
    (a difference of scans, emission data) has no such weights.

    Returns
    -------
    Array
        Positive weights of the sinogram's shape, dtype and backend.

    Raises
    ------
    ValueError
        Where a weight is not a positive finite number of the dtype: line integrals
        beyond about 104 (float32) or 745 (float64), or below -88 or -709, which no
        count of photons gives (a sinogram in other units, or counts before the log).
    """
    _check_sinogram(sinogram, "transmission_weights")
    xp = backend.namespace(sinogram)
    with np.errstate(over="ignore", under="ignore"):
        weights = xp.exp(-sinogram)
    if not bool(xp.all(xp.isfinite(weights) & (weights > 0))):
        raise ValueError(f"transmission_weights: line integrals from {float(xp.min(sinogram)):.4g} to "
                         f"{float(xp.max(sinogram)):.4g} give weights e^-p beyond {sinogram.dtype}'s range: not the "
                         "log-transformed data of a transmission scan (solve without weights: adareg ct's "
                         "--data-weights uniform, CTReconstruction's data_weights='uniform')")
    return weights
