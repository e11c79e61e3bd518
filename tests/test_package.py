"""The package as a user meets it: a light import and a working example."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: How far the CT example's crr must beat FBP (measured: 25.00 against 19.14 dB).
CRR_MARGIN = 4.0


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


def test_ct_example_beats_fbp_in_under_60_seconds(tmp_path):
    pytest.importorskip("astra")
    pytest.importorskip("matplotlib")
    figure = tmp_path / "ct.png"
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "ct_recon.py"), "--quiet", "--output", str(figure)],
                         capture_output=True, text=True, check=True, timeout=300)
    table = {m.group(1): (float(m.group(2)), float(m.group(3)))
             for m in re.finditer(r"^(FBP \(Hann\)|TV|crr)\s+([\d.]+)\s+[\d.]+\s+([\d.]+)", out.stdout, re.M)}
    assert table["TV"][0] >= table["FBP (Hann)"][0] + 5.0, out.stdout  # measured: 19.1 vs 26.2 dB
    assert table["crr"][0] >= table["FBP (Hann)"][0] + CRR_MARGIN, out.stdout
    assert table["TV"][1] < 60.0 and table["crr"][1] < 60.0
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
