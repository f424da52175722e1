"""The training cache: clips processed into shards, then joined into compact memory-mappable arrays + an index.

Layout of a cache folder:
    mels.npy        (N_frames, M) uint8 normalized log-mels of every item (clip x transposition), concatenated in
                    time; 8-bit code in train/corpus/arrays.py, recorded in the manifest
    audio_flac.npy  (N_bytes,) uint8: one FLAC stream per clip, its untransposed int16 audio
    rolls.npy       (N_roll, 2, K) uint8 (active, onset) velocity rolls of every MIDI clip, untransposed (the note
                    engine transposes rolls on the fly, so they are stored once)
    index.json      one row per item: labels, split, spans (offset, length) into the arrays
    manifest.json   sources and their keys, settings, licence, skipped clips, each array's shape, dtype and size, and
                    where each clip's parts lie in the arrays; written last
    shards/         clips processed since the last consolidation, one .npz each

A clip's data is kept once: in its shard until consolidation joins it into the arrays (and deletes the shard), in
the arrays after. An item's mel is `mels[off:off+len].T`, (M, T). Every file is written under a temporary name and
renamed into place, so an interrupted prepare leaves either the old or the new version and the next run redoes only
what is missing; arrays that disagree with the manifest (deleted, truncated) are rebuilt by the next prepare.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moodgen.config import MelParams, RollParams, from_dict
from train.corpus.arrays import (
    MEL_CODE,
    DequantizedRows,
    RowReader,
    RowWriter,
    decode_flac,
    describe,
    encode_flac,
    flac_length,
    mismatch,
    quantize_mel,
)

FORMAT_VERSION = 2
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")  # a clip id usable as a file name: no separators, no '..'


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


def inside(path: Path, root: Path) -> bool:
    """Whether `path`, with symlinks and '..' resolved, lies inside `root`."""
    return Path(path).resolve().is_relative_to(Path(root).resolve())


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
    """What processing one clip produces. mels: transposition -> (T, M) normalized log-mel (8-bit once saved)."""

    key: str
    mels: dict[int, np.ndarray]
    audio: np.ndarray  # (S,) int16, untransposed
    rolls: np.ndarray | None  # (T_r, 2, K) uint8 for MIDI sources
    features: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredClip:
    """Where one clip's processed parts ("mel_<t>", "audio_flac", "rolls") lie: spans (offset, length) and row
    shapes in the shard `shard`, or in the consolidated arrays when `shard` is None."""

    key: str
    features: dict[str, float]
    spans: dict[str, tuple[int, int]]
    row_shapes: dict[str, tuple[int, ...]]
    shard: Path | None = None


def array_file(part: str) -> str:
    return "mels.npy" if part.startswith("mel_") else f"{part}.npy"


def temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")


def atomic_save(path: Path, write) -> None:
    """Call `write(tmp_path)` then rename onto `path`, so readers never see a half-written file."""
    tmp = temp_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_save(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1, sort_keys=True)))


@contextmanager
def writing_lock(cache_dir: Path) -> Iterator[None]:
    """Hold the cache's lock for the duration: a second prepare on the same cache is refused, not interleaved."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".lock", "a") as f:  # "a": neither truncates nor touches it
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CorpusError(f"{cache_dir}: another prepare is writing this cache") from None
        yield


def shard_path(cache_dir: Path, clip_id: str) -> Path:
    """The shard file of `clip_id`; a clip id that is not a plain file name is refused."""
    path = Path(cache_dir) / "shards" / f"{clip_id}.npz"
    if not PLAIN_NAME.fullmatch(clip_id) or not inside(path, cache_dir):
        raise CorpusError(f"{cache_dir}: clip id {clip_id!r} is not a plain file name; nothing written for it")
    return path


def save_shard(path: Path, shard: Shard) -> None:
    arrays = {f"mel_{t:+d}": quantize_mel(m) for t, m in shard.mels.items()}
    arrays["audio_flac"] = encode_flac(shard.audio)
    if shard.rolls is not None:
        arrays["rolls"] = np.asarray(shard.rolls, dtype=np.uint8)
    meta = json.dumps({"key": shard.key, "features": shard.features,
                       "shapes": {name: list(a.shape) for name, a in arrays.items()}})

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(meta), **arrays)

    atomic_save(path, write)


def shard_location(path: Path) -> StoredClip | None:
    """What a shard holds, without reading its arrays; None if it is absent or unreadable."""
    try:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
    except Exception:
        return None
    shapes = {name: tuple(s) for name, s in meta["shapes"].items()}
    return StoredClip(meta["key"], meta["features"], {name: (0, s[0]) for name, s in shapes.items()},
                      {name: s[1:] for name, s in shapes.items()}, path)


