"""Build the reference atlas that ships in checkpoints/ from a prepared EMOPIA cache.

    python -m train.atlas --cache .cache/corpus/emopia --out checkpoints/atlas.npz

One entry per clip (untransposed, every split): its human quadrant and continuous labels, a ~10 s excerpt of its
notes (the window with the most note onsets) and the sound embedding of that excerpt's mel.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from moodgen.atlas import EXCERPT_SECONDS, Atlas, AtlasEntry, densest_window, embedding_function
from moodgen.config import MelParams, RollParams, from_dict
from train.corpus.cache import CorpusCache, CorpusError

SHIPPABLE_SOURCES = ("emopia",)  # VGMIDI has no licence to redistribute; DEAM audio is not ours to ship


def build_atlas(cache: CorpusCache, seconds: float = EXCERPT_SECONDS, embedding_name: str = "mel_stats16",
                embed: Callable[[np.ndarray], np.ndarray] | None = None) -> Atlas:
    """Atlas of every untransposed clip of `cache`. `embed`: (M, T) mel -> (D,) vector, stored under
    `embedding_name` (default: the built-in function of that name)."""
    embed = embed or embedding_function(embedding_name)
    settings = cache.manifest["settings"]
    mel_params = from_dict(MelParams, settings["mel"])
    roll_params = from_dict(RollParams, settings["roll"])
    items = cache.select(transpose=0)
    foreign = sorted({it["source"] for it in items} - set(SHIPPABLE_SOURCES))
    if foreign:
        raise CorpusError(f"{cache.root}: source(s) {', '.join(foreign)} may not ship in the atlas")
    if not items:
        raise CorpusError(f"{cache.root}: no untransposed clips to build an atlas from")
    frames = roll_params.frames_for(seconds)
    excerpts = np.zeros((len(items), 2, frames, roll_params.n_keys), dtype=np.uint8)
    lengths = np.zeros(len(items), dtype=np.int32)
    embeddings, entries = [], []
    mel_per_roll_frame = mel_params.frames_per_second / roll_params.fps
    for i, it in enumerate(items):
        active, onset = cache.roll(it)
        start = densest_window(onset, frames)
        n = min(frames, len(active) - start)
        excerpts[i, 0, :n], excerpts[i, 1, :n], lengths[i] = active[start:start + n], onset[start:start + n], n
        mel = cache.mel(it)
        m0 = min(int(round(start * mel_per_roll_frame)), mel.shape[1] - 1)
        embeddings.append(embed(mel[:, m0:m0 + mel_params.frames_for(n / roll_params.fps)]))
        entries.append(AtlasEntry(it["clip_id"], it["source"], it["licence"], it["valence"], it["arousal"],
                                  it["quadrant"]))
    provenance = {"data_manifest_hash": cache.manifest_hash, "excerpt_seconds": seconds,
                  "excerpt_choice": "window with the most note onsets"}
    return Atlas(entries, mel_params, embedding_name, np.stack(embeddings), roll_params=roll_params,
                 excerpts=excerpts, excerpt_frames=lengths, gain_db=settings["gain_db"], provenance=provenance)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.atlas", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path(".cache/corpus/emopia"))
    ap.add_argument("--out", type=Path, default=Path("checkpoints/atlas.npz"))
    ap.add_argument("--seconds", type=float, default=EXCERPT_SECONDS, help="excerpt length per clip")
    args = ap.parse_args(argv)
    try:
        atlas = build_atlas(CorpusCache(args.cache), seconds=args.seconds)
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = atlas.save(args.out)
    print(f"{path}: {len(atlas)} clips, {path.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
