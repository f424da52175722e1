"""Audio joins: where one piece of audio meets another (a continuation, a loop's end and head, a clip cut to length).
Pure functions over (S,) float32 audio.
"""
from __future__ import annotations

import numpy as np

DECLICK_SECONDS = 0.005  # an offset at a join fades out over this long


def declick(head: np.ndarray, tail: np.ndarray, sample_rate: int) -> np.ndarray:
    """`tail` (S,) made to start where `head` (S,) ends: the step between head's last sample and the value tail
    would have had one sample earlier (extrapolated) is added to tail and faded out over DECLICK_SECONDS, so the
    join has no jump larger than the music's own."""
    if not len(head) or len(tail) < 2:
        return tail
    step = head[-1] - (2 * tail[0] - tail[1])
    n = min(len(tail), max(1, int(DECLICK_SECONDS * sample_rate)))
    fade = np.zeros(len(tail), dtype=np.float32)
    fade[:n] = 0.5 * (1 + np.cos(np.pi * np.arange(1, n + 1) / (n + 1)))
    return (tail + step * fade).astype(np.float32)


def close_loop(audio: np.ndarray, body: int, crossfade: int) -> np.ndarray:
    """A loop of `body` samples from audio (S,) that runs `crossfade` samples past the loop point: the overrun,
    which continues the end, is crossfaded (equal power) into the head, so the last sample flows into the first."""
    if len(audio) < body + crossfade:
        raise ValueError(f"a loop needs {body + crossfade} samples, got {len(audio)}")
    out = audio[:body].astype(np.float32).copy()
    angle = (np.arange(crossfade) + 0.5) / crossfade * (np.pi / 2)
    out[:crossfade] = audio[:crossfade] * np.sin(angle) + audio[body:body + crossfade] * np.cos(angle)
    return out


def fit(wav: np.ndarray, samples: int) -> np.ndarray:
    """(S,) cut or padded with silence to `samples`."""
    return np.pad(wav, (0, max(0, samples - len(wav))))[:samples]
