"""Parts played as layers: the instrument of each part, the intensity that brings parts in and out, and the stems
(one WAV per part) that add up to the mix (moodgen.parts splits the notes).

Shapes: a part's audio (S,) float32; stems (P, S) in moodgen.parts.PARTS order; a mood curve (T, 2).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from moodgen.engines import Session
from moodgen.joins import close_loop, fit
from moodgen.mastering import MASTERING_WARMUP_SECONDS, Mastering, chain, true_peak_dbtp
from moodgen.parts import INTENSITY_FROM_AROUSAL, PARTS, layer_gains
from moodgen.render import program_for
from moodgen.settings import Settings

LINK_SCALE = 1e-3  # parts ride along the limiter this quietly, so its gain is the mix's alone


def parts_record(s: Settings) -> dict[str, Any]:
    """For the JSON sidecar: each part's MIDI track, instrument and program, the intensity, whether stems were
    asked for."""
    return {"parts": {part: {"track": i, "instrument": inst, "program": program_for(inst)}
                      for i, (part, inst) in enumerate(s.part_instruments)}, "intensity": s.intensity,
            "stems": s.stems}


def layered(session: Session, s: Settings, frames: int, audio_frames: int, moods: np.ndarray,
            key_changes: list[tuple[float, int]], markers: list[tuple[float, str]]) -> tuple[dict, bytes]:
    """Each part's dry audio of the session's first `audio_frames` frames at its intensity gain, and the MIDI of the
    first `frames` with a track per part. `moods` (audio_frames, 2): the mood of each frame."""
    parts, midi = session.parts(frames, audio_frames, dict(s.part_instruments), key_changes, markers)
    if s.intensity is None:
        return parts, midi
    level = (moods[:, 1] + 1) / 2 if s.intensity == INTENSITY_FROM_AROUSAL else np.full(len(moods), s.intensity)
    starts = np.array([session.samples_for(f) for f in range(audio_frames)])  # gains move smoothly between frames
    at = np.arange(len(next(iter(parts.values()))))
    gains = layer_gains(level)
    return {p: (a * np.interp(at, starts, gains[p])).astype(np.float32) for p, a in parts.items()}, midi


def mix_layers(parts: dict[str, np.ndarray], samples: int, crossfade: int | None, sample_rate: int,
               settings: Mastering) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Dry parts -> (mastered mix (S,), dry mix (S,), {part: mastered stem (S,)}), `samples` long: a loop
    (`crossfade` given) is closed and mastered as it repeats, as `joins.close_loop` and `mastering.master_loop` do
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
    steps = chain(settings)  # a pedalboard plugin resets between calls, so one reverb serves every part
    y = y * steps.gain
    if steps.reverb is not None:
        y = np.stack([steps.reverb(part, sample_rate) for part in y])
    mix = y.sum(axis=0)
    if steps.limiter is not None:
        limited = steps.limiter(np.concatenate([mix[None], y * np.float32(LINK_SCALE)]), sample_rate)
        mix, y = limited[0], limited[1:] / np.float32(LINK_SCALE)
        over = true_peak_dbtp(mix, sample_rate) - settings.ceiling_dbtp
        if over > 0:
            mix, y = (x * np.float32(10.0 ** (-over / 20.0)) for x in (mix, y))
    return np.clip(mix, -1.0, 1.0).astype(np.float32), y.astype(np.float32)
