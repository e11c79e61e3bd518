"""The training loop, its command line, checkpoints and export (tiny models, a few synthetic images)."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import adareg
from adareg.io import read_folder, write_image
from adareg_train import __main__ as cli
from adareg_train import train as train_module
from adareg_train.data import PatchSampler
from adareg_train.families import MODELS, build
from adareg_train.train import (
    CHECKPOINT,
    Settings,
    _initialise,
    export_checkpoint,
    train,
)

TINY = {
    "crr": {"bank_channels": [2, 4], "bank_kernels": [3, 3], "boundary": "reflect", "lam_knots": 7,
            "profile_knots": 11, "profile_grid": [-2.0, 0.4], "scale_knots": 7},
    "sa-cnn": {"bank_channels": [2, 4], "bank_kernels": [3, 3], "boundary": "reflect", "lam_knots": 7,
               "mask_channels": [4, 4], "mask_kernels": [3, 3], "activation": "leaky_relu"},
}


@pytest.fixture
def images(tmp_path):
    """Three 32x32 piecewise-smooth grey images in a folder."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    grid = np.linspace(0, 1, 32)
    for i in range(3):
        blocks = np.kron(rng.random((4, 4)), np.ones((8, 8)))
        write_image(folder / f"im{i}.png", np.clip(0.6 * blocks + 0.4 * np.outer(grid, grid[::-1] ** (i + 1)), 0, 1))
    return folder


def settings(family, images, **changes):
    values = {"family": family, "data": str(images), "steps": 6, "batch_size": 4, "patch_size": 16, "lr": 1e-2,
              "seed": 3, "checkpoint_every": 3, "architecture": TINY[family], "dtype": "float64"}
    return Settings(**{**values, **changes})


def held_out_loss(model, images):
    clean, noisy, sigma = PatchSampler(list(read_folder(images).values()), 16).batch(8, torch.Generator().manual_seed(99))
    with torch.no_grad():
        return float(torch.mean((model(noisy, sigma) - clean) ** 2))


@pytest.mark.parametrize("family, gradient", [("crr", "implicit"), ("crr", "jfb"), ("sa-cnn", "jfb"),
                                              ("sa-cnn", "phantom")])
def test_training_lowers_the_loss_and_exports_a_loadable_file(tmp_path, images, family, gradient):
    run = settings(family, images, steps=25, gradient=gradient)
    path = train(run, tmp_path / "run", progress=False)
    before = held_out_loss(build(family, TINY[family], seed=run.seed), images)
    model = build(family, TINY[family], seed=run.seed)
    model.load_state_dict(torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)["model"])
    assert held_out_loss(model, images) < 0.9 * before
    # the exported file is the trained model, loadable by adareg, with its training record
    reg = adareg.load(str(path))
    assert reg.family == family
    np.testing.assert_allclose(reg.lam.values, model.lam.values().detach().numpy(), rtol=1e-12)
    metadata = adareg.params.read(path).metadata
    assert metadata["training"]["steps_done"] == 25 and metadata["training"]["seed"] == 3
    assert len(metadata["training"]["loss_curve"]) >= 2
    method = {"implicit": "implicit differentiation", "jfb": "Jacobian-free", "phantom": "phantom gradient: 5"}
    assert metadata["training"]["method"].startswith(method[gradient])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_an_interrupted_run_resumes_to_the_same_result(tmp_path, images, monkeypatch, dtype):
    """In float32 the resumed ridge started ||W||'s ARPACK from a fresh vector rather than the last one, which
    its tolerance leaves in the result: wcrr differed by 2.4e-7 (an audit); the checkpoint now keeps it."""
    whole = train(settings("crr", images, dtype=dtype), tmp_path / "whole", progress=False)

    calls = {"n": 0}
    original = PatchSampler.batch

    def interrupted(self, size, generator):
        calls["n"] += 1
        if calls["n"] == 5:  # after the checkpoint of step 3, during step 5
            raise KeyboardInterrupt
        return original(self, size, generator)

    monkeypatch.setattr(PatchSampler, "batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(settings("crr", images, dtype=dtype), tmp_path / "resumed", progress=False)
    assert torch.load(tmp_path / "resumed" / CHECKPOINT, weights_only=True)["step"] == 3
    monkeypatch.setattr(PatchSampler, "batch", original)
    resumed = train(settings("crr", images, dtype=dtype), tmp_path / "resumed", progress=False)
    a, b = adareg.params.read(whole).arrays, adareg.params.read(resumed).arrays
    for name in a:
        np.testing.assert_array_equal(b[name], a[name], err_msg=name)


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path, images):
    train(settings("crr", images, steps=3), tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="other settings"):
        train(settings("crr", images, steps=3, lr=0.5), tmp_path / "run", progress=False)


def test_a_checkpoint_from_before_the_gradient_setting_resumes_as_jfb(tmp_path, images):
    train(settings("crr", images, steps=3, gradient="jfb"), tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)
    del state["settings"]["gradient"]
    torch.save(state, tmp_path / "run" / CHECKPOINT)
    with pytest.raises(ValueError, match="other settings"):  # crr's default is implicit now
        train(settings("crr", images, steps=3), tmp_path / "run", progress=False)
    path = train(settings("crr", images, steps=3, gradient="jfb"), tmp_path / "run", progress=False)
    assert adareg.params.read(path).metadata["training"]["method"].startswith("Jacobian-free")
    with pytest.raises(ValueError, match="crr, wcrr only"):
        settings("sa-cnn", images, gradient="implicit").check()
    with pytest.raises(ValueError, match="sa-b, sa-cnn only"):
        settings("crr", images, gradient="phantom").check()
    with pytest.raises(ValueError, match="phantom_steps must be at least 1, got 0"):
        settings("sa-cnn", images, gradient="phantom", phantom_steps=0).check()


def test_an_adaptive_checkpoint_from_before_the_phantom_gradient_resumes_as_jfb(tmp_path, images):
    """sa-cnn's default became the phantom gradient: an older checkpoint of the default ran JFB, and resumes so."""
    train(settings("sa-cnn", images, steps=3, gradient="jfb"), tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)
    state["settings"]["gradient"] = None
    del state["settings"]["phantom_steps"]
    torch.save(state, tmp_path / "run" / CHECKPOINT)
    with pytest.raises(ValueError, match="other settings"):
        train(settings("sa-cnn", images, steps=3), tmp_path / "run", progress=False)
    path = train(settings("sa-cnn", images, steps=3, gradient="jfb"), tmp_path / "run", progress=False)
    assert adareg.params.read(path).metadata["training"]["method"].startswith("Jacobian-free")


def test_init_from_a_file(tmp_path, images):
    """A file of the same family and architecture starts every parameter; another family's, the bank only."""
    source = train(settings("sa-cnn", images, steps=2), tmp_path / "source", progress=False)
    model = build("sa-cnn", TINY["sa-cnn"], seed=11)
    assert _initialise(model, str(source))["continued_from"]["steps_done"] == 2
    for name, array in adareg.params.read(source).arrays.items():
        np.testing.assert_allclose(model.arrays()[name], array, rtol=1e-12, atol=1e-14, err_msg=name)
    # the continued run's file keeps the training record of the file it started from
    continued = train(settings("sa-cnn", images, steps=3, init=str(source)), tmp_path / "continued", progress=False)
    record = adareg.params.read(continued).metadata["training"]
    assert record["steps_done"] == 3 and record["init"] == str(source)
    assert record["continued_from"]["file"] == str(source) and record["continued_from"]["steps_done"] == 2
    assert len(record["continued_from"]["loss_curve"]) == 2
    again = adareg.params.read(export_checkpoint(tmp_path / "continued")).metadata["training"]
    assert again["continued_from"] == record["continued_from"]  # kept in the checkpoint

    bank_only = train(settings("crr", images, steps=2), tmp_path / "crr", progress=False)
    model = build("sa-cnn", TINY["sa-cnn"], seed=11)
    masks = [k.detach().clone() for k in model.masks.kernels]
    origin = _initialise(model, str(bank_only))
    assert list(origin) == ["bank_from"] and origin["bank_from"]["family"] == "crr"
    np.testing.assert_allclose(model.arrays()["bank_1"], adareg.params.read(bank_only).arrays["bank_1"])
    assert all(torch.equal(k, m) for k, m in zip(model.masks.kernels, masks))
    # the new file names the stages its bank went through: the crr run's record, kept through the checkpoint
    on_bank = train(settings("sa-cnn", images, steps=2, init=str(bank_only)), tmp_path / "on-bank", progress=False)
    record = adareg.params.read(on_bank).metadata["training"]
    assert "continued_from" not in record and record["bank_from"]["file"] == str(bank_only)
    assert record["bank_from"]["family"] == "crr" and record["bank_from"]["steps_done"] == 2
    assert adareg.params.read(export_checkpoint(tmp_path / "on-bank")).metadata["training"] == record
    with pytest.raises(ValueError, match="bank_0 does not fit"):
        _initialise(build("sa-cnn", seed=11), str(bank_only))  # the default architecture has other layers


