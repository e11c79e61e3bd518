"""Parameter files of the learned regularizers: read, validate, save, and load by name.

A parameter file is one ``.npz`` archive (:func:`numpy.savez`) that holds

* the learned arrays, each a float32 or float64 ``.npy`` entry under its own name, and
* one entry ``__metadata__``: a 1-D uint8 array of UTF-8 encoded JSON, an object with

  ==================  ===========================================================
  ``format_version``  int, the version of this layout (:data:`FORMAT_VERSION`)
  ``family``          str, the regularizer family (``"crr"``, ``"sa-cnn"``, ...)
  ``architecture``    object, the sizes the family needs to know every array's
                      shape (channels, kernel sizes, spline knots, ...)
  ``sigma_range``     ``[low, high]``, the noise levels the model was trained for,
                      on the 0-1 intensity scale (``[0, 30 / 255]``)
  ``training``        object: data, settings, hardware, duration, code version
  ``validation``      object: results on held-out data, e.g. ``{"set12_psnr": {...}}``
  ``created``         str, ISO 8601 date or date and time
  ==================  ===========================================================

  and any further keys, which are kept but not interpreted.

Reading never unpickles: each entry's ``.npy`` header is parsed first (by
NumPy's parser, which evaluates literals only), an entry whose dtype holds Python
objects is refused before any of its data are read, and data become arrays with
:func:`numpy.frombuffer`, so a parameter file cannot run code (DESIGN.md §5).
Nothing is decompressed or allocated beyond the sizes the archive declares, and
those are checked first: at most :data:`MAX_DATA_BYTES` (64 MiB) per entry and in
all, :data:`MAX_METADATA_BYTES` (1 MiB) of metadata, :data:`MAX_DIRECTORY_BYTES`
(1 MiB) of zip directory; each entry's header must agree with its declared size.
Every problem (missing, truncated or corrupt file, a zip archive not laid out as
:func:`numpy.savez` writes one, sizes over the limits or disagreeing, bad JSON,
object or non-finite arrays, unknown format version or family, missing,
unexpected or misshapen arrays) is one :class:`ParameterFileError` whose message
names the file and the field.

Families register themselves with :func:`register_family` when their module is
imported: a *schema* that gives every array's shape and dtypes from the metadata,
and a *build* function that turns a validated file into a regularizer.
:func:`load` reads, validates and builds; :func:`save` writes only files that
:func:`load` accepts, atomically.  Shipped files live in ``adareg/weights/`` and are
loaded by name, ``load("sa-cnn")``; any other file by path, ``load("./mine.npz")``.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import importlib.resources
import inspect
import json
import math
import operator
import os
import re
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

import numpy as np
from numpy.lib import format as npy_format

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from .regularizers.base import Regularizer

#: The layout version :func:`save` writes; :func:`read` reads exactly these.
FORMAT_VERSION = 1
KNOWN_FORMAT_VERSIONS = frozenset({1})

#: The name of the metadata entry; no array may use it.
METADATA_ENTRY = "__metadata__"

#: Dtypes an array in a parameter file may have.  Integer structure (channels,
#: kernel sizes) belongs in the metadata's ``architecture``, not in arrays.
ARRAY_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

#: Metadata keys every file carries, with their JSON types.
REQUIRED_METADATA: dict[str, type] = {
    "format_version": int,
    "family": str,
    "architecture": dict,
    "sigma_range": list,
    "training": dict,
    "validation": dict,
    "created": str,
}

#: The most bytes any entry of a parameter file, and all its entries together, may
#: hold uncompressed: 64 MiB, 16 million float32 parameters, hundreds of times what
#: the families' files hold.  Checked on the sizes the archive declares, before
#: anything is decompressed; reading a file this size takes about three times as
#: much memory for a moment.
MAX_DATA_BYTES = 64 * 2**20

#: The most bytes the metadata entry may hold uncompressed, 1 MiB, far above what a
#: training record takes.  Lower than :data:`MAX_DATA_BYTES` because JSON
#: becomes Python objects of up to about 20 times its size.
MAX_METADATA_BYTES = 2**20

#: The most bytes the archive's central directory (its list of entries) may take:
#: 1 MiB, room for thousands of entries.  :mod:`zipfile` reads it whole
#: and makes an object of about 400 bytes per entry, so a 64 MiB directory of
#: 50-byte entries would take over 500 MB to open.
MAX_DIRECTORY_BYTES = 2**20

#: The package whose folder holds the shipped parameter files.
WEIGHTS_PACKAGE = "adareg.weights"

_ARRAY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")

# The zip layout numpy.savez writes (APPNOTE.TXT 4.3): what _check_layout looks at.
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive's end record
_END_SIGNATURE = b"PK\x05\x06"
_END_RECORD = struct.Struct("<4s4H2LH")  # signature, 4 disk and entry counts, directory size and offset, comment size
_ZIP64_LOCATOR = b"PK\x06\x07"  # the 20-byte record just before the end record of a zip64 archive
_ZIP64_LOCATOR_SIZE = 20
_COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # numpy.savez's, and numpy.savez_compressed's
_UNSUPPORTED_FLAGS = 0x1 | 0x20 | 0x40  # encrypted, compressed patched data, strong encryption

_HEADER_READERS = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}


class ParameterFileError(ValueError):
    """A parameter file (or what :func:`save` was asked to write) is unusable.

    Attributes
    ----------
    file
        The file concerned, as given (``None`` where no file is involved).
    field
        The offending part: an array's name, ``"metadata.<key>"`` for a metadata
        key, ``"__metadata__"`` for the metadata entry as a whole, or ``None`` for
        the file as a whole.
    """

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        super().__init__(message)
        self.file = file
        self.field = field


def _error(file: str | None, field: str | None, detail: str) -> ParameterFileError:
    prefix = f"{file}: " if file is not None else ""
    return ParameterFileError(prefix + detail, file=file, field=field)


@dataclass(frozen=True, eq=False)
class ParameterFile:
    """The contents of a parameter file.

    Attributes
    ----------
    arrays
        The learned arrays by name (native byte order, C-contiguous), without the
        metadata entry.
    metadata
        The decoded JSON metadata (see the module documentation).
    path
        Where the file was read from, or ``None`` for one built in memory.
    """

    arrays: dict[str, np.ndarray]
    metadata: dict[str, Any]
    path: str | None = None

    @property
    def family(self) -> str:
        """The regularizer family, ``metadata["family"]``."""
        return self.metadata["family"]

    def __repr__(self) -> str:
        arrays = ", ".join(f"{name}: {a.dtype}{list(a.shape)}" for name, a in self.arrays.items())
        return f"ParameterFile(family={self.metadata.get('family')!r}, arrays={{{arrays}}}, path={self.path!r})"


class ArraySpec(NamedTuple):
    """What a family expects of one array: its exact shape and the dtypes it may have."""

    shape: tuple[int, ...]
    dtypes: tuple[np.dtype, ...] = ARRAY_DTYPES


#: ``schema(metadata) -> {array name: ArraySpec or (shape, dtypes)}``
Schema = Callable[[Mapping[str, Any]], Mapping[str, Any]]
#: ``build(parameter_file, **options) -> Regularizer``
Builder = Callable[..., "Regularizer"]


@dataclass(frozen=True)
class Family:
    """A registered regularizer family: its name, array schema and constructor."""

    name: str
    schema: Schema
    build: Builder


_FAMILIES: dict[str, Family] = {}


def register_family(name: str, schema: Schema, build: Builder) -> None:
    """Make parameter files of family ``name`` loadable.

    Parameters
    ----------
    name
        The value of ``metadata["family"]`` in this family's files.
    schema
        ``schema(metadata)`` returns every expected array's name and
        :class:`ArraySpec` (or a ``(shape, dtypes)`` pair), computed from
        ``metadata["architecture"]``.  A missing or mistyped architecture entry
        may raise ``KeyError``, ``IndexError``, ``TypeError`` or ``ValueError``;
        :func:`read` and :func:`validate` report it as an error in the file's
        ``architecture``.
    build
        ``build(file, **options)`` turns a validated :class:`ParameterFile` into a
        regularizer; ``options`` are the keyword arguments given to :func:`load`.
        Parameters it cannot use may raise ``ValueError`` or an ``ArithmeticError``
        (``OverflowError`` for a number too large for a float, ...); :func:`load`
        reports either as a :class:`ParameterFileError`.

    Raises
    ------
    ValueError
        If another family of that name is registered (see :func:`unregister_family`).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"register_family: name must be a non-empty string, got {name!r}")
    if not callable(schema) or not callable(build):
        raise TypeError("register_family: schema and build must be callables")
    family = Family(name, schema, build)
    existing = _FAMILIES.get(name)
    if existing is not None and existing != family:
        raise ValueError(f"register_family: a family {name!r} is already registered; unregister_family it first")
    _FAMILIES[name] = family


