r"""Linear-spline profiles: the learnable pointwise functions of the ridge regularizers.

A :class:`LinearSpline` is a bank of ``C`` continuous piecewise-linear functions
:math:`f_c` on the uniform knots :math:`t_k = t_0 + k h`, :math:`k = 0, \dots, K-1`,
with :math:`f_c(t_k) = a_{c,k}`.  In the ridge regularizers (``crr``, ``wcrr``,
DESIGN.md §1; after Goujon et al., CRR-NN and WCRR-NN) :math:`f_c = \varphi_c'` is the
derivative of the potential, and the potential is its integral

.. math::

    F_c(z) = \int_0^z f_c(t) \, dt,

a piecewise quadratic function, evaluated exactly.  The second derivative of the
potential is the slope of :math:`f_c`, constant on each segment,
:math:`F_c'' = (a_{c,k+1} - a_{c,k}) / h` (:func:`slopes`), so

* :math:`F_c` is convex iff every slope is :math:`\ge 0` (:func:`is_convex`), and
* :math:`F_c` is :math:`\rho`-weakly convex (:math:`F_c + \tfrac\rho2 z^2` convex)
  iff every slope is :math:`\ge -\rho` (:func:`weak_convexity`).

Outside :math:`[t_0, t_{K-1}]` each :math:`f_c` continues linearly with the slope of its
first or last segment (as in the CRR-NN/WCRR-NN reference code).  Then :math:`F_c''`
takes no values but the segment slopes, on the whole real line, so every bound read
off :func:`slopes` (convexity, weak convexity, the Lipschitz constant
:math:`\max |F_c''|` of :math:`f_c`) holds everywhere; a constant extension would add
the slope 0 and break, e.g., a lower bound :math:`F_c'' \ge m > 0`.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .. import backend, caches, checks, threads
from ..backend import Array

#: Relative distance (in steps) within which 0 is taken to be a knot of the grid: a few units of rounding.
_KNOT_ROUNDING = 16 * float(np.finfo(np.float64).eps)
#: The largest table entry (and grid position of 0, in steps) a spline takes: float32's largest number with a factor
#: 1 / eps to spare, as the tables are copied to float32 for float32 work (the learned models' default precision).
_TABLE_LIMIT = float(np.finfo(np.float32).max * np.finfo(np.float32).eps)


class LinearSpline:
    r"""A bank of ``C`` linear splines on a shared uniform grid, applied channel-wise.

    .. math::

        f_c(z) = a_{c,k} + u \, (a_{c,k+1} - a_{c,k}), \qquad
        k = \min(\max(\lfloor s \rfloor, 0), K - 2), \quad u = s - k, \quad
        s = (z - t_0) / h,

    so :math:`0 \le u < 1` inside the grid and :math:`u < 0` (first segment) or
    :math:`u > 1` (last segment) on the linear extensions.

    Every method takes ``z`` of shape ``(..., C, *spatial)`` with the channel axis at
    ``axis`` (default ``-3``: ``(C, H, W)`` and ``(B, C, H, W)`` both work), applies
    :math:`f_c` to channel ``c``, and returns an array of ``z``'s shape, dtype
    (float32 or float64) and backend.  The work is :math:`O(N)`: one segment index per
    value and gathers from flat per-segment tables (offset ``c (K - 1)`` for channel
    ``c``), with no loop over channels.  The tables are computed once on the host in
    float64 and copied once per device and dtype (:class:`~adareg.caches.DeviceCache`).

    A NaN in ``z`` gives NaN at that entry (never an error or a silently finite value);
    :math:`\pm\infty` follows IEEE arithmetic on the linear extension.

    Parameters
    ----------
    coefficients
        :math:`a_{c,k} = f_c(t_k)`, shape ``(C, K)`` with ``K >= 2``, finite and real.
        Copied (as float64, read-only) on the host.
    grid_min
        The first knot :math:`t_0`.
    grid_step
        The knot spacing :math:`h > 0`.
    """

    def __init__(self, coefficients: Any, grid_min: float, grid_step: float):
        name = type(self).__name__
        if backend.is_array(coefficients):
            coefficients = backend.to_numpy(coefficients)
        coefficients = np.asarray(coefficients)
        if coefficients.dtype.kind not in "fiu":
            raise TypeError(f"{name}: coefficients must be real numbers, got dtype {coefficients.dtype}")
        if coefficients.ndim != 2 or coefficients.shape[0] < 1 or coefficients.shape[1] < 2:
            raise ValueError(f"{name}: coefficients must have shape (C, K) with C >= 1 channels and K >= 2 knots, "
                             f"got shape {coefficients.shape}")
        if coefficients.shape[0] * (coefficients.shape[1] - 1) > 2**24:
            raise ValueError(f"{name}: at most 2**24 segments in all (their indices are computed in float32), "
                             f"got {coefficients.shape[0]} x {coefficients.shape[1] - 1}")
        if not np.all(np.isfinite(coefficients)):
            raise ValueError(f"{name}: coefficients contain NaN or Inf")
        grid_min = checks.real_number(grid_min, f"{name}: grid_min")  # a string or a 1-element array is not one
        grid_step = checks.positive(grid_step, f"{name}: grid_step")
        a = backend.read_only(np.asarray(coefficients, dtype=np.float64))  # a copy: the tables cannot go stale
        channels, knots = a.shape
        s0 = -grid_min / grid_step  # the position of 0 on the grid, in steps (Python floats: inf on overflow)
        knot = round(s0) if math.isfinite(s0) else -1
        if 0 <= knot <= knots - 1 and abs(s0 - knot) <= _KNOT_ROUNDING * max(1.0, abs(s0)):
            # 0 within rounding of a knot (e.g. after rescaled(alpha)) is that knot: else float32 responses
            # smaller than the offset (relative to the step) would all take the segment on one side
            grid_min, s0 = -knot * grid_step, float(knot)
        self.coefficients = a
        self.grid_min = grid_min
        self.grid_step = grid_step

        # per-segment tables, flattened channel-major: entry c * (K - 1) + k
        h = grid_step
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused below, by name
            delta = np.diff(a, axis=1)
            slope = delta / h
            # the integral of f from t_0 to each knot (trapezoids, exact for linear pieces) ...
            cumulative = np.zeros((channels, knots))
            cumulative[:, 1:] = np.cumsum(0.5 * h * (a[:, :-1] + a[:, 1:]), axis=1)
            # ... minus its value at 0, so that F(0) = 0 whether or not 0 is a knot
            k0 = int(min(max(math.floor(s0), 0), knots - 2)) if math.isfinite(s0) else 0
            u0 = s0 - k0
            at_zero = cumulative[:, k0] + 0.5 * h * u0 * (2.0 * a[:, k0] + u0 * delta[:, k0])
            # each segment's pieces as polynomials in z itself, not in its offset from a knot:
            # f = b + s z and F = e + z (b + s z / 2), so that near z = 0 no term is larger than
            # the result (no cancellation, in float32 too); b and e from the segment's end nearer
            # to 0, so that where 0 is a knot both its segments get f(0) exactly
            t = grid_min + h * np.arange(knots - 1)
            right = t + h <= 0.0  # segments left of 0 take their right end
            anchor = np.where(right, t + h, t)
            intercept = np.where(right, a[:, 1:], a[:, :-1]) - slope * anchor
            integral = np.where(right, cumulative[:, 1:], cumulative[:, :-1]) - at_zero[:, None]
            constant = integral - anchor * (intercept + 0.5 * slope * anchor)
        through_zero = (t <= 0.0) & (t + h >= 0.0)
        through_zero[k0] = True  # also a linear extension that holds 0
        constant[:, through_zero] = 0.0  # their quadratics pass through F(0) = 0, exactly
        if not (abs(s0) <= _TABLE_LIMIT
                and all(np.all(np.abs(table) <= _TABLE_LIMIT) for table in (slope, intercept, constant))):
            raise ValueError(f"{name}: slopes or integrals beyond {_TABLE_LIMIT:.1g}, more than float32 carries with "
                             f"room (a grid_step of {grid_step:g} for values up to {float(np.abs(a).max()):g} and "
                             f"grid_min {grid_min:g}); use a coarser grid or smaller values")
        self._slope = caches.DeviceCache(slope.ravel())
        self._intercept = caches.DeviceCache(intercept.ravel())
        self._constant = caches.DeviceCache(constant.ravel())
        # s = (z - t_0) / h = z / h + n + r with n = floor(-t_0 / h) where 0 lies on the grid (else
        # n = 0): n is added after the floor, so that where 0 is a knot (r = 0) the sign of a tiny z
        # picks its segment, and |n| < K keeps the float indices exact
        self._whole = math.floor(s0) if 0.0 <= s0 <= knots - 1 else 0
        self._fraction = s0 - self._whole
        # channel offsets (and n) added to the segment index as floats (exact below 2**24) before one integer cast
        self._offsets = caches.DeviceCache(np.arange(channels, dtype=np.float64) * (knots - 1) + self._whole)

    def rescaled(self, alpha: float) -> LinearSpline:
        r"""The spline :math:`g_c(z) = f_c(\alpha z) / \alpha`, whose potential is :math:`F_c(\alpha z) / \alpha^2`.

        Its knots are :math:`t_k / \alpha` and its values :math:`a_{c,k} / \alpha`, so a potential
        of scaled responses costs no pass to scale them; its slopes are those of :math:`f_c`
        (:math:`g_c'(z) = f_c'(\alpha z)`), so are its convexity and Lipschitz bounds.

        Parameters
        ----------
        alpha
            Positive, finite scale.
        """
        alpha = checks.positive(alpha, f"{type(self).__name__}.rescaled: alpha")
        return LinearSpline(self.coefficients / alpha, self.grid_min / alpha, self.grid_step / alpha)

    # ----------------------------------------------------------- description
    @property
    def channels(self) -> int:
        """The number of functions ``C``."""
        return self.coefficients.shape[0]

    @property
    def num_knots(self) -> int:
        """The number of knots ``K``."""
        return self.coefficients.shape[1]

    @property
    def grid_max(self) -> float:
        """The last knot :math:`t_{K-1} = t_0 + (K - 1) h`."""
        return self.grid_min + (self.num_knots - 1) * self.grid_step

    @property
    def knots(self) -> np.ndarray:
        """The knots :math:`t_k`, shape ``(K,)`` (host)."""
        return self.grid_min + self.grid_step * np.arange(self.num_knots)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(channels={self.channels}, knots={self.num_knots}, "
                f"grid=[{self.grid_min:g}, {self.grid_max:g}], step={self.grid_step:g})")

    # ----------------------------------------------------------- evaluation
    def _blocks(self, z: Array, axis: int, outputs: int,
                function: Callable[[Any, Array, Array, list[Array]], None]) -> list[Array]:
        """Check ``z``; run ``function(xp, index, z_part, outputs_part)`` on blocks of its channels; return the
        outputs.

        ``index`` is the segment index of the values ``z_part`` (a block of ``z``'s
        channels, in its shape) into the flat tables; the function writes ``outputs``
        arrays of ``z``'s shape, whose blocks ``outputs_part`` it gets, the last of them
        holding scratch from the index's computation.  The blocks run on
        :func:`adareg.threads.blockwise` (each block's temporaries stay in cache, on
        every core).
        """
        name = type(self).__name__
        if not backend.is_array(z):
            raise TypeError(f"{name}: z must be a NumPy or CuPy array, got {type(z).__name__}")
        backend.check_dtype(z, f"{name}: z")
        if z.dtype.kind != "f":
            raise TypeError(f"{name}: z must be real (float32 or float64), got dtype {z.dtype}")
        axis = checks.integer(axis, f"{name}: axis")
        if not -z.ndim <= axis < z.ndim:
            raise ValueError(f"{name}: z of shape {tuple(z.shape)} has no channel axis {axis}")
        axis = axis % z.ndim
        if z.shape[axis] != self.channels:
            raise ValueError(f"{name}: z has shape {tuple(z.shape)} with {z.shape[axis]} channels on axis {axis}; "
                             f"expected {self.channels} channels")
        xp = backend.namespace(z)
        results = [xp.empty(z.shape, dtype=z.dtype) for _ in range(outputs)]
        offsets = xp.reshape(self._offsets.like(z, z.dtype), (self.channels,) + (1,) * (z.ndim - 1 - axis))

        def run(channels: slice) -> None:
            part = (slice(None),) * axis + (channels,)
            parts = [result[part] for result in results]
            function(xp, self._locate(xp, z[part], offsets[channels], parts[-1]), z[part], parts)

        threads.blockwise(run, self.channels, z.nbytes, like=z)
        return results

    def _locate(self, xp: Any, z: Array, offsets: Array, scratch: Array) -> Array:
        """The flat segment index of the values ``z`` (channel offsets ``offsets``), computed in ``scratch``."""
        # in place in scratch, an output block about to be overwritten: a new array costs more than the arithmetic
        s = xp.multiply(z, 1.0 / self.grid_step, out=scratch)
        if self._fraction != 0.0:
            s += self._fraction  # s - n, with s = (z - t_0) / h
        # k = clamp(floor(s), 0, K - 2) - n as floats (huge |z| cannot overflow the cast); fmax
        # sends a NaN to -n, so its index is valid (and the NaN in z makes the results NaN)
        backend.array_module(s).floor(s, out=s)
        xp.fmax(s, float(-self._whole), out=s)
        xp.fmin(s, float(self.num_knots - 2 - self._whole), out=s)
        s += offsets  # + n and the channel's offset
        return xp.astype(s, xp.int64)  # not int32: take would convert it to int64 first, at more cost

    @staticmethod
    def _gather(table: caches.DeviceCache, index: Array, out: Array) -> Array:
        """``out[...] = table[index]`` (``out`` on ``index``'s device, in its dtype); returns ``out``."""
        return backend.take(table.like(out, out.dtype), index, out)

    def value(self, z: Array, axis: int = -3) -> Array:
        r""":math:`f_c(z)`, channel-wise (see the class docstring for shapes)."""
        def value(xp: Any, index: Array, z: Array, out: list[Array]) -> None:
            f = self._gather(self._slope, index, out[0])
            f *= z
            f += self._gather(self._intercept, index, xp.empty_like(z))  # b + s z

        return self._blocks(z, axis, 1, value)[0]

    __call__ = value

    def derivative(self, z: Array, axis: int = -3) -> Array:
        r""":math:`f_c'(z)`, the slope of the segment containing ``z``.

        At a knot the segment to its right is used (the last segment at and beyond
        :math:`t_{K-1}`, the first below :math:`t_0`), up to the rounding of
        :math:`(z - t_0) / h`.
        """
        def slope(xp: Any, index: Array, z: Array, out: list[Array]) -> None:
            self._gather(self._slope, index, out[0])
            out[0][xp.isnan(z)] = xp.nan  # NaN in, NaN out

        return self._blocks(z, axis, 1, slope)[0]

    def integral(self, z: Array, axis: int = -3) -> Array:
        r""":math:`F_c(z) = \int_0^z f_c(t)\,dt`, exactly (a quadratic on each segment).

        On the segment of :math:`t_k` the integrand is linear, :math:`f_c(z) = b_{c,k} + s_{c,k} z`,
        so the integral is a quadratic in :math:`z`:

        .. math::

            F_c(z) = e_{c,k} + z \big(b_{c,k} + \tfrac12 s_{c,k} z\big),
            \qquad e_{c,k} = \int_0^{t_k} f_c - t_k \big(b_{c,k} + \tfrac12 s_{c,k} t_k\big),

        with the tables precomputed on the host in float64, and :math:`e_{c,k} = 0` on
        the segments whose closure holds 0 (their quadratic passes through
        :math:`F_c(0) = 0`).  So near 0 no term is larger than the result: responses far
        below the knot spacing keep their relative precision (in float32 too).
        """
        return self.value_and_integral(z, axis)[1]

    def value_and_integral(self, z: Array, axis: int = -3) -> tuple[Array, Array]:
        r""":math:`(f_c(z), F_c(z))` for the cost of one call: a potential's gradient and value."""
        def both(xp: Any, index: Array, z: Array, out: list[Array]) -> None:
            f, F = out
            self._gather(self._slope, index, f)
            f *= z  # s z
            self._gather(self._intercept, index, F)
            f += F  # f(z) = b + s z
            F += f  # 2 b + s z
            F *= z
            F *= 0.5  # z (b + s z / 2)
            F += self._gather(self._constant, index, xp.empty_like(z))  # F(z) = e + z (b + s z / 2)

        value, integral = self._blocks(z, axis, 2, both)
        return value, integral


# ----------------------------------------------------------- constraints and checks
def slopes(spline: LinearSpline) -> np.ndarray:
    r"""The slopes :math:`(a_{c,k+1} - a_{c,k}) / h` of every segment, shape ``(C, K - 1)``.

    They are the second derivative of the potential :math:`F_c` on each segment, and
    (with the linear extension) the only values it takes.
    """
    return np.diff(spline.coefficients, axis=1) / spline.grid_step


def weak_convexity(spline: LinearSpline) -> float:
    r"""The smallest :math:`\rho \ge 0` with :math:`F_c'' \ge -\rho` for every channel.

    Every :math:`F_c` is then :math:`\rho`-weakly convex (:math:`F_c + \tfrac\rho2 z^2`
    convex), and no smaller :math:`\rho` works.  It is ``max(0, -min(slopes))``,
    computed from the stored coefficients (so rounding may add a few ulps).
    """
    return max(0.0, -float(np.min(slopes(spline))))


def is_convex(spline: LinearSpline) -> bool:
    r"""Whether every potential :math:`F_c` is convex (every :math:`f_c` non-decreasing)."""
    return bool(np.all(np.diff(spline.coefficients, axis=1) >= 0))


def is_bounded_below(spline: LinearSpline) -> bool:
    r"""Whether every potential :math:`F_c` is bounded below on the whole real line.

    :math:`F_c` is bounded on the grid; beyond its last knot :math:`f_c` continues
    with the last slope :math:`s`, so :math:`F_c` grows like :math:`s z^2 / 2`
    (bounded below iff :math:`s > 0`, or :math:`s = 0` and :math:`f_c(t_{K-1}) \ge 0`),
    and symmetrically below the first knot (:math:`s > 0`, or :math:`s = 0` and
    :math:`f_c(t_0) \le 0`).  Convex potentials with :math:`f_c(0) = 0` always are; a
    weakly convex one whose profile ends falling is not, and then
    :math:`E(Hx, y) + \lambda R(x)` has no minimiser when ``H`` has a null space.
    """
    a, s = spline.coefficients, slopes(spline)
    right = (s[:, -1] > 0) | ((s[:, -1] == 0) & (a[:, -1] >= 0))
    left = (s[:, 0] > 0) | ((s[:, 0] == 0) & (a[:, 0] <= 0))
    return bool(np.all(right & left))
