"""MoodPipeline and the `python -m moodgen generate` CLI on a tiny random-weights checkpoint."""
from __future__ import annotations

import hashlib
import io
import json
import threading
import time

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from moodgen import render
from moodgen.__main__ import main as cli
from moodgen.checkpoint import save_component
from moodgen.config import MelParams, RollParams, to_dict
from moodgen.pipeline import CheckpointNotFound, MoodPipeline, resolve_checkpoint_dir
from moodgen.render import true_peak_dbtp
from moodgen.sidecar import read_sidecar, remake
from tests.conftest import other_soundfont, tiny_note_model


@pytest.fixture(scope="module")
def pipe(tiny_checkpoints):
    return MoodPipeline.from_checkpoint(tiny_checkpoints, device="cpu")


def test_engines_and_default(pipe):
    assert pipe.engines == ("notes", "mel")
    assert pipe.default_engine == "notes"


@pytest.mark.parametrize("engine", ["notes", "mel"])
def test_generate_shapes_and_determinism(pipe, engine):
    p = MelParams()
    a = pipe.generate(0.7, 0.7, seconds=3.0, seed=1, engine=engine)
    assert a.audio.shape == (3 * p.sample_rate,)
    assert a.audio.dtype == np.float32 and np.abs(a.audio).max() <= 1.0
    assert a.mel.shape[0] == p.n_mels and abs(a.mel.shape[1] - p.frames_for(3.0)) <= 1
    assert (a.midi is not None) == (engine == "notes")
    pipe._cache.clear()  # force a recomputation: identical inputs must give identical outputs
    b = pipe.generate(0.7, 0.7, seconds=3.0, seed=1, engine=engine)
    assert a is not b and np.array_equal(a.audio, b.audio) and np.array_equal(a.mel, b.mel)
    c = pipe.generate(0.7, 0.7, seconds=3.0, seed=2, engine=engine)
    assert not np.array_equal(a.mel, c.mel)


