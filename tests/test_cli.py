"""The adareg command line, end to end through a subprocess on small inputs."""

from __future__ import annotations

import errno
import importlib.metadata
import os
import stat
import subprocess
import sys
import warnings
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
    np.save(folder / "noisy32.npy", noisy.astype(np.float32))
    np.save(folder / "noisy32be.npy", noisy.astype(">f4"))
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    return folder, clean


def assert_fails_cleanly(out: subprocess.CompletedProcess, output: Path, words: str) -> None:
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], out.stderr  # one line, no traceback
    assert not output.exists()
    assert not list(output.parent.glob(f".{output.name}*"))  # no temporary file left


@pytest.mark.parametrize("name, suffix, dtype", [("noisy8.png", ".png", np.uint8), ("noisy16.png", ".tif", np.uint16),
                                                 ("noisy.npy", ".npy", np.float64),
                                                 ("noisy32.npy", ".npy", np.float32),  # written as float64 before
                                                 ("noisy32be.npy", ".npy", np.float32)])
def test_denoise_keeps_the_format_and_improves_the_image(files, name, suffix, dtype):
    folder, clean = files
    output = folder / f"out-{name}{suffix}"
    out = run("denoise", name, "--sigma", "25", "-o", output.name, "--quiet", cwd=folder)
    assert out.returncode == 0, out.stderr
    if suffix == ".npy":
        result, noisy = np.load(output), np.load(folder / name)
        assert result.dtype == dtype
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
        (["denoise", "noisy8.png", "--sigma", "300"], "--sigma must lie in (0, 255]"),
        (["denoise", "noisy8.png", "--sigma", "0", "--model", "tv"], "--sigma must lie in (0, 255]"),
        (["denoise", "noisy8.png", "--sigma", "25", "--model", "nosuch"], "unknown model 'nosuch'"),
        # the command's own methods were not named beside the shipped models (an audit, 2026-12-06)
        (["denoise", "noisy8.png", "--sigma", "25", "--model", "TV"], "--model 'TV': the command's own methods are "
                                                                      "'tv'; unknown model 'TV'"),
        (["denoise", "noisy8.png"], "--sigma is required"),
        # the library's advice, "or use device='cpu'" (an audit, 2026-12-07)
        pytest.param(["denoise", "noisy8.png", "--sigma", "25", "--device", "gpu"],
                     "--device gpu: CuPy with a CUDA device is not available here; install it with `pip install "
                     "adareg[gpu]` on a machine with an NVIDIA GPU, or use --device cpu",
                     marks=pytest.mark.skipif(adareg.gpu_available(), reason="a GPU is available")),
    ],
)
def test_denoise_errors(files, args, words):
    folder, _ = files
    output = folder / "never.png"
    assert_fails_cleanly(run(*args, "-o", output.name, cwd=folder), output, words)


def test_outputs_are_checked_before_the_input_is_read(files):
    """A bad output suffix is reported even though the input is missing: it was checked first."""
    folder, _ = files
    assert_fails_cleanly(run("denoise", "missing.png", "--sigma", "25", "-o", "out.jpg", cwd=folder),
                         folder / "out.jpg", "out.jpg: the output must end in .png, .tif, .tiff, .npy")
    assert_fails_cleanly(run("ct", "missing.npy", "--angles", "10", "-o", "out.png", cwd=folder), folder / "out.png",
                         "out.png: the output must end in .npy")


def test_a_volume_denoised_to_an_image_file_is_named_as_a_bad_output(files):
    """It was named as an input adareg does not read ("not a volume file; adareg reads .dcm, ...": an audit,
    2026-12-06), as `adareg ct` named it right; and it says why a volume output is asked for (a colour image saved as
    .npy, (rows, columns, 3), got "not a volume output" alone, an audit, 2026-12-07)."""
    folder, _ = files
    np.save(folder / "volume.npy", np.zeros((3, 16, 16), np.float32))
    assert_fails_cleanly(run("denoise", "volume.npy", "--sigma", "25", "--model", "tv", "--lam", "0.1", "-o", "v.png",
                             cwd=folder), folder / "v.png", "volume.npy is read as a volume (slices), so the output is "
                                                            "one: v.png: not a volume output; adareg writes a volume to")


def test_the_output_may_not_be_the_input(files):
    folder, _ = files
    before = (folder / "noisy8.png").read_bytes()
    out = run("denoise", "noisy8.png", "--sigma", "25", "-o", "./noisy8.png", cwd=folder)
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert "./noisy8.png: the output is the input noisy8.png" in out.stderr
    assert (folder / "noisy8.png").read_bytes() == before


@pytest.mark.parametrize("masks", ["same.npy", "./same.npy"])
def test_an_output_given_twice_is_refused_before_any_work(files, masks):
    """--masks naming the file of -o would overwrite the result with the masks."""
    folder, _ = files
    out = run("denoise", "noisy.npy", "--sigma", "25", "-o", "same.npy", "--masks", masks, "--quiet", cwd=folder)
    assert_fails_cleanly(out, folder / "same.npy", f"--masks {masks} and --output same.npy are the same file")


@pytest.fixture(scope="module")
def small_inputs(files):
    """A zero sinogram (10 angles, 23 detectors), and one-coil k-space with its mask, in the files' folder."""
    folder, _ = files
    np.save(folder / "zeros-sino.npy", np.zeros((10, 23)))
    np.save(folder / "k8.npy", np.ones((8, 8), np.complex64))
    np.save(folder / "m8.npy", np.ones((8, 8), bool))
    return folder


CT = ["ct", "zeros-sino.npy", "--angles", "10"]
MRI = ["mri", "k8.npy", "--mask", "m8.npy"]


