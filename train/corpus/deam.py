"""DEAM (MediaEval Database for Emotional Analysis in Music): list the annotated songs, turn one mp3 into a shard.

Reads the official layout (DEAM_Annotations/..., DEAM_audio/MEMD_audio/) or a flat copy (annotations/,
MEMD_audio/); the folder reading itself lives in `moodgen.deam.read_deam`, shared with the atlas. Labels are the
song-level static means mapped from the 1-9 scale to [-1, 1]; the split is drawn from a hash of the song id, so it
is song-level and the same on every machine.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from moodgen import audio
from moodgen.config import MelParams
from moodgen.deam import DEAM_LICENCE, load_audio_file, read_deam
from moodgen.mood import quadrant_of
from train.corpus.cache import CorpusError, Shard, SourceClip, inside

LICENCE = DEAM_LICENCE


def split_of(song_id: str) -> str:
    """Deterministic song-level split, 80/10/10 train/val/test by a hash of the id."""
    bucket = int(hashlib.sha256(f"deam:{song_id}".encode()).hexdigest()[:8], 16) % 10
    return "train" if bucket < 8 else "val" if bucket == 8 else "test"


def list_clips(root: Path) -> tuple[list[SourceClip], list[dict[str, str]]]:
    """Annotated songs whose mp3 is present, and the ones that cannot be used (with reasons)."""
    try:
        songs, skipped = read_deam(root)  # skipped: rows refused (song id not a number, audio outside root)
    except ValueError as exc:
        raise CorpusError(str(exc)) from None
    clips = []
    for s in songs:
        if not re.fullmatch(r"[0-9]{1,20}", s.song_id):  # it names the mp3, so only a number may become a path
            skipped.append({"path": str(root), "reason": f"song_id {s.song_id[:80]!r} is not a number of at most "
                                                          "20 digits"})
            continue
        reason = ("mp3 not found" if not s.audio_path.is_file()
                  else f"mp3 resolves outside the dataset folder {root}" if not inside(s.audio_path, root) else None)
        if reason:
            skipped.append({"path": str(s.audio_path), "reason": reason})
            continue
        clips.append(SourceClip(f"deam_{s.song_id}", s.audio_path, "deam", s.song_id, split_of(s.song_id),
                                quadrant_of(s.valence, s.arousal).number, LICENCE, s.valence, s.arousal, s.features))
    return clips, skipped


def process_audio_clip(clip: SourceClip, key: str, mel_params: MelParams) -> Shard:
    """Decode the song mono at the mel sample rate; its mel, int16 audio and loudness (no piano roll)."""
    y = load_audio_file(clip.path, mel_params.sample_rate)
    mel = audio.mel_from_audio(y, mel_params).numpy().T
    features = {"duration_s": len(y) / mel_params.sample_rate, "rms_db": audio.rms_db(y)}
    return Shard(key, {0: mel}, audio.to_pcm16(y), None, features)
