"""The linear operator algebra.

A :class:`LinearOperator` ``A`` maps arrays of shape ``shape_in`` to arrays of shape
``shape_out``; leading axes beyond ``shape_in`` are batch axes and pass through.
Operators combine like matrices::

    A(x)        apply               A @ B       compose (x -> A(B(x)))
    A + B       sum                 A - B       difference
    c * A       scale by a number   A.H         adjoint (cached, A.H.H is A)
    A.gram()    A.H @ A             A.norm()    largest singular value (cached)
                                    A.norm_bound()  an upper bound of it (step sizes)

Adjoints are taken with respect to the plain Euclidean inner product
``<u, v> = sum(conj(u) * v)``.  Any physical scaling belongs to the operator itself.

A new operator subclasses :class:`LinearOperator` and implements ``_apply`` and
``_adjoint`` on arrays whose trailing axes have already been checked; shape and
dtype checks, batching rules, the algebra, norms and the adjoint diagnostic come
from the base class.
"""

from __future__ import annotations

import cmath
import math
import numbers
import weakref
from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import backend, caches, checks
from ..backend import Array

Shape = tuple[int, ...]

#: Factor by which :meth:`LinearOperator.norm_bound` enlarges a Lanczos estimate of
#: ``||A||`` where it has no guaranteed bound: the estimate approaches ``||A||`` from below.
NORM_SAFETY = 1.01
#: Tolerance of the norm estimates behind step sizes (:meth:`LinearOperator.norm_bound`):
#: certified to 1e-2 on ``||A||^2`` (about 0.5% on ``||A||``), inside the 2% that
#: ``NORM_SAFETY`` adds to ``||A||^2``; a tighter one costs many more Lanczos steps and
#: barely changes the step (docs/design.md, "Norms").  The Collatz-Wielandt bounds of
#: non-negative operators stop at the same relative gap.
STEP_NORM_TOL = 1e-2
#: Relative margin added to ``||A||^2`` by the Collatz-Wielandt bounds, whose ``A^T A v`` may
#: be computed in float32 (ASTRA): it covers the rounding of the sums behind each entry.
ROUNDING_MARGIN = 1e-4
#: Lanczos steps (applications of ``A^H A``) of a norm estimate at most.
MAX_LANCZOS_STEPS = 500
#: Seed of the second random start of the estimate behind :meth:`LinearOperator.norm_bound`.
SECOND_SEED = 1


def as_shape(shape: Any, what: str) -> Shape:
    """``shape`` as a tuple of positive ints, or an error naming ``what``.

    Entries must be integers (or floats with integer values, e.g. ``n / 2`` for an even
    ``n``); anything else, a fraction, a bool or a string, is refused, not truncated.
    """
    if checks.is_int(shape):
        shape = (shape,)
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Iterable):
        raise TypeError(f"{what} must be a tuple of ints, got {shape!r}")
    entries = tuple(shape)
    if not all(checks.integral(n) for n in entries):
        raise TypeError(f"{what} must be a tuple of ints, got {shape!r}")
    shape = tuple(int(n) for n in entries)
    if any(n <= 0 for n in shape):
        raise ValueError(f"{what} must have positive entries, got {shape}")
    return shape


def batch_shape(x: Array, op_shape: Shape) -> Shape:
    """The leading (batch) axes of ``x`` beyond an operator's ``op_shape``."""
    return tuple(x.shape[: x.ndim - len(op_shape)])


def zero_image(H: LinearOperator, y: Array) -> Array:
    """Zeros of ``H``'s input for measurements ``y`` (with their batch axes): the kind (real or complex) of
    ``H^H y``, the precision of ``y``, not of ``H`` (ASTRA's projectors give float32 for a float64 ``y``)."""
    image = H.H(y)
    return backend.namespace(y).zeros(image.shape, dtype=backend.result_dtype(backend.real_dtype(y.dtype),
                                                                               image.dtype))


def check_operator(H: Any, who: str) -> None:
    """Raise a ``TypeError`` naming ``who`` where ``H`` is not a :class:`LinearOperator`."""
    if not isinstance(H, LinearOperator):
        raise TypeError(f"{who}: H must be a LinearOperator, got {type(H).__name__}")


def check_measurements_of(H: Any, y: Any, who: str, *, nonempty: bool = False, inspect: bool = True) -> None:
    """Check that ``H`` is a :class:`LinearOperator` and ``y`` measurements of it; errors name ``who``'s arguments.

    ``y`` must be an array of a supported dtype of shape ``H.shape_out`` or
    ``batch + H.shape_out``, with at least one image where ``nonempty`` (else "an empty
    batch"), and finite; where ``inspect``, :meth:`LinearOperator.check_measurements` then
    raises where ``y`` cannot be ``H``'s data and warns where it does not look like them.
    Its warnings point at the caller of the function that calls this one: call it from
    the public function itself.
    """
    check_operator(H, who)
    backend.check_array(y, H.shape_out, f"{who}: y (measurements of {H!r})")
    if nonempty and y.size == 0:  # an empty batch (an image of zero pixels is refused by H's shape)
        raise ValueError(f"{who}: y of shape {tuple(y.shape)} is an empty batch: nothing to reconstruct")
    backend.check_finite(y, f"{who}: y")
    if inspect:
        H.check_measurements(y, f"{who}: y")


