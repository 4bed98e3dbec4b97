"""Small filesystem helpers: atomic writes that never leave a half-written file."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "atomic_write_bytes",
    "atomic_write_many",
    "atomic_writer",
    "create_temp",
    "fsync_dir",
]


def _umask() -> int:
    """Return the process umask, read without changing it where Linux allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # pragma: no cover - non-Linux
    os.umask(mask)
    return mask


def create_temp(target: Path, *, like: Path | None = None) -> tuple[int, str]:
    """Create a temporary file beside `target`, with the permissions `target` will need.

    ``tempfile.mkstemp`` creates files readable by their owner only (0600); renamed over
    a file, that would silently change its permissions. The temporary file gets the mode
    of `like` (e.g. the original a backup copies), else of the existing `target`, else
    the usual mode of a new file (0666 less the umask).

    Returns
    -------
    tuple of (int, str)
        The open descriptor and the temporary file's name; the caller renames or
        removes it.
    """
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        mode = None
        for model in (like, target):
            if model is not None:
                try:
                    mode = stat.S_IMODE(os.stat(model).st_mode)
                    break
                except OSError:
                    continue
        os.fchmod(fd, mode if mode is not None else 0o666 & ~_umask())
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    return fd, name


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a directory entry to disk so that a rename inside it survives a crash."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(
    path: str | os.PathLike[str], *, fsync: bool = True, fsync_folder: bool = True
) -> Iterator[BinaryIO]:
    """Open a temporary file beside `path`; rename it over `path` only on success.

    Parameters
    ----------
    path : str or os.PathLike
        The final file name. Its directory must exist.
    fsync : bool, optional
        Flush the file and its directory to disk before returning (default True).
    fsync_folder : bool, optional
        Also flush the directory entry (default True). A batch writer may pass False and
        call :func:`fsync_dir` once per folder after its last file.

    Yields
    ------
    BinaryIO
        A binary file object to write to. If the ``with`` block raises, the temporary
        file is removed and `path` is left as it was.
    """
    final = Path(path)
    fd, tmp_name = create_temp(final)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp_name, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    if fsync and fsync_folder:
        fsync_dir(final.parent)


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, fsync: bool = True, fsync_folder: bool = True
) -> None:
    """Write `data` to `path` atomically (temporary file + fsync + rename).

    Parameters
    ----------
    path : str or os.PathLike
        The final file name. Its directory must exist.
    data : bytes
        The whole content.
    fsync : bool, optional
        Flush to disk before the rename (default True).
    fsync_folder : bool, optional
        Also flush the directory entry (default True); see :func:`atomic_writer`.
    """
    with atomic_writer(path, fsync=fsync, fsync_folder=fsync_folder) as fh:
        fh.write(data)


def atomic_write_many(
    items: list[tuple[Path, bytes]], *, threads: int = 8
) -> list[Exception | None]:
    """Write several files atomically, with one round of parallel ``fsync`` calls.

    Every file is written to a temporary file beside its target, all of them are flushed
    to disk (``fsync`` on a few threads at once, so the file system can group them into
    fewer journal commits), and only then renamed over their targets; finally each folder
    is flushed once. A crash leaves each target either as it was or complete.

    Parameters
    ----------
    items : list of (pathlib.Path, bytes)
        Targets and their whole contents; the folders must exist.
    threads : int, optional
        ``fsync`` calls in flight at once.

    Returns
    -------
    list of (Exception or None)
        Per item, the error that kept it from being written (its target untouched), or None.
    """
    from concurrent.futures import ThreadPoolExecutor

    errors: list[Exception | None] = [None] * len(items)
    temps: list[tuple[int, str, int]] = []  # (index, temp name, fd)
    try:
        for i, (target, data) in enumerate(items):
            try:
                fd, tmp = create_temp(target)
            except OSError as exc:
                errors[i] = exc
                continue
            temps.append((i, tmp, fd))
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            except OSError as exc:
                errors[i] = exc
        live = [(i, tmp, fd) for i, tmp, fd in temps if errors[i] is None]
        with ThreadPoolExecutor(max(1, min(threads, len(live)))) as pool:
            results = list(pool.map(_try_fsync, [fd for _, _, fd in live]))
        for (i, _, _), exc in zip(live, results, strict=True):
            errors[i] = exc
    finally:
        for _, _, fd in temps:
            with contextlib.suppress(OSError):
                os.close(fd)
    folders: set[Path] = set()
    for i, tmp, _ in temps:
        if errors[i] is None:
            try:
                os.replace(tmp, items[i][0])
                folders.add(items[i][0].parent)
                continue
            except OSError as exc:
                errors[i] = exc
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    for folder in sorted(folders):
        fsync_dir(folder)
    return errors


def _try_fsync(fd: int) -> Exception | None:
    try:
        os.fsync(fd)
    except OSError as exc:
        return exc
    return None
