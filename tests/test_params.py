"""Parameter files: round trips, and every malformed file refused with a clear error and nothing run."""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import re
import struct
import subprocess
import sys
import time
import tracemalloc
import types
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from adareg import params
from adareg.params import ArraySpec, ParameterFile, ParameterFileError

ROOT = Path(__file__).resolve().parents[1]


def toy_schema(metadata):
    arch = metadata["architecture"]
    c, k = arch["channels"], arch["kernel_size"]
    return {"filters": ArraySpec((c, 1, k, k), (np.dtype(np.float32),)),
            "scale": ((c,), (np.float32, np.float64))}


def toy_build(file, **options):
    if options.get("fail"):
        raise ValueError("scale must be positive")
    return types.SimpleNamespace(arrays=file.arrays, metadata=file.metadata, options=options)


@pytest.fixture
def toy():
    """A registered family "toy": filters (C, 1, k, k) float32 and scale (C,) float32/float64."""
    params.register_family("toy", toy_schema, toy_build)
    yield
    params.unregister_family("toy")


def toy_arrays(rng=None, channels=3, kernel_size=5):
    rng = np.random.default_rng(0) if rng is None else rng
    return {"filters": rng.standard_normal((channels, 1, kernel_size, kernel_size)).astype(np.float32),
            "scale": rng.uniform(0.5, 2.0, channels)}


def toy_metadata(**changes):
    metadata = {
        "family": "toy",
        "architecture": {"channels": 3, "kernel_size": 5},
        "sigma_range": [0.0, 30 / 255],
        "training": {"data": "BSD400", "settings": {"batch_size": 64, "lr": 1e-3}, "hardware": "2 CPU cores"},
        "validation": {"set12_psnr": {"15": 32.5, "25": 30.1}},
        "created": "2026-05-09",
    }
    metadata.update(changes)
    return metadata


def write_raw(path, arrays, metadata, **extra):
    """An archive written directly with numpy.savez, bypassing save's checks.

    ``metadata`` is a dict (stored as JSON with format_version 1 unless given) or bytes.
    """
    if isinstance(metadata, dict):
        metadata = json.dumps({"format_version": 1, **metadata}).encode()
    np.savez(path, **arrays, __metadata__=np.frombuffer(metadata, dtype=np.uint8), **extra)
    return path


def rejected(path, field, *fragments, schema=None):
    """Assert that reading and validating ``path`` raises an error naming the file, ``field`` and ``fragments``."""
    with pytest.raises(ParameterFileError) as info:
        params.validate(params.read(path), schema)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert info.value.file == str(path)
    assert info.value.field == field, message
    for fragment in fragments:
        assert fragment in message, message
    return message


# ----------------------------------------------------------------------------- round trips and loading


def test_round_trip_keeps_every_array_bit_for_bit_and_the_metadata(toy, tmp_path):
    arrays = toy_arrays()
    arrays["scale"][1] = -0.0  # sign of zero survives
    metadata = toy_metadata(notes="ü ≤ 30/255", extra=[1, 2.5, None, True])
    written = params.save(tmp_path / "model.npz", arrays, metadata)
    assert written == tmp_path / "model.npz"
    file = params.read(written)
    assert file.path == str(written) and file.family == "toy"
    assert list(file.arrays) == list(arrays)
    for name, array in arrays.items():
        assert file.arrays[name].dtype == array.dtype and file.arrays[name].shape == array.shape
        assert file.arrays[name].tobytes() == array.tobytes()
    assert file.metadata == {"format_version": 1, **metadata}
    params.validate(file)


def test_save_fills_format_version_and_creation_time_and_keeps_the_caller_metadata(toy, tmp_path):
    metadata = toy_metadata()
    del metadata["created"]
    params.save(tmp_path / "m.npz", toy_arrays(), metadata)
    assert "created" not in metadata and "format_version" not in metadata
    stored = params.read(tmp_path / "m.npz").metadata
    assert stored["format_version"] == params.FORMAT_VERSION
    assert stored["created"].endswith("+00:00")


def test_save_stores_numpy_scalars_and_big_endian_arrays_as_plain_values(toy, tmp_path):
    arrays = toy_arrays()
    arrays["scale"] = arrays["scale"].astype(">f8")
    metadata = toy_metadata(validation={"set12_psnr": {"15": np.float32(32.5)}})
    file = params.read(params.save(tmp_path / "m.npz", arrays, metadata))
    assert file.metadata["validation"]["set12_psnr"]["15"] == 32.5
    assert file.arrays["scale"].dtype == np.float64 and file.arrays["scale"].dtype.isnative
    np.testing.assert_array_equal(file.arrays["scale"], arrays["scale"])


