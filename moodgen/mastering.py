"""Mastering and loudness: a fixed gain (not per-clip normalisation: arousal is carried by loudness, so the level
differences between moods must survive), a reverb, then a true-peak limiter, built in one place (`chain`) for whole
clips (`master`), loops, continuations and streams; and ITU-R BS.1770 integrated loudness, true peak and EBU Tech
3342 loudness range (`measure_loudness`). Pure functions over (S,) float32 audio.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pedalboard

from moodgen.joins import declick

MASTERING_WARMUP_SECONDS = 5.0  # audio before a join that mastering hears again, so its reverb and limiter carry on


@dataclass(frozen=True)
class Mastering:
    """Room and level for one engine's audio. `gain_db` is fixed per engine, never computed from the clip.

    reverb_wet: the reverb's wet level (0 = no reverb; the dry signal stays at unity); room_size in [0, 1].
    ceiling_dbtp: the limiter's true-peak ceiling, or None for no limiter. `DRY` returns audio unchanged.
    """
    gain_db: float = 0.0
    reverb_wet: float = 0.0
    room_size: float = 0.5
    ceiling_dbtp: float | None = -1.0

    def __post_init__(self):
        if not -40.0 <= self.gain_db <= 60.0:
            raise ValueError(f"gain_db must be in [-40, 60], got {self.gain_db}")
        for name in ("reverb_wet", "room_size"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.ceiling_dbtp is not None and not -20.0 <= self.ceiling_dbtp <= 0.0:
            raise ValueError(f"ceiling_dbtp must be in [-20, 0] or None, got {self.ceiling_dbtp}")

    @property
    def is_dry(self) -> bool:
        return self.gain_db == 0.0 and self.reverb_wet == 0.0 and self.ceiling_dbtp is None


DRY = Mastering(ceiling_dbtp=None)
LIMITER_MARGIN_DB = 0.2  # pedalboard's true-peak sidechain may let small inter-sample overs through
REVERB_DAMPING = 0.5
REVERB_UNITY_DRY = 0.5  # JUCE's reverb scales the dry level by 2


class Chain(NamedTuple):
    """The mastering chain of one `Mastering`: gain factor, reverb (or None) and true-peak limiter (or None)."""

    gain: np.float32
    reverb: pedalboard.Reverb | None
    limiter: pedalboard.BrickwallLimiter | None


def chain(settings: Mastering) -> Chain:
    """The one place the mastering chain is built, for whole clips (`master`) and pieces (`ContinuingMaster`)."""
    reverb = None if settings.reverb_wet <= 0 else pedalboard.Reverb(
        room_size=settings.room_size, damping=REVERB_DAMPING, wet_level=settings.reverb_wet,
        dry_level=REVERB_UNITY_DRY)
    limiter = None if settings.ceiling_dbtp is None else pedalboard.BrickwallLimiter(
        ceiling_db=settings.ceiling_dbtp - LIMITER_MARGIN_DB, true_peak=True)
    return Chain(np.float32(10.0 ** (settings.gain_db / 20.0)), reverb, limiter)


def master(audio: np.ndarray, sample_rate: int, settings: Mastering) -> np.ndarray:
    """(S,) audio -> (S,) float32: gain, reverb, then a limiter holding the true peak at or below the ceiling.

    Deterministic; the same settings give the same gain to every clip, so louder input stays louder unless the
    limiter catches its peaks. Should the limiter let an inter-sample over through (none of the loudness
    benchmark's 156 clips had one), the clip is scaled down by the excess."""
    y = _mono_input(audio, sample_rate)
    if settings.is_dry or y.size == 0:
        return y
    steps = chain(settings)
    y = y * steps.gain
    if steps.reverb is not None:
        y = steps.reverb(y, sample_rate)
    if steps.limiter is not None:
        y = steps.limiter(y, sample_rate)
        over = true_peak_dbtp(y, sample_rate) - settings.ceiling_dbtp
        if over > 0:
            y = y * np.float32(10.0 ** (-over / 20.0))
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def at_corpus_level(mastered: np.ndarray, settings: Mastering) -> np.ndarray:
    """Mastered (S,) audio with the fixed gain taken back, room and limiter kept: the level of the dry renders the
    judge and the mel scale were made on. The judge reads level as arousal: on mastered audio it calls the sad
    preset aroused (+0.45), at corpus level it agrees with the dry verdict (-0.60; benchmarks/RESULTS.md)."""
    return (np.asarray(mastered, dtype=np.float32) * np.float32(10.0 ** (-settings.gain_db / 20.0))).astype(np.float32)


def true_peak_dbtp(audio: np.ndarray, sample_rate: int) -> float:
    """True peak (dBTP) of (S,) audio: the largest |sample| after polyphase oversampling to >= 176.4 kHz
    (x4 at 44.1/48 kHz as in ITU-R BS.1770-4 Annex 2, x8 at 22.05 kHz). Silence gives -inf."""
    y = _mono_input(audio, sample_rate)
    if not y.any():
        return -math.inf
    from scipy.signal import resample_poly  # deferred with pyloudnorm: see SCIPY_DEFERRED
    factor = max(4, math.ceil(176_400 / sample_rate))
    # In blocks with a margin wider than the interpolation filter (10 input samples each side), so each
    # oversampled value is computed from the same neighbours as over the whole clip: the same peak, bit for bit,
    # without holding the whole oversampled float64 clip (85 MB for 30 s at 22.05 kHz).
    peak = 0.0
    for start in range(0, y.size, TRUE_PEAK_BLOCK):
        lo, hi = max(0, start - TRUE_PEAK_MARGIN), min(y.size, start + TRUE_PEAK_BLOCK + TRUE_PEAK_MARGIN)
        up = resample_poly(y[lo:hi].astype(np.float64), factor, 1)
        inner = up[(start - lo) * factor:(min(y.size, start + TRUE_PEAK_BLOCK) - lo) * factor]
        peak = max(peak, float(np.abs(inner).max()))
    return float(20.0 * np.log10(peak))


TRUE_PEAK_BLOCK, TRUE_PEAK_MARGIN = 1 << 16, 64  # input samples


@dataclass(frozen=True)
class Loudness:
    lufs: float  # ITU-R BS.1770-4 integrated loudness (gated), LUFS
    true_peak_dbtp: float
    lra_lu: float  # EBU Tech 3342 loudness range, LU; NaN for clips under 3 s or too quiet to gate


# SCIPY_DEFERRED: pyloudnorm and scipy.signal are imported where loudness is measured, not with this module: they
# import scipy.stats, ~0.7 s CPU of an app's start before it can answer, and nothing before the first clip needs them
SHORT_TERM_S, SHORT_TERM_STEP_S = 3.0, 0.1  # EBU Tech 3342: 3 s short-term loudness, at least 10 per second


def measure_loudness(audio: np.ndarray, sample_rate: int) -> Loudness:
    """Integrated loudness, true peak and loudness range of (S,) audio at least 0.4 s long."""
    y = _mono_input(audio, sample_rate).astype(np.float64)
    if y.size < 0.4 * sample_rate:
        raise ValueError(f"audio must last at least 0.4 s to measure loudness, got {y.size / sample_rate:.3f} s")
    import pyloudnorm  # see SCIPY_DEFERRED
    lufs = float(pyloudnorm.Meter(sample_rate).integrated_loudness(y))
    return Loudness(lufs, true_peak_dbtp(y, sample_rate), _loudness_range(y, sample_rate))


def _loudness_range(y: np.ndarray, sample_rate: int) -> float:
    """EBU Tech 3342 on pyloudnorm's short-term blocks. Not pyloudnorm's own `loudness_range`: it appends 1.5 s
    of silence, which on a 10 s clip widens a steady tone's range from 0 to 2 LU."""
    if y.size < SHORT_TERM_S * sample_rate:
        return math.nan
    import pyloudnorm  # see SCIPY_DEFERRED
    meter = pyloudnorm.Meter(sample_rate, block_size=SHORT_TERM_S, overlap=1 - SHORT_TERM_STEP_S / SHORT_TERM_S)
    meter.integrated_loudness(y)  # fills blockwise_loudness with the short-term loudness
    short = np.asarray(meter.blockwise_loudness)
    short = short[short >= -70.0]  # absolute gate, LUFS
    if short.size == 0:
        return math.nan
    short = short[short >= 10 * np.log10(np.mean(10 ** (short / 10))) - 20.0]  # relative gate, LU
    return float(np.percentile(short, 95) - np.percentile(short, 10))


def _mono_input(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    y = np.asarray(audio, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"audio must be mono (S,), got shape {y.shape}")
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    return y


def master_after(dry_before: np.ndarray, dry: np.ndarray, mastered_before: np.ndarray, sample_rate: int,
                 settings: Mastering) -> np.ndarray:
    """Mastered audio of `dry` (S,) that follows `dry_before`, whose mastered audio `mastered_before` has been
    heard: mastering hears the last MASTERING_WARMUP_SECONDS of it again first, so the room's tail and the
    limiter carry over the join, and the join is de-clicked."""
    if settings.is_dry:
        return np.asarray(dry, np.float32)
    warmup = np.asarray(dry_before[len(dry_before) - int(MASTERING_WARMUP_SECONDS * sample_rate):], np.float32)
    out = master(np.concatenate([warmup, dry]), sample_rate, settings)[len(warmup):]
    return declick(mastered_before, out, sample_rate)


def master_loop(dry: np.ndarray, sample_rate: int, settings: Mastering) -> np.ndarray:
    """A loop (S,) mastered as it repeats: its end is heard before its head, so the room's tail wraps around."""
    if settings.is_dry:
        return np.asarray(dry, np.float32)
    warmup = dry[len(dry) - min(len(dry), int(MASTERING_WARMUP_SECONDS * sample_rate)):]
    return master(np.concatenate([warmup, dry]), sample_rate, settings)[len(warmup):]


class ContinuingMaster:
    """`master` for audio that arrives in pieces (a stream's chunks): the same gain, reverb and true-peak
    limiter, their state kept from piece to piece, so the pieces together are the whole mastered at once, delayed
    by the limiter's lookahead (the first piece gives it up; `flush` returns it at the end). An inter-sample over
    cannot rescale audio already played, so that last step of `master` is left out."""

    def __init__(self, settings: Mastering, sample_rate: int):
        self.settings, self.sample_rate = settings, sample_rate
        self.gain, self.reverb, self.limiter = chain(settings)
        self.held = 0  # samples in, not yet out

    def __call__(self, dry: np.ndarray) -> np.ndarray:
        """(S,) dry audio in -> the mastered audio that comes out now (S minus what the lookahead holds, at first)."""
        y = np.asarray(dry, np.float32)
        if self.settings.is_dry or not y.size:
            return y
        y = y * self.gain
        if self.reverb is not None:
            y = self.reverb.process(y, self.sample_rate, reset=False)
        if self.limiter is not None:
            y = self.limiter.process(y, self.sample_rate, reset=False)
        self.held += len(dry) - len(y)
        return np.clip(y, -1.0, 1.0).astype(np.float32)

    def flush(self) -> np.ndarray:
        """The mastered audio the lookahead still holds (fed silence to push it out)."""
        held, self.held = self.held, 0
        return self(np.zeros(held, np.float32))[:held] if held else np.zeros(0, np.float32)