def test_init_says_which_arrays_the_family_s_constraints_projected(tmp_path):
    """A wcrr file that adareg loads (2-weakly convex potentials, lam halved so that lam rho ||W||^2 <= 1 still
    holds) had its profile clamped to slopes >= -1 on --init without a word, and the record said the run continued
    it: the run started 1.2 dB below the file on a Set12 crop (an audit, 2026-12-07)."""
    shipped = adareg.params.read("wcrr")
    arrays = {**shipped.arrays, "profile": 2 * shipped.arrays["profile"],
              "lam_values": shipped.arrays["lam_values"] / 2}
    metadata = {key: shipped.metadata[key] for key in ("family", "architecture", "sigma_range", "training",
                                                        "validation")}
    path = adareg.params.save(tmp_path / "wcrr-rho2.npz", arrays, metadata)
    step = shipped.metadata["architecture"]["profile_grid"][1]
    assert np.diff(arrays["profile"], axis=1).min() / step < -1.5  # the premise: beyond the trained bound
    model = build("wcrr", shipped.metadata["architecture"], seed=0).double()
    with pytest.warns(UserWarning, match=r"the wcrr constraints changed its profile: the run starts from their "
                      "projection"):
        origin = _initialise(model, str(path))
    assert origin["continued_from"]["projected"] == ["profile"]
    assert np.diff(model.arrays()["profile"], axis=1).min() / step >= -1 - 1e-9
    # lam above its bound 1 / (rho ||W||^2) moved by a third without a word (an audit, 2026-12-08)
    path = adareg.params.save(tmp_path / "wcrr-lam.npz", {**shipped.arrays, "lam_values": 1.5 * shipped.arrays[
        "lam_values"]}, metadata)
    with pytest.warns(UserWarning, match=r"the wcrr constraints changed its lam_values: the run starts"):
        origin = _initialise(build("wcrr", shipped.metadata["architecture"], seed=0), str(path))
    assert origin["continued_from"]["projected"] == ["lam_values"]
    with warnings.catch_warnings():  # the shipped file itself holds the constraints: taken as it is
        warnings.simplefilter("error")
        origin = _initialise(build("wcrr", shipped.metadata["architecture"], seed=0), "wcrr")
    assert "projected" not in origin["continued_from"]


def test_an_architecture_given_with_tuples_continues_its_own_file(tmp_path, images):
    """Its file holds the architecture's lists, which compared unequal to the tuples: only the bank was taken from
    it, without a word (an audit, 2026-12-06)."""
    source = train(settings("sa-cnn", images, steps=2), tmp_path / "source", progress=False)
    with_tuples = {key: tuple(value) if isinstance(value, list) else value for key, value in TINY["sa-cnn"].items()}
    model = build("sa-cnn", with_tuples, seed=11)
    assert list(_initialise(model, str(source))) == ["continued_from"]
    for name, array in adareg.params.read(source).arrays.items():
        np.testing.assert_allclose(model.arrays()[name], array, rtol=1e-12, atol=1e-14, err_msg=name)


