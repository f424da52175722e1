"""Prepare a labelled corpus into the training cache.

    python -m train.prepare --source emopia --root ../shared/data/emopia/EMOPIA_1.0 --out .cache/corpus/emopia
    python -m train.prepare --source deam --root /path/to/DEAM --out .cache/corpus/deam

Reruns are incremental: a clip is redone only when its file or the settings changed. Ctrl-C stops at once (the
clips in progress finish, the queue is dropped) and keeps what is done: the next run continues from there.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from moodgen import midi
from moodgen.config import MelParams, RollParams
from moodgen.mood import quadrant_by_number
from train.corpus import deam, emopia
from train.corpus.cache import (
    CorpusError,
    SourceClip,
    consolidate,
    locate,
    save_shard,
    sha256_file,
    sha256_text,
    shard_location,
    shard_path,
    stored_clips,
    writing_lock,
)
from train.corpus.features import LABELS_VERSION, arousal_score, place_in_quadrant, valence_score

DEFAULT_ROOTS = {"emopia": "../shared/data/emopia/EMOPIA_1.0", "deam": "../shared/data/deam"}
SHARD_VERSION = 2  # bump when processing changes in a way the settings do not capture
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@dataclass(frozen=True)
class PrepareSettings:
    mel: MelParams = field(default_factory=MelParams)
    roll: RollParams = field(default_factory=RollParams)
    train_transpositions: tuple[int, ...] = (-2, 0, 2)  # augmentation; labels hold under transposition
    gain_db: float = 0.0
    soundfont_sha256: str = ""

    def transpositions_for(self, clip: SourceClip) -> tuple[int, ...]:
        return self.train_transpositions if clip.split == "train" and clip.source == "emopia" else (0,)


def clip_key(clip: SourceClip, settings: PrepareSettings) -> str:
    per_clip = {"settings": asdict(settings), "transpositions": settings.transpositions_for(clip),
                "version": SHARD_VERSION}
    return sha256_text(sha256_file(clip.path) + json.dumps(per_clip, sort_keys=True))


def _process(clip: SourceClip, key: str, settings: PrepareSettings, cache_dir: Path) -> None:
    if clip.source == "emopia":
        shard = emopia.process_midi_clip(clip, key, settings.mel, settings.roll, settings.transpositions_for(clip),
                                         settings.gain_db)
    else:
        shard = deam.process_audio_clip(clip, key, settings.mel)
    save_shard(shard_path(cache_dir, clip.clip_id), shard)


def _init_worker(parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the parent handles it
    if sys.platform.startswith("linux"):  # the kernel ends the worker when its parent dies, even by SIGKILL
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    try:
        os.kill(parent_pid, 0)
    except ProcessLookupError:  # the parent died before prctl took effect
        os._exit(1)
    import torch
    torch.set_num_threads(1)  # one process per core does the parallelism


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Processes for clip work that ignore Ctrl-C (the parent cancels the queue) and end when the parent dies."""
    return ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(os.getpid(),))


def process_all(source: str, todo: list[SourceClip], keys: dict[str, str], settings: PrepareSettings,
                cache_dir: Path, workers: int) -> list[dict[str, str]]:
    """Process `todo` into shards in parallel; the clips that failed, with reasons. On Ctrl-C the queued clips are
    cancelled and KeyboardInterrupt propagates once the ones in progress are done."""
    failed = []
    pool = worker_pool(workers)
    try:
        futures = {pool.submit(_process, c, keys[c.clip_id], settings, cache_dir): c for c in todo}
        for fut in tqdm(as_completed(futures), total=len(futures), desc=f"prepare {source}", unit="clip"):
            try:
                fut.result()
            except Exception as exc:  # one bad clip is skipped and listed, never dropped silently
                failed.append({"path": str(futures[fut].path), "reason": f"{type(exc).__name__}: {exc}"})
    finally:  # after Ctrl-C (or any error) the queue is dropped; clips in progress finish
        pool.shutdown(wait=True, cancel_futures=True)
    return sorted(failed, key=lambda f: f["path"])