def unregister_family(name: str) -> None:
    """Forget family ``name`` (a ``KeyError`` if it is not registered)."""
    try:
        del _FAMILIES[name]
    except KeyError:
        raise KeyError(f"unregister_family: no family {name!r} is registered") from None


def families() -> tuple[str, ...]:
    """Names of the registered families, sorted."""
    return tuple(sorted(_FAMILIES))


def _family(file: str | None, name: Any) -> Family:
    try:
        return _FAMILIES[name]
    except KeyError:
        known = ", ".join(families()) or "none"
        raise _error(file, "metadata.family",
                     f"metadata field 'family' is {name!r}, which is not a registered regularizer family "
                     f"(registered: {known})") from None


# ----------------------------------------------------------------------------- checks


def _check_metadata(file: str | None, metadata: Any) -> None:
    """The format-level rules for metadata; ``format_version`` is checked first."""
    if not isinstance(metadata, dict):
        raise _error(file, METADATA_ENTRY, f"the metadata must be a JSON object, got {type(metadata).__name__}")
    if "format_version" not in metadata:
        raise _error(file, "metadata.format_version", "metadata has no 'format_version'; this is not an adareg "
                     "parameter file")
    version = metadata["format_version"]
    if type(version) is not int:
        raise _error(file, "metadata.format_version",
                     f"metadata field 'format_version' must be an integer, got {version!r}")
    if version not in KNOWN_FORMAT_VERSIONS:
        known = ", ".join(map(str, sorted(KNOWN_FORMAT_VERSIONS)))
        hint = "; a newer adareg may read it" if version > max(KNOWN_FORMAT_VERSIONS) else ""
        raise _error(file, "metadata.format_version",
                     f"format_version {version} is not supported (this adareg reads version {known}){hint}")
    for key, kind in REQUIRED_METADATA.items():
        if key not in metadata:
            raise _error(file, f"metadata.{key}", f"metadata has no {key!r}")
        if not isinstance(metadata[key], kind):
            raise _error(file, f"metadata.{key}", f"metadata field {key!r} must be a JSON "
                         f"{_json_type(kind)}, got {metadata[key]!r}")
    if not metadata["family"]:
        raise _error(file, "metadata.family", "metadata field 'family' is empty")
    sigma = metadata["sigma_range"]
    # NaN and infinities fail the comparisons (math.isfinite would overflow on a huge JSON integer)
    if not (len(sigma) == 2 and all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in sigma)
            and 0 <= sigma[0] <= sigma[1] <= 1):
        raise _error(file, "metadata.sigma_range",
                     f"metadata field 'sigma_range' must be [low, high] with 0 <= low <= high <= 1 "
                     f"(noise levels on the 0-1 intensity scale, e.g. [0, 30 / 255]), got {sigma!r}")
    try:
        datetime.datetime.fromisoformat(_iso(metadata["created"]))
    except ValueError:
        raise _error(file, "metadata.created", f"metadata field 'created' must be an ISO 8601 date, "
                     f"e.g. '2026-05-09' or '2026-05-09T12:00:00+00:00', got {metadata['created']!r}") from None