@pytest.mark.parametrize("args, words", [
    ([*CT, "--masks", "m.npy"], "--masks does not apply to --model fbp"),
    ([*CT, "--lam", "0.1"], "--lam does not apply to --model fbp"),
    ([*CT, "--sigma", "25"], "--sigma does not apply to --model fbp"),
    ([*CT, "--preset", "ct-parallel-60-1e+04-128"], "--preset does not apply to --model fbp"),
    ([*CT, "--source-distance", "40"], "--source-distance applies to --geometry fan only"),
    ([*CT, "--detector-distance", "40"], "--detector-distance applies to --geometry fan only"),
    ([*CT, "--image-size", "0"], "--image-size must lie in [1, 16384], got 0"),
    ([*CT, "--model", "tv", "--lam", "0.1", "--sigma", "25"], "--sigma does not apply to --model tv"),
    ([*CT, "--model", "tv", "--lam", "0.1", "--preset", "ct-parallel-60-1e+04-128"],
     "--preset does not apply with --lam"),
    ([*CT, "--photons", "1e6"], "--photons does not apply to --model fbp"),
    ([*CT, "--model", "tv", "--lam", "0.1", "--photons", "1e6"], "--photons scales a preset's lam: it does not apply "
     "with --lam"),
    ([*MRI, "--noise", "0.03"], "--noise does not apply to --model zero-filled"),
    ([*MRI, "--model", "sense", "--noise", "0.03"], "--noise does not apply to --model sense"),
    ([*MRI, "--lam", "0.1"], "--lam does not apply to --model zero-filled"),
    ([*MRI, "--sigma", "25"], "--sigma does not apply to --model zero-filled"),
    ([*MRI, "--preset", "mri-cartesian-8-x4-0.01-128"], "--preset does not apply to --model zero-filled"),
    ([*MRI, "--masks", "m.npy"], "--masks does not apply to --model zero-filled"),
    ([*MRI, "--space", "real"], "--space does not apply to --model zero-filled"),  # was the real part, x < 0 kept
    ([*MRI, "--model", "sense", "--space", "real"], "--space does not apply to --model sense"),
    ([*MRI, "--model", "sense", "--sigma", "25"], "--sigma does not apply to --model sense"),
    ([*MRI, "--model", "sense", "--masks", "m.npy"], "--masks does not apply to --model sense"),
    (["denoise", "noisy.npy", "--model", "tv", "--lam", "0.1", "--sigma", "25"],
     "--sigma does not apply to --model tv with --lam"),
])
def test_options_without_effect_are_refused(small_inputs, args, words):
    output = small_inputs / "never.npy"
    assert_fails_cleanly(run(*args, "-o", output.name, "--quiet", cwd=small_inputs), output, words)
    assert not (small_inputs / "m.npy").exists()


def test_a_flag_s_bad_value_is_named_with_the_flag(small_inputs):
    # the messages named neither --sigma nor --preset, and sent a parameter file's user to --preset, which has none
    ct = [*CT, "--pixel-size", f"1/{adareg.operators.ct.fitting_image_size(23)}"]  # the presets' units
    (small_inputs / "mine.npz").write_bytes((Path(adareg.__file__).parent / "weights" / "wcrr.npz").read_bytes())
    output = small_inputs / "never.npy"
    for args, words in [(["denoise", "noisy.npy", "--sigma", "40"], "--sigma 40: sa-cnn: sigma = 0.156863 (40/255)"),
                        ([*ct, "--model", "tv", "--preset", "ct-parallel-10-nosuch"],
                         "--preset ct-parallel-10-nosuch: preset: no presets for the acquisition"),
                        ([*ct, "--model", "mine.npz"], "presets are for the shipped models and tv: a parameter file "
                         "needs --lam (and --sigma)")]:
        assert_fails_cleanly(run(*args, "-o", output.name, cwd=small_inputs), output, words)


def test_tv_denoising_with_lam_needs_no_sigma(files):
    """TV takes no noise level: --lam 0.8 sigma alone gives the result of --sigma alone (its default lam)."""
    folder, _ = files
    out = run("denoise", "noisy.npy", "--model", "tv", "--lam", repr(0.8 * 25 / 255), "-o", "tv-lam.npy", "--quiet",
              cwd=folder)
    assert out.returncode == 0, out.stderr
    out = run("denoise", "noisy.npy", "--model", "tv", "--sigma", "25", "-o", "tv-sigma.npy", "--quiet", cwd=folder)
    assert out.returncode == 0, out.stderr
    np.testing.assert_array_equal(np.load(folder / "tv-lam.npy"), np.load(folder / "tv-sigma.npy"))
    assert_fails_cleanly(run("denoise", "noisy.npy", "--model", "tv", "-o", "never.npy", cwd=folder),
                         folder / "never.npy", "--sigma is required with --model tv")


def test_outputs_follow_the_umask_and_keep_a_replaced_files_mode(files):
    folder, _ = files
    output = folder / "moded.png"
    command = [sys.executable, "-m", "adareg.cli", "denoise", "noisy8.png", "--sigma", "25", "--model", "tv", "-o",
               output.name, "--quiet"]
    done = subprocess.run(command, cwd=folder, capture_output=True, timeout=300, preexec_fn=lambda: os.umask(0o027))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(output.stat().st_mode) == 0o640
    output.chmod(0o604)
    assert run(*command[3:], cwd=folder).returncode == 0
    assert stat.S_IMODE(output.stat().st_mode) == 0o604


