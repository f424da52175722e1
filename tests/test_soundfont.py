"""moodgen.soundfont: a SoundFont 2 cut down to the programs played sounds as the whole file does."""
from __future__ import annotations

import shutil

import numpy as np
import pretty_midi
import pytest
import tinysoundfont

from moodgen import render, soundfont

SR = 22050
PROGRAMS = (render.INSTRUMENTS["piano"], render.INSTRUMENTS["strings"])


def play(font: bytes | str, program: int) -> np.ndarray:
    """Two octaves of notes, each overlapping the next, on `program` -> (S, 2) float32."""
    synth = tinysoundfont.Synth(samplerate=SR)
    synth.program_select(0, synth.sfload(font), 0, program)
    out = []
    for pitch in range(48, 73, 2):
        synth.noteon(0, pitch, 90)
        out.append(np.frombuffer(synth.generate(SR // 8), np.float32))
        synth.noteoff(0, pitch - 2)
    out.append(np.frombuffer(synth.generate(SR), np.float32))
    return np.concatenate(out).reshape(-1, 2)


def test_a_subset_plays_its_programs_as_the_whole_file_does_and_holds_less():
    whole = render.bundled_soundfont()
    cut = soundfont.subset(whole.read_bytes(), PROGRAMS)
    assert len(cut) < whole.stat().st_size / 3
    for program in PROGRAMS:
        expected, got = play(str(whole), program), play(cut, program)
        assert np.abs(expected).max() > 0.01
        np.testing.assert_allclose(got, expected, atol=1e-5)  # sample positions move: float rounding only
    synth = tinysoundfont.Synth(samplerate=SR)
    with pytest.raises(RuntimeError):  # a program left out is not there
        synth.program_select(0, synth.sfload(cut), 0, render.INSTRUMENTS["harp"])


def test_what_is_not_a_soundfont_2_is_refused(tmp_path):
    with pytest.raises(soundfont.SoundfontFormatError, match="RIFF sfbk"):
        soundfont.subset(b"OggS" + bytes(100), PROGRAMS)
    riff_without_tables = b"RIFF" + (4).to_bytes(4, "little") + b"sfbk"
    with pytest.raises(soundfont.SoundfontFormatError, match="INFO, sdta and pdta"):
        soundfont.subset(riff_without_tables, PROGRAMS)


def test_a_renderer_loads_only_its_programs_of_a_soundfont_other_than_the_bundled_one(tmp_path):
    other = tmp_path / "Other_GM.sf2"
    shutil.copy(render.bundled_soundfont(), other)
    cut = render.SoundfontRenderer(SR, other)
    whole = render.SoundfontRenderer(SR, render.bundled_soundfont())
    assert cut.nbytes < whole.nbytes / 2 and cut.sha256 == whole.sha256  # the file's hash, as the JSON records
    pm = pretty_midi.PrettyMIDI()
    pm.instruments.append(pretty_midi.Instrument(0))
    pm.instruments[0].notes = [pretty_midi.Note(80, p, i * 0.2, i * 0.2 + 0.5) for i, p in enumerate(range(40, 90, 5))]
    np.testing.assert_allclose(cut.render(pm), whole.render(pm), atol=1e-5)
    with pytest.raises(ValueError, match="program 30 is not in soundfont Other_GM.sf2"):
        cut.render(render.level_reference(30))
