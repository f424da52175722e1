"""`python -m moodgen generate`: --out and --device are checked before any work, existing files need --force, and
every error is one line on stderr with exit status 2."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from moodgen.__main__ import main as cli
from moodgen.pipeline import MoodPipeline

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_generation(monkeypatch):
    """Fail the test if a clip is generated: the refusals below must come before any work."""
    def refuse(*args, **kwargs):
        raise AssertionError("generated before refusing")
    monkeypatch.setattr(MoodPipeline, "generate", refuse)


def generate(checkpoints, *args: str) -> int:
    return cli(["generate", "--preset", "happy", "--seconds", "1", "--checkpoint", str(checkpoints), *args])


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: ") and captured.err.count("\n") == 1
    return captured.err


@pytest.mark.parametrize("out, message", [
    ("clip.mp3", "--out must name a .wav file, got '.mp3'"),
    ("clip", "--out must name a .wav file, got no suffix"),
    ("folder.wav", "--out .*folder.wav is a folder; name a .wav file inside it"),
    ("afile/clip.wav", "--out: .*afile is a file, not a folder"),
])
def test_an_unusable_out_is_refused_before_generating(tiny_checkpoints, tmp_path, capsys, no_generation, out,
                                                      message):
    (tmp_path / "folder.wav").mkdir()
    (tmp_path / "afile").write_text("x")
    assert generate(tiny_checkpoints, "--out", str(tmp_path / out)) == 2
    assert re.search(message, one_error_line(capsys))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "folder.wav"]


def test_a_read_only_folder_is_refused_before_generating(tiny_checkpoints, tmp_path, capsys, no_generation):
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o555)
    if os.access(folder, os.W_OK):
        pytest.skip("this user can write to a read-only folder (root)")
    assert generate(tiny_checkpoints, "--out", str(folder / "sub" / "clip.wav")) == 2
    assert f"--out: folder {folder} is not writable" in one_error_line(capsys)


def test_existing_files_need_force(tiny_checkpoints, tmp_path, capsys):
    out = tmp_path / "clip.wav"
    assert generate(tiny_checkpoints, "--seed", "1", "--out", str(out)) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(before) == ["clip.json", "clip.mid", "clip.wav"]
    assert generate(tiny_checkpoints, "--seed", "2", "--out", str(out)) == 2
    assert "already exist; pass --force to overwrite" in one_error_line(capsys)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    (tmp_path / "clip.wav").unlink()  # a stale sidecar alone is enough to refuse
    assert generate(tiny_checkpoints, "--seed", "2", "--out", str(out)) == 2
    assert "clip.json" in one_error_line(capsys)
    assert generate(tiny_checkpoints, "--seed", "2", "--out", str(out), "--force") == 0
    assert out.read_bytes() != before["clip.wav"] and out.with_suffix(".json").read_bytes() != before["clip.json"]


def test_a_folder_named_like_the_sidecar_is_refused_even_with_force(tiny_checkpoints, tmp_path, capsys):
    (tmp_path / "clip.json").mkdir()
    assert generate(tiny_checkpoints, "--out", str(tmp_path / "clip.wav"), "--force") == 2
    assert "clip.json is a folder" in one_error_line(capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.json"]


@pytest.mark.parametrize("device, message", [
    ("tpu9", "--device must be a torch device such as cpu or cuda, got 'tpu9'"),
    ("meta", "--device must be cpu or cuda, got 'meta'"),
    ("cuda:x", "--device must be a torch device"),
    ("cuda", "--device cuda: no CUDA device is available here"),
])
def test_a_bad_device_is_one_line(tiny_checkpoints, tmp_path, capsys, no_generation, device, message):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    assert generate(tiny_checkpoints, "--device", device, "--out", str(tmp_path / "clip.wav")) == 2
    line = one_error_line(capsys)
    assert message in line and len(line) < 300
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--seed", "x"], "seed must be an integer"),
    (["--seconds", "nan"], "seconds must be a number"),
    (["--steps", "2.5"], "steps must be an integer"),
    (["--guidance", "loud"], "guidance must be a number"),
    (["--engine", "tape"], "engine must be one of notes, mel"),
    (["--key", "Z major"], "key"),
    (["--valence", "0.5"], "--valence needs --arousal"),
    (["--arousal", "0.5"], "one of the arguments --preset --valence is required"),
    (["--preset", "happy", "--arousal", "0.5"], "--arousal goes with --valence, not --preset"),
    (["--preset", "x" * 1000], "unknown preset 'xxx"),
    (["--bogus", "1"], "unrecognized arguments: --bogus"),
])
def test_bad_arguments_are_one_line_naming_the_field(tiny_checkpoints, tmp_path, capsys, args, message):
    base = [] if {"--valence", "--arousal", "--preset"} & set(args) else ["--preset", "happy"]
    assert cli(["generate", *base, "--seconds", "1", "--checkpoint", str(tiny_checkpoints), "--out",
                str(tmp_path / "clip.wav"), *args]) == 2
    line = one_error_line(capsys)
    assert message in line and len(line) < 300
    assert list(tmp_path.iterdir()) == []


def catches(pid: int, sig: signal.Signals) -> bool:
    """Whether process `pid` has a handler for `sig` (Linux: the SigCgt mask of /proc/PID/status)."""
    status = Path(f"/proc/{pid}/status").read_text()
    mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(mask >> (sig - 1) & 1)


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads the signal mask from /proc (Linux)")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_stops_a_command_as_ctrl_c_does_in_one_line_with_nothing_written(tiny_checkpoints, tmp_path, sig):
    """The CLI had no SIGTERM handler: `kill` ended it without a word, Ctrl-C with a traceback."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "moodgen", "journey", "--presets", "sad,happy", "--seconds", "600",
                             "--checkpoint", str(tiny_checkpoints), "--out", str(out / "j.wav")], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not catches(proc.pid, signal.SIGTERM):  # main() has started
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130 and stdout == ""
    assert stderr == "interrupted: no clip written\n"
    assert not out.exists() or list(out.iterdir()) == []
