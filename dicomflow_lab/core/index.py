"""Finding DICOM files and parsing their headers in parallel, for the workspace index.

This module knows nothing of the database: :func:`scan` walks folders, and
:func:`parse_files` reads headers in worker processes and yields column batches
(:class:`ParsedBatch`) that the workspace writes to its store.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import orjson

from dicomflow_lab.core._fastread import fast_header
from dicomflow_lab.core._worker import TaskFailed, shared_pool
from dicomflow_lab.core.dataset import (
    HeaderReadOptions,
    guess_transfer_syntax,
    header_to_dict,
    is_dicomdir,
    read_header,
)
from dicomflow_lab.errors import DicomReadError

__all__ = [
    "FileEntry",
    "IndexProblem",
    "ParsedBatch",
    "ScanResult",
    "dicomdir_files",
    "parse_files",
    "scan",
]

logger = logging.getLogger(__name__)

#: Below this many files, headers are parsed in the calling process.
INLINE_THRESHOLD = 48


@dataclass(frozen=True)
class FileEntry:
    """A regular file found by :func:`scan`: absolute path, size and mtime (ns)."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class IndexProblem:
    """A file or folder that could not be indexed, and why.

    ``kind`` is a short class (``not_dicom``, ``truncated``, ``unreadable``,
    ``symlink_loop``, ``deflate_bomb``, ...); ``reason`` is a sentence for people.
    """

    path: str
    kind: str
    reason: str
    size: int | None = None
    mtime_ns: int | None = None


@dataclass(frozen=True)
class ScanResult:
    """What :func:`scan` found: candidate files and the problems met on the way."""

    files: list[FileEntry]
    problems: list[IndexProblem]


@dataclass
class ParsedBatch:
    """Headers parsed from a chunk of files, as columns ready for a DataFrame.

    ``columns`` maps each requested keyword (plus ``file_path``, ``file_size``,
    ``file_mtime_ns``, ``TransferSyntaxUID`` and ``header``) to a list of values, one
    per parsed instance; ``problems`` lists the files that failed, and ``dicomdirs``
    the DICOMDIR files met (not instances, so not in ``columns``).
    """

    columns: dict[str, list[str | int | None]]
    problems: list[IndexProblem] = field(default_factory=list)
    dicomdirs: list[str] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        """The number of parsed instances in the batch."""
        return len(self.columns.get("file_path", ()))


def scan(roots: Iterable[str | os.PathLike[str]], *, include_hidden: bool = False) -> ScanResult:
    """Walk files and folders recursively, following symbolic links safely.

    Parameters
    ----------
    roots : iterable of path-like
        Files and/or folders.
    include_hidden : bool, optional
        Also look at names starting with ``.`` (skipped by default).

    Returns
    -------
    ScanResult
        Regular files with their size and modification time, and the problems met:
        missing roots, unreadable folders, broken links, symbolic-link loops.
    """
    files: list[FileEntry] = []
    problems: list[IndexProblem] = []
    for root in roots:
        path = os.path.abspath(os.fspath(root))
        try:
            st = os.stat(path)
        except FileNotFoundError:
            problems.append(IndexProblem(path, "missing", "no such file or folder"))
            continue
        except OSError as exc:
            problems.append(IndexProblem(path, "unreadable", f"cannot stat: {exc.strerror}"))
            continue
        if stat.S_ISDIR(st.st_mode):
            _walk(path, st, files, problems, include_hidden)
        elif stat.S_ISREG(st.st_mode):
            files.append(FileEntry(path, st.st_size, st.st_mtime_ns))
        else:
            problems.append(IndexProblem(path, "unreadable", "not a regular file or folder"))
    return ScanResult(files, problems)


