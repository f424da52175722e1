"""The engine interface and its registry.

An engine owns everything that differs between ways of making music from a mood: its model class and default
config, its sampler and defaults, its training loss, the representation it trains on (a piano roll or a mel
spectrogram, read from the corpus cache), its probe correlates, and what it renders (audio, maybe its own mel,
maybe MIDI). Everything else (pipeline, CLI, app, training, evaluation, benchmarks) iterates over the registry.
A new engine is one new file in this package with a class decorated by `@register`.

Shapes: mood (B, 2) in [-1, 1]; key (B,) int64 or None; a representation batch x (B, C, T) float32 in [-1, 1];
audio (S,) float32 in [-1, 1]; mel (M, T).
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

_REGISTRY: dict[str, type[Engine]] = {}


@dataclass(frozen=True)
class EngineOutput:
    """What an engine made for one request."""

    audio: np.ndarray  # (S,) float32 in [-1, 1], exactly the requested length
    mel: np.ndarray | None  # (M, T) the engine's own spectrogram; None when it has none (then: the audio's mel)
    midi: bytes | None  # a standard MIDI file when the engine plays notes


class Engine(ABC):
    """A loaded engine: its model in eval mode, the sampler defaults it was exported with, its weights' hash."""

    name: ClassVar[str]  # the registry key, as users type it ("notes")
    label: ClassVar[str]  # one plain line for menus
    rank: ClassVar[int]  # menu order; the lowest-ranked engine in a checkpoint is its default
    weights_file: ClassVar[str]  # in a checkpoints folder
    model_class: ClassVar[type]  # a moodgen.checkpoint.Component
    uses_steps: ClassVar[bool]  # whether `steps` means anything to the sampler
    makes_midi: ClassVar[bool]  # whether its clips come with MIDI
    cache_field: ClassVar[str]  # what it trains on: "mel" (cache.mels) or "roll" (cache.rolls)
    transposes_on_the_fly: ClassVar[bool]  # True: trains on untransposed clips, shifted per crop

    def __init__(self, model: torch.nn.Module, metadata: dict[str, Any], sha256: str):
        self.model = model
        self.metadata = metadata
        self.sha256 = sha256
        self.mel_params: MelParams = metadata["mel_params_obj"]
        sampler = metadata["provenance"].get("sampler", {})
        limits = Limits()
        self.default_steps: int | None = limits.steps(sampler.get("steps", 16)) if self.uses_steps else None
        self.default_guidance = limits.guidance(sampler.get("guidance", 2.0))

    @classmethod
    def load(cls, folder: str | Path, device: torch.device | str = "cpu") -> Engine:
        """The engine saved in a checkpoints folder (its `weights_file`); CheckpointError, one line naming the
        file, for anything in it that cannot be used."""
        path = Path(folder) / cls.weights_file
        model, meta = cls.model_class.from_file(path, device)
        companions = cls.load_companions(folder, device)
        try:
            return cls(model, meta, file_sha256(path), **companions)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{path}: invalid {cls.name} engine settings in the metadata ({reason(exc)})") \
                from None

    @staticmethod
    def load_companions(folder: Path, device: torch.device | str) -> dict[str, Any]:
        """Other weights the engine needs from the same folder, as keyword arguments of the constructor."""
        return {}

    @property
    def key_prior(self) -> torch.Tensor | None:
        """The prior p(key | mood) weights of a key-conditioned model (moodgen.keys layout), else None."""
        return None if self.model.key is None else self.model.key.prior

    @abstractmethod
    def generate(self, mood: torch.Tensor, seconds: float, seed: int, steps: int | None, guidance: float,
                 key: torch.Tensor | None) -> EngineOutput:
        """One clip of `seconds` for mood (1, 2) and key (1,) or None; identical inputs give identical outputs."""

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
    @abstractmethod
    def encode_crop(raw: np.ndarray, shift: int) -> np.ndarray:
        """A crop of the cache's array for `cache_field` ((T, M) mels or (T, 2, K) rolls), transposed by `shift`
        semitones -> the representation (C, T) float32."""

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
