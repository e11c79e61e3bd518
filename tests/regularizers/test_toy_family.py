"""Adding a learned family, done once (docs/design.md, "How to add"): a class, a schema, a builder,
a file written and loaded by name of its family, and one line through the regularizer harness.

The toy family ``toy-l1`` is the simplest adaptive one: its weights do not depend on the image,
:math:`\\Lambda_c = \\ell_c`, so its reweighting has the weighted-l1 prox of a learned bank as fixed point.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pytest

import adareg
from adareg import backend, families, params
from adareg.backend import Array
from adareg.regularizers import FilterBank, SigmaProfile
from adareg.regularizers.adaptive import AdaptiveRegularizer
from tests.regularizers.harness import Subject, check_regularizer


class ToyL1(AdaptiveRegularizer):
    """``toy-l1``: weights :math:`\\Lambda_c = \\ell_c`, one learned level per channel."""

    family = "toy-l1"

    def __init__(self, bank: FilterBank, levels: Any, lam: SigmaProfile, sigma_range: tuple[float, float]):
        super().__init__(bank, lam, sigma_range)
        self.levels = np.asarray(levels, dtype=np.float64)

    def weights(self, x: Array, sigma: float) -> Array:
        xp = backend.namespace(x)
        levels = xp.asarray(self.levels, dtype=backend.real_dtype(x.dtype))
        return xp.broadcast_to(levels[:, None, None], (*x.shape[:-2], len(self.levels), *x.shape[-2:]))


def toy_schema(metadata: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    architecture = metadata["architecture"]
    return families.bank_schema(architecture) | {"levels": (architecture["bank_channels"][-1],)}


def build_toy(file: params.ParameterFile) -> ToyL1:
    return ToyL1(families.build_bank(file), file.arrays["levels"], families.build_lam(file),
                 tuple(file.metadata["sigma_range"]))


@pytest.fixture
def toy_file(tmp_path):
    """The family registered (and forgotten afterwards) and one file of it written with ``params.save``."""
    params.register_family("toy-l1", families.array_specs(toy_schema), build_toy)
    rng = np.random.default_rng(3)
    architecture = {"bank_channels": [3, 5], "bank_kernels": [3, 3], "boundary": "reflect", "lam_knots": 2}
    arrays = {"bank_0": rng.standard_normal((3, 1, 3, 3)), "bank_1": rng.standard_normal((5, 3, 3, 3)),
              "lam_knots": np.array([0.0, 30 / 255]), "lam_values": np.array([0.0, 0.2]),
              "levels": rng.uniform(0.2, 1.0, 5)}
    metadata = {"family": "toy-l1", "architecture": architecture, "sigma_range": [0.0, 30 / 255],
                "training": {"command": "none: a test's toy"}, "validation": {}}
    yield params.save(tmp_path / "toy-l1.npz", {k: a.astype(np.float32) for k, a in arrays.items()}, metadata)
    params.unregister_family("toy-l1")


def test_a_toy_family_loads_from_its_file(toy_file):
    reg = adareg.load(toy_file)
    assert isinstance(reg, ToyL1) and "toy-l1" in params.families()
    np.testing.assert_array_equal(reg.levels, params.read(toy_file).arrays["levels"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
def test_a_toy_family_passes_the_regularizer_harness(toy_file, dtype):
    check_regularizer(Subject(adareg.load(toy_file).at(15 / 255), (6, 7)), dtype, "cpu")