def check_start_shape(x0: Array, H: LinearOperator, y: Array, who: str) -> None:
    """Raise a ``ValueError`` naming ``who`` where the start ``x0`` is not one image of ``H`` per measurement of
    ``y``: for ``y`` of shape ``batch + H.shape_out``, ``x0`` has shape ``batch + H.shape_in``."""
    expected = batch_shape(y, H.shape_out) + tuple(H.shape_in)
    if tuple(x0.shape) != expected:
        raise ValueError(f"{who}: x0 has shape {tuple(x0.shape)}, expected {expected} (one image per measurement)")


def broadcasts_to(shape: Shape, target: Shape) -> bool:
    """Whether an array of ``shape`` broadcasts to ``target`` without enlarging it."""
    try:
        return np.broadcast_shapes(tuple(shape), tuple(target)) == tuple(target)
    except ValueError:
        return False


def _as_scalar(c: Any) -> float | complex:
    """A finite Python number (so that it never promotes a float32 array to float64)."""
    if isinstance(c, bool) or not isinstance(c, numbers.Number):
        raise TypeError(
            f"an operator can only be multiplied by a number, got {type(c).__name__}; "
            "use A @ B to compose operators, A(x) to apply one, "
            "or Diagonal(w) @ A for a pointwise weight"
        )
    c = complex(c) if isinstance(c, numbers.Complex) and not isinstance(c, numbers.Real) else float(c)
    if not cmath.isfinite(c):
        raise ValueError(f"an operator can only be multiplied by a finite number, got {c}")
    return c


