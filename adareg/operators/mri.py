r"""MRI forward models: Cartesian (SENSE) and non-Cartesian (NUFFT) multi-coil sampling.

Both operators map an image ``x`` of shape ``image_shape`` to k-space samples,

.. math::

    y_c = P \, \mathcal{F} (S_c \odot x), \qquad c = 1, \dots, C,

with coil sensitivities :math:`S_c` (omitted for a single coil), a Fourier
transform :math:`\mathcal{F}` and a sampling :math:`P`.  The Fourier transform is
*centred* and *orthonormal*: image index ``n`` and frequency ``k`` both run from
``-N // 2`` (array index 0) to ``N - 1 - N // 2``, so the centre of the image and
k-space's DC sample sit at array index ``N // 2``, and

.. math::

    (\mathcal{F} x)_k = N_{\mathrm{tot}}^{-1/2} \sum_n x_n \, e^{-2 \pi i \, k \cdot n / N}

(the convention of SigPy and of ``fftshift(fftn(ifftshift(x), norm="ortho"))``).

The image space is chosen explicitly with ``real=``: ``real=True`` takes real
images (what the learned regularizers are trained on) and its adjoint is the real
part of the complex adjoint, which is the exact adjoint for the real inner product
``Re <u, v>``; ``real=False`` takes complex images.

The Cartesian model is computed here with the array's backend's FFT (``scipy.fft``
on several threads for NumPy, cuFFT for CuPy; see :func:`adareg.backend.fft`);
the non-Cartesian one calls SigPy's NUFFT (``pip install adareg[mri]``), imported
when the operator is built.  Both follow the input's device.
"""

from __future__ import annotations

import functools
import importlib
import math
import warnings
from types import ModuleType
from typing import Any

import numpy as np

from .. import backend, caches, checks
from ..backend import Array
from .base import LinearOperator, as_shape, broadcasts_to


