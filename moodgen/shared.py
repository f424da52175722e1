"""Identical work done once: `SharedWork` keeps results by key, and callers asking for a key that is being computed
wait for that computation and share its result (or its error). Used by the pipeline for clips and by the app for
the files of a request.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

V = TypeVar("V")


class SharedWork(Generic[V]):
    """Results by key, each computed once; the finished ones kept in an LRU bounded in size.

    max_size: the bound on the sizes of the kept results, each `size(key, value)` (bytes, say); the oldest go first.
    keep: how many of the newest stay whatever their size (a result whose files were just handed out must stay).
    evicted(key, value): called for each result dropped, outside the lock (to remove its files).
    """

    def __init__(self, max_size: int, size: Callable[[Hashable, V], int], keep: int = 0,
                 evicted: Callable[[Hashable, V], None] | None = None):
        self.max_size, self.size, self.keep, self.evicted = max_size, size, keep, evicted
        self._done: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._pending: dict[Hashable, Future[V]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The result kept for `key`, else the one being computed for it, else compute() (on this thread)."""
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key][0]
            pending = self._pending.get(key)
            if pending is None:
                self._pending[key] = future = Future()
        if pending is not None:
            return pending.result()
        try:
            value = compute()
            size = self.size(key, value)
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            future.set_exception(exc)
            raise
        with self._lock:
            del self._pending[key]
            self._done[key] = (value, size)
            dropped = self._evict()
        for old, old_value in dropped:
            if self.evicted is not None:
                self.evicted(old, old_value)
        future.set_result(value)
        return value

    def _evict(self) -> list[tuple[Hashable, V]]:
        """Drop the oldest results while their sizes pass `max_size`, keeping the newest `keep` (under the lock)."""
        total = sum(size for _, size in self._done.values())
        dropped = []
        while total > self.max_size and len(self._done) > self.keep:
            key, (value, size) = self._done.popitem(last=False)
            total -= size
            dropped.append((key, value))
        return dropped

    @property
    def total_size(self) -> int:
        with self._lock:
            return sum(size for _, size in self._done.values())

    @property
    def computing(self) -> int:
        """How many keys are being computed now."""
        with self._lock:
            return len(self._pending)

    def __len__(self) -> int:
        with self._lock:
            return len(self._done)

    def clear(self) -> None:
        """Forget every kept result (without calling `evicted`)."""
        with self._lock:
            self._done.clear()