def manifest_hash(manifest: dict[str, Any]) -> str:
    """The hash of everything in a manifest but its own `manifest_hash`."""
    return sha256_text(json.dumps({k: v for k, v in manifest.items() if k != "manifest_hash"}, sort_keys=True))


def store_problem(cache_dir: Path, manifest: dict[str, Any]) -> str | None:
    """Why the consolidated arrays and index cannot be used as the manifest describes them, or None."""
    if manifest.get("format_version") != FORMAT_VERSION:
        return f"cache format {manifest.get('format_version')}, expected {FORMAT_VERSION}"
    if manifest.get("manifest_hash") != manifest_hash(manifest):  # weights record it as the data they learned from
        return "manifest.json was edited after it was written (its manifest_hash no longer matches it)"
    for name, recorded in manifest["arrays"].items():
        problem = mismatch(cache_dir / name, recorded)
        if problem:
            return problem
    index = cache_dir / "index.json"
    if not index.is_file() or sha256_file(index) != manifest["index_sha256"]:
        return "index.json is missing or differs from the manifest"
    return None


def stored_clips(cache_dir: Path) -> tuple[dict[str, StoredClip], str | None]:
    """The clips in the consolidated arrays, and why there are none when the arrays are unusable."""
    path = cache_dir / "manifest.json"
    if not path.is_file():
        return {}, None
    try:
        manifest = json.loads(path.read_text())
        problem = store_problem(cache_dir, manifest)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {}, f"manifest.json is unreadable ({type(exc).__name__}: {exc})"
    if problem:
        return {}, problem
    row_shapes = {name: tuple(a["shape"][1:]) for name, a in manifest["arrays"].items()}
    return {clip_id: StoredClip(c["key"], c["features"], {p: tuple(s) for p, s in c["spans"].items()},
                                {p: row_shapes[array_file(p)] for p in c["spans"]})
            for clip_id, c in manifest["clips"].items()}, None


def locate(cache_dir: Path, clips: list[SourceClip]) -> dict[str, StoredClip]:
    """Where each clip's data lies: its shard when it has one, else the consolidated arrays."""
    stored, _ = stored_clips(cache_dir)
    found = {}
    for c in clips:
        path = shard_path(cache_dir, c.clip_id)
        found[c.clip_id] = shard_location(path) or stored.get(c.clip_id)
        if found[c.clip_id] is None:
            raise CorpusError(f"{path}: clip {c.clip_id} has no shard and is not in the consolidated arrays")
    return found


def _read_parts(loc: StoredClip, old: dict[str, RowReader]) -> dict[str, np.ndarray]:
    if loc.shard is not None:
        with np.load(loc.shard) as z:
            return {part: z[part] for part in loc.spans}
    return {part: old[array_file(part)].rows(*span) for part, span in loc.spans.items()}


def _array_shapes(where: dict[str, StoredClip], files: list[str]) -> dict[str, tuple[int, ...]]:
    """The shape of each array file once every clip's parts are joined into it."""
    shapes: dict[str, tuple[int, ...]] = {}
    for loc in where.values():
        for part, (_, n) in loc.spans.items():
            name = array_file(part)
            if name in files:
                shapes[name] = (shapes.get(name, (0,))[0] + n, *loc.row_shapes[part])
    return shapes


def _index_rows(c: SourceClip, loc: StoredClip, spans: dict[str, tuple[int, int]],
                label: tuple[float, float]) -> list[dict[str, Any]]:
    """One index row per transposition of clip `c`, its parts at `spans` in the arrays."""
    return [{"clip_id": c.clip_id, "song_id": c.song_id, "source": c.source, "split": c.split,
             "quadrant": c.quadrant, "valence": float(label[0]), "arousal": float(label[1]), "transpose": t,
             "licence": c.licence, "features": {**dict(c.features), **loc.features},
             "mel": spans[f"mel_{t:+d}"], "audio": spans["audio_flac"], "roll": spans.get("rolls")}
            for t in sorted(int(p[4:]) for p in spans if p.startswith("mel_"))]


