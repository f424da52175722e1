"""The helpers that write benchmarks/RESULTS.md."""
from __future__ import annotations

import sys
from pathlib import Path

from benchmarks import results


def test_a_recorded_command_names_repository_paths_relative_to_it(monkeypatch):
    root = Path(results.__file__).resolve().parents[1]
    monkeypatch.setattr(sys, "argv", [str(root / "benchmarks" / "speed" / "train_speed.py"), "--cache",
                                      f"{root}/.cache/corpus/emopia", "--out", "/elsewhere/x"])
    assert results.command() == "python -m benchmarks.speed.train_speed --cache .cache/corpus/emopia --out /elsewhere/x"
