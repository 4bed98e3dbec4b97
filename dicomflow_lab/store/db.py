"""The workspace database: one DuckDB file, shared politely between processes and threads.

DuckDB lets one process at a time open a database file for writing, and users open
several notebooks on the same workspace. :class:`Database` therefore never keeps the file
open while idle: each :meth:`Database.connect` block opens it (retrying with backoff while
another process holds the lock), and the connection is closed shortly after the last block
ends. Inside one process, blocks are serialized by a re-entrant lock shared by every
:class:`Database` on the same file, so threads (an SCP handler, a widget callback, the
user's cell) can all write without corrupting anything.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from dicomflow_lab.errors import StoreError, StoreLockedError
from dicomflow_lab.store.migrate import migrate

__all__ = ["Database"]

logger = logging.getLogger(__name__)

_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()
_LOCK_MESSAGE = re.compile(r"Could not set lock|Conflicting lock", re.IGNORECASE)


@contextlib.contextmanager
def _creation_guard(path: Path) -> Iterator[None]:
    """Hold an advisory lock on ``<db>.lock`` while connecting and migrating.

    Two processes opening a workspace that does not exist yet would otherwise race:
    one creates the file while the other reads a half-written header ("not a valid
    DuckDB database file"). The lock is held for the connect call only, never while idle.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: DuckDB's own lock must do
        yield
        return
    try:
        fh = open(path.with_name(path.name + ".lock"), "a+b")  # noqa: SIM115
    except OSError:  # a read-only folder: nothing can be created there anyway
        yield
        return
    with fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _lock_for(key: str) -> threading.RLock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = threading.RLock()
        return lock


class Database:
    """A DuckDB database file (or an in-memory database) with the workspace schema.

    Parameters
    ----------
    path : str, os.PathLike or None
        The database file; None for an in-memory database (ephemeral workspaces).
    read_only : bool, optional
        Open the file read-only (several processes may read at once).
    lock_timeout : float, optional
        Seconds to keep retrying while another process holds the file lock.
    idle_release : float, optional
        Seconds a connection stays open after its last use, so that bursts of calls do
        not reopen the file each time; 0 closes at once. In-memory databases stay open.
    schema : {"sql", "sql_private"}, optional
        The schema to migrate to: the workspace's, or the anonymization mapping's.

    Examples
    --------
    >>> db = Database(None)
    >>> with db.connect() as con:
    ...     con.execute("SELECT count(*) FROM instances").fetchone()
    (0,)
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        read_only: bool = False,
        lock_timeout: float = 30.0,
        idle_release: float = 0.25,
        schema: str = "sql",
    ) -> None:
        self.path = Path(path).expanduser().resolve() if path is not None else None
        self.read_only = read_only
        self.schema = schema
        self.lock_timeout = lock_timeout
        self.idle_release = idle_release if self.path is not None else 0.0
        key = str(self.path) if self.path is not None else f":memory:{id(self)}"
        self._lock = _lock_for(key)
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._depth = 0
        self._timer: threading.Timer | None = None
        self._closed = False
        self._migrated = False
        if self.path is None:
            self._conn = duckdb.connect(":memory:")
            self._migrate(self._conn)

    def __repr__(self) -> str:
        where = str(self.path) if self.path else ":memory:"
        return f"Database({where!r}, read_only={self.read_only})"

    # -- connections ---------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Hold the database for the duration of a ``with`` block.

        Yields
        ------
        duckdb.DuckDBPyConnection
            A connection for this thread's exclusive use until the block ends. Nested
            blocks in the same thread reuse it.

        Raises
        ------
        StoreLockedError
            When another process keeps the file locked beyond ``lock_timeout``.
        StoreError
            When the database is closed or cannot be opened.
        """
        with self._lock:
            if self._closed:
                raise StoreError(f"{self!r} is closed")
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._conn is None:
                self._conn = self._open()
            self._depth += 1
            try:
                yield self._conn
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._release_later()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Like :meth:`connect`, inside ``BEGIN`` / ``COMMIT`` (``ROLLBACK`` on error).

        Yields
        ------
        duckdb.DuckDBPyConnection
            The connection, in an open transaction.
        """
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise
            try:
                con.execute("COMMIT")
            except duckdb.Error as exc:
                raise StoreError(f"{self.path}: commit failed: {exc}") from exc

    def query(self, sql: str, params: list[Any] | tuple[Any, ...] | None = None) -> pd.DataFrame:
        """Run one SQL statement with bound parameters and return a DataFrame.

        Parameters
        ----------
        sql : str
            The statement; use ``?`` or ``$name`` placeholders for values.
        params : sequence, optional
            The values bound to the placeholders.

        Returns
        -------
        pandas.DataFrame
            The result (empty for statements that return nothing).
        """
        with self.connect() as con:
            try:
                rel = con.execute(sql, params or [])
                return rel.df() if rel.description else pd.DataFrame()
            except duckdb.Error as exc:
                raise StoreError(f"SQL failed: {exc}") from exc

    def close(self) -> None:
        """Close the connection now; further use raises :class:`StoreError`."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._conn is not None:
                with contextlib.suppress(duckdb.Error):
                    self._conn.close()
                self._conn = None

    def release(self) -> None:
        """Close an idle file connection now (it reopens on the next use)."""
        with self._lock:
            if self._depth == 0 and self.path is not None and self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def is_open(self) -> bool:
        """True while a connection (and so, for a file, its lock) is held."""
        return self._conn is not None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------
    def _release_later(self) -> None:
        if self.path is None:
            return
        if self.idle_release <= 0:
            self.release()
            return
        timer = threading.Timer(self.idle_release, self.release)
        timer.daemon = True
        self._timer = timer
        timer.start()

    def _open(self) -> duckdb.DuckDBPyConnection:
        assert self.path is not None
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.005
        while True:
            try:
                with _creation_guard(self.path):
                    con = duckdb.connect(str(self.path), read_only=self.read_only)
                    if not self._migrated and not self.read_only:
                        try:
                            self._migrate(con)
                        except BaseException:
                            con.close()
                            raise
                break
            except duckdb.IOException as exc:
                if not _LOCK_MESSAGE.search(str(exc)):
                    raise StoreError(f"cannot open workspace database {self.path}: {exc}") from exc
                if time.monotonic() >= deadline:
                    holder = re.search(r"PID (\d+)", str(exc))
                    who = f"process {holder.group(1)}" if holder else "another process"
                    raise StoreLockedError(
                        f"workspace database {self.path} stayed locked by {who} for "
                        f"{self.lock_timeout:.0f} s; finish or close the other session's "
                        "work, or open this workspace with read_only=True"
                    ) from exc
                time.sleep(delay * (0.5 + random.random()))  # backoff with jitter
                delay = min(delay * 2, 0.25)
            except duckdb.Error as exc:
                raise StoreError(f"cannot open workspace database {self.path}: {exc}") from exc
        return con

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            migrate(con, self.schema)
        except duckdb.Error as exc:
            raise StoreError(f"migrating {self!r} failed: {exc}") from exc
        self._migrated = True