def test_a_cuda_run_turns_tf32_off_when_it_resumes_too(monkeypatch, images):
    """starting_model turned cuDNN's TF32 off, but a resumed run builds its model with _model and kept torch's
    default, TF32 on, in its mask network's convolutions (an audit, 2026-12-06). No GPU here: the model stays put."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.nn.Module, "to", lambda self, *args, **kwargs: self)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    train_module._model(settings("sa-cnn", images, device="cuda"))
    assert torch.backends.cudnn.allow_tf32 is False


def test_an_sa_b_profile_grid_from_minus_one_is_named(images):
    """It was refused as "a file that adareg refuses (array 'profile' has 32 non-finite value(s)...)", naming
    neither the grid nor what it must be (an audit, 2026-12-06)."""
    architecture = MODELS["sa-b"].default_architecture | {"profile_grid": [-1.0, 0.25]}
    with pytest.raises(ValueError, match=r"sa-b: profile_grid must start above -1, .* got -1\.0"):
        Settings(family="sa-b", data=str(images), architecture=architecture).check()


@pytest.mark.parametrize("family", ["crr", "wcrr"])
def test_a_ridge_profile_grid_must_hold_0_inside(images, family):
    """A grid whose end segments reach 0 was trained: clamp_slopes set f(0) = 0 and then moved the end
    coefficients, so the exported profile had f(0) up to 25 and changed each time the file was loaded again (an
    audit, 2026-12-06). Checked against the profile of a grid that holds 0 inside."""
    from adareg_train.families import clamp_slopes

    table = clamp_slopes(torch.linspace(0.0, 5.0, 6)[None], 0.2, lower=0.0, grid_min=0.5)  # 0 left of the grid
    f_0 = table[0, 0] - 2.5 * (table[0, 1] - table[0, 0])  # the first segment continued to 0, 2.5 steps away
    assert abs(float(f_0)) > 1.0
    for grid in ([0.5, 0.2], [-0.9, 0.2]):  # 0 beyond the grid, 0 in its last segment
        architecture = MODELS[family].default_architecture | {"profile_grid": grid, "profile_knots": 6}
        with pytest.raises(ValueError, match=rf"{family}: profile_grid \[{grid[0]}, 0.2\] with 6 knots must put 0 "
                           "between the second knot and the second-to-last"):
            Settings(family=family, data=str(images), architecture=architecture).check()


def test_validation_scores_the_minimiser_the_exported_file_gives():
    """Validation ran the training solve (100 FISTA iterations, a relative change of 1e-4), whose ends lay some
    5e-4 from the minimisers: the shipped crr scored 0.011 dB above what adareg.solve gives with its file."""
    from adareg.data import protocol_noisy
    from adareg.operators import Identity

    model = train_module._model(Settings(family="crr", data=".", dtype="float64"))
    _initialise(model, "crr")
    clean = adareg.data.image("camera", shape=(96, 96))
    pairs = [(clean, protocol_noisy(clean, 25, i)) for i in range(2)]
    reg = adareg.load("crr")
    expected = np.mean([adareg.psnr(adareg.solve(Identity(clean.shape), noisy, reg, sigma=25 / 255, tol=1e-9,
                                                 max_iter=5000, precision="float64").x, clean)
                        for clean, noisy in pairs])
    assert abs(train_module.validate(model, pairs, 25 / 255, "cpu") - expected) < 1e-3
    assert (model.iterations, model.tol) == (100, 1e-4)  # the training solves' settings come back


def test_sampler_gives_reproducible_noisy_patches(images):
    sampler = PatchSampler(list(read_folder(images).values()), 16)
    first = sampler.batch(5, torch.Generator().manual_seed(1))
    again = sampler.batch(5, torch.Generator().manual_seed(1))
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    clean, noisy, sigma = first
    assert clean.shape == noisy.shape == (5, 1, 16, 16) and sigma.shape == (5,)
    assert float(sigma.min()) >= 0 and float(sigma.max()) <= 30 / 255
    with pytest.raises(ValueError, match="smaller than patch_size"):
        PatchSampler(list(read_folder(images).values()), 40)


def test_command_line(tmp_path, images, capsys):
    code = cli.main(["train", "--family", "crr", "--data", str(images), "--out", str(tmp_path / "cli"), "--steps",
                     "2", "--batch-size", "2", "--patch-size", "16", "--quiet"])
    assert code == 0 and (tmp_path / "cli" / "crr.npz").exists()
    assert "wrote" in capsys.readouterr().out
    assert cli.main(["train", "--family", "crr", "--data", str(tmp_path / "nowhere"), "--out",
                     str(tmp_path / "x"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["train", "--family", "crr", "--data", str(images), "--out", str(tmp_path / "y"), "--steps",
                     "0", "--quiet"]) == 2
    assert "steps must be at least 1, got 0" in capsys.readouterr().err
    assert cli.main(["train", "--family", "sa-cnn", "--data", str(images), "--out", str(tmp_path / "ph"), "--steps",
                     "1", "--batch-size", "2", "--patch-size", "16", "--gradient", "phantom", "--phantom-steps", "3",
                     "--quiet"]) == 0
    method = adareg.params.read(tmp_path / "ph" / "sa-cnn.npz").metadata["training"]["method"]
    assert method.startswith("phantom gradient: 3 fixed-point map steps")


def test_validation_on_set12_uses_the_noise_protocol():
    folder = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "set12"
    if not folder.is_dir():
        pytest.skip(f"the Set12 images are not at {folder} (../shared/data, see its README)")
    from adareg_train.train import validation_pairs

    pairs = validation_pairs(str(folder), sigma=25 / 255, crop=64, count=2)
    clean = list(read_folder(folder).values())[1]
    noise = np.random.default_rng(25 * 1000 + 1).standard_normal(clean.shape) * 25 / 255
    top, left = (clean.shape[0] - 64) // 2, (clean.shape[1] - 64) // 2
    np.testing.assert_array_equal(pairs[1][1], (clean + noise)[top : top + 64, left : left + 64])


def held_out_contraction(model, images):
    """The mean contraction bound at the fixed points of held-out patches (20 power iterations)."""
    clean, noisy, sigma = PatchSampler(list(read_folder(images).values()), 16).batch(8, torch.Generator().manual_seed(99))
    x, p, W, lam = model.equilibrium(noisy, sigma)
    return model.contraction(noisy, sigma, x, p, W, lam, 20, torch.Generator().manual_seed(0)).detach().mean().item()


def test_contraction_penalty_lowers_the_bound_and_is_recorded(tmp_path, images):
    common = {"steps": 20, "architecture": TINY["sa-cnn"] | {"mask_channels": [8, 4]}}
    bounds = {}
    for weight in (0.0, 10.0):
        target = {"contraction_target": 0.0} if weight else {}  # a target without the penalty is refused
        run = settings("sa-cnn", images, contraction=weight, **target, **common)
        path = train(run, tmp_path / f"w{weight}", progress=False)
        model = build("sa-cnn", run.architecture, seed=run.seed)
        model.load_state_dict(torch.load(tmp_path / f"w{weight}" / CHECKPOINT, weights_only=True)["model"])
        bounds[weight] = held_out_contraction(model, images)
        training = adareg.params.read(path).metadata["training"]
        assert ("contraction_curve" in training) == (weight > 0)
        assert ("bound on the reweighting map's Jacobian" in training["loss"]) == (weight > 0)
    assert bounds[10.0] < 0.5 * bounds[0.0]


@pytest.mark.parametrize("changes, message", [
    ({"family": "crr", "contraction": 1.0}, "contraction is a penalty of the reweighting families"),
    ({"contraction": -1.0}, "contraction must be non-negative"),
    ({"contraction_target": -0.5}, "contraction_target must be non-negative"),
    ({"contraction_iterations": 0}, "contraction_iterations must be at least 1"),
])
def test_contraction_settings_are_checked(images, changes, message):
    family = changes.pop("family", "sa-cnn")
    with pytest.raises(ValueError, match=message):
        settings(family, images, **changes).check()


@pytest.mark.parametrize("family", ["crr", "sa-cnn"])
def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path, images, family):
    """A NaN loss (lr 1e4) stops the run at its step, before it is saved; it was an IndexError for crr."""
    message = r"diverged at step 2: the loss is nan.*keeps step 1\).*lower --lr than 10000"
    with pytest.raises(RuntimeError, match=message):
        train(settings(family, images, lr=1e4, checkpoint_every=1), tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)
    assert state["step"] == 1 and all(torch.isfinite(p).all() for p in state["model"].values())
    assert not (tmp_path / "run" / f"{family}.npz").exists()


def test_non_finite_parameters_stop_the_run(tmp_path, images, monkeypatch):
    original = train_module.training_step

    def poisoned(model, optimizer, sampler, generator, run, lr):
        values = original(model, optimizer, sampler, generator, run, lr)
        if len(optimizer.state[model.bank.layers[0]]) and optimizer.state[model.bank.layers[0]]["step"] == 3:
            with torch.no_grad():
                model.bank.layers[0].fill_(float("inf"))
        return values

    monkeypatch.setattr(train_module, "training_step", poisoned)
    with pytest.raises(RuntimeError, match="diverged at step 3: a parameter is not finite after the update"):
        train(settings("crr", images, checkpoint_every=2), tmp_path / "run", progress=False)
    assert torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)["step"] == 2


def test_an_init_file_that_the_run_would_overwrite_is_refused(tmp_path, images):
    source = train(settings("crr", images, steps=2), tmp_path / "run", progress=False)
    before = source.read_bytes()
    with pytest.raises(ValueError, match="is the file this run exports, which would overwrite it"):
        train(settings("crr", images, steps=3, init=str(source)), tmp_path / "run", resume=False, progress=False)
    assert source.read_bytes() == before


def test_an_unreadable_init_file_is_named_with_its_option(tmp_path, images):
    """The reader's errors about an init file did not say which setting named it."""
    (tmp_path / "notes.npz").write_bytes(b"not a parameter file")
    for init, detail in ((tmp_path / "missing.npz", "no such file"), (tmp_path / "notes.npz", "")):
        with pytest.raises(adareg.params.ParameterFileError, match=f"^--init: {re.escape(str(init))}: {detail}") as err:
            train(settings("crr", images, steps=1, init=str(init)), tmp_path / "run", progress=False)
        assert err.value.file == str(init)
        assert not (tmp_path / "run").exists()  # an empty --out folder was left behind


def test_an_init_file_that_adareg_load_refuses_is_refused(tmp_path):
    """--init read files with the format's checks only: negative blur taps became 0 through the training
    parameterisation, a missing array a bare KeyError (an audit, 2026-12-06)."""
    shipped = adareg.params.read("sa-b")
    metadata = json.dumps(shipped.metadata).encode()
    blur = shipped.arrays["blur"].copy()
    blur[0, 2, 0] = -0.01
    missing = {name: array for name, array in shipped.arrays.items() if name != "profile"}
    for name, arrays, detail in (("negative.npz", {**shipped.arrays, "blur": blur}, "must be non-negative"),
                                 ("missing.npz", missing, "profile")):
        np.savez(tmp_path / name, **arrays, __metadata__=np.frombuffer(metadata, dtype=np.uint8))
        with pytest.raises(adareg.params.ParameterFileError, match=f"^--init: .*{name}: .*{detail}"):
            _initialise(build("sa-b", seed=1), str(tmp_path / name))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign"])