class LinearOperator(backend.KeepsReadOnly):
    """A linear map between arrays of fixed shapes.

    Parameters
    ----------
    shape_in, shape_out
        Shapes of one input and one output, without batch axes.
    dtype
        Scalar type of the operator's coefficients (float64 for real operators,
        complex128 for complex ones).  Computations run at the input's precision:
        a float32 input gives a float32 output (complex64 for a complex operator).
    real_in
        The operator acts on *real* arrays only (e.g. an MRI forward model on real
        images): complex inputs are rejected, and the adjoint is taken for the real
        inner product ``Re <u, v>``, so it returns the real part.
    real_out
        The outputs are real (the adjoint of a ``real_in`` operator).

    Examples
    --------
    A new operator implements ``_apply`` and ``_adjoint``; shape checks, batch
    axes, the algebra, :meth:`norm` and :meth:`adjoint_error` come from this class.

    >>> import numpy as np
    >>> from adareg.operators import Diagonal, LinearOperator
    >>> class ColumnSums(LinearOperator):
    ...     # sums over the rows of an image: (H, W) -> (W,)
    ...     def __init__(self, shape):
    ...         super().__init__(shape, shape[-1:])
    ...     def _apply(self, x):
    ...         return x.sum(axis=-2)
    ...     def _adjoint(self, y):
    ...         return y[..., None, :].repeat(self.shape_in[0], axis=-2)
    >>> A = ColumnSums((3, 4))
    >>> A(np.ones((3, 4)))
    array([3., 3., 3., 3.])
    >>> A.adjoint_error() < 1e-12
    True
    >>> round(A.norm(), 4)  # sqrt(3)
    1.7321
    >>> B = 2 * A @ Diagonal(np.full((3, 4), 0.5))
    >>> B  # * and @ bind equally, from the left
    ((2.0 * ColumnSums((3, 4) -> (4,))) @ Diagonal((3, 4)))
    >>> B.H(np.ones(4)).shape
    (3, 4)
    """

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("shape_in", "shape_out", "dtype", "real_in", "real_out", "precision")

    #: Floating precision of the outputs when the operator fixes it (e.g. float32 for
    #: ASTRA's projectors); ``None``: the input's precision.
    precision: np.dtype | None = None

    # NumPy defers to the operator's own arithmetic: ``array * A`` raises instead of
    # building an object array of scaled operators elementwise.
    __array_ufunc__ = None

    def __init__(self, shape_in: Any, shape_out: Any, dtype: Any = np.float64, *,
                 real_in: bool = False, real_out: bool = False):
        self.shape_in: Shape = as_shape(shape_in, "shape_in")
        self.shape_out: Shape = as_shape(shape_out, "shape_out")
        dtype = np.dtype(dtype)
        if dtype not in backend.SUPPORTED_DTYPES:
            raise TypeError(f"operator dtype must be a float or complex dtype, got {dtype}")
        self.dtype = np.dtype(np.complex128 if dtype.kind == "c" else np.float64)
        self.real_in, self.real_out = bool(real_in), bool(real_out)
        self._adjoint_ref: weakref.ref[LinearOperator] | None = None  # the adjoint, held weakly (see H)
        # norm()'s certified estimates by (tolerance, precision of the iteration, seed): (value, informed start);
        # only an estimate at the tolerance asked is reused, so that norm_bound's does not hang on earlier calls
        self._norms: dict[tuple[float, str, int], tuple[float, bool]] = {}
        self._bounds: dict[tuple[backend.Device, str], float] = {}  # norm_bound's value by device and precision

    # ---------------------------------------------------------------- contract
    def _apply(self, x: Array) -> Array:
        """``A x`` for ``x`` of shape ``batch + shape_in`` (already checked)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _apply(x), A x")

    def _adjoint(self, y: Array) -> Array:
        """``A^H y`` for ``y`` of shape ``batch + shape_out`` (already checked)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _adjoint(y), A^H y (solvers and norms "
                                  "apply it)")

    def _exact_norm(self) -> float | None:
        """``||A||`` when known in closed form, else ``None`` (power iteration)."""
        return None

    def _upper_bound(self, like: Array | None) -> float:
        """:meth:`norm_bound`'s value: the closed-form norm, else the estimate with margin ``NORM_SAFETY``.

        Operators with a guaranteed bound override this (see :meth:`norm_bound`).
        """
        exact = self._exact_norm()
        if exact is not None:
            return exact
        estimate = self.norm(tol=STEP_NORM_TOL, seed=0, like=like)
        # (none where a subclass computes norm() itself)
        informed = self._norms.get((STEP_NORM_TOL, _precision(like), 0), (None, False))[1]
        if not informed:
            # A random start nearly orthogonal to the top singular vector lets the residual test
            # certify a lower singular value: an independent second start makes that far rarer.
            second = self._random_start(np.random.default_rng(SECOND_SEED))
            estimate = max(estimate, self._lanczos_norm(second, STEP_NORM_TOL, MAX_LANCZOS_STEPS, None, like)[0])
        return NORM_SAFETY * estimate

    def _nonnegative_bound(self, like: Array | None, lower: float = 0.0) -> float:
        """:func:`_nonnegative_norm_bound` for this operator, whose matrix must be entrywise non-negative.

        ``lower``: a known lower bound of ``||A||``, e.g. a Lanczos estimate, where the
        power iteration's own (its Rayleigh quotient) would take long to catch up.
        """
        start = np.ones(self.shape_in)
        if like is not None:
            start = caches.DeviceCache(start).like(like, backend.real_dtype(like.dtype))
        return _nonnegative_norm_bound(lambda v: self._adjoint(self._apply(v)), start, STEP_NORM_TOL,
                                       MAX_POWER_STEPS, lower**2)

    def _norm_start(self, tol: float) -> tuple[np.ndarray, float] | None:
        """An informed start for :meth:`norm` (default ``None``: a random one).

        A host array of shape ``shape_in`` rich in the top right singular vector, and
        an eigenvalue of ``A^H A`` that this start is expected to reach: the residual
        test may then stop the iteration as soon as it certifies a value that high.
        """
        return None

    def _top_eigenpair(self, x: Array, tol: float, max_iter: int,
                       floor: float | None = None) -> tuple[float, Array, bool]:
        """The top eigenpair of ``A^H A`` by restarted Lanczos from ``x``, and whether it converged
        (see :func:`_largest_eigenvalue`)."""
        return _largest_eigenvalue(lambda u: self._adjoint(self._apply(u)), x, tol, max_iter, floor=floor)

    def check_measurements(self, y: Array, who: str) -> None:
        """Warn where ``y``, of shape ``batch + shape_out`` and finite, does not look like this operator's
        measurements (e.g. k-space in another order), and raise where it cannot be them (e.g. real k-space);
        called once by :func:`adareg.solve` and the linear reconstructions, with ``who`` naming the caller's
        argument.  The base class has nothing to check."""

    # ------------------------------------------------------------ application
    def __call__(self, x: Array) -> Array:
        """Apply the operator to ``x`` of shape ``shape_in`` or ``batch + shape_in``: a new array, never a view of
        ``x`` (writing into it leaves ``x`` as it was)."""
        backend.check_array(x, self.shape_in, f"{self!r}: input")
        if self.real_in and x.dtype.kind == "c":
            raise TypeError(f"{self!r}: input must be real (the operator acts on real arrays), got {x.dtype}")
        out = self._apply(x)
        self._check_output(x, out)
        return out

    def _check_output(self, x: Array, out: Any) -> None:
        """Raise where ``out``, what ``_apply`` gave for ``x``, is not an array of shape ``batch + shape_out``, or is
        complex where it must be real (``real_out``, or a real operator applied to a real ``x``): a user's
        operator that forgets ``.real`` after an FFT would otherwise turn a solve's images complex."""
        source = "its operator's _adjoint" if isinstance(self, Adjoint) else "_apply"
        expected = tuple(x.shape[: x.ndim - len(self.shape_in)]) + self.shape_out
        if not backend.is_array(out) or tuple(out.shape) != expected:
            got = f"shape {tuple(out.shape)}" if backend.is_array(out) else type(out).__name__
            raise ValueError(f"{self!r}: {source} gave {got} for an input of shape {tuple(x.shape)}, expected an "
                             f"array of shape {expected} (the input's batch axes, then shape_out)")
        if out.dtype.kind == "c" and (self.real_out or (self.dtype.kind == "f" and x.dtype.kind != "c")):
            raise TypeError(f"{self!r}: {source} gave {out.dtype} for a {x.dtype} input, but the result must be "
                            "real (" + ("real_out=True" if self.real_out else "a real operator on a real input")
                            + "): take its real part, or declare a complex dtype")

    # ---------------------------------------------------------------- algebra
    @property
    def H(self) -> LinearOperator:
        """The adjoint operator (``A.H.H is A``).

        ``A`` holds it weakly, for as long as anything else holds it: an operator and an
        adjoint that held each other lived on until a full garbage collection, which the
        large arrays of their caches (FFT spectra, ASTRA projectors) barely hasten.
        """
        adjoint = None if self._adjoint_ref is None else self._adjoint_ref()
        if adjoint is None:
            adjoint = Adjoint(self)
            self._adjoint_ref = weakref.ref(adjoint)
        return adjoint

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_adjoint_ref"] = None  # (a weak reference does not pickle; the adjoint is made again)
        return state

    def gram(self) -> LinearOperator:
        """The normal operator ``A^H A`` (subclasses may return a faster equivalent)."""
        return self.H @ self

    def __matmul__(self, other: Any) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            raise TypeError(
                f"A @ B composes two operators, got {type(other).__name__}; "
                "use A(x) to apply an operator to an array"
            )
        return Composition(self, other)

    def __add__(self, other: Any) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return Sum(self, other)

    def __sub__(self, other: Any) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return Sum(self, Scaled(-1.0, other))

    def __neg__(self) -> LinearOperator:
        return Scaled(-1.0, self)

    def __mul__(self, c: Any) -> LinearOperator:
        return Scaled(_as_scalar(c), self)

    __rmul__ = __mul__

    # ------------------------------------------------------------ diagnostics
    def norm(self, *, tol: float = 1e-4, max_iter: int = MAX_LANCZOS_STEPS, seed: int = 0,
             like: Array | None = None) -> float:
        """The operator norm ``||A|| = max ||A x|| / ||x||`` (largest singular value).

        Estimated by the Lanczos method on ``A^H A`` (restarted every 20 steps,
        fully reorthogonalised) from a random start, until the Ritz residual
        ``||A^H A u - theta u|| <= tol * theta`` certifies that ``theta`` lies within
        ``tol`` (relative) of an eigenvalue of ``A^H A``.  The Ritz value approaches
        ``||A||^2`` from below, and a residual test (unlike a test on the change
        of the estimate) does not stall on a near-top eigenvalue; it certifies *an*
        eigenvalue, though: where the top two lie within a fraction of a percent of each
        other, a start poor in the top eigenvector can, rarely, certify the second, low
        by at most their gap (:meth:`~LinearOperator.norm_bound`'s margin covers it).  An informed start
        (``_norm_start``) that certifies less than the value it was expected to reach
        is followed by a random one, and the larger value is kept.  A certified result
        is cached and reused for requests with the same ``tol``, precision and int ``seed``
        (a tighter one is not taken for a looser ``tol``, nor another seed's, so that
        :meth:`~LinearOperator.norm_bound`, and a solve's steps, do not hang on earlier calls); one cut short
        by ``max_iter``, or started from a ``Generator`` or ``seed=None``, is returned but not
        cached (nor used by :meth:`~LinearOperator.norm_bound`).
        Operators with a closed-form norm return it directly.

        Parameters
        ----------
        tol
            Relative tolerance on ``||A||^2`` (about ``tol / 2`` on ``||A||``), non-negative
            (0: run to ``max_iter``).
        max_iter
            Maximal number of ``A^H A`` applications, at least 1.
        seed
            Seed of the random start.
        like
            An array whose backend, device and precision are used for the
            iteration (default: NumPy, float64).
        """
        tol = checks.non_negative(tol, "norm: tol")
        max_iter = checks.count(max_iter, "norm: max_iter")
        rng = checks.random_generator(seed, "norm: seed")
        _check_like(like, "norm")
        exact = self._exact_norm()
        if exact is not None:
            return exact
        # neither a float32 estimate for float64, nor a tighter one for a looser tol, nor another seed's: results
        # would hang on order; a start drawn from a Generator or fresh entropy cannot be drawn again
        key = (tol, _precision(like), int(seed)) if checks.is_int(seed) else None
        if key in self._norms:
            return self._norms[key][0]
        start = self._norm_start(tol)
        x, floor = (self._random_start(rng), None) if start is None else start
        value, converged = self._lanczos_norm(x, tol, max_iter, floor, like)
        informed = floor is not None and value**2 >= (1 - tol) * floor
        if floor is not None and not informed:
            # the informed start certified a value below its own: the top vector lives elsewhere (e.g. a wave of a
            # sharp spectrum that the small image cannot hold), and a lower eigenvalue passed the residual test
            again, certified = self._lanczos_norm(self._random_start(rng), tol, max_iter, None, like)
            if again > value:
                value, converged = again, certified
        if converged and key is not None:
            self._norms[key] = (value, informed)
        return value

    def _random_start(self, rng: np.random.Generator) -> np.ndarray:
        """A random host start for :meth:`norm`: complex where the operator takes complex images to real arrays,
        whose real-linear map may act on real and imaginary parts apart (a real start's Krylov space could miss
        the part where the norm lies), else real."""
        x = rng.standard_normal(self.shape_in)
        return x + 1j * rng.standard_normal(self.shape_in) if self.real_out and not self.real_in else x

    def _lanczos_norm(self, x: np.ndarray, tol: float, max_iter: int, floor: float | None,
                      like: Array | None) -> tuple[float, bool]:
        """The square root of the top Ritz value of ``A^H A`` from the host start ``x``, run like ``like``
        (in its precision, complex where ``x`` is), and whether the residual test certified it."""
        if like is not None:
            x = caches.DeviceCache(x).like(like, backend.result_dtype(backend.real_dtype(like.dtype), x.dtype))
        eigenvalue, _, converged = self._top_eigenpair(x, tol, max_iter, floor)
        return math.sqrt(max(eigenvalue, 0.0)), converged

    def norm_bound(self, *, like: Array | None = None) -> float:
        r"""An upper bound of ``||A||``, behind the step sizes of FISTA, PD3O and the analysis prox.

        Computed once per device and precision and cached, by the first of these rules that
        applies to the operator: on a GPU it bounds the operator as the GPU applies it
        (ASTRA's CUDA projectors are not its CPU ones), and a float32 estimate is not
        reused for float64 (a result would depend on which came first).

        1. **Closed forms**, exact to rounding: :class:`Identity`, :class:`RealToComplex`,
           :class:`Subsample` (1), :class:`Diagonal` (``max |w|``), :class:`FiniteDifference`
           (from the eigenvalues of ``D^T D``), periodic :class:`Conv2d` (the largest singular
           value of its symbol on the image's DFT grid), :class:`CartesianMRI` with one coil or
           with every sample taken.
        2. **Guaranteed bounds**:

           - zero-boundary :class:`Conv2d` and :class:`Blur`: the norm of the same correlation,
             periodic on a grid of ``n + max(pads)`` samples per axis, of which the operator is
             a block (nothing wraps around into the image); at most the sup of the symbol,
             which the operator's norm approaches on large images;
           - :class:`CartesianMRI` with coil maps ``S`` and an undersampling mask:
             ``||S|| = max (sum_c |S_c|^2)^(1/2)``, since the mask and the unitary FFT do not
             increase norms; close to ``||A||`` for smooth coil maps and masks with a
             calibration region;
           - operators whose matrix is entrywise non-negative (:class:`RayTransform`,
             reflect-boundary :class:`Conv2d` with a non-negative kernel, such as a blur):
             the Collatz-Wielandt bound ``||A||^2 <= max_i (A^T A v)_i / v_i`` of a positive
             ``v``, improved by a power iteration from ``v = 1``
             (``_nonnegative_norm_bound``); a CT projector converges in a few steps;
           - the algebra, from the operands' bounds: ``||A B|| <= ||A|| ||B||``,
             ``||A + B|| <= ||A|| + ||B||``, ``||c A|| = |c| ||A||``, ``||A^H|| = ||A||``.
             Exact for ``A.H @ A`` where ``||A||`` is, these are loose where the operands' top
             singular vectors do not line up (a filter bank plus a gradient): an operator
             built that way whose step sizes matter deserves a rule of its own.

        3. **An estimate with a margin**, ``NORM_SAFETY * norm(tol=STEP_NORM_TOL)``, *not* a
           guaranteed bound, where no cheap bound is also tight: reflect-boundary
           convolutions with signed kernels (the learned filter banks),
           :class:`NonCartesianMRI` and operators that define no rule.  A reflect-boundary
           bank's norm lives in vectors at the image's corners and exceeds the sup of its
           symbol; the simple guaranteed bound, that sup times the norm of the reflecting
           extension (2 in 2D), is up to about twice the norm on images much larger than the
           kernel (more on small ones), for dual steps up to about four times shorter.  The
           NUFFT is itself an approximation (:data:`~adareg.operators.mri.NUFFT_ACCURACY`).
           The Lanczos estimate is certified to 0.5% of *a* singular value from below, so
           the margin covers it unless it settles
           on a lower singular value, from a start nearly orthogonal to the top singular
           vector.  Against that, an estimate from a random start is the larger of two
           from independent starts, and reflect-boundary banks start from their corner
           modes (``Conv2d._norm_start``): the solvers' convergence theorems assume a
           true bound.

        Parameters
        ----------
        like
            An array whose backend, device and precision the iterative rules (power
            iteration, Lanczos) run in (default: NumPy, float64).
        """
        _check_like(like, "norm_bound")
        key = ("cpu" if like is None else backend.device_of(like), _precision(like))
        if key not in self._bounds:
            self._bounds[key] = self._upper_bound(like)
        return self._bounds[key]

    def adjoint_error(self, x: Array | None = None, y: Array | None = None, *, seed: int = 0) -> float:
        """Scale-aware adjoint mismatch ``|<A x, y> - <x, A^H y>| / (||A|| ||x|| ||y||)``.

        Zero (to rounding) for an exact adjoint pair.  Without ``y``, the larger
        mismatch of two tests: a random ``y``, and ``y = A x``.  A random ``y`` is
        nearly orthogonal to ``A x`` in many dimensions, so that an adjoint off by a
        factor ``c`` moves the first test by about ``|1 - c| / sqrt(size)`` only, while
        ``y = A x`` moves it by ``|1 - c| ||A x|| / (||A|| ||x||)``.  A random ``x``
        (NumPy, float64, complex for a complex operator) is drawn when not given.  For
        ``real_in``/``real_out`` operators the real parts of the inner products are compared.
        """
        rng = np.random.default_rng(seed)

        def draw(shape: Shape, real: bool) -> np.ndarray:
            a = rng.standard_normal(shape)
            if self.dtype.kind == "c" and not real:
                a = a + 1j * rng.standard_normal(shape)
            return a

        x = draw(self.shape_in, self.real_in) if x is None else x
        if y is None:
            return max(self.adjoint_error(x, draw(self.shape_out, self.real_out)), self.adjoint_error(x, self(x)))
        xp = backend.namespace(x, y)
        lhs = xp.sum(xp.conj(self(x)) * y)
        rhs = xp.sum(xp.conj(x) * self.H(y))
        if self.real_in or self.real_out:  # adjoint for the real inner product Re <u, v>
            lhs, rhs = xp.real(lhs), xp.real(rhs)
        scale = self.norm() * float(xp.linalg.vector_norm(x)) * float(xp.linalg.vector_norm(y))
        return float(abs(complex(lhs - rhs))) / scale if scale > 0 else float(abs(complex(lhs - rhs)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.shape_in} -> {self.shape_out})"


