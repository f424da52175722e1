"""DEAM folders (Aljanaki, Yang & Soleymani 2017): their layout, the song-level annotations, and decoding the audio.
Shared by the atlas (`Atlas.from_deam`) and the training corpus (train.corpus.deam).

An annotation file is data, not a path list: song ids must be numbers, and every audio path must resolve inside
the DEAM folder (no `..`, absolute path or symlink out of it), so no file elsewhere is ever read or served. Rows
that fail either check are skipped, and `read_deam` returns them with the reason. S samples.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from moodgen.mood import from_deam_scale

DEAM_LICENCE = ("DEAM (Aljanaki, Yang & Soleymani, PLOS ONE 2017): research use, cite the paper; "
                "per-track Creative Commons licences")
DEAM_STATIC_FILES = ("static_annotations_averaged_songs_1_2000.csv", "static_annotations_averaged_songs_2000_2058.csv")
DEAM_OFFICIAL_ANNOTATIONS = Path("DEAM_Annotations", "annotations", "annotations averaged per song")
DEAM_OFFICIAL_AUDIO = Path("DEAM_audio", "MEMD_audio")
DEAM_ANNOTATED_FROM_S = 15.0  # DEAM's raters annotated each 45 s excerpt from 15 s on
SONG_ID = re.compile(r"[0-9]+")  # ASCII digits only (str.isdigit also takes e.g. superscripts)


@dataclass(frozen=True)
class DeamSong:
    """One annotated DEAM song. valence/arousal in [-1, 1]; features: annotation statistics on that scale."""

    song_id: str
    valence: float
    arousal: float
    features: tuple[tuple[str, float], ...]
    audio_path: Path  # inside the DEAM folder; may not exist: DEAM's audio is a separate download


@dataclass(frozen=True)
class DeamLayout:
    static_dir: Path
    dynamic_dir: Path  # may not exist
    audio_dir: Path  # may not exist


def deam_layout(root: str | Path) -> DeamLayout:
    """Locate annotations and audio in the official layout (DEAM_Annotations/, DEAM_audio/) or a flat one
    (annotations/*.csv, optional per-second traces in annotations/dynamic/, audio in MEMD_audio/).
    Raises ValueError naming the path when no annotation folder is found."""
    root = Path(root)
    _require_dir(root)
    official = root / DEAM_OFFICIAL_ANNOTATIONS
    if (root / "DEAM_Annotations").exists():
        _require_dir(root / "DEAM_Annotations")
        layout = DeamLayout(official / "song_level", official / "dynamic (per second annotations)",
                            root / DEAM_OFFICIAL_AUDIO)
    elif (root / "annotations").exists():
        layout = DeamLayout(root / "annotations", root / "annotations" / "dynamic", root / "MEMD_audio")
    else:
        raise ValueError(f"{root}: no DEAM annotations folder (expected {DEAM_OFFICIAL_ANNOTATIONS / 'song_level'} "
                         f"or annotations/)")
    _require_dir(layout.static_dir)
    for p in (layout.dynamic_dir, layout.audio_dir):
        if p.exists():
            _require_dir(p)
    return layout


def _require_dir(path: Path) -> None:
    if not path.exists():
        raise ValueError(f"{path}: folder not found")
    if not path.is_dir():
        raise ValueError(f"{path}: expected a folder, found a file")


def _read_table(path: Path, required: tuple[str, ...]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a DEAM CSV (DEAM puts a space after each comma); ValueError naming the path if unusable."""
    if not path.is_file():
        raise ValueError(f"{path}: expected a CSV file, {'found a folder' if path.is_dir() else 'not found'}")
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f, skipinitialspace=True) if any(cell.strip() for cell in r)]
    header = [h.strip() for h in rows[0]] if rows else []
    missing = [c for c in required if c not in header]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    return header, rows[1:]


def number(path: Path, line: int, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{path}: line {line}: {text!r} is not a number") from None


def _dynamic_stats(path: Path, name: str) -> dict[str, dict[str, float]]:
    """song_id -> {<name>_dyn_mean, <name>_dyn_std} over a per-second trace file (values already in [-1, 1])."""
    header, rows = _read_table(path, ("song_id",))
    out = {}
    for line, row in enumerate(rows, start=2):
        values = np.array([number(path, line, v) for v in row[1:len(header)] if v.strip()])
        if values.size:
            out[row[0].strip()] = {f"{name}_dyn_mean": float(values.mean()), f"{name}_dyn_std": float(values.std())}
    return out


def read_deam(root: str | Path) -> tuple[list[DeamSong], list[dict[str, str]]]:
    """Every song of a DEAM folder's static annotations (both files), with dynamic-trace statistics when the
    per-second files are present, sorted by numeric song id; and the rows skipped, as {"path", "reason"}: a song id
    that is not a number, or an audio path that resolves outside `root`. Malformed folders or files raise
    ValueError naming the path."""
    layout = deam_layout(root)
    inside = Path(root).resolve()
    dynamic: dict[str, dict[str, float]] = {}
    for name in ("valence", "arousal"):
        path = layout.dynamic_dir / f"{name}.csv"
        if path.exists():
            for song, stats in _dynamic_stats(path, name).items():
                dynamic.setdefault(song, {}).update(stats)
    songs: dict[str, DeamSong] = {}
    skipped: list[dict[str, str]] = []
    for file_name in DEAM_STATIC_FILES:
        path = layout.static_dir / file_name
        header, rows = _read_table(path, ("song_id", "valence_mean", "arousal_mean"))
        col = {h: i for i, h in enumerate(header)}
        for line, row in enumerate(rows, start=2):
            if len(row) < len(header):
                raise ValueError(f"{path}: line {line}: {len(row)} cells, header has {len(header)}")
            song_id = row[col["song_id"]].strip()
            if not SONG_ID.fullmatch(song_id):
                skipped.append({"path": str(path), "reason": f"line {line}: song_id {song_id[:40]!r} is not a number"})
                continue
            audio_path = layout.audio_dir / f"{song_id}.mp3"
            if not audio_path.resolve().is_relative_to(inside):
                skipped.append({"path": str(audio_path), "reason": f"resolves outside the DEAM folder {root}"})
                continue
            if song_id in songs:
                raise ValueError(f"{path}: line {line}: song {song_id} is annotated twice")
            rating = {c: number(path, line, row[col[c]])
                      for c in ("valence_mean", "arousal_mean", "valence_std", "arousal_std") if c in col}
            if not all(1.0 <= rating[c] <= 9.0 for c in ("valence_mean", "arousal_mean")):
                raise ValueError(f"{path}: line {line}: song {song_id} rating outside DEAM's 1-9 scale")
            # std on the 1-9 scale / 4 = std on [-1, 1]
            features = {c: rating[c] / 4.0 for c in ("valence_std", "arousal_std") if c in rating}
            features.update(dynamic.get(song_id, {}))
            songs[song_id] = DeamSong(song_id, from_deam_scale(rating["valence_mean"]),
                                      from_deam_scale(rating["arousal_mean"]), tuple(sorted(features.items())),
                                      audio_path)
    return sorted(songs.values(), key=lambda s: (len(s.song_id), s.song_id)), skipped


def load_audio_file(path: str | Path, sample_rate: int, offset: float = 0.0,
                    duration: float | None = None) -> np.ndarray:
    """Decode an audio file (mp3, wav, flac, ...) to mono float32 (S,) at `sample_rate`; ValueError naming the path.

    libsndfile only (no slow, deprecated audioread fallback): a file it cannot read is reported at once.
    """
    try:
        with sf.SoundFile(str(path)) as f:
            native = f.samplerate
            f.seek(min(int(round(offset * native)), f.frames))
            y = f.read(-1 if duration is None else int(round(duration * native)), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise ValueError(f"{path}: cannot decode audio ({exc})") from exc
    if y.size == 0:
        raise ValueError(f"{path}: no audio samples")
    y = y.mean(axis=1)
    if native != sample_rate:
        y = librosa.resample(y, orig_sr=native, target_sr=sample_rate)
    return y.astype(np.float32)


def deam_excerpt(path: str | Path, sample_rate: int, seconds: float) -> np.ndarray:
    """(S,) audio of the annotated part of a DEAM song: `seconds` from 15 s on, earlier if the file is short."""
    try:
        total = sf.info(str(path)).duration
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise ValueError(f"{path}: cannot decode audio ({exc})") from exc
    return load_audio_file(path, sample_rate, offset=max(0.0, min(DEAM_ANNOTATED_FROM_S, total - seconds)),
                           duration=seconds)
