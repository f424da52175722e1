"""EMOPIA corpus -> cache (python -m train.prepare) on synthetic MIDI in EMOPIA's layout; the real folder if present."""
from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from moodgen import audio, midi
from moodgen.config import MelParams, RollParams, to_dict
from moodgen.mood import quadrant_by_number
from train.corpus import emopia
from train.corpus.arrays import decode_flac, encode_flac, flac_length, quantize_mel
from train.corpus.cache import CorpusCache, CorpusError, sha256_file
from train.prepare import PrepareSettings, main, prepare

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "emopia" / "EMOPIA_1.0"
SONG_SPLIT = {"songA": "train", "songB": "train", "songC": "val", "songD": "test"}
CLIPS = ("Q1_songA_0", "Q1_songA_1", "Q2_songB_0", "Q3_songC_0", "Q4_songD_0")
SECONDS = 1.0
ARRAYS = ("mels.npy", "audio_flac.npy", "rolls.npy", "index.json", "manifest.json")


def clip_midi(clip_id: str, variant: int = 0) -> pretty_midi.PrettyMIDI:
    """A short arpeggio: fast and loud for high arousal, major third for positive valence; pedal held half-way."""
    q = quadrant_by_number(int(clip_id[1]))
    step = 0.125 if q.arousal_sign > 0 else 0.25
    third = 4 if q.valence_sign > 0 else 3
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    for i in range(int(SECONDS / step)):
        pitch = 55 + variant + (0, third, 7, 12)[i % 4]
        piano.notes.append(pretty_midi.Note(100 if q.arousal_sign > 0 else 50, pitch, i * step, (i + 1) * step))
    piano.control_changes += [pretty_midi.ControlChange(64, 100, 0.0), pretty_midi.ControlChange(64, 0, SECONDS / 2)]
    pm.instruments.append(piano)
    return pm


def write_emopia(root: Path, clips=CLIPS, song_split=SONG_SPLIT) -> Path:
    (root / "midis").mkdir(parents=True)
    (root / "split").mkdir()
    for i, clip_id in enumerate(clips):
        clip_midi(clip_id, variant=i).write(str(root / "midis" / f"{clip_id}.mid"))
    write_labels(root, clips)
    for split in ("train", "val", "test"):
        with open(root / "split" / f"{split}_SL.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["songID", "num_Q1", "num_Q2", "num_Q3", "num_Q4", "DominantQ"])
            w.writerows([song, 1, 0, 0, 0, 1] for song, s in song_split.items() if s == split)
    return root


def write_labels(root: Path, clips, header=("ID", "4Q", "annotator")) -> None:
    with open(root / "label.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows([c, c[1], "T"][:len(header)] for c in clips)


def run(root: Path, out: Path) -> dict:
    return prepare("emopia", root, out, PrepareSettings(), workers=1)


def stamps(out: Path) -> dict[str, int]:
    files = [out / name for name in ARRAYS] + sorted((out / "shards").iterdir())
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in files}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, Path, dict]:
    """(root, cache folder, summary) of one prepare over the synthetic folder; tests must not modify them."""
    audio.mel_from_audio(np.zeros(4096, dtype=np.float32), MelParams())  # first call is slow; forked workers inherit it
    base = tmp_path_factory.mktemp("emopia")
    root, out = write_emopia(base / "EMOPIA_1.0"), base / "cache"
    return root, out, run(root, out)


@pytest.fixture
def copy(prepared, tmp_path) -> tuple[Path, Path]:
    """A private copy of the prepared folder and cache, for tests that change them."""
    root, out, _ = prepared
    shutil.copytree(root, tmp_path / "EMOPIA_1.0")
    shutil.copytree(out, tmp_path / "cache")
    return tmp_path / "EMOPIA_1.0", tmp_path / "cache"