#: Lanczos steps before the residual test may stop the norm estimate.
MIN_LANCZOS_STEPS = 10


def _precision(like: Array | None) -> str:
    """The real precision an iteration run like ``like`` computes in (NumPy's float64 without one)."""
    return "float64" if like is None else np.dtype(backend.real_dtype(like.dtype)).name


def _check_like(like: Any, who: str) -> None:
    """Refuse a ``like`` that is not ``None`` or a float or complex array, naming ``who``."""
    if like is not None and not (backend.is_array(like) and like.dtype.kind in "fc"):
        raise TypeError(f"{who}: like must be a float or complex NumPy or CuPy array (its precision and device run "
                        f"the iteration), got {getattr(like, 'dtype', type(like).__name__)}")


def _largest_eigenvalue(gram: Any, x: Array, tol: float, max_iter: int, restart: int = 20,
                        floor: float | None = None) -> tuple[float, Array, bool]:
    """Largest eigenvalue of a Hermitian positive semi-definite map, its Ritz vector and whether it converged.

    Runs Lanczos steps with full reorthogonalisation from ``x``; after ``restart``
    steps it starts again from the current top Ritz vector.  Stops when the top
    Ritz pair's residual ``beta_j |s_j|`` is at most ``tol`` times the Ritz value,
    or when the Krylov space becomes invariant (the value is then exact): converged; or
    after ``max_iter`` steps: not converged, the value uncertified.
    The residual test counts after ``MIN_LANCZOS_STEPS`` steps, or at once for a
    Ritz value of at least ``(1 - tol) floor``.
    Only scalars (the tridiagonal coefficients) travel to the host.
    """
    xp = backend.namespace(x)
    x = x / float(xp.linalg.vector_norm(x))
    theta, steps = 0.0, 0
    while True:
        basis, alphas, betas = [x], [], []
        while True:
            w = gram(basis[-1])
            steps += 1
            alphas.append(float(xp.real(xp.sum(xp.conj(basis[-1]) * w))))
            # full reorthogonalisation (includes the three-term recurrence), done twice:
            # one pass loses orthogonality once w has cancelled to a small remainder, and
            # the Ritz values of a non-orthogonal basis can exceed the true eigenvalues.
            # In the real inner product Re <v, w>: a map that is real-linear only (complex
            # images to real ones) is self-adjoint in that product, not in the complex one,
            # and a complex-linear map has the same eigenvalues in both
            for _ in range(2):
                for v in basis:
                    w = w - xp.real(xp.sum(xp.conj(v) * w)) * v
            beta = float(xp.linalg.vector_norm(w))
            ritz_values, ritz_vectors = np.linalg.eigh(np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1))
            theta = float(ritz_values[-1])
            residual = beta * abs(ritz_vectors[-1, -1])
            # the residual test certifies *an* eigenvalue: a start vector poor in the top
            # eigenvector can pass it on a lower one, so it counts after MIN_LANCZOS_STEPS only,
            # unless it certifies one as high as the informed start's ``floor``
            settled = steps >= MIN_LANCZOS_STEPS or (floor is not None and theta >= (1 - tol) * floor)
            if beta <= 1e-12 * max(abs(theta), 1e-300) or (residual <= tol * abs(theta) and settled):
                return theta, _combination(ritz_vectors[:, -1], basis), True
            if len(basis) == restart or steps >= max_iter:
                break
            betas.append(beta)
            basis.append(w / beta)
        x = _combination(ritz_vectors[:, -1], basis)
        if steps >= max_iter:
            return theta, x, False
        x = x / float(xp.linalg.vector_norm(x))


