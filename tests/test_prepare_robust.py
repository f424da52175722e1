"""python -m train.prepare against hostile labels, Ctrl-C, a killed parent and a second run on the same cache."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from synthetic_emopia import synthetic_clip, write_emopia_folder

from moodgen.deam import DEAM_STATIC_FILES
from train.corpus import deam, emopia
from train.corpus.cache import CorpusCache, CorpusError, shard_path, writing_lock
from train.prepare import PrepareSettings, main, prepare

REPO = Path(__file__).resolve().parents[1]
ONE_EACH = {"train": 1, "val": 0, "test": 0}  # one train clip per quadrant


def add_rows(path: Path, rows: list[str]) -> None:
    with open(path, "a") as f:
        f.writelines(f"{row}\n" for row in rows)


def test_emopia_ids_cannot_reach_outside_the_dataset_or_the_cache(tmp_path):
    root = write_emopia_folder(tmp_path / "EMOPIA_1.0", per_split=ONE_EACH, seconds=1.0)
    outside = tmp_path / "outside"
    outside.mkdir()
    synthetic_clip(1, 1.0).write(str(outside / "evil_x_0.mid"))
    (root / "midis" / "Q1_linked_0.mid").symlink_to(outside / "evil_x_0.mid")
    synthetic_clip(2, 1.0).write(str(root / "midis" / "Q2_mismatch_0.mid"))
    absolute = str(outside / "evil_x_0")  # read as midis / "<ID>.mid", an absolute ID names any file
    bad = {absolute: "is not of the form", "../outside/evil_x_0": "is not of the form",
           "Q1_linked_0": "resolves outside the dataset folder", "Q2_mismatch_0": "disagrees with the ID's Q2"}
    add_rows(root / "split" / "train_SL.csv", [f"{emopia.song_of(i)},1,0,0,0,1" for i in bad])
    add_rows(root / "label.csv", [f"{i},1,T" for i in bad])
    out = tmp_path / "cache"
    summary = prepare("emopia", root, out, PrepareSettings(), workers=1)
    assert summary["processed"] == 4 and summary["skipped"] == 4
    assert sorted(p.name for p in outside.iterdir()) == ["evil_x_0.mid"]  # nothing written next to it
    cache = CorpusCache(out)
    assert sorted({it["clip_id"] for it in cache.items}) == sorted(c.clip_id for c in emopia.list_clips(root)[0])
    reasons = [s["reason"] for s in cache.manifest["skipped"]]
    assert all(any(why in r for r in reasons) for why in bad.values())
    assert not any(str(outside) in s["path"] for s in cache.manifest["skipped"])


@pytest.mark.parametrize("clip_id", ["/tmp/x/evil_x_0", "../evil", "a/b", ".hidden", ""])
def test_shard_path_refuses_ids_that_are_not_plain_names(tmp_path, clip_id):
    with pytest.raises(CorpusError, match="not a plain file name"):
        shard_path(tmp_path / "cache", clip_id)


def test_deam_song_ids_must_be_numbers(tmp_path):
    root = tmp_path / "DEAM"
    (root / "annotations").mkdir(parents=True)
    for name, song in zip(DEAM_STATIC_FILES, ("2", "../../outside/x")):
        (root / "annotations" / name).write_text(f"song_id,valence_mean,arousal_mean\n{song},6.0,4.0\n")
    tone = np.sin(np.arange(8000) / 10).astype(np.float32) * 0.3
    for path in (root / "MEMD_audio" / "2.mp3", tmp_path / "outside" / "x.mp3"):
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, tone, 16000, format="MP3")
    clips, skipped = deam.list_clips(root)
    assert [c.clip_id for c in clips] == ["deam_2"]
    assert len(skipped) == 1 and "song_id '../../outside/x' is not a number" in skipped[0]["reason"]


def test_a_second_prepare_on_the_same_cache_is_refused(tmp_path):
    root = write_emopia_folder(tmp_path / "EMOPIA_1.0", per_split=ONE_EACH, seconds=1.0)
    with writing_lock(tmp_path / "cache"):
        with pytest.raises(CorpusError, match="another prepare is writing this cache"):
            prepare("emopia", root, tmp_path / "cache", PrepareSettings(), workers=1)


def test_ctrl_c_drops_the_queue_and_the_next_run_continues(tmp_path, capsys):
    n_clips = 40
    root = write_emopia_folder(tmp_path / "EMOPIA_1.0", per_split={"train": n_clips // 4, "val": 0, "test": 0},
                               seconds=2.0)
    out = tmp_path / "cache"
    args = ["--root", str(root), "--out", str(out), "--workers", "1"]
    # SIGINT as in a terminal: a test run started in the background inherits it ignored, and so would the child
    proc = subprocess.Popen([sys.executable, "-m", "train.prepare", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        while proc.poll() is None and not any((out / "shards").glob("*.npz")):
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole process group
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    done = len(list((out / "shards").glob("*.npz")))
    assert proc.returncode == 130 and err.strip().splitlines()[-1].startswith("interrupted:")
    assert 1 <= done < n_clips  # the queue was dropped, what was done is kept
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["processed"] == n_clips - done
    assert len(CorpusCache(out).select(transpose=0)) == n_clips


HOLD_A_WORKER = """
import os, time
from train.prepare import worker_pool
pool = worker_pool(1)
print(pool.submit(os.getpid).result(), flush=True)
pool.submit(time.sleep, 600)
time.sleep(600)
"""


def running(pid: int) -> bool:
    """Whether process `pid` exists and has not ended (a zombie, ended but not yet reaped, has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_workers_end_when_prepare_is_killed():
    proc = subprocess.Popen([sys.executable, "-c", HOLD_A_WORKER], cwd=REPO, stdout=subprocess.PIPE, text=True)
    worker = int(proc.stdout.readline())
    try:
        assert running(worker)
        proc.kill()  # SIGKILL: no cleanup code runs in the parent
        proc.wait()
        for _ in range(600):
            if not running(worker):
                break
            time.sleep(0.05)
        assert not running(worker)
    finally:
        if running(worker):
            os.kill(worker, signal.SIGKILL)


def test_an_id_too_long_for_a_file_name_is_skipped_with_its_reason(tmp_path):
    """A 300-character EMOPIA ID (a valid shape) made `File name too long` tracebacks."""
    root = write_emopia_folder(tmp_path / "EMOPIA_1.0", per_split=ONE_EACH, seconds=1.0)
    long_id = f"Q1_{'x' * 295}_0"
    with open(root / "label.csv", "a") as f:
        f.write(f"{long_id},1,T\n")
    with open(root / "split" / "train_SL.csv", "a") as f:
        f.write(f"{emopia.song_of(long_id)},1,0,0,0,1\n")
    clips, skipped = emopia.list_clips(root)
    assert len(clips) == 4 and len(skipped) == 1
    assert "is longer than 120 characters" in skipped[0]["reason"] and len(skipped[0]["reason"]) < 200
    with pytest.raises(CorpusError, match="not a plain file name"):
        shard_path(tmp_path / "cache", "a" * 300)
