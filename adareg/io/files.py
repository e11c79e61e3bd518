"""Writing files safely: outputs checked before any work, files and folders replaced atomically.

The data go to a hidden temporary file ``.NAME.*`` (or folder) beside the target,
which then replaces the target, so a failed or interrupted write (Ctrl-C, SIGTERM,
SIGHUP) never leaves a half-written or temporary file.  A new file's mode follows the
umask (``0o666 & ~umask``) as any Unix tool's does; a replaced file keeps its
permission bits.  Write errors name the output, not the temporary file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

#: Characters of the target's name kept in its temporary twin's, which adds some 30: a name near the file
#: system's limit (255 bytes) would otherwise have a twin it refuses.
TWIN_NAME_LENGTH = 64


def check_output(path: str | os.PathLike, suffixes: Sequence[str]) -> Path:
    """Check before any computation that ``path`` can be written; returns it as a :class:`~pathlib.Path`.

    ``path`` must end in one of ``suffixes`` (compared in lower case, e.g.
    ``(".png", ".nii.gz")``) after a stem (``.png`` alone is a hidden file
    without a suffix), must not be a directory, and its nearest
    existing ancestor folder (the parent, or the folder in which the missing parents
    will be created) must be a writable directory.

    Raises
    ------
    ValueError
        Naming ``path`` and what was expected.
    """
    path = Path(path)
    name = path.name.lower()
    if not name.endswith(tuple(suffixes)):
        raise ValueError(f"{path}: the output must end in {', '.join(suffixes)}")
    if name in suffixes:
        raise ValueError(f"{path}: the output needs a name before its suffix (a hidden file has none)")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory; the output must be a file name")
    _check_folder_writable(path.absolute().parent, path)
    return path


def _check_folder_writable(folder: Path, output: Path) -> None:
    """``folder``, or the nearest of its ancestors that exists (where the missing ones will be created), is writable."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"{output}: cannot create the output's folder, {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{output}: the folder {folder} is not writable")


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same existing file (links followed); ``False`` if either is missing."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def write_atomically(path: Path, write: Callable[[str], None]) -> None:
    """``write(temporary)`` then replace the file ``path`` by it; nothing is left behind on any failure or interruption.

    ``write`` receives the name of a new, empty hidden file beside ``path``.
    """
    temporary: Path | None = None
    try:
        with _termination_as_exit():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = _create_temporary(path)
                write(str(temporary))
                _keep_mode(path, temporary)
                os.replace(temporary, path)
            except BaseException:
                if temporary is not None:
                    temporary.unlink(missing_ok=True)
                raise
    except OSError as err:
        raise OSError(f"cannot write {path}: {err.strerror or err}") from err


def check_output_folder(path: str | os.PathLike) -> Path:
    """Check before any computation that the folder ``path`` can be created (or is empty) and written.

    A folder output (e.g. a DICOM series) never mixes with older files: ``path`` must
    not exist, or be an empty directory.

    Raises
    ------
    ValueError
        Naming ``path`` and what was expected.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path}: is a file; the output must be a folder")
    if path.is_dir() and any(path.iterdir()):
        raise ValueError(f"{path}: the output folder is not empty; give a new or empty folder")
    _check_folder_writable(path.absolute(), path)
    return path


def write_folder_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write(temporary)`` fills a new hidden folder beside ``path``, which then becomes ``path``.

    ``path`` must not exist or be an empty folder (:func:`check_output_folder`); on any
    failure or interruption the temporary folder is removed and ``path`` is untouched.
    """
    path = Path(path)
    temporary: Path | None = None
    try:
        with _termination_as_exit():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = _hidden_twin(path, "")
                temporary.mkdir()
                write(temporary)
                os.replace(temporary, path)  # a rename onto an empty folder or onto nothing
            except BaseException:
                if temporary is not None:
                    shutil.rmtree(temporary, ignore_errors=True)
                raise
    except OSError as err:
        raise OSError(f"cannot write {path}: {err.strerror or err}") from err


def _create_temporary(path: Path) -> Path:
    """A new hidden ``.NAME.RANDOM.SUFFIXES`` beside ``path``, mode 0o666 less the umask (mkstemp would give 0o600).

    It ends in ``path``'s last two suffixes in lower case (``.nii.gz``), by which format libraries
    choose what they write; nibabel would write ``.Nii`` under another name.
    """
    temporary = _hidden_twin(path, "".join(path.suffixes[-2:]).lower())
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return temporary


def _hidden_twin(path: Path, suffixes: str) -> Path:
    """A new name ``.NAME.RANDOM{suffixes}`` beside ``path``, ``NAME`` cut to :data:`TWIN_NAME_LENGTH` characters so
    that a name the file system takes has a twin it takes too."""
    return path.with_name(f".{path.name[:TWIN_NAME_LENGTH]}.{secrets.token_hex(8)}{suffixes}")


def _keep_mode(path: Path, temporary: Path) -> None:
    """Give ``temporary`` the permission bits of the file it replaces, if there is one."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode) & 0o777
    except FileNotFoundError:
        return
    os.chmod(temporary, mode)


@contextlib.contextmanager
def _termination_as_exit() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into ``SystemExit(128 + signal)`` while writing, so that clean-up runs.

    Only signals whose action is the default one (end the process) are changed, only in
    the main thread (where Python handles signals), and the old handlers come back after.
    """
    saved: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):
            number = getattr(signal, name, None)
            if number is not None and signal.getsignal(number) == signal.SIG_DFL:
                saved[number] = signal.signal(number, _exit)
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


def _exit(number: int, frame: Any) -> None:
    raise SystemExit(128 + number)
