"""A small pool of header-reader processes with time and memory limits.

Each worker is ``python -m dicomflow_lab.core._worker``, talking length-prefixed pickles
over its stdin/stdout. Unlike ``multiprocessing`` pools this never re-imports the
caller's ``__main__`` (so scripts without a main guard and notebook kernels are safe),
and a worker stuck on, or killed by, one file costs only that file: the pool kills it,
starts another and reports the file.

Only trusted callables of this package run in workers; the pipes carry no code.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pickle
import selectors
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["TaskFailed", "WorkerPool", "shared_pool"]

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("<Q")


class TaskFailed(Exception):
    """A task's worker died or ran past its deadline; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _send(stream: Any, obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _recv(stream: Any) -> Any:
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


@dataclass
class _Worker:
    proc: subprocess.Popen[bytes]
    task: tuple[int, Any] | None = None
    deadline: float = 0.0


class WorkerPool:
    """Worker processes that run ``func(*args)`` for the functions of this package.

    Parameters
    ----------
    size : int
        The number of worker processes.
    memory_limit : int, optional
        Address-space limit of each worker in bytes, above what it uses after start-up
        (default 2 GiB); a file needing more fails with MemoryError in the worker
        instead of exhausting the machine.
    """

    def __init__(self, size: int, *, memory_limit: int = 2 << 30) -> None:
        self.size = max(1, size)
        self.memory_limit = memory_limit
        self._workers: list[_Worker] = []

    def _start(self) -> _Worker:
        env = dict(os.environ)
        env["DICOMFLOW_WORKER_MEMORY"] = str(self.memory_limit)
        proc = subprocess.Popen(
            [sys.executable, "-m", "dicomflow_lab.core._worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        return _Worker(proc)

    def _ensure(self) -> None:
        self._workers = [w for w in self._workers if w.proc.poll() is None]
        while len(self._workers) < self.size:
            self._workers.append(self._start())

    def close(self) -> None:
        """Stop every worker."""
        for w in self._workers:
            _kill(w.proc)
        self._workers = []

    def map_unordered(
        self,
        func: Callable[..., Any],
        tasks: Sequence[tuple[Any, ...]],
        *,
        timeout: Callable[[tuple[Any, ...]], float],
    ) -> Iterator[tuple[int, Any]]:
        """Run ``func(*task)`` for every task; yield ``(task index, result)``.

        Parameters
        ----------
        func : callable
            A module-level function of this package (pickled by reference).
        tasks : sequence of tuples
            The arguments of each call.
        timeout : callable
            Seconds allowed for a task, given its arguments.

        Yields
        ------
        tuple of (int, object)
            The task's index and its result, or a :class:`TaskFailed` instance when its
            worker died or ran out of time (the worker is replaced).
        """
        target = (func.__module__, func.__qualname__)
        queue = list(enumerate(tasks))
        queue.reverse()
        self._ensure()
        selector = selectors.DefaultSelector()
        try:
            busy: dict[int, _Worker] = {}
            while queue or busy:
                for w in self._workers:
                    if w.task is None and queue:
                        index, args = queue.pop()
                        try:
                            _send(w.proc.stdin, (target, args))
                        except (BrokenPipeError, OSError):
                            queue.append((index, args))
                            self._replace(w, selector, busy)
                            continue
                        w.task = (index, args)
                        w.deadline = time.monotonic() + timeout(args)
                        busy[w.proc.pid] = w
                        selector.register(w.proc.stdout, selectors.EVENT_READ, w)  # type: ignore[arg-type]
                if not busy:
                    continue
                wait = max(0.0, min(w.deadline for w in busy.values()) - time.monotonic())
                events = selector.select(timeout=wait)
                for key, _ in events:
                    w = key.data
                    assert w.task is not None
                    index = w.task[0]
                    try:
                        ok, value = _recv(w.proc.stdout)
                    except (EOFError, OSError, pickle.UnpicklingError):
                        code = w.proc.poll()
                        self._replace(w, selector, busy)
                        yield index, TaskFailed(f"the reader process died (exit code {code})")
                        continue
                    selector.unregister(w.proc.stdout)  # type: ignore[arg-type]
                    busy.pop(w.proc.pid, None)
                    w.task = None
                    yield index, (value if ok else TaskFailed(value))
                now = time.monotonic()
                for w in [w for w in busy.values() if w.deadline <= now]:
                    assert w.task is not None
                    index = w.task[0]
                    limit = timeout(w.task[1])
                    self._replace(w, selector, busy)
                    yield index, TaskFailed(f"reading took longer than {limit:.0f} s")
        finally:
            selector.close()
            # workers still busy after an early exit hold stale tasks: restart them
            for w in list(self._workers):
                if w.task is not None:
                    _kill(w.proc)
            self._workers = [w for w in self._workers if w.task is None]

    def _replace(
        self, w: _Worker, selector: selectors.BaseSelector, busy: dict[int, _Worker]
    ) -> None:
        busy.pop(w.proc.pid, None)
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(w.proc.stdout)  # type: ignore[arg-type]
        _kill(w.proc)
        self._workers.remove(w)
        self._workers.append(self._start())


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


_SHARED: WorkerPool | None = None


def shared_pool(size: int) -> WorkerPool:
    """Return the process-wide pool, (re)sized to `size` workers."""
    global _SHARED
    if _SHARED is None:
        _SHARED = WorkerPool(size)
        atexit.register(lambda: _SHARED.close() if _SHARED else None)
    elif _SHARED.size != size:
        _SHARED.close()
        _SHARED.size = size
    return _SHARED


def _limit_memory() -> None:
    try:
        import resource

        extra = int(os.environ.get("DICOMFLOW_WORKER_MEMORY", "0"))
        if extra <= 0:
            return
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[0])
        current = pages * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (current + extra, current + extra))
    except (OSError, ValueError, ImportError):  # pragma: no cover - non-Linux
        pass


def _serve() -> None:  # pragma: no cover - runs in the worker process
    import importlib

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints must not corrupt the pipe
    # import what the tasks need before limiting memory
    importlib.import_module("dicomflow_lab.core.index")
    _limit_memory()
    while True:
        try:
            (module, name), args = _recv(stdin)
        except EOFError:
            return
        if not module.startswith("dicomflow_lab."):
            _send(stdout, (False, f"refused to run {module}.{name}"))
            continue
        try:
            func = getattr(importlib.import_module(module), name)
            result = (True, func(*args))
        except MemoryError:
            result = (False, "ran out of memory")
        except Exception as exc:
            result = (False, f"{type(exc).__name__}: {exc}")
        _send(stdout, result)


if __name__ == "__main__":  # pragma: no cover
    _serve()