def test_a_sigma_on_the_wrong_scale_is_warned_about(files):
    folder, _ = files
    out = run("denoise", "noisy8.png", "--sigma", "0.098", "--model", "tv", "-o", "tiny.png", "--quiet", cwd=folder)
    assert out.returncode == 0
    assert out.stderr.splitlines() == [line for line in out.stderr.splitlines() if line.startswith("adareg: warning")]
    assert "--sigma 0.098 is on the 0-255 scale" in out.stderr and "give --sigma 25" in out.stderr


def test_values_that_the_output_box_cuts_off_are_warned_about(files):
    # a zero-mean image lies within the reader's [-0.5, 1.5], but half of it is below the output's [0, 1]
    folder, clean = files
    np.save(folder / "centred.npy", clean - 0.5)
    out = run("denoise", "centred.npy", "--sigma", "5", "--model", "tv", "-o", "centred-tv.npy", "--quiet", cwd=folder)
    assert out.returncode == 0, out.stderr
    below = int(np.count_nonzero(clean - 0.5 < -4 * 5 / 255))
    assert f"centred.npy: {below} of 4096 values lie more than 4 sigma (0.0784) beyond [0, 1]" in out.stderr
    out = run("denoise", "noisy.npy", "--sigma", "5", "--model", "tv", "-o", "noisy-tv.npy", "--quiet", cwd=folder)
    assert out.returncode == 0 and "beyond [0, 1]" not in out.stderr


