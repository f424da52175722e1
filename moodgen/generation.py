"""What a request made: `Generation`, the audio and everything that made it, and its files (WAV + JSON + MIDI)."""
from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from moodgen import audio
from moodgen.config import shown
from moodgen.engines import Continuation
from moodgen.files import write_together
from moodgen.journey import Waypoint, curve_json
from moodgen.mastering import Mastering, at_corpus_level
from moodgen.settings import Settings


@dataclass(frozen=True, kw_only=True)
class Generation:
    """A generated clip and every input that made it."""

    valence: float
    arousal: float
    seconds: float
    settings: Settings  # as checked: defaults filled in; its key is the one asked for (None: drawn)
    key: str | None  # the musical key the engine was conditioned on ("A minor"); None for engines without keys
    mel: np.ndarray  # (M, T) normalized log-mel of the clip
    audio: np.ndarray  # (S,) float32 in [-1, 1]
    sample_rate: int
    midi: bytes | None  # standard MIDI file, from engines that play notes
    judged: tuple[float, float] | None
    checkpoint_sha256: str
    render: dict[str, Any]  # how the engine made the audio (instrument, soundfont, ...)
    mastering: Mastering  # the fixed gain, room and limiter applied (DRY: none)
    # music whose mood moves (journeys, loops, continuations, streams); valence/arousal above are where it ends
    waypoints: tuple[Waypoint, ...] | None = None  # a journey's (seconds, valence, arousal)
    curve: np.ndarray | None = None  # (T, 2) the mood each engine frame was sampled for
    frame_rate: float | None = None  # of the curve
    key_changes: tuple[tuple[float, str], ...] = ()  # (seconds, key) where the key starts and changes
    loop: bool = False  # the end flows into the start (an extended loop no longer does)
    extensions: tuple[dict[str, Any], ...] = ()  # each `extend` that made it: seconds, valence, arousal
    stream: dict[str, Any] | None = None  # a stream's chunk_seconds and the mood of each chunk
    continuation: Continuation | None = None  # what `extend` continues from
    bpm: float | None = None  # the tempo its notes play on (4/4); None: the engine's own time
    stems: dict[str, np.ndarray] | None = None  # {part: (S,) mastered}, adding up to `audio` (moodgen.layers)

    @property
    def engine(self) -> str:
        return self.settings.engine

    @property
    def seed(self) -> int:
        return self.settings.seed

    @property
    def steps(self) -> int | None:
        """Sampler steps; None for engines that have none (the note engine samples frame by frame)."""
        return self.settings.steps

    @property
    def guidance(self) -> float:
        return self.settings.guidance

    def params(self) -> dict[str, Any]:
        """Every input and where it came from, JSON-able."""
        keys = ("valence", "arousal", "seconds", "seed", "steps", "guidance", "engine", "key", "sample_rate",
                "checkpoint_sha256")
        out = {k: getattr(self, k) for k in keys}
        out["judged"] = list(self.judged) if self.judged is not None else None
        out["settings"] = self.settings.record()
        out["render"] = self.render | {"mastering": "dry" if self.mastering.is_dry else
                                       dataclasses.asdict(self.mastering)}
        if self.curve is not None:
            out |= {"loop": self.loop, "waypoints": [list(w) for w in self.waypoints] if self.waypoints else None,
                    "extensions": list(self.extensions), "stream": self.stream,
                    "key_changes": [list(k) for k in self.key_changes],
                    "mood_curve": curve_json(self.curve, self.frame_rate)}
        if self.bpm is not None:
            out |= {"bpm": self.bpm, "time_signature": "4/4"}
        return out

    def at_corpus_level(self) -> np.ndarray:
        """(S,) the audio with the mastering gain taken back: the level the corpus, the judge and the atlas share."""
        return at_corpus_level(self.audio, self.mastering)

    @property
    def nbytes(self) -> int:
        parts = (self.audio, self.mel, self.curve, *(vars(self.continuation).values() if self.continuation else ()),
                 *(self.stems or {}).values())
        arrays = {id(p): p for p in parts if isinstance(p, np.ndarray)}  # a dry continuation may share the audio
        return sum(p.nbytes for p in arrays.values()) + len(self.midi or b"")

    def save(self, path: str | Path, extra: dict[str, Any] | None = None, overwrite: bool = False) -> list[Path]:
        """Write `path` (a .wav: 16-bit PCM), the JSON of `params()` plus `extra` beside it (same stem), when
        the clip has notes the MIDI and with stems one WAV per part (`stem_paths`); all appear together or not at
        all. Returns the paths written."""
        path = Path(path)
        if path.suffix.lower() != ".wav":
            raise ValueError(f"out must name a .wav file, got {shown(str(path))}")
        contents = {path: wav_bytes(self.audio, self.sample_rate),
                    **{p: wav_bytes(self.stems[part], self.sample_rate)
                       for part, p in stem_paths(path, self.stems or {}).items()}}
        if self.midi is not None:
            contents[path.with_suffix(".mid")] = self.midi
        sidecar = path.with_suffix(".json")  # the set's record, renamed into place last (moodgen.files)
        contents[sidecar] = json.dumps(self.params() | (extra or {}), indent=1).encode()
        written = write_together(contents, overwrite=overwrite)
        return [path, sidecar, *written[1:-1]]


def stem_paths(path: Path, parts) -> dict[str, Path]:
    """Where the stems of a clip saved at `path` go: clip.wav -> clip.melody.wav, ..."""
    return {part: path.with_name(f"{path.stem}.{part}.wav") for part in parts}


def wav_bytes(y: np.ndarray, sample_rate: int) -> bytes:
    """(S,) audio as a 16-bit PCM WAV file."""
    buf = io.BytesIO()
    sf.write(buf, audio.to_pcm16(y), sample_rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()
