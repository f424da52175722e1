"""Random training crops from the corpus cache, in any engine's representation: `CropSampler` in numpy on the host
(seeded by the caller's numpy Generator), `DeviceCropSampler` in torch on a GPU (seeded by a torch Generator there)."""
from __future__ import annotations

from functools import partial
from typing import Any

import librosa
import numpy as np
import torch

from moodgen import midi
from moodgen.engines import Engine
from moodgen.keys import estimate_key, transpose_key
from train.corpus.arrays import DequantizedRows
from train.corpus.cache import CorpusCache, CorpusError


def clip_key(cache: CorpusCache, item: dict[str, Any]) -> int:
    """The key of an item's untransposed clip, fit to the whole clip: from its piano roll (pitch classes weighted
    by duration x velocity, as in the clip features) or, for audio-only sources, from its mean chroma."""
    if item["roll"] is not None:
        pcs = midi.pitch_class_histogram(cache.roll(item)[0], cache.roll_params)
    else:
        pcs = np.nan_to_num(librosa.feature.chroma_stft(y=cache.audio(item), sr=cache.mel_params.sample_rate)).mean(1)
    return estimate_key(pcs)


class CropSampler:
    """Draws (x, mood, key) batches in an engine's representation: x (B, C, T) float32, mood (B, 2) float32,
    key (B,) int64 (the clip's key, transposed with the crop).

    Engines that transpose on the fly read untransposed clips and shift each crop by up to `max_shift` semitones
    (labels hold under transposition); the others read every rendered transposition of the split's clips.
    Clips are drawn in proportion to their length, so every second of music is equally likely.
    """

    def __init__(self, cache: CorpusCache, engine: type[Engine], split: str, frames: int, max_shift: int = 0):
        self.cache, self.engine, self.frames = cache, engine, frames
        self.max_shift = max_shift if engine.transposes_on_the_fly else 0
        self.array = getattr(cache, engine.cache_field + "s")  # (N, ...) rows in time order
        items = cache.select(split=split, transpose=0) if engine.transposes_on_the_fly else cache.select(split=split)
        items = [it for it in items if it[engine.cache_field] is not None]
        lengths = [it[engine.cache_field][1] for it in items]
        keep = [i for i, n in enumerate(lengths) if n >= frames]
        if not keep:
            raise CorpusError(f"{cache.root}: no {split} clips of at least {frames} frames for engine {engine.name}")
        self.items = [items[i] for i in keep]
        keys: dict[str, int] = {}
        for it in self.items:
            if it["clip_id"] not in keys:
                keys[it["clip_id"]] = clip_key(cache, it)
        self.keys = [transpose_key(keys[it["clip_id"]], it["transpose"]) for it in self.items]
        weights = np.array([lengths[i] for i in keep], dtype=np.float64)
        self.weights = weights / weights.sum()

    def _crop(self, item: dict, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """(C, T) crop and its transposition in semitones (on top of the item's own)."""
        off, n = item[self.engine.cache_field]
        start = off + int(rng.integers(0, n - self.frames + 1))
        shift = int(rng.integers(-self.max_shift, self.max_shift + 1)) if self.max_shift else 0
        return self.engine.encode_crop(self.array[start:start + self.frames], shift), shift

    def batch(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = rng.choice(len(self.items), size=size, p=self.weights)
        crops = [self._crop(self.items[i], rng) for i in idx]
        x = np.stack([c for c, _ in crops])
        mood = np.array([[self.items[i]["valence"], self.items[i]["arousal"]] for i in idx], dtype=np.float32)
        key = np.array([transpose_key(self.keys[i], shift) for i, (_, shift) in zip(idx, crops)], dtype=np.int64)
        return x, mood, key


def stored(array: Any) -> np.ndarray:
    """A cache array as stored on disk: an 8-bit mel array's codes, anything else itself."""
    return array.raw if isinstance(array, DequantizedRows) else array


class DeviceCropSampler:
    """`CropSampler`'s batches drawn on a torch device: the rows of the sampler's clips are copied once into one
    tensor there, as the cache stores them (uint8 mel codes, dequantized per batch; uint8 rolls), and each batch is
    a few indexing ops (clips drawn in proportion to their length, a window gathered per crop, shifted and encoded
    by the engine's `encode_crops`), with no Python loop over crops and no host-to-device copy per step. Seeded by
    `generator`, a torch Generator on the same device; x (B, C, T) float32, mood (B, 2) float32, key (B,) int64.
    """

    def __init__(self, sampler: CropSampler, device: torch.device | str, generator: torch.Generator):
        self.engine, self.frames, self.max_shift = sampler.engine, sampler.frames, sampler.max_shift
        self.device, self.generator = torch.device(device), generator
        self.codes = sampler.array if isinstance(sampler.array, DequantizedRows) else None
        array = stored(sampler.array)
        spans = [it[sampler.engine.cache_field] for it in sampler.items]
        lengths = [n for _, n in spans]
        dtype = torch.from_numpy(np.zeros(0, array.dtype)).dtype
        self.rows = torch.empty((sum(lengths), *array.shape[1:]), dtype=dtype, device=self.device)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        for (off, n), start in zip(spans, offsets):  # one clip at a time: the host never holds the whole copy
            self.rows[start:start + n] = torch.from_numpy(np.array(array[off:off + n]))
        as_tensor = partial(torch.as_tensor, device=self.device)
        self.offsets, self.lengths = as_tensor(offsets), as_tensor(lengths, dtype=torch.int64)
        self.weights = as_tensor(sampler.weights, dtype=torch.float32)
        self.moods = as_tensor([[it["valence"], it["arousal"]] for it in sampler.items], dtype=torch.float32)
        self.keys = as_tensor(sampler.keys, dtype=torch.int64)
        self.window = torch.arange(self.frames, device=self.device)

    @staticmethod
    def nbytes(sampler: CropSampler) -> int:
        """The device memory the copy of `sampler`'s clips takes."""
        rows = sum(it[sampler.engine.cache_field][1] for it in sampler.items)
        array = stored(sampler.array)
        return rows * int(np.prod(array.shape[1:])) * array.dtype.itemsize

    def window_rows(self, start: torch.Tensor) -> torch.Tensor:
        """The rows of windows starting at `start` (B,) -> (B, T, ...), read back as the host sampler reads them."""
        raw = self.rows[start[:, None] + self.window]
        if self.codes is None:
            return raw
        return (raw.float() - self.codes.zero) / self.codes.scale  # DequantizedRows' arithmetic, on the device

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g = self.generator
        idx = torch.multinomial(self.weights, size, replacement=True, generator=g)
        room = self.lengths[idx] - self.frames + 1  # start positions per drawn clip
        start = self.offsets[idx] + torch.randint(0, 2 ** 62, (size,), generator=g, device=self.device) % room
        raw = self.window_rows(start)
        if not self.max_shift:
            return self.engine.encode_crops(raw, None), self.moods[idx], self.keys[idx]
        shift = torch.randint(-self.max_shift, self.max_shift + 1, (size,), generator=g, device=self.device)
        return self.engine.encode_crops(raw, shift), self.moods[idx], transpose_key(self.keys[idx], shift)
