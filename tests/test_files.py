"""moodgen.files.write_together and Generation.save: a set of files appears whole or not at all."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from moodgen import files
from moodgen.files import write_together
from moodgen.pipeline import MoodPipeline

ROOT = Path(__file__).resolve().parents[1]


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_writes_every_file(tmp_path):
    contents = {tmp_path / "a.wav": b"wav", tmp_path / "a.json": b"{}", tmp_path / "a.mid": b"mid"}
    assert write_together(contents) == list(contents)
    assert {p: p.read_bytes() for p in contents} == contents
    assert listing(tmp_path) == ["a.json", "a.mid", "a.wav"]


def test_existing_files_need_overwrite(tmp_path):
    (tmp_path / "a.json").write_bytes(b"old")
    with pytest.raises(FileExistsError, match="a.json already exists"):
        write_together({tmp_path / "a.wav": b"new", tmp_path / "a.json": b"new"})
    assert listing(tmp_path) == ["a.json"] and (tmp_path / "a.json").read_bytes() == b"old"
    write_together({tmp_path / "a.wav": b"new", tmp_path / "a.json": b"new"}, overwrite=True)
    assert (tmp_path / "a.json").read_bytes() == b"new"


def test_a_folder_in_the_way_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "a.json").mkdir()
    with pytest.raises(IsADirectoryError, match="a.json is a folder"):
        write_together({tmp_path / "a.wav": b"wav", tmp_path / "a.json": b"{}"}, overwrite=True)
    assert listing(tmp_path) == ["a.json"]


def test_a_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_together({tmp_path / "a.wav": b"wav", tmp_path / "missing" / "a.json": b"{}"})
    assert listing(tmp_path) == []


def test_a_failed_rename_takes_back_the_files_already_renamed(tmp_path, monkeypatch):
    real_replace, calls = os.replace, []

    def replace_then_fail(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk gone")
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", replace_then_fail)
    with pytest.raises(OSError, match="disk gone"):
        write_together({tmp_path / "a.wav": b"wav", tmp_path / "a.json": b"{}", tmp_path / "a.mid": b"mid"})
    assert len(calls) == 2 and listing(tmp_path) == []


def test_threads_writing_the_same_files_each_leave_them_whole(tmp_path):
    contents = {tmp_path / "a.wav": b"w" * 200_000, tmp_path / "a.json": b"j" * 1000}
    errors = []

    def write():
        try:
            for _ in range(20):
                write_together(contents, overwrite=True)
        except OSError as exc:  # pragma: no cover - what the test is looking for
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and listing(tmp_path) == ["a.json", "a.wav"]
    assert {p: p.read_bytes() for p in contents} == contents


def test_a_sidecar_that_cannot_be_made_leaves_no_wav_or_midi(tiny_checkpoints, tmp_path):
    gen = MoodPipeline.from_checkpoint(tiny_checkpoints).generate(0.5, 0.5, seconds=1.0)
    with pytest.raises(TypeError, match="not JSON serializable"):
        gen.save(tmp_path / "clip.wav", extra={"note": object()})
    assert listing(tmp_path) == []
    assert [p.name for p in gen.save(tmp_path / "clip.wav")] == ["clip.wav", "clip.json", "clip.mid"]


KILLED_SAVE = """
import os, signal, sys
from pathlib import Path
from moodgen import files
real_replace = os.replace

def replace_then_die(src, dst):
    real_replace(src, dst)
    os.kill(os.getpid(), signal.SIGKILL)  # as a kill -9 between the first and the second rename

files.os.replace = replace_then_die
out = Path(sys.argv[1])
files.write_together({out / "clip.wav": b"new wav", out / "clip.mid": b"new mid", out / "clip.json": b"new json"},
                     overwrite=True)
"""


@pytest.mark.parametrize("before", [{}, {"clip.wav": b"old wav", "clip.mid": b"old mid", "clip.json": b"old"}],
                         ids=["new", "overwriting"])
def test_a_save_killed_between_renames_leaves_no_record_and_the_next_save_clears_what_it_left(tmp_path, before):
    """Killed between renames, a save left clip.wav beside .clip.json.*.tmp (or the old JSON describing the new
    WAV): each file whole, the set not. Now no sidecar describes a half-placed set, and the next save of it removes
    the dead writer's files instead of refusing them as existing."""
    for name, data in before.items():
        (tmp_path / name).write_bytes(data)
    done = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(tmp_path)], cwd=ROOT, timeout=120)
    assert done.returncode == -signal.SIGKILL
    left = listing(tmp_path)
    assert "clip.json" not in left and (tmp_path / "clip.wav").read_bytes() == b"new wav"
    assert any(name.startswith(".clip.json.") and name.endswith(".tmp") for name in left)
    write_together({tmp_path / "clip.wav": b"wav", tmp_path / "clip.mid": b"mid", tmp_path / "clip.json": b"json"})
    assert listing(tmp_path) == ["clip.json", "clip.mid", "clip.wav"]
    assert (tmp_path / "clip.mid").read_bytes() == b"mid"


def test_a_live_writer_keeps_its_temporaries(tmp_path):
    mine = tmp_path / f".clip.json.{os.getpid()}-1.tmp"  # this process runs: another thread's save may be under way
    mine.write_bytes(b"half")
    write_together({tmp_path / "clip.wav": b"wav", tmp_path / "clip.json": b"json"})
    assert mine.exists()
