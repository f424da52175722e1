"""EMOPIA 1.0: list the labelled clips with song-level splits, and turn one MIDI clip into a cache shard."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from moodgen import audio, midi
from moodgen.config import MelParams, RollParams
from train.corpus.cache import CorpusError, Shard, SourceClip, inside
from train.corpus.features import midi_features

LICENCE = "CC BY-NC-SA 4.0 (EMOPIA 1.0, Hung et al., ISMIR 2021)"
SPLITS = ("train", "val", "test")
CLIP_ID = re.compile(r"Q([1-4])_([A-Za-z0-9_-]+)_([0-9]+)")  # Q<quadrant>_<YouTube id>_<clip number>
MAX_ID_CHARS = 120  # EMOPIA's are under 30; a longer one would make a file name the file system refuses


def read_csv_rows(path: Path, required: set[str]) -> list[dict[str, str]]:
    """Rows of a CSV (header names stripped of spaces); a missing file or column raises CorpusError."""
    if not path.is_file():
        raise CorpusError(f"{path}: expected a CSV file, {'found a folder' if path.is_dir() else 'not found'}")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = required - set(header)
        if missing:
            raise CorpusError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]


def require_dir(path: Path) -> Path:
    if not path.exists():
        raise CorpusError(f"{path}: folder not found")
    if not path.is_dir():
        raise CorpusError(f"{path}: expected a folder, found a file")
    return path


def song_of(clip_id: str) -> str:
    """Q1_<youtube id>_<n> -> <youtube id> (YouTube ids may themselves contain '_')."""
    return clip_id.split("_", 1)[1].rsplit("_", 1)[0]


def list_clips(root: Path) -> tuple[list[SourceClip], list[dict[str, str]]]:
    """Labelled clips under an EMOPIA_1.0 folder, and the ones that cannot be used (with reasons)."""
    root = require_dir(Path(root))
    midis = require_dir(root / "midis")
    song_split: dict[str, str] = {}
    for split in SPLITS:
        for row in read_csv_rows(root / "split" / f"{split}_SL.csv", {"songID"}):
            song_split[row["songID"]] = split
    clips, skipped = [], []
    for row in read_csv_rows(root / "label.csv", {"ID", "4Q"}):
        clip_id = row["ID"]
        valid_id = len(clip_id) <= MAX_ID_CHARS and CLIP_ID.fullmatch(clip_id)
        # an ID that is not EMOPIA's shape never becomes a path: it could name a file anywhere
        path = midis / f"{clip_id}.mid" if valid_id else root / "label.csv"
        reason = None
        if len(clip_id) > MAX_ID_CHARS:
            reason = f"ID {clip_id[:80]!r}... is longer than {MAX_ID_CHARS} characters"
        elif not valid_id:
            reason = f"ID {clip_id[:80]!r} is not of the form Q<1-4>_<song>_<n>"
        elif row["4Q"] not in {"1", "2", "3", "4"}:
            reason = f"quadrant label {row['4Q']!r} is not 1-4"
        elif row["4Q"] != valid_id.group(1):
            reason = f"quadrant label {row['4Q']} disagrees with the ID's Q{valid_id.group(1)}"
        elif song_split.get(song_of(clip_id)) is None:
            reason = "song is in no split file"
        elif not path.is_file():
            reason = "MIDI file not found"
        elif not inside(path, root):
            reason = f"MIDI file resolves outside the dataset folder {root}"
        if reason:
            skipped.append({"path": str(path), "reason": reason})
            continue
        split = song_split[song_of(clip_id)]
        clips.append(SourceClip(clip_id, path, "emopia", song_of(clip_id), split, int(row["4Q"]), LICENCE))
    return sorted(clips, key=lambda c: c.clip_id), skipped


def process_midi_clip(clip: SourceClip, key: str, mel_params: MelParams, roll_params: RollParams,
                      transpositions: tuple[int, ...], gain_db: float) -> Shard:
    """Render `clip` (sustain applied) at each transposition; keep the untransposed audio and piano roll."""
    pm = midi.apply_sustain(midi.load_midi(clip.path))
    mels, wav = {}, None
    for t in transpositions:
        y = midi.render_midi(midi.transpose(pm, t) if t else pm, mel_params.sample_rate, gain_db=gain_db)
        mels[t] = audio.mel_from_audio(y, mel_params).numpy().T
        if t == 0:
            wav = audio.to_pcm16(y)
    active, onset = midi.roll_from_midi(pm, roll_params)
    return Shard(key, mels, wav, np.stack([active, onset], axis=1), midi_features(pm))
