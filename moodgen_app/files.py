"""The app's output files: one folder per distinct request, written once and served by path.

Every file a client may fetch is written under a temporary name and renamed into place (`moodgen.files`), and a
result is handed out only once all its files exist, so concurrent clients of the same request always read complete
files; identical requests made at once share one computation. Folders live in one per-process temporary folder
(removed at exit) and are evicted oldest first once their bytes on disk pass a bound.
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from moodgen.shared import SharedWork

T = TypeVar("T")


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


class ResultStore(Generic[T]):
    """Results by key, each with its own folder of files under `root`.

    root: where the folders go; None makes a per-process temporary folder, removed when the store is closed or
    garbage-collected and at interpreter exit. max_bytes: bound on the files kept on disk (the values kept in memory
    are a few paths and lines of text each); the newest result stays whatever its size.
    """

    def __init__(self, root: str | Path | None = None, max_bytes: int = 256 << 20):
        self._tmp = tempfile.TemporaryDirectory(prefix="moodgen-app-") if root is None else None
        self.root = Path(self._tmp.name if self._tmp else root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._results: SharedWork[T] = SharedWork(max_bytes, lambda key, _: folder_bytes(self.root / key), keep=1,
                                                  evicted=lambda key, _: shutil.rmtree(self.root / key,
                                                                                       ignore_errors=True))

    def get(self, key: str, make: Callable[[Path], T]) -> T:
        """The value stored for `key` (a file-name-safe string), else `make(folder)`, which writes its files into
        an empty folder of its own and returns the value (which names them). A failed `make` leaves nothing."""
        def compute() -> T:
            folder = self.root / key
            try:
                shutil.rmtree(folder, ignore_errors=True)  # left by an eviction that could not finish
                folder.mkdir()
                return make(folder)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise

        return self._results.get(key, compute)

    @property
    def nbytes(self) -> int:
        return self._results.total_size

    def __len__(self) -> int:
        return len(self._results)

    def close(self) -> None:
        """Remove every folder (the whole root when the store made it)."""
        self._results.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