def _iso(text: str) -> str:
    # Python 3.10's fromisoformat does not know the "Z" suffix.
    return text[:-1] + "+00:00" if text.endswith("Z") else text


def _json_type(kind: type) -> str:
    return {int: "integer", str: "string", dict: "object", list: "array"}[kind]


def _check_array(file: str | None, name: str, array: np.ndarray) -> None:
    """The format-level rules for one array: a NumPy array, of a float dtype, of finite values."""
    if not isinstance(array, np.ndarray):  # a ParameterFile built in memory may hold anything
        raise _error(file, name, f"array {name!r} is a {type(array).__name__}; parameter arrays are NumPy arrays")
    _check_dtype(file, name, array.dtype)
    _check_finite(file, name, array)


def _check_dtype(file: str | None, name: str, dtype: np.dtype) -> None:
    """A parameter array's dtype is float32 or float64."""
    if dtype not in ARRAY_DTYPES:
        raise _error(file, name, f"array {name!r} has dtype {dtype}; parameter arrays are float32 or float64")


def _check_finite(file: str | None, name: str, array: np.ndarray) -> None:
    """Every value finite; the message counts the others and locates the first (no index array is made)."""
    finite = np.isfinite(array)
    if not finite.all():
        count = finite.size - np.count_nonzero(finite)
        first = tuple(int(i) for i in np.unravel_index(np.argmin(finite), array.shape))
        raise _error(file, name, f"array {name!r} has {count} non-finite value(s) "
                     f"(first: {array[first]} at index {first})")


def _check_spec(file: str | None, name: str, shape: tuple[int, ...], dtype: np.dtype, spec: ArraySpec) -> None:
    """The shape and dtype of array ``name`` are those its family's ``spec`` gives."""
    if shape != spec.shape:
        raise _error(file, name, f"array {name!r} has shape {shape}, expected {spec.shape}")
    if dtype not in spec.dtypes:
        allowed = " or ".join(str(d) for d in spec.dtypes)
        raise _error(file, name, f"array {name!r} has dtype {dtype}, expected {allowed}")


def _check_name(file: str | None, name: Any) -> None:
    if not isinstance(name, str) or not _ARRAY_NAME.fullmatch(name) or name == METADATA_ENTRY:
        raise _error(file, str(name), f"{name!r} is not a valid array name (letters, digits, '_', '.', '-'; "
                     f"not starting with '.' or '-'; {METADATA_ENTRY!r} is reserved)")