def _walk(
    top: str,
    top_stat: os.stat_result,
    files: list[FileEntry],
    problems: list[IndexProblem],
    include_hidden: bool,
) -> None:
    seen: set[tuple[int, int]] = set()
    # stack of (folder path, identities of the folders above it, including itself)
    stack: list[tuple[str, frozenset[tuple[int, int]]]] = []
    top_id = (top_stat.st_dev, top_stat.st_ino)
    seen.add(top_id)
    stack.append((top, frozenset({top_id})))
    while stack:
        folder, ancestors = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            reason = f"cannot list folder: {exc.strerror}"
            problems.append(IndexProblem(folder, "unreadable", reason))
            continue
        subfolders: list[tuple[str, frozenset[tuple[int, int]]]] = []
        for entry in entries:
            if not include_hidden and entry.name.startswith("."):
                continue
            try:
                st = entry.stat(follow_symlinks=True)
            except FileNotFoundError:
                problems.append(IndexProblem(entry.path, "unreadable", "broken symbolic link"))
                continue
            except OSError as exc:
                kind = "symlink_loop" if exc.errno == 40 else "unreadable"  # ELOOP
                problems.append(IndexProblem(entry.path, kind, f"cannot stat: {exc.strerror}"))
                continue
            if stat.S_ISDIR(st.st_mode):
                ident = (st.st_dev, st.st_ino)
                if ident in ancestors:
                    target = os.path.realpath(entry.path)
                    problems.append(
                        IndexProblem(
                            entry.path,
                            "symlink_loop",
                            f"symbolic link loop: points back to the enclosing folder {target}",
                        )
                    )
                    continue
                if ident in seen:
                    continue  # reached twice through links: index it once
                seen.add(ident)
                subfolders.append((entry.path, ancestors | {ident}))
            elif stat.S_ISREG(st.st_mode):
                files.append(FileEntry(entry.path, st.st_size, st.st_mtime_ns))
            else:
                problems.append(IndexProblem(entry.path, "unreadable", "not a regular file"))
        stack.extend(reversed(subfolders))


def dicomdir_files(path: str | os.PathLike[str]) -> tuple[list[str], list[IndexProblem]]:
    """List the files a DICOMDIR references (PS3.10 File-set), resolving their paths.

    Parameters
    ----------
    path : path-like
        The DICOMDIR file.

    Returns
    -------
    tuple of (list of str, list of IndexProblem)
        Absolute paths of the referenced files that exist, and a problem for each one
        that is missing (or for the DICOMDIR itself if it cannot be read).
    """
    fspath = os.path.abspath(os.fspath(path))
    root = os.path.dirname(fspath)
    try:
        ds = read_header(fspath)
        records = ds.get("DirectoryRecordSequence") or []
    except DicomReadError as exc:
        return [], [IndexProblem(fspath, exc.kind, exc.reason)]
    except Exception as exc:
        return [], [IndexProblem(fspath, "invalid", f"cannot read DICOMDIR: {exc}")]
    found: list[str] = []
    problems: list[IndexProblem] = []
    seen: set[str] = set()
    for record in records:
        file_id = record.get("ReferencedFileID")
        if not file_id:
            continue
        parts = [file_id] if isinstance(file_id, str) else list(file_id)
        if any(p in ("", ".", "..") or "/" in p or "\\" in p for p in parts):
            problems.append(
                IndexProblem(fspath, "invalid", f"DICOMDIR has an unsafe file ID {parts!r}")
            )
            continue
        target = os.path.join(root, *parts)
        if target in seen:
            continue
        seen.add(target)
        if os.path.isfile(target):
            found.append(target)
        else:
            problems.append(
                IndexProblem(target, "missing", f"referenced by DICOMDIR {fspath} but missing")
            )
    return found, problems


def _value_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        parts = ["" if v is None else str(v) for v in value]
        return "\\".join(parts) if any(parts) else None
    if isinstance(value, str) and value.startswith("<") and value.endswith(" bytes>"):
        return None  # a bulk placeholder is no column value
    return str(value)