def test_a_damaged_checkpoint_is_named_on_resume_and_export(tmp_path, images, damage):
    run = tmp_path / "run"
    train(settings("crr", images, steps=3), run, progress=False)
    checkpoint = run / CHECKPOINT
    if damage == "garbage":
        checkpoint.write_bytes(b"garbage")
    elif damage == "truncated":
        checkpoint.write_bytes(checkpoint.read_bytes()[:5000])
    else:
        torch.save({"model": {}}, checkpoint)
    words = "not an adareg_train checkpoint" if damage == "foreign" else "not a readable adareg_train checkpoint"
    with pytest.raises(ValueError, match=f"{checkpoint}: {words}.*--no-resume to replace it"):
        train(settings("crr", images, steps=3), run, progress=False)
    with pytest.raises(ValueError, match=f"{checkpoint}: {words}"):
        export_checkpoint(run)


def test_a_gpu_run_s_checkpoint_exports_on_the_cpu(tmp_path, images):
    """The arrays are all export needs: a checkpoint whose run used CUDA exports where there is none."""
    run = tmp_path / "run"
    path = train(settings("crr", images, steps=3), run, progress=False)
    expected = adareg.params.read(path).arrays
    state = torch.load(run / CHECKPOINT, weights_only=True)
    state["settings"]["device"] = "cuda"
    torch.save(state, run / CHECKPOINT)
    path.unlink()
    exported = adareg.params.read(export_checkpoint(run))
    assert exported.metadata["training"]["device"] == "cuda"  # where it was trained
    for name, array in expected.items():
        np.testing.assert_array_equal(exported.arrays[name], array, err_msg=name)


def test_the_hardware_is_recorded_where_the_run_trains(tmp_path, images, monkeypatch):
    """Taken when the run trains (a GPU's name included) and kept by the checkpoint, so that a CPU export of a
    GPU run names the GPU; a checkpoint from before keeps its threads."""
    run = tmp_path / "run"
    path = train(settings("crr", images, steps=3), run, progress=False)
    assert adareg.params.read(path).metadata["training"]["hardware"] == (
        f"{platform.machine()} cpu, torch {torch.__version__}, {torch.get_num_threads()} threads")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda: "NVIDIA H200")
    state = torch.load(run / CHECKPOINT, weights_only=True)
    state["hardware"] = train_module.hardware("cuda")
    torch.save(state, run / CHECKPOINT)
    path.unlink()
    assert adareg.params.read(export_checkpoint(run)).metadata["training"]["hardware"].startswith(
        f"{platform.machine()} cuda (NVIDIA H200), torch {torch.__version__}, ")
    del state["hardware"]
    state["threads"] = 7  # a checkpoint written before the record was kept
    torch.save(state, run / CHECKPOINT)
    path.unlink()
    assert adareg.params.read(export_checkpoint(run)).metadata["training"]["hardware"] == (
        f"{platform.machine()} cpu, torch {torch.__version__}, 7 threads")


def test_a_run_resumed_on_another_machine_records_both(tmp_path, images, monkeypatch):
    """A run stopped on a GPU and resumed on the CPU recorded the CPU alone: the record names each machine and
    the step from which it trained; a resume on the same machine adds nothing. (The device is no setting that
    must match: such a resume was refused as 'written with other settings'.)"""
    run, here = tmp_path / "run", train_module.hardware("cpu")
    train(settings("crr", images, steps=4), run, progress=False, max_seconds=1e-9)  # stops after step 1
    state = torch.load(run / CHECKPOINT, weights_only=True)
    assert state["step"] == 1
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda: "NVIDIA H200")
    gpu = train_module.hardware("cuda")
    state["hardware"], state["settings"]["device"] = gpu, "cuda"
    torch.save(state, run / CHECKPOINT)
    (run / "crr.npz").unlink()
    path = train(settings("crr", images, steps=4), run, progress=False, max_seconds=1e-9)  # step 2, then stops
    assert adareg.params.read(path).metadata["training"]["hardware"] == f"{gpu}; from step 2: {here}"
    path = train(settings("crr", images, steps=4), run, progress=False)  # steps 3 and 4, on the same machine
    assert adareg.params.read(path).metadata["training"]["hardware"] == f"{gpu}; from step 2: {here}"
    assert adareg.params.read(export_checkpoint(run)).metadata["training"]["hardware"] == f"{gpu}; from step 2: {here}"
    # the same command once more, on another machine: no step runs, so nothing trained there (the record said
    # "from step 5", a step that never ran)
    monkeypatch.setattr(train_module, "hardware", lambda device: "another machine")
    path = train(settings("crr", images, steps=4), run, progress=False)
    assert adareg.params.read(path).metadata["training"]["hardware"] == f"{gpu}; from step 2: {here}"


def test_the_code_record_names_the_code_that_trained_each_step(tmp_path, images, monkeypatch):
    """A re-run of a finished run, or an export, stamped the code of the moment: a file trained at one commit
    named another, which ran no step of it (an audit, 2026-12-08)."""
    run, here = tmp_path / "run", train_module.code_version()
    train(settings("crr", images, steps=3), run, progress=False, max_seconds=1e-9)  # stops after step 1
    state = torch.load(run / CHECKPOINT, weights_only=True)
    assert state["code"] == here
    state["code"] = "adareg 0.0.9, commit 0123abc"
    torch.save(state, run / CHECKPOINT)
    (run / "crr.npz").unlink()
    path = train(settings("crr", images, steps=3), run, progress=False)  # steps 2 and 3 here
    assert adareg.params.read(path).metadata["training"]["code"] == f"adareg 0.0.9, commit 0123abc; from step 2: {here}"
    monkeypatch.setattr(train_module, "code_version", lambda: "adareg 9.9, commit fedcba9")
    path = train(settings("crr", images, steps=3), run, progress=False)  # finished: no step runs
    assert adareg.params.read(path).metadata["training"]["code"] == f"adareg 0.0.9, commit 0123abc; from step 2: {here}"
    assert adareg.params.read(export_checkpoint(run)).metadata["training"]["code"] == (
        f"adareg 0.0.9, commit 0123abc; from step 2: {here}")


def test_resume_takes_another_spelling_of_the_same_data_folder(tmp_path, images, monkeypatch):
    train(settings("crr", images, steps=3), tmp_path / "run", progress=False)
    monkeypatch.chdir(images.parent)
    path = train(settings("crr", images, steps=3, data=f"./{images.name}/"), tmp_path / "run", progress=False)
    assert path.exists()


