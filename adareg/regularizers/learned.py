"""What every learned family shares: the filter bank, the noise level's range, lambda(sigma)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from .. import backend, checks
from .filterbank import FilterBank


class SigmaProfile(backend.KeepsReadOnly):
    r"""A non-negative piecewise-linear function of the noise level, e.g. :math:`\lambda(\sigma)`.

    Linear interpolation between ``(knots[i], values[i])``, constant beyond the
    end knots (``numpy.interp``).  The knots are noise levels on the [0, 1]
    intensity scale, so they lie in [0, 1].
    """

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("knots", "values", "name")

    def __init__(self, knots: Any, values: Any, name: str):
        for part, given in (("knots", knots), ("values", values)):
            if np.asarray(given).dtype.kind not in "iuf":  # strings, None, complex or bool numbers
                raise TypeError(f"{name}: {part} must be real numbers, got {given!r}")
        knots, values = np.asarray(knots, dtype=np.float64), np.asarray(values, dtype=np.float64)
        if knots.ndim != 1 or knots.shape != values.shape or knots.size < 1:
            raise ValueError(f"{name}: knots and values must be 1D arrays of one length, got {knots.shape} and "
                             f"{values.shape}")
        if np.any(np.diff(knots) <= 0) or not np.all(np.isfinite(knots)) or not np.all(np.isfinite(values)):
            raise ValueError(f"{name}: knots must increase strictly and all entries be finite")
        if np.any(values < 0):
            raise ValueError(f"{name}: values must be non-negative")
        if knots[0] < 0 or knots[-1] > 1:  # e.g. noise levels in 0-255 units, which would shift every lambda(sigma)
            raise ValueError(f"{name}: knots are noise levels on the [0, 1] intensity scale, got {knots[0]:g} to "
                             f"{knots[-1]:g} (divide 0-255 levels by 255)")
        # read-only copies: an edit after construction would change the checked function
        self.knots, self.values, self.name = backend.read_only(knots), backend.read_only(values), name

    def __call__(self, sigma: float) -> float:
        """The value at the noise level ``sigma`` in [0, 1] (the intensity scale: a level in 0-255 units, held at
        the last knot's value, would pass for the largest trained one)."""
        sigma = checks.real_number(sigma, f"{self.name}: sigma")
        if not 0 <= sigma <= 1:
            raise ValueError(f"{self.name}: sigma must be a noise level in [0, 1], the intensity scale, got {sigma:g}"
                             + (f" (in 0-255 units? {sigma:g} / 255 = {sigma / 255:.4g})" if sigma > 1 else ""))
        return float(np.interp(sigma, self.knots, self.values))


class LearnedRegularizer(backend.KeepsReadOnly, ABC):
    r"""Base of the learned families: a filter bank ``W``, the trained :math:`\lambda(\sigma)`, the trained range.

    Attributes
    ----------
    family
        ``"crr"``, ``"wcrr"``, ``"sa-b"`` or ``"sa-cnn"``.
    bank
        The filter bank ``W``.
    lam
        :math:`\lambda(\sigma)`, the trained regularisation strength for denoising.
    sigma_range
        The noise levels ``(low, high)`` (intensities in [0, 1]) the model was trained for.
    """

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("bank", "lam", "sigma_range")

    family: str

    #: Whether the model sees the intensities themselves, not only their differences (``W``'s responses); then
    #: an image shifted off [0, 1] changes its result too (``sa-cnn``'s mask network takes the image).
    sees_intensities = False

    def __init__(self, bank: FilterBank, lam: SigmaProfile, sigma_range: tuple[float, float]):
        self.check_parts(bank=(bank, FilterBank), lam=(lam, SigmaProfile))
        self.bank, self.lam = bank, lam
        try:
            low, high = (checks.real_number(s, f"{self.family}: sigma_range") for s in sigma_range)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{self.family}: sigma_range must be a pair (low, high) of noise levels, got "
                            f"{sigma_range!r}: {err}") from None
        if not 0 <= low <= high <= 1:  # e.g. (0, 30): 0-255 units, which every lambda(sigma) would clamp
            raise ValueError(f"{self.family}: sigma_range must satisfy 0 <= low <= high <= 1 (noise levels on the "
                             f"[0, 1] intensity scale, e.g. (0, 30 / 255)), got {sigma_range!r}")
        self.sigma_range = (low, high)
        self.check_spans(lam)

    def check_parts(self, **parts: tuple[Any, type]) -> None:
        """A ``TypeError`` naming the first of ``parts`` (``name=(value, type)``) that is not of its type: a part
        built by hand of another kind (e.g. an array for a spline) would fail later, inside NumPy."""
        for name, (value, kind) in parts.items():
            if not isinstance(value, kind):
                raise TypeError(f"{self.family}: {name} must be a {kind.__name__}, got {type(value).__name__}")

    def check_spans(self, profile: SigmaProfile) -> None:
        """Refuse a profile of several knots that does not span ``sigma_range``: beyond its end knots it is
        held constant, so that the noise levels of the range past them would all get one value, unseen."""
        low, high = self.sigma_range
        slack = checks.float32_slack(high)  # knots stored in float32
        if profile.knots.size > 1 and not (profile.knots[0] <= low + slack and profile.knots[-1] >= high - slack):
            raise ValueError(f"{self.family}: the knots of {profile.name}(sigma) span [{profile.knots[0]:g}, "
                             f"{profile.knots[-1]:g}], not the trained sigma_range [{low:g}, {high:g}], beyond "
                             "them it would be held constant")

    @abstractmethod
    def at(self, sigma: float) -> Any:
        """The regularizer at the noise level ``sigma``, as the solvers use it; its ``minimisation``
        (``"smooth"`` or ``"reweighting"``) says which algorithm :func:`adareg.solve` runs."""

    def check_sigma(self, sigma: float) -> float:
        """``sigma`` as a float, or a ``ValueError`` if it is not finite or outside the trained range.

        A value outside the range by float32 rounding only (e.g. ``np.float32(30 / 255)``)
        is taken as the range's end.
        """
        sigma = checks.real_number(sigma, f"{self.family}: sigma")
        low, high = self.sigma_range
        inside = checks.within(sigma, low, high)
        if inside is None:
            raise ValueError(
                f"{self.family}: sigma = {sigma:.6g} ({sigma * 255:.6g}/255) is outside the trained range "
                f"[{low:g}, {high:g}] ([{low * 255:.3g}, {high * 255:.3g}]/255)"
                + (f"; in 0-255 units? {sigma:g} / 255 = {sigma / 255:.4g}" if sigma > 1 else "")
            )
        return inside