def _expected(file: str | None, metadata: Mapping[str, Any], schema: Schema) -> dict[str, ArraySpec]:
    """The family's schema evaluated on ``metadata``, as ``ArraySpec`` with integer shapes."""
    family = metadata.get("family")
    try:
        raw = schema(metadata)
    except KeyError as err:
        raise _error(file, "metadata.architecture",
                     f"metadata field 'architecture' has no {err.args[0]!r}, which family {family!r} needs") from None
    except (TypeError, ValueError, IndexError) as err:
        raise _error(file, "metadata.architecture",
                     f"metadata field 'architecture' does not describe a {family!r} model: {err}") from None
    specs = {}
    for name, spec in raw.items():
        shape, dtypes = spec
        try:
            shape = tuple(operator.index(n) for n in shape)
            if any(n < 0 for n in shape):
                raise ValueError
        except (TypeError, ValueError):
            raise _error(file, "metadata.architecture", f"metadata field 'architecture' gives array {name!r} "
                         f"the invalid shape {shape!r}") from None
        dtypes = dtypes if isinstance(dtypes, (tuple, list)) else (dtypes,)
        specs[name] = ArraySpec(shape, tuple(np.dtype(d) for d in dtypes))
    return specs


def validate(file: ParameterFile, schema: Schema | None = None) -> None:
    """Check ``file`` completely; return ``None`` or raise :class:`ParameterFileError`.

    Checked, in this order: the metadata (a known ``format_version``, then every
    required key with its type, ``sigma_range`` within [0, 1], ``created`` an ISO
    date), every array (float32 or float64, finite), the family (registered, unless
    ``schema`` is given), and against the schema: every expected array present, no
    unexpected array, exact shapes, allowed dtypes.

    Parameters
    ----------
    file
        What :func:`read` returned, or a :class:`ParameterFile` built in memory.
    schema
        The schema to check against; by default the registered family's.
    """
    label = file.path
    _check_metadata(label, file.metadata)
    for name, array in file.arrays.items():
        _check_name(label, name)
        _check_array(label, name, array)
    if schema is None:
        schema = _family(label, file.metadata["family"]).schema
    expected = _expected(label, file.metadata, schema)
    family = file.metadata["family"]
    missing = [name for name in expected if name not in file.arrays]
    if missing:
        raise _error(label, missing[0], f"array {missing[0]!r} is missing (family {family!r} expects "
                     f"{', '.join(map(repr, expected))})")
    unexpected = [name for name in file.arrays if name not in expected]
    if unexpected:
        raise _error(label, unexpected[0], f"array {unexpected[0]!r} is not part of a {family!r} model "
                     f"(expected {', '.join(map(repr, expected))})")
    for name, spec in expected.items():
        _check_spec(label, name, file.arrays[name].shape, file.arrays[name].dtype, spec)


# ----------------------------------------------------------------------------- reading


class _Archive(NamedTuple):
    """An open parameter file: the name its messages give it, its zip archive, and its entries by array name."""

    label: str
    zip: zipfile.ZipFile
    entries: dict[str, zipfile.ZipInfo]


#: ``check(shape, dtype)``: a reader's rules for the shape and dtype an entry's header declares.
_HeaderCheck = Callable[[tuple[int, ...], np.dtype], None]


@contextlib.contextmanager
def _malformed(label: str, field: str | None, what: str) -> Iterator[None]:
    """Turn an error of :mod:`zipfile` or NumPy's ``.npy`` header parser into a ``ParameterFileError``.

    Neither documents every exception malformed bytes raise (``BadZipFile``,
    ``EOFError``, ``zlib.error``, ``struct.error``, ``UnicodeDecodeError``,
    ``NotImplementedError``, ``RecursionError``, ...), so any ``Exception`` inside is
    the file's fault, reported as ``what``.  ``MemoryError`` is not: sizes are checked
    before anything large is read, so running out of memory is the machine's problem.
    """
    try:
        yield
    except MemoryError:
        raise
    except Exception as err:
        raise _error(label, field, f"{what} ({type(err).__name__}: {err})") from err


@contextlib.contextmanager
def _open_npz(path: str | os.PathLike, label: str | None = None) -> Iterator[_Archive]:
    """Open the parameter file ``path``; every failure a ``ParameterFileError`` naming ``label`` (or ``path``).

    Nothing is decompressed here: the zip layout (:func:`_check_layout`) is checked
    before :mod:`zipfile` reads the directory, and the directory (:func:`_entries`)
    before any entry is opened.
    """
    label = str(path) if label is None else label
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        raise _error(label, None, "no such file") from None
    except IsADirectoryError:
        raise _error(label, None, "is a folder, not a parameter file") from None
    except OSError as err:
        raise _error(label, None, f"cannot be read: {err.strerror or err}") from None
    with file:
        _check_layout(label, file)
        with _malformed(label, None, "is truncated or corrupt, not a readable zip archive"):
            archive = zipfile.ZipFile(file)
        with archive:
            yield _Archive(label, archive, _entries(label, archive.infolist()))


