"""Parts and stems: the skyline split, stems that add up to the mix, a MIDI track and instrument per part,
intensity layering, and engines without notes saying so."""
from __future__ import annotations

import io
import json

import numpy as np
import pretty_midi
import pytest

from moodgen.__main__ import main as cli
from moodgen.layers import master_stems
from moodgen.mastering import Mastering, master
from moodgen.parts import PARTS, layer_gains, split_parts
from moodgen.pipeline import MoodPipeline

SR = 22050


@pytest.fixture(scope="module")
def pipe(tiny_checkpoints):
    return MoodPipeline.from_checkpoint(tiny_checkpoints, device="cpu")


def level_db(x: np.ndarray, reference: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)) /
                               np.sqrt(np.mean(reference.astype(np.float64) ** 2))))


def note(pitch: int, start: float, end: float) -> pretty_midi.Note:
    return pretty_midi.Note(80, pitch, start, end)


def test_the_skyline_split_gives_every_note_one_part():
    notes = [note(48, 0, 2), note(64, 0, 1), note(67, 0, 1), note(72, 0, 0.5),  # a chord: bass, harmony, melody
             note(74, 0.5, 1),  # alone, above all still sounding: melody
             note(62, 1, 1.5),  # alone, under the held bass? no: above it, under nothing -> melody
             note(55, 1.2, 2), note(43, 2, 3)]  # 55 under the held 62 and over the bass: harmony; 43 lowest: bass
    parts = split_parts(notes)
    pitches = {p: [n.pitch for n in parts[p]] for p in PARTS}
    assert pitches == {"melody": [72, 74, 62], "harmony": [64, 67, 55], "bass": [48, 43]}
    assert sorted(n.pitch for p in PARTS for n in parts[p]) == sorted(n.pitch for n in notes)


def test_intensity_brings_the_parts_in_harmony_first_then_bass_then_melody():
    g = layer_gains(np.array([0.0, 0.35, 0.6, 1.0]))
    assert list(g["harmony"]) == [1, 1, 1, 1]
    assert g["bass"][0] == 0 and 0 < g["bass"][1] < 1 and g["bass"][2] == 1
    assert g["melody"][1] == 0 and 0 < g["melody"][2] < 1 and g["melody"][3] == 1


def test_mastered_stems_add_up_to_the_mastered_mix():
    rng = np.random.default_rng(0)
    parts = (rng.standard_normal((3, SR * 2)) * np.array([[0.5], [0.3], [0.4]])).astype(np.float32)  # limiter on
    settings = Mastering(gain_db=12.0, reverb_wet=0.1)
    mix, stems = master_stems(parts, SR, settings)
    assert np.allclose(mix, master(parts.sum(axis=0), SR, settings), atol=1e-5)  # the mix as `master` makes it
    assert level_db(stems.sum(axis=0) - mix, mix) < -60


@pytest.mark.parametrize("loop", [False, True])
def test_stems_add_up_to_the_mix_each_on_its_track_and_instrument(pipe, loop):
    kwargs = {"loop_bars": 2} if loop else {"seconds": 4.0}
    g = pipe.generate(0.6, 0.6, seed=4, bpm=120, stems=True, part_instruments={"bass": "strings"}, **kwargs)
    assert set(g.stems) == set(PARTS) and all(len(s) == len(g.audio) for s in g.stems.values())
    assert level_db(sum(g.stems.values()) - g.audio, g.audio) < -60
    tracks = pretty_midi.PrettyMIDI(io.BytesIO(g.midi)).instruments
    assert [(t.name, t.program) for t in tracks] == [("melody", 0), ("harmony", 0), ("bass", 48)]
    parts = g.params()["render"]["parts"]
    assert parts["bass"] == {"track": 2, "instrument": "strings", "program": 48}


def test_intensity_from_arousal_silences_the_upper_layers_of_a_calm_clip(pipe):
    g = pipe.generate(-0.6, -0.9, 4.0, seed=4, stems=True, intensity="arousal")  # intensity 0.05
    assert not g.stems["melody"].any() and not g.stems["bass"].any()
    assert level_db(sum(g.stems.values()) - g.audio, g.audio) < -60


def test_bad_layering_and_engines_without_notes_are_refused_in_one_line(pipe):
    with pytest.raises(ValueError, match="^stems must be unset: engine 'mel' plays no notes"):
        pipe.generate(0.5, 0.5, 4.0, engine="mel", stems=True)
    with pytest.raises(ValueError, match="^part_instruments"):
        pipe.generate(0.5, 0.5, 4.0, part_instruments={"drums": "piano"})
    with pytest.raises(ValueError, match="^intensity"):
        pipe.generate(0.5, 0.5, 4.0, intensity=2)


def test_cli_stems_writes_a_wav_per_part(tiny_checkpoints, tmp_path):
    out = tmp_path / "clip.wav"
    assert cli(["generate", "--preset", "happy", "--seconds", "3", "--stems", "--part-instruments",
                "melody=vibraphone", "--checkpoint", str(tiny_checkpoints), "--out", str(out)]) == 0
    assert all((tmp_path / f"clip.{p}.wav").is_file() for p in PARTS)
    params = json.loads(out.with_suffix(".json").read_text())
    assert params["render"]["parts"]["melody"]["instrument"] == "vibraphone" and params["render"]["stems"]
    assert cli(["generate", "--preset", "happy", "--seconds", "3", "--stems", "--checkpoint",
                str(tiny_checkpoints), "--out", str(out)]) == 2  # the stems are in the way without --force


def test_a_clip_with_layers_is_not_extended_in_one_voice(pipe):
    g = pipe.generate(0.5, 0.5, 3.0, seed=1, stems=True)
    with pytest.raises(ValueError,
                       match="^generation: its parts play as layers made it in a way that extend cannot continue"):
        pipe.extend(g, 2.0)
