"""The engine interface and its registry.

An engine owns everything that differs between ways of making music from a mood: its model class and default
config, its sampler and defaults, its training loss, the representation it trains on (a piano roll or a mel
spectrogram, read from the corpus cache), its probe correlates, and what it renders (audio, maybe its own mel,
maybe MIDI). Everything else (pipeline, CLI, app, training, evaluation, benchmarks) iterates over the registry.
A new engine is one new file in this package with a class decorated by `@register`.

Music that goes on (journeys, continuations, loops, live streams) runs through a `Session`: a sampler that keeps
its state between calls, advancing frame by frame on the engine's own grid (`frame_rate`) with a mood and a key per
frame, and rendering audio that continues what it rendered before.

Shapes: mood (B, 2) in [-1, 1]; key (B,) int64 or None; a representation batch x (B, C, T) float32 in [-1, 1];
audio (S,) float32 in [-1, 1]; mel (M, T); a session's moods (T, 2) and keys (T,) per frame.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from moodgen.checkpoint import CheckpointError, file_sha256, reason
from moodgen.config import Limits, MelParams, RollParams
from moodgen.mastering import DRY, Mastering
from moodgen.tempo import Tempo

_REGISTRY: dict[str, type[Engine]] = {}


@dataclass(frozen=True)
class EngineOutput:
    """What an engine made for one request."""

    audio: np.ndarray  # (S,) float32 in [-1, 1], exactly the requested length
    mel: np.ndarray | None  # (M, T) the engine's own spectrogram; None when it has none (then: the audio's mel)
    midi: bytes | None  # a standard MIDI file when the engine plays notes
    render: dict[str, Any]  # how the audio was made, JSON-able (instrument, soundfont, ...); {} when nothing to say
    frames: np.ndarray | None = None  # (C, T) the clip in the engine's representation, to continue it


@dataclass(frozen=True)
class Continuation:
    """What a finished clip leaves for the music that continues it."""

    frames: np.ndarray  # (C, T) the clip in the engine's representation, on its frame grid
    moods: np.ndarray  # (T, 2) the mood each frame was sampled for
    keys: np.ndarray | None  # (T,) the key each frame was sampled for; None for engines without keys
    audio: np.ndarray  # (S,) the clip's audio before mastering; the continuation's audio starts where it ends


class Session(ABC):
    """A sampler that keeps going. `advance` samples more frames for a mood and key per frame; `render` returns the
    audio of the frames advanced since the last render, continuing the audio before it without a seam (a journey
    advances and renders once, a stream once per chunk; a session started from a `Continuation` continues a clip).
    The same seed and calls give the same frames and audio."""

    loop_crossfade_seconds: ClassVar[float]  # a loop's overrun is crossfaded into its head over this long
    loop_overrun_frames: ClassVar[int]  # frames a loop samples past its loop point (more than the crossfade)
    # The notes the last render played, (sample from the session's start, 0 off / 1 on, pitch, velocity) in order;
    # None for engines without notes. A stream passes them on, as they are heard, to a MIDI output.
    rendered_notes: list[tuple[int, int, int, int]] | None = None

    @abstractmethod
    def advance(self, moods: np.ndarray, keys: np.ndarray | None, wrap: int = 0) -> np.ndarray:
        """Sample len(moods) more frames for moods (T, 2) and keys (T,) -> the new frames (C, T).

        wrap > 0 closes a loop: the last `wrap` of these frames run past the loop point and lead back into the
        session's first frames (an engine may sample them so, or take the first frames themselves)."""

    @abstractmethod
    def render(self) -> np.ndarray:
        """Audio (S,) of every frame advanced since the last render, continuing the audio rendered before."""

    @property
    @abstractmethod
    def frames(self) -> np.ndarray:
        """(C, T) every frame so far, a continued clip's own frames first."""

    @abstractmethod
    def samples_for(self, frames: int) -> int:
        """The sample at which frame `frames` begins (so the first `frames` frames span that many samples)."""

    def midi(self, start_frame: int, end_frame: int, key_changes: list[tuple[float, int]],
             markers: list[tuple[float, str]]) -> bytes | None:
        """A MIDI file of frames [start_frame, end_frame) with key signatures and text markers (seconds from
        start_frame); None for engines without notes."""
        return None

    def parts(self, end_frame: int, audio_frames: int, instruments: dict[str, str],
              key_changes: list[tuple[float, int]], markers: list[tuple[float, str]]) -> tuple[dict, bytes] | None:
        """The music split into parts (moodgen.parts): ({part: dry audio (S,) of frames [0, audio_frames) on
        `instruments[part]`, as `render` would play them}, a MIDI file of frames [0, end_frame) with one track per
        part); None for engines without notes."""
        return None

    def mel(self, start_frame: int, end_frame: int) -> np.ndarray | None:
        """The engine's own (M, T) spectrogram of frames [start_frame, end_frame); None when it has none."""
        return None

    @property
    def render_record(self) -> dict[str, Any]:
        """How the audio is made, JSON-able (as `EngineOutput.render`)."""
        return {}

    def close(self) -> None:
        """The session is over: let go of what it holds (a synth goes back to its engine). Nothing after this."""
        return None


