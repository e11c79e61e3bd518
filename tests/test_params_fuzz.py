"""Fuzzing the parameter-file reader: whatever the bytes, a valid result or a ParameterFileError, in bounded memory.

The examples run in a child process (this file run as a script) whose address space
is limited (``RLIMIT_AS``) to what it uses after a warm-up plus :data:`HEADROOM`, so an
allocation of 400 MB or more while reading fails with a ``MemoryError``.  The reader
never turns a ``MemoryError`` into a ``ParameterFileError``, so such an allocation
fails the test, as does any exception other than ``ParameterFileError``.  The examples
are derandomized (the same every run) and no example database is kept.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import operator
import os
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import adareg  # registers the learned families
from adareg import params
from adareg.params import ParameterFileError
from adareg.regularizers.learned import LearnedRegularizer

try:
    import resource
except ImportError:  # not on Windows
    resource = None

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = Path(adareg.__file__).parent / "weights"

#: The address space the fuzzing may use beyond what the warmed-up child uses: well
#: under the 400 MB a zip bomb would take, well over what reading a shipped file does.
HEADROOM = 256 * 2**20

#: The shipped files, the bases of the mutated and rebuilt files.
BASES = {path.name: path.read_bytes() for path in sorted(WEIGHTS.glob("*.npz"))}

#: The same examples every run (about 20 s in all on one core), no example database.
FUZZ = settings(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))


def test_reader_fuzz_in_a_memory_limited_process(tmp_path):
    """Arbitrary bytes and broken shipped files: available() and load() give a result or a ParameterFileError."""
    if resource is None or not Path("/proc/self/statm").exists():
        pytest.skip("needs RLIMIT_AS and /proc (Linux)")
    single_threaded = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, __file__, str(tmp_path)], capture_output=True, text=True, timeout=600,
                            cwd=ROOT, env={**os.environ, **single_threaded, "PYTHONPATH": pythonpath})
    print(result.stdout)
    output = (result.stdout + result.stderr).splitlines()
    assert result.returncode == 0, "\n".join(line[:400] for line in output)  # falsifying examples are long


# ----------------------------------------------------------------------------- what is fuzzed

#: The folder of the fuzzed file, set by :func:`main`.
FOLDER = Path()
#: How many files :func:`check` has checked.
CHECKED = [0]


def check(data: bytes) -> None:
    """``available`` and ``load`` on a file holding ``data``: a valid result or a ParameterFileError."""
    path = FOLDER / "m.npz"
    path.write_bytes(data)
    CHECKED[0] += 1
    try:
        assert isinstance(params.available()["m"]["family"], str)
    except ParameterFileError:
        pass
    try:
        assert isinstance(params.load(path), LearnedRegularizer)
    except ParameterFileError:
        pass


# ----------------------------------------------------------------------------- strategies


def npy(header: str, data: bytes, version: tuple[int, int]) -> bytes:
    """An .npy entry with exactly the header text given (padded as NumPy pads it), then ``data``."""
    length = "<H" if version == (1, 0) else "<I"
    text = header.encode("latin1")
    text += b" " * (-(8 + struct.calcsize(length) + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack(length, len(text)) + text + data


def npy_of(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npz(entries: dict[str, bytes]) -> bytes:
    """A zip archive of .npy entries given as bytes, with sizes and CRCs that agree with them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(f"{name}.npy", data)
    return buffer.getvalue()


def structure(data: bytes) -> tuple[list[tuple[int, str]], list[int]]:
    """Where a shipped file declares sizes, counts and offsets (offset, struct format), and where its parts start.

    The fields: each local header's sizes and name and extra lengths, each .npy
    header's version and length, each directory record's sizes, lengths and offset,
    and the end record's counts, directory size and offset, and comment length.
    """
    fields, starts = [], []
    end = len(data) - 22
    size, offset = struct.unpack_from("<2L", data, end + 12)
    record = offset
    while record < offset + size:
        lengths = struct.unpack_from("<3H", data, record + 28)
        local = struct.unpack_from("<L", data, record + 42)[0]
        names, extras = struct.unpack_from("<2H", data, local + 26)
        entry = local + 30 + names + extras
        fields += [(record + 20, "<L"), (record + 24, "<L"), (record + 28, "<H"), (record + 30, "<H"),
                   (record + 42, "<L"), (local + 18, "<L"), (local + 22, "<L"), (local + 26, "<H"),
                   (local + 28, "<H"), (entry + 6, "<B"), (entry + 8, "<H")]
        starts += [record, local, entry]
        record += 46 + sum(lengths)
    fields += [(end + 8, "<H"), (end + 10, "<H"), (end + 12, "<L"), (end + 16, "<L"), (end + 20, "<H")]
    return fields, starts + [end]


STRUCTURE = {name: structure(data) for name, data in BASES.items()}
FILES = {name: params.read(WEIGHTS / name) for name in BASES}

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8)

DESCRS = ["<f4", "<f8", ">f8", "|u1", "<i8", "|b1", "|O", "<c16", "|V8", "<U2", "|S0", "<M8[s]",
          [("a", "<f4")], [("a", "|O")], [("", "|V0")], ("<f4", (2,))]
SHAPES = st.lists(st.integers(-2, 5) | st.sampled_from([0, 2**31, 2**63 - 1, 2**64, 10**30]), max_size=66)
VERSIONS = [(1, 0), (2, 0), (3, 0), (0, 0)]


