"""Work threads that hand the heap's free memory back to the operating system after each task.

A request allocates and frees hundreds of MB of short-lived arrays. glibc's malloc keeps much of that freed memory
in its arenas (and raises its mmap threshold as large blocks come and go, so later ones land in the arenas too):
a server's RSS then climbed by 300 MB over 300 distinct requests while nothing was kept (benchmarks/speed/soak.py).
`malloc_trim` returns the free pages; it takes a few milliseconds. Elsewhere than glibc nothing is trimmed.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


SIGNAL_CHECK_S = 0.2


class TrimmingWorkers(ThreadPoolExecutor):
    """A thread pool whose every task, when done, returns the heap's free pages to the operating system; each task
    runs inside `around()` (the pipeline's: the math threads it may use).

    In a process forked from the one that made it (ZeroGPU runs GPU work so, as does multiprocessing's "fork"), none
    of its threads exist: there a task runs at once in the calling thread (queued, it would wait forever)."""

    def __init__(self, max_workers: int, thread_name_prefix: str = "",
                 around: Callable[[], AbstractContextManager] = nullcontext):
        super().__init__(max_workers, thread_name_prefix=thread_name_prefix, initializer=self._mark_worker)
        self._around = around
        self._trim = malloc_trim()
        self._local = threading.local()
        self._pid = os.getpid()

    def _mark_worker(self) -> None:
        self._local.is_worker = True

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        if os.getpid() == self._pid:
            return super().submit(self._run_then_trim, fn, args, kwargs)
        future: Future = Future()
        try:
            future.set_result(self._run_then_trim(fn, args, kwargs))
        except Exception as exc:  # as a pool's future carries it
            future.set_exception(exc)
        return future

    def run(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        """fn(*args) on a worker; at once when called from one (a worker waiting on its own pool could deadlock), or
        when the pool takes no more work (shut down, or the program exiting) so work already under way can end."""
        if getattr(self._local, "is_worker", False):
            return fn(*args)
        try:
            future = self.submit(fn, *args)
        except RuntimeError:  # "cannot schedule new futures after (interpreter) shutdown"
            return fn(*args)
        while threading.current_thread() is threading.main_thread():
            # A signal the kernel hands to another thread (a worker, torch's) does not wake a main thread blocked
            # in a lock: it waits in short steps, so Ctrl-C and SIGTERM stop a command at once, not after the job.
            try:
                return future.result(timeout=SIGNAL_CHECK_S)
            except TimeoutError:
                continue
        return future.result()

    def _run_then_trim(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        try:
            with self._around():
                return fn(*args, **kwargs)
        finally:
            if self._trim is not None:
                self._trim(0)