def derived_labels(clips: list[SourceClip], features: dict[str, dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Continuous labels: given ones as they are; EMOPIA's placed inside the human quadrant by music features."""
    labels = {c.clip_id: (c.valence, c.arousal) for c in clips if c.valence is not None}
    derived = [c for c in clips if c.valence is None]
    if derived:
        feats = [features[c.clip_id] for c in derived]
        quads = [quadrant_by_number(c.quadrant) for c in derived]
        v = place_in_quadrant(valence_score(feats), np.array([q.valence_sign for q in quads]))
        a = place_in_quadrant(arousal_score(feats), np.array([q.arousal_sign for q in quads]))
        labels.update({c.clip_id: (float(vi), float(ai)) for c, vi, ai in zip(derived, v, a)})
    return labels


def no_usable_clips(root: Path, skipped: list[dict[str, str]]) -> CorpusError:
    first = f"; first: {skipped[0]['path']}: {skipped[0]['reason']}" if skipped else ""
    return CorpusError(f"{root}: no usable clips ({len(skipped)} skipped{first})")


def prepare(source: str, root: Path, cache_dir: Path, settings: PrepareSettings, workers: int = 2) -> dict:
    """Bring the cache at `cache_dir` up to date with `root`; returns a summary of the work done."""
    if source == "emopia":
        clips, skipped = emopia.list_clips(root)
        licence = emopia.LICENCE
    elif source == "deam":
        clips, skipped = deam.list_clips(root)
        licence = deam.LICENCE
    else:
        raise CorpusError(f"unknown source {source!r}; choose emopia or deam")
    if not clips:  # e.g. DEAM annotations without the separately downloaded audio
        raise no_usable_clips(root, skipped)
    if cache_dir.exists() and not cache_dir.is_dir():
        raise CorpusError(f"{cache_dir}: expected a folder, found a file")
    with writing_lock(cache_dir):
        return _update(source, root, cache_dir, settings, workers, clips, skipped, licence)


def _update(source: str, root: Path, cache_dir: Path, settings: PrepareSettings, workers: int,
            clips: list[SourceClip], skipped: list[dict[str, str]], licence: str) -> dict:
    (cache_dir / "shards").mkdir(parents=True, exist_ok=True)
    keys = {c.clip_id: clip_key(c, settings) for c in clips}
    stored, problem = stored_clips(cache_dir)
    if problem:
        print(f"{cache_dir}: {problem}; rebuilding the arrays", file=sys.stderr)
    todo = []
    for c in clips:
        path = shard_path(cache_dir, c.clip_id)
        shard = shard_location(path)
        if shard is not None and shard.key != keys[c.clip_id]:  # made from an older file or other settings
            path.unlink()
            shard = None
        if shard is None and (c.clip_id not in stored or stored[c.clip_id].key != keys[c.clip_id]):
            todo.append(c)
    failed = process_all(source, todo, keys, settings, cache_dir, workers) if todo else []
    failed_paths = {f["path"] for f in failed}
    good = [c for c in clips if str(c.path) not in failed_paths]
    skipped = skipped + failed
    if not good:
        raise no_usable_clips(root, skipped)
    manifest = {
        "source": source, "root": str(root), "licence": licence,
        # labels and splits are listed so that an annotation change alone still re-consolidates
        "sources": {c.clip_id: {"path": str(c.path), "key": keys[c.clip_id], "split": c.split, "quadrant": c.quadrant,
                                "valence": c.valence, "arousal": c.arousal, "features": dict(c.features)}
                    for c in good},
        "settings": asdict(settings), "shard_version": SHARD_VERSION, "skipped": skipped,
        "labels_version": LABELS_VERSION,  # a new score formula re-derives labels at consolidation
    }
    manifest_path = cache_dir / "manifest.json"
    previous = json.loads(manifest_path.read_text()) if problem is None and manifest_path.is_file() else None
    comparable = json.loads(json.dumps(manifest))  # tuples become lists, as they are on disk
    unchanged = previous is not None and all(previous.get(k) == v for k, v in comparable.items())
    where = locate(cache_dir, good)
    new_shards = any(loc.shard is not None for loc in where.values())
    if new_shards or not unchanged:
        features = {c.clip_id: where[c.clip_id].features for c in good if c.valence is None}
        consolidate(cache_dir, good, derived_labels(good, features), manifest)
    return {"clips": len(clips), "processed": len(todo), "skipped": len(skipped),
            "consolidated": new_shards or not unchanged}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.prepare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", choices=["emopia", "deam"], default="emopia")
    ap.add_argument("--root", type=Path, help="dataset folder (default: the copy in ../shared/data)")
    ap.add_argument("--out", type=Path, help="cache folder (default: .cache/corpus/<source>)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--transpose", type=int, nargs="+", default=list(PrepareSettings.train_transpositions),
                    help="semitone shifts rendered for the EMOPIA train split (0 is always included)")
    args = ap.parse_args(argv)
    root = args.root or Path(DEFAULT_ROOTS[args.source])
    out = args.out or Path(".cache/corpus") / args.source
    transpositions = tuple(sorted(set(args.transpose) | {0}))
    settings = PrepareSettings(train_transpositions=transpositions, soundfont_sha256=sha256_file(midi.soundfont_path()))
    try:
        summary = prepare(args.source, root, out, settings, workers=args.workers)
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: the clips done so far are kept in {out}; rerun to continue", file=sys.stderr)
        return 130
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
