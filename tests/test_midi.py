"""MIDI loading, sustain pedal, rendering, transposition and piano rolls on synthetic pieces."""
import numpy as np
import pretty_midi
import pytest

from moodgen import midi
from moodgen.config import RollParams

RP = RollParams()


def piece(note_specs, pedal=()):
    """PrettyMIDI with one piano track: note_specs (pitch, start, end, velocity), pedal (time, value) CC64 events."""
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    inst.notes = [pretty_midi.Note(v, p, s, e) for p, s, e, v in note_specs]
    inst.control_changes = [pretty_midi.ControlChange(midi.SUSTAIN_CC, val, t) for t, val in pedal]
    pm.instruments.append(inst)
    return pm


def ends(pm):
    return [(n.pitch, round(n.start, 6), round(n.end, 6)) for n in sorted(pm.instruments[0].notes,
                                                                          key=lambda n: (n.start, n.pitch))]


def test_sustain_extends_notes_to_pedal_release():
    pm = piece([(60, 0.0, 0.5, 80), (64, 0.2, 0.4, 80), (67, 2.5, 2.7, 80), (72, 1.5, 1.8, 80)],
               pedal=[(0.1, 127), (2.0, 0), (2.6, 100), (3.0, 0)])
    out = midi.apply_sustain(pm)
    assert ends(out) == [(60, 0.0, 2.0), (64, 0.2, 2.0), (72, 1.5, 2.0), (67, 2.5, 3.0)]
    # the pedal's effect is now in the notes: CC64 is gone; the input is untouched
    assert not [c for c in out.instruments[0].control_changes if c.number == midi.SUSTAIN_CC]
    assert ends(pm)[0] == (60, 0.0, 0.5) and len(pm.instruments[0].control_changes) == 4


def test_sustain_ignores_notes_released_outside_the_pedal_and_low_values():
    # a note released before the pedal goes down keeps its end; CC64 < 64 counts as pedal up
    pm = piece([(60, 0.0, 0.3, 80), (62, 1.0, 1.2, 80)], pedal=[(0.5, 127), (0.9, 30), (1.1, 20)])
    assert ends(midi.apply_sustain(pm)) == [(60, 0.0, 0.3), (62, 1.0, 1.2)]


def test_sustain_is_cut_when_the_key_is_struck_again():
    pm = piece([(60, 0.0, 0.2, 80), (60, 1.0, 1.2, 90), (62, 0.5, 0.6, 80)], pedal=[(0.0, 127), (3.0, 0)])
    assert ends(midi.apply_sustain(pm)) == [(60, 0.0, 1.0), (62, 0.5, 3.0), (60, 1.0, 3.0)]


def test_pedal_never_released_holds_to_the_last_note_end():
    pm = piece([(60, 0.0, 0.2, 80), (62, 0.5, 1.5, 80)], pedal=[(0.1, 127)])
    assert ends(midi.apply_sustain(pm)) == [(60, 0.0, 1.5), (62, 0.5, 1.5)]


def test_render_is_deterministic_and_lasts_to_the_release_tail():
    pm = midi.apply_sustain(piece([(60, 0.0, 0.5, 90), (64, 0.25, 0.75, 70), (67, 0.5, 1.0, 100)],
                                   pedal=[(0.0, 127), (0.9, 0)]))
    sr = 22050
    a = midi.render_midi(pm, sr)
    b = midi.render_midi(pm, sr)
    assert a.dtype == np.float32 and a.ndim == 1
    assert len(a) == int(round((1.0 + midi.RELEASE_TAIL_S) * sr))
    assert np.array_equal(a, b)
    assert np.abs(a).max() > 0.01
    # gain changes the level, not the timing
    quiet = midi.render_midi(pm, sr, gain_db=-12.0)
    assert len(quiet) == len(a) and np.abs(quiet).max() < np.abs(a).max()


def test_render_skips_drums():
    pm = piece([(60, 0.0, 0.5, 90)])
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes = [pretty_midi.Note(100, 36, 0.0, 3.0)]
    pm.instruments.append(drums)
    assert len(midi.render_midi(pm, 22050)) == int(round((0.5 + midi.RELEASE_TAIL_S) * 22050))


