"""benchmarks/device_session.sh's stand-in for cuFFT 11, which lets ASTRA's CUDA 12 wheel load on another CUDA."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

astra = pytest.importorskip("astra", reason="the ASTRA toolbox is not installed (pip install adareg[ct])")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(astra.__file__).parent
RUNTIME = PACKAGE.parent / "nvidia" / "cuda_runtime" / "lib" / "libcudart.so.12"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (the test builds and inspects a shared library)")
    return path


def _imported(libraries: list[Path]) -> set[str]:
    """The cuFFT symbols that ``libraries`` import, with their version: ``cufftPlan1d@libcufft.so.11``."""
    listed = subprocess.run([_tool("nm"), "-D", "--undefined-only", *map(str, libraries)], capture_output=True,
                            text=True, check=True).stdout
    return {word for line in listed.splitlines() for word in line.split()[-1:] if "cufft" in word}


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory) -> Path:
    """The stand-in built by the script's ``stub`` stage (as ``prepare`` builds it), beside CUDA 12's runtime."""
    if not RUNTIME.exists():
        pytest.skip(f"ASTRA's CUDA 12 runtime is not at {RUNTIME} (an ASTRA not installed from its wheel)")
    _tool("gcc")
    folder = tmp_path_factory.mktemp("cuda12")
    subprocess.run([_tool("bash"), str(ROOT / "benchmarks" / "device_session.sh"), "stub", str(folder)], check=True)
    shutil.copy(RUNTIME, folder)
    return folder


def test_the_stand_in_defines_every_cufft_symbol_that_astra_imports(stand_in):
    imported = _imported(sorted(PACKAGE.glob("*.so*")))
    assert imported, "ASTRA's libraries import no cuFFT symbol: the stand-in is not needed"
    defined = subprocess.run([_tool("nm"), "-D", "--defined-only", str(stand_in / "libcufft.so.11")],
                             capture_output=True, text=True, check=True).stdout
    # nm marks the default version of a defined symbol with @@, an imported one with @
    assert imported <= {line.split()[-1].replace("@@", "@") for line in defined.splitlines()}


def test_astra_loads_with_the_stand_in_alone_and_projects_as_installed(stand_in, tmp_path):
    # a copy of the package without the nvidia/ folder beside it: its runpath finds no CUDA library,
    # as on a GPU image of another CUDA; LD_BIND_NOW resolves every symbol at load, not at the first call
    shutil.copytree(PACKAGE, tmp_path / "astra")
    script = ("import astra, numpy as np, sys; print(astra.__file__);"
              "v = astra.create_vol_geom(32, 32);"
              "p = astra.create_proj_geom('parallel', 1.0, 48, np.linspace(0, np.pi, 12, endpoint=False));"
              "i = astra.create_projector('linear', p, v);"
              "np.save(sys.argv[1], astra.create_sino(np.arange(1024, dtype=np.float32).reshape(32, 32), i)[1])")
    alone = {**os.environ, "PYTHONPATH": str(tmp_path), "LD_BIND_NOW": "1"}
    missing = subprocess.run([sys.executable, "-c", script, str(tmp_path / "x.npy")], env=alone, cwd=tmp_path,
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "libcudart.so.12" in missing.stderr
    found = subprocess.run([sys.executable, "-c", script, str(tmp_path / "with.npy")], cwd=tmp_path, check=True,
                           env={**alone, "LD_LIBRARY_PATH": str(stand_in)}, capture_output=True, text=True)
    assert found.stdout.strip() == str(tmp_path / "astra" / "__init__.py")
    installed = subprocess.run([sys.executable, "-c", script, str(tmp_path / "installed.npy")], cwd=ROOT,
                               check=True, capture_output=True, text=True)
    assert installed.stdout.strip() == astra.__file__
    np.testing.assert_array_equal(np.load(tmp_path / "with.npy"), np.load(tmp_path / "installed.npy"))
