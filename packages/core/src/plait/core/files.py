"""Crash-safe writing: a file or a whole folder goes from its old complete state to the new one in one step.

* :func:`atomic_write` writes a hidden temporary sibling, fsyncs it and renames it over
  the target.
* :func:`atomic_folder` yields a hidden temporary sibling folder to fill; on a clean exit
  it is swapped with the target folder in one step (Linux ``renameat2(RENAME_EXCHANGE)``;
  elsewhere the old folder is moved aside, the new one renamed in, and a folder moved
  aside by a killed save is put back by :func:`recover_folder`).

A process killed at any instant leaves the path the user gave holding either the old or
the new complete content. Temporary siblings are named ``.<name>.plait-tmp-<pid>-*``;
those of dead processes are removed by the next save into the same folder
(:func:`remove_stale_in`). Files and folders get the permissions a plain
``open()``/``mkdir()`` gives: those of the file or folder being replaced, else the
current umask's. An ``OSError`` (disk full,
read-only folder, ...) becomes a :class:`SerializationError` (or the ``error`` class
given) naming the path; the old content stays intact.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import PlaitError, SerializationError

__all__ = [
    "atomic_folder",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "recover_folder",
    "remove_stale_in",
    "remove_stale_siblings",
]

_TMP = ".plait-tmp-"  # a save in progress (or killed): .<name>.plait-tmp-<pid>-<random>
_OLD = ".plait-old-"  # the fallback swap's moved-aside folder: .<name>.plait-old-<pid>-<random>
_SIBLING = re.compile(r"^\.(?P<name>.+)\.plait-(?P<kind>tmp|old)-(?P<pid>\d{1,10})-[^-]+$")


# -- permissions --------------------------------------------------------------------------------
def _umask() -> int:
    try:  # Linux reports it without changing it (no race with other threads)
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file under the current umask."""
    return 0o666 & ~_umask()


def folder_mode() -> int:
    """The mode ``mkdir`` gives a new folder under the current umask."""
    return 0o777 & ~_umask()


def _existing_mode(path: Path) -> int | None:
    """The permission bits of an existing (non-link) ``path``, or None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return None if stat.S_ISLNK(st.st_mode) else stat.S_IMODE(st.st_mode)


def _set_mode(fd: int, path: str, mode: int) -> None:
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:  # Windows before Python 3.13
        os.chmod(path, mode)


# -- small helpers -------------------------------------------------------------------------------
def _fail(error: type[PlaitError], target: Path, exc: OSError) -> PlaitError:
    return error(f"{target}: cannot write: {exc.strerror or exc}")


def fsync_folder(path: str | os.PathLike[str]) -> None:
    """Make renames inside ``path`` durable (a no-op where folders cannot be fsynced)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's live process (or an unanswerable question): leave it alone
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _siblings(target: Path, kind: str) -> list[tuple[Path, int]]:
    """Temporary siblings of ``target`` of ``kind`` ("tmp"/"old"), with the pid that made them."""
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return []
    out = []
    for entry in entries:
        m = _SIBLING.match(entry.name)
        if m and m["name"] == target.name and m["kind"] == kind:
            out.append((target.parent / entry.name, int(m["pid"])))
    return out


def recover_folder(target: str | os.PathLike[str]) -> bool:
    """Put back a folder that a killed fallback swap had moved aside (only when ``target`` is missing)."""
    target = Path(target)
    if os.path.lexists(target):
        return False
    for old, pid in sorted(_siblings(target, "old"), key=lambda s: s[0].stat().st_mtime if s[0].exists() else 0):
        if not _pid_alive(pid):
            try:
                os.rename(old, target)
            except OSError:
                continue
            fsync_folder(target.parent)
            return True
    return False


def remove_stale_siblings(target: str | os.PathLike[str]) -> None:
    """Delete temporaries left beside ``target`` by saves that were killed (their process is gone)."""
    target = Path(target)
    recover_folder(target)
    for kind in ("tmp", "old"):
        for path, pid in _siblings(target, kind):
            if not _pid_alive(pid):
                _remove(path)


def remove_stale_in(folder: str | os.PathLike[str]) -> None:
    """:func:`remove_stale_siblings` for every path in ``folder`` that killed saves left temporaries of."""
    folder = Path(folder)
    try:
        names = {m["name"] for entry in os.scandir(folder) if (m := _SIBLING.match(entry.name))}
    except OSError:
        return
    for name in names:
        remove_stale_siblings(folder / name)


def _tmp_prefix(target: Path, kind: str = _TMP) -> str:
    return f".{target.name}{kind}{os.getpid()}-"