#: Power iteration steps of :func:`_nonnegative_norm_bound` at most.
MAX_POWER_STEPS = 100
#: Smallest entry of the power iteration's vector, relative to its largest.
POSITIVE_FLOOR = 1e-12


def _nonnegative_norm_bound(gram: Any, v: Array, tol: float, max_iter: int, lower: float = 0.0) -> float:
    """An upper bound of ``||A||`` for an entrywise non-negative ``A``, from ``gram``: ``v -> A^T A v``.

    For the non-negative symmetric ``G = A^T A`` and any positive ``v``, the
    Collatz-Wielandt bound ``||A||^2 = rho(G) <= max_i (G v)_i / v_i`` holds, and the
    Rayleigh quotient ``<v, G v> / <v, v>`` bounds ``||A||^2`` from below.  A power
    iteration from the positive ``v`` moves it towards the Perron vector of ``G``, where
    the two meet.  Stops once the smallest upper bound is within ``tol`` (relative) of the
    largest lower one (or of ``lower``, a lower bound of ``||A||^2`` known beforehand), or
    after ``max_iter`` applications of ``G``; returns the square root
    of that upper bound enlarged by ``ROUNDING_MARGIN``.  The iterates stay positive, above
    ``POSITIVE_FLOOR`` times their largest entry, also where ``G v`` vanishes (pixels no ray
    sees, where the ratio is then 0).
    """
    xp = backend.namespace(v)
    upper = math.inf
    for _ in range(max_iter):
        g = gram(v)
        upper = min(upper, float(xp.max(g / v)))
        lower = max(lower, float(xp.sum(v * g)) / float(xp.sum(v * v)))
        if upper <= (1 + tol) * lower:
            break
        v = xp.maximum(g / float(xp.max(g)), POSITIVE_FLOOR)
    return math.sqrt(upper * (1 + ROUNDING_MARGIN))