def test_cache_is_an_lru_bounded_in_bytes(tiny_checkpoints):
    one = MoodPipeline.from_checkpoint(tiny_checkpoints).generate(0.1, 0.1, seconds=1.0, seed=0, steps=1).nbytes
    pipe = MoodPipeline.from_checkpoint(tiny_checkpoints, cache_bytes=2 * one + one // 2)
    first = pipe.generate(0.1, 0.1, seconds=1.0, seed=0, steps=1)
    assert pipe.generate(0.1, 0.1, seconds=1.0, seed=0, steps=1) is first
    pipe.generate(0.2, 0.1, seconds=1.0, seed=0, steps=1)
    pipe.generate(0.3, 0.1, seconds=1.0, seed=0, steps=1)
    assert len(pipe._cache) == 2
    assert pipe.generate(0.1, 0.1, seconds=1.0, seed=0, steps=1) is not first


@pytest.mark.parametrize("kwargs, message", [
    ({"valence": float("nan")}, "valence must be a number"),
    ({"arousal": 1.5}, "arousal must be in"),
    ({"seconds": 0.2}, "seconds must be between"),
    ({"seconds": 31}, "seconds must be between"),
    ({"steps": 0}, "steps must be between"),
    ({"guidance": -1}, "guidance must be between"),
    ({"engine": "tape"}, "engine must be one of notes, mel .in this checkpoint., got 'tape'"),
    ({"seed": 1.5}, "seed must be an integer"),
    ({"seed": "x" * 10_000}, r"seed must be an integer in \[0, 2147483647\], got 'x{39}\.\.\.$"),
    ({"steps": float("nan")}, "steps must be an integer .* got NaN"),
    ({"seconds": None}, "seconds must be a number"),
])
def test_bad_input_is_refused(pipe, kwargs, message):
    args = {"valence": 0.0, "arousal": 0.0, "seconds": 2.0} | kwargs
    with pytest.raises(ValueError, match=message):
        pipe.generate(**args)


def test_missing_checkpoint_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.delenv("MOODGEN_HF_REPO", raising=False)
    with pytest.raises(CheckpointNotFound, match="python -m train"):
        resolve_checkpoint_dir(tmp_path)


def test_cli_writes_wav_json_midi_identically(tiny_checkpoints, tmp_path):
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run / "clip.wav"
        assert cli(["generate", "--preset", "sad", "--seconds", "2", "--seed", "3", "--checkpoint",
                    str(tiny_checkpoints), "--out", str(out)]) == 0
        outs.append(out)
    a, b = outs
    assert a.read_bytes() == b.read_bytes()
    assert a.with_suffix(".mid").read_bytes() == b.with_suffix(".mid").read_bytes()
    wav, sr = sf.read(a, dtype="int16")
    assert sr == MelParams().sample_rate and len(wav) == 2 * sr
    params = json.loads(a.with_suffix(".json").read_text())
    assert params["preset"] == "sad" and params["valence"] == -0.7 and params["seed"] == 3
    assert params["key"] == "A minor"  # drawn by the tiny prior for negative valence
    keyed = tmp_path / "keyed.wav"
    assert cli(["generate", "--preset", "sad", "--seconds", "2", "--key", "D major", "--checkpoint",
                str(tiny_checkpoints), "--out", str(keyed)]) == 0
    assert json.loads(keyed.with_suffix(".json").read_text())["key"] == "D major"
    assert len(params["checkpoint_sha256"]) == 64
    pretty_midi.PrettyMIDI(str(a.with_suffix(".mid")))  # a readable MIDI file


def test_cli_errors(tiny_checkpoints, tmp_path, capsys):
    assert cli(["generate", "--valence", "2", "--arousal", "0", "--checkpoint", str(tiny_checkpoints),
                "--out", str(tmp_path / "x.wav")]) == 2
    assert "valence must be in [-1, 1]" in capsys.readouterr().err
    assert cli(["generate", "--preset", "happy", "--checkpoint", str(tmp_path / "none")]) == 2
    assert "no moodgen checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("engine", ["notes", "mel"])
def test_key_comes_from_the_prior_or_the_caller(pipe, engine):
    happy = pipe.generate(0.8, 0.5, seconds=2.0, seed=4, steps=2, engine=engine)
    sad = pipe.generate(-0.8, -0.5, seconds=2.0, seed=4, steps=2, engine=engine)
    assert (happy.key, sad.key) == ("C major", "A minor")  # the tiny prior: valence sign -> key
    assert happy.params()["key"] == "C major"
    chosen = pipe.generate(0.8, 0.5, seconds=2.0, seed=4, steps=2, engine=engine, key="F# minor")
    assert chosen.key == "F# minor" and not np.array_equal(chosen.mel, happy.mel)
    same = pipe.generate(0.8, 0.5, seconds=2.0, seed=4, steps=2, engine=engine, key="C major")
    assert np.array_equal(same.audio, happy.audio)  # naming the key the prior drew gives the same clip
    with pytest.raises(ValueError, match="write it like 'C major'"):
        pipe.generate(0.0, 0.0, seconds=2.0, engine=engine, key="Z major")


def test_key_is_refused_by_an_engine_without_keys(tmp_path):
    save_component(tmp_path / "note_model.safetensors", tiny_note_model(0), MelParams(),
                   {"roll_params": to_dict(RollParams()), "sampler": {"guidance": 1.0}})
    pipe = MoodPipeline.from_checkpoint(tmp_path)
    assert pipe.generate(0.5, 0.5, seconds=1.0).key is None
    with pytest.raises(ValueError, match="not conditioned on a key"):
        pipe.generate(0.5, 0.5, seconds=1.0, key="C major")


def test_instruments_soundfont_and_mastering_are_recorded(pipe):
    dry = pipe.generate(0.7, 0.7, seconds=2.0, seed=5, engine="notes", instrument="harp", dry=True)
    mastered = pipe.generate(0.7, 0.7, seconds=2.0, seed=5, engine="notes", instrument="harp")
    render = mastered.params()["render"]
    assert render["instrument"] == "harp" and render["program"] == 46 and len(render["soundfont_sha256"]) == 64
    assert render["mastering"]["gain_db"] > 0 and dry.params()["render"]["mastering"] == "dry"
    assert pretty_midi.PrettyMIDI(io.BytesIO(mastered.midi)).instruments[0].program == 46  # the MIDI says harp
    # a fixed gain, louder (less than the gain: the limiter holds the loudest notes under the true-peak ceiling)
    assert np.sqrt(np.mean(mastered.audio ** 2)) > 1.5 * np.sqrt(np.mean(dry.audio ** 2))
    assert true_peak_dbtp(mastered.audio, mastered.sample_rate) <= -1.0 + 1e-3
    pipe._cache.clear()
    again = pipe.generate(0.7, 0.7, seconds=2.0, seed=5, engine="notes", instrument="harp")
    assert np.array_equal(again.audio, mastered.audio)  # mastering is deterministic
    with pytest.raises(ValueError, match="instrument must be one of piano, .*, got 'tuba'"):
        pipe.generate(0.0, 0.0, seconds=2.0, engine="notes", instrument="tuba")
    with pytest.raises(ValueError, match="instrument must be unset for engine 'mel'"):
        pipe.generate(0.0, 0.0, seconds=2.0, engine="mel", instrument="harp")


class CountingLock:
    """A lock that counts how often it was taken, to know when every caller has looked for a running request."""

    def __init__(self) -> None:
        self.lock, self.taken = threading.Lock(), 0

    def __enter__(self):
        self.lock.acquire()
        self.taken += 1

    def __exit__(self, *exc):
        self.lock.release()


def callers(n: int, call) -> list:
    """Run `call(i)` on n threads of their own; the results in order."""
    results = [None] * n

    def run(i):
        results[i] = call(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_work_runs_on_the_pipelines_own_threads(tiny_checkpoints):
    pipe = MoodPipeline.from_checkpoint(tiny_checkpoints, workers=2)
    eng, seen = pipe.engine("notes"), set()
    generate = eng.generate

    def recording(*args):
        seen.add(threading.current_thread().name)
        return generate(*args)

    eng.generate = recording
    gens = callers(8, lambda i: pipe.generate(0.1 * i - 0.4, 0.2, seconds=1.0, seed=i))
    assert len({id(g) for g in gens}) == 8
    assert seen and len(seen) <= 2 and all(name.startswith("moodgen") for name in seen)
    assert threading.current_thread().name not in seen


def test_streams_warmup_and_run_compute_on_the_one_worker_thread(tiny_checkpoints):
    pipe = MoodPipeline.from_checkpoint(tiny_checkpoints)  # one worker unless asked
    eng, seen = pipe.engine("notes"), []
    session = eng.session

    def recording(*args, **kwargs):
        seen.append(threading.current_thread().name)
        made = session(*args, **kwargs)
        advance = made.advance
        made.advance = lambda *a, **k: (seen.append(threading.current_thread().name), advance(*a, **k))[1]
        return made

    eng.session = recording
    pipe.warmup()
    live = pipe.stream(lambda: (0.5, 0.5), chunk_seconds=0.5)
    assert next(live).audio.size and live.close() is not None
    pipe.journey([(0.0, -0.5, 0.0), (10.0, 0.5, 0.5)], seed=2)
    assert len(seen) >= 6 and len(set(seen)) == 1 and seen[0].startswith("moodgen")
    # from the worker itself, run() calls at once instead of waiting on the busy pool
    assert pipe.run(lambda: pipe.run(threading.current_thread)).name == seen[0]


def test_identical_requests_at_once_share_one_computation(tiny_checkpoints):
    pipe = MoodPipeline.from_checkpoint(tiny_checkpoints, cache_bytes=0)  # nothing cached: only sharing can help
    pipe._lock = CountingLock()
    eng, release, calls = pipe.engine("notes"), threading.Event(), []
    generate = eng.generate

    def held(*args):
        calls.append(args)
        release.wait()
        return generate(*args)

    eng.generate = held

    def release_when_all_have_looked():
        while pipe._lock.taken < 6:  # each caller takes the lock once before waiting
            time.sleep(0.01)
        release.set()

    opener = threading.Thread(target=release_when_all_have_looked)
    opener.start()
    gens = callers(6, lambda i: pipe.generate(0.3, -0.2, seconds=1.0, seed=5))
    opener.join()
    assert len(calls) == 1 and all(g is gens[0] for g in gens)
    assert pipe._in_flight == {}
    with pytest.raises(ValueError, match="workers must be at least 1"):
        MoodPipeline(pipe.engines_by_name, workers=0)


@pytest.fixture
def two_soundfonts(tiny_checkpoints, tmp_path, monkeypatch):
    """A pipeline that finds the bundled soundfont (its default) and Other.sf2."""
    other = other_soundfont(tmp_path)
    monkeypatch.setattr(render, "find_soundfonts", lambda: [other, render.bundled_soundfont()])
    return MoodPipeline.from_checkpoint(tiny_checkpoints, soundfont=render.bundled_soundfont())


def test_the_soundfont_is_chosen_per_request(two_soundfonts, tmp_path):
    pipe, bundled = two_soundfonts, render.bundled_soundfont()
    assert pipe.soundfonts == (bundled.name, "Other.sf2") and pipe.engine("mel").soundfonts == ()
    default = pipe.generate(0.7, 0.7, seconds=2.0, seed=3, engine="notes")
    other = pipe.generate(0.7, 0.7, seconds=2.0, seed=3, engine="notes", soundfont="Other.sf2")
    assert pipe.generate(0.7, 0.7, seconds=2.0, seed=3, engine="notes", soundfont=bundled.name) is default
    assert other is not default and not np.allclose(other.audio, default.audio, atol=1e-3)  # its own cache entry
    assert default.midi == other.midi  # the same notes, played on another soundfont
    other.save(tmp_path / "other.wav")
    played = json.loads((tmp_path / "other.json").read_text())["render"]
    assert played["soundfont"] == "Other.sf2"
    assert played["soundfont_sha256"] == hashlib.sha256((tmp_path / "Other.sf2").read_bytes()).hexdigest()
    assert default.params()["render"]["soundfont"] == bundled.name
    pipe._cache.clear()
    again = pipe.generate(0.7, 0.7, seconds=2.0, seed=3, engine="notes", soundfont="Other.sf2")
    assert np.array_equal(again.audio, other.audio)
    # sessions play it too, and engines without notes ignore it
    journey = pipe.journey([(0, -0.5, -0.5), (10, 0.5, 0.5)], seed=3, soundfont="Other.sf2")
    assert journey.params()["render"]["soundfont"] == "Other.sf2"
    mel = pipe.generate(0.7, 0.7, seconds=2.0, seed=3, engine="mel", steps=2, soundfont="Other.sf2")
    assert "soundfont" not in mel.params()["render"]


def test_a_bad_soundfont_name_names_the_field_and_the_choices(two_soundfonts):
    with pytest.raises(ValueError, match=r"soundfont must be one of TimGM6mb.sf2, Other.sf2, got 'FluidR3_GM.sf2'"):
        two_soundfonts.generate(0.0, 0.0, seconds=2.0, soundfont="FluidR3_GM.sf2")
    with pytest.raises(ValueError, match="soundfont must be one of"):
        two_soundfonts.stream(lambda: (0.0, 0.0), engine="mel", soundfont="/usr/share/sounds/sf2/x.sf2")


def test_a_sidecar_replays_on_the_soundfont_it_names(two_soundfonts, tmp_path):
    made = two_soundfonts.generate(0.3, -0.2, seconds=2.0, seed=6, engine="notes", soundfont="Other.sf2")
    made.save(tmp_path / "clip.wav")
    again = remake(two_soundfonts, read_sidecar(tmp_path / "clip.json"))
    assert again.render["soundfont"] == "Other.sf2" and np.array_equal(again.audio, made.audio)


class RecordingJudge:
    """A judge that keeps the mel it was last given."""

    def predict(self, mel: np.ndarray) -> tuple[float, float]:
        self.heard = mel
        return 0.0, 0.0


def test_notes_played_otherwise_are_judged_as_the_corpus_piano_plays_them(two_soundfonts):
    pipe, eng = two_soundfonts, two_soundfonts.engine("notes")
    pipe.judge = judge = RecordingJudge()
    args = dict(valence=0.7, arousal=0.7, seconds=3.0, seed=5, engine="notes")
    piano = pipe.generate(**args)
    assert eng.as_the_corpus_plays(piano.midi, len(piano.audio), piano.render) is None  # the corpus' sound itself
    assert judge.heard is piano.mel  # judged as played
    dry = pipe.generate(**args, dry=True).audio
    for choice in ({"soundfont": "Other.sf2"}, {"instrument": "strings"}):
        played = pipe.generate(**args, **choice)
        corpus = eng.as_the_corpus_plays(played.midi, len(played.audio), played.render)
        envelope = [np.sqrt((x[:len(x) // 1024 * 1024].reshape(-1, 1024) ** 2).mean(axis=1)) for x in (corpus, dry)]
        assert corpus.shape == dry.shape and np.corrcoef(*envelope)[0, 1] > 0.9  # the same notes (via MIDI ticks)
        # the judge heard those notes on the corpus' piano, far nearer the piano clip than what was played
        assert np.abs(judge.heard - piano.mel).mean() < 0.5 * np.abs(played.mel - piano.mel).mean()
