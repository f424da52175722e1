"""moodgen.dynamics on the bundled soundfont: sustained programs fade as a piano does, keep the level of notes
struck often, keep the loudness gap between dense loud playing and sparse soft playing, and sound the same whether
rendered whole or in chunks (as the synth itself does). Other programs are played untouched."""
import numpy as np
import pretty_midi
import pytest
import tinysoundfont

from moodgen import dynamics, mastering, render
from moodgen.note_synth import ContinuingSynth

SR = 22050
STRINGS, PAD = render.INSTRUMENTS["strings"], render.INSTRUMENTS["warm-pad"]


@pytest.fixture(scope="module")
def bundled():
    return render.SoundfontRenderer(SR, render.bundled_soundfont())


def notes(program: int, specs: list[tuple[int, float, float, int]]) -> pretty_midi.PrettyMIDI:
    pm = pretty_midi.PrettyMIDI()
    track = pretty_midi.Instrument(program=program)
    track.notes = [pretty_midi.Note(v, p, s, e) for p, s, e, v in specs]
    pm.instruments.append(track)
    return pm


def level_db(y: np.ndarray, start: float, end: float) -> float:
    part = y[int(start * SR):int(end * SR)]
    return float(10 * np.log10(np.mean(part.astype(np.float64) ** 2) + 1e-20))


def test_only_sustained_programs_get_piano_dynamics_and_only_the_pad_a_low_cut():
    for name, program in render.INSTRUMENTS.items():
        assert (dynamics.piano_dynamics(program, SR) is not None) == (name in ("strings", "warm-pad"))
        assert (dynamics.low_cut(program, SR) is not None) == (name == "warm-pad")


def test_a_held_string_chord_fades_as_a_piano_chord_does(bundled):
    chord = [(p, 0.0, 4.0, 80) for p in (48, 55, 64)]
    strings, piano = (bundled.render(notes(program, chord)) for program in (STRINGS, render.PIANO_PROGRAM))
    fade = {name: level_db(y, 0.3, 1.0) - level_db(y, 3.0, 3.9) for name, y in (("strings", strings), ("piano", piano))}
    assert fade["strings"] > 15.0 and fade["piano"] > 15.0


def test_notes_struck_often_keep_their_level(bundled):
    run = [(60 + 2 * (i % 4), i / 8, (i + 1) / 8, 80) for i in range(32)]
    y = bundled.render(notes(STRINGS, run))
    assert abs(level_db(y, 0.5, 1.5) - level_db(y, 2.5, 3.5)) < 3.0


def test_dense_loud_playing_stays_5_lu_above_sparse_soft_playing(bundled):
    dense = notes(STRINGS, [(60 + 2 * (i % 5), i / 6, (i + 1) / 6, 90) for i in range(60)])
    sparse = notes(STRINGS, [(p, s, s + 2.5, 55) for s in (0.0, 2.5, 5.0, 7.5) for p in (48, 55, 63)])
    lufs = [mastering.measure_loudness(bundled.render(pm)[:10 * SR], SR).lufs for pm in (dense, sparse)]
    assert lufs[0] - lufs[1] >= 5.0


@pytest.mark.parametrize("program", [STRINGS, PAD])
def test_a_render_in_chunks_equals_the_whole_render(program):
    def played(cuts: list[int]) -> np.ndarray:
        synth = ContinuingSynth(render.SoundfontRenderer(SR, render.bundled_soundfont()).borrow(), SR).start(program)
        events = [(0, 1, 60, 90), (3000, 1, 67, 60), (9000, 0, 60, 0), (15000, 1, 64, 100), (20000, 0, 67, 0)]
        parts, done = [], 0
        for cut in cuts:
            parts.append(synth.play([e for e in events if done <= e[0] < cut], cut))
            done = cut
        return np.concatenate(parts)

    whole = played([30000])
    assert np.array_equal(whole, played([4410, 30000]))  # a cut on the expression grid changes nothing
    # elsewhere only tinysoundfont's own block boundaries move (it differs by ~2e-5 on the piano): 40 dB down
    chunked = played([4410, 4411, 17000, 30000])
    assert np.abs(chunked - whole).max() < 1e-2 * np.abs(whole).max()
    assert np.abs(whole).max() > 0.05


def test_expression_follows_tinysoundfonts_law(bundled):
    """The cube law PianoDynamics inverts: expression 8192 of 16383 plays a note 18 dB down."""
    synth = tinysoundfont.Synth(samplerate=SR)
    sfid = synth.sfload(str(render.bundled_soundfont()))
    synth.program_select(0, sfid, 0, 0)

    def struck(value: int) -> float:
        synth.sounds_off()
        synth.generate(SR // 10)
        synth.control_change(0, 11, value >> 7)
        synth.control_change(0, 43, value & 127)
        synth.noteon(0, 60, 100)
        return level_db(dynamics.mono(synth.generate(SR // 4)), 0.0, 0.25)

    assert struck(8192) - struck(16383) == pytest.approx(60 * np.log10(8192 / 16383), abs=0.5)