def _combination(coefficients: np.ndarray, basis: list[Array]) -> Array:
    """``sum_j c_j v_j``: a Ritz vector from its coordinates in the Lanczos basis."""
    return sum(float(c) * v for c, v in zip(coefficients, basis))


class Adjoint(LinearOperator):
    """The adjoint ``A^H`` of an operator; use ``A.H`` rather than this class."""

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("op",)

    def __init__(self, op: LinearOperator):
        super().__init__(op.shape_out, op.shape_in, op.dtype, real_in=op.real_out, real_out=op.real_in)
        self.op = op
        self.precision = op.precision

    @property
    def H(self) -> LinearOperator:
        return self.op

    def _apply(self, x: Array) -> Array:
        return self.op._adjoint(x)

    def _adjoint(self, y: Array) -> Array:
        return self.op._apply(y)

    def norm(self, **kwargs: Any) -> float:
        return self.op.norm(**kwargs)

    def _upper_bound(self, like: Array | None) -> float:
        return self.op.norm_bound(like=like)

    def __repr__(self) -> str:
        return f"{self.op!r}.H"


class Composition(LinearOperator):
    """``A @ B``: the map ``x -> A(B(x))``."""

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("outer", "inner", "check_measurements")

    def __init__(self, outer: LinearOperator, inner: LinearOperator):
        if outer.shape_in != inner.shape_out:
            raise ValueError(
                f"cannot compose {outer!r} @ {inner!r}: {outer!r} takes shape {outer.shape_in} "
                f"but {inner!r} gives shape {inner.shape_out}"
            )
        dtype = np.result_type(outer.dtype, inner.dtype)
        if outer.real_in and not inner.real_out and inner.dtype.kind == "c":
            raise ValueError(f"cannot compose {outer!r} @ {inner!r}: {outer!r} takes real arrays only")
        if inner.real_out and not outer.real_in and outer.dtype.kind == "c":
            # A^H would hand B^H complex arrays where it takes real ones (and for complex inputs the map would be
            # real-linear only)
            raise ValueError(f"cannot compose {outer!r} @ {inner!r}: {inner!r} gives real arrays, which {outer!r} "
                             "would scale by complex numbers; compose it on real arrays with "
                             f"RealToComplex({inner.shape_out}) in between")
        if inner.real_out and not inner.real_in and outer.real_in and not outer.real_out:
            raise ValueError(f"cannot compose {outer!r} @ {inner!r}: complex arrays would become real ones and then "
                             "complex again, which is no complex-linear map (z -> Re z, for instance)")
        # a real operator gives real outputs exactly for real inputs
        real_in = inner.real_in or (outer.real_in and not inner.real_out)
        real_out = outer.real_out or (inner.real_out and outer.dtype.kind == "f")
        super().__init__(inner.shape_in, outer.shape_out, dtype, real_in=real_in, real_out=real_out)
        self.outer, self.inner = outer, inner
        self.precision = outer.precision or inner.precision
        # y lies in the outer operator's output space: its check, bound as is so that a warning's stack level
        # (the caller's line) holds through any nesting
        self.check_measurements = outer.check_measurements

    def _apply(self, x: Array) -> Array:
        return self.outer._apply(self.inner._apply(x))

    def _adjoint(self, y: Array) -> Array:
        return self.inner._adjoint(self.outer._adjoint(y))

    def _upper_bound(self, like: Array | None) -> float:
        return self.outer.norm_bound(like=like) * self.inner.norm_bound(like=like)

    def __repr__(self) -> str:
        return f"({self.outer!r} @ {self.inner!r})"