def test_unexpected_errors_are_one_line_without_debug(files, monkeypatch, capsys):
    from adareg import cli, io

    def broken(path):
        raise KeyError("a bug")

    monkeypatch.setattr(io, "read_image", broken)
    folder, _ = files
    assert cli.main(["denoise", str(folder / "noisy8.png"), "--sigma", "25", "-o", str(folder / "never.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "KeyError: 'a bug'" in err and "--debug" in err
    with pytest.raises(KeyError):
        cli.main(["denoise", str(folder / "noisy8.png"), "--sigma", "25", "-o", str(folder / "never.png"), "--debug"])


@pytest.mark.parametrize("command", [
    ["denoise", "noisy.npy", "--sigma", "25"],
    ["mri", "kspace.npy", "--mask", "mask.npy", "--maps", "maps.npy", "--model", "sa-cnn"],
])
def test_a_failed_masks_write_leaves_no_output(files, command, monkeypatch, capsys):
    """The result and --masks are written together: a run whose second file could not be written left its first
    behind, with exit status 1 (an audit, 2026-12-06)."""
    from adareg import cli

    folder, _ = files
    monkeypatch.chdir(folder)
    if command[0] == "mri":
        pytest.importorskip("sigpy")
        from adareg.operators import CartesianMRI

        image = 0.2 + 0.6 * adareg.data.shepp_logan((32, 32))
        maps, mask = adareg.mri.birdcage_maps((32, 32), 4), adareg.mri.cartesian_mask((32, 32), 2, 0.25, seed=0)
        np.save(folder / "kspace.npy", CartesianMRI(mask, maps, real=True)(image))
        np.save(folder / "mask.npy", mask)
        np.save(folder / "maps.npy", maps)
    output, masks = Path(f"kept-{command[0]}.npy"), Path(f"kept-masks-{command[0]}.npy")
    np.save(output, np.zeros(3))  # an earlier run's files, which a failed run must leave as they were
    np.save(masks, np.zeros(3))
    save = np.save
    argv = [*command, "--masks", str(masks), "-o", str(output), "--quiet"]
    for failing in (masks, output):  # denoise wrote the result first, mri the masks

        def full_disk(file, array, **options):
            if Path(file.name).name.startswith(f".{failing.name}."):  # the file's temporary twin
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            save(file, array, **options)

        monkeypatch.setattr(np, "save", full_disk)
        assert cli.main(argv) == 1
        assert f"cannot write {failing}: {os.strerror(errno.ENOSPC)}" in capsys.readouterr().err
        np.testing.assert_array_equal(np.load(output), np.zeros(3))
        np.testing.assert_array_equal(np.load(masks), np.zeros(3))
        assert not list(folder.glob(".kept-*"))  # no temporary file left
    monkeypatch.setattr(np, "save", save)
    assert cli.main(argv) == 0
    assert np.load(output).shape == {"denoise": (64, 64), "mri": (32, 32)}[command[0]]
    assert np.load(masks).shape[0] == adareg.load("sa-cnn").bank.channels


def test_non_convergence_is_reported_even_when_quiet(capsys):
    from adareg import cli
    from adareg.solvers import History, Result

    args = cli.parser().parse_args(["ct", "s.npy", "--angles", "3", "-o", "x.npy", "--quiet"])
    cli._report(args, Result(x=None, converged=False, iterations=500, history=History(), message="stopped by cap"))
    err = capsys.readouterr().err
    assert err == "adareg ct: warning: the solver did not converge (stopped by cap); the output is its last iterate\n"
    cli._report(args, Result(x=None, converged=True, iterations=5, history=History(), message="converged"))
    assert capsys.readouterr().err == ""


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
    assert_fails_cleanly(run("ct", "sino.npy", "--angles", "40", "--image-size", "100000", "-o", output.name,
                             cwd=folder), output, "--image-size must lie in [1, 16384], got 100000")
    # without --lam: the model's preset for 60 parallel-beam angles at the nearest image size, said on stderr;
    # the presets' units are an image spanning one unit (pixel size 1/N)
    H60 = RayTransform((32, 32), 60, pixel_size=1 / 32)
    np.save(folder / "sino60.npy", H60(phantom))
    preset_output = folder / "ct-preset.npy"
    # (--pixel-size 1/32 as the error below asks for it: refused by the parser before 2026-12-06)
    out = run("ct", "sino60.npy", "--angles", "60", "--image-size", "32", "--pixel-size", "1/32", "--model", "tv",
              "-o", preset_output.name, cwd=folder)
    smallest = min((a for a in adareg.presets.acquisitions() if a.startswith("ct-parallel-60-")),
                   key=lambda a: int(a.rsplit("-", 1)[1]))
    lam = adareg.presets.preset(smallest, "tv")["lam"]
    said = f"adareg ct: lam {lam:.3g} from the preset {smallest} (tuned for 10000 photons per ray: give --photons "
    assert out.returncode == 0 and said in out.stderr, out.stderr
    # a scan of 1e6 photons per ray got the preset of 1e4 as it was, 6.5 dB below its scaled lam (64 x 64 head, an
    # audit, 2026-12-08): --photons scales it (tests/test_presets.py checks the scaling's gain)
    out = run("ct", "sino60.npy", "--angles", "60", "--image-size", "32", "--pixel-size", "1/32", "--model", "tv",
              "--photons", "1e6", "-o", preset_output.name, cwd=folder)
    said = f"adareg ct: lam {lam / 100:.3g} from the preset {smallest}, scaled from its 10000 photons per ray to "
    assert out.returncode == 0 and f"{said}--photons 1e+06" in out.stderr, out.stderr
    out = run("ct", "sino60.npy", "--angles", "60", "--image-size", "32", "--pixel-size", "1/32", "--model", "tv",
              "-o", preset_output.name, cwd=folder)
    fbp_psnr = adareg.psnr(adareg.ct.fbp(H60, H60(phantom), window="hann"), phantom)
    assert adareg.psnr(np.load(preset_output), phantom) > fbp_psnr + 3
    assert "reaches" not in out.stderr
    np.save(folder / "sino60-dim.npy", 0.01 * H60(phantom))  # an image in [0, 0.01]: the preset is far off
    out = run("ct", "sino60-dim.npy", "--angles", "60", "--image-size", "32", "--pixel-size", "0.03125", "--model",
              "tv", "-o", preset_output.name, cwd=folder)
    assert out.returncode == 0 and "sino60-dim.npy: its FBP reaches 0.00" in out.stderr, out.stderr
    # at the default pixel size 1 the preset's lam is for line integrals 32 times smaller: refused, not used
    assert_fails_cleanly(run("ct", "sino60.npy", "--angles", "60", "--image-size", "32", "--model", "tv", "-o",
                             output.name, cwd=folder), output,
                         "--pixel-size 1/32 = 0.03125 here), but --pixel-size 1 makes it 32 units")
    # a crop (--image-size below the 32 the detector row covers) in the presets' units was refused, and the advice,
    # --pixel-size 1/16, halved every value of the image (an audit, 2026-12-08): the field of view is the row's
    out = run("ct", "sino60.npy", "--angles", "60", "--image-size", "16", "--pixel-size", "1/32", "--model", "tv",
              "-o", preset_output.name, cwd=folder)
    assert out.returncode == 0, out.stderr
    assert_fails_cleanly(run("ct", "sino60.npy", "--angles", "60", "--image-size", "16", "--pixel-size", "1/16",
                             "--model", "tv", "-o", output.name, cwd=folder), output,
                         "--pixel-size 1/32 = 0.03125 here), but --pixel-size 0.0625 makes it 2 units")
    # a preset named for another scan is refused; --sigma is said to be the user's
    assert_fails_cleanly(run("ct", "sino60.npy", "--angles", "60", "--pixel-size", "0.03125", "--model", "tv",
                             "--preset", "mri-cartesian-8-x4-0.01-128", "-o", output.name, cwd=folder), output,
                         "--preset mri-cartesian-8-x4-0.01-128 is not for this scan, whose presets are named "
                         "ct-parallel-60-")
    out = run("ct", "sino60.npy", "--angles", "60", "--image-size", "32", "--pixel-size", "0.03125", "--model", "crr",
              "--sigma", "5", "-o", preset_output.name, cwd=folder)
    assert out.returncode == 0 and ", sigma 5/255 (--sigma)" in out.stderr, out.stderr
    # the preset's own sigma is said on --sigma's 0-255 scale, so it can be given back as --sigma
    out = run("ct", "sino60.npy", "--angles", "60", "--image-size", "32", "--pixel-size", "0.03125", "--model", "crr",
              "-o", preset_output.name, cwd=folder)
    sigma = adareg.presets.preset(smallest, "crr")["sigma"]
    assert out.returncode == 0 and f", sigma {255 * sigma:.3g}/255\n" in out.stderr, out.stderr
    sinogram = np.load(folder / "sino.npy")
    sinogram[3, 5] = np.nan
    np.save(folder / "sino-nan.npy", sinogram)
    assert_fails_cleanly(run("ct", "sino-nan.npy", "--angles", "40", "-o", output.name, cwd=folder), output,
                         "sino-nan.npy contains 1 NaN or Inf value; expected finite values")


def test_an_iterative_ct_model_starts_from_the_fbp_of_window(files, monkeypatch):
    pytest.importorskip("astra")
    from adareg import cli
    from adareg.ct import fbp
    from adareg.operators import RayTransform

    folder, _ = files
    H = RayTransform((32, 32), 40)
    sinogram = H(adareg.data.shepp_logan((32, 32))).astype(np.float32)
    np.save(folder / "sino-window.npy", sinogram)
    starts = []

    def recording(*args, **kwargs):
        starts.append(kwargs["x0"])
        return adareg.solve(*args, **kwargs)

    monkeypatch.setattr(cli, "solve", recording)
    for window in ("ram-lak", "hann"):
        assert cli.main(["ct", str(folder / "sino-window.npy"), "--angles", "40", "--image-size", "32", "--model",
                         "tv", "--lam", "1e-2", "--window", window, "-o", str(folder / f"ct-{window}.npy"),
                         "--quiet"]) == 0
        np.testing.assert_allclose(starts[-1], fbp(H, sinogram, window=window), atol=1e-6)
    assert not np.allclose(starts[0], starts[1], atol=1e-3)  # the two windows do give different starts


def test_ct_weighs_rays_by_their_photon_counts_as_the_presets_were_tuned(files):
    """The presets were tuned with the weights N / I0 of a transmission scan, but the command solved unweighted:
    wcrr at its 128 x 128 preset 0.23 dB below the weighted solve (an audit, 2026-12-06).  The reference weights
    are poisson_transmission's, from the counts; --data-weights uniform solves unweighted, and fbp refuses it."""
    pytest.importorskip("astra")
    from adareg.ct import fbp
    from adareg.operators import RayTransform
    from adareg.regularizers import TV

    folder, _ = files
    phantom = adareg.data.shepp_logan((32, 32))
    H = RayTransform((32, 32), 60, pixel_size=1 / 32)
    sinogram, counts_over_photons = adareg.ct.poisson_transmission(H(phantom), 1e3, seed=0)
    np.save(folder / "sino-counts.npy", sinogram)
    for extra, weights in (([], counts_over_photons), (["--data-weights", "uniform"], None)):
        output = folder / "ct-weighted.npy"
        out = run("ct", "sino-counts.npy", "--angles", "60", "--image-size", "32", "--pixel-size", "1/32", "--model",
                  "tv", "--lam", "1e-3", *extra, "-o", output.name, "--quiet", cwd=folder)
        assert out.returncode == 0, out.stderr
        assert "data weights e^-p" not in out.stderr  # line integrals of a scan: up to 3
        expected = adareg.solve(H, sinogram, TV((32, 32)), lam=1e-3, bounds=(0, None),
                                x0=fbp(H, sinogram, window="hann"), weights=weights).x
        np.testing.assert_allclose(np.load(output), expected, atol=1e-4)
    assert_fails_cleanly(run("ct", "sino-counts.npy", "--angles", "60", "--data-weights", "uniform", "-o",
                             "ct-unweighable.npy", cwd=folder), folder / "ct-unweighable.npy",
                         "--data-weights does not apply to --model fbp")


def test_ct_names_uniform_weights_for_line_integrals_no_scan_gives(files):
    """Line integrals in pixel units (a 64 x 64 phantom at --pixel-size 1 reaches 16.5) gave default weights e^-p
    spanning 1.7e7: an image 0.615 from the phantom, against 0.019 uniform, and no message named --data-weights
    (an audit, 2026-12-06).  Here a 32 x 32 phantom of twice its density (16.9); a volume of such sinograms is told
    the same; a chosen weighting is not, nor line integrals a scan measures (a 38 cm water path reaches 7.4)."""
    pytest.importorskip("astra")
    from adareg.operators import RayTransform

    folder, _ = files
    sinogram = 2 * RayTransform((32, 32), 40)(adareg.data.shepp_logan((32, 32)))
    assert 16 < sinogram.max() - sinogram.min() < 17
    np.save(folder / "sino-pixels.npy", sinogram)
    np.save(folder / "sino-pixels-volume.npy", np.stack([sinogram, sinogram / 2]))
    np.save(folder / "sino-body.npy", sinogram * 8 / 17)  # spanning 8: no word
    for name, extra, told in (("sino-pixels.npy", [], True), ("sino-pixels-volume.npy", [], True),
                              ("sino-pixels.npy", ["--data-weights", "transmission"], False),
                              ("sino-pixels.npy", ["--data-weights", "uniform"], False), ("sino-body.npy", [], False)):
        output = folder / f"ct-pixels-{len(extra)}{name}"
        out = run("ct", name, "--angles", "40", "--image-size", "32", "--model", "tv", "--lam", "1e-2", *extra,
                  "-o", output.name, "--quiet", cwd=folder)
        assert out.returncode == 0, out.stderr
        assert ("the line integrals span 16.9, so the default data weights e^-p (--data-weights transmission) "
                "span a factor 2.26e+07" in out.stderr) == told, out.stderr
        assert ("pass --data-weights uniform" in out.stderr) == told
    # a volume takes the chosen weighting too (no test ran one through a volume): far from the weighted solve
    from adareg.ct import fbp
    from adareg.regularizers import TV

    volume = np.stack([sinogram, sinogram / 2])
    out = run("ct", "sino-pixels-volume.npy", "--angles", "40", "--image-size", "32", "--model", "tv", "--lam", "1e-2",
              "--data-weights", "uniform", "-o", "ct-pixels-uniform.npy", "--quiet", cwd=folder)
    assert out.returncode == 0, out.stderr
    H = RayTransform((32, 32), 40)
    for weights, near in ((None, True), (np.exp(-volume), False)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the weights' spread
            by_hand = adareg.solve(H, volume, TV((32, 32)), lam=1e-2, bounds=(0, None), weights=weights,
                                   x0=fbp(H, volume, window="hann")).x
        assert (np.abs(np.load(folder / "ct-pixels-uniform.npy") - by_hand).max() < 2e-3) == near


def test_ct_fan_beam_default_image_size_allows_for_the_magnification(files):
    """A fan scan of a 64 x 64 image on the detector row RayTransform gives it is reconstructed at 64 x 64: the
    parallel beam's rule, (detectors - 1) / sqrt 2, would give 144 x 144 (and with a nearer source refuse it)."""
    pytest.importorskip("astra")
    from adareg.operators import RayTransform

    folder, _ = files
    phantom = adareg.data.shepp_logan((64, 64))
    H = RayTransform((64, 64), 90, geometry="fan", source_distance=400.0, detector_distance=400.0)
    np.save(folder / "fan.npy", H(phantom))
    output = folder / "fan-fbp.npy"
    out = run("ct", "fan.npy", "--angles", "90", "--geometry", "fan", "--source-distance", "400",
              "--detector-distance", "400", "-o", output.name, "--quiet", cwd=folder)
    assert out.returncode == 0, out.stderr
    assert np.load(output).shape == (64, 64)
    assert adareg.psnr(np.load(output), phantom) > 15


def test_ct_refuses_a_default_image_size_that_options_in_two_units_shrink(files):
    """A detector spacing in other units than the default pixel size fitted a 1 x 1 image, written with status 0."""
    pytest.importorskip("astra")
    from adareg.operators import RayTransform

    folder, _ = files
    H = RayTransform((32, 32), 30, pixel_size=1 / 32, detector_spacing=1 / 32)
    np.save(folder / "units.npy", H(adareg.data.shepp_logan((32, 32))))
    output = folder / "units.npy.out.npy"
    assert_fails_cleanly(run("ct", "units.npy", "--angles", "30", "--detector-spacing", "1/32", "-o", output.name,
                             cwd=folder), output, f"{H.shape_out[1]} detectors of spacing 0.03125 cover only a 1 x 1 "
                                                  "image of --pixel-size 1: give --pixel-size, --detector-spacing")
    out = run("ct", "units.npy", "--angles", "30", "--detector-spacing", "1/32", "--pixel-size", "1/32", "-o",
              output.name, "--quiet", cwd=folder)
    assert out.returncode == 0, out.stderr
    assert np.load(output).shape[0] >= 32
    np.save(folder / "narrow.npy", np.ones((30, 10), dtype=np.float32))  # the default spacing: it named None
    output = folder / "narrow.out.npy"
    assert_fails_cleanly(run("ct", "narrow.npy", "--angles", "30", "-o", output.name, cwd=folder), output,
                         "10 detectors of spacing 1 cover only a 6 x 6 image of --pixel-size 1")


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


def test_mri_zero_filled_sa_cnn_and_errors(files):
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
                             output.name, cwd=folder), output, "--mask wrong-mask.npy, --maps maps.npy: CartesianMRI: "
                                                               "mask of shape (16, 32)")
    assert_fails_cleanly(run("mri", "kspace.npy", "--mask", "mask.npy", "-o", output.name, cwd=folder), output,
                         "multi-coil data (coils, H, W) need coil sensitivities: --maps")
    np.save(folder / "one-coil.npy", np.load(folder / "kspace.npy")[0])  # maps for (H, W) data named the maps
    assert_fails_cleanly(run("mri", "one-coil.npy", "--mask", "mask.npy", "--maps", "maps.npy", "-o", output.name,
                             cwd=folder), output, "has 2 axes, but --maps goes with multi-coil data (coils, H, W)")
    # a learned model reconstructs a real image, its default space; a complex one is refused by the option's name
    output = folder / "sa-cnn.npy"
    out = run("mri", "kspace.npy", "--mask", "mask.npy", "--maps", "maps.npy", "--model", "sa-cnn", "--quiet", "-o",
              output.name, cwd=folder)
    assert out.returncode == 0, out.stderr
    assert np.load(output).dtype.kind == "f" and adareg.psnr(np.load(output), image) > 20
    assert_fails_cleanly(run("mri", "kspace.npy", "--mask", "mask.npy", "--maps", "maps.npy", "--model", "sa-cnn",
                             "--space", "complex", "-o", "never.npy", cwd=folder), folder / "never.npy",
                         "--space complex: the learned model 'sa-cnn' reconstructs real images")
    # SENSE stopped at its CG cap wrote its output without a word, where the other models warn
    sense = mri.sense(CartesianMRI(mask, maps, real=False), np.load(folder / "kspace.npy"), lam=1e-12)
    assert not sense.converged
    out = run("mri", "kspace.npy", "--mask", "mask.npy", "--maps", "maps.npy", "--model", "sense", "--lam", "1e-12",
              "--quiet", "-o", "sense.npy", cwd=folder)
    assert out.returncode == 0 and out.stderr.startswith("adareg mri: warning: the solver did not converge"), out.stderr
    out = run("mri", "kspace.npy", "--mask", "mask.npy", "--maps", "maps.npy", "--model", "sense", "--quiet", "-o",
              "sense.npy", cwd=folder)
    assert out.returncode == 0 and out.stderr == "", out.stderr


def test_real_or_uncentred_k_space_is_named(files):
    # an image passed as k-space was "reconstructed" (12.6 dB), and k-space in numpy.fft's order gave an image
    # shifted by half its size (10.3 dB), both without a word
    folder, _ = files
    image = adareg.data.shepp_logan((32, 32))
    np.save(folder / "full-mask.npy", np.ones((32, 32), dtype=bool))
    np.save(folder / "image.npy", image)
    output = folder / "never.npy"
    assert_fails_cleanly(run("mri", "image.npy", "--mask", "full-mask.npy", "-o", output.name, cwd=folder), output,
                         "expected complex k-space, got dtype float64 (a real array holds an image")
    np.save(folder / "uncentred.npy", np.fft.fft2(image, norm="ortho"))
    np.save(folder / "centred.npy", np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image), norm="ortho")))
    for name, warned in (("uncentred.npy", True), ("centred.npy", False)):
        out = run("mri", name, "--mask", "full-mask.npy", "-o", "zf.npy", cwd=folder)
        assert out.returncode == 0, out.stderr
        assert ("the k-space is largest at the grid's corners" in out.stderr) == warned, (name, out.stderr)
    assert adareg.psnr(np.abs(np.load(folder / "zf.npy")), image) > 40  # the centred one, as adareg takes it


