"""adareg.presets: the shipped table, and the nearest acquisition to one at hand."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import adareg
from adareg import presets


@pytest.fixture
def table(monkeypatch):
    """A made-up table: sa-cnn at x2/320, x4/128 and x4/320 and x8/320; tv only at x4/128."""
    def entry(*models):
        return {"source": {"image": "made up", "command": "none"}, "models": {m: {"lam": 0.1} for m in models}}

    made_up = {"mri-cartesian-8-x2-0.01-320": entry("sa-cnn"), "mri-cartesian-8-x4-0.01-128": entry("sa-cnn", "tv"),
               "mri-cartesian-8-x4-0.01-320": entry("sa-cnn"), "mri-cartesian-8-x8-0.01-320": entry("sa-cnn"),
               "ct-parallel-60-1e+04-128": entry("sa-cnn")}
    monkeypatch.setattr(presets, "_table", lambda: made_up)
    return made_up


def test_nearest_is_in_acceleration_first_then_in_size_by_ratio(table):
    assert presets.nearest("mri-cartesian-", "sa-cnn", 320, acceleration=3.5) == "mri-cartesian-8-x4-0.01-320"
    assert presets.nearest("mri-cartesian-", "sa-cnn", 160, acceleration=4) == "mri-cartesian-8-x4-0.01-128"
    # 210 is nearer to 128 than to 320 in difference but not in ratio (320 / 210 < 210 / 128)
    assert presets.nearest("mri-cartesian-", "sa-cnn", 210, acceleration=4) == "mri-cartesian-8-x4-0.01-320"
    assert presets.nearest("mri-cartesian-", "sa-cnn", 128, acceleration=2.5) == "mri-cartesian-8-x2-0.01-320"
    assert presets.nearest("mri-cartesian-", "sa-cnn", 128, acceleration=7) == "mri-cartesian-8-x8-0.01-320"
    assert presets.nearest("mri-cartesian-", "sa-cnn", 128) == "mri-cartesian-8-x4-0.01-128"  # size only


def test_nearest_counts_only_acquisitions_with_the_model(table):
    assert presets.nearest("mri-cartesian-", "tv", 320, acceleration=8) == "mri-cartesian-8-x4-0.01-128"
    with pytest.raises(ValueError, match="no ct-parallel-60- acquisition has a preset of 'tv'"):
        presets.nearest("ct-parallel-60-", "tv", 128)
    with pytest.raises(ValueError, match="no ct-fan- acquisition"):
        presets.nearest("ct-fan-", "sa-cnn", 128)
    # a model no acquisition has was answered with the acquisitions' names, a list with numpy's TypeError
    with pytest.raises(ValueError, match=r"nearest: no preset of 'SA-CNN' for any acquisition; known models: "
                                         r"sa-cnn, tv$"):
        presets.nearest("ct-", "SA-CNN", 128)
    with pytest.raises(TypeError, match="nearest: model must be a name \\(str\\), got list"):
        presets.nearest("ct-", ["sa-cnn"], 128)


def test_a_preset_far_from_the_data_warns(table):
    with pytest.warns(UserWarning, match=r"nearest to size 128, acceleration 16 is 'mri-cartesian-8-x8-0.01-320', "
                                         r"more than 2 times away"):
        presets.nearest("mri-cartesian-", "sa-cnn", 128, acceleration=16)
    with pytest.warns(UserWarning, match="nearest to size 1024 is 'ct-parallel-60-1e\\+04-128'"):
        presets.nearest("ct-parallel-60-", "sa-cnn", 1024)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # within a factor 2 in size and acceleration: no warning
        assert presets.nearest("mri-cartesian-", "sa-cnn", 250, acceleration=5) == "mri-cartesian-8-x4-0.01-320"


def test_nearest_refuses_bad_sizes_and_accelerations(table):
    with pytest.raises(ValueError, match="nearest: size must be at least 1, got 0"):
        presets.nearest("ct-parallel-60-", "sa-cnn", 0)  # (a ZeroDivisionError before)
    with pytest.raises(ValueError, match="nearest: acceleration must be positive"):
        presets.nearest("mri-cartesian-", "sa-cnn", 128, acceleration=-4)
    with pytest.raises(ValueError, match="no ct- acquisition with an acceleration"):
        presets.nearest("ct-", "sa-cnn", 128, acceleration=4)  # (a bare StopIteration before)


@pytest.mark.parametrize("prefix", ["", "c", "mri", None, "-", "ct-parallel-6", "mri-cartesian-8-x4-0.01-32"])
def test_nearest_refuses_a_prefix_without_its_modality(table, prefix):
    # "" matched every acquisition: an MRI caller could get a CT preset without a word; "ct-parallel-6", a field
    # cut short, gave the preset of 60 angles for a scan of 6
    with pytest.raises(ValueError, match="nearest: prefix must name at least the modality"):
        presets.nearest(prefix, "sa-cnn", 128)


def test_the_shipped_table_is_complete_and_its_nearest_presets_exist():
    for acquisition in presets.acquisitions():
        assert set(presets.source(acquisition)) == {"image", "command"}
        size = int(acquisition.rsplit("-", 1)[1])
        prefix = acquisition.rsplit("-", 1)[0] + "-"
        for model in presets.models(acquisition):
            weights = presets.preset(acquisition, model)
            assert weights["lam"] > 0 and all(math.isfinite(v) for v in weights.values())
            assert presets.nearest(prefix, model, size) == acquisition  # its own size is the nearest
    with pytest.raises(ValueError, match="no presets for the acquisition 'ct-none'"):
        adareg.presets.preset("ct-none", "tv")


def test_preset_scales_lam_to_the_data_s_noise_level():
    ct, mri = "ct-parallel-60-1e+04-128", "mri-cartesian-8-x4-0.01-128"
    assert presets.noise_level(ct) == 1e4 and presets.noise_level(mri) == 0.01
    for acquisition, model, level, factor in ((ct, "tv", {"photons": 1e6}, 0.01), (ct, "sa-cnn", {"photons": 2.5e3}, 4),
                                              (mri, "wcrr", {"noise": 0.03}, 9), (mri, "tv", {"noise": 0.002}, 0.04)):
        base = presets.preset(acquisition, model)
        scaled = presets.preset(acquisition, model, **level)
        assert scaled["lam"] == pytest.approx(factor * base["lam"], rel=1e-12)
        assert scaled.get("sigma") == base.get("sigma")  # the model's noise level is the preset's
    with pytest.raises(ValueError, match=r"preset: photons applies to ct-\.\.\. acquisitions, not 'mri-cartesian"):
        presets.preset(mri, "tv", photons=1e6)
    with pytest.raises(ValueError, match=r"preset: noise applies to mri-\.\.\. acquisitions"):
        presets.preset(ct, "tv", noise=0.03)
    with pytest.raises(ValueError, match="preset: noise must be positive"):
        presets.preset(mri, "tv", noise=0.0)


def test_a_preset_scaled_to_the_data_s_noise_level_beats_the_unscaled_one():
    """A CT scan of 1e6 photons per ray reconstructed with the preset of 1e4 lost 6.5 dB to its lam scaled by
    1e4 / 1e6 (7.7 dB to the best of a search at 128 x 128, an audit, 2026-12-08); MRI k-space with 3 times the
    preset's noise 1.7 dB to its lam scaled by 3^2."""
    pytest.importorskip("astra")
    from adareg.ct import poisson_transmission
    from adareg.operators import CartesianMRI, RayTransform
    from adareg.regularizers import TV

    n = 64
    truth = adareg.data.medical_slice("ct-head", shape=(n, n), dtype=np.float32)
    H = RayTransform((n, n), 60, pixel_size=1 / n)
    y, w = poisson_transmission(H(truth), 1e6, seed=0)
    psnr = {level: adareg.psnr(adareg.solve(H, y, TV((n, n)), weights=w, bounds=(0, None),
                                            lam=presets.preset("ct-parallel-60-1e+04-128", "tv", photons=level)["lam"]
                                            ).x, truth) for level in (None, 1e6)}
    assert psnr[1e6] > psnr[None] + 5, psnr
    truth = adareg.data.medical_slice("mr-abdomen", shape=(n, n), dtype=np.float32)
    mask = adareg.mri.cartesian_mask(truth.shape, 4, 0.08, seed=0)
    H = CartesianMRI(mask, adareg.mri.birdcage_maps(truth.shape, 8), real=True)
    rng = np.random.default_rng(1)
    y = H(truth) + (mask * 0.03 * (rng.standard_normal(H.shape_out) + 1j * rng.standard_normal(H.shape_out)))
    y = y.astype(np.complex64)
    psnr = {level: adareg.psnr(adareg.solve(H, y, TV((n, n)), bounds=(0, None),
                                            lam=presets.preset("mri-cartesian-8-x4-0.01-128", "tv", noise=level)["lam"]
                                            ).x, truth) for level in (None, 0.03)}
    assert psnr[0.03] > psnr[None] + 1, psnr


@pytest.mark.parametrize("acquisition, model", [(["ct-parallel-60-1e+04-128"], "tv"), (128, "tv"),
                                                ("ct-parallel-60-1e+04-128", ["tv"])])
def test_preset_names_a_name_that_is_not_a_string(acquisition, model):
    with pytest.raises(TypeError, match="(acquisition|model) must be a name"):  # "unhashable type: 'list'"
        presets.preset(acquisition, model)