def test_the_exported_file_names_the_code_that_wrote_it(tmp_path, images):
    code = adareg.params.read(train(settings("crr", images, steps=1), tmp_path / "run", progress=False)).metadata
    code = code["training"]["code"]
    assert code.startswith(f"adareg {adareg.__version__}")
    repository = Path(train_module.__file__).resolve().parent.parent
    head = subprocess.run(["git", "-C", str(repository), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # a checkout (CI's clone), not an installed package
        assert f"commit {head.stdout.strip()}" in code


def test_a_parameter_file_of_another_run_is_not_replaced(tmp_path, images):
    out = tmp_path / "kept"
    out.mkdir()
    (out / "crr.npz").write_bytes(b"someone's model")
    with pytest.raises(ValueError, match=r"crr.npz exists and no checkpoint of its run is in .*kept"):
        train(settings("crr", images, steps=3), out, progress=False)
    assert (out / "crr.npz").read_bytes() == b"someone's model"


def test_a_resumed_run_does_not_need_its_init_file(tmp_path, images):
    source = train(settings("crr", images, steps=2), tmp_path / "source", progress=False)
    init = tmp_path / "init.npz"
    init.write_bytes(source.read_bytes())
    whole = train(settings("crr", images, steps=3, init=str(init)), tmp_path / "whole", progress=False)
    train(settings("crr", images, steps=3, init=str(init)), tmp_path / "run", progress=False)
    init.unlink()
    again = train(settings("crr", images, steps=3, init=str(init)), tmp_path / "run", progress=False)
    a, b = adareg.params.read(whole), adareg.params.read(again)
    assert b.metadata["training"]["continued_from"] == a.metadata["training"]["continued_from"]
    for name, array in a.arrays.items():
        np.testing.assert_array_equal(b.arrays[name], array, err_msg=name)


def test_a_refused_resume_names_the_setting_and_what_no_resume_does(tmp_path, images):
    train(settings("crr", images, steps=3), tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match=r"other settings \(steps: 3 there, 6 now\): use another --out to keep it, "
                                         r"or --no-resume to start over, which replaces it"):
        train(settings("crr", images, steps=6), tmp_path / "run", progress=False)


def test_validation_images_smaller_than_the_crop_are_refused(tmp_path, images):
    with pytest.raises(ValueError, match=r"im0.png is 32 x 32 pixels, smaller than the 96 x 96 crop"):
        train(settings("crr", images, validation=str(images)), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def run_cli(tmp_path, images, *options):
    return cli.main(["train", "--family", "crr", "--data", str(images), "--out", str(tmp_path / "cli"),
                     "--steps", "1", "--batch-size", "2", "--patch-size", "16", "--quiet", *options])


@pytest.mark.parametrize("options, message", [
    (["--phantom-steps", "5"], "phantom_steps (--phantom-steps) has no effect with the implicit gradient"),
    (["--family", "sa-cnn", "--gradient", "jfb", "--phantom-steps", "3"],
     "phantom_steps (--phantom-steps) has no effect with the jfb gradient"),
    (["--contraction-target", "0.5"], "contraction_target (--contraction-target) has no effect without the"),
    (["--contraction-iterations", "3"], "contraction_iterations (--contraction-iterations) has no effect without"),
    (["--validate-every", "10"], "validate_every (--validate-every) has no effect without validation images"),
])
def test_options_without_effect_are_refused(tmp_path, images, capsys, options, message):
    assert run_cli(tmp_path, images, *options) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "cli").exists()


def test_settings_without_effect_are_refused_unless_at_their_default(images):
    settings("crr", images, phantom_steps=5, contraction_iterations=5).check()
    with pytest.raises(ValueError, match=r"phantom_steps \(--phantom-steps\) has no effect"):
        settings("crr", images, phantom_steps=3).check()


def test_the_images_read_and_the_files_skipped_are_reported(tmp_path, images, capsys):
    assert run_cli(tmp_path, images, "--no-resume") == 0
    assert capsys.readouterr().err == ""  # --quiet and nothing skipped: silent
    (images / "photo.jpg").write_bytes(b"not read")
    (images / "array.npy").write_bytes(b"not read")
    (images / "scan.pgm").write_bytes(b"not read")  # once skipped without a word
    assert run_cli(tmp_path, images, "--no-resume") == 0
    err = capsys.readouterr().err
    assert f"3 training images (PNG/TIFF) in {images}; not read: 3 files of other formats (array.npy, photo.jpg, " \
        "scan.pgm)" in err
    assert "read_folder" not in err  # named once, not by the reader's warning too
    assert adareg.params.read(tmp_path / "cli" / "crr.npz").metadata["training"]["data_images"] == 3
    assert adareg.params.read(export_checkpoint(tmp_path / "cli")).metadata["training"]["data_images"] == 3


def test_float_images_on_another_scale_are_refused(tmp_path, images, capsys):
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(images / "scaled.tif", np.round(255 * next(iter(read_folder(images).values()))))
    assert run_cli(tmp_path, images) == 2
    err = capsys.readouterr().err
    assert f"data: {images / 'scaled.tif'}:" in err and "divide by 255" in err


def test_bad_options_give_one_line_errors(tmp_path, images, capsys):
    (tmp_path / "file").write_text("")
    assert cli.main(["train", "--family", "crr", "--data", str(images), "--out", str(tmp_path / "file"),
                     "--quiet"]) == 2
    assert f"out {tmp_path / 'file'} is a file" in capsys.readouterr().err
    assert run_cli(tmp_path, images, "--patch-size", "4") == 2
    assert "patch_size must be at least 7 for this architecture" in capsys.readouterr().err
    assert run_cli(tmp_path, images, "--patch-size", "40") == 2
    assert f"{images / 'im0.png'} (32 x 32 pixels) is smaller than patch_size = 40" in capsys.readouterr().err
    assert run_cli(tmp_path, images, "--init", str(tmp_path / "run" / CHECKPOINT)) == 2
    assert f"export it first (python -m adareg_train export --out {tmp_path / 'run'})" in capsys.readouterr().err
    assert run_cli(tmp_path, images, "--seed", "99999999999999999999") == 2
    assert "seed must be an int from 0 to 2**64 - 1" in capsys.readouterr().err
    assert run_cli(tmp_path, images, "--seed", "-1") == 2  # torch's seed 2**64 - 1 too: two records of one run
    assert "seed must be an int from 0 to 2**64 - 1 (a torch generator's seed), got -1" in capsys.readouterr().err


@pytest.mark.parametrize("changes, error, message", [
    ({"steps": True}, TypeError, r"steps must be an int, got True \(bool\)"),
    ({"batch_size": 2.0}, TypeError, "batch_size must be an int"),
    ({"contraction": True}, TypeError, "contraction must be a real number, got True"),
    ({"lr": "0.1"}, TypeError, r"lr must be a real number, got '0.1' \(str\)"),
    ({"lr": None}, TypeError, "lr must be a real number, got None"),
    ({"lr": float("nan")}, ValueError, "lr must be finite"),
    ({"contraction": None}, TypeError, "contraction must be a real number, got None"),
    ({"contraction_target": "0.5"}, TypeError, "contraction_target must be a real number"),
    ({"seed": True}, TypeError, "seed must be an int, got True"),
    ({"architecture": {"foo": 1}}, ValueError, r"architecture of 'crr' must have the keys .*; missing bank_channels.*"
                                               r"; unknown foo"),
    ({"architecture": [1]}, TypeError, "architecture must be a dict or None"),
    ({"data": None}, TypeError, r"data \(--data\) must be a path \(str or os.PathLike\), got None"),
    ({"validation": 3}, TypeError, r"validation \(--validation\) must be a path \(str or os.PathLike\) or None"),
])
def test_settings_of_the_wrong_type_are_refused_by_name(images, changes, error, message):
    with pytest.raises(error, match=message):
        settings("crr", images, **changes).check()


def test_sampler_arguments_are_checked(images):
    grey = list(read_folder(images).values())
    for size, error, message in [(0, ValueError, "patch_size must be at least 1, got 0"),
                                 (-5, ValueError, "patch_size must be at least 1"),
                                 (10.5, TypeError, r"patch_size must be an int, got 10.5")]:
        with pytest.raises(error, match=message):
            PatchSampler(grey, size)
    for sigmas, error, message in [((0.2, 0.1), ValueError, r"sigma_range must be \(low, high\) with low <= high"),
                                   ((-0.1, 0.1), ValueError, r"sigma_range\[0\] must be non-negative"),
                                   ((0.0, float("nan")), ValueError, r"sigma_range\[1\] must be finite"),
                                   (0.1, TypeError, "sigma_range must be two noise levels"),
                                   ((0, 30), ValueError, r"on the images' \[0, 1\] scale \(at most 1; 30 on a 0-255 "
                                                         r"scale is 30 / 255\), got \(0, 30\)")]:
        with pytest.raises(error, match=message):
            PatchSampler(grey, 16, sigmas)
    with pytest.raises(TypeError, match=r"image 1 must be a float image in \[0, 1\], got dtype uint8 \(divide it "
                                        r"by its type's maximum, e.g. 255 for uint8\)"):
        PatchSampler([grey[0], np.round(255 * grey[1]).astype(np.uint8)], 16)
    with pytest.raises(ValueError, match=r"image 0 must have values in \[0, 1\], got 0 to 2\d\d"):
        PatchSampler([np.round(255 * grey[0])], 16)
    with pytest.raises(ValueError, match=r"colour.png must be a 2D grey image, got shape \(50, 50, 3\)"):
        PatchSampler([np.zeros((50, 50, 3))], 10, names=["colour.png"])
    with pytest.raises(ValueError, match="images is empty"):
        PatchSampler([], 10)
    with pytest.raises(ValueError, match="names must name each image once, got 1 names for 3 images"):
        PatchSampler(grey, 16, names=["a.png"])  # an IndexError where the second image was named
    sampler = PatchSampler(grey, 16, (0.1, 0.1))  # one noise level
    assert torch.all(sampler.batch(3, torch.Generator().manual_seed(0))[2] == 0.1)
    for size, error in [(0, ValueError), (-1, ValueError), (2.0, TypeError)]:
        with pytest.raises(error, match="batch: size must be"):
            sampler.batch(size, torch.Generator())


def test_validation_pairs_take_whole_noise_levels_and_a_positive_crop(images):
    from adareg_train.train import validation_pairs

    clean, noisy = validation_pairs(str(images), sigma=10 / 255, crop=16, count=1)[0]
    assert clean.shape == noisy.shape == (16, 16) and 5 / 255 < np.std(noisy - clean) < 15 / 255
    for sigma in (0.4 / 255, 10.4 / 255, 0.0, 25):  # 25: a level on the 0-255 scale, named as protocol_noisy's
        with pytest.raises(ValueError, match=r"sigma must be a whole positive level over 255 \(the noise protocol "
                                             r"uses integer levels"):
            validation_pairs(str(images), sigma=sigma, crop=16)
    with pytest.raises(ValueError, match="crop must be at least 1, got 0"):
        validation_pairs(str(images), crop=0)
    for count in (0, -1):  # no pairs, and all images but the last, without a word
        with pytest.raises(ValueError, match=f"count must be at least 1, got {count}"):
            validation_pairs(str(images), crop=16, count=count)
    with pytest.raises(TypeError, match="crop must be an int"):
        validation_pairs(str(images), crop=16.0)


def test_errors_reading_a_folder_name_its_option(tmp_path, images, capsys):
    from adareg_train.train import read_images

    with pytest.raises(FileNotFoundError, match=r"^validation: read_folder: folder .* does not exist"):
        read_images(str(tmp_path / "nowhere"), "validation")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"^data: read_folder: folder .* holds no \.png or \.tif images"):
        read_images(str(tmp_path / "empty"), "data")
    colour = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    pytest.importorskip("PIL.Image").fromarray(colour).save(images / "colour.png")
    with pytest.raises(ValueError, match=r"^data: .*colour.png"):
        read_images(str(images), "data")
    assert run_cli(tmp_path, images) == 2
    assert "adareg_train: error: data: " in capsys.readouterr().err


def test_learning_rate_schedules(images):
    halving = settings("crr", images, steps=100, lr=0.1)
    assert [train_module.learning_rate(halving, s) for s in (0, 59, 60, 79, 80, 99)] == \
        pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    decaying = settings("crr", images, steps=6000, lr=0.1, decay_every=500, decay_factor=0.75)
    assert [train_module.learning_rate(decaying, s) for s in (0, 499, 500, 1999, 5999)] == \
        pytest.approx([0.1, 0.1, 0.075, 0.1 * 0.75 ** 3, 0.1 * 0.75 ** 11])


def test_group_learning_rates_set_each_group_s_first_adam_step(tmp_path, images):
    """Adam's first update is lr * g / (|g| + eps): about each group's rate wherever its gradient is not tiny."""
    run = settings("sa-cnn", images, steps=1, lr=1e-2, group_lr={"bank": 0.0, "masks": 4e-2})
    train(run, tmp_path / "run", progress=False)
    start = dict(build("sa-cnn", TINY["sa-cnn"], seed=run.seed).named_parameters())
    after = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)["model"]
    steps = {name: (after[name] - value.detach()).abs() for name, value in start.items()}
    for name, rate in [("bank", 0.0), ("masks", 4e-2), ("lam", 1e-2)]:
        moved = torch.cat([step.flatten() for n, step in steps.items() if n.split(".")[0].startswith(name)])
        assert float(moved.max()) <= rate * (1 + 1e-9), name
        if rate:
            assert float(torch.quantile(moved, 0.5)) > 0.9 * rate, name
        else:
            assert float(moved.max()) == 0.0
    metadata = adareg.params.read(tmp_path / "run" / "sa-cnn.npz").metadata["training"]
    assert metadata["group_lr"] == {"bank": 0.0, "masks": 4e-2}
    assert metadata["optimizer"] == "Adam, learning rate 0.01, bank 0, masks 0.04, halved at 60% and 80% of the steps"


