"""The app's result store: one folder per request, made once even when asked for at once, bounded in bytes."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from moodgen_app.files import ResultStore


def writer(size: int, calls: list[str] | None = None, delay: float = 0.0):
    def make(folder: Path) -> str:
        if calls is not None:
            calls.append(folder.name)
        time.sleep(delay)
        (folder / "clip.wav").write_bytes(b"\1" * size)
        return str(folder / "clip.wav")
    return make


def test_a_result_is_made_once_and_kept(tmp_path):
    store = ResultStore(tmp_path)
    calls: list[str] = []
    first = store.get("a", writer(10, calls))
    assert store.get("a", writer(10, calls)) == first and calls == ["a"]
    assert Path(first).read_bytes() == b"\1" * 10 and store.nbytes == 10 and len(store) == 1


def test_identical_requests_at_once_share_one_computation(tmp_path):
    store = ResultStore(tmp_path)
    calls: list[str] = []
    start = threading.Barrier(12)

    def one(_: int) -> str:
        start.wait()
        return store.get("same", writer(1000, calls, delay=0.2))

    with ThreadPoolExecutor(12) as pool:
        paths = list(pool.map(one, range(12)))
    assert calls == ["same"] and len(set(paths)) == 1 and Path(paths[0]).stat().st_size == 1000


def test_oldest_results_go_once_the_bytes_pass_the_bound(tmp_path):
    store = ResultStore(tmp_path, max_bytes=2500)
    for key in "abc":
        store.get(key, writer(1000))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "c"] and store.nbytes == 2000
    store.get("b", writer(1000))  # b is now the newest: d pushes c out
    store.get("d", writer(1000))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "d"]


def test_a_failed_result_leaves_nothing_and_is_retried(tmp_path):
    store = ResultStore(tmp_path)

    def broken(folder: Path) -> str:
        (folder / "half.wav").write_bytes(b"\1")
        raise ValueError("engine failed")

    with pytest.raises(ValueError, match="engine failed"):
        store.get("x", broken)
    assert list(tmp_path.iterdir()) == [] and len(store) == 0
    assert Path(store.get("x", writer(5))).stat().st_size == 5


def test_the_per_process_folder_goes_on_close():
    store = ResultStore()
    assert store.root.name.startswith("moodgen-app-")
    path = Path(store.get("k", writer(3)))
    assert path.is_file()
    store.close()
    assert not store.root.exists()
