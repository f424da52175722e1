"""The training cache: per-clip shards written atomically, consolidated into memory-mappable arrays + an index.

Layout of a cache folder:
    shards/<clip_id>.npz   one per source clip; holds its key (source hash + settings), so reruns skip it
    mels.npy               (N_frames, M) float16 normalized log-mels of every item, concatenated in time
    audio.npy              (N_samples,) int16 untransposed audio of every clip
    rolls.npy              (N_roll, 2, K) uint8 (active, onset) velocity rolls of every MIDI clip, untransposed
    index.json             one row per item (clip x transposition): labels, split, offsets into the arrays
    manifest.json          sources and their hashes, settings, MelParams, licence, skipped clips; written last

An item's mel is `mels[off:off+len].T`, (M, T). Every file is written to a temporary name and renamed into place, so
an interrupted prepare leaves either the old or the new version, and the next run redoes only what is missing.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moodgen.config import MelParams, RollParams, from_dict

FORMAT_VERSION = 1


class CorpusError(ValueError):
    """A problem with the user's data or cache, stated in one line naming the path."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class SourceClip:
    """One labelled source file. `valence`/`arousal` are None when they are derived later (EMOPIA)."""

    clip_id: str
    path: Path
    source: str
    song_id: str
    split: str
    quadrant: int
    licence: str
    valence: float | None = None
    arousal: float | None = None
    features: tuple[tuple[str, float], ...] = ()  # from the annotations (DEAM's rater spread), joined to the shard's


@dataclass
class Shard:
    """What processing one clip produces. mels: transposition -> (T, M) float16."""

    key: str
    mels: dict[int, np.ndarray]
    audio: np.ndarray  # (S,) int16, untransposed
    rolls: np.ndarray | None  # (T_r, 2, K) uint8 for MIDI sources
    features: dict[str, float] = field(default_factory=dict)


def atomic_save(path: Path, write) -> None:
    """Call `write(tmp_path)` then rename onto `path`, so readers never see a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_save(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1, sort_keys=True)))


def shard_path(cache_dir: Path, clip_id: str) -> Path:
    return cache_dir / "shards" / f"{clip_id}.npz"


def save_shard(path: Path, shard: Shard) -> None:
    arrays = {f"mel_{t:+d}": m for t, m in shard.mels.items()}
    arrays["audio"] = shard.audio
    if shard.rolls is not None:
        arrays["rolls"] = shard.rolls
    meta = json.dumps({"key": shard.key, "features": shard.features})

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(meta), **arrays)

    atomic_save(path, write)


def shard_meta(path: Path) -> dict[str, Any] | None:
    """A shard's {"key", "features"} without reading its arrays, or None if it is absent or unreadable."""
    try:
        with np.load(path) as z:
            return json.loads(str(z["meta"]))
    except Exception:
        return None


def shard_key_on_disk(path: Path) -> str | None:
    """The key a shard was made with, or None if it is absent or unreadable."""
    meta = shard_meta(path)
    return meta["key"] if meta else None


def load_shard(path: Path) -> Shard:
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        mels = {int(k[4:]): z[k] for k in z.files if k.startswith("mel_")}
        return Shard(meta["key"], mels, z["audio"], z["rolls"] if "rolls" in z.files else None, meta["features"])


def _concat_to_npy(path: Path, parts: list[np.ndarray], dtype: np.dtype) -> list[tuple[int, int]]:
    """Write parts, concatenated on axis 0, as one .npy; return each part's (offset, length)."""
    total = sum(len(p) for p in parts)
    shape = (total, *parts[0].shape[1:]) if parts else (0,)
    spans = []

    def write(tmp: Path) -> None:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        off = 0
        for p in parts:
            out[off:off + len(p)] = p
            spans.append((off, len(p)))
            off += len(p)
        out.flush()
        del out

    atomic_save(path, write)
    return spans


