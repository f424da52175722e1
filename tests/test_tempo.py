"""Tempo and bars: the beat grid, MIDI that carries tempo and meter, loops in bars, transitions on bar lines."""
from __future__ import annotations

import io
import json

import mido
import numpy as np
import pretty_midi
import pytest

from moodgen import midi
from moodgen.__main__ import main as cli
from moodgen.config import RollParams
from moodgen.note_synth import roll_events
from moodgen.pipeline import MoodPipeline
from moodgen.tempo import FRAMES_PER_BAR, PRIOR_RANGE, Tempo, grid_share, tempo_for_mood

SR = 22050


@pytest.fixture(scope="module")
def pipe(tiny_checkpoints):
    return MoodPipeline.from_checkpoint(tiny_checkpoints, device="cpu")


def random_roll(frames: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = RollParams().n_keys
    onset = np.where(rng.random((frames, k)) < 0.02, rng.integers(30, 120, (frames, k)), 0).astype(np.uint8)
    active = onset.copy()
    for t in range(1, frames):  # notes ring on for a while unless struck again
        held = (active[t - 1] > 0) & (rng.random(k) < 0.7)
        active[t] = np.where(onset[t] > 0, onset[t], np.where(held, active[t - 1], 0))
    return active, onset


def midi_onsets(data: bytes) -> np.ndarray:
    pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    return np.array([n.start for i in pm.instruments for n in i.notes])


def test_the_grid_in_frames_seconds_and_samples():
    tempo = Tempo(96)
    assert tempo.bar_seconds == 2.5 and tempo.frame_rate == 12.8
    assert tempo.frame_sample(8 * FRAMES_PER_BAR, SR) == 8 * 4 * 60 / 96 * SR == 441000  # 8 bars, to the sample
    assert tempo.onset_time(6) == tempo.frame_time(6)  # on a 16th: in place
    assert tempo.frame_time(6) < tempo.onset_time(7) <= tempo.frame_time(6) + 0.02  # a 32nd later: laid back
    assert tempo.to_bar(3.7) == 2.5 and tempo.to_bar(3.8) == 5.0
    assert grid_share(np.array([0.0, 0.3125, 0.02, 0.08]), tempo) == 0.75  # 16th = 156.25 ms
    with pytest.raises(ValueError, match="bpm"):
        Tempo(0)


def test_the_tempo_prior_follows_arousal_and_the_seed():
    calm = [tempo_for_mood(-1.0, s) for s in range(200)]
    energetic = [tempo_for_mood(1.0, s) for s in range(200)]
    assert calm == [tempo_for_mood(-1.0, s) for s in range(200)]
    assert np.median(calm) < np.median(energetic)
    assert PRIOR_RANGE[0] <= min(calm) and max(energetic) <= PRIOR_RANGE[1]


def test_midi_at_a_tempo_carries_tempo_and_meter_and_its_onsets_sit_on_the_grid():
    active, onset = random_roll()
    tempo = Tempo(96)
    pm = midi.midi_from_roll(active, onset, RollParams(), tempo=tempo)
    buf = io.BytesIO()
    pm.write(buf)
    back = pretty_midi.PrettyMIDI(io.BytesIO(buf.getvalue()))
    times, bpms = back.get_tempo_changes()
    assert list(times) == [0.0] and list(bpms) == [96.0]
    assert [(t.numerator, t.denominator, t.time) for t in back.time_signature_changes] == [(4, 4, 0.0)]
    metas = [m for m in mido.MidiFile(file=io.BytesIO(buf.getvalue())).tracks[0] if m.is_meta]
    assert any(m.type == "set_tempo" and m.tempo == 625000 and mido.tempo2bpm(m.tempo) == 96 for m in metas)
    assert any(m.type == "time_signature" and (m.numerator, m.denominator) == (4, 4) for m in metas)
    starts = np.array([n.start for n in back.instruments[0].notes])
    assert grid_share(starts, tempo) == 1.0
    free = midi.midi_from_roll(active, onset, RollParams())  # the same notes in the engine's own time
    assert len(free.instruments[0].notes) == len(pm.instruments[0].notes)
    assert grid_share(np.array([n.start for n in free.instruments[0].notes]), tempo) < 0.9


def test_a_session_strikes_its_notes_where_the_midi_places_them():
    active, onset = random_roll(seed=1)
    tempo = Tempo(132)
    notes = midi.midi_from_roll(active, onset, RollParams(), tempo=tempo).instruments[0].notes
    events = roll_events(active, onset, np.zeros(RollParams().n_keys), 0, RollParams(), SR, tempo)
    assert events == sorted(events)
    ons = sorted((at, pitch) for at, order, pitch, _ in events if order == 1)
    assert ons == sorted((int(round(n.start * SR)), n.pitch) for n in notes)
    offs = sorted((at, pitch) for at, order, pitch, _ in events if order == 0)
    assert offs == sorted((int(round(n.end * SR)), n.pitch) for n in notes if n.end < len(active) * tempo.frame_seconds)


def test_generate_at_a_tempo(pipe):
    g = pipe.generate(0.5, 0.5, 4.0, seed=3, bpm=96, dry=True)
    assert g.bpm == 96 and len(g.audio) == 4 * SR
    assert grid_share(midi_onsets(g.midi), Tempo(96)) == 1.0
    assert g.params()["bpm"] == 96 and g.params()["time_signature"] == "4/4"
    assert "bpm" not in pipe.generate(0.5, 0.5, 4.0, seed=3, dry=True).params()  # without: as before
    drawn = pipe.generate(0.5, 0.5, 4.0, seed=3, bpm="mood")
    assert drawn.bpm == tempo_for_mood(0.5, 3)


def test_a_loop_in_bars_lasts_exactly_its_bars_and_loops_on_the_downbeat(pipe):
    g = pipe.generate(0.5, 0.5, seed=1, bpm=96, loop_bars=2)
    assert g.loop and len(g.audio) == 2 * 4 * 60 / 96 * SR
    pm = pretty_midi.PrettyMIDI(io.BytesIO(g.midi))
    assert [(m.text, m.time) for m in pm.text_events] == [("loopStart", 0.0), ("loopEnd", 5.0)]
    assert pipe.generate(0.5, 0.5, seed=1, loop_bars=1).bpm is not None  # a loop in bars draws its tempo
    with pytest.raises(ValueError, match="loop_bars"):
        pipe.generate(0.5, 0.5, bpm=96, loop_bars=0)


def test_an_engine_without_notes_refuses_a_tempo_in_one_line(pipe):
    for call in (lambda: pipe.generate(0.5, 0.5, 4.0, engine="mel", bpm=96),
                 lambda: pipe.generate(0.5, 0.5, engine="mel", loop_bars=2),
                 lambda: pipe.journey([(0, 0, 0), (10, 1, 1)], engine="mel", bpm=96)):
        with pytest.raises(ValueError, match="^bpm must be unset: engine 'mel' plays no notes") as err:
            call()
        assert "\n" not in str(err.value)


def test_a_journey_in_bars_changes_key_on_bar_lines(pipe):
    g = pipe.journey([(0, -0.8, 0.0), (4, 0.8, 0.3), (8, 0.8, 0.3)], seed=2, bpm=96, in_bars=True, dry=True)
    assert [w[0] for w in g.waypoints] == [0.0, 10.0, 20.0] and len(g.audio) == 20 * SR
    assert len(g.key_changes) == 2  # starts minor, turns major
    assert all(t % 2.5 == 0 for t, _ in g.key_changes)
    snapped = pipe.journey([(0, -0.8, 0.0), (11.6, 0.8, 0.3)], seed=2, bpm=96, dry=True)
    assert [w[0] for w in snapped.waypoints] == [0.0, 12.5]  # sections begin on bar lines


def test_a_stream_at_a_tempo_ends_chunks_on_16ths_and_changes_key_on_bar_lines(pipe):
    moods = iter([(-0.8, 0.0)] * 3 + [(0.8, 0.3)] * 6)
    live = pipe.stream(lambda: next(moods), chunk_seconds=1.0, seed=2, bpm=96, dry=True)
    chunks = [next(live) for _ in range(9)]
    g = live.close()
    assert all(c.frames.shape[1] % 2 == 0 for c in chunks)
    assert g.bpm == 96 and len(g.key_changes) == 2 and all(t % 2.5 == 0 for t, _ in g.key_changes)
    longer = pipe.extend(g, 3.0)
    assert longer.bpm == 96 and grid_share(midi_onsets(longer.midi), Tempo(96)) == 1.0


def test_cli_bpm_and_loop_bars(tiny_checkpoints, tmp_path):
    out = tmp_path / "loop.wav"
    assert cli(["generate", "--preset", "happy", "--bpm", "96", "--loop-bars", "2", "--checkpoint",
                str(tiny_checkpoints), "--out", str(out)]) == 0
    params = json.loads(out.with_suffix(".json").read_text())
    assert params["bpm"] == 96 and params["loop"] and params["seconds"] == 5.0
    assert mido.MidiFile(str(out.with_suffix(".mid"))).tracks[0][0].tempo == 625000
    assert cli(["generate", "--preset", "happy", "--seconds", "5", "--loop-bars", "2", "--checkpoint",
                str(tiny_checkpoints), "--out", str(tmp_path / "both.wav")]) == 2
    path = tmp_path / "journey.wav"
    assert cli(["journey", "--path", "0:-0.6,-0.6 4:0.7,0.7", "--in-bars", "--bpm", "96", "--checkpoint",
                str(tiny_checkpoints), "--out", str(path)]) == 0
    assert json.loads(path.with_suffix(".json").read_text())["seconds"] == 10.0
