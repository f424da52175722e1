"""What every training run shares (the engines' loop in train.train, the cGAN's in train.cgan): seeds, device,
the corpus cache, config overrides, and the run folder: resolved config, resumable state, the log, and stopping
cleanly on Ctrl-C or SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moodgen.checkpoint import reason
from moodgen.config import from_dict, to_dict
from train.corpus.cache import CorpusCache
from train.prepare import main as prepare_main

# A resumed run may change its budget, its hardware and the sampler steps its probes and export use; every other
# field must match the saved state.
RESUMABLE_CHANGES = ("steps", "max_minutes", "threads", "device", "crops", "precision", "compile", "sample_steps")


def git_sha() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(manifest_hash: str, steps: int, wall_s: float, command: str, **extra: Any) -> dict[str, Any]:
    """What every exported weights file records of how it was made: the code (git sha), the data (the corpus
    manifest's hash), the optimizer steps and wall time it took, the command that ran it, and the torch threads;
    `extra` adds what is the trainer's own (its config, device, scores)."""
    return {"git_sha": git_sha(), "data_manifest_hash": manifest_hash, "steps": steps, "wall_time_s": round(wall_s, 1),
            "command": command, "threads": torch.get_num_threads(), **extra}


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def ensure_cache(config: Any) -> CorpusCache:
    """Open the corpus cache at `config.cache`, preparing it from `config.emopia_root` first when it is missing."""
    if not (Path(config.cache) / "manifest.json").is_file():
        if prepare_main(["--source", "emopia", "--root", config.emopia_root, "--out", config.cache]) != 0:
            raise SystemExit(f"could not prepare the corpus cache at {config.cache}")
    return CorpusCache(config.cache)


def apply_overrides(config: Any, pairs: list[tuple[str, str]], model_cls: type) -> Any:
    """A copy of a training config with (field, value) overrides applied; model fields as ("model.channels", "96"),
    tuples as "1,2,4". `model_cls` is the config class of `config.model`."""
    flat = to_dict(config)
    for key, value in pairs:
        target, name = (flat["model"], key[len("model."):]) if key.startswith("model.") else (flat, key)
        if name not in target or (target is flat and name == "model"):
            raise SystemExit(f"unknown option --{key}")
        old = target[name]
        try:
            if isinstance(old, bool):  # bool("False") is True
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                target[name] = value.lower() in ("true", "1")
            else:
                target[name] = [int(v) for v in value.split(",")] if isinstance(old, (list, tuple)) \
                    else type(old)(value)
        except ValueError:
            raise SystemExit(f"--{key}: expected a {type(old).__name__}, got {value!r}") from None
    flat["model"] = from_dict(model_cls, flat["model"])
    try:
        return from_dict(type(config), flat)
    except ValueError as exc:
        raise SystemExit(f"invalid training config: {exc}") from None


def logged_step(line: str) -> int | None:
    """The step of a log.jsonl line; None for a line that is not a record, such as the torn last line of a run
    killed mid-write (resuming drops it with the steps after the saved state)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    step = record.get("step") if isinstance(record, dict) else None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


class Run:
    """A run folder: config.json (the resolved config), state.pt (resumable training state) and log.jsonl.

    A fresh start never destroys saved state: with a state present it needs `resume` (continue) or `fresh`
    (the old state and log are moved aside, named by the time they were moved). With `writes` False (the ranks
    of a multi-process run other than 0) the run only reads the state that rank 0 prepared."""

    def __init__(self, folder: Path, config: Any, resume: bool, fresh: bool, writes: bool = True):
        self.folder, self.config, self.writes = folder, config, writes
        self.state_path, self.log_path = folder / "state.pt", folder / "log.jsonl"
        if not writes:
            return
        folder.mkdir(parents=True, exist_ok=True)
        if resume and fresh:
            raise SystemExit("pass --resume or --fresh, not both")
        if self.state_path.exists() and not resume:
            if not fresh:
                raise SystemExit(f"{self.state_path} holds a saved run: pass --resume to continue it, or --fresh to "
                                 "start over (the old state is kept beside it)")
            stamp = time.strftime("%Y%m%d-%H%M%S")
            for path in (self.state_path, self.log_path):
                if path.exists():
                    path.rename(path.with_name(f"{path.stem}.before-{stamp}{path.suffix}"))
        (folder / "config.json").write_text(json.dumps(to_dict(config), indent=1))

    def load_state(self, device: torch.device) -> dict[str, Any] | None:
        """The saved state (tensors and plain data only: no code runs from the file), checked against the config;
        None when there is none. The log is cut back to the saved step, so no step appears twice after resuming."""
        if not self.state_path.is_file():
            return None
        try:
            state = torch.load(self.state_path, map_location=device, weights_only=True)
        except Exception as exc:  # torch raises several types for foreign or crafted pickles
            raise SystemExit(f"{self.state_path}: not a training state this version can load ({reason(exc)})") from None
        if not isinstance(state, dict) or not isinstance(state.get("config"), dict) or "step" not in state:
            raise SystemExit(f"{self.state_path}: not a training state (it holds a {type(state).__name__}, not the "
                             "dict with config and step that training saves)")
        saved = {k: v for k, v in state["config"].items() if k not in RESUMABLE_CHANGES}
        if saved != {k: v for k, v in to_dict(self.config).items() if k not in RESUMABLE_CHANGES}:
            raise SystemExit(f"{self.state_path}: saved with a different config; only "
                             f"{', '.join(RESUMABLE_CHANGES)} may change on --resume")
        if self.writes and self.log_path.is_file():
            kept = [line for line in self.log_path.read_text(errors="replace").splitlines()
                    if (step := logged_step(line)) is not None and step <= state["step"]]
            self.log_path.write_text("".join(line + "\n" for line in kept))
        return state

    def save_state(self, state: dict[str, Any]) -> None:
        """Write the state atomically (a crash mid-write keeps the previous one)."""
        tmp = self.state_path.with_suffix(".tmp")
        torch.save({"config": to_dict(self.config)} | state, tmp)
        os.replace(tmp, self.state_path)

    def log(self, record: dict[str, Any]) -> None:
        with open(self.log_path, "a") as f:
            f.write(json.dumps(record) + "\n")


class StopRequests:
    """While active, SIGINT and SIGTERM set `requested` instead of killing the process, so the loop can finish
    its step and save its state; a second signal stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopRequests:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
