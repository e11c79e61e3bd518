"""The package as a user meets it: a light import and a working example."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_pulls_in_no_optional_dependency():
    code = ("import sys, adareg; heavy = {'torch', 'cupy', 'astra', 'sigpy', 'skimage', 'matplotlib'}; "
            "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_denoise_example_gains_8_db_in_under_30_seconds(tmp_path):
    pytest.importorskip("skimage")
    pytest.importorskip("matplotlib")
    figure = tmp_path / "denoise.png"
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "denoise.py"), "--quiet", "--output", str(figure)],
                         capture_output=True, text=True, check=True, timeout=120)
    noisy = float(re.search(r"^noisy\s+([\d.]+)", out.stdout, re.M).group(1))
    denoised, seconds = (float(v) for v in re.search(r"^TV\s+([\d.]+)\s+[\d.]+\s+([\d.]+)", out.stdout, re.M).groups())
    assert denoised - noisy >= 8.0, out.stdout
    assert seconds < 30.0
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def example_table(stdout: str) -> list[tuple[str, float, float]]:
    """The rows ``(method, PSNR, seconds)`` of an example's table, in the printed order."""
    return [(m.group(1), float(m.group(2)), float(m.group(3)))
            for m in re.finditer(r"^(\S+(?: \(Hann\))?)\s+([\d.]+)\s+[\d.]+\s+([\d.]+)", stdout, re.M)]


def test_ct_example_leads_with_sa_cnn(tmp_path):
    """The README's main job: a real head slice, presets tuned on another patient, sa-cnn first."""
    pytest.importorskip("astra")
    pytest.importorskip("matplotlib")
    pytest.importorskip("pydicom")
    figure = tmp_path / "ct.png"
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "ct_recon.py"), "--quiet", "--output", str(figure)],
                         capture_output=True, text=True, check=True, timeout=600)
    table = example_table(out.stdout)
    assert [name for name, *_ in table][0] == "sa-cnn", out.stdout
    psnr = {name: value for name, value, _ in table}
    assert psnr["sa-cnn"] >= psnr["tv"] + 1.0 and psnr["tv"] > psnr["FBP (Hann)"], out.stdout  # issue 16's bar
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_volume_example_leads_with_sa_cnn(tmp_path):
    """A real MR volume (nibabel's test data) denoised slice by slice through adareg.stacks."""
    pytest.importorskip("nibabel")
    pytest.importorskip("matplotlib")
    figure = tmp_path / "volume.png"
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "volume.py"), "--quiet", "--output", str(figure)],
                         capture_output=True, text=True, check=True, timeout=300)
    table = example_table(out.stdout)
    assert [name for name, *_ in table] == ["sa-cnn", "tv"], out.stdout
    noisy = float(re.search(r"^noisy\s+([\d.]+)", out.stdout, re.M).group(1))
    assert table[1][1] >= noisy + 4.0, out.stdout
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