def test_data_far_from_the_presets_scale_are_warned_about(files):
    """k-space of an image in [0, 1000] took the presets' weights for [0, 1] without a word (relative error 0.22
    against 0.013 at scale 1); TV with the caller's --lam is at the data's own scale and is not warned about."""
    from adareg.operators import CartesianMRI

    folder, _ = files
    image = adareg.data.shepp_logan((32, 32))
    mask = adareg.mri.cartesian_mask((32, 32), 2, 0.25, seed=0)
    np.save(folder / "scale-mask.npy", mask)
    kspace = CartesianMRI(mask, None, real=False, shape=(32, 32))(image.astype(complex))
    for scale, warned in ((1.0, False), (1e3, True), (1e-4, True)):
        np.save(folder / "scaled.npy", scale * kspace)
        out = run("mri", "scaled.npy", "--mask", "scale-mask.npy", "--model", "tv", "--quiet", "-o", "scaled-tv.npy",
                  cwd=folder)
        assert out.returncode == 0, out.stderr
        assert ("its zero-filled image reaches" in out.stderr) == warned, (scale, out.stderr)
    out = run("mri", "scaled.npy", "--mask", "scale-mask.npy", "--model", "tv", "--lam", "1e-6", "--quiet", "-o",
              "scaled-tv.npy", cwd=folder)
    assert out.returncode == 0 and "reaches" not in out.stderr, out.stderr
    # a learned model: the CLI's word on the zero-filled image, not solve's on the reconstruction too
    np.save(folder / "scaled.npy", 1e3 * kspace)
    out = run("mri", "scaled.npy", "--mask", "scale-mask.npy", "--model", "wcrr", "--quiet", "-o", "scaled-wcrr.npy",
              cwd=folder)
    assert out.returncode == 0 and "its zero-filled image reaches" in out.stderr, out.stderr
    assert "the reconstruction reaches" not in out.stderr and np.abs(np.load(folder / "scaled-wcrr.npy")).max() > 100