@st.composite
def mutated_files(draw) -> bytes:
    """A shipped file with bytes flipped, inserted or deleted, truncated, or declared sizes changed."""
    name = draw(st.sampled_from(sorted(BASES)))
    data = bytearray(BASES[name])
    fields, starts = STRUCTURE[name]
    for _ in range(draw(st.integers(1, 3))):
        if not data:
            break
        if draw(st.booleans()):  # near a structure, where most of the checks are
            at = (draw(st.sampled_from(starts)) + draw(st.integers(0, 160))) % len(data)
        else:
            at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "size"]))
        if kind == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[at:]
        else:
            offset, layout = draw(st.sampled_from(fields))
            largest = 2 ** (8 * struct.calcsize(layout)) - 1
            value = draw(st.sampled_from([0, 1, largest, largest // 2]) | st.integers(0, largest))
            if offset + struct.calcsize(layout) <= len(data):
                struct.pack_into(layout, data, offset, value)
    return bytes(data)


def locations(value: object, path: tuple = ()) -> Iterator[tuple]:
    """The paths (object keys, array indices) to ``value`` and every value in it, but not into free-form objects."""
    yield path
    if path in (("training",), ("validation",)):
        return
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield from locations(item, (*path, key))


@st.composite
def files_with_other_metadata(draw) -> bytes:
    """A shipped file's arrays with one value of its metadata (often of its architecture) replaced or deleted."""
    file = FILES[draw(st.sampled_from(sorted(BASES)))]
    metadata = copy.deepcopy(file.metadata)
    root = draw(st.sampled_from([("architecture",), ()]))
    path = root + draw(st.sampled_from(list(locations(functools.reduce(operator.getitem, root, metadata)))))
    value = draw(JSON | st.integers(-1, 70) | st.sampled_from([2**31, 2**63, 10**400]))
    if not path:
        metadata = value
    else:
        parent = functools.reduce(operator.getitem, path[:-1], metadata)
        if draw(st.booleans()):
            parent[path[-1]] = value
        else:
            del parent[path[-1]]
    text = json.dumps(metadata)  # NaN and Infinity as such
    entries = {name: npy_of(array) for name, array in file.arrays.items()}
    return npz({**entries, "__metadata__": npy_of(np.frombuffer(text.encode(), np.uint8))})


@st.composite
def files_with_other_npy_headers(draw) -> bytes:
    """A shipped file with the .npy header of one entry replaced: any dtype, shape (huge ones too) or text."""
    file = FILES[draw(st.sampled_from(sorted(BASES)))]
    arrays = {**file.arrays, "__metadata__": np.frombuffer(json.dumps(file.metadata).encode(), np.uint8)}
    entries = {name: npy_of(array) for name, array in arrays.items()}
    target = draw(st.sampled_from(sorted(entries)))
    if draw(st.booleans()):
        header = repr({"descr": draw(st.sampled_from(DESCRS)), "fortran_order": draw(st.booleans()),
                       "shape": tuple(draw(SHAPES))})
    else:
        header = draw(st.text(st.characters(max_codepoint=255), max_size=200))
    data = arrays[target].tobytes() if draw(st.booleans()) else draw(st.binary(max_size=64))
    entries[target] = npy(header, data, draw(st.sampled_from(VERSIONS)))
    return npz(entries)


def zip_like(data: bytes, size: int, offset: int, count: int) -> bytes:
    """``data`` between a local header's signature and an end record declaring a directory somewhere in it."""
    return b"PK\x03\x04" + data + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, size, offset, 0)


ARBITRARY = (st.binary(max_size=600) | st.binary(max_size=600).map(lambda data: b"PK\x03\x04" + data)
             | st.builds(zip_like, st.binary(max_size=600), st.integers(0, 700), st.integers(0, 700),
                         st.integers(0, 0xFFFF)))


@settings(FUZZ, max_examples=300)
@given(ARBITRARY)
def fuzz_arbitrary_bytes(data: bytes) -> None:
    check(data)


@settings(FUZZ, max_examples=300)
@given(mutated_files())
def fuzz_mutated_files(data: bytes) -> None:
    check(data)


@settings(FUZZ, max_examples=200)
@given(files_with_other_metadata())
def fuzz_other_metadata(data: bytes) -> None:
    check(data)


@settings(FUZZ, max_examples=250)
@given(files_with_other_npy_headers())
def fuzz_other_npy_headers(data: bytes) -> None:
    check(data)


def address_space() -> int:
    """This process's virtual memory size, in bytes (Linux)."""
    return int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def main(folder: str) -> None:
    """Warm up, limit the address space, check that the limit stops a 400 MB allocation, and fuzz in ``folder``."""
    global FOLDER
    FOLDER = Path(folder)
    params._shipped_root = lambda: FOLDER  # available() lists the fuzzed file
    for name in BASES:  # warm up: whatever building a regularizer allocates once
        check(BASES[name])
    used = address_space()
    resource.setrlimit(resource.RLIMIT_AS, (used + HEADROOM, resource.getrlimit(resource.RLIMIT_AS)[1]))
    try:
        bytearray(400 * 2**20)
    except MemoryError:
        pass
    else:
        sys.exit(f"the address-space limit of {used + HEADROOM} bytes does not stop a 400 MB allocation")
    print(f"address space after the warm-up: {used / 2**20:.0f} MiB; limit {(used + HEADROOM) / 2**20:.0f} MiB")
    for fuzz in (fuzz_arbitrary_bytes, fuzz_mutated_files, fuzz_other_metadata, fuzz_other_npy_headers):
        start = time.perf_counter()
        checked = CHECKED[0]
        fuzz()
        print(f"{fuzz.__name__}: {CHECKED[0] - checked} files in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1])