def test_the_l1_loss_is_the_mean_absolute_error_of_the_batch(images):
    run = settings("crr", images, loss="l1")
    model, _ = train_module.starting_model(run)
    sampler = PatchSampler(list(read_folder(images).values()), run.patch_size)
    generator = torch.Generator().manual_seed(5)
    clean, noisy, sigma = sampler.batch(run.batch_size, torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = np.mean(np.abs(model(noisy, sigma).numpy() - clean.numpy()))
    loss = train_module.training_step(model, train_module.adam(model, run), sampler, generator, run, run.lr)["loss"]
    assert float(loss) == pytest.approx(expected, rel=1e-10)


def test_a_time_limit_stops_exports_and_resumes_to_the_same_result(tmp_path, images, capsys):
    (tmp_path / "validation").mkdir()
    write_image(tmp_path / "validation" / "v.png", np.kron(read_folder(images)["im0"], np.ones((3, 3))))
    run = settings("crr", images, validation=str(tmp_path / "validation"), validate_every=5)
    whole = train(run, tmp_path / "whole", progress=False)
    stopped = train(run, tmp_path / "part", progress=False, max_seconds=1e-9)
    assert "stopped after step 1 of 6 at the time limit" in capsys.readouterr().err
    record = adareg.params.read(stopped).metadata
    assert record["training"]["steps_done"] == 1 and "crop96_psnr_sigma25" in record["validation"]
    assert torch.load(tmp_path / "part" / CHECKPOINT, weights_only=True)["step"] == 1
    resumed = train(run, tmp_path / "part", progress=False)
    a, b = adareg.params.read(whole).arrays, adareg.params.read(resumed).arrays
    for name in a:  # the stop's validation, which the whole run does not do, left ||W||'s warm start as it was
        np.testing.assert_array_equal(b[name], a[name], err_msg=name)
    with pytest.raises(ValueError, match="max_seconds must be positive"):
        train(run, tmp_path / "other", progress=False, max_seconds=0)


def test_validation_images_that_are_training_images_are_named(tmp_path, images, capsys):
    big = np.kron(read_folder(images)["im0"], np.ones((3, 3)))
    (tmp_path / "validation").mkdir()
    write_image(tmp_path / "validation" / "v.png", big)
    write_image(tmp_path / "validation" / "w.png", big[::-1])
    assert train_module.trained_on(train_module.read_images(str(images), "data"), str(tmp_path / "validation")) == []
    write_image(images / "copy.png", big)  # v.png under another name, among the training images
    run = settings("crr", images, validation=str(tmp_path / "validation"))
    train(run, tmp_path / "run", progress=False, max_seconds=1e-9)
    assert ("warning: 1 of the 2 validation images are training images too (v.png)"
            in " ".join(capsys.readouterr().err.split()))


def test_a_checkpoint_from_before_the_schedule_settings_resumes(tmp_path, images):
    train(settings("crr", images), tmp_path / "run", progress=False, max_seconds=1e-9)
    state = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)
    assert state["step"] == 1
    for name in ("loss", "decay_every", "decay_factor", "group_lr"):
        del state["settings"][name]
    for group in state["optimizer"]["param_groups"]:
        del group["lr_scale"]
    torch.save(state, tmp_path / "run" / CHECKPOINT)
    path = train(settings("crr", images), tmp_path / "run", progress=False)
    assert adareg.params.read(path).metadata["training"]["steps_done"] == 6


