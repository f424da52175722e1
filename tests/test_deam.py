"""DEAM loader: real annotation files from ../shared/data/deam, synthetic mp3s written here; crafted annotation
files that try to reach outside the DEAM folder (self-contained)."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from moodgen import audio
from moodgen import deam as deam_folder
from moodgen.atlas import Atlas
from moodgen.config import MelParams
from moodgen.deam import DEAM_OFFICIAL_ANNOTATIONS, DEAM_OFFICIAL_AUDIO, DEAM_STATIC_FILES, load_audio_file
from train.corpus import deam
from train.corpus.cache import CorpusCache, CorpusError
from train.prepare import PrepareSettings, main, prepare

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "deam" / "annotations"
needs_real = pytest.mark.skipif(not all((REAL / f).is_file() for f in DEAM_STATIC_FILES),
                                reason=f"real DEAM annotations not found in {REAL}")
WITH_AUDIO = ("2", "3", "5", "2001")  # songs the tests give an mp3; 2001 is in the second (wider) file
N_SONGS = 1802


@pytest.fixture(scope="module", autouse=True)
def warm_up(tmp_path_factory):
    """First decode, resample and mel calls are slow (lazy imports); forked prepare workers inherit them from here."""
    path = tmp_path_factory.mktemp("warm") / "tone.mp3"
    write_mp3(path, seconds=0.2)
    audio.mel_from_audio(load_audio_file(path, MelParams().sample_rate), MelParams())


def real_rows() -> dict[str, dict[str, str]]:
    rows = {}
    for name in DEAM_STATIC_FILES:
        with open(REAL / name, newline="") as f:
            for row in csv.DictReader(f, skipinitialspace=True):
                rows[row["song_id"]] = row
    return rows


def write_mp3(path: Path, seconds: float = 2.0, freq: float = 440.0, sr: int = 44100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr, format="MP3")


def official_root(tmp_path: Path, song_ids=WITH_AUDIO) -> Path:
    root = tmp_path / "DEAM"
    static = root / DEAM_OFFICIAL_ANNOTATIONS / "song_level"
    static.mkdir(parents=True)
    for name in DEAM_STATIC_FILES:
        shutil.copy(REAL / name, static / name)
    for i, song in enumerate(song_ids):
        write_mp3(root / DEAM_OFFICIAL_AUDIO / f"{song}.mp3", freq=220.0 * (i + 1))
    return root


@needs_real
def test_labels_counts_and_skipped(tmp_path):
    clips, skipped = deam.list_clips(official_root(tmp_path))
    assert sorted(c.song_id for c in clips) == sorted(WITH_AUDIO)
    assert len(skipped) == N_SONGS - len(WITH_AUDIO)
    assert all(s["reason"] == "mp3 not found" and s["path"].endswith(".mp3") for s in skipped)
    rows = real_rows()
    for c in clips:
        v, a = float(rows[c.song_id]["valence_mean"]), float(rows[c.song_id]["arousal_mean"])
        assert c.valence == pytest.approx((v - 5) / 4) and c.arousal == pytest.approx((a - 5) / 4)
        assert c.quadrant == {(1, 1): 1, (-1, 1): 2, (-1, -1): 3, (1, -1): 4}[
            (1 if c.valence >= 0 else -1, 1 if c.arousal >= 0 else -1)]
        assert c.split == deam.split_of(c.song_id) and c.clip_id == f"deam_{c.song_id}"
        assert dict(c.features)["valence_std"] == pytest.approx(float(rows[c.song_id]["valence_std"]) / 4)
    song2 = next(c for c in clips if c.song_id == "2")
    assert (song2.valence, song2.arousal) == pytest.approx((-0.475, -0.5))  # 3.1 and 3 on the 1-9 scale


def test_split_is_song_level_and_roughly_80_10_10():
    splits = [deam.split_of(str(i)) for i in range(2, 2059)]
    assert splits == [deam.split_of(str(i)) for i in range(2, 2059)]
    for name, share in (("train", 0.8), ("val", 0.1), ("test", 0.1)):
        assert abs(splits.count(name) / len(splits) - share) < 0.03


@needs_real
def test_dynamic_traces_become_features(tmp_path):
    root = official_root(tmp_path, song_ids=("2",))
    dyn = root / DEAM_OFFICIAL_ANNOTATIONS / "dynamic (per second annotations)"
    dyn.mkdir()
    header = "song_id, sample_15000ms, sample_15500ms, sample_16000ms\n"
    (dyn / "valence.csv").write_text(header + "2, 0.1, 0.3, \n3, -0.2, -0.2, -0.2\n")  # song 2 ends early
    (dyn / "arousal.csv").write_text(header + "2, -0.5, 0.5, 0.0\n")
    (clip,), _ = deam.list_clips(root)
    f = dict(clip.features)
    assert f["valence_dyn_mean"] == pytest.approx(0.2) and f["valence_dyn_std"] == pytest.approx(0.1)
    assert f["arousal_dyn_mean"] == pytest.approx(0.0) and f["arousal_dyn_std"] == pytest.approx(np.sqrt(1 / 6))


@needs_real
def test_flat_layout_like_our_copy(tmp_path):
    root = tmp_path / "deam"
    shutil.copytree(REAL, root / "annotations")
    write_mp3(root / "MEMD_audio" / "3.mp3")
    clips, skipped = deam.list_clips(root)
    assert [c.song_id for c in clips] == ["3"] and len(skipped) == N_SONGS - 1
    assert clips[0].path == root / "MEMD_audio" / "3.mp3"


@needs_real
def test_broken_folders_name_the_path(tmp_path):
    with pytest.raises(CorpusError, match="no DEAM annotations folder"):
        deam.list_clips(tmp_path)
    root = official_root(tmp_path, song_ids=())
    static = root / DEAM_OFFICIAL_ANNOTATIONS / "song_level"
    bad = static / DEAM_STATIC_FILES[0]
    bad.write_text("song_id, valence_mean, valence_std\n2, 3.1, 0.9\n")
    with pytest.raises(CorpusError,
                       match=r"static_annotations_averaged_songs_1_2000\.csv: missing column\(s\) arousal_mean"):
        deam.list_clips(root)
    shutil.rmtree(static)
    static.write_text("not a folder")
    with pytest.raises(CorpusError, match="song_level: expected a folder, found a file"):
        deam.list_clips(root)
    static.unlink()
    with pytest.raises(CorpusError, match="song_level: folder not found"):
        deam.list_clips(root)


@needs_real
def test_prepare_end_to_end_and_rerun_does_no_work(tmp_path):
    root, out = official_root(tmp_path), tmp_path / "cache"
    (root / DEAM_OFFICIAL_AUDIO / "5.mp3").write_bytes(b"not an mp3")  # decodable listing, broken file
    settings = PrepareSettings()
    summary = prepare("deam", root, out, settings, workers=1)
    assert summary["processed"] == len(WITH_AUDIO) and summary["skipped"] == N_SONGS - len(WITH_AUDIO) + 1
    cache = CorpusCache(out)
    assert [it["clip_id"] for it in cache.items] == ["deam_2", "deam_3", "deam_2001"]
    assert any(s["path"].endswith("5.mp3") and "decode" in s["reason"] for s in cache.manifest["skipped"])
    assert cache.manifest["licence"] == deam.LICENCE and cache.rolls is None
    mp = MelParams()
    for it in cache.items:
        assert it["transpose"] == 0 and it["source"] == "deam" and -1 <= it["valence"] <= 1
        assert cache.mel(it).shape == (mp.n_mels, 2 * mp.sample_rate // mp.hop_length + 1)
        assert abs(len(cache.audio(it)) - 2 * mp.sample_rate) < 0.05 * mp.sample_rate
        assert -20 < it["features"]["rms_db"] < -5 and "valence_std" in it["features"]
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    again = prepare("deam", root, out, settings, workers=1)  # only the broken file is tried again
    assert again["processed"] == 1 and not again["consolidated"]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()} == stamps
    (root / DEAM_OFFICIAL_AUDIO / "5.mp3").unlink()
    prepare("deam", root, out, settings, workers=1)  # now listed as missing instead: the manifest changes
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    again = prepare("deam", root, out, settings, workers=1)
    assert again["processed"] == 0 and not again["consolidated"]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()} == stamps


@needs_real
def test_cli(tmp_path, capsys):
    root, out = official_root(tmp_path, song_ids=("2",)), tmp_path / "cache"
    assert main(["--source", "deam", "--root", str(root), "--out", str(out), "--workers", "1"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["processed"] == 1
    assert len(CorpusCache(out).items) == 1
    assert main(["--source", "deam", "--root", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nowhere" in err
    no_audio = official_root(tmp_path / "no_audio", song_ids=())  # annotations only, like our copy
    assert main(["--source", "deam", "--root", str(no_audio), "--out", str(tmp_path / "c2")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"no usable clips ({N_SONGS} skipped; first:" in err and "2.mp3" in err


def crafted_root(tmp_path: Path, song_ids: list[str]) -> Path:
    """A flat DEAM folder whose first annotation file lists `song_ids` (all rated 5 +- 1); the second is empty."""
    root = tmp_path / "deam"
    (root / "annotations").mkdir(parents=True)
    header = "song_id, valence_mean, valence_std, arousal_mean, arousal_std\n"
    rows = "".join(f"{song}, 5.0, 1.0, 5.0, 1.0\n" for song in song_ids)
    (root / "annotations" / DEAM_STATIC_FILES[0]).write_text(header + rows)
    (root / "annotations" / DEAM_STATIC_FILES[1]).write_text(header)
    return root


@pytest.fixture
def opened(monkeypatch) -> list[Path]:
    """Every audio file opened for reading through libsndfile (how moodgen.deam decodes) while the test runs."""
    paths: list[Path] = []
    sound_file = sf.SoundFile

    def recording(file, mode="r", *args, **kwargs):
        if "r" in mode:  # the tests' own mp3 writing is not what is watched
            paths.append(Path(file).resolve())
        return sound_file(file, mode, *args, **kwargs)

    monkeypatch.setattr(sf, "SoundFile", recording)  # sf.info opens through sf.SoundFile as well
    return paths


def test_song_ids_must_be_numbers(tmp_path):
    root = crafted_root(tmp_path, ["2", "../../etc/passwd", "/tmp/x", "3a", "\u00b2", "", "7"])
    songs, skipped = deam_folder.read_deam(root)
    assert [s.song_id for s in songs] == ["2", "7"]
    assert [s["reason"] for s in skipped] == [f"line {n}: song_id {text!r} is not a number" for n, text in
                                              ((3, "../../etc/passwd"), (4, "/tmp/x"), (5, "3a"), (6, "\u00b2"),
                                               (7, ""))]
    assert all(s["path"].endswith(DEAM_STATIC_FILES[0]) for s in skipped)
    assert all(s.audio_path.resolve().is_relative_to(root.resolve()) for s in songs)


def test_no_audio_outside_the_folder_is_opened(tmp_path, opened):
    """Crafted ids (relative, absolute) and a symlinked mp3 all point at real mp3s outside the DEAM folder."""
    outside = tmp_path / "outside"
    write_mp3(tmp_path / "etc" / "passwd.mp3")  # where MEMD_audio/../../etc/passwd.mp3 lands
    write_mp3(outside / "x.mp3")
    write_mp3(outside / "secret.mp3")
    root = crafted_root(tmp_path, ["../../etc/passwd", str(outside / "x"), "5", "7"])
    write_mp3(root / "MEMD_audio" / "7.mp3")
    (root / "MEMD_audio" / "5.mp3").symlink_to(outside / "secret.mp3")
    atlas = Atlas.from_deam(root, MelParams(), embed=True)
    assert [e.clip_id for e in atlas.entries] == ["deam_7"]
    reasons = [s["reason"] for s in atlas.provenance["skipped"]]
    assert len(reasons) == 3 and reasons[2] == f"resolves outside the DEAM folder {root}"
    assert atlas.provenance["skipped"][2]["path"] == str(root / "MEMD_audio" / "5.mp3")
    assert atlas.nearest_by_mood(0.0, 0.0).audio is not None
    clips, skipped = deam.list_clips(root)  # the corpus lists the same refusals (they go to the manifest)
    assert [c.song_id for c in clips] == ["7"] and skipped == atlas.provenance["skipped"]
    assert opened and all(p.is_relative_to(root.resolve()) for p in opened)


def test_symlinked_audio_folder_is_refused(tmp_path, opened):
    write_mp3(tmp_path / "elsewhere" / "7.mp3")
    root = crafted_root(tmp_path, ["7"])
    (root / "MEMD_audio").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    songs, skipped = deam_folder.read_deam(root)
    assert songs == [] and skipped == [{"path": str(root / "MEMD_audio" / "7.mp3"),
                                        "reason": f"resolves outside the DEAM folder {root}"}]
    assert len(Atlas.from_deam(root, MelParams(), embed=True)) == 0 and opened == []
