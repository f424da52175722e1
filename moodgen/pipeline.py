"""Inference: `MoodPipeline.from_checkpoint(...)`, then `generate(valence, arousal, ...)`.

The pipeline holds the engines found in a checkpoints folder (moodgen.engines), the mood judge and the atlas of
real clips. It validates every input against one `Limits`, draws the musical key for the mood, asks the engine for
the clip, judges what is heard, and caches results in an LRU bounded in bytes, so a repeated request answers at once.
The work runs on the pipeline's own few worker threads (`workers`), whichever threads call it; identical requests
made at the same time share one computation.
"""
from __future__ import annotations

import io
import json
import os
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from moodgen import audio
from moodgen.atlas import ATLAS_FILE, Atlas, AtlasMatch
from moodgen.config import Limits, MelParams, shown
from moodgen.engines import Engine, engine_classes
from moodgen.files import write_together
from moodgen.judge import JUDGE_FILE, Judge
from moodgen.keys import key_name, parse_key, sample_keys
from moodgen.mood import validate_mood

NEAREST_BY = ("mood", "sound")


class CheckpointNotFound(FileNotFoundError):
    pass


@dataclass(frozen=True)
class Generation:
    """A generated clip and every input that made it."""

    valence: float
    arousal: float
    seconds: float
    seed: int
    steps: int | None  # sampler steps; None for engines that have none (the note engine samples frame by frame)
    guidance: float
    engine: str
    key: str | None  # the musical key the engine was conditioned on ("A minor"); None for engines without keys
    mel: np.ndarray  # (M, T) normalized log-mel of the clip
    audio: np.ndarray  # (S,) float32 in [-1, 1]
    sample_rate: int
    midi: bytes | None  # standard MIDI file, from engines that play notes
    judged: tuple[float, float] | None
    checkpoint_sha256: str

    def params(self) -> dict[str, Any]:
        """Every input and where it came from, JSON-able."""
        keys = ("valence", "arousal", "seconds", "seed", "steps", "guidance", "engine", "key", "sample_rate",
                "checkpoint_sha256")
        out = {k: getattr(self, k) for k in keys}
        out["judged"] = list(self.judged) if self.judged is not None else None
        return out

    @property
    def nbytes(self) -> int:
        return self.audio.nbytes + self.mel.nbytes + len(self.midi or b"")

    def save(self, path: str | Path, extra: dict[str, Any] | None = None, overwrite: bool = False) -> list[Path]:
        """Write `path` (a .wav: 16-bit PCM), the JSON of `params()` plus `extra` beside it (same stem) and, when
        the clip has notes, the MIDI; all three appear together or not at all. Returns the paths written."""
        path = Path(path)
        if path.suffix.lower() != ".wav":
            raise ValueError(f"out must name a .wav file, got {shown(str(path))}")
        wav = io.BytesIO()
        sf.write(wav, audio.to_pcm16(self.audio), self.sample_rate, subtype="PCM_16", format="WAV")
        contents = {path: wav.getvalue(),
                    path.with_suffix(".json"): json.dumps(self.params() | (extra or {}), indent=1).encode()}
        if self.midi is not None:
            contents[path.with_suffix(".mid")] = self.midi
        return write_together(contents, overwrite=overwrite)


def resolve_checkpoint_dir(path: str | Path | None = None) -> Path:
    """A local checkpoints folder, else a snapshot of the Hugging Face Hub repo named by MOODGEN_HF_REPO."""
    files = [e.weights_file for e in engine_classes()]
    folder = Path(path) if path is not None else Path("checkpoints")
    if folder.is_dir() and any((folder / f).is_file() for f in files):
        return folder
    repo = os.environ.get("MOODGEN_HF_REPO")
    if path is None and repo:
        from huggingface_hub import snapshot_download
        return Path(snapshot_download(repo_id=repo))
    raise CheckpointNotFound(
        f"no moodgen checkpoint in {folder.resolve()} (expected {' or '.join(files)}). "
        "Train one with `python -m train`, or set MOODGEN_HF_REPO=<user>/<repo> to download one.")