@pytest.mark.parametrize("changes, error, message", [
    ({"loss": "l2"}, ValueError, "loss must be one of 'mse', 'l1', got 'l2'"),
    ({"decay_every": 0}, ValueError, "decay_every must be at least 1"),
    ({"decay_every": 10, "decay_factor": 1.5}, ValueError, r"decay_factor must be in \(0, 1\], got 1.5"),
    ({"decay_factor": 0.5}, ValueError, r"decay_factor \(--decay-factor\) has no effect without --decay-every"),
    ({"group_lr": {"filters": 1e-3}}, ValueError, "crr has no parameter group 'filters'; its groups are bank, lam, "
                                                  "profile, scale"),
    ({"group_lr": {"bank": -1.0}}, ValueError, r"group_lr\['bank'\] must be non-negative"),
    ({"group_lr": {"bank": 0, "lam": 0, "profile": 0, "scale": 0}}, ValueError, "freezes every parameter group"),
    ({"group_lr": [("bank", 1.0)]}, TypeError, "group_lr must be a dict"),
])
def test_schedule_and_group_settings_are_checked(images, changes, error, message):
    with pytest.raises(error, match=message):
        settings("crr", images, **changes).check()


def test_command_line_schedule_options(tmp_path, images, capsys):
    assert run_cli(tmp_path, images, "--loss", "l1", "--group-lr", "profile=1e-4", "--group-lr", "bank=0",
                   "--decay-every", "500", "--max-minutes", "5") == 0
    training = adareg.params.read(tmp_path / "cli" / "crr.npz").metadata["training"]
    assert training["loss"].startswith("mean absolute error") and training["group_lr"] == {"profile": 1e-4, "bank": 0}
    assert training["optimizer"].endswith("bank 0, profile 0.0001, times 0.75 every 500 steps")
    for options, message in [(["--group-lr", "bank"], "--group-lr takes GROUP=LR, e.g. bank=5e-3, got 'bank'"),
                             (["--group-lr", "bank=1", "--group-lr", "bank=0"],  # the last silently won
                              "--group-lr gives group 'bank' twice (1 and 0)"),
                             (["--max-minutes", "0"], "--max-minutes must be positive, got 0"),
                             (["--decay-factor", "0.5"], "decay_factor (--decay-factor) has no effect")]:
        assert run_cli(tmp_path, images, "--no-resume", *options) == 2
        assert message in capsys.readouterr().err


def test_command_line_architecture_entries(tmp_path, images, capsys):
    """--architecture KEY=JSON changes single entries of the family's default; the file records the model trained."""
    assert run_cli(tmp_path, images, "--architecture", "bank_channels=[2, 3]", "--architecture",
                   "bank_kernels=[3,3]", "--architecture", "profile_knots=11", "--architecture",
                   "profile_grid=[-1.0, 0.2]") == 0
    file = adareg.params.read(tmp_path / "cli" / "crr.npz")
    assert file.metadata["architecture"] == {**MODELS["crr"].default_architecture, "bank_channels": [2, 3],
                                             "bank_kernels": [3, 3], "profile_knots": 11, "profile_grid": [-1.0, 0.2]}
    assert file.arrays["bank_1"].shape == (3, 2, 3, 3)
    for options, message in [(["--architecture", "channels=[4]"],
                              "--architecture 'channels=[4]': crr has no entry 'channels'; its entries are bank_"),
                             (["--architecture", "profile_knots=eleven"],
                              "--architecture takes KEY=JSON, e.g. bank_channels=[4,8,80], got 'profile_knots=eleven'"),
                             (["--architecture", "profile_knots=11", "--architecture", "profile_knots=21"],
                              "--architecture gives 'profile_knots' twice"),
                             (["--architecture", "lam_knots=3"],
                              "architecture['lam_knots'] must be 7 in adareg_train")]:
        assert run_cli(tmp_path, images, "--no-resume", *options) == 2
        assert message in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("bash") is None, reason="the device script is a bash script")