def sigpy_module(name: str = "sigpy") -> ModuleType:
    """The module ``name`` of SigPy, or an ``ImportError`` that says how to install SigPy."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise ImportError(f"this needs SigPy, which could not be imported ({err}): pip install adareg[mri]") from None


def check_complex(kspace: Array, who: str) -> None:
    """Raise a ``TypeError`` naming ``who`` where ``kspace`` is real: Fourier samples are complex (a magnitude or a
    real part has lost their phase)."""
    if kspace.dtype.kind != "c":
        raise TypeError(f"{who} holds real values ({kspace.dtype}), but k-space is complex: pass the complex "
                        "samples (their magnitude or real part alone has lost the phase)")


def _host(a: Any, what: str) -> np.ndarray:
    """``a`` as a NumPy array of its own (later edits of ``a`` change nothing), checked finite."""
    backend.check_plain(a, what)  # the copy would drop a mask unseen
    # converted, then copied: np.array(..., copy=True) hands the copy keyword to __array__, which older
    # libraries' arrays (e.g. torch tensors) do not take (a DeprecationWarning under NumPy 2)
    a = backend.to_numpy(backend.as_array(a, what)).copy()
    if a.dtype.kind not in "biufc":
        raise TypeError(f"{what} must be numeric, got dtype {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what} contains NaN or Inf")
    return a


#: Range of the median of :math:`\sum_c |S_c|^2` over the pixels where it is nonzero outside which coil
#: maps get a warning: a factor 2 either side of 1.  Birdcage and ESPIRiT maps give 1 to rounding (ESPIRiT's
#: are 0 where cropped, which the median over nonzero pixels leaves out); k-space passed as maps gives
#: 0.003 to 0.03 (its energy sits near DC), maps times 10 give 100.
NORMALISED_MAPS = (0.5, 2.0)

#: :meth:`~adareg.operators.CartesianMRI.check_measurements` warns where the mean sampled energy at the ends of
#: k-space's axes exceeds this multiple of that at their centres: images' energy at low frequencies puts the ratio
#: orders of magnitude below 1 for centred k-space, and as far above it for numpy.fft's order.
UNCENTRED_RATIO = 10.0

#: :class:`NonCartesianMRI` warns where SigPy's NUFFT at its ``oversamp`` and ``width`` lies further than this
#: from a direct Fourier sum, relatively (:func:`nufft_error`; SigPy's defaults, 1.25 and 4, stay below it).
NUFFT_ACCURACY = 2e-2


@functools.lru_cache(maxsize=None)
def nufft_error(oversamp: float, width: float, ndim: int) -> float:
    r"""The relative distance of SigPy's NUFFT at ``oversamp`` and ``width`` from the direct Fourier sum
    :math:`N^{-d/2} \sum_n x_n e^{-2 \pi i k \cdot n / N}` (:class:`NonCartesianMRI`'s convention), measured
    on a random complex image of :math:`16^d` pixels at 64 random frequencies.

    The interpolation's error depends on the kernel, not on the image size: a
    measurement on a small grid stands for every grid.
    """
    rng = np.random.default_rng(0)
    n = 16
    image = rng.standard_normal((n,) * ndim) + 1j * rng.standard_normal((n,) * ndim)
    k = rng.uniform(-n / 2, n / 2, (64, ndim))
    phases = np.exp(-2j * np.pi * k[:, :, None] * (np.arange(n) - n // 2) / n)  # (samples, axes, pixels per axis)
    direct = np.einsum("...p,sp->s...", image, phases[:, -1])  # the kernel is separable: one axis at a time,
    for axis in reversed(range(ndim - 1)):  # the last first
        direct = np.einsum("s...p,sp->s...", direct, phases[:, axis])
    direct = direct / n ** (ndim / 2)
    nufft = sigpy_module().nufft(image, k, oversamp=oversamp, width=width)
    return float(np.linalg.norm(nufft - direct) / np.linalg.norm(direct))


def _check_maps(maps: Any, image_shape: tuple[int, ...], who: str) -> np.ndarray:
    r"""Coil maps as a complex128 host array of shape ``(C, *image_shape)``.

    Warns, pointing at the caller of ``who``, when they are far from normalised: the
    median of :math:`\sum_c |S_c|^2` over the pixels where it is nonzero outside
    :data:`NORMALISED_MAPS`, or the maps zero everywhere.
    """
    maps = _host(maps, f"{who}: maps")
    if maps.ndim != len(image_shape) + 1 or maps.shape[1:] != image_shape:
        raise ValueError(
            f"{who}: maps must have shape (coils, *image_shape) = (C, {', '.join(map(str, image_shape))}), "
            f"got {maps.shape}: coil maps that do not match the image"
        )
    energy = np.sum(np.abs(maps) ** 2, axis=0)
    energy = energy[energy > 0]
    median = float(np.median(energy)) if energy.size else 0.0
    if not energy.size:
        warnings.warn(f"{who}: the coil maps are zero everywhere: every image is mapped to 0", stacklevel=3)
    elif not NORMALISED_MAPS[0] <= median <= NORMALISED_MAPS[1]:
        warnings.warn(
            f"{who}: the coil maps are far from normalised: sum_c |S_c|^2 has median {median:.3g} over the pixels "
            f"where it is nonzero, expected about 1 (as from adareg.mri.birdcage_maps or espirit_maps), so "
            f"zero-filled images come out about {median:.3g} times as bright and lam's scale changes with them; "
            "divide the maps by sqrt(sum_c |S_c|^2) where it is nonzero, or check that they are coil maps (not "
            "k-space or images)", stacklevel=3)
    return maps.astype(np.complex128)


class _MRIOperator(LinearOperator):
    """Shared parts: coil maps, the real or complex image space, dtypes.

    Subclasses implement ``_sample(z)`` (the Fourier sampling of coil images
    ``z`` of shape ``(..., *image_shape)``, complex, in the computation dtype)
    and ``_sample_adjoint(y)`` (its adjoint, back to ``(..., *image_shape)``).
    """

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("image_shape", "real", "coils", "maps")

    def __init__(self, image_shape: tuple[int, ...], samples_shape: tuple[int, ...], maps: np.ndarray | None,
                 real: bool):
        if not isinstance(real, (bool, np.bool_)):
            raise TypeError(f"{type(self).__name__}: real must be True (real images) or False (complex images), "
                            f"got {real!r}")
        coils = () if maps is None else (maps.shape[0],)
        super().__init__(image_shape, (*coils, *samples_shape), np.complex128, real_in=bool(real))
        self.image_shape = image_shape
        self.real = bool(real)
        self.coils = coils[0] if coils else 1
        self._maps = None if maps is None else caches.DeviceCache(maps)
        self.maps = None if maps is None else self._maps.host  # read-only, as the copies the operator applies

    def _sample(self, z: Array) -> Array:
        raise NotImplementedError

    def _sample_adjoint(self, y: Array) -> Array:
        raise NotImplementedError

    def _apply(self, x: Array) -> Array:
        dtype = backend.result_dtype(x.dtype, np.complex128)
        z = x.astype(dtype)
        if self._maps is not None:  # coil images S_c x, on a new axis before the image axes
            xp = backend.namespace(x)
            z = xp.expand_dims(z, axis=-len(self.image_shape) - 1) * self._maps.like(x, dtype)
        return self._sample(z)

    def check_measurements(self, y: Array, who: str) -> None:
        """Raise a ``TypeError`` naming ``who`` where ``y`` is real (:func:`check_complex`)."""
        check_complex(y, who)

    def _adjoint(self, y: Array) -> Array:
        dtype = backend.result_dtype(y.dtype, np.complex128)
        z = self._sample_adjoint(y.astype(dtype))
        xp = backend.namespace(y)
        if self._maps is not None:  # coil combination sum_c conj(S_c) z_c
            z = xp.sum(xp.conj(self._maps.like(y, dtype)) * z, axis=-len(self.image_shape) - 1)
        return xp.real(z) if self.real else z


class CartesianMRI(_MRIOperator):
    r"""Cartesian MRI, single- or multi-coil (SENSE): :math:`y_c = M \odot \mathcal{F}(S_c \odot x)`.

    :math:`\mathcal{F}` is the centred orthonormal FFT over all image axes (see
    :mod:`adareg.operators.mri`), :math:`M` a binary sampling mask.  The output is
    the *whole* k-space grid with zeros where nothing is sampled (the layout of
    fastMRI's masked k-space), shape ``image_shape`` for one coil and
    ``(C, *image_shape)`` for ``C`` coils.  The adjoint is
    :math:`x = \sum_c \bar S_c \odot \mathcal{F}^{-1}(M \odot y_c)`, and its real part
    on the real image space.  Fully sampled with one coil, the operator is unitary.

    Parameters
    ----------
    mask
        Boolean (or 0/1) sampling mask, broadcast against the image shape without
        enlarging it: ``(H, W)``, or ``(W,)`` for the same columns sampled in every
        row (as :func:`adareg.mri.cartesian_mask` draws them; the readout runs along
        the first axis).  k-space's DC sample is at index ``N // 2`` on each axis.
    maps
        Coil sensitivities of shape ``(C, *image_shape)`` (e.g. from
        :func:`adareg.mri.birdcage_maps` or :func:`adareg.mri.espirit_maps`), or
        ``None`` for a single coil without sensitivity weighting.  Maps far from
        normalised (:math:`\sum_c |S_c|^2` not about 1 where nonzero, see
        :data:`~adareg.operators.mri.NORMALISED_MAPS`) get a warning.
    real
        ``True``: the image space is real (real images in, adjoint ``Re(A^H y)``);
        ``False``: complex images.  Required, so that the choice is visible.
    shape
        Image shape; needed only when neither ``mask`` nor ``maps`` gives it
        (a ``(W,)`` mask for one coil: ``shape=(H, W)``, or ``(W,)`` for 1-D signals).
    """

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("mask",)

    def __init__(self, mask: Any, maps: Any = None, *, real: bool, shape: Any = None):
        mask = _host(mask, "CartesianMRI: mask")
        if maps is not None:  # its shape is read below, before the maps are checked
            maps = backend.as_array(maps, "CartesianMRI: maps")
        if mask.dtype != bool:
            if not np.all((mask == 0) | (mask == 1)):
                raise ValueError("CartesianMRI: mask must be boolean or contain only 0 and 1")
            mask = mask.astype(bool)
        # the image shape: given, else the maps' for a mask of fewer axes or one that broadcasts to
        # theirs (e.g. (W,) or (1, W)), else the mask's
        if shape is not None:
            image_shape = as_shape(shape, "CartesianMRI: shape")
        elif maps is not None and np.ndim(maps) == mask.ndim >= 2:
            raise ValueError(f"CartesianMRI: maps of shape {np.shape(maps)} have as many axes as the mask "
                             f"{mask.shape}: maps must be (coils, *image_shape), for one coil maps[None]; and the "
                             "mask is one for every coil (read off k-space as kspace != 0, take mask[0])")
        elif maps is not None and np.ndim(maps) == 2 and mask.ndim == 1:
            # (H, W) maps of one coil would be read as H coils of 1-D signals
            raise ValueError(f"CartesianMRI: maps of shape {np.shape(maps)} with a column mask {mask.shape}: maps "
                             f"must be (coils, *image_shape): for one coil of {np.shape(maps)} images pass "
                             f"maps[None] (for 1-D signals with {np.shape(maps)[0]} coils, shape=({mask.shape[0]},))")
        elif maps is not None and np.ndim(maps) >= 2:  # (coils, *image_shape): a mask that does not fit is named
            image_shape = tuple(np.shape(maps))[1:]
        elif maps is None and mask.ndim == 1:
            # a (W,) column mask alone would make a 1-D operator, applied row by row to an image
            raise ValueError(f"CartesianMRI: a mask of shape {mask.shape} does not give the image shape; pass "
                             f"shape=(H, {mask.shape[0]}) for images (or shape=({mask.shape[0]},) for 1-D signals)")
        else:
            image_shape = tuple(mask.shape)
        if not image_shape:
            raise ValueError("CartesianMRI: the image must have at least one axis")
        maps = None if maps is None else _check_maps(maps, image_shape, "CartesianMRI")
        if not broadcasts_to(mask.shape, image_shape):
            last = maps is not None and shape is None and broadcasts_to(mask.shape, maps.shape[:-1])
            raise ValueError(
                f"CartesianMRI: mask of shape {mask.shape} does not match the image shape {image_shape}"
                f"{'' if maps is None else ' of the coil maps'}; "
                f"expected {image_shape} or a shape that broadcasts to it, e.g. ({image_shape[-1]},) for columns"
                + (f"; or are the maps {maps.shape} coils-last? They must be (coils, *image_shape): "
                   "numpy.moveaxis(maps, -1, 0)" if last else "")
            )
        if not mask.any():
            raise ValueError("CartesianMRI: mask samples nothing")
        super().__init__(image_shape, image_shape, maps, real)
        self.mask = backend.read_only(mask)  # the sampling copies it
        self._axes = tuple(range(-len(image_shape), 0))
        # On even axes the centring shifts are sign flips (see _sample): the checkerboard
        # (-1)^(sum n) goes into the coil maps and, times (-1)^(sum N/2), into the mask.
        self._modulated = all(n % 2 == 0 for n in image_shape)
        self._checkerboard = None
        if self._modulated:
            parity = sum(np.ix_(*(np.arange(n) for n in image_shape)))  # sum n, broadcast to the image
            checkerboard = 1.0 - 2.0 * (parity % 2)
            if maps is None:  # one coil: no maps to carry the signs
                self._checkerboard = caches.DeviceCache(checkerboard)
            else:
                self._maps = caches.DeviceCache(maps * checkerboard)
            shifted = 1.0 - 2.0 * ((parity + sum(n // 2 for n in image_shape)) % 2)  # (-1)^(sum k + N/2)
            self._mask = caches.DeviceCache(shifted * mask)
        else:
            self._mask = caches.DeviceCache(mask)

    def _sample(self, z: Array) -> Array:
        # The centred FFT fftshift(fftn(ifftshift(z))): for an even length N a shift by N/2
        # multiplies by (-1)^k in the other domain, so it is (-1)^(k + N/2) fftn((-1)^n z),
        # with the signs folded into the maps and the mask: no shifted copies.
        fft = backend.fft(z)
        mask = self._mask.like(z, backend.real_dtype(z.dtype))
        if not self._modulated:
            xp = backend.namespace(z)
            k = fft.fftn(xp.fft.ifftshift(z, axes=self._axes), axes=self._axes, norm="ortho")
            return xp.fft.fftshift(k, axes=self._axes) * mask
        if self._checkerboard is not None:
            z = z * self._checkerboard.like(z, backend.real_dtype(z.dtype))
        k = fft.fftn(z, axes=self._axes, norm="ortho")
        k *= mask
        return k

    def _sample_adjoint(self, y: Array) -> Array:
        fft = backend.fft(y)
        y = y * self._mask.like(y, backend.real_dtype(y.dtype))
        if not self._modulated:
            xp = backend.namespace(y)
            z = fft.ifftn(xp.fft.ifftshift(y, axes=self._axes), axes=self._axes, norm="ortho")
            return xp.fft.fftshift(z, axes=self._axes)
        z = fft.ifftn(y, axes=self._axes, norm="ortho")
        if self._checkerboard is not None:
            z *= self._checkerboard.like(z, backend.real_dtype(z.dtype))
        return z

    def check_measurements(self, y: Array, who: str) -> None:
        """Warn where the energy of ``y``'s sampled entries sits at the grid's corners or at the ends of its axes
        rather than at its centre: k-space in numpy.fft's order (zero frequency first), where this operator takes
        it centred.

        Images have most of their energy at low frequencies, which the centred order puts in the middle and
        numpy.fft's order at the corners.  The mean of :math:`|y|^2` (summed over batch and coils) over sampled
        entries at the ends is compared with that at the centre, each within an eighth of each axis's length,
        in two ways, either of which over :data:`~adareg.operators.mri.UNCENTRED_RATIO` warns: the blocks at the
        grid's corners against the central block, and, for each axis apart, its ends against its centre with the
        other axes free (a mask may sample no entry of the corner blocks, but the fully sampled readout axis always
        has entries at both).  A test without sampled entries in both places gives no evidence.

        Raises
        ------
        TypeError
            If ``y`` is real: Fourier samples are complex (a magnitude has lost their phase).
        """
        super().check_measurements(y, who)
        if min(self.image_shape) < 4:
            return
        xp = backend.namespace(y)
        energy = backend.to_numpy(xp.sum(xp.abs(y) ** 2, axis=tuple(range(y.ndim - len(self.image_shape)))))
        sampled = np.broadcast_to(self.mask, self.image_shape)
        reach = [max(1, n // 8) for n in self.image_shape]
        ends, centres = [], []  # boolean selections of the grid: the places compared, in pairs
        for axis, (n, r) in enumerate(zip(self.image_shape, reach)):
            index = np.arange(n).reshape([n if a == axis else 1 for a in range(len(self.image_shape))])
            ends.append((index < r) | (index >= n - r))
            centres.append((index >= n // 2 - r) & (index < n // 2 + r))
        pairs = [(functools.reduce(np.logical_and, ends), functools.reduce(np.logical_and, centres))]  # corners, centre
        pairs += list(zip(ends, centres))  # each axis apart
        for at_ends, at_centre in pairs:
            at_ends, at_centre = sampled & at_ends, sampled & at_centre
            if not (at_ends.any() and at_centre.any()):
                continue  # no evidence either way
            if energy[at_ends].mean() > UNCENTRED_RATIO * energy[at_centre].mean():
                warnings.warn(f"{who}: the k-space is largest at the grid's corners, not at its centre (numpy.fft's "
                              "order?): adareg takes centred k-space, the zero frequency in the middle, as "
                              "fftshift(fft2(ifftshift(image))) over the last two axes gives (fastMRI's convention), "
                              "with the mask in the same order", stacklevel=4)
                return

    def _exact_norm(self) -> float | None:
        mask = np.broadcast_to(self.mask, self.image_shape)
        if self.maps is None:
            if not self.real:
                return 1.0  # F is unitary and the mask a nonzero projection
            # Real images: A^T A = Re(F^H M F) = F^H diag((M(k) + M(-k)) / 2) F, since
            # conj(F x) at k is (F x) at -k for real x; frequencies wrap modulo N.
            reflected = mask[np.ix_(*[(-np.arange(n) + 2 * (n // 2)) % n for n in self.image_shape])]
            return float(np.sqrt(np.max((mask.astype(float) + reflected) / 2)))
        if mask.all():  # A^H A = diag(sum_c |S_c|^2), real and diagonal
            return self._maps_norm()
        return None

    def _upper_bound(self, like: Array | None) -> float:
        exact = self._exact_norm()
        # the mask and the unitary FFT do not increase norms: ||A|| <= ||S||
        return self._maps_norm() if exact is None else exact

    def _maps_norm(self) -> float:
        """``||S|| = max (sum_c |S_c|^2)^(1/2)``, the norm of the coil maps (on real or complex images)."""
        return float(np.sqrt(np.max(np.sum(np.abs(self.maps) ** 2, axis=0))))

    def __repr__(self) -> str:
        space = "real" if self.real else "complex"
        return f"CartesianMRI({self.shape_in} -> {self.shape_out}, {self.coils} coil(s), {space} images)"


class NonCartesianMRI(_MRIOperator):
    r"""Non-Cartesian MRI by NUFFT: :math:`y_c = \sqrt{w} \odot \mathcal{F}_\kappa (S_c \odot x)`.

    :math:`\mathcal{F}_\kappa` samples the centred orthonormal Fourier transform of
    :mod:`adareg.operators.mri` at the trajectory's points,

    .. math::

        (\mathcal{F}_\kappa x)_j \approx N_{\mathrm{tot}}^{-1/2} \sum_n x_n \, e^{-2 \pi i \, \kappa_j \cdot n / N},

    computed by SigPy's Kaiser-Bessel NUFFT (Beatty et al., 2005); the adjoint is
    SigPy's gridding adjoint, exact to rounding.  The approximation error of the
    NUFFT itself is about 1e-2 (relative) at SigPy's defaults ``oversamp=1.25,
    width=4`` and 1e-5 at ``oversamp=2, width=6``.

    Density compensation enters as :math:`\sqrt{w}` in the forward model, so that
    the operator stays exactly adjoint and ``||A x - sqrt(w) y||^2`` is the
    density-weighted data term :math:`\sum_j w_j |(\mathcal{F}_\kappa S x)_j - y_j|^2`:
    pass measurements multiplied by ``sqrt(density)``.  (Alternatively build the
    operator without ``density`` and give ``weights=density`` to
    :func:`adareg.solve`.)  Then :math:`A^H (\sqrt{w} y)` is the gridding
    reconstruction.

    Parameters
    ----------
    trajectory
        k-space coordinates of shape ``(..., ndim)`` with ``ndim = len(image_shape)``;
        ``trajectory[..., a]`` is the frequency along image axis ``a`` in cycles per
        field of view, within ``[-N_a / 2, N_a / 2]`` (SigPy's convention; the two
        ends are the same frequency on the grid).  See
        :func:`adareg.mri.radial_trajectory` and :func:`adareg.mri.spiral_trajectory`.
        One that stays within ``[-pi, pi]`` on a grid of 26 samples or more per axis
        (a normalised trajectory) gets a warning.
    image_shape
        Shape of the image (1 to 3 axes).
    maps
        Coil sensitivities of shape ``(C, *image_shape)``, or ``None`` for one coil;
        a warning where they are far from normalised, as for :class:`CartesianMRI`.
    density
        Non-negative density compensation weights of shape ``trajectory.shape[:-1]``,
        or ``None``.
    real
        ``True``: real image space (adjoint ``Re(A^H y)``); ``False``: complex.
    oversamp, width
        Grid oversampling factor (at least 1) and kernel width (in samples of the
        oversampled grid) of SigPy's NUFFT, finite numbers with
        ``width * (1 - 0.5 / oversamp) >= sqrt(0.8)``, where SigPy's Kaiser-Bessel
        kernel is defined (``width >= 1.79`` for ``oversamp=1``).  A warning where the
        NUFFT lies further than :data:`~adareg.operators.mri.NUFFT_ACCURACY` from the direct
        Fourier sum (:func:`~adareg.operators.mri.nufft_error`): e.g. ``oversamp`` 1.1 with
        ``width`` 4, or ``width`` 3 (at ``oversamp`` 1 it is 30 to 50 % off); raise either to
        gain accuracy.

    Notes
    -----
    The output has shape ``trajectory.shape[:-1]`` for one coil and
    ``(C, *trajectory.shape[:-1])`` for ``C`` coils.
    """

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("trajectory", "density", "oversamp", "width")

    def __init__(self, trajectory: Any, image_shape: Any, maps: Any = None, density: Any = None, *,
                 real: bool, oversamp: float = 1.25, width: float = 4):
        sigpy_module()  # refused here without SigPy; the module is not kept: an operator holding it cannot be pickled
        image_shape = as_shape(image_shape, "NonCartesianMRI: image_shape")
        if not 1 <= len(image_shape) <= 3:
            raise ValueError(f"NonCartesianMRI: image_shape must have 1 to 3 axes, got {image_shape}")
        trajectory = _host(trajectory, "NonCartesianMRI: trajectory")
        ndim = len(image_shape)
        if trajectory.dtype.kind == "c" or trajectory.ndim < 2 or trajectory.shape[-1] != ndim:
            raise ValueError(
                f"NonCartesianMRI: trajectory must be a real array of shape (..., {ndim}) for an image of shape "
                f"{image_shape}, got shape {trajectory.shape} and dtype {trajectory.dtype}"
            )
        trajectory = trajectory.astype(np.float64)
        half = np.asarray(image_shape, dtype=float) / 2
        outside = np.abs(trajectory) > half
        if outside.any():
            axis = int(np.nonzero(outside.reshape(-1, ndim).any(axis=0))[0][0])
            raise ValueError(
                f"NonCartesianMRI: trajectory out of range on axis {axis}: coordinates must lie in "
                f"[-N/2, N/2] = [{-half[axis]:g}, {half[axis]:g}] (cycles per field of view, image shape "
                f"{image_shape}), got values up to {np.abs(trajectory[..., axis]).max():g}"
            )
        extent = float(np.abs(trajectory).max())
        if extent <= math.pi + 1e-9 and half.min() >= 4 * math.pi:  # e.g. [-0.5, 0.5] or [-pi, pi]
            warnings.warn(f"NonCartesianMRI: the trajectory reaches only {extent:.3g} of the k-space grid's "
                          f"[-N/2, N/2] (N = {image_shape}): coordinates are in cycles per field of view (SigPy's "
                          "convention); scale one in [-0.5, 0.5] by N, one in [-pi, pi] by N / (2 pi)", stacklevel=2)
        samples_shape = trajectory.shape[:-1]
        maps = None if maps is None else _check_maps(maps, image_shape, "NonCartesianMRI")
        if density is not None:
            density = _host(density, "NonCartesianMRI: density")
            if density.dtype.kind == "c" or density.shape != samples_shape or np.any(density < 0):
                raise ValueError(
                    f"NonCartesianMRI: density must be real, non-negative and of shape trajectory.shape[:-1] = "
                    f"{samples_shape}, got shape {density.shape} and dtype {density.dtype}"
                )
        oversamp = checks.real_number(oversamp, "NonCartesianMRI: oversamp")
        width = checks.positive(width, "NonCartesianMRI: width")
        if oversamp < 1:
            raise ValueError(f"NonCartesianMRI: oversamp must be at least 1, got {oversamp:g}")
        if width * (1 - 0.5 / oversamp) < math.sqrt(0.8):
            # SigPy's Kaiser-Bessel shape pi * sqrt((width (1 - 0.5 / oversamp))^2 - 0.8) must be real
            raise ValueError(f"NonCartesianMRI: width = {width:g} is too narrow for oversamp = {oversamp:g}: "
                             f"SigPy's kernel needs width >= {math.sqrt(0.8) / (1 - 0.5 / oversamp):.3g}")
        error = nufft_error(oversamp, width, len(image_shape))
        if error > NUFFT_ACCURACY:  # the adjoint stays exact, so nothing downstream would notice
            warnings.warn(f"NonCartesianMRI: SigPy's NUFFT at oversamp = {oversamp:g} and width = {width:g} lies "
                          f"{error:.2g} (relative) from the direct Fourier sum, more than {NUFFT_ACCURACY:g}: raise "
                          "oversamp (default 1.25) or width (default 4)", stacklevel=2)
        super().__init__(image_shape, samples_shape, maps, real)
        self._trajectory = caches.DeviceCache(trajectory)
        self.trajectory = self._trajectory.host  # read-only, as the copies the operator applies
        self.density = None if density is None else backend.read_only(density)
        self.oversamp, self.width = oversamp, width
        self._sqrt_density = None if density is None else caches.DeviceCache(np.sqrt(density.astype(np.float64)))

    def _sample(self, z: Array) -> Array:
        sp = sigpy_module()
        coord = self._trajectory.like(z, backend.real_dtype(z.dtype))
        with sp.get_device(z):
            y = sp.nufft(z, coord, oversamp=self.oversamp, width=self.width)
        if self._sqrt_density is not None:
            y = y * self._sqrt_density.like(z, backend.real_dtype(z.dtype))
        return y

    def _sample_adjoint(self, y: Array) -> Array:
        sp = sigpy_module()
        if self._sqrt_density is not None:
            y = y * self._sqrt_density.like(y, backend.real_dtype(y.dtype))
        coord = self._trajectory.like(y, backend.real_dtype(y.dtype))
        leading = y.shape[: y.ndim - (self.trajectory.ndim - 1)]
        with sp.get_device(y):
            return sp.nufft_adjoint(y, coord, oshape=(*leading, *self.image_shape), oversamp=self.oversamp,
                                    width=self.width)

    def __repr__(self) -> str:
        space = "real" if self.real else "complex"
        return (f"NonCartesianMRI({self.shape_in} -> {self.shape_out}, {self.coils} coil(s), {space} images"
                f"{', density-weighted' if self.density is not None else ''})")