def consolidate(cache_dir: Path, clips: list[SourceClip], labels: dict[str, tuple[float, float]],
                manifest: dict[str, Any]) -> None:
    """Join the shards of `clips` into the arrays, index and manifest. `labels`: clip_id -> (valence, arousal)."""
    shards = {c.clip_id: load_shard(shard_path(cache_dir, c.clip_id)) for c in clips}
    rows, mel_parts, audio_parts, roll_parts = [], [], [], []
    for c in clips:
        s = shards[c.clip_id]
        v, a = labels[c.clip_id]
        for t in sorted(s.mels):
            rows.append({"clip_id": c.clip_id, "song_id": c.song_id, "source": c.source, "split": c.split,
                         "quadrant": c.quadrant, "valence": float(v), "arousal": float(a), "transpose": t,
                         "licence": c.licence, "features": {**dict(c.features), **s.features},
                         "clip_index": len(audio_parts)})
            mel_parts.append(s.mels[t])
        audio_parts.append(s.audio)
        roll_parts.append(s.rolls)
    mel_spans = _concat_to_npy(cache_dir / "mels.npy", mel_parts, np.float16)
    audio_spans = _concat_to_npy(cache_dir / "audio.npy", audio_parts, np.int16)
    has_rolls = all(r is not None for r in roll_parts) and roll_parts
    roll_spans = _concat_to_npy(cache_dir / "rolls.npy", roll_parts, np.uint8) if has_rolls else None
    for row, span in zip(rows, mel_spans):
        i = row.pop("clip_index")
        row["mel"] = list(span)
        row["audio"] = list(audio_spans[i])
        row["roll"] = list(roll_spans[i]) if roll_spans else None
    atomic_write_json(cache_dir / "index.json", rows)
    manifest = dict(manifest, format_version=FORMAT_VERSION, n_items=len(rows), n_clips=len(clips),
                    index_sha256=sha256_file(cache_dir / "index.json"))
    manifest["manifest_hash"] = sha256_text(json.dumps(manifest, sort_keys=True))
    atomic_write_json(cache_dir / "manifest.json", manifest)


class CorpusCache:
    """Read-only view of a prepared cache; arrays are memory-mapped."""

    def __init__(self, cache_dir: str | Path):
        self.root = Path(cache_dir)
        manifest_path = self.root / "manifest.json"
        if not manifest_path.is_file():
            raise CorpusError(f"{self.root}: no prepared cache here (missing manifest.json); "
                              "run python -m train.prepare")
        self.manifest = json.loads(manifest_path.read_text())
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise CorpusError(f"{manifest_path}: cache format {self.manifest.get('format_version')}, "
                              f"expected {FORMAT_VERSION}; rerun python -m train.prepare")
        self.items: list[dict[str, Any]] = json.loads((self.root / "index.json").read_text())
        self.mels = np.load(self.root / "mels.npy", mmap_mode="r")
        self.audio_samples = np.load(self.root / "audio.npy", mmap_mode="r")
        rolls = self.root / "rolls.npy"
        self.rolls = np.load(rolls, mmap_mode="r") if rolls.exists() else None

    @property
    def manifest_hash(self) -> str:
        return self.manifest["manifest_hash"]

    @property
    def mel_params(self) -> MelParams:
        """The MelParams the cache's mels were computed with."""
        return from_dict(MelParams, self.manifest["settings"]["mel"])

    @property
    def roll_params(self) -> RollParams:
        """The RollParams the cache's piano rolls were made with."""
        return from_dict(RollParams, self.manifest["settings"]["roll"])

    def select(self, split: str | None = None, transpose: int | None = None) -> list[dict[str, Any]]:
        return [it for it in self.items
                if (split is None or it["split"] == split) and (transpose is None or it["transpose"] == transpose)]

    def mel(self, item: dict[str, Any]) -> np.ndarray:
        """(M, T) float32 normalized log-mel of an item."""
        off, n = item["mel"]
        return np.asarray(self.mels[off:off + n], dtype=np.float32).T

    def audio(self, item: dict[str, Any]) -> np.ndarray:
        """(S,) float32 untransposed audio of the item's clip."""
        off, n = item["audio"]
        return np.asarray(self.audio_samples[off:off + n], dtype=np.float32) / 32767.0

    def roll(self, item: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """(active, onset), each (T_r, K) uint8 velocities, of the item's untransposed clip."""
        if self.rolls is None or item["roll"] is None:
            raise CorpusError(f"{self.root}: item {item['clip_id']} has no piano roll (not a MIDI source)")
        off, n = item["roll"]
        r = np.asarray(self.rolls[off:off + n])
        return r[:, 0], r[:, 1]