def _parse_chunk(
    entries: Sequence[FileEntry], keywords: Sequence[str], options: HeaderReadOptions
) -> ParsedBatch:
    fixed = ["file_path", "file_size", "file_mtime_ns", "TransferSyntaxUID", "header"]
    cols: dict[str, list[str | int | None]] = {name: [] for name in [*fixed, *keywords]}
    batch = ParsedBatch(cols)
    dumps = orjson.dumps
    for entry in entries:
        try:
            fast = fast_header(entry.path, entry.size, defer_size=options.defer_size)
            if fast is not None:
                header, tsuid = fast
            else:
                ds = read_header(entry.path, options)
                if is_dicomdir(ds):
                    batch.dicomdirs.append(entry.path)
                    continue
                header = header_to_dict(ds, defer_size=options.defer_size)
                tsuid = guess_transfer_syntax(ds)
            text = dumps(header).decode("utf-8")
        except DicomReadError as exc:
            batch.problems.append(
                IndexProblem(entry.path, exc.kind, exc.reason, entry.size, entry.mtime_ns)
            )
            continue
        except Exception as exc:  # a reader bug must not stop the run
            logger.debug("unexpected error reading %s", entry.path, exc_info=True)
            batch.problems.append(
                IndexProblem(
                    entry.path,
                    "invalid",
                    f"{type(exc).__name__}: {exc}",
                    entry.size,
                    entry.mtime_ns,
                )
            )
            continue
        cols["file_path"].append(entry.path)
        cols["file_size"].append(entry.size)
        cols["file_mtime_ns"].append(entry.mtime_ns)
        cols["TransferSyntaxUID"].append(tsuid)
        cols["header"].append(text)
        get = header.get
        for kw in keywords:
            cols[kw].append(_value_text(get(kw)))
    return batch


def _chunks(items: Sequence[FileEntry], size: int) -> Iterator[Sequence[FileEntry]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def parse_files(
    entries: Sequence[FileEntry],
    keywords: Sequence[str],
    *,
    workers: int | None = None,
    chunk_size: int = 64,
    options: HeaderReadOptions | None = None,
    file_timeout: float = 5.0,
) -> Iterator[ParsedBatch]:
    """Parse file headers, in worker processes when there are many files.

    Parameters
    ----------
    entries : sequence of FileEntry
        The files to parse.
    keywords : sequence of str
        DICOM keywords to extract as text columns besides the full header JSON.
    workers : int, optional
        Worker processes; default ``os.cpu_count()``. 1 parses in this process.
    chunk_size : int, optional
        Files per task.
    options : HeaderReadOptions, optional
        Reader limits.
    file_timeout : float, optional
        Seconds one file may take in a worker before it is reported as a problem.

    Yields
    ------
    ParsedBatch
        One per chunk, in completion order. A worker that dies or hangs costs only its
        chunk: those files are retried one per task, and a file that kills or stalls a
        worker again is reported as a problem (kind ``crash`` or ``timeout``).
    """
    opts = options or HeaderReadOptions()
    n_workers = max(1, workers or os.cpu_count() or 1)
    if n_workers == 1 or len(entries) < INLINE_THRESHOLD:
        for chunk in _chunks(entries, chunk_size):
            yield _parse_chunk(chunk, keywords, opts)
        return
    pool = shared_pool(n_workers)
    chunks = list(_chunks(entries, chunk_size))
    tasks = [(chunk, tuple(keywords), opts) for chunk in chunks]
    suspects: list[FileEntry] = []
    for index, result in pool.map_unordered(
        _parse_chunk, tasks, timeout=lambda args: 10.0 + file_timeout * len(args[0])
    ):
        if isinstance(result, TaskFailed):
            logger.warning("a header reader failed (%s); retrying its files one by one", result)
            suspects.extend(chunks[index])
        else:
            yield result
    if not suspects:
        return
    singles = [((entry,), tuple(keywords), opts) for entry in suspects]
    for index, result in pool.map_unordered(
        _parse_chunk, singles, timeout=lambda args: file_timeout
    ):
        if isinstance(result, TaskFailed):
            entry = suspects[index]
            kind = "timeout" if "longer than" in result.reason else "crash"
            yield ParsedBatch(
                {}, [IndexProblem(entry.path, kind, result.reason, entry.size, entry.mtime_ns)]
            )
        else:
            yield result
