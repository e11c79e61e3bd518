"""Read-only and memory-mapped inputs, which ASTRA's DLPack link refuses unless they are copied."""

from __future__ import annotations

import numpy as np
import pytest

from adareg.operators import RayTransform


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geometry", ["parallel", "fan"])
def test_ray_transform_on_memory_mapped_arrays(tmp_path, geometry, dtype):
    pytest.importorskip("astra", reason="the ASTRA toolbox is not installed (pip install adareg[ct])")
    options = {"source_distance": 60.0, "detector_distance": 30.0} if geometry == "fan" else {}
    R = RayTransform((24, 20), 15, geometry=geometry, **options)
    rng = np.random.default_rng(0)
    for op, shape in ((R, R.shape_in), (R.H, R.shape_out)):
        for batch in ((), (2,)):
            a = rng.standard_normal((*batch, *shape)).astype(dtype)
            np.save(tmp_path / "a.npy", a)
            mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
            assert not mapped.flags.writeable
            np.testing.assert_array_equal(op(mapped), op(a))
            np.testing.assert_array_equal(mapped, a)  # the file is untouched