@pytest.mark.parametrize("stage, family, init, loss, group_lr, decay", [
    ("wcrr", "wcrr", "adareg/weights/wcrr.npz", "l1", {"profile": 1e-5}, (500, 0.75)),
    ("knots", "wcrr", "benchmarks/checkpoints/wcrr/wcrr.npz", "mse", {"bank": 0.0, "profile": 0.0}, (100, 0.5)),
    ("masks", "sa-cnn", "benchmarks/checkpoints/knots/wcrr.npz", "mse", {"bank": 0.0}, (500, 0.75)),
    ("joint", "sa-cnn", "adareg/weights/sa-cnn.npz", "mse", None, (500, 0.75)),
    ("wide", "wcrr", None, "l1", {"profile": 5e-5}, (500, 0.75)),
])
def test_the_device_script_s_training_stages_are_valid_commands(tmp_path, stage, family, init, loss, group_lr, decay):
    """benchmarks/device_session.sh's stages, printed by DRY_RUN, parse and pass the settings' checks."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DRY_RUN": "1", "DEVICE": "cpu", "OUT": str(tmp_path), "DEVDATA": str(tmp_path / "devdata")}
    printed = subprocess.run(["bash", str(root / "benchmarks" / "device_session.sh"), stage, "8"], env=env,
                             capture_output=True, text=True, check=True, timeout=60).stdout
    command = shlex.split(printed)
    assert command[:4] == ["python3", "-m", "adareg_train", "train"]
    args = cli.parser().parse_args(command[3:])
    run = cli.checked_settings(args)
    assert (run.family, run.loss, run.group_lr) == (family, loss, group_lr)
    assert (run.decay_every, run.decay_factor) == decay
    if init is None or stage == "wcrr":
        assert run.init == init and (init is None or (root / init).exists())
    else:  # the file chosen, copied to the path of every call: a stage resumed in the next call names the same
        copied = tmp_path / "devdata" / "init" / f"{stage}.npz"
        assert run.init == str(copied) and copied.read_bytes() == (root / init).read_bytes()
    assert args.out == str(tmp_path / stage) and args.max_minutes == 6.5
    if stage == "wide":
        assert run.architecture["bank_channels"] == [4, 8, 80]


@pytest.mark.parametrize("minutes", ["1.5", "1", "x"])
def test_the_device_script_refuses_minutes_its_stages_cannot_keep(tmp_path, minutes):
    """A training stage stops 1.5 minutes before MINUTES: 1.5 or less gave --max-minutes <= 0, refused by the
    training command only after the device had started (an audit)."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DRY_RUN": "1", "DEVICE": "cpu", "OUT": str(tmp_path), "DEVDATA": str(tmp_path / "devdata")}
    done = subprocess.run(["bash", str(root / "benchmarks" / "device_session.sh"), "wcrr", minutes], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and f"wcrr needs MINUTES above 1.5 (it stops 1.5 minutes early, to export), got " \
        f"{minutes}" in done.stderr and done.stdout == ""


def test_a_checkpoint_s_export_validates_its_own_step(tmp_path, images, monkeypatch, capsys):
    # a run killed after the checkpoint of a step it had not validated (validations every 2 steps, checkpoints
    # every 3) exported the last validation it had, step 2's, as the figure of step 3's parameters
    (tmp_path / "validation").mkdir()
    write_image(tmp_path / "validation" / "v.png", np.kron(read_folder(images)["im0"], np.ones((3, 3))))
    run = settings("crr", images, validation=str(tmp_path / "validation"), validate_every=2)
    steps = 0
    step = train_module.training_step

    def killed_after_step_4(*args, **kwargs):
        nonlocal steps
        steps += 1
        if steps == 5:
            raise KeyboardInterrupt
        return step(*args, **kwargs)

    monkeypatch.setattr(train_module, "training_step", killed_after_step_4)
    with pytest.raises(KeyboardInterrupt):
        train(run, tmp_path / "killed", progress=False)
    state = torch.load(tmp_path / "killed" / CHECKPOINT, weights_only=True)
    assert state["step"] == 3 and [h["step"] for h in state["history"] if "validation_psnr" in h] == [2]
    model = build("crr", TINY["crr"], seed=0).to("cpu", torch.float64)
    model.load_state_dict(state["model"])
    pairs = train_module.validation_pairs(run.validation)
    expected = train_module.validate(model, pairs, 25 / 255, "cpu")
    assert expected != state["history"][1]["validation_psnr"]  # step 3's parameters score otherwise than step 2's
    exported = adareg.params.read(export_checkpoint(tmp_path / "killed")).metadata
    assert exported["validation"] == {"crop96_psnr_sigma25": expected}
    assert exported["training"]["steps_done"] == 3
    shutil.rmtree(tmp_path / "validation")  # exported elsewhere: no figure rather than step 2's
    (tmp_path / "killed" / "crr.npz").unlink()
    assert adareg.params.read(export_checkpoint(tmp_path / "killed")).metadata["validation"] == {}
    assert "exported without a validation figure: step 3 was not validated" in capsys.readouterr().err


def test_paths_and_numpy_scalars_in_the_settings_give_a_resumable_run(tmp_path, images):
    # a pathlib.Path data folder failed at the export after every step, np.int64 steps made a checkpoint that
    # torch.load(weights_only=True) refused: neither could be resumed or exported
    plain = settings("crr", images, steps=3)
    whole = train(plain, tmp_path / "whole", progress=False)
    numpy = settings("crr", Path(images), steps=np.int64(3), lr=np.float64(plain.lr), batch_size=np.int32(4),
                     architecture={**TINY["crr"], "bank_channels": [np.int64(2), 4]})
    train(numpy, tmp_path / "part", progress=False, max_seconds=1e-9)
    resumed = train(numpy, tmp_path / "part", progress=False)
    assert export_checkpoint(tmp_path / "part") == resumed
    a, b = adareg.params.read(whole), adareg.params.read(resumed)
    assert b.metadata["training"]["data"] == str(images)
    for name in a.arrays:
        np.testing.assert_allclose(b.arrays[name], a.arrays[name], rtol=1e-12, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("family, changes, message", [
    ("crr", {"boundary": "zero"}, "architecture['boundary'] must be 'reflect' in adareg_train (the torch filter "
                                  "bank pads by reflection), got 'zero'"),
    ("crr", {"lam_knots": 3}, "architecture['lam_knots'] must be 7 in adareg_train"),
    ("crr", {"scale_knots": 4}, "architecture['scale_knots'] must be 7 in adareg_train"),
    ("crr", {"bank_kernels": [4, 3]}, "architecture['bank_kernels'] must hold odd kernel sizes, got [4, 3]"),
    ("crr", {"bank_channels": [2]}, "bank_channels and bank_kernels must have one entry per layer"),
    ("sa-cnn", {"mask_channels": [4, 3]}, "the last mask layer as many channels as the filter bank"),
    ("sa-cnn", {"activation": "tanh"}, "architecture['activation'] must be one of 'leaky_relu', 'relu'"),
])
def test_an_architecture_the_run_could_not_train_or_export_is_refused_before_any_step(tmp_path, images, family,
                                                                                        changes, message):
    # these trained every step, then failed at the export or built another model than the one trained
    run = settings(family, images, architecture={**TINY[family], **changes})
    with pytest.raises(ValueError, match=re.escape(message)):
        train(run, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name, message", [
    ("im3.png", r"checkpoint.pt was written when .*images held 3 training images; it holds 4 now: restore them"),
    # one image replaced by another: only the count was compared, and the resumed run mixed two data sets
    ("im1.png", r"checkpoint.pt was written with other training images in .*images \(as many, but other names or "
                r"contents\): restore them"),
])
def test_resume_refuses_a_data_folder_whose_images_changed(tmp_path, images, name, message):
    run = settings("crr", images, steps=3)
    train(run, tmp_path / "run", progress=False, max_seconds=1e-9)
    write_image(images / name, np.full((32, 32), 0.5))
    with pytest.raises(ValueError, match=message):
        train(run, tmp_path / "run", progress=False)


def test_faint_training_images_are_refused(tmp_path, images, capsys):
    """12-bit values in a 16-bit PNG (read as [0, 1/16]) trained without a word on near-black images; the
    reader's warning of 12-bit data (since 2026-12-08) refuses them first, the floor any other faint image."""
    write_image(images / "faint.png", np.full((32, 32), 0.05), bits=16)
    assert run_cli(tmp_path, images) == 2
    err = capsys.readouterr().err
    assert f"data: {images / 'faint.png'}: uint16 values up to 3277, below 4096: 12-bit data stored in 16 bits?" in err
    assert not (tmp_path / "cli").exists()
    write_image(images / "faint.png", np.full((32, 32), 0.05), bits=8)
    assert run_cli(tmp_path, images) == 2
    err = capsys.readouterr().err
    assert f"data: {images / 'faint.png'} peaks at 0.05098, where the models are trained on intensities" in err
    assert not (tmp_path / "cli").exists()


def test_a_decay_factor_that_never_applies_is_refused(tmp_path, images, capsys):
    """--decay-factor with --decay-every past the run's steps was recorded in the file but never applied."""
    assert run_cli(tmp_path, images, "--decay-every", "5000", "--decay-factor", "0.5") == 2
    assert "decay_factor (--decay-factor) has no effect with --decay-every 5000 of at least the run's 1 steps" in \
        capsys.readouterr().err
    assert run_cli(tmp_path, images, "--decay-every", "5000") == 0  # a constant rate: no decay asked for


def test_a_checkpoint_whose_arrays_do_not_fit_its_settings_is_named(tmp_path, images):
    """torch's size mismatch came without the file's name on resume, and as a RuntimeError traceback on export."""
    run = tmp_path / "run"
    train(settings("crr", images, steps=3), run, progress=False)
    state = torch.load(run / CHECKPOINT, weights_only=True)
    state["model"]["profile_raw"] = state["model"]["profile_raw"][:, :-1]
    torch.save(state, run / CHECKPOINT)
    for call in (lambda: train(settings("crr", images, steps=3), run, progress=False), lambda: export_checkpoint(run)):
        with pytest.raises(ValueError, match=rf"{run / CHECKPOINT}: its model state does not fit the model of its "
                                             r"settings \(.*profile_raw.*\); use another --out"):
            call()


def test_resume_takes_another_spelling_of_the_init_file_and_a_bool_only(tmp_path, images, monkeypatch):
    """--init ./f.npz was refused against a checkpoint written with --init f.npz; resume="no" resumed."""
    source = train(settings("crr", images, steps=1), tmp_path / "source", progress=False)
    monkeypatch.chdir(source.parent)
    run = settings("crr", images, steps=3, init=source.name)
    train(run, tmp_path / "run", progress=False, max_seconds=1e-9)
    train(dataclasses.replace(run, init=f"./{source.name}"), tmp_path / "run", progress=False)
    with pytest.raises(TypeError, match="resume must be True or False, got 'no'"):
        train(run, tmp_path / "run", resume="no", progress=False)


def test_a_torch_checkpoint_under_another_suffix_is_named_as_one(tmp_path, images, capsys):
    train(settings("crr", images, steps=1), tmp_path / "run", progress=False)
    shutil.copy(tmp_path / "run" / CHECKPOINT, tmp_path / "renamed.npz")
    assert run_cli(tmp_path, images, "--init", str(tmp_path / "renamed.npz")) == 2
    assert "torch.save writes such archives: export a training checkpoint with python -m adareg_train export" in \
        capsys.readouterr().err
