"""What every training run shares (train.runs), through both loops (the engines' and the cGAN's): no code runs
from a state file, a fresh start never destroys saved state, SIGINT/SIGTERM save the state and resuming leaves no
step twice in the log."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from synthetic_cache import make_cache

from tests.synthetic_emopia import write_emopia_folder
from tests.test_cgan import SMALL_OVERRIDES, argv
from train.cgan import main as cgan_main
from train.prepare import main as prepare_main
from train.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]
# A small note model on the real loop: every step logged, no probe (export is what probes).
NOTES_ARGS = ["--threads", "1", "--batch_size", "2", "--warmup_steps", "1", "--log_every", "1", "--probe_every",
              "1000", "--model.channels", "16", "--model.dilations", "1,2"]


@pytest.fixture(scope="module")
def roll_cache(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs_corpus")
    midi = write_emopia_folder(root / "EMOPIA_1.0", {"train": 1, "val": 1, "test": 1}, seconds=8.0)
    assert prepare_main(["--root", str(midi), "--out", str(root / "cache"), "--workers", "1"]) == 0
    return root / "cache"


@pytest.fixture(scope="module")
def mel_cache(tmp_path_factory) -> Path:
    return make_cache(tmp_path_factory.mktemp("runs_mel") / "cache")


def notes_argv(cache: Path, runs: Path, steps: int, *flags: str) -> list[str]:
    return ["--engine", "notes", "--cache", str(cache), "--runs", str(runs), "--out", str(runs / "ck"),
            "--steps", str(steps), *NOTES_ARGS, *flags]


def cgan_argv(cache: Path, runs: Path, steps: int, *flags: str) -> list[str]:
    pairs = [("cache", str(cache)), ("runs", str(runs)), ("out", str(runs / "ck")), ("batch_size", "2"),
             ("log_every", "1"), ("probe_every", "1000"), ("steps", str(steps))]
    return argv(pairs + SMALL_OVERRIDES, *flags)


class RunsCommand:
    """Runs `python -m train` on one of the caches, in process or as a subprocess."""

    def __init__(self, model: str, cache: Path):
        self.model, self.cache = model, cache

    def args(self, runs: Path, steps: int, *flags: str) -> list[str]:
        build = notes_argv if self.model == "notes" else cgan_argv
        return build(self.cache, runs, steps, *flags)

    def run(self, runs: Path, steps: int, *flags: str) -> int:
        main = train_main if self.model == "notes" else cgan_main
        return main(self.args(runs, steps, *flags))

    def folder(self, runs: Path) -> Path:
        return runs / ("notes" if self.model == "notes" else "cgan")

    def spawn(self, runs: Path, steps: int, stderr: Path) -> subprocess.Popen:
        model = [] if self.model == "notes" else ["--model", "cgan"]
        with open(stderr, "w") as err:  # a file, not a pipe: the progress bar would fill a pipe nobody reads
            return subprocess.Popen([sys.executable, "-m", "train", *model, *self.args(runs, steps)], cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=err)


@pytest.fixture
def caches(roll_cache, mel_cache) -> dict[str, Path]:
    return {"notes": roll_cache, "cgan": mel_cache}


@pytest.fixture(params=["notes", "cgan"])
def command(request, caches) -> RunsCommand:
    return RunsCommand(request.param, caches[request.param])


class ShellOnUnpickle:
    """A pickle that runs a shell command when it is unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_crafted_state_file_runs_nothing_on_resume(command, tmp_path):
    runs, marker = tmp_path / "runs", tmp_path / "ran"
    folder = command.folder(runs)
    folder.mkdir(parents=True)
    torch.save({"config": {}, "step": 1, "payload": ShellOnUnpickle(marker)}, folder / "state.pt")
    with pytest.raises(SystemExit, match="state.pt: not a training state this version can load"):
        command.run(runs, 2, "--resume")
    assert not marker.exists()


def test_a_fresh_start_keeps_the_saved_state(command, tmp_path):
    runs = tmp_path / "runs"
    assert command.run(runs, 2) == 0
    folder = command.folder(runs)
    saved, log = (folder / "state.pt").read_bytes(), (folder / "log.jsonl").read_text()
    with pytest.raises(SystemExit, match="pass --resume to continue it, or --fresh to start over") as refused:
        command.run(runs, 2)
    assert str(folder / "state.pt") in str(refused.value)
    assert (folder / "state.pt").read_bytes() == saved and (folder / "log.jsonl").read_text() == log
    with pytest.raises(SystemExit, match="not both"):
        command.run(runs, 2, "--resume", "--fresh")
    assert command.run(runs, 1, "--fresh") == 0
    [kept] = folder.glob("state.before-*.pt")
    [kept_log] = folder.glob("log.before-*.jsonl")
    assert kept.read_bytes() == saved and kept_log.read_text() == log
    assert torch.load(folder / "state.pt", weights_only=True)["step"] == 1


def logged_steps(log: Path) -> list[int]:
    return [json.loads(line)["step"] for line in log.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("model, sig", [("notes", signal.SIGTERM), ("cgan", signal.SIGINT)], ids=["notes-SIGTERM",
                                                                                              "cgan-SIGINT"])
def test_a_stop_signal_saves_the_state_and_resuming_logs_each_step_once(model, sig, caches, tmp_path):
    command = RunsCommand(model, caches[model])
    runs = tmp_path / "runs"
    log = command.folder(runs) / "log.jsonl"
    stderr = tmp_path / "stderr.txt"
    proc = command.spawn(runs, 100_000, stderr)
    try:
        deadline = time.monotonic() + 180
        while not (log.is_file() and len(logged_steps(log)) >= 2):  # the loop (and its signal handler) is running
            assert proc.poll() is None and time.monotonic() < deadline, stderr.read_text()[-2000:]
            time.sleep(0.2)
        proc.send_signal(sig)
        proc.wait(timeout=180)
    finally:
        proc.kill()
    err = stderr.read_text()
    assert proc.returncode == 1 and "the state is saved" in err, err[-2000:]
    step = torch.load(command.folder(runs) / "state.pt", weights_only=True)["step"]
    assert step >= 2 and logged_steps(log) == list(range(1, step + 1))  # nothing lost since the last save
    with open(log, "a") as f:  # as if the process had died after logging a step it never saved
        f.write(json.dumps({"step": step + 1, "loss": 0.0}) + "\n")
    assert command.run(runs, step + 2, "--resume") == 0
    assert logged_steps(log) == list(range(1, step + 3))


def test_a_state_file_holding_a_list_is_one_clear_message(command, tmp_path):
    runs = tmp_path / "runs"
    command.folder(runs).mkdir(parents=True)
    torch.save([1, 2, 3], command.folder(runs) / "state.pt")  # loads with weights_only: then state["config"] failed
    with pytest.raises(SystemExit, match=r"state.pt: not a training state \(it holds a list, not the dict"):
        command.run(runs, 2, "--resume")


def test_a_torn_last_line_of_the_log_does_not_stop_a_resume(caches, tmp_path):
    """A run killed mid-write leaves half a JSON line; resuming failed on it with a JSONDecodeError traceback."""
    notes = RunsCommand("notes", caches["notes"])
    runs = tmp_path / "runs"
    assert notes.run(runs, 2) == 0
    log = notes.folder(runs) / "log.jsonl"
    with open(log, "a") as f:
        f.write('{"step": 3, "loss": 0.')
    assert notes.run(runs, 3, "--resume") == 0
    assert logged_steps(log) == [1, 2, 3]