def test_models_and_help(files):
    folder, _ = files
    out = run("models", cwd=folder)
    assert out.returncode == 0
    header, *rows, blank, note = out.stdout.splitlines()
    assert header.split() == ["MODEL", "FAMILY", "SIGMA", "(0-255)", "PARAMETERS", "TRAINED", "VALIDATION"]
    names = [row.split()[0] for row in rows]
    assert names == list(adareg.params.families())  # one shipped model per family
    size = sum(array.size for array in adareg.params.read("sa-cnn").arrays.values())
    assert f"{size:,}" in rows[names.index("sa-cnn")] and blank == "" and note.startswith("VALIDATION: PSNR in dB")
    out = run("--help", cwd=folder)
    assert out.returncode == 0 and all(word in out.stdout for word in ("denoise", "ct", "mri", "demo", "models"))
    # python -m adareg is the same command line
    package = subprocess.run([sys.executable, "-m", "adareg", "--help"], capture_output=True, text=True, cwd=folder,
                             timeout=300)
    assert package.returncode == 0 and package.stdout == out.stdout


def test_version_is_the_installed_distribution_s(files):
    folder, _ = files
    out = run("--version", cwd=folder)
    assert out.returncode == 0 and out.stdout == f"adareg {importlib.metadata.version('adareg')}\n"


