"""Frozen configuration dataclasses shared by every part of moodgen.

`MelParams` is the single owner of the spectrogram numbers (sample rate, FFT, hop, mel bands, log scaling): the
forward transform and every inverse take the same object, and checkpoints carry it in their metadata.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
MAX_ITEMS = 64  # the longest tuple any config may hold (a model's dilations, channel multipliers, ...)
MAX_JSON_DEPTH = 16  # the deepest nesting of any JSON moodgen reads (metadata, sidecars): ours go 4 deep
JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")


def check_ranges(config: Any, ranges: dict[str, tuple[float, float]]) -> None:
    """ValueError naming the first field of `config` outside its stated range: a number, or each item of a tuple
    (at most MAX_ITEMS of them), in [low, high]; NaN is in no range. Called first in `__post_init__`, so no later
    check loops over a huge tuple and no model is built from a size that would hang or exhaust memory."""
    for name, (low, high) in ranges.items():
        value = getattr(config, name)
        items = value if isinstance(value, tuple) else (value,)
        if len(items) > MAX_ITEMS:
            raise ValueError(f"{type(config).__name__}.{name} may hold at most {MAX_ITEMS} items, got {len(items)}")
        if not all(low <= v <= high for v in items):
            raise ValueError(f"{type(config).__name__}.{name} must be in [{low:g}, {high:g}], got {shown(value)}")


def bounded_json(text: str | bytes, max_bytes: int, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads once the text is known to be at most `max_bytes` long and nested at most `max_depth` deep (the
    parser recurses once per level: deep nesting ends in RecursionError); ValueError, one line, otherwise."""
    if len(text) > max_bytes:
        raise ValueError(f"{len(text)} bytes of JSON, over the {max_bytes}-byte limit")
    if isinstance(text, bytes):
        text = text.decode()  # UnicodeDecodeError is a ValueError
    depth = deepest = 0
    for bracket in NOT_A_BRACKET.sub("", JSON_STRING.sub("", text)):  # brackets inside strings do not nest
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    if deepest > max_depth:
        raise ValueError(f"JSON nested {deepest} deep, over the limit of {max_depth}")
    return json.loads(text)


@dataclass(frozen=True)
class MelParams:
    """Log-mel spectrogram parameters.

    22,050 Hz mono keeps everything a piano produces (top key 4.2 kHz, partials above) at half the cost of 44.1 kHz.
    n_fft 1024 (46 ms) resolves neighbouring bass keys above ~40 Hz; hop 256 (11.6 ms, 75 % overlap) is what
    Griffin-Lim needs for clean phase and still resolves fast onsets. 128 mel bands keep the magnitude loss of the
    mel projection low (the inverter's main source of error). Levels are absolute dB (fixed reference, never
    per-clip max) so loudness, a main arousal cue, survives; [db_min, db_max] maps linearly to [-1, 1].
    """

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 128
    fmin: float = 20.0
    fmax: float = 11025.0
    db_min: float = -90.0
    db_max: float = 10.0
    power: float = 2.0

    def __post_init__(self) -> None:
        check_ranges(self, {"sample_rate": (4000, 192_000), "n_fft": (16, 16_384), "hop_length": (1, 16_384),
                            "n_mels": (1, 1024), "fmin": (0, 96_000), "fmax": (1, 96_000), "db_min": (-300, 300),
                            "db_max": (-300, 300), "power": (0.25, 4)})
        if not 0 < self.hop_length <= self.n_fft:
            raise ValueError(f"hop_length must be in (0, n_fft], got {self.hop_length} with n_fft {self.n_fft}")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ValueError(f"need 0 <= fmin < fmax <= sample_rate/2, got fmin {self.fmin}, fmax {self.fmax}")
        if self.n_mels < 1 or self.n_mels > self.n_fft // 2 + 1:
            raise ValueError(f"n_mels must be in [1, n_fft/2+1], got {self.n_mels}")
        if self.db_min >= self.db_max:
            raise ValueError(f"db_min must be below db_max, got {self.db_min} >= {self.db_max}")

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    def frames_for(self, seconds: float) -> int:
        """Number of mel frames covering `seconds` of audio (centered STFT)."""
        return int(round(seconds * self.sample_rate)) // self.hop_length + 1


@dataclass(frozen=True)
class RollParams:
    """Piano-roll grid shared by the corpus, the note engine and MIDI decoding: 88 keys from A0 (MIDI 21)."""

    fps: int = 16
    lowest_pitch: int = 21
    n_keys: int = 88

    def __post_init__(self) -> None:
        check_ranges(self, {"fps": (1, 100), "lowest_pitch": (0, 127), "n_keys": (1, 128)})
        if self.fps < 1 or self.n_keys < 1 or not 0 <= self.lowest_pitch <= 127 - self.n_keys + 1:
            raise ValueError(f"invalid RollParams: {self}")

    def frames_for(self, seconds: float) -> int:
        return int(round(seconds * self.fps))


