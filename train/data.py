"""Random training crops from the corpus cache, for both engines. Pure numpy; seeded by the caller's Generator."""
from __future__ import annotations

import numpy as np

from moodgen import notes
from train.corpus.cache import CorpusCache, CorpusError


class CropSampler:
    """Draws (x, mood) batches: x (B, C, T) float32, mood (B, 2) float32.

    engine "mel": C = M normalized log-mel bands, every transposition of the split's clips.
    engine "notes": C = 2K encoded piano-roll channels (moodgen.notes.encode_roll) of untransposed clips,
    transposed on the fly by up to `max_shift` semitones (labels hold under transposition).
    Clips are drawn in proportion to their length, so every second of music is equally likely.
    """

    def __init__(self, cache: CorpusCache, engine: str, split: str, frames: int, max_shift: int = 0):
        self.cache, self.engine, self.frames, self.max_shift = cache, engine, frames, max_shift
        if engine == "mel":
            items = cache.select(split=split)
            lengths = [it["mel"][1] for it in items]
        elif engine == "notes":
            items = [it for it in cache.select(split=split, transpose=0) if it["roll"] is not None]
            lengths = [it["roll"][1] for it in items]
        else:
            raise ValueError(f"unknown engine {engine!r}")
        keep = [i for i, n in enumerate(lengths) if n >= frames]
        if not keep:
            raise CorpusError(f"{cache.root}: no {split} clips of at least {frames} frames for engine {engine}")
        self.items = [items[i] for i in keep]
        weights = np.array([lengths[i] for i in keep], dtype=np.float64)
        self.weights = weights / weights.sum()

    def _crop(self, item: dict, rng: np.random.Generator) -> np.ndarray:
        if self.engine == "mel":
            off, n = item["mel"]
            start = off + int(rng.integers(0, n - self.frames + 1))
            return np.asarray(self.cache.mels[start:start + self.frames], dtype=np.float32).T
        off, n = item["roll"]
        start = off + int(rng.integers(0, n - self.frames + 1))
        roll = np.asarray(self.cache.rolls[start:start + self.frames])  # (T, 2, K)
        shift = int(rng.integers(-self.max_shift, self.max_shift + 1)) if self.max_shift else 0
        roll = np.roll(roll, shift, axis=2)
        if shift > 0:
            roll[:, :, :shift] = 0
        elif shift < 0:
            roll[:, :, shift:] = 0
        return notes.encode_roll(roll[:, 0], roll[:, 1])

    def batch(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        idx = rng.choice(len(self.items), size=size, p=self.weights)
        x = np.stack([self._crop(self.items[i], rng) for i in idx])
        mood = np.array([[self.items[i]["valence"], self.items[i]["arousal"]] for i in idx], dtype=np.float32)
        return x, mood