class MoodPipeline:
    def __init__(self, engines: dict[str, Engine], device: torch.device | str = "cpu", judge: Judge | None = None,
                 atlas: Atlas | None = None, limits: Limits | None = None, cache_bytes: int = 64 << 20,
                 workers: int = 2):
        if not engines:
            raise ValueError("a pipeline needs at least one engine")
        params = {e.mel_params for e in engines.values()}
        if len(params) > 1:
            raise ValueError("the engines' MelParams differ")
        self.engines_by_name = engines
        self.mel_params: MelParams = params.pop()
        self.device = torch.device(device)
        self.judge = judge
        self.atlas = atlas
        self.limits = limits or Limits()
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[tuple, Generation] = OrderedDict()
        self._in_flight: dict[tuple, Future] = {}
        self._lock = threading.Lock()
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        # All model and signal work runs on these threads, whichever thread asks. A server calls from a pool of many
        # threads, and every thread that runs torch or numpy keeps its own malloc arena and OpenMP team: memory
        # grew with the number of threads that had ever generated, not with the work (benchmarks/soak.py).
        self._workers = ThreadPoolExecutor(workers, thread_name_prefix="moodgen")

    @property
    def engines(self) -> tuple[str, ...]:
        """The loaded engines' names, in menu order."""
        return tuple(c.name for c in engine_classes() if c.name in self.engines_by_name)

    @property
    def default_engine(self) -> str:
        return self.engines[0]

    def engine(self, name: str | None) -> Engine:
        """The loaded engine `name` (None: the default); ValueError naming the choices otherwise."""
        if name is None:
            return self.engines_by_name[self.default_engine]
        if not isinstance(name, str) or name not in self.engines_by_name:
            raise ValueError(f"engine must be one of {', '.join(self.engines)} (in this checkpoint), "
                             f"got {shown(name)}")
        return self.engines_by_name[name]

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, device: str | None = None,
                        cache_bytes: int = 64 << 20, workers: int = 2) -> MoodPipeline:
        folder = resolve_checkpoint_dir(path)
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        engines = {c.name: c.load(folder, dev) for c in engine_classes() if (folder / c.weights_file).is_file()}
        judge = Judge.from_file(folder / JUDGE_FILE, device=dev) if (folder / JUDGE_FILE).is_file() else None
        atlas = Atlas.load(folder / ATLAS_FILE) if (folder / ATLAS_FILE).is_file() else None
        return cls(engines, dev, judge=judge, atlas=atlas, cache_bytes=cache_bytes, workers=workers)

    def generate(self, valence: float, arousal: float, seconds: float = 10.0, seed: int = 0,
                 steps: int | None = None, guidance: float | None = None, engine: str | None = None,
                 key: str | None = None) -> Generation:
        """A clip for the mood (valence, arousal); identical inputs give identical outputs.

        `key` ("A minor") fixes the musical key; by default the engine's prior draws one for the mood (seeded).
        Every bad input raises ValueError naming the field."""
        valence, arousal = validate_mood(valence, arousal)
        eng = self.engine(engine)
        seconds = self.limits.seconds(seconds)
        seed = self.limits.seed(seed)
        steps = None if steps is None else self.limits.steps(steps)  # checked even where the engine ignores it
        steps = (eng.default_steps if steps is None else steps) if eng.uses_steps else None
        guidance = self.limits.guidance(eng.default_guidance if guidance is None else guidance)
        if key is not None:
            if eng.key_prior is None:
                raise ValueError(f"key: engine {eng.name!r} of this checkpoint is not conditioned on a key; "
                                 "leave key unset")
            key = key_name(parse_key(key))
        request = (eng.name, valence, arousal, seconds, seed, steps, guidance, key)
        with self._lock:
            if request in self._cache:
                self._cache.move_to_end(request)
                return self._cache[request]
            future = self._in_flight.get(request)  # an identical request already running: share its result
            if future is not None:
                owner = False
            else:
                owner, future = True, self._workers.submit(self._generate, eng, valence, arousal, seconds, seed,
                                                           steps, guidance, key)
                self._in_flight[request] = future
        if not owner:
            return future.result()
        try:
            result = future.result()
        except BaseException:
            with self._lock:
                self._in_flight.pop(request, None)
            raise
        with self._lock:
            self._in_flight.pop(request, None)
            self._cache[request] = result
            while sum(g.nbytes for g in self._cache.values()) > self.cache_bytes and self._cache:
                self._cache.popitem(last=False)
        return result

    def _generate(self, eng: Engine, valence: float, arousal: float, seconds: float, seed: int, steps: int | None,
                  guidance: float, key: str | None) -> Generation:
        mood = torch.tensor([[valence, arousal]], dtype=torch.float32)
        key_index = None
        if eng.key_prior is not None:
            key_index = torch.tensor([parse_key(key)]) if key is not None else sample_keys(eng.key_prior, mood, seed)
            key = key_name(int(key_index[0]))
        out = eng.generate(mood, seconds, seed, steps, guidance, key_index)
        wav = np.clip(out.audio, -1.0, 1.0).astype(np.float32)
        heard = audio.mel_from_audio(wav, self.mel_params).numpy()
        judged = self.judge.predict(heard) if self.judge is not None else None
        return Generation(valence, arousal, seconds, seed, steps, guidance, eng.name, key,
                          heard if out.mel is None else out.mel, wav, self.mel_params.sample_rate, out.midi, judged,
                          eng.sha256)

    def nearest(self, generation: Generation, by: str = "mood", atlas: Atlas | None = None) -> AtlasMatch | None:
        """The real clip nearest a generation in `atlas` (default: the checkpoint's), by mood (distance on the pad)
        or by sound (the atlas' spectral embedding); None without an atlas."""
        atlas = self.atlas if atlas is None else atlas
        if by not in NEAREST_BY:
            raise ValueError(f"nearest must be one of {', '.join(NEAREST_BY)}, got {shown(by)}")
        if atlas is None:
            return None
        if by == "sound":
            return self._workers.submit(lambda: atlas.nearest_by_sound(atlas.embed(generation.mel))).result()
        return self._workers.submit(atlas.nearest_by_mood, generation.valence, generation.arousal).result()

    def warmup(self) -> None:
        """Run each engine once on a short clip so the first real request is fast."""
        warming = [self._workers.submit(self._generate, eng, 0.0, 0.0, 2.0, 0, 2 if eng.uses_steps else None, 1.0,
                                        None)  # 2 s, 2 flow steps
                   for eng in (self.engines_by_name[name] for name in self.engines)]
        for future in warming:
            future.result()