def test_demo_writes_its_figure(files):
    pytest.importorskip("matplotlib")
    pytest.importorskip("skimage")
    folder, _ = files
    out = run("demo", "denoise", "--quiet", "-o", "demo.png", cwd=folder)
    assert out.returncode == 0, out.stderr
    assert (folder / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name, missing, extras", [
    ("denoise", "matplotlib", "examples"), ("mri", "matplotlib", "examples,mri"), ("volume", "nibabel", "examples,io")])
def test_a_demo_without_its_extras_names_them(files, monkeypatch, capsys, name, missing, extras):
    """On an install without the examples extra every demo said "No module named 'matplotlib'", and named no extra
    (an installed-package audit, 2026-12-06)."""
    from adareg import cli

    for module in [missing] + [m for m in sys.modules if m.startswith(f"{missing}.")]:  # (earlier tests import them)
        monkeypatch.setitem(sys.modules, module, None)  # an import of it raises ModuleNotFoundError
    for module in [m for m in sys.modules if m.startswith("adareg.examples")]:  # imported afresh
        monkeypatch.delitem(sys.modules, module)
    folder, _ = files
    assert cli.main(["demo", name, "--quiet", "-o", str(folder / f"missing-{name}.png")]) == 1
    assert capsys.readouterr().err == (f"adareg demo: error: the {name} demo needs {missing}, which is not installed: "
                                       f"pip install 'adareg[{extras}]'\n")
    assert not (folder / f"missing-{name}.png").exists()


@pytest.mark.parametrize("command, missing, words", [
    (["denoise", "noisy.npy", "--sigma", "25", "--model", "tv", "--lam", "0.1", "-o", "no-pillow.png"], "PIL",
     "reading and writing PNG/TIFF needs Pillow: pip install adareg[examples]"),
    (["denoise", "volume-for-writers.npy", "--sigma", "25", "--model", "tv", "--lam", "0.1", "-o", "no-nibabel.nii.gz"],
     "nibabel", "reading and writing nifti files needs nibabel: pip install adareg[io]"),
])
def test_an_output_s_writer_library_is_named_before_the_work(files, monkeypatch, capsys, command, missing, words):
    """A PNG or NIfTI output without the library that writes it failed after the whole computation, against
    docs/cli.md's "checked before the computation" (an installed-package audit, 2026-12-06)."""
    from adareg import cli

    folder, _ = files
    np.save(folder / "volume-for-writers.npy", np.zeros((2, 8, 8)))
    monkeypatch.chdir(folder)
    monkeypatch.setitem(sys.modules, missing, None)
    monkeypatch.setitem(sys.modules, f"{missing}.Image", None)

    def unreachable(*args, **kwargs):
        raise AssertionError("solve ran")

    monkeypatch.setattr(cli, "solve", unreachable)
    monkeypatch.setattr(cli.stacks, "solve", unreachable)
    assert cli.main(command) == 1
    assert capsys.readouterr().err.endswith(f"error: {words}\n")
    assert not (folder / command[-1]).exists()


