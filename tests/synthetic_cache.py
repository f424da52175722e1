"""A tiny prepared corpus cache of synthetic clips, for judge and evaluation tests (no real data needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from moodgen import audio
from moodgen.config import MelParams, to_dict
from moodgen.mood import quadrant_by_number
from train.corpus.cache import Shard, SourceClip, consolidate, save_shard, shard_path

SMALL_MEL = MelParams(sample_rate=8000, n_fft=256, hop_length=128, n_mels=16, fmax=4000.0)


def tone_clip(quadrant: int, seconds: float, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Loud fast clicks for high arousal, soft sparse ones for low; a major or minor triad for the valence sign."""
    q = quadrant_by_number(quadrant)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    third = 4 if q.valence_sign > 0 else 3
    freqs = 220.0 * 2 ** (np.array([0, third, 7]) / 12)
    rate = 6.0 if q.arousal_sign > 0 else 1.5
    envelope = np.exp(-((t * rate) % 1.0) * 6.0) * (0.5 if q.arousal_sign > 0 else 0.1)
    y = envelope * np.sin(2 * np.pi * freqs[:, None] * t).sum(0) / 3 + 0.002 * rng.standard_normal(len(t))
    return y.astype(np.float32)


def make_cache(root: Path, mel_params: MelParams = SMALL_MEL, per_split: dict[str, int] | None = None,
               seconds: float = 6.0, seed: int = 0) -> Path:
    """Write a cache with `per_split[split]` clips of each quadrant; train clips get transpositions (-2, 0, 2)."""
    per_split = per_split or {"train": 3, "val": 2, "test": 2}
    rng = np.random.default_rng(seed)
    clips, labels = [], {}
    for split, n in per_split.items():
        for quadrant in (1, 2, 3, 4):
            q = quadrant_by_number(quadrant)
            for i in range(n):
                clip_id = f"Q{quadrant}_{split}{i}_0"
                clip = SourceClip(clip_id, root / f"{clip_id}.mid", "emopia", f"{split}{quadrant}{i}", split, quadrant,
                                  "synthetic")
                y = tone_clip(quadrant, seconds, rng, mel_params.sample_rate)
                mel = audio.mel_from_audio(y, mel_params).numpy().T.astype(np.float16)
                transpositions = (-2, 0, 2) if split == "train" else (0,)
                shard = Shard("k", {t: mel for t in transpositions}, audio.to_pcm16(y), None)
                shard_path(root, clip_id).parent.mkdir(parents=True, exist_ok=True)
                save_shard(shard_path(root, clip_id), shard)
                clips.append(clip)
                mag = rng.uniform(0.2, 0.9, 2)
                labels[clip_id] = (q.valence_sign * mag[0], q.arousal_sign * mag[1])
    consolidate(root, clips, labels, {"settings": {"mel": to_dict(mel_params)}})
    return root