def test_a_scalar_array_keeps_its_shape(tmp_path):
    """A 0-d entry came back of shape (1,) (np.ascontiguousarray), so save refused a NumPy scalar that its schema
    declared of shape () and read gave another shape than the file holds."""
    metadata = {"family": "scalar-test", "architecture": {}, "sigma_range": [0, 0.1], "training": {},
                "validation": {}}
    path = params.save(tmp_path / "s.npz", {"a": np.float64(1.5)}, metadata,
                       schema=lambda m: {"a": ArraySpec(())})
    with np.load(path) as stored:  # NumPy's own reading of the file
        assert stored["a"].shape == ()
    assert params.read(path).arrays["a"].shape == () and params.read(path).arrays["a"] == 1.5


def test_load_by_path_validates_and_builds_with_options(toy, tmp_path):
    path = params.save(tmp_path / "model.npz", toy_arrays(), toy_metadata())
    for name_or_path in (path, str(path)):
        model = params.load(name_or_path, shape=(8, 8))
        assert model.options == {"shape": (8, 8)}
        assert model.arrays["filters"].shape == (3, 1, 5, 5)
    with pytest.raises(ParameterFileError, match=rf"^{path}: family 'toy' cannot build .*scale must be positive"):
        params.load(path, fail=True)


def test_a_file_in_the_current_folder_is_a_path_when_it_says_so(toy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params.save("model.npz", toy_arrays(), toy_metadata())
    assert params.load("model.npz").metadata["family"] == "toy"
    os.replace("model.npz", "model")
    assert params.load("./model").metadata["family"] == "toy"
    monkeypatch.setattr(params, "_shipped_root", lambda: tmp_path / "weights")
    (tmp_path / "weights").mkdir()
    with pytest.raises(ParameterFileError, match=r"write './model'"):
        params.load("model")


def test_shipped_models_are_loaded_by_name_and_listed(toy, tmp_path, monkeypatch):
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setattr(params, "_shipped_root", lambda: weights)
    assert params.available() == {}
    with pytest.raises(ParameterFileError, match=r"unknown model 'toy' \(no models are shipped"):
        params.load("toy")
    params.save(weights / "toy.npz", toy_arrays(), toy_metadata())
    params.save(weights / "toy-small.npz", toy_arrays(channels=2, kernel_size=3),
                toy_metadata(architecture={"channels": 2, "kernel_size": 3}))
    (weights / "README.md").write_text("not a model")
    assert list(params.available()) == ["toy", "toy-small"]
    assert params.available()["toy-small"]["architecture"] == {"channels": 2, "kernel_size": 3}
    assert params.load("toy-small").arrays["filters"].shape == (2, 1, 3, 3)
    assert params.read("toy").path == str(weights / "toy.npz")
    with pytest.raises(ParameterFileError, match=r"unknown model 'sa-cnn' \(shipped models: toy, toy-small\)"):
        params.load("sa-cnn")


def test_every_shipped_model_loads():
    for name, metadata in params.available().items():
        file = params.read(name)
        params.validate(file)
        assert file.metadata == metadata


def test_unknown_name_in_the_package_says_what_is_shipped():
    shipped = r"(no models are shipped|shipped models: )"
    with pytest.raises(ParameterFileError, match=rf"unknown model 'no-such-model' \({shipped}"):
        params.load("no-such-model")


def test_validate_in_memory_against_an_explicit_schema():
    file = ParameterFile({"w": np.zeros((2, 2))}, {"format_version": 1, **toy_metadata(family="unregistered")})
    params.validate(file, lambda metadata: {"w": ((2, 2), np.float64)})
    with pytest.raises(ParameterFileError, match=r"^array 'w' has shape \(2, 2\), expected \(3, 2\)$"):
        params.validate(file, lambda metadata: {"w": ((3, 2), np.float64)})
    with pytest.raises(ParameterFileError, match="'unregistered', which is not a registered regularizer family"):
        params.validate(file)
    assert "w: float64[2, 2]" in repr(file)
    listed = ParameterFile({"w": [[0.0, 0.0], [0.0, 0.0]]}, file.metadata)  # "'list' object has no attribute ..."
    with pytest.raises(ParameterFileError, match=r"^array 'w' is a list; parameter arrays are NumPy arrays$"):
        params.validate(listed, lambda metadata: {"w": ((2, 2), np.float64)})


def test_family_registry(toy):
    assert "toy" in params.families()
    params.register_family("toy", toy_schema, toy_build)  # the same registration again is harmless
    with pytest.raises(ValueError, match="already registered"):
        params.register_family("toy", toy_schema, lambda file: None)
    with pytest.raises(KeyError, match="no family 'other'"):
        params.unregister_family("other")


# ----------------------------------------------------------------------------- malformed files


def test_truncated_file(toy, tmp_path):
    path = params.save(tmp_path / "m.npz", toy_arrays(), toy_metadata())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    rejected(path, None, "truncated or corrupt")


def test_corrupted_array_data_fails_its_checksum(toy, tmp_path):
    arrays = toy_arrays()
    path = params.save(tmp_path / "m.npz", arrays, toy_metadata())
    data = bytearray(path.read_bytes())
    start = bytes(data).index(arrays["filters"].tobytes())
    data[start + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    rejected(path, "filters", "array 'filters' is truncated or corrupt", "CRC")


@pytest.mark.parametrize("content", [b"hello, world", b"", pickle.dumps({"w": [1.0]})], ids=["text", "empty", "pickle"])
def test_not_a_zip_archive(tmp_path, content):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    rejected(path, None, "is not a parameter file")


def test_a_single_npy_array_is_not_a_parameter_file(tmp_path):
    path = tmp_path / "m.npy"
    np.save(path, np.zeros(3))
    rejected(path, None, "is not a parameter file")


def test_missing_file_and_folder(tmp_path):
    rejected(tmp_path / "absent.npz", None, "no such file")
    rejected(tmp_path, None, "is a folder")


def test_a_shipped_name_written_as_a_file_points_to_the_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no crr.npz here: the user meant the shipped model
    with pytest.raises(ParameterFileError, match="crr.npz: no such file; the shipped model is loaded by its name "
                                                 "as a str, 'crr'"):
        params.load("crr.npz")
    with pytest.raises(ParameterFileError, match="^crr: no such file; the shipped model is loaded by its name as a "
                                                 "str, 'crr'"):
        params.load(Path("crr"))  # it said only "crr: no such file"


def test_missing_array(toy, tmp_path):
    arrays = toy_arrays()
    del arrays["scale"]
    path = write_raw(tmp_path / "m.npz", arrays, toy_metadata())
    rejected(path, "scale", "array 'scale' is missing", "'filters', 'scale'")


def test_unexpected_array(toy, tmp_path):
    path = write_raw(tmp_path / "m.npz", {**toy_arrays(), "bias": np.zeros(3)}, toy_metadata())
    rejected(path, "bias", "array 'bias' is not part of a 'toy' model")


def test_wrong_shape(toy, tmp_path):
    path = write_raw(tmp_path / "m.npz", toy_arrays(kernel_size=3), toy_metadata())
    rejected(path, "filters", "array 'filters' has shape (3, 1, 3, 3), expected (3, 1, 5, 5)")


def test_wrong_dtype(toy, tmp_path):
    arrays = toy_arrays()
    path = write_raw(tmp_path / "a.npz", {**arrays, "filters": arrays["filters"].astype(np.float64)}, toy_metadata())
    rejected(path, "filters", "array 'filters' has dtype float64, expected float32")
    path = write_raw(tmp_path / "b.npz", {**arrays, "scale": np.ones(3, dtype=np.int64)}, toy_metadata())
    rejected(path, "scale", "array 'scale' has dtype int64; parameter arrays are float32 or float64")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values(toy, tmp_path, value):
    arrays = toy_arrays()
    arrays["filters"][2, 0, 1, 4] = value
    path = write_raw(tmp_path / "m.npz", arrays, toy_metadata())
    rejected(path, "filters", "array 'filters' has 1 non-finite value(s)", f"{value} at index (2, 0, 1, 4)")


@pytest.mark.parametrize("version, fragment", [
    (2, "format_version 2 is not supported (this adareg reads version 1); a newer adareg may read it"),
    (0, "format_version 0 is not supported"),
    ("1", "'format_version' must be an integer, got '1'"),
    (True, "'format_version' must be an integer, got True"),
])
def test_unknown_format_version(toy, tmp_path, version, fragment):
    path = write_raw(tmp_path / "m.npz", toy_arrays(), toy_metadata(format_version=version))
    rejected(path, "metadata.format_version", fragment)


def test_unknown_family(toy, tmp_path):
    path = write_raw(tmp_path / "m.npz", toy_arrays(), toy_metadata(family="sa-unknown"))
    rejected(path, "metadata.family", "'sa-unknown', which is not a registered regularizer family", "toy")


@pytest.mark.parametrize("metadata, fragment", [
    (b'{"format_version": 1, "family": ', "the metadata is not valid JSON"),
    (b"\xff\xfe{}", "the metadata is not UTF-8 text"),
    (b'[1, 2]', "the metadata must be a JSON object, got list"),
    (b'{"format_version": 1, "sigma_range": [0, NaN]}', "NaN is not a JSON value"),
    (b'{"family": "toy"}', "metadata has no 'format_version'"),
    (b'{"format_version": 1, "family": "toy", "family": "crr"}', "repeated key: 'family'"),
], ids=["truncated-json", "not-utf8", "not-an-object", "nan", "no-version", "repeated-key"])
def test_bad_metadata_json(toy, tmp_path, metadata, fragment):
    path = write_raw(tmp_path / "m.npz", toy_arrays(), metadata)
    field = "metadata.format_version" if "format_version'" in fragment else "__metadata__"
    rejected(path, field, fragment)


def test_missing_or_malformed_metadata_entry(toy, tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, **toy_arrays())
    rejected(path, "__metadata__", "has no '__metadata__' entry")
    path = tmp_path / "b.npz"
    np.savez(path, **toy_arrays(), __metadata__=np.zeros(4))
    rejected(path, "__metadata__", "must be a 1-D uint8 array of UTF-8 JSON")


@pytest.mark.parametrize("key, value, fragment", [
    ("architecture", None, "metadata has no 'architecture'"),
    ("training", "BSD400", "'training' must be a JSON object, got 'BSD400'"),
    ("sigma_range", [0, 30], "'sigma_range' must be [low, high] with 0 <= low <= high <= 1"),
    ("sigma_range", [0.1], "'sigma_range' must be [low, high]"),
    ("created", "yesterday", "'created' must be an ISO 8601 date"),
    ("family", "", "'family' is empty"),
])
def test_malformed_metadata_fields(toy, tmp_path, key, value, fragment):
    metadata = toy_metadata(**{key: value})
    if value is None:
        del metadata[key]
    path = write_raw(tmp_path / "m.npz", toy_arrays(), metadata)
    rejected(path, f"metadata.{key}", fragment)


def test_architecture_the_family_cannot_use(toy, tmp_path):
    path = write_raw(tmp_path / "a.npz", toy_arrays(), toy_metadata(architecture={"channels": 3}))
    rejected(path, "metadata.architecture", "'architecture' has no 'kernel_size', which family 'toy' needs")
    path = write_raw(tmp_path / "b.npz", toy_arrays(), toy_metadata(architecture={"channels": 3, "kernel_size": 2.5}))
    rejected(path, "metadata.architecture", "gives array 'filters' the invalid shape (3, 1, 2.5, 2.5)")


def test_entry_that_is_not_an_npy_array(toy, tmp_path):
    import zipfile

    path = params.save(tmp_path / "m.npz", toy_arrays(), toy_metadata())
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("payload.pkl", pickle.dumps([1]))
    rejected(path, "payload.pkl", "entry 'payload.pkl' is not an .npy array")


class _CreatesFileWhenUnpickled:
    """Unpickling this object opens (creates) ``marker``: a stand-in for arbitrary code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_object_array_is_refused_without_running_it(toy, tmp_path):
    # The trap is armed: loading with pickles allowed does run it.
    armed, armed_marker = tmp_path / "armed.npz", tmp_path / "armed-ran"
    np.savez(armed, w=np.array([_CreatesFileWhenUnpickled(armed_marker)], dtype=object))
    with np.load(armed, allow_pickle=True) as npz:
        npz["w"][0].close()
    assert armed_marker.exists()

    marker = tmp_path / "ran"
    trap = np.array([_CreatesFileWhenUnpickled(marker)], dtype=object)
    path = write_raw(tmp_path / "m.npz", toy_arrays(), toy_metadata(), trap=trap)
    rejected(path, "trap", "array 'trap' holds Python objects (a pickle)", "it was not read")
    with pytest.raises(ParameterFileError):
        params.load(path)
    path = write_raw(tmp_path / "n.npz", {**toy_arrays(), "scale": trap}, toy_metadata())
    rejected(path, "scale", "holds Python objects")
    path = tmp_path / "p.npz"
    path.write_bytes(pickle.dumps(trap))
    rejected(path, None, "is not a parameter file")
    assert not marker.exists()


# ----------------------------------------------------------------------------- sizes: bombs and lying files

MiB = 2**20


def npy(header: str, data: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    """An .npy entry with exactly the header text given (padded as NumPy pads it), then ``data``."""
    length = "<H" if version == (1, 0) else "<I"
    text = header.encode("latin1")
    text += b" " * (-(8 + struct.calcsize(length) + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack(length, len(text)) + text + data


def metadata_array(metadata: dict) -> np.ndarray:
    return np.frombuffer(json.dumps({"format_version": 1, **metadata}).encode(), dtype=np.uint8)


def metadata_npy(metadata: dict) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, metadata_array(metadata))
    return buffer.getvalue()


def write_entries(path, entries: dict[str, bytes]):
    """A zip archive written by zipfile (consistent sizes and CRCs) of .npy ``entries`` as given, and metadata."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("__metadata__.npy", metadata_npy(toy_metadata()))
        for name, data in entries.items():
            archive.writestr(f"{name}.npy", data)
    return path


def deflated_zeros(header: bytes, zeros: int) -> bytes:
    """A raw deflate stream of ``header`` then ``zeros`` zero bytes (a multiple of 1 MiB), without compressing them all.

    Each part ends in a full flush, so that it does not refer to the data before it
    and can be repeated; ``b"\\x03\\x00"`` is an empty final block.
    """
    def part(data: bytes) -> bytes:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        return compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)

    return part(header) + part(bytes(MiB)) * (zeros // MiB) + b"\x03\x00"


def raw_zip(path, entries):
    """A zip archive of ``(name, stored bytes, method, crc, declared size)`` entries, sizes and CRCs as given."""
    out, directory = bytearray(), bytearray()
    for name, data, method, crc, size in entries:
        encoded = name.encode()
        directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc, len(data), size,
                                 len(encoded), 0, 0, 0, 0, 0, len(out)) + encoded
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(data), size,
                           len(encoded), 0) + encoded + data
    count = len(entries)
    out += directory + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), len(out), 0)
    Path(path).write_bytes(out)
    return path