def _check_layout(label: str, file: BinaryIO) -> None:
    """Refuse a file that is not laid out as :func:`numpy.savez` writes a zip archive.

    The file must start with a local file header (or, for an empty archive, the end
    record) and end with an end-of-central-directory record without a comment and
    without zip64 records, whose central directory takes at most
    :data:`MAX_DIRECTORY_BYTES`: :mod:`zipfile` reads the directory that record
    points to whole, one object per entry, so its size is checked first.
    """
    try:
        magic = file.read(4)
        size = file.seek(0, os.SEEK_END)
        file.seek(max(0, size - _ZIP64_LOCATOR_SIZE - _END_RECORD.size))
        tail = file.read()
    except OSError as err:
        raise _error(label, None, f"cannot be read: {err.strerror or err}") from None
    if magic not in _ZIP_MAGIC:
        raise _error(label, None, f"is not a parameter file: an .npz (zip) archive starts with b'PK\\x03\\x04', "
                     f"this file with {magic!r}")
    if len(tail) < _END_RECORD.size:
        raise _error(label, None, f"is truncated or corrupt: {size} bytes, too few for a zip archive")
    signature, *_, directory_size, _, comment_size = _END_RECORD.unpack(tail[-_END_RECORD.size:])
    if signature != _END_SIGNATURE or comment_size:
        raise _error(label, None, "is truncated or corrupt: it does not end with a zip archive's end record "
                     "(numpy.savez writes one without a comment)")
    if tail.startswith(_ZIP64_LOCATOR):
        raise _error(label, None, "is a zip64 archive, which no parameter file needs (torch.save writes such "
                     "archives: export a training checkpoint with python -m adareg_train export --out FOLDER)")
    if directory_size > MAX_DIRECTORY_BYTES:
        raise _error(label, None, f"its zip directory declares {directory_size} bytes, more than a parameter "
                     f"file's may take ({MAX_DIRECTORY_BYTES}); it was not read")


