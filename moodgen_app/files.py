"""The app's output files: one folder per distinct request, written once and served by path.

Every file a client may fetch is written under a temporary name and renamed into place (`moodgen.files`), and a
result is handed out only once all its files exist, so concurrent clients of the same request always read complete
files; identical requests made at once share one computation. Folders live in one per-process temporary folder
(removed at exit) and are evicted oldest first once their bytes on disk pass a bound.
"""
from __future__ import annotations

import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


class ResultStore(Generic[T]):
    """Results by key, each with its own folder of files under `root`.

    root: where the folders go; None makes a per-process temporary folder, removed when the store is closed or
    garbage-collected and at interpreter exit. max_bytes: bound on the files kept on disk (the values kept in memory
    are a few paths and lines of text each).
    """

    def __init__(self, root: str | Path | None = None, max_bytes: int = 256 << 20):
        self._tmp = tempfile.TemporaryDirectory(prefix="moodgen-app-") if root is None else None
        self.root = Path(self._tmp.name if self._tmp else root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._done: OrderedDict[str, tuple[T, int]] = OrderedDict()  # key -> (value, bytes on disk)
        self._pending: dict[str, Future[T]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, make: Callable[[Path], T]) -> T:
        """The value stored for `key` (a file-name-safe string), else `make(folder)`, which writes its files into
        an empty folder of its own and returns the value (which names them). A failed `make` leaves nothing."""
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key][0]
            pending = self._pending.get(key)
            if pending is None:
                self._pending[key] = future = Future()
        if pending is not None:  # the same request is being made: wait for it
            return pending.result()
        folder = self.root / key
        try:
            shutil.rmtree(folder, ignore_errors=True)  # left by an eviction that could not finish
            folder.mkdir()
            value = make(folder)
            size = folder_bytes(folder)
        except BaseException as exc:
            shutil.rmtree(folder, ignore_errors=True)
            with self._lock:
                del self._pending[key]
            future.set_exception(exc)
            raise
        with self._lock:
            del self._pending[key]
            self._done[key] = (value, size)
            evicted = self._evict()
        for old in evicted:
            shutil.rmtree(self.root / old, ignore_errors=True)
        future.set_result(value)
        return value

    def _evict(self) -> list[str]:
        """Drop the oldest results while their files pass `max_bytes`, keeping the newest (held under the lock)."""
        total = sum(size for _, size in self._done.values())
        evicted = []
        while total > self.max_bytes and len(self._done) > 1:
            key, (_, size) = self._done.popitem(last=False)
            total -= size
            evicted.append(key)
        return evicted

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(size for _, size in self._done.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._done)

    def close(self) -> None:
        """Remove every folder (the whole root when the store made it)."""
        with self._lock:
            self._done.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
