"""Test helpers: operators written from scratch, as a user would (docs/design.md, "Adding an operator")."""

from __future__ import annotations

import numpy as np

from adareg import backend
from adareg.operators import LinearOperator


class MatrixOperator(LinearOperator):
    """``x -> M x`` for a dense matrix ``M`` acting on vectors (the last axis)."""

    def __init__(self, matrix: np.ndarray):
        super().__init__(matrix.shape[1], matrix.shape[0], matrix.dtype)
        self.matrix = matrix

    def _apply(self, x):
        return x @ self.matrix.T.astype(np.result_type(x.dtype, self.matrix.dtype), copy=False)

    def _adjoint(self, y):
        return y @ self.matrix.conj().astype(np.result_type(y.dtype, self.matrix.dtype), copy=False)


class CircularShift(LinearOperator):
    """``x -> roll(x, shift)`` over the image axes: ``__init__``, ``_apply``, ``_adjoint`` and, known here, the norm."""

    def __init__(self, shape: tuple[int, ...], shift: tuple[int, ...]):
        super().__init__(shape, shape, np.float64)
        self.shift = tuple(shift)

    def _roll(self, x, sign: int):
        axes = tuple(range(-len(self.shift), 0))
        return backend.namespace(x).roll(x, tuple(sign * s for s in self.shift), axis=axes)

    def _apply(self, x):
        return self._roll(x, 1)

    def _adjoint(self, y):
        return self._roll(y, -1)

    def _exact_norm(self) -> float:
        return 1.0  # a permutation


def reflect_bank_gram(kernel: np.ndarray, n: int) -> np.ndarray:
    """``W^T W`` for a ``(C, 1, K, K)`` correlation bank on ``n x n`` images with reflect boundary, from the
    dense matrix of each channel built with scipy.ndimage ("mirror" is numpy's "reflect": d c b | a b c d | c b a)."""
    from scipy import ndimage

    basis = np.eye(n * n).reshape(n * n, n, n)
    gram = np.zeros((n * n, n * n))
    for k in kernel[:, 0]:
        columns = ndimage.correlate(basis, k[None], mode="mirror").reshape(n * n, n * n)  # row i: W_c e_i
        gram += columns @ columns.T
    return gram


class ForeignArray:
    """An array of another library, as NumPy sees one: ``ndim``, ``shape`` and an ``__array__`` without the
    ``copy`` keyword of NumPy 2 (as torch's tensors and other libraries' arrays still have)."""

    def __init__(self, a: np.ndarray):
        self._a = np.asarray(a)
        self.ndim, self.shape = self._a.ndim, self._a.shape

    def __array__(self, dtype=None):
        return self._a if dtype is None else self._a.astype(dtype)
