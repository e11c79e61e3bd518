"""Test helpers: an operator given by a dense matrix (also a minimal subclassing example)."""

from __future__ import annotations

import numpy as np

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