def provenance_record(metadata: dict[str, Any], name: str, needed: tuple[str, ...]) -> dict[str, Any]:
    """The provenance's record `name` with every field in `needed`; ValueError naming what is missing otherwise
    (Engine.load turns it into a CheckpointError naming the file)."""
    record = metadata["provenance"].get(name)
    if not isinstance(record, dict):
        raise ValueError(f"no {name} record in its provenance")
    missing = [k for k in needed if k not in record]
    if missing:
        raise ValueError(f"its {name} record lacks {', '.join(missing)}")
    return record


class Engine(ABC):
    """A loaded engine: its model in eval mode, the sampler defaults it was exported with, its weights' hash."""

    name: ClassVar[str]  # the registry key, as users type it ("notes")
    label: ClassVar[str]  # one plain line for menus
    rank: ClassVar[int]  # menu order; the lowest-ranked engine in a checkpoint is its default
    weights_file: ClassVar[str]  # in a checkpoints folder
    model_class: ClassVar[type]  # a moodgen.checkpoint.Component
    uses_steps: ClassVar[bool]  # whether `steps` means anything to the sampler
    makes_midi: ClassVar[bool]  # whether its clips come with MIDI
    plays_tempo: ClassVar[bool] = False  # whether its sessions play on a beat grid (`session(..., tempo=)`)
    instruments: ClassVar[tuple[str, ...]] = ()  # what it can play its notes on; the first is the default
    mastering: ClassVar[Mastering] = DRY  # its fixed gain, room and limiter (gains: benchmarks/studies/loudness.py)
    cache_field: ClassVar[str]  # what it trains on: "mel" (cache.mels) or "roll" (cache.rolls)
    transposes_on_the_fly: ClassVar[bool]  # True: trains on untransposed clips, shifted per crop

    def __init__(self, model: torch.nn.Module, metadata: dict[str, Any], sha256: str):
        self.model = model
        self.metadata = metadata
        self.sha256 = sha256
        self.mel_params: MelParams = metadata["mel_params_obj"]
        # the sampler settings it was exported with: a file without them is refused, not given defaults
        sampler = provenance_record(metadata, "sampler", ("guidance", "steps") if self.uses_steps else ("guidance",))
        limits = Limits()
        self.default_steps: int | None = limits.steps(sampler["steps"]) if self.uses_steps else None
        self.default_guidance = limits.guidance(sampler["guidance"])

    @classmethod
    def load(cls, folder: str | Path, device: torch.device | str = "cpu",
             soundfont: str | Path | None = None) -> Engine:
        """The engine saved in a checkpoints folder (its `weights_file`); `soundfont` for engines that play notes
        (default: moodgen.render.default_soundfont()). CheckpointError, one line naming the file, for anything in
        it that cannot be used."""
        path = Path(folder) / cls.weights_file
        model, meta = cls.model_class.from_file(path, device)
        companions = cls.load_companions(Path(folder), device, meta, soundfont)
        try:
            return cls(model, meta, file_sha256(path), **companions)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{path}: invalid {cls.name} engine settings in the metadata ({reason(exc)})") \
                from None

    @staticmethod
    def load_companions(folder: Path, device: torch.device | str, metadata: dict[str, Any],
                        soundfont: str | Path | None) -> dict[str, Any]:
        """What else the engine needs (weights from the same folder, a renderer), as constructor keywords."""
        return {}

    @property
    def soundfonts(self) -> tuple[str, ...]:
        """The soundfonts (file names) it can play its notes with, the default first; () for engines that make
        audio without notes."""
        return ()

    @property
    def soundfont(self) -> str | None:
        """The name of the soundfont that plays its notes by default; None for engines that make audio without
        notes."""
        return self.soundfonts[0] if self.soundfonts else None

    def as_the_corpus_plays(self, midi: bytes | None, n_samples: int, record: dict[str, Any]) -> np.ndarray | None:
        """(S,) dry audio of a clip's notes as the training corpus sounds, for the judge, when the clip was played
        otherwise (`record`: its render record); None to judge the clip as played."""
        return None

    @property
    def key_prior(self) -> torch.Tensor | None:
        """The prior p(key | mood) weights of a key-conditioned model (moodgen.keys layout), else None."""
        return None if self.model.key is None else self.model.key.prior

    @abstractmethod
    def generate(self, mood: torch.Tensor, seconds: float, seed: int, steps: int | None, guidance: float,
                 key: torch.Tensor | None, instrument: str | None = None,
                 soundfont: str | None = None) -> EngineOutput:
        """One clip of `seconds` for mood (1, 2) and key (1,) or None, its notes played on `instrument` (one of
        `instruments`; None: the first) with `soundfont` (one of `soundfonts`; None: the first); identical inputs
        give identical outputs."""

    @property
    def frame_rate(self) -> float:
        """Frames per second of the grid a session advances on."""
        raise ValueError(f"engine {self.name!r} cannot make journeys, continuations, loops or streams")

    def frame_rate_at(self, tempo: Tempo | None) -> float:
        """Frames per second of audio at `tempo` (None: `frame_rate`); ValueError for engines without a beat."""
        if tempo is None:
            return self.frame_rate
        if not self.plays_tempo:
            raise ValueError(f"bpm: engine {self.name!r} plays no notes to put on a beat; leave bpm unset")
        return tempo.frame_rate

    def session_frames(self, seconds: float, tempo: Tempo | None = None, loop: bool = False) -> int:
        """Frames a session samples for `seconds`: a loop's body, whose loop point falls on a frame boundary (its
        audio lasts `seconds` rounded to the frame grid; at a tempo, whole bars are whole frames), else enough to
        cover every sample."""
        return int(round(seconds * self.frame_rate_at(tempo))) if loop or tempo else self.frames_for(seconds)

    def frames_for(self, seconds: float) -> int:
        """Frames a session advances for `seconds` of audio (at least enough to cover every sample)."""
        return int(round(seconds * self.frame_rate))

    @property
    def continues(self) -> bool:
        """Whether it makes journeys, continuations, loops and streams: whether its class has sessions."""
        return type(self).session is not Engine.session

    def session(self, seed: int, steps: int | None, guidance: float, before: Continuation | None = None,
                instrument: str | None = None, soundfont: str | None = None, tempo: Tempo | None = None) -> Session:
        """A new sampler that keeps going (see `Session`), continuing `before` when given, its notes played on
        `instrument` with `soundfont` (engines with `instruments` and `soundfonts`; None: the first); engines that
        `plays_tempo` play on `tempo`'s beat grid (their frames then span its 32nd notes; others never get one)."""
        raise ValueError(f"engine {self.name!r} cannot make journeys, continuations, loops or streams")

    # Training: the training loop, the probes and the crop sampler call these on the class.

    @staticmethod
    @abstractmethod
    def default_model_config() -> Any:
        """The shipped model's config."""

    @staticmethod
    def train_overrides() -> dict[str, Any]:
        """TrainConfig fields of the shipped run that differ from TrainConfig's defaults."""
        return {}

    @staticmethod
    def check_train_config(model_config: Any, crop_frames: int) -> None:
        """Raise ValueError when the model config or crop length cannot train on the corpus representation."""
        return None  # any config trains, unless the engine says otherwise

    @staticmethod
    @abstractmethod
    def loss(model: torch.nn.Module, x: torch.Tensor, mood: torch.Tensor, cond_dropout: float,
             generator: torch.Generator | None, key: torch.Tensor | None) -> torch.Tensor:
        """Scalar training loss of a batch x (B, C, T)."""

    @staticmethod
    def distilled_config(model_config: Any) -> Any:
        """The config of a student distilled from a model of `model_config` (`python -m train --teacher FILE`)."""
        raise ValueError("this engine has no distilled form")

    @staticmethod
    def distillation_loss(student: torch.nn.Module, teacher: torch.nn.Module, x: torch.Tensor, mood: torch.Tensor,
                          generator: torch.Generator | None, key: torch.Tensor | None,
                          teacher_guidance: float) -> torch.Tensor:
        """Scalar loss of a student (of `distilled_config`) against its frozen teacher on a batch x (B, C, T)."""
        raise ValueError("this engine has no distilled form")

    @staticmethod
    @abstractmethod
    def encode_crop(raw: np.ndarray, shift: int) -> np.ndarray:
        """A crop of the cache's array for `cache_field` ((T, M) mels or (T, 2, K) rolls), transposed by `shift`
        semitones -> the representation (C, T) float32."""

    @classmethod
    def encode_crops(cls, raw: torch.Tensor, shift: torch.Tensor | None) -> torch.Tensor:
        """A batch of crops of the cache's array (B, T, ...) transposed by `shift` (B,) semitones (None: not
        transposed) -> (B, C, T) float32, on raw's device: what the crop sampler draws on a GPU. By default
        `encode_crop` per crop on the CPU; engines override it with tensor code that stays on the device."""
        shifts = [0] * len(raw) if shift is None else shift.tolist()
        crops = [cls.encode_crop(r, s) for r, s in zip(raw.cpu().numpy(), shifts)]
        return torch.from_numpy(np.stack(crops)).to(raw.device)

    @staticmethod
    @abstractmethod
    def sample(model: torch.nn.Module, mood: torch.Tensor, frames: int, steps: int | None, guidance: float,
               seed: int, key: torch.Tensor | None) -> np.ndarray:
        """A batch in the training representation, (B, C, frames), for probes and guidance selection."""

    @staticmethod
    @abstractmethod
    def correlates(x: np.ndarray, mel_params: MelParams, roll_params: RollParams) -> dict[str, float]:
        """Simple mood correlates of one representation (C, T) (loudness, note rate, mode, ...)."""


def register(cls: type[Engine]) -> type[Engine]:
    """Class decorator: add an engine to the registry under `cls.name`."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"an engine named {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def engine_classes() -> tuple[type[Engine], ...]:
    """Every registered engine, in menu order."""
    return tuple(sorted(_REGISTRY.values(), key=lambda c: (c.rank, c.name)))


def engine_names() -> tuple[str, ...]:
    return tuple(c.name for c in engine_classes())


def engine_class(name: str) -> type[Engine]:
    """The engine registered as `name`; ValueError naming the choices otherwise."""
    if name not in _REGISTRY:
        raise ValueError(f"engine must be one of {', '.join(engine_names())}, got {name!r}")
    return _REGISTRY[name]