# -- files ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", *,
                 error: type[PlaitError] = SerializationError) -> Iterator[IO[Any]]:
    """Yield a file object; on clean exit it replaces ``path`` atomically.

    If the block raises (or the process dies), ``path`` keeps its previous content and
    the temporary file is removed (or left as a hidden sibling, never as ``path``, and
    removed by the next write of ``path``). An ``OSError`` becomes ``error`` naming ``path``.

    Args:
        path: the file to replace; missing parent folders are created.
        mode: default ``"wb"``; the ``open`` mode of the yielded file (``"w"``: text in
            the locale's encoding, as ``open``).
        error: default :class:`SerializationError`; the PlaitError subclass an ``OSError``
            becomes (checkpoints pass ``CheckpointError``).

    Raises:
        SerializationError: (or ``error``) the folder cannot be written, the disk is full, ...
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_in(target.parent)  # whatever killed saves left here
        fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(target), dir=target.parent)
    except OSError as exc:
        raise _fail(error, target, exc) from exc
    try:
        _set_mode(fd, tmp, _existing_mode(target) or file_mode())  # as open(): an existing file keeps its mode
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _fail(error, target, exc) from exc
        raise
    fsync_folder(target.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *,
                       error: type[PlaitError] = SerializationError) -> None:
    """Replace ``path`` with ``data`` atomically (see :func:`atomic_write`).

    Args:
        path: the file to replace; missing parent folders are created.
        data: the new content.
        error: default :class:`SerializationError`; the PlaitError subclass an ``OSError``
            becomes (checkpoints pass ``CheckpointError``).

    Raises:
        SerializationError: (or ``error``) the write failed; ``path`` keeps its old content.
    """
    with atomic_write(path, "wb", error=error) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, *,
                      error: type[PlaitError] = SerializationError) -> None:
    """Replace ``path`` with ``text`` atomically (see :func:`atomic_write`; text mode ``"w"``).

    Args:
        path: the file to replace; missing parent folders are created.
        text: the new content.
        error: default :class:`SerializationError`; the PlaitError subclass an ``OSError``
            becomes (checkpoints pass ``CheckpointError``).

    Raises:
        SerializationError: (or ``error``) the write failed; ``path`` keeps its old content.
    """
    with atomic_write(path, "w", error=error) as f:
        f.write(text)


# -- folders -------------------------------------------------------------------------------------
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_renameat2_fn: Any = None


def _renameat2() -> Any:
    global _renameat2_fn
    if _renameat2_fn is None:
        fn: Any = False
        if sys.platform.startswith("linux"):
            try:
                fn = ctypes.CDLL(None, use_errno=True).renameat2
                fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
                fn.restype = ctypes.c_int
            except (OSError, AttributeError):  # no libc symbol (musl, old glibc)
                fn = False
        _renameat2_fn = fn
    return _renameat2_fn


def exchange(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Swap two existing paths in one step (Linux); False where the system cannot."""
    fn = _renameat2()
    if not fn:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # a kernel or filesystem without RENAME_EXCHANGE: use the fallback
    raise OSError(err, os.strerror(err), os.fsdecode(b))


def _swap_in(tmp: Path, target: Path) -> None:
    """Make the complete folder ``tmp`` appear at ``target`` in one step; remove what was there."""
    for _ in range(3):  # retried only when a concurrent save creates or removes target meanwhile
        if os.path.lexists(target):
            if exchange(tmp, target):
                _remove(tmp)  # tmp now holds the old folder; a kill here leaves a stale sibling
                return
            old = Path(tempfile.mkdtemp(prefix=_tmp_prefix(target, _OLD), dir=target.parent))
            try:
                os.replace(target, old)  # onto the empty placeholder: the old folder is now aside
            except FileNotFoundError:
                old.rmdir()
                continue
            try:
                os.replace(tmp, target)  # a kill between these two renames: recover_folder puts it back
            except OSError:
                with contextlib.suppress(OSError):
                    os.rename(old, target)  # put the old folder back before failing
                raise
            _remove(old)
            return
        try:
            os.rename(tmp, target)
            return
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    raise OSError(errno.EBUSY, "the folder keeps changing under concurrent saves", str(target))


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str], *, error: type[PlaitError] = SerializationError) -> Iterator[Path]:
    """Yield an empty hidden sibling folder of ``path``; on a clean exit it replaces ``path`` in one step.

    Write every file of the new folder into the yielded folder (e.g. with
    :func:`atomic_write`, which fsyncs). If the block raises, ``path`` is untouched and the
    temporary folder removed. ``path`` must be a folder (or missing); a symbolic link or a
    file there is refused rather than replaced.

    Args:
        path: the folder to replace; missing parent folders are created.
        error: default :class:`SerializationError`; the PlaitError subclass an ``OSError``
            becomes (checkpoints pass ``CheckpointError``).

    Raises:
        SerializationError: (or ``error``) ``path`` is a symbolic link or a file, or an
            ``OSError`` while creating or swapping the folder.
    """
    target = Path(path)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        kind = "a symbolic link" if target.is_symlink() else "not a folder"
        raise error(f"{target}: exists and is {kind}; refusing to replace it with a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_in(target.parent)  # whatever killed saves left here
        tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(target), dir=target.parent))
        os.chmod(tmp, _existing_mode(target) or folder_mode())  # an existing folder keeps its mode
    except OSError as exc:
        raise _fail(error, target, exc) from exc
    try:
        yield tmp
        fsync_folder(tmp)
        _swap_in(tmp, target)
        fsync_folder(target.parent)
    except BaseException as exc:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _fail(error, target, exc) from exc
        if isinstance(exc, PlaitError) and isinstance(exc.__cause__, OSError):  # name the user's path
            raise _fail(error, target, exc.__cause__) from exc.__cause__
        raise
