"""The adareg command line, end to end through a subprocess on small inputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import adareg

Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed (pip install adareg[examples])")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "adareg.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    clean = np.kron(0.2 + 0.6 * rng.random((4, 4)), np.ones((16, 16)))  # piecewise constant, away from 0 and 1
    noisy = np.clip(clean + 25 / 255 * rng.standard_normal(clean.shape), 0, 1)
    Image.fromarray((noisy * 255).round().astype(np.uint8)).save(folder / "noisy8.png")
    Image.fromarray((noisy * 65535).round().astype(np.uint16)).save(folder / "noisy16.png")
    np.save(folder / "noisy.npy", noisy)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    return folder, clean


def assert_fails_cleanly(out: subprocess.CompletedProcess, output: Path, words: str) -> None:
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], out.stderr  # one line, no traceback
    assert not output.exists()
    assert not list(output.parent.glob(f".{output.name}*"))  # no temporary file left


@pytest.mark.parametrize("name, suffix, dtype", [("noisy8.png", ".png", np.uint8), ("noisy16.png", ".tif", np.uint16),
                                                 ("noisy.npy", ".npy", np.float64)])
def test_denoise_keeps_the_format_and_improves_the_image(files, name, suffix, dtype):
    folder, clean = files
    output = folder / f"out-{name}{suffix}"
    out = run("denoise", name, "--sigma", "25", "-o", output.name, "--quiet", cwd=folder)
    assert out.returncode == 0, out.stderr
    if suffix == ".npy":
        result, noisy = np.load(output), np.load(folder / name)
    else:
        result = np.asarray(Image.open(output))
        assert result.dtype == dtype
        scale = 255.0 if dtype == np.uint8 else 65535.0
        result, noisy = result / scale, np.asarray(Image.open(folder / name)) / scale
    assert adareg.psnr(result, clean) > adareg.psnr(noisy, clean) + 3


@pytest.mark.parametrize(
    "args, words",
    [
        (["denoise", "missing.png", "--sigma", "25"], "no such file"),
        (["denoise", "corrupt.png", "--sigma", "25"], "not a readable image"),
        (["denoise", "noisy8.png", "--sigma", "300"], "--sigma must lie in [0, 255]"),
        (["denoise", "noisy8.png", "--sigma", "25", "--model", "nosuch"], "unknown model 'nosuch'"),
        (["denoise", "noisy8.png"], "--sigma is required"),
    ],
)
def test_denoise_errors(files, args, words):
    folder, _ = files
    output = folder / "never.png"
    assert_fails_cleanly(run(*args, "-o", output.name, cwd=folder), output, words)


def test_ct_fbp_and_tv(files):
    pytest.importorskip("astra")
    from adareg.operators import RayTransform

    folder, _ = files
    phantom = adareg.data.shepp_logan((32, 32))
    H = RayTransform((32, 32), 40)
    np.save(folder / "sino.npy", H(phantom))
    for model, extra in (("fbp", []), ("tv", ["--lam", "1e-2"])):
        output = folder / f"ct-{model}.npy"
        out = run("ct", "sino.npy", "--angles", "40", "--image-size", "32", "--model", model, *extra, "-o",
                  output.name, "--quiet", cwd=folder)
        assert out.returncode == 0, out.stderr
        assert adareg.psnr(np.load(output), phantom) > 15
    output = folder / "ct-bad.npy"
    assert_fails_cleanly(run("ct", "sino.npy", "--angles", "30", "-o", output.name, cwd=folder), output,
                         "has 40 rows but --angles is 30")
    assert_fails_cleanly(run("ct", "sino.npy", "--angles", "40", "--image-size", "32", "--model", "sa-cnn", "-o",
                             output.name, cwd=folder), output, "--lam is required: no ct-parallel-40- preset")


def test_denoise_writes_the_masks_of_sa_cnn(files):
    """The default model is sa-cnn; --masks writes its weights at the result: C masks in [0, 1]."""
    folder, clean = files
    output, masks = folder / "masked.npy", folder / "masks.npy"
    out = run("denoise", "noisy.npy", "--sigma", "25", "--masks", masks.name, "-o", output.name, "--quiet",
              cwd=folder)
    assert out.returncode == 0, out.stderr
    weights = np.load(masks)
    reg = adareg.load("sa-cnn")
    assert weights.shape == (reg.bank.channels, *clean.shape)
    np.testing.assert_allclose(weights, reg.weights(np.load(output), 25 / 255), atol=1e-6)
    assert_fails_cleanly(run("denoise", "noisy.npy", "--sigma", "25", "--model", "tv", "--masks", "m.npy", "-o",
                             "never.npy", cwd=folder), folder / "never.npy", "has no masks")


def test_mri_zero_filled_and_errors(files):
    pytest.importorskip("sigpy")
    from adareg import mri
    from adareg.operators import CartesianMRI

    folder, _ = files
    image = adareg.data.shepp_logan((32, 32))
    maps = mri.birdcage_maps((32, 32), 4)
    mask = mri.cartesian_mask((32, 32), 2, 0.25, seed=0)
    np.save(folder / "kspace.npy", CartesianMRI(mask, maps, real=True)(image))
    np.save(folder / "mask.npy", mask)
    np.save(folder / "maps.npy", maps)
    output = folder / "zf.npy"
    out = run("mri", "kspace.npy", "--mask", "mask.npy", "--maps", "maps.npy", "-o", output.name, cwd=folder)
    assert out.returncode == 0, out.stderr
    assert np.load(output).shape == (32, 32)
    np.save(folder / "wrong-mask.npy", mask[:16])
    output = folder / "never.npy"
    assert_fails_cleanly(run("mri", "kspace.npy", "--mask", "wrong-mask.npy", "--maps", "maps.npy", "-o",
                             output.name, cwd=folder), output, "mask of shape")


def test_models_and_help(files):
    folder, _ = files
    out = run("models", cwd=folder)
    assert out.returncode == 0
    assert sorted(line.split()[0] for line in out.stdout.splitlines()) == ["crr", "sa-b", "sa-cnn", "wcrr"]
    out = run("--help", cwd=folder)
    assert out.returncode == 0 and all(word in out.stdout for word in ("denoise", "ct", "mri", "demo", "models"))


def test_demo_writes_its_figure(files):
    pytest.importorskip("matplotlib")
    pytest.importorskip("skimage")
    folder, _ = files
    out = run("demo", "denoise", "--quiet", "-o", "demo.png", cwd=folder)
    assert out.returncode == 0, out.stderr
    assert (folder / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
