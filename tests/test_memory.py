"""moodgen.memory: the pipeline's work threads return freed heap memory after each task."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from moodgen.memory import TrimmingWorkers, malloc_trim

REPO = Path(__file__).resolve().parents[1]


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def churn() -> int:
    """Mid-sized arrays freed out of order: the pattern that leaves glibc's arenas holding free pages."""
    kept = [np.ones(300_000 + 4096 * i) for i in range(200)]  # 2.4-9 MB each
    del kept[::2]
    for _ in range(3):
        kept = [np.ones(2_000_000 + 4096 * i) for i in range(30)] + kept[:1]
    return len(kept)


CHURN_IN_A_FRESH_PROCESS = """
from moodgen.memory import TrimmingWorkers
from tests.test_memory import churn, rss_bytes
workers = TrimmingWorkers(1)
assert workers.submit(lambda a, b=0: a + b, 2, b=3).result() == 5  # arguments pass through
trim, workers._trim = workers._trim, None
workers.submit(churn).result()
untrimmed = rss_bytes()
workers._trim = trim  # the same work again, trimmed after
workers.submit(churn).result()
print(untrimmed, rss_bytes())
"""


@pytest.mark.skipif(malloc_trim() is None, reason="needs glibc's malloc_trim")
def test_tasks_give_their_freed_memory_back():
    # a fresh process: a test session's own heap would blur the difference
    out = subprocess.run([sys.executable, "-c", CHURN_IN_A_FRESH_PROCESS], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    untrimmed, trimmed = map(int, out.split())
    assert trimmed < untrimmed - (50 << 20)


def test_a_failing_task_still_trims_and_raises():
    calls = []
    workers = TrimmingWorkers(1)
    workers._trim = calls.append
    with pytest.raises(ZeroDivisionError):
        workers.submit(lambda: 1 / 0).result()
    assert calls == [0]
    workers.shutdown()


def test_run_works_on_a_worker_and_in_place_once_shut_down():
    workers = TrimmingWorkers(1, thread_name_prefix="w")
    assert workers.run(lambda: threading.current_thread().name).startswith("w")
    assert workers.run(lambda: workers.run(lambda: 7)) == 7  # from its own worker: no deadlock
    workers.shutdown()
    assert workers.run(threading.current_thread) is threading.current_thread()  # work under way can still end