@pytest.mark.parametrize("missing", ["adareg.examples.comparison", "matplotlib.figure"])
def test_a_demo_s_other_import_errors_are_not_put_down_to_extras(files, monkeypatch, capsys, missing):
    """A module of adareg, or of an installed package (a submodule an old version lacks), is no missing extra: the
    demo said "needs numpy, which is not installed" of an installed numpy (a review, 2026-12-06)."""
    from adareg import cli

    pytest.importorskip("matplotlib")
    monkeypatch.setitem(sys.modules, missing, None)  # matplotlib.figure: as if matplotlib were installed without it
    for module in [m for m in sys.modules if m.startswith("adareg.examples") and m != missing]:
        monkeypatch.delitem(sys.modules, module)
    folder, _ = files
    assert cli.main(["demo", "denoise", "--quiet", "-o", str(folder / "other-import-error.png")]) == 1
    error = capsys.readouterr().err
    assert f"import of {missing} halted" in error and "not installed" not in error, error


def test_the_examples_leave_the_calling_program_s_matplotlib_backend_alone():
    """They chose pyplot's backend, Agg, when imported: `adareg demo` through cli.main, or an import of
    adareg.examples.comparison, switched a notebook's or a program's backend for the rest of its run (an audit)."""
    pytest.importorskip("matplotlib")
    pytest.importorskip("nibabel")
    code = ("import matplotlib; matplotlib.use('svg'); "
            "import adareg.examples.comparison, adareg.examples.denoise, adareg.examples.volume; "
            "print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout == "svg\n", out.stderr


def test_the_volume_demo_needs_no_pytest():
    """It found nibabel's test volume through nibabel.testing, which imports pytest: `adareg demo volume` failed on
    every install without pytest, which no user extra has (an installed-package audit, 2026-12-06)."""
    pytest.importorskip("nibabel")
    pytest.importorskip("matplotlib")
    code = "import sys; sys.modules['pytest'] = None; import adareg.examples.volume as v; print(v.VOLUME.is_file())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout == "True\n", out.stderr


@pytest.mark.parametrize("output, words", [("nodir/fig.png", "the folder"), ("fig.xyz", "the output must end in")])
def test_a_demo_figure_is_checked_before_the_demo_runs(files, output, words):
    pytest.importorskip("matplotlib")
    folder, _ = files
    out = run("demo", "denoise", "--quiet", "-o", output, cwd=folder)
    assert_fails_cleanly(out, folder / output, f"{output}: {words}")
    assert out.stdout == ""  # the example did not run


@pytest.mark.parametrize("options, words", [
    (["--chunk", "0"], "argument --chunk: must be at least 1, got 0"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"],
     "argument --scheduler: not allowed with argument --workers"),
    (["--pixel-size", "0"], "argument --pixel-size: must be positive and finite, got 0"),
    (["--pixel-size", "1/0"], "argument --pixel-size: expected a number or a fraction such as 1/256, got '1/0'"),
    (["--detector-spacing", "inf"], "argument --detector-spacing: must be positive and finite, got inf"),
    # these reached solve, RayTransform and cartesian_mask, whose errors named their own arguments (an audit,
    # 2026-12-07)
    (["--lam", "-1"], "argument --lam: must be positive and finite, got -1"),
    (["--angles", "0"], "argument --angles: must be at least 1, got 0"),
])
def test_option_values_are_refused_by_the_option_s_name(tmp_path, options, words):
    # they reached map_slices and fitting_image_size, whose errors named their own arguments (or none, for
    # --chunk 0 with a single image)
    out = run("ct", "s.npy", "--angles", "3", "-o", "x.npy", *options, cwd=tmp_path)
    assert out.returncode == 2 and words in out.stderr.splitlines()[-1], out.stderr


@pytest.mark.parametrize("command, words", [
    (["mri", "k.h5", "--center-fraction", "1.5"], "argument --center-fraction: must be in (0, 1], got 1.5"),
    (["mri", "k.h5", "--seed", "-1"], "argument --seed: must be at least 0, got -1"),
    (["mri", "k.h5", "--lam", "0"], "argument --lam: must be positive and finite, got 0"),
    (["denoise", "n.npy", "--sigma", "25", "--lam", "nan"], "argument --lam: must be positive and finite, got nan"),
    # an empty --model failed as "name_or_path must be a model name or a path", adareg.load's argument
    (["denoise", "n.npy", "--sigma", "25", "--model", ""], "argument --model: expected a method, a shipped model's "
                                                           "name or a parameter file, got ''"),
    (["ct", "s.npy", "--angles", "3", "--model", ""], "argument --model: expected a method"),
    (["mri", "k.h5", "--model", ""], "argument --model: expected a method"),
])
def test_mri_and_denoise_option_values_are_refused_by_the_option_s_name(tmp_path, command, words):
    out = run(*command, "-o", "x.npy", cwd=tmp_path)
    assert out.returncode == 2 and words in out.stderr.splitlines()[-1], out.stderr