def test_prepare_end_to_end(prepared):
    root, out, summary = prepared
    assert summary == {"clips": 5, "processed": 5, "skipped": 0, "consolidated": True}
    cache = CorpusCache(out)
    mp, rp = MelParams(), RollParams()
    by_clip: dict[str, list[dict]] = {}
    for it in cache.items:
        by_clip.setdefault(it["clip_id"], []).append(it)
    assert sorted(by_clip) == sorted(CLIPS)
    for clip_id, items in by_clip.items():
        split = SONG_SPLIT[emopia.song_of(clip_id)]
        assert sorted(it["transpose"] for it in items) == ([-2, 0, 2] if split == "train" else [0])
        q = quadrant_by_number(int(clip_id[1]))
        for it in items:
            assert it["split"] == split and it["quadrant"] == q.number and it["licence"] == emopia.LICENCE
            assert np.sign(it["valence"]) == q.valence_sign and np.sign(it["arousal"]) == q.arousal_sign
            assert -1 <= it["valence"] <= 1 and -1 <= it["arousal"] <= 1
            y, mel = cache.audio(it), cache.mel(it)
            assert mel.shape[0] == mp.n_mels and -1 <= mel.min() and mel.max() <= 1
            assert abs(mel.shape[1] - (len(y) // mp.hop_length + 1)) <= 2 * mp.sample_rate // mp.hop_length
            assert len(y) >= SECONDS * mp.sample_rate and np.abs(y).max() > 0.01
            active, onset = cache.roll(it)
            assert active.shape == onset.shape and active.shape[1] == rp.n_keys and onset.max() > 0
        # transposed renders differ from the original, the untransposed audio is shared
        mels = {it["transpose"]: cache.mel(it) for it in items}
        if len(mels) == 3:
            assert not np.allclose(mels[2][:, :mels[0].shape[1]], mels[0][:, :mels[2].shape[1]])
    m = cache.manifest
    assert m["licence"] == emopia.LICENCE and m["settings"]["mel"] == to_dict(mp) and m["skipped"] == []
    assert m["index_sha256"] == sha256_file(out / "index.json") and len(m["manifest_hash"]) == 64
    assert all(len(s["key"]) == 64 for s in m["sources"].values()) and len(m["sources"]) == 5
    assert list((out / "shards").iterdir()) == []  # joined into the arrays, kept once
    assert m["arrays"]["mels.npy"]["shape"] == [sum(it["mel"][1] for it in cache.items), mp.n_mels]


def test_stored_mels_and_audio_match_a_fresh_render(prepared):
    """Audio is stored losslessly; 8-bit mels are within one step (2/255) of the float mel, -1 and 1 exact."""
    root, out, _ = prepared
    cache, mp = CorpusCache(out), MelParams()
    assert cache.mels.raw.dtype == np.uint8 and cache.mels[0:3].dtype == np.float32
    for it in cache.select(transpose=0):
        y = midi.render_midi(midi.apply_sustain(midi.load_midi(root / "midis" / f"{it['clip_id']}.mid")),
                              mp.sample_rate)
        np.testing.assert_array_equal(cache.audio(it), audio.to_pcm16(y) / np.float32(32767.0))
        assert cache.audio_length(it) == len(y)
        np.testing.assert_array_equal(cache.audio(it, 1000, 500), cache.audio(it)[1000:1500])
        mel = audio.mel_from_audio(y, mp).numpy()
        assert np.abs(cache.mel(it) - mel).max() <= 1 / 255 + 1e-6
        assert (mel == -1).any() and (cache.mel(it)[mel == -1] == -1).all()  # silence stays exactly at the floor


def test_mel_code_and_flac_round_trip():
    x = np.concatenate([np.linspace(-1, 1, 1001, dtype=np.float32), [-3.0, 3.0]]).reshape(-1, 1)
    q = quantize_mel(x)
    back = (q.astype(np.float32) - 127.5) / 127.5
    assert q.dtype == np.uint8 and np.abs(back[:-2] - x[:-2]).max() <= 1 / 255 + 1e-7
    assert back[0] == -1 and back[1000] == 1 and back[-2] == -1 and back[-1] == 1
    pcm = (np.random.default_rng(0).standard_normal(50_000) * 3000).astype(np.int16)
    data = encode_flac(pcm)
    np.testing.assert_array_equal(decode_flac(data), pcm)
    np.testing.assert_array_equal(decode_flac(data, 31_234, 5000), pcm[31_234:36_234])
    np.testing.assert_array_equal(decode_flac(data, 49_000, 5000), pcm[49_000:])
    assert flac_length(data) == len(pcm) and len(decode_flac(data, 60_000, 10)) == 0


def test_second_run_does_no_work(prepared):
    root, out, _ = prepared
    before = stamps(out)
    assert run(root, out) == {"clips": 5, "processed": 0, "skipped": 0, "consolidated": False}
    assert stamps(out) == before


def test_changing_one_midi_redoes_only_that_clip(copy):
    root, out = copy
    old = CorpusCache(out)
    old_mels = {(it["clip_id"], it["transpose"]): old.mel(it) for it in old.items}
    clip_midi("Q3_songC_0", variant=5).write(str(root / "midis" / "Q3_songC_0.mid"))
    assert run(root, out)["processed"] == 1
    new = CorpusCache(out)
    for it in new.items:
        same = np.array_equal(new.mel(it), old_mels[it["clip_id"], it["transpose"]])
        assert same == (it["clip_id"] != "Q3_songC_0")


def test_corrupt_and_empty_midi_are_skipped_and_listed(copy):
    root, out = copy
    (root / "midis" / "Q1_songA_2.mid").write_bytes(b"MThd\x00\x00garbage")
    (root / "midis" / "Q2_songB_1.mid").write_bytes(b"")
    write_labels(root, CLIPS + ("Q1_songA_2", "Q2_songB_1", "Q4_songD_1"))  # the last has no file at all
    summary = run(root, out)
    assert summary["processed"] == 2 and summary["skipped"] == 3
    cache = CorpusCache(out)
    assert sorted({it["clip_id"] for it in cache.items}) == sorted(CLIPS)
    reasons = {Path(s["path"]).name: s["reason"] for s in cache.manifest["skipped"]}
    assert set(reasons) == {"Q1_songA_2.mid", "Q2_songB_1.mid", "Q4_songD_1.mid"}
    assert "unreadable MIDI" in reasons["Q1_songA_2.mid"] and "unreadable MIDI" in reasons["Q2_songB_1.mid"]
    assert reasons["Q4_songD_1.mid"] == "MIDI file not found"


def test_run_without_a_manifest_rebuilds_and_clears_leftovers(copy):
    root, out = copy
    index = (out / "index.json").read_text()
    (out / "manifest.json").unlink()  # the arrays cannot be trusted without it
    (out / "shards" / ".Q2_songB_0.npz.tmp999.npz").write_bytes(b"half a shard")
    (out / ".mels.npy.tmp999.npy").write_bytes(b"half an array")
    (out / "audio.npy").write_bytes(b"an array of an older format")
    with pytest.raises(CorpusError, match="missing manifest.json"):
        CorpusCache(out)
    summary = run(root, out)
    assert summary["processed"] == 5 and summary["consolidated"]
    cache = CorpusCache(out)
    assert json.loads((out / "index.json").read_text()) == json.loads(index) and len(cache.items) == 11
    assert sorted(p.name for p in out.iterdir()) == [".lock", *sorted(ARRAYS), "shards"]
    assert list((out / "shards").iterdir()) == []


@pytest.mark.parametrize("damage", ["delete mels.npy", "truncate audio_flac.npy", "truncate rolls.npy",
                                    "edit index.json"])
def test_damaged_arrays_are_rebuilt(copy, damage):
    """The manifest records each array's shape, dtype and size; a rerun checks them rather than trusting it."""
    root, out = copy
    index = json.loads((out / "index.json").read_text())
    action, name = damage.split()
    path = out / name
    if action == "delete":
        path.unlink()
    elif action == "truncate":
        with open(path, "r+b") as f:
            f.truncate(path.stat().st_size - 100)
    else:
        path.write_text(path.read_text().replace('"split": "val"', '"split": "train"'))
    with pytest.raises(CorpusError, match=f"{name}.*rerun python -m train.prepare"):
        CorpusCache(out)
    assert run(root, out) == {"clips": 5, "processed": 5, "skipped": 0, "consolidated": True}
    cache = CorpusCache(out)
    assert cache.items == index and all(cache.mel(it).shape[1] == it["mel"][1] for it in cache.items)


@pytest.mark.parametrize("breakage, message", [
    ("label_column", r"label\.csv: missing column\(s\) 4Q"),
    ("no_midis", r"midis: folder not found"),
    ("midis_is_file", r"midis: expected a folder, found a file"),
    ("split_is_folder", r"train_SL\.csv: expected a CSV file, found a folder"),
    ("no_root", r"EMOPIA_1\.0: folder not found"),
])
def test_broken_folders_name_the_path(tmp_path, breakage, message):
    root = write_emopia(tmp_path / "EMOPIA_1.0", clips=CLIPS[:1])
    if breakage == "label_column":
        write_labels(root, CLIPS[:1], header=("ID",))
    elif breakage in ("no_midis", "midis_is_file"):
        shutil.rmtree(root / "midis")
        if breakage == "midis_is_file":
            (root / "midis").write_text("")
    elif breakage == "split_is_folder":
        (root / "split" / "train_SL.csv").unlink()
        (root / "split" / "train_SL.csv").mkdir()
    else:
        shutil.rmtree(root)
    with pytest.raises(CorpusError, match=message):
        emopia.list_clips(root)


def test_cli_reports_errors_in_one_line(tmp_path, capsys):
    code = main(["--source", "emopia", "--root", str(tmp_path / "missing"), "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(tmp_path / "missing") in err


@pytest.mark.skipif(not (REAL / "label.csv").is_file(), reason=f"EMOPIA not found at {REAL}")
def test_real_emopia_listing():
    clips, skipped = emopia.list_clips(REAL)
    assert len(clips) == 1078 and skipped == []
    splits_of_song: dict[str, set[str]] = {}
    for c in clips:
        splits_of_song.setdefault(c.song_id, set()).add(c.split)
        assert c.quadrant == int(c.clip_id[1]) and c.path.is_file()
    assert all(len(s) == 1 for s in splits_of_song.values())
    counts = Counter(c.split for c in clips)
    assert counts["train"] > counts["val"] > 0 and counts["test"] > 0


def test_an_edited_manifest_is_refused_by_its_hash(copy):
    """An edited sample_rate was trained on and exported into the weights, which still claimed the old hash."""
    _, out = copy
    manifest = json.loads((out / "manifest.json").read_text())
    assert CorpusCache(out).manifest_hash == manifest["manifest_hash"]
    manifest["settings"]["mel"]["sample_rate"] = 16000
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CorpusError, match="manifest.json was edited after it was written"):
        CorpusCache(out)
