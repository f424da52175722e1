"""Reference atlas: built from a tiny synthetic cache of rendered MIDI, saved and loaded, queried; DEAM folder atlas."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

import moodgen.atlas as atlas_file
from moodgen import audio, midi
from moodgen.atlas import Atlas, densest_window, embedding_function, mel_stats_embedding
from moodgen.checkpoint import CheckpointError
from moodgen.config import MelParams, RollParams, to_dict
from moodgen.mood import quadrant_by_number
from train.atlas import build_atlas, main
from train.corpus.cache import CorpusCache, CorpusError, Shard, SourceClip, consolidate, save_shard, shard_path

ROLL = RollParams()
MEL = MelParams()
EXCERPT_S = 3.0  # short clips keep the test fast; the shipped atlas uses 10 s
SECONDS = 6.0
DENSE_FROM_S = 2.0  # every clip is sparse for 2 s, then dense: the excerpt must start there
REAL_ATLAS = Path(__file__).resolve().parents[1] / "checkpoints" / "atlas.npz"


def synthetic_midi(quadrant: int) -> pretty_midi.PrettyMIDI:
    """A clip in its own register (so clips sound different): one note a second, then eight a second."""
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    base = 36 + 10 * quadrant
    t = 0.0
    while t < SECONDS - 0.2:
        step = 1.0 if t < DENSE_FROM_S else 0.125
        piano.notes.append(pretty_midi.Note(60 + 10 * quadrant, base + int(t * 8) % 12, t, t + step))
        t += step
    pm.instruments.append(piano)
    return pm


def make_note_cache(root: Path, source: str = "emopia") -> CorpusCache:
    clips, labels = [], {}
    for quadrant in (1, 2, 3, 4):
        q = quadrant_by_number(quadrant)
        clip_id = f"Q{quadrant}_song{quadrant}_0"
        pm = synthetic_midi(quadrant)
        y = midi.render_midi(pm, MEL.sample_rate)
        active, onset = midi.roll_from_midi(pm, ROLL)
        mel = audio.mel_from_audio(y, MEL).numpy().T.astype(np.float16)
        shard_path(root, clip_id).parent.mkdir(parents=True, exist_ok=True)
        save_shard(shard_path(root, clip_id), Shard("k", {0: mel}, audio.to_pcm16(y), np.stack([active, onset], 1)))
        clips.append(SourceClip(clip_id, root / f"{clip_id}.mid", source, f"song{quadrant}", "train", quadrant,
                                "test licence"))
        labels[clip_id] = (0.2 * q.valence_sign * quadrant, 0.15 * q.arousal_sign * quadrant)
    consolidate(root, clips, labels, {"settings": {"mel": to_dict(MEL), "roll": to_dict(ROLL), "gain_db": 0.0}})
    return CorpusCache(root)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> CorpusCache:
    return make_note_cache(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def atlas(cache) -> Atlas:
    return build_atlas(cache, seconds=EXCERPT_S)


def test_densest_window():
    onset = np.zeros((50, ROLL.n_keys), dtype=np.uint8)
    onset[[1, 30, 32, 33, 34], 5] = 90
    assert densest_window(onset, 10) == 25  # earliest window holding frames 30-34
    assert densest_window(onset[:8], 10) == 0


def test_embedding_is_pure_and_shaped():
    mel = np.linspace(-1, 1, MEL.n_mels * 40, dtype=np.float32).reshape(MEL.n_mels, 40)
    e = mel_stats_embedding(mel)
    assert e.shape == (32,) and e.dtype == np.float32
    np.testing.assert_array_equal(e, embedding_function("mel_stats16")(mel.copy()))
    with pytest.raises(ValueError, match="not built in"):
        embedding_function("judge")


def test_build_picks_the_densest_window_of_notes(cache, atlas):
    assert len(atlas) == 4 and atlas.embedding_name == "mel_stats16"
    assert atlas.provenance["data_manifest_hash"] == cache.manifest_hash
    frames = ROLL.frames_for(EXCERPT_S)
    for i, item in enumerate(cache.select(transpose=0)):
        e = atlas.entries[i]
        assert (e.clip_id, e.quadrant, e.licence) == (item["clip_id"], item["quadrant"], "test licence")
        assert (e.valence, e.arousal) == (item["valence"], item["arousal"])
        active, onset = cache.roll(item)
        start = densest_window(onset, frames)  # onsets fall on every other frame: a tie may start one early
        assert start in (ROLL.frames_for(DENSE_FROM_S) - 1, ROLL.frames_for(DENSE_FROM_S))
        assert atlas.excerpt_frames[i] == frames
        np.testing.assert_array_equal(atlas.excerpts[i, 0], active[start:start + frames])
        np.testing.assert_array_equal(atlas.excerpts[i, 1], onset[start:start + frames])


def test_save_load_identical(atlas, tmp_path):
    path = atlas.save(tmp_path / "atlas.npz")
    loaded = Atlas.load(path)
    assert loaded.entries == atlas.entries
    assert (loaded.mel_params, loaded.roll_params, loaded.embedding_name, loaded.gain_db, loaded.provenance) == \
        (atlas.mel_params, atlas.roll_params, atlas.embedding_name, atlas.gain_db, atlas.provenance)
    np.testing.assert_array_equal(loaded.embeddings, atlas.embeddings)
    np.testing.assert_array_equal(loaded.excerpts, atlas.excerpts)
    np.testing.assert_array_equal(loaded.excerpt_frames, atlas.excerpt_frames)
    assert not list(tmp_path.glob(".*tmp*"))
    # dense rolls compress well: well under 8 KB a clip keeps 1,078 EMOPIA clips far below 15 MB
    assert path.stat().st_size < 4 * 8_000


def test_nearest_by_mood(atlas):
    for e in atlas.entries:
        match = atlas.nearest_by_mood(e.valence, e.arousal)
        assert match.entry == e and match.distance == 0.0 and match.by == "mood"
    q4 = next(e for e in atlas.entries if e.quadrant == 4)  # the clip furthest into the bottom right
    match = atlas.nearest_by_mood(1.0, -1.0)
    assert match.entry == q4 and match.distance == pytest.approx(np.hypot(1.0 - q4.valence, -1.0 - q4.arousal))
    with pytest.raises(ValueError, match="valence"):
        atlas.nearest_by_mood(1.5, 0.0)


def test_match_record_is_json(atlas):
    e = atlas.entries[2]
    match = atlas.nearest_by_mood(e.valence + 0.1, e.arousal)
    record = match.record()
    assert record == {"clip_id": e.clip_id, "source": e.source, "licence": e.licence, "valence": e.valence,
                      "arousal": e.arousal, "distance": pytest.approx(0.1), "by": "mood"}
    assert json.loads(json.dumps(record, allow_nan=False)) == record


def test_match_renders_the_excerpt_and_nearest_by_sound_finds_it(atlas):
    for e in atlas.entries:
        match = atlas.nearest_by_mood(e.valence, e.arousal)
        assert match.audio.dtype == np.float32 and np.abs(match.audio).max() > 0.01
        assert match.audio.size == EXCERPT_S * MEL.sample_rate
        assert match.mel.shape == (MEL.n_mels, match.audio.size // MEL.hop_length + 1)
        by_sound = atlas.nearest_by_sound(atlas.embed(match.mel))
        assert by_sound.entry == e and by_sound.by == "sound"
    with pytest.raises(ValueError, match="embedding must be"):
        atlas.nearest_by_sound(np.zeros(5))


def test_an_entry_is_rendered_once_and_shared(atlas):
    e = atlas.entries[0]
    first, again = atlas.nearest_by_mood(e.valence, e.arousal), atlas.nearest_by_mood(e.valence, e.arousal)
    assert first.audio is again.audio and first.mel is again.mel
    np.testing.assert_array_equal(first.audio, atlas.audio_of(0))


def test_only_shippable_sources(tmp_path):
    with pytest.raises(CorpusError, match="vgmidi may not ship"):
        build_atlas(make_note_cache(tmp_path, source="vgmidi"))


def test_cli(cache, tmp_path, capsys):
    out = tmp_path / "ckpt" / "atlas.npz"
    assert main(["--cache", str(cache.root), "--out", str(out)]) == 0
    assert "4 clips" in capsys.readouterr().out and len(Atlas.load(out)) == 4
    assert main(["--cache", str(tmp_path / "none"), "--out", str(out)]) == 2


@pytest.mark.skipif(not REAL_ATLAS.is_file(), reason="checkpoints/atlas.npz not built")
def test_shipped_atlas_size_and_content():
    assert REAL_ATLAS.stat().st_size <= 15_000_000
    atlas = Atlas.load(REAL_ATLAS)
    assert len(atlas) > 1000 and {e.source for e in atlas.entries} == {"emopia"}
    assert {e.quadrant for e in atlas.entries} == {1, 2, 3, 4}


def test_deam_atlas_with_synthetic_mp3s(tmp_path):
    from test_deam import REAL, WITH_AUDIO, official_root  # skips below when the real annotations are absent
    if not REAL.is_dir():
        pytest.skip(f"real DEAM annotations not found in {REAL}")
    root = official_root(tmp_path)
    atlas = Atlas.from_deam(root, MEL, embed=True)
    assert len(atlas) == 1802 and all(e.source == "deam" for e in atlas.entries)
    song2 = next(e for e in atlas.entries if e.clip_id == "deam_2")
    match = atlas.nearest_by_mood(song2.valence, song2.arousal)  # ties go to the first entry: song 2 is first
    assert match.entry == song2 and match.distance == 0.0
    assert match.audio.size == 2 * MEL.sample_rate  # the file is shorter than the 10 s excerpt
    assert match.mel.shape == (MEL.n_mels, match.audio.size // MEL.hop_length + 1)
    by_sound = atlas.nearest_by_sound(atlas.embed(match.mel))
    assert by_sound.entry == song2 and by_sound.distance < 1e-3
    silent = next(e for e in atlas.entries[1:] if e.clip_id.removeprefix("deam_") not in WITH_AUDIO
                  and atlas.nearest_by_mood(e.valence, e.arousal).entry == e)
    match = atlas.nearest_by_mood(silent.valence, silent.arousal)
    assert match.audio is None and match.mel is None
    assert np.isnan(atlas.embeddings[atlas.entries.index(silent)]).all()
    loaded = Atlas.load(atlas.save(tmp_path / "deam_atlas.npz"))
    assert loaded.entries == atlas.entries and loaded.audio_paths == atlas.audio_paths


def test_an_atlas_is_sized_from_its_zip_directory_and_array_headers_before_anything_is_inflated(atlas, tmp_path,
                                                                                               monkeypatch):
    """A 6.8 MB atlas.npz inflated to 3.35 GB before it was refused; a header's shape was allocated unread."""
    path = atlas.save(tmp_path / "atlas.npz")
    lie = tmp_path / "lie.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**10, 32)})
    with zipfile.ZipFile(path) as z, zipfile.ZipFile(lie, "w", zipfile.ZIP_DEFLATED) as out:
        for member in z.infolist():
            out.writestr(member.filename, header.getvalue() + bytes(64) if member.filename == "embeddings.npy"
                         else z.read(member))
    inflated = []
    monkeypatch.setattr(np, "load", lambda *args, **kwargs: inflated.append(args))
    with pytest.raises(CheckpointError, match=r"embeddings.npy claims a \(10000000000, 32\) float32 array, more than"):
        Atlas.load(lie)
    monkeypatch.setattr(atlas_file, "MAX_ARRAY_BYTES", 5000)  # the excerpts inflate to more
    with pytest.raises(CheckpointError, match=r"excerpts.npy inflates to \d+ bytes, over the 5000-byte limit"):
        Atlas.load(path)
    monkeypatch.setattr(atlas_file, "MAX_ARRAYS", 3)
    with pytest.raises(CheckpointError, match=r"10 arrays of \d+ bytes inflated, over the limits \(3 arrays"):
        Atlas.load(path)
    assert not inflated