def grid_piece():
    """Notes on the 1/16 s grid, including a re-strike right at the end of the previous note on the same key."""
    f = 1.0 / RP.fps
    specs = [(21, 0, 4, 30), (60, 0, 8, 100), (64, 2, 3, 64), (64, 3, 6, 90), (108, 5, 9, 127), (67, 10, 11, 1)]
    return piece([(p, s * f, e * f, v) for p, s, e, v in specs])


def test_roll_shapes_and_values():
    active, onset = midi.roll_from_midi(grid_piece(), RP)
    assert active.shape == onset.shape == (12, RP.n_keys) and active.dtype == np.uint8
    k = 64 - RP.lowest_pitch
    assert active[2:6, k].tolist() == [64, 90, 90, 90] and onset[2:6, k].tolist() == [64, 90, 0, 0]
    assert active[:, 108 - RP.lowest_pitch].sum() == 4 * 127


def test_roll_midi_round_trip_is_exact():
    pm = grid_piece()
    active, onset = midi.roll_from_midi(pm, RP)
    back = midi.midi_from_roll(active, onset, RP)
    expected = sorted(pm.instruments[0].notes, key=lambda n: (n.start, n.pitch))
    assert [(n.pitch, n.start, n.end, n.velocity) for n in back.instruments[0].notes] == \
        [(n.pitch, n.start, n.end, n.velocity) for n in expected]
    active2, onset2 = midi.roll_from_midi(back, RP)
    assert np.array_equal(active, active2) and np.array_equal(onset, onset2)


def test_roll_encoding_round_trip():
    active, onset = midi.roll_from_midi(grid_piece(), RP)
    x = midi.encode_roll(active, onset)
    assert x.shape == (2 * RP.n_keys, active.shape[0]) and x.dtype == np.float32
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    a2, o2 = midi.decode_roll(x)
    assert np.array_equal(a2, active) and np.array_equal(o2, onset)


def test_midi_from_roll_refuses_bad_shapes():
    with pytest.raises(ValueError, match="88"):
        midi.midi_from_roll(np.zeros((4, 12), np.uint8), np.zeros((4, 12), np.uint8), RP)


def test_transpose_drops_notes_leaving_the_keyboard():
    pm = piece([(21, 0.0, 1.0, 80), (60, 0.0, 1.0, 80), (107, 0.0, 1.0, 80), (108, 0.0, 1.0, 80)])
    up = midi.transpose(pm, 2)
    assert sorted(n.pitch for n in up.instruments[0].notes) == [23, 62]
    down = midi.transpose(pm, -2)
    assert sorted(n.pitch for n in down.instruments[0].notes) == [58, 105, 106]
    assert sorted(n.pitch for n in pm.instruments[0].notes) == [21, 60, 107, 108]  # input untouched


@pytest.mark.parametrize("content, message", [
    (b"", "unreadable MIDI"),
    (b"MThd\x00\x00\x00\x06garbage-not-midi" * 3, "unreadable MIDI"),
    (None, "not a file"),
])
def test_load_midi_errors_name_the_path(tmp_path, content, message):
    path = tmp_path / "broken piece.mid"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        midi.load_midi(path)
    assert str(path) in str(info.value)


def test_load_midi_refuses_noteless_file_and_reads_a_good_one(tmp_path):
    empty = pretty_midi.PrettyMIDI()
    empty.instruments.append(pretty_midi.Instrument(program=0))
    path = tmp_path / "silent.mid"
    empty.write(str(path))
    with pytest.raises(ValueError, match="no pitched notes") as info:
        midi.load_midi(path)
    assert str(path) in str(info.value)
    good = tmp_path / "good.mid"
    grid_piece().write(str(good))
    assert len(midi.load_midi(good).instruments[0].notes) == 6


def test_soundfont_is_shipped():
    assert midi.soundfont_path().suffix == ".sf2"


def test_pitch_class_histogram_sums_per_pitch_class():
    params = RollParams()
    active = np.zeros((4, params.n_keys), dtype=np.uint8)
    active[:3, 60 - params.lowest_pitch] = 100  # C4, three frames
    active[:1, 72 - params.lowest_pitch] = 50  # C5, one frame
    active[:2, 69 - params.lowest_pitch] = 80  # A4, two frames
    hist = midi.pitch_class_histogram(active, params)
    assert hist.shape == (12,) and hist[0] == 350 and hist[9] == 160 and hist.sum() == 510
    counts = midi.pitch_class_histogram(active > 0, params)
    assert counts[0] == 4 and counts[9] == 2 and counts.sum() == 6