def consolidate(cache_dir: Path, clips: list[SourceClip], labels: dict[str, tuple[float, float]],
                manifest: dict[str, Any]) -> None:
    """Join `clips` into the arrays, index and manifest (each from its shard, else from the arrays already there),
    streaming block by block; then delete the shards. `labels`: clip_id -> (valence, arousal)."""
    cache_dir = Path(cache_dir)
    where = locate(cache_dir, clips)
    has_rolls = bool(clips) and all("rolls" in where[c.clip_id].spans for c in clips)
    files = ["mels.npy", "audio_flac.npy"] + (["rolls.npy"] if has_rolls else [])
    for p in cache_dir.glob(".*.tmp*"):  # left by a run that died
        p.unlink()
    shapes = _array_shapes(where, files)
    tmps = {name: temp_path(cache_dir / name) for name in files}
    rows, table = [], {}
    try:
        with ExitStack() as stack:
            out = {name: stack.enter_context(RowWriter(tmps[name], shapes[name], np.uint8)) for name in files}
            needed = {array_file(p) for loc in where.values() if loc.shard is None for p in loc.spans} & set(files)
            old = {name: stack.enter_context(closing(RowReader(cache_dir / name))) for name in needed}
            for c in clips:
                loc = where[c.clip_id]
                spans = {part: out[array_file(part)].append(block)
                         for part, block in _read_parts(loc, old).items() if array_file(part) in out}
                table[c.clip_id] = {"key": loc.key, "features": loc.features, "spans": spans}
                rows += _index_rows(c, loc, spans, labels[c.clip_id])
        for name in files:
            os.replace(tmps[name], cache_dir / name)
    finally:
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)
    atomic_write_json(cache_dir / "index.json", rows)
    manifest = dict(manifest, format_version=FORMAT_VERSION, n_items=len(rows), n_clips=len(clips),
                    mel_code=MEL_CODE, arrays={name: describe(cache_dir / name) for name in files},
                    clips=table, index_sha256=sha256_file(cache_dir / "index.json"))
    manifest["manifest_hash"] = manifest_hash(manifest)
    atomic_write_json(cache_dir / "manifest.json", manifest)
    # now kept in the arrays: the shards, and arrays this cache no longer has (e.g. an older format's)
    shards = cache_dir / "shards"
    for p in [*(shards.iterdir() if shards.is_dir() else ()), *cache_dir.glob("*.npy")]:
        if p.name not in files:
            p.unlink()


class CorpusCache:
    """Read-only view of a prepared cache; arrays are memory-mapped.

    `mels[a:b]`: (b - a, M) float32 normalized log-mel rows (8-bit on disk, see train/corpus/arrays.py; `mels.raw`
    is the uint8 array). `rolls[a:b]`: (b - a, 2, K) uint8, or `rolls` is None for audio sources.
    """

    def __init__(self, cache_dir: str | Path):
        self.root = Path(cache_dir)
        manifest_path = self.root / "manifest.json"
        if not manifest_path.is_file():
            raise CorpusError(f"{self.root}: no prepared cache here (missing manifest.json); "
                              "run python -m train.prepare")
        self.manifest = json.loads(manifest_path.read_text())
        try:
            problem = store_problem(self.root, self.manifest)
        except (KeyError, TypeError) as exc:
            problem = f"manifest.json lacks {exc}"
        if problem:
            raise CorpusError(f"{self.root}: {problem}; rerun python -m train.prepare")
        self.items: list[dict[str, Any]] = json.loads((self.root / "index.json").read_text())
        code = self.manifest["mel_code"]
        self.mels = DequantizedRows(np.load(self.root / "mels.npy", mmap_mode="r"), code["zero"], code["scale"])
        self.audio_flac = np.load(self.root / "audio_flac.npy", mmap_mode="r")
        has_rolls = "rolls.npy" in self.manifest["arrays"]
        self.rolls = np.load(self.root / "rolls.npy", mmap_mode="r") if has_rolls else None

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
        return self.mels[off:off + n].T

    def audio(self, item: dict[str, Any], start: int = 0, length: int | None = None) -> np.ndarray:
        """(S,) float32 untransposed audio of the item's clip, or its `length` samples from `start` (fewer at the
        end). A segment decodes only itself: about 1 ms for 2 s, against about 15 ms for a whole 40 s clip."""
        off, n = item["audio"]
        return decode_flac(self.audio_flac[off:off + n], start, length).astype(np.float32) / 32767.0

    def audio_length(self, item: dict[str, Any]) -> int:
        """Samples in the item's clip, without decoding it."""
        off, n = item["audio"]
        return flac_length(self.audio_flac[off:off + n])

    def roll(self, item: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """(active, onset), each (T_r, K) uint8 velocities, of the item's untransposed clip."""
        if self.rolls is None or item["roll"] is None:
            raise CorpusError(f"{self.root}: item {item['clip_id']} has no piano roll (not a MIDI source)")
        off, n = item["roll"]
        r = np.asarray(self.rolls[off:off + n])
        return r[:, 0], r[:, 1]