def _entries(label: str, infos: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
    """The archive's entries by array name (without ``.npy``), once the directory passes its checks.

    Every entry is an ``.npy`` array, stored or deflated (as :func:`numpy.savez` and
    :func:`numpy.savez_compressed` write them), not encrypted, and named once; the
    uncompressed sizes the directory declares are at most :data:`MAX_METADATA_BYTES`
    for the metadata, and :data:`MAX_DATA_BYTES` for any entry and for all together.
    """
    entries = {}
    for info in infos:
        member = info.filename
        if not member.endswith(".npy"):
            raise _error(label, member, f"entry {member!r} is not an .npy array")
        name = member[: -len(".npy")]
        if info.compress_type not in _COMPRESSIONS or info.flag_bits & _UNSUPPORTED_FLAGS:
            raise _error(label, name, f"entry {member!r} is encrypted or compressed in a way numpy.savez never "
                         "writes (stored or deflated entries are read)")
        if name in entries:
            raise _error(label, name, f"entry {member!r} appears more than once")
        limit = MAX_METADATA_BYTES if name == METADATA_ENTRY else MAX_DATA_BYTES
        if info.file_size > limit:
            raise _error(label, name, f"entry {member!r} declares {info.file_size} bytes uncompressed, more than "
                         f"a parameter file's may hold ({limit}); it was not decompressed")
        entries[name] = info
    total = sum(info.file_size for info in infos)
    if total > MAX_DATA_BYTES:
        raise _error(label, None, f"its entries declare {total} bytes uncompressed, more than a parameter file "
                     f"may hold ({MAX_DATA_BYTES}); they were not decompressed")
    return entries


def _read_entry(archive: _Archive, name: str, check: _HeaderCheck) -> np.ndarray:
    """Entry ``name`` as a writable array in native byte order and C order, read within its declared size.

    Before any data are read, the ``.npy`` header is parsed (:func:`_read_header`),
    ``check`` applies the caller's rules to the shape and dtype it declares, and the
    bytes these need must be the bytes the zip directory declares after the header.
    Then one byte more than that is asked for: :mod:`zipfile` never returns more than
    the declared size (a stream that would decompress to more is cut there), checks
    what it returns against the entry's CRC-32, and a shorter result is refused.
    """
    label, info = archive.label, archive.entries[name]
    corrupt = f"array {name!r} is truncated or corrupt"
    with _malformed(label, name, corrupt):
        stream = archive.zip.open(info)
    with stream:
        shape, fortran_order, dtype = _read_header(label, name, stream)
        check(shape, dtype)
        declared = info.file_size - stream.tell()
        needed = math.prod(shape) * dtype.itemsize
        if needed != declared:
            raise _error(label, name, f"{corrupt}: its header declares shape {shape} of {dtype}, {needed} bytes, "
                         f"the archive {declared} bytes of data")
        with _malformed(label, name, corrupt):
            data = stream.read(declared + 1)
    if len(data) != declared:
        raise _error(label, name, f"{corrupt}: {len(data)} bytes of data, {declared} declared")
    with _malformed(label, name, corrupt):
        array = np.frombuffer(data, dtype).reshape(shape, order="F" if fortran_order else "C")
    return _native(array.copy())  # frombuffer's arrays are read-only


def _read_header(label: str, name: str, stream: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The shape, Fortran order and dtype the ``.npy`` header of entry ``name`` declares.

    NumPy's parser evaluates Python literals only, at most 10000 bytes of them.  A
    negative dimension is refused, and so is a dtype holding Python objects, before
    its data (a pickle) are read.  (:mod:`zipfile` reads ahead, so a bad CRC-32 or
    deflate stream may show here too.)
    """
    corrupt = f"array {name!r} is truncated or corrupt"
    with _malformed(label, name, corrupt):
        version = npy_format.read_magic(stream)
    if version not in _HEADER_READERS:
        raise _error(label, name, f"{corrupt}: .npy format version {version[0]}.{version[1]} (1.0 and 2.0 are read)")
    with _malformed(label, name, corrupt):
        try:
            shape, fortran_order, dtype = _HEADER_READERS[version](stream)
        except MemoryError:  # CPython's parser on a deeply nested literal, not a large allocation
            raise ValueError("the header nests too deeply") from None
    if dtype.hasobject:
        raise _error(label, name, f"array {name!r} holds Python objects (a pickle), which a parameter file may "
                     "not contain: reading it could run code, so it was not read")
    if any(n < 0 for n in shape):
        raise _error(label, name, f"{corrupt}: its .npy header declares the shape {shape}")
    return shape, fortran_order, dtype


def _native(array: np.ndarray) -> np.ndarray:
    """``array`` in native byte order and C order (a file written on another machine may differ), its shape
    kept (``np.ascontiguousarray`` would make a 0-d array 1-d)."""
    if array.dtype.byteorder not in "=|":
        array = array.astype(array.dtype.newbyteorder("="))
    return np.asarray(array, order="C")


def _check_declared(label: str, name: str, spec: ArraySpec | None, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """The rules for a learned array's header: a float dtype, and its family's ``spec`` where there is one."""
    dtype = dtype.newbyteorder("=")
    _check_dtype(label, name, dtype)
    if spec is not None:
        _check_spec(label, name, shape, dtype, spec)


def _check_metadata_header(label: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """The metadata entry's header declares a 1-D uint8 array."""
    if dtype != np.uint8 or len(shape) != 1:
        raise _error(label, METADATA_ENTRY, f"{METADATA_ENTRY!r} must be a 1-D uint8 array of UTF-8 JSON, "
                     f"got dtype {dtype} and shape {shape}")


def _decode_metadata(archive: _Archive) -> dict[str, Any]:
    label = archive.label
    if METADATA_ENTRY not in archive.entries:
        raise _error(label, METADATA_ENTRY, f"has no {METADATA_ENTRY!r} entry; this is not an adareg parameter file")
    raw = _read_entry(archive, METADATA_ENTRY, functools.partial(_check_metadata_header, label))
    try:
        metadata = json.loads(raw.tobytes().decode("utf-8"), parse_constant=_reject_constant,
                              object_pairs_hook=_without_repeats)
    except UnicodeDecodeError as err:
        raise _error(label, METADATA_ENTRY, f"the metadata is not UTF-8 text: {err}") from None
    except (ValueError, RecursionError) as err:
        raise _error(label, METADATA_ENTRY, f"the metadata is not valid JSON: {err}") from None
    _check_metadata(label, metadata)
    return metadata


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


def _without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys each occur once: of a key given twice, which one counts is nowhere said."""
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"repeated key{'s' * (len(repeated) > 1)}: {', '.join(map(repr, repeated))}")
    return dict(pairs)


def _registered_specs(label: str, metadata: Mapping[str, Any]) -> dict[str, ArraySpec]:
    """What the schema of a registered family expects of each array; nothing for an unregistered family."""
    family = _FAMILIES.get(metadata["family"])
    return {} if family is None else _expected(label, metadata, family.schema)


def read(name_or_path: str | os.PathLike) -> ParameterFile:
    """Read a parameter file, checking its format, and for a registered family each array's shape and dtype.

    Nothing in the file is unpickled or executed, and nothing is decompressed or
    allocated beyond the sizes the archive declares, which are checked first against
    :data:`MAX_DATA_BYTES`, :data:`MAX_METADATA_BYTES` and
    :data:`MAX_DIRECTORY_BYTES`.  Checked here: the file is a readable ``.npz``
    archive of ``.npy`` entries within those sizes, whose headers agree with them;
    its metadata is valid JSON with a known ``format_version`` and the required
    keys; every array is float32 or float64 and finite; and, if the family is
    registered, its schema accepts the architecture and each array has the shape
    and a dtype the schema gives, checked on the array's header before its data
    are read.  :func:`validate` adds the rest of the schema (no array missing or
    unexpected); :func:`load` does both and builds the regularizer.

    Parameters
    ----------
    name_or_path
        A path, or the name of a shipped model (see :func:`load` for the rule).

    Raises
    ------
    ParameterFileError
        Naming the file and the field, for anything unreadable or malformed.
    """
    with _resolve(name_or_path) as path, _open_npz(path) as archive:
        label = archive.label
        metadata = _decode_metadata(archive)
        specs = _registered_specs(label, metadata)
        arrays = {}
        for name in archive.entries:
            if name != METADATA_ENTRY:
                _check_name(label, name)
                check = functools.partial(_check_declared, label, name, specs.get(name))
                arrays[name] = _read_entry(archive, name, check)
                _check_finite(label, name, arrays[name])
    return ParameterFile(arrays, metadata, label)


def _read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Only the metadata of a parameter file (the arrays are not read)."""
    with _open_npz(path) as archive:
        return _decode_metadata(archive)


# ----------------------------------------------------------------------------- names and shipped files


def _shipped_root() -> Traversable:
    return importlib.resources.files(WEIGHTS_PACKAGE)


def _is_name(name_or_path: str | os.PathLike) -> bool:
    """A str without a path separator and without the ``.npz`` suffix names a shipped model."""
    if not isinstance(name_or_path, str):
        return False
    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return not any(s in name_or_path for s in separators) and not name_or_path.endswith(".npz")


def _shipped() -> dict[str, Traversable]:
    return {entry.name[: -len(".npz")]: entry for entry in _shipped_root().iterdir()
            if entry.name.endswith(".npz") and entry.is_file()}


@contextlib.contextmanager
def _resolve(name_or_path: str | os.PathLike) -> Any:
    """The file system path of a shipped model's name, or the path itself."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"name_or_path must be a model name or a path, got {type(name_or_path).__name__}")
    if name_or_path == "":
        raise ValueError("name_or_path must be a model name or a path, got ''")
    if not _is_name(name_or_path):
        path = Path(name_or_path)
        if path.suffix in (".npz", "") and str(path.parent) == "." and path.stem in _shipped() and not path.exists():
            # crr.npz, or Path("crr"): a shipped model's name given as a path
            raise _error(str(path), None, f"no such file; the shipped model is loaded by its name as a str, "
                         f"{path.stem!r}")
        yield path
        return
    shipped = _shipped()
    if name_or_path not in shipped:
        if shipped:
            known = f"shipped models: {', '.join(sorted(shipped))}"
        else:
            known = "no models are shipped with this version of adareg yet"
        hint = ""
        if os.path.exists(name_or_path):
            hint = f"; to load the file {name_or_path!r} in the current folder, write './{name_or_path}'"
        raise ParameterFileError(f"unknown model {name_or_path!r} ({known}); pass the path of a .npz parameter file "
                                 f"to load your own{hint}", field=None, file=None)
    with importlib.resources.as_file(shipped[name_or_path]) as path:
        yield path


def available() -> dict[str, dict[str, Any]]:
    """The shipped models: their names (for :func:`load`) and metadata, sorted by name."""
    models = {}
    for name, entry in sorted(_shipped().items()):
        with importlib.resources.as_file(entry) as path:
            models[name] = _read_metadata(path)
    return models


def load(name_or_path: str | os.PathLike, **options: Any) -> Regularizer:
    """A regularizer with learned parameters: a shipped model by name, or a user's file.

    A ``str`` without a path separator and without the ``.npz`` suffix is the
    name of a shipped model, ``adareg/weights/<name>.npz`` (see :func:`available`);
    anything else is a path, so ``load("./mine")`` reads a file ``mine`` in the
    current folder.  The file is read with :func:`read` (never unpickled),
    checked with :func:`validate` against its family's schema, and built by the
    family's ``build(file, **options)``.

    Raises
    ------
    ParameterFileError
        For an unknown name (listing the shipped models), an unreadable or
        malformed file, or parameters the family's ``build`` rejects (with a
        ``ValueError`` or an ``ArithmeticError``); the message names the file and
        the field.
    TypeError
        ``options`` that the family's ``build`` does not take (named, with those it does).
    """
    file = read(name_or_path)
    validate(file)
    build = _FAMILIES[file.family].build
    try:
        inspect.signature(build).bind(file, **options)
    except TypeError:
        accepted = ", ".join(list(inspect.signature(build).parameters)[1:]) or "none"
        raise TypeError(f"load: {file.family!r} models take the options: {accepted}; got "
                        f"{', '.join(sorted(options))}") from None
    return _build(file, **options)


def _build(file: ParameterFile, **options: Any) -> Any:
    """The family's ``build(file, **options)``; its ``ValueError`` or ``ArithmeticError`` becomes a
    :class:`ParameterFileError` naming the file."""
    try:
        return _FAMILIES[file.family].build(file, **options)
    except ParameterFileError:
        raise
    except (ValueError, ArithmeticError) as err:
        raise _error(file.path, None, f"family {file.family!r} cannot build a regularizer from it: {err}") from err


# ----------------------------------------------------------------------------- writing


def save(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, Any], *,
         schema: Schema | None = None) -> Path:
    """Write a parameter file that :func:`load` accepts; return its path.

    ``format_version`` (:data:`FORMAT_VERSION`) and ``created`` (now, UTC) are
    filled in when absent.  The file is validated completely first (as
    :func:`validate`, against ``schema`` or the registered family's, whose
    ``build`` must then accept it too), so a failed check writes nothing.  It is
    then written to a temporary file in the same folder, checked against the size
    limits :func:`read` applies (a file over them is removed, not renamed), and
    renamed over ``path`` (:func:`os.replace`), so readers see the old file or the
    new one, never a partial one.  Metadata is stored as JSON: tuples come back as
    lists, NumPy scalars as Python numbers.

    Parameters
    ----------
    path
        Destination, ending in ``.npz``.
    arrays
        The learned arrays by name (float32 or float64 NumPy arrays).
    metadata
        The metadata described in the module documentation.
    schema
        Check against this schema instead of the registered family's.

    Raises
    ------
    ValueError
        If ``path`` does not end in ``.npz``, is a directory, or lies in a folder that
        does not exist (a plain ``ValueError``, checked before anything else).
    TypeError
        If ``arrays`` or ``metadata`` are not mappings, an array is not a NumPy
        array, or the metadata is not JSON-serialisable.
    ParameterFileError
        If the result would not pass :func:`validate`, the registered family's
        ``build`` refuses its parameters (as :func:`load` would; not checked with a
        ``schema``), or it would be larger than :func:`read` accepts
        (:data:`MAX_DATA_BYTES`, :data:`MAX_METADATA_BYTES`).
    """
    path = Path(path)
    label = str(path)
    if path.suffix != ".npz":
        raise ValueError(f"save: path must end in '.npz', got {label!r}")
    if path.is_dir():
        raise ValueError(f"save: {label} is a directory; path must name a file")
    if not path.absolute().parent.is_dir():
        raise ValueError(f"save: {label}: the folder {path.absolute().parent} does not exist")
    if not isinstance(arrays, Mapping):
        raise TypeError(f"save: arrays must be a mapping from names to arrays, got {type(arrays).__name__}")
    if not isinstance(metadata, Mapping):
        raise TypeError(f"save: metadata must be a mapping, got {type(metadata).__name__}")
    host = {}
    for name, array in arrays.items():
        if not isinstance(array, (np.ndarray, np.generic)):
            raise TypeError(f"save: arrays[{name!r}] is a {type(array).__name__}; expected a NumPy array "
                            "(convert tensors with .detach().cpu().numpy(), CuPy arrays with .get())")
        host[name] = _native(np.asarray(array))
    meta = dict(metadata)
    meta.setdefault("format_version", FORMAT_VERSION)
    meta.setdefault("created", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    if meta["format_version"] != FORMAT_VERSION:
        raise _error(label, "metadata.format_version",
                     f"save writes format_version {FORMAT_VERSION}, got {meta['format_version']!r}")
    try:
        text = json.dumps(meta, allow_nan=False, ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError) as err:
        raise TypeError(f"save: metadata for {label} is not JSON-serialisable: {err}") from None
    meta = json.loads(text)  # validate what will be read back
    written = ParameterFile(host, meta, label)
    validate(written, schema)
    if schema is None:
        _build(written)  # parameters the family's build refuses (e.g. knots that do not increase): load would too
    entries = {**host, METADATA_ENTRY: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    _write_atomically(path, entries)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _write_atomically(path: Path, entries: dict[str, np.ndarray]) -> None:
    """Write ``entries`` to a temporary file, check it as :func:`read` would before reading any entry, and rename."""
    folder = path.parent
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **entries)  # float and uint8 arrays only: nothing to pickle
            f.flush()
            os.fsync(f.fileno())
        with _open_npz(temporary, label=str(path)):
            pass  # the zip layout and the declared sizes within the limits
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