class Sum(LinearOperator):
    """``A + B``: the map ``x -> A(x) + B(x)``."""

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("first", "second")

    def __init__(self, first: LinearOperator, second: LinearOperator):
        if (first.shape_in, first.shape_out) != (second.shape_in, second.shape_out):
            raise ValueError(
                f"cannot add {first!r} and {second!r}: shapes {first.shape_in} -> {first.shape_out} "
                f"and {second.shape_in} -> {second.shape_out} differ"
            )
        real_in, real_out = first.real_in, first.real_out
        if (first.real_in, first.real_out) != (second.real_in, second.real_out):
            # a real-dtype operator restricted to real arrays is added to one on real arrays only (e.g. mu I to the
            # normal operator of a real-image model)
            restricted, plain = (first, second) if first.real_in else (second, first)
            if not (restricted.real_in and restricted.real_out and not plain.real_in and not plain.real_out
                    and plain.dtype.kind == "f"):
                raise ValueError(f"cannot add {first!r} and {second!r}: one acts on or gives real arrays only, and "
                                 "the other is not a real operator that could be restricted to them")
            real_in = real_out = True
        super().__init__(first.shape_in, first.shape_out, np.result_type(first.dtype, second.dtype),
                         real_in=real_in, real_out=real_out)
        self.first, self.second = first, second
        if first.precision is not None and second.precision is not None:
            self.precision = np.promote_types(first.precision, second.precision)

    def _apply(self, x: Array) -> Array:
        return self.first._apply(x) + self.second._apply(x)

    def _adjoint(self, y: Array) -> Array:
        return self.first._adjoint(y) + self.second._adjoint(y)

    def _upper_bound(self, like: Array | None) -> float:
        return self.first.norm_bound(like=like) + self.second.norm_bound(like=like)

    def __repr__(self) -> str:
        return f"({self.first!r} + {self.second!r})"


