"""Writing files safely: outputs checked before any work, files and folders replaced atomically.

The data go to a hidden temporary file ``.NAME.*`` (or folder) beside the target,
which then replaces the target, so a failed or interrupted write (Ctrl-C, SIGTERM,
SIGHUP) never leaves a half-written or temporary file; within :func:`written_together`
the files and folders of one run replace their targets together at its end, so a run
that fails after its first output leaves none of them.  A new file's mode follows the
umask (``0o666 & ~umask``) as any Unix tool's does; a replaced file keeps its
permission bits, and a write-protected one is refused, as ``cp`` refuses it.  An output
that is a symbolic link is written through it, to the file it names.  Write errors name
the output, not the temporary file.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import secrets
import shutil
import signal
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

#: Characters of the target's name kept in its temporary twin's, which adds some 30; a name near the file
#: system's limit (255 bytes) would otherwise have a twin it refuses.
TWIN_NAME_LENGTH = 64
#: Within :func:`written_together`: the written temporary files and folders and the targets they are to replace.
_pending: contextvars.ContextVar[list[tuple[Path, Path]] | None] = contextvars.ContextVar("adareg_pending",
                                                                                          default=None)


def check_output(path: str | os.PathLike, suffixes: Sequence[str]) -> Path:
    """Check before any computation that ``path`` can be written; returns it as a :class:`~pathlib.Path`.

    ``path`` must end in one of ``suffixes`` (compared in lower case, e.g.
    ``(".png", ".nii.gz")``) after a stem (``.png`` alone is a hidden file
    without a suffix), must not be a directory nor an existing file that is
    write-protected, and its nearest
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
    if path.exists() and not os.access(path, os.W_OK):  # (replacing it needs only its folder's permission)
        raise ValueError(f"{path}: the file is write-protected; make it writable or write another file")
    _check_folder_writable(_target(path).parent, path)
    return path


def _target(path: Path) -> Path:
    """The absolute path that writing ``path`` replaces: the file a symbolic link names, rather than the link."""
    return Path(os.path.realpath(path))


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

    ``write`` receives the name of a new, empty hidden file beside ``path`` (beside the
    file it names, for a symbolic link).  Within :func:`written_together` the replacement
    waits for the end of the group.
    """
    target, temporary = _target(path), None
    try:
        with _termination_as_exit():
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                temporary = _create_temporary(target, path)
                write(str(temporary))
                _keep_mode(target, temporary)
                pending = _pending.get()
                if pending is None:
                    os.replace(temporary, target)
                else:
                    pending.append((temporary, target))
            except BaseException:
                if temporary is not None:
                    temporary.unlink(missing_ok=True)
                raise
    except OSError as err:
        raise OSError(f"cannot write {path}: {err.strerror or err}") from err


@contextlib.contextmanager
def written_together() -> Iterator[None]:
    """The files and folders that :func:`~adareg.io.files.write_atomically` and
    :func:`~adareg.io.files.write_folder_atomically` write within it replace their targets at its end, all or none.

    A run whose outputs are several files (an image and its masks, a NIfTI file and a
    DICOM series) thus leaves none of them where it fails, or is interrupted, after
    writing the first: the written temporaries are removed, and the targets keep what
    they held.  (Only the renames at the end remain, one per output, which fail in
    practice only with the file system.)
    The group is the calling thread's (a context variable): a file that another thread
    writes meanwhile lands at once, outside it.
    """
    if _pending.get() is not None:
        raise RuntimeError("written_together: groups do not nest")
    pending: list[tuple[Path, Path]] = []
    token = _pending.set(pending)
    try:
        with _termination_as_exit():
            try:
                yield
            finally:
                _pending.reset(token)
            while pending:
                temporary, target = pending[0]
                try:
                    os.replace(temporary, target)
                except OSError as err:
                    raise OSError(f"cannot write {target}: {err.strerror or err}") from err
                pending.pop(0)
    finally:
        for temporary, _ in pending:  # a failed group's files and folders, none of them in place
            if temporary.is_dir():
                shutil.rmtree(temporary, ignore_errors=True)
            else:
                temporary.unlink(missing_ok=True)


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
    if _target(path) == Path.cwd():  # (a folder above it is not empty)
        raise ValueError(f"{path}: is the current folder, which the series would replace; give a new folder")
    _check_folder_writable(_target(path), path)
    return path


def write_folder_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write(temporary)`` fills a new hidden folder beside ``path``, which then becomes ``path``.

    ``path`` must not exist or be an empty folder (:func:`check_output_folder`; a symbolic
    link to one is written through); on any failure or interruption the temporary folder
    is removed and ``path`` is untouched.  Within :func:`written_together` the replacement
    waits for the end of the group.
    """
    path = Path(path)
    target, temporary = _target(path), None
    try:
        with _termination_as_exit():
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                temporary = _hidden_twin(target, "")
                temporary.mkdir()
                write(temporary)
                pending = _pending.get()
                if pending is None:
                    os.replace(temporary, target)  # a rename onto an empty folder or onto nothing
                else:
                    pending.append((temporary, target))
            except BaseException:
                if temporary is not None:
                    shutil.rmtree(temporary, ignore_errors=True)
                raise
    except OSError as err:
        raise OSError(f"cannot write {path}: {err.strerror or err}") from err


def _create_temporary(target: Path, path: Path) -> Path:
    """A new hidden ``.NAME.RANDOM.SUFFIXES`` beside ``target``, mode 0o666 less the umask (mkstemp would give 0o600).

    It ends in the last two suffixes of ``path``, the output as given (a link's target may have others), in lower
    case (``.nii.gz``), by which format libraries choose what they write; nibabel would write ``.Nii`` under
    another name.
    """
    temporary = _hidden_twin(target, "".join(path.suffixes[-2:]).lower())
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