def shown(value: Any, limit: int = 40) -> str:
    """repr(value) cut to `limit` characters, so a huge input is never echoed back whole."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True)
class Limits:
    """The ranges that the library, the CLI and the app all accept; each check names the field it refuses."""

    min_seconds: float = 1.0
    max_seconds: float = 30.0
    max_seed: int = 2**31 - 1
    max_steps: int = 100
    max_guidance: float = 10.0
    min_journey_seconds: float = 10.0  # a journey's length (its last waypoint's time)
    max_journey_seconds: float = 600.0
    min_chunk_seconds: float = 0.125  # a stream's chunks: two note frames, for live play that answers quickly
    max_chunk_seconds: float = 10.0
    max_waypoints: int = 1000  # a journey's (the app allows fewer: moodgen_app)
    max_extensions: int = 32  # `extend`s of one clip: a sidecar remakes each of them
    min_bpm: float = 40.0  # a tempo (engines that play notes)
    max_bpm: float = 200.0
    max_bars: int = 64  # a loop's or a journey's waypoint in bars

    def __post_init__(self) -> None:
        if not 0 < self.min_seconds <= self.max_seconds or self.max_seed < 0 or self.max_steps < 1:
            raise ValueError(f"invalid Limits: {self}")
        if not 0 < self.min_journey_seconds <= self.max_journey_seconds or self.max_waypoints < 2:
            raise ValueError(f"invalid Limits: {self}")

    @staticmethod
    def number(field: str, value: Any, low: float, high: float, integer: bool) -> float:
        """`value` as a number for `field` in [low, high] (numeric strings and numpy scalars are fine); ValueError
        naming the field otherwise. A setting with a range of its own checks with this."""
        kind = "an integer" if integer else "a number"
        bounds = f"{int(low)}, {int(high)}" if integer else f"{low:g}, {high:g}"
        what = f"{field} must be {kind} in [{bounds}]"
        if isinstance(value, (bool, np.bool_)):  # True is 1 to Python, never a number of seconds to a user
            raise ValueError(f"{what}, got {value!r}")
        if not isinstance(value, (int, float)):
            try:  # numeric strings and numpy scalars are fine, anything else is refused
                value = float(value) if isinstance(value, str) else float(value.__float__())
            except (AttributeError, TypeError, ValueError):
                raise ValueError(f"{what}, got {shown(value)}") from None
        if math.isnan(value):
            raise ValueError(f"{what}, got NaN")
        if integer and (math.isinf(value) or value != int(value)):
            raise ValueError(f"{what}, got {shown(value)}")
        if not low <= value <= high:
            raise ValueError(f"{field} must be between {bounds.replace(', ', ' and ')}, got {shown(value)}")
        return value

    def seconds(self, value: Any, field: str = "seconds") -> float:
        return float(self.number(field, value, self.min_seconds, self.max_seconds, integer=False))

    def journey_seconds(self, value: Any, field: str = "seconds") -> float:
        return float(self.number(field, value, self.min_journey_seconds, self.max_journey_seconds, integer=False))

    def journey_time(self, value: Any, field: str) -> float:
        """A time inside a journey: from 0 up to the longest journey."""
        return float(self.number(field, value, 0.0, self.max_journey_seconds, integer=False))

    def extension_seconds(self, value: Any, field: str = "seconds") -> float:
        return float(self.number(field, value, self.min_seconds, self.max_journey_seconds, integer=False))

    def extension(self, seconds: Any, done: int) -> float:
        """The seconds of one more extension of a clip extended `done` times already."""
        if done >= self.max_extensions:
            raise ValueError(f"generation: extended {done} times already, the limit")
        return self.extension_seconds(seconds)

    def chunk_seconds(self, value: Any) -> float:
        return float(self.number("chunk_seconds", value, self.min_chunk_seconds, self.max_chunk_seconds, False))

    def bpm(self, value: Any) -> float:
        return float(self.number("bpm", value, self.min_bpm, self.max_bpm, integer=False))

    def bars(self, value: Any, field: str = "loop_bars") -> int:
        return int(self.number(field, value, 1, self.max_bars, integer=True))

    def seed(self, value: Any) -> int:
        return int(self.number("seed", value, 0, self.max_seed, integer=True))

    def steps(self, value: Any) -> int:
        return int(self.number("steps", value, 1, self.max_steps, integer=True))

    def guidance(self, value: Any) -> float:
        return float(self.number("guidance", value, 0.0, self.max_guidance, integer=False))


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def fits(value: Any, hint: Any) -> bool:
    """Whether `value` is of the annotated type: int, float (an int is fine), str, bool, None, unions and tuples of
    those; any other annotation (nested configs, dicts, Any) is left to the class."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint in (bool, int, float, str):
        accepted = (int, float) if hint is float else hint
        return isinstance(value, accepted) and (hint is bool or not isinstance(value, bool))
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(fits(v, args[0]) for v in value)
        return len(args) == len(value) and all(fits(v, a) for v, a in zip(value, args))
    return True


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build `cls` from a dict, refusing unknown keys (so a renamed field is never silently dropped) and values of
    the wrong type (naming the field)."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__} needs a dict of fields, got {shown(data)}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            v = data[f.name]
            v = tuple(v) if isinstance(v, list) else v
            if not fits(v, hints[f.name]):
                hint = hints[f.name]
                raise ValueError(f"{cls.__name__}.{f.name} must be "
                                 f"{hint.__name__ if isinstance(hint, type) else hint}, got {shown(v)}")
            values[f.name] = v
    return cls(**values)


def to_json(config: Any) -> str:
    return json.dumps(to_dict(config), sort_keys=True)


def from_json(cls: type[T], text: str) -> T:
    return from_dict(cls, json.loads(text))