def zeros_entry(name: str, nbytes: int, declared: int | None = None, checksum: bool = False):
    """A deflated float32 entry of ``nbytes`` zero bytes, declaring ``declared`` bytes of data (default: all).

    Its CRC-32 is that of what it declares with ``checksum``, else 0.
    """
    declared = nbytes if declared is None else declared
    header = npy(f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({declared // 4},), }}")
    crc = zlib.crc32(bytes(declared), zlib.crc32(header)) if checksum else 0
    return f"{name}.npy", deflated_zeros(header, nbytes), zipfile.ZIP_DEFLATED, crc, len(header) + declared


def stored_entry(name: str, data: bytes):
    return f"{name}.npy", data, zipfile.ZIP_STORED, zlib.crc32(data), len(data)


def measured(path):
    """``params.read(path)`` (or the ParameterFileError it raises), its time, and the peak traced memory."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = params.read(path)
    except ParameterFileError as err:
        result = err
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result, seconds, peak


def test_zip_bomb_is_refused_before_it_is_decompressed(tmp_path):
    # 410 kB on disk, 400 MiB of zeros in the entry 'w'
    bomb = raw_zip(tmp_path / "bomb.npz", [stored_entry("__metadata__", metadata_npy(toy_metadata())),
                                           zeros_entry("w", 400 * MiB)])
    assert bomb.stat().st_size < 500_000
    error, seconds, peak = measured(bomb)
    assert isinstance(error, ParameterFileError) and error.field == "w" and error.file == str(bomb)
    assert f"{bomb}: entry 'w.npy' declares {400 * MiB + 128} bytes uncompressed" in str(error)
    assert "it was not decompressed" in str(error)
    assert seconds < 1 and peak < MiB


def test_entries_together_over_the_limit_are_refused_before_decompressing(tmp_path):
    path = raw_zip(tmp_path / "m.npz", [stored_entry("__metadata__", metadata_npy(toy_metadata())),
                                        zeros_entry("a", 40 * MiB), zeros_entry("b", 40 * MiB)])
    error, seconds, peak = measured(path)
    assert isinstance(error, ParameterFileError) and error.field is None
    assert f"its entries declare {80 * MiB + 2 * 128 + len(metadata_npy(toy_metadata()))} bytes" in str(error)
    assert seconds < 1 and peak < MiB


def test_a_file_near_the_size_limit_is_read(tmp_path):
    path = raw_zip(tmp_path / "m.npz", [stored_entry("__metadata__", metadata_npy(toy_metadata())),
                                        zeros_entry("w", 60 * MiB, checksum=True)])
    w = params.read(path).arrays["w"]
    assert w.shape == (15 * MiB,) and w.dtype == np.float32 and not w.any()


@pytest.mark.parametrize("checksum", [True, False], ids=["crc-of-the-declared-part", "wrong-crc"])
def test_an_entry_is_never_decompressed_beyond_its_declared_size(tmp_path, checksum):
    """The directory declares 100 float32, the deflate stream holds 400 MiB of zeros: only the 100 come out."""
    path = raw_zip(tmp_path / "m.npz", [stored_entry("__metadata__", metadata_npy(toy_metadata())),
                                        zeros_entry("w", 400 * MiB, declared=400, checksum=checksum)])
    result, seconds, peak = measured(path)
    if checksum:
        np.testing.assert_array_equal(result.arrays["w"], np.zeros(100, dtype=np.float32))
    else:
        assert isinstance(result, ParameterFileError) and result.field == "w"
        assert "array 'w' is truncated or corrupt" in str(result) and "CRC" in str(result)
    assert seconds < 1 and peak < MiB


def test_misshapen_array_of_a_registered_family_is_refused_before_its_data_are_read(toy, tmp_path):
    path = raw_zip(tmp_path / "m.npz", [stored_entry("__metadata__", metadata_npy(toy_metadata())),
                                        zeros_entry("filters", 48 * MiB)])
    error, _, peak = measured(path)
    assert isinstance(error, ParameterFileError) and error.field == "filters"
    assert "array 'filters' has shape (12582912,), expected (3, 1, 5, 5)" in str(error)
    assert peak < MiB  # the 48 MiB were not decompressed


def test_metadata_over_its_limit_is_refused(toy, tmp_path):
    path = write_raw(tmp_path / "m.npz", toy_arrays(), toy_metadata(training={"notes": "x" * (2 * MiB)}))
    rejected(path, "__metadata__", "entry '__metadata__.npy' declares", f"({params.MAX_METADATA_BYTES})")


def test_zip_directory_over_its_limit_is_refused_before_it_is_parsed(tmp_path):
    # 25000 directory records (1.3 MB) for one entry; zipfile would make an object for each
    entry = stored_entry("a", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", bytes(4)))
    path = raw_zip(tmp_path / "m.npz", [entry] * 25000)
    error, _, peak = measured(path)
    assert isinstance(error, ParameterFileError) and error.field is None
    assert f"its zip directory declares {25000 * 51} bytes" in str(error)
    assert peak < MiB


def test_save_refuses_what_read_would_refuse_for_its_size(toy, tmp_path):
    with pytest.raises(ParameterFileError, match=r"entry '__metadata__.npy' declares \d+ bytes") as info:
        params.save(tmp_path / "m.npz", toy_arrays(), toy_metadata(training={"notes": "x" * (2 * MiB)}))
    assert info.value.file == str(tmp_path / "m.npz") and info.value.field == "__metadata__"
    assert list(tmp_path.iterdir()) == []


def _with_comment(path):
    with zipfile.ZipFile(path, "a") as archive:
        archive.comment = b"a comment"


def _as_zip64(path, monkeypatch):
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)  # more entries than this: zipfile writes zip64 records
    np.savez(path, **toy_arrays(), __metadata__=metadata_array(toy_metadata()))
    monkeypatch.undo()
    assert len(zipfile.ZipFile(path).namelist()) == 3  # a zip64 archive zipfile reads


def _encrypted(path):
    data = bytearray(path.read_bytes())
    flags = data.index(b"PK\x01\x02") + 8  # the general purpose flags of the first directory record
    data[flags] |= 0x1
    path.write_bytes(bytes(data))


def _lzma(path):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_LZMA) as archive:
        archive.writestr("__metadata__.npy", metadata_npy(toy_metadata()))


def _twice(path):
    with zipfile.ZipFile(path, "w") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        archive.writestr("__metadata__.npy", metadata_npy(toy_metadata()))
        archive.writestr("__metadata__.npy", metadata_npy(toy_metadata()))


@pytest.mark.parametrize("change, field, fragment", [
    ("comment", None, "does not end with a zip archive's end record"),
    ("zip64", None, "is a zip64 archive"),
    ("encrypted", "filters", "entry 'filters.npy' is encrypted or compressed in a way numpy.savez never writes"),
    ("lzma", "__metadata__", "entry '__metadata__.npy' is encrypted or compressed in a way"),
    ("twice", "__metadata__", "entry '__metadata__.npy' appears more than once"),
])
def test_zip_archive_not_laid_out_as_numpy_writes_one(toy, tmp_path, monkeypatch, change, field, fragment):
    path = params.save(tmp_path / "m.npz", toy_arrays(), toy_metadata())
    {"comment": _with_comment, "encrypted": _encrypted, "lzma": _lzma, "twice": _twice,
     "zip64": lambda p: _as_zip64(p, monkeypatch)}[change](path)
    rejected(path, field, fragment)


def test_savez_compressed_files_are_read(toy, tmp_path):
    arrays = toy_arrays()
    path = tmp_path / "m.npz"
    np.savez_compressed(path, **arrays, __metadata__=metadata_array(toy_metadata()))
    assert {info.compress_type for info in zipfile.ZipFile(path).infolist()} == {zipfile.ZIP_DEFLATED}
    file = params.read(path)
    for name, array in arrays.items():
        np.testing.assert_array_equal(file.arrays[name], array)


SCALE = "'descr': '<f8', 'fortran_order': False, 'shape': (3,)"


@pytest.mark.parametrize("entry, fragment", [
    (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", bytes(24)),
     "its header declares shape (4,) of float64, 32 bytes, the archive 24 bytes of data"),
    (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }", bytes(24)),
     "its header declares shape (1099511627776,) of float64, 8796093022208 bytes"),
    (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (-1, -3), }", bytes(24)),
     "its .npy header declares the shape (-1, -3)"),
    (npy("{" + SCALE + ", }", bytes(24), version=(3, 0)), ".npy format version 3.0 (1.0 and 2.0 are read)"),
    (npy("{" + SCALE + ", }", bytes(24), version=(2, 0)) + b"!",
     "its header declares shape (3,) of float64, 24 bytes, the archive 25 bytes of data"),
    (npy("[1, 2]", bytes(24)), "(ValueError: Header is not a dictionary: [1, 2])"),
    (npy("-" * 9000 + "1", bytes(24)), "(ValueError: the header nests too deeply)"),
    (npy("{" + SCALE + ", }")[:-20], "truncated or corrupt (ValueError: EOF: reading array header"),
    (b"\x93NUMPY\x01\x00\xff\xff{", "truncated or corrupt (ValueError: EOF: reading array header"),
    (b"PK\x03\x04" + bytes(60), "truncated or corrupt (ValueError: the magic string is not correct"),
], ids=["short-data", "huge-shape", "negative-shape", "version-3", "long-data", "not-a-dict", "deeply-nested",
        "truncated-header", "header-length-lies", "not-npy"])
def test_npy_header_that_disagrees_with_the_archive(tmp_path, entry, fragment):
    path = write_entries(tmp_path / "m.npz", {"scale": entry})
    message = rejected(path, "scale", fragment)
    assert "array 'scale'" in message


def test_metadata_header_that_disagrees_with_the_archive(tmp_path):
    path = tmp_path / "m.npz"
    with zipfile.ZipFile(path, "w") as archive:
        header = "{'descr': '|u1', 'fortran_order': False, 'shape': (1099511627776,), }"
        archive.writestr("__metadata__.npy", npy(header, b"{}"))
    rejected(path, "__metadata__", "array '__metadata__' is truncated or corrupt: its header declares shape "
             "(1099511627776,) of uint8")


@pytest.mark.parametrize("layout", ["as-saved", "fortran-order", "big-endian"])
def test_arrays_come_back_native_c_ordered_and_writable(toy, tmp_path, layout):
    arrays = toy_arrays()
    if layout == "as-saved":
        stored = arrays
    elif layout == "fortran-order":
        stored = {name: np.asfortranarray(array) for name, array in arrays.items()}
    else:
        stored = {name: array.astype(array.dtype.newbyteorder(">")) for name, array in arrays.items()}
    file = params.read(write_raw(tmp_path / "m.npz", stored, toy_metadata()))
    for name, array in arrays.items():
        got = file.arrays[name]
        np.testing.assert_array_equal(got, array)
        assert got.dtype == array.dtype and got.flags.c_contiguous and got.flags.writeable


def test_non_finite_values_are_counted(toy, tmp_path):
    arrays = toy_arrays()
    arrays["filters"][1, 0, 2:, 3] = np.nan
    arrays["filters"][0, 0, 4, 4] = np.inf
    path = write_raw(tmp_path / "m.npz", arrays, toy_metadata())
    rejected(path, "filters", "array 'filters' has 4 non-finite value(s)", "(first: inf at index (0, 0, 4, 4))")


def test_build_failing_on_a_number_out_of_range_is_a_parameter_file_error(tmp_path):
    def build(file):
        return math.exp(file.metadata["architecture"]["gain"])

    params.register_family("toy-gain", lambda metadata: {}, build)
    try:
        path = write_raw(tmp_path / "m.npz", {}, toy_metadata(family="toy-gain", architecture={"gain": 1000}))
        with pytest.raises(ParameterFileError, match=rf"^{path}: family 'toy-gain' cannot build a regularizer from "
                                                     "it: math range error$"):
            params.load(path)
    finally:
        params.unregister_family("toy-gain")


def test_metadata_values_that_overflow_or_index_out_of_range(tmp_path):
    assert "sa-b" in params.families()  # importing adareg registers the learned families
    path = write_raw(tmp_path / "a.npz", toy_arrays(), toy_metadata(sigma_range=[0, 10**400]))
    rejected(path, "metadata.sigma_range", "'sigma_range' must be [low, high]")
    architecture = {"bank_channels": [], "bank_kernels": [], "blur_kernel": 3}
    path = write_raw(tmp_path / "b.npz", toy_arrays(), toy_metadata(family="sa-b", architecture=architecture))
    rejected(path, "metadata.architecture", "does not describe a 'sa-b' model")


def test_options_a_family_does_not_take_are_named():
    with pytest.raises(TypeError, match="load: 'crr' models take the options: none; got device"):
        params.load("crr", device="gpu")


def test_boundary_and_activation_have_no_default(tmp_path):
    # a model trained with zero padding or ReLU would otherwise load and run with reflect and leaky ReLU
    shipped = params.read("sa-cnn")
    for key, value, words in [("boundary", None, "'architecture' has no 'boundary', which family 'sa-cnn' needs"),
                              ("activation", None, "'architecture' has no 'activation', which family 'sa-cnn' needs"),
                              ("boundary", "mirror", "architecture['boundary'] must be one of 'zero', 'periodic', "
                                                     "'reflect', got 'mirror'"),
                              ("activation", "gelu", "architecture['activation'] must be one of"),
                              # JSON's true is a Python int: it loaded as a size of 1 before
                              ("lam_knots", True, "architecture['lam_knots'] must be a positive int, got True"),
                              ("bank_kernels", [True, 5, 5], "architecture['bank_kernels'] must be a non-empty list "
                                                             "of positive ints, got [True, 5, 5]")]:
        architecture = {k: v for k, v in shipped.metadata["architecture"].items() if k != key}
        if value is not None:
            architecture[key] = value
        metadata = {**shipped.metadata, "architecture": architecture}
        path = write_raw(tmp_path / f"{key}-{value}.npz", dict(shipped.arrays), metadata)
        rejected(path, "metadata.architecture", words)


def test_even_kernel_sizes_are_refused_as_the_architecture(tmp_path):
    """An even bank or mask kernel size failed in the builder, named as "FilterBank: layer 1" or "MaskCNN: kernel 1"
    rather than as the file's architecture (sa-b's blur_kernel was already checked so)."""
    shipped = params.read("sa-cnn")
    for key in ("bank_kernels", "mask_kernels"):
        architecture = {**shipped.metadata["architecture"], key: [3, 4, 3]}
        path = write_raw(tmp_path / f"{key}.npz", dict(shipped.arrays), {**shipped.metadata,
                                                                         "architecture": architecture})
        rejected(path, "metadata.architecture", f"architecture['{key}'] must hold odd kernel sizes, got [3, 4, 3]")


# ----------------------------------------------------------------------------- saving


def test_save_refuses_what_load_would_refuse_and_writes_nothing(toy, tmp_path):
    path = tmp_path / "m.npz"
    bad = toy_arrays()
    bad["scale"][0] = np.nan
    with pytest.raises(ParameterFileError, match=rf"^{path}: array 'scale' has 1 non-finite"):
        params.save(path, bad, toy_metadata())
    with pytest.raises(ParameterFileError, match="array 'filters' has shape"):
        params.save(path, toy_arrays(kernel_size=3), toy_metadata())
    with pytest.raises(ParameterFileError, match="not a registered regularizer family"):
        params.save(path, toy_arrays(), toy_metadata(family="nobody"))
    with pytest.raises(ParameterFileError, match="save writes format_version 1, got 2"):
        params.save(path, toy_arrays(), toy_metadata(format_version=2))
    with pytest.raises(ParameterFileError, match="'__metadata__' is not a valid array name"):
        params.save(path, {**toy_arrays(), "__metadata__": np.zeros(1)}, toy_metadata())
    with pytest.raises(TypeError, match="metadata for .* is not JSON-serialisable"):
        params.save(path, toy_arrays(), toy_metadata(training={"data": object()}))
    with pytest.raises(TypeError, match="metadata for .* is not JSON-serialisable"):
        params.save(path, toy_arrays(), toy_metadata(validation={"psnr": float("nan")}))
    with pytest.raises(TypeError, match=r"arrays\['scale'\] is a list; expected a NumPy array"):
        params.save(path, {**toy_arrays(), "scale": [1.0, 1.0, 1.0]}, toy_metadata())
    with pytest.raises(ValueError, match="path must end in '.npz'"):
        params.save(tmp_path / "m.npy", toy_arrays(), toy_metadata())
    # these named the temporary file, not the path
    with pytest.raises(ValueError, match=rf"^save: {tmp_path / 'missing' / 'm.npz'}: the folder .*missing does not "
                                         "exist"):
        params.save(tmp_path / "missing" / "m.npz", toy_arrays(), toy_metadata())
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(ValueError, match=rf"^save: {tmp_path / 'd.npz'} is a directory"):
        params.save(tmp_path / "d.npz", toy_arrays(), toy_metadata())


@pytest.mark.parametrize("change, words", [
    (lambda a: a.__setitem__("lam_knots", a["lam_knots"][::-1].copy()), "lam: knots must increase strictly"),
    (lambda a: a.__setitem__("scale_values", -a["scale_values"]), "scale: values must be non-negative"),
    (lambda a: a.__setitem__("lam_knots", a["lam_knots"] * 255), "lam: knots are noise levels on the [0, 1] "
                                                                  "intensity scale, got 0 to 30"),
    # knots short of sigma_range: lambda(sigma) and alpha(sigma) were held constant beyond them, unseen
    (lambda a: a.__setitem__("lam_knots", a["lam_knots"] / 2), "the knots of lam(sigma) span [0, 0.0588235], not "
                                                               "the trained sigma_range [0, 0.117647]"),
    (lambda a: a.__setitem__("scale_knots", a["scale_knots"] + 0.01), "the knots of scale(sigma) span [0.01, "),
])
def test_save_refuses_parameters_the_family_cannot_build(tmp_path, change, words):
    # save wrote these and load refused them, though save promises files that load accepts
    shipped = params.read("crr")
    arrays = dict(shipped.arrays)
    change(arrays)
    metadata = {key: value for key, value in shipped.metadata.items() if key != "created"}
    with pytest.raises(ParameterFileError, match=rf"^{tmp_path / 'm.npz'}: family 'crr' cannot build .*"
                                                 rf"{re.escape(words)}"):
        params.save(tmp_path / "m.npz", arrays, metadata)
    assert list(tmp_path.iterdir()) == []


def test_save_is_atomic(toy, tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    params.save(path, toy_arrays(), toy_metadata())
    params.save(path, toy_arrays(np.random.default_rng(1)), toy_metadata())
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(params.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        params.save(path, toy_arrays(np.random.default_rng(2)), toy_metadata())
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]
    expected = toy_arrays(np.random.default_rng(1))["filters"]
    assert params.read(path).arrays["filters"].tobytes() == expected.tobytes()


# ----------------------------------------------------------------------------- packaging


def test_import_is_light():
    code = ("import sys, adareg.params; heavy = {'torch', 'cupy', 'joblib', 'dill', 'cloudpickle'}; "
            "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_parameter_files_ship_with_the_package():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "*.npz" in config["tool"]["setuptools"]["package-data"]["adareg.weights"]