class Scaled(LinearOperator):
    """``c * A`` for a number ``c``; its adjoint is ``conj(c) * A^H``."""

    #: Attributes fixed once set (backend.KeepsReadOnly).
    _fixed = ("c", "op", "check_measurements")

    def __init__(self, c: float | complex, op: LinearOperator):
        c = _as_scalar(c)
        if isinstance(c, complex) and op.real_out:
            raise ValueError(f"cannot scale {op!r}, whose outputs are real, by the complex number {c}")
        dtype = np.result_type(op.dtype, np.complex128 if isinstance(c, complex) else np.float64)
        super().__init__(op.shape_in, op.shape_out, dtype, real_in=op.real_in, real_out=op.real_out)
        self.c, self.op = c, op
        self.precision = op.precision
        self.check_measurements = op.check_measurements  # a scale keeps y's form (bound as in Composition)

    def _apply(self, x: Array) -> Array:
        return self.c * self.op._apply(x)

    def _adjoint(self, y: Array) -> Array:
        # conj(c) scales y, not A^H y: for an operator on real images A^H takes the real part,
        # and Re(conj(c) A^H y) is not conj(c) Re(A^H y) for a complex c
        return self.op._adjoint(self.c.conjugate() * y)

    def norm(self, **kwargs: Any) -> float:
        return abs(self.c) * self.op.norm(**kwargs)  # with the caller's tol, max_iter, seed and like

    def _upper_bound(self, like: Array | None) -> float:
        return abs(self.c) * self.op.norm_bound(like=like)

    def __repr__(self) -> str:
        return f"({self.c!r} * {self.op!r})"
