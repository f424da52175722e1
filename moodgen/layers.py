"""Parts played as layers: the instrument of each part, the intensity that brings parts in and out, and the stems
(one WAV per part) that add up to the mix (moodgen.parts splits the notes).

Shapes: a part's audio (S,) float32; stems (P, S) in moodgen.parts.PARTS order; a mood curve (T, 2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pedalboard

from moodgen.config import shown
from moodgen.engines import Engine, Session
from moodgen.journey import MASTERING_WARMUP_SECONDS, close_loop, fit
from moodgen.parts import PARTS, layer_gains
from moodgen.render import LIMITER_MARGIN_DB, REVERB_DAMPING, REVERB_UNITY_DRY, Mastering, program_for, true_peak_dbtp

INTENSITY_FROM_AROUSAL = "arousal"  # intensity="arousal": (arousal + 1) / 2 along the mood curve
LINK_SCALE = 1e-3  # parts ride along the limiter this quietly, so its gain is the mix's alone


@dataclass(frozen=True)
class Layering:
    """How a request plays its parts: stems wanted, each part's instrument, the intensity (None: every part)."""

    stems: bool
    instruments: tuple[tuple[str, str], ...]  # (part, instrument) in PARTS order
    intensity: float | str | None

    def record(self) -> dict[str, Any]:
        """For the JSON sidecar: each part's MIDI track, instrument and program, and the intensity."""
        return {"parts": {part: {"track": i, "instrument": inst, "program": program_for(inst)}
                          for i, (part, inst) in enumerate(self.instruments)}, "intensity": self.intensity,
                "stems": self.stems}


def check_layering(eng: Engine, stems: bool, intensity: Any, part_instruments: dict[str, str] | None,
                   instrument: str | None) -> Layering | None:
    """The layering asked for, checked (None when none is); ValueError naming the field."""
    if not stems and intensity is None and not part_instruments:
        return None
    if not eng.makes_midi:
        raise ValueError(f"stems: engine {eng.name!r} plays no notes to split into parts; leave stems, intensity "
                         "and part_instruments unset")
    chosen = dict(part_instruments or {})
    for part, inst in chosen.items():
        if part not in PARTS or inst not in eng.instruments:
            raise ValueError(f"part_instruments must map parts ({', '.join(PARTS)}) to instruments "
                             f"({', '.join(eng.instruments)}), got {shown(part)}: {shown(inst)}")
    if intensity is not None and intensity != INTENSITY_FROM_AROUSAL:
        try:
            intensity = float(intensity)
        except (TypeError, ValueError):
            intensity = float("nan")
        if not 0.0 <= intensity <= 1.0:
            raise ValueError(f"intensity must be a number in [0, 1] or {INTENSITY_FROM_AROUSAL!r}")
    base = instrument or eng.instruments[0]
    return Layering(bool(stems), tuple((p, chosen.get(p, base)) for p in PARTS), intensity)


def layered(session: Session, layering: Layering, frames: int, audio_frames: int, moods: np.ndarray,
            key_changes: list[tuple[float, int]], markers: list[tuple[float, str]]) -> tuple[dict, bytes]:
    """Each part's dry audio of the session's first `audio_frames` frames at its intensity gain, and the MIDI of the
    first `frames` with a track per part. `moods` (audio_frames, 2): the mood of each frame."""
    parts, midi = session.parts(frames, audio_frames, dict(layering.instruments), key_changes, markers)
    if layering.intensity is None:
        return parts, midi
    level = (moods[:, 1] + 1) / 2 if layering.intensity == INTENSITY_FROM_AROUSAL else \
        np.full(len(moods), layering.intensity)
    starts = np.array([session.samples_for(f) for f in range(audio_frames)])  # gains move smoothly between frames
    at = np.arange(len(next(iter(parts.values()))))
    gains = layer_gains(level)
    return {p: (a * np.interp(at, starts, gains[p])).astype(np.float32) for p, a in parts.items()}, midi


def mix_layers(parts: dict[str, np.ndarray], samples: int, crossfade: int | None, sample_rate: int,
               settings: Mastering) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Dry parts -> (mastered mix (S,), dry mix (S,), {part: mastered stem (S,)}), `samples` long: a loop
    (`crossfade` given) is closed and mastered as it repeats, as `journey.close_loop` and `journey.master_loop` do
    the mix; the mastered stems add up to the mastered mix."""
    dry = np.stack([close_loop(parts[p], samples, crossfade) if crossfade is not None else fit(parts[p], samples)
                    for p in PARTS]).astype(np.float32)
    warm = 0 if crossfade is None or settings.is_dry else min(samples, int(MASTERING_WARMUP_SECONDS * sample_rate))
    mix, stems = master_stems(np.concatenate([dry[:, samples - warm:], dry], axis=1), sample_rate, settings)
    return mix[warm:], dry.sum(axis=0), {p: stems[i, warm:] for i, p in enumerate(PARTS)}


def master_stems(stems: np.ndarray, sample_rate: int, settings: Mastering) -> tuple[np.ndarray, np.ndarray]:
    """(P, S) dry parts -> (mix (S,), stems (P, S)) mastered as `master` masters their sum: the gain and the
    reverb are linear, so each part gets its own; the limiter is one linked limiter whose gain follows the mix
    (the parts ride along on its other channels, too quiet to move it) and is applied to every part alike. The
    mastered stems add up to the mastered mix."""
    y = np.asarray(stems, np.float32)
    if settings.is_dry or y.size == 0:
        return y.sum(axis=0), y
    y = y * np.float32(10.0 ** (settings.gain_db / 20.0))
    if settings.reverb_wet > 0:
        y = np.stack([pedalboard.Reverb(room_size=settings.room_size, damping=REVERB_DAMPING,
                                        wet_level=settings.reverb_wet, dry_level=REVERB_UNITY_DRY)(part, sample_rate)
                      for part in y])
    mix = y.sum(axis=0)
    if settings.ceiling_dbtp is not None:
        limited = pedalboard.BrickwallLimiter(ceiling_db=settings.ceiling_dbtp - LIMITER_MARGIN_DB, true_peak=True)(
            np.concatenate([mix[None], y * np.float32(LINK_SCALE)]), sample_rate)
        mix, y = limited[0], limited[1:] / np.float32(LINK_SCALE)
        over = true_peak_dbtp(mix, sample_rate) - settings.ceiling_dbtp
        if over > 0:
            mix, y = (x * np.float32(10.0 ** (-over / 20.0)) for x in (mix, y))
    return np.clip(mix, -1.0, 1.0).astype(np.float32), y.astype(np.float32)
