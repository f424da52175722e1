"""moodgen.render on synthetic MIDI and signals: one soundfont load, programs, byte identity with the old render
path, level matching, mastering ceiling and fixed gain, loudness measures, clear errors."""
import hashlib
import io
import os

import numpy as np
import pretty_midi
import pytest
import tinysoundfont

from moodgen import mastering, midi, render, soundfont
from tests.test_soundfont import play

SR = 22050


def piece(program: int = 0) -> pretty_midi.PrettyMIDI:
    """One track of overlapping notes, a re-strike of a sounding key and a very short note."""
    specs = [(60, 0.0, 0.5, 90), (64, 0.25, 0.75, 70), (67, 0.5, 1.0, 100), (60, 0.5, 0.8, 60), (48, 0.0, 1.2, 50),
             (72, 1.0, 1.01, 127), (36, 0.3, 0.9, 110)]
    pm = pretty_midi.PrettyMIDI()
    track = pretty_midi.Instrument(program=program)
    track.notes = [pretty_midi.Note(v, p, s, e) for p, s, e, v in specs]
    pm.instruments.append(track)
    return pm


def sha(y: np.ndarray) -> str:
    return hashlib.sha256(y.tobytes()).hexdigest()


def tones(seconds: float, amplitude: float) -> np.ndarray:
    """Decaying 220/330 Hz harmonic tones struck twice a second, peak ~`amplitude`."""
    t = np.arange(int(seconds * SR)) / SR
    phase = t % 0.5
    y = np.exp(-4 * phase) * sum(np.sin(2 * np.pi * f * k * t) / k for f in (220, 330) for k in range(1, 5))
    return (amplitude * y / np.abs(y).max()).astype(np.float32)


@pytest.fixture(scope="module")
def bundled():
    return render.SoundfontRenderer(SR, render.bundled_soundfont())


def test_dry_piano_is_byte_identical_to_the_old_render_path(bundled):
    # hashes of `midi.render_midi` before the renderer existed (a fresh synth per call, program 0)
    old_22050 = "343186a6783b309aec4c14e880aeffb15c750ba1a7bb1c85b4fe4c5025bdf461"
    old_16000_minus6 = "7a1d4fa483ec2b9dd7fbca56a338369d6cb6cd437d9e11a38a8125e4db01ba6e"
    y = bundled.render(render.with_instrument(piece(), "piano"))
    assert sha(y) == old_22050
    assert sha(mastering.master(y, SR, mastering.DRY)) == old_22050
    assert sha(midi.render_midi(piece(), SR)) == old_22050
    assert sha(midi.render_midi(piece(), 16000, gain_db=-6.0)) == old_16000_minus6


def test_soundfont_is_loaded_once_and_renders_do_not_leak_into_each_other(monkeypatch):
    loads = []
    original = tinysoundfont.Synth.sfload
    monkeypatch.setattr(tinysoundfont.Synth, "sfload", lambda self, *a, **k: loads.append(1) or original(self, *a, **k))
    renderer = render.SoundfontRenderer(SR, render.bundled_soundfont())
    first = renderer.render(piece())
    pad = renderer.render(render.with_instrument(piece(), "warm-pad"))  # a long release still ringing at the end
    again = renderer.render(piece())
    assert len(loads) == 1  # level matching on the bundled soundfont measures with this same synth
    assert np.array_equal(first, again) and not np.array_equal(first[: len(pad)], pad[: len(first)])
    assert np.array_equal(pad, renderer.render(render.with_instrument(piece(), "warm-pad")))


def test_instrument_program_is_in_the_midi_and_the_audio(bundled):
    pm = piece()
    strings = render.with_instrument(pm, "strings")
    buffer = io.BytesIO()
    strings.write(buffer)
    buffer.seek(0)
    assert pretty_midi.PrettyMIDI(buffer).instruments[0].program == render.INSTRUMENTS["strings"] == 48
    assert pm.instruments[0].program == 0  # the input is untouched
    assert not np.array_equal(bundled.render(strings), bundled.render(pm))


def test_piano_keeps_the_midi_bytes():
    written = []
    for pm in (piece(), render.with_instrument(piece(), "piano")):
        buffer = io.BytesIO()
        pm.write(buffer)
        written.append(buffer.getvalue())
    assert written[0] == written[1]


def test_instruments_are_level_matched_to_the_bundled_piano(bundled):
    assert bundled.level_trim_db(render.PIANO_PROGRAM) == 0.0
    piano = mastering.measure_loudness(bundled.render(render.level_reference(0)), SR).lufs
    for program in (render.INSTRUMENTS["harp"], render.INSTRUMENTS["warm-pad"]):
        assert abs(bundled.level_trim_db(program)) > 3  # TimGM6mb's harp and pad are far louder than its piano
        matched = mastering.measure_loudness(bundled.render(render.level_reference(program)), SR).lufs
        assert matched == pytest.approx(piano, abs=0.05)


def test_bad_instrument_and_mixed_programs_name_the_field(bundled):
    with pytest.raises(ValueError, match=r"instrument must be one of piano, electric-piano, .*'tuba'"):
        render.with_instrument(piece(), "tuba")
    mixed = piece()
    mixed.instruments.append(piece(program=48).instruments[0])
    with pytest.raises(ValueError, match=r"pm: its tracks use programs \[0, 48\]"):
        bundled.render(mixed)


def test_bad_soundfont_names_the_field(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="soundfont: .*missing.sf2 is not a file"):
        render.SoundfontRenderer(SR, tmp_path / "missing.sf2")
    junk = tmp_path / "junk.sf2"
    junk.write_bytes(b"RIFF" + b"junk" * 64)
    with pytest.raises(ValueError, match="soundfont: .*junk.sf2 is not a readable soundfont"):
        render.SoundfontRenderer(SR, junk)
    monkeypatch.setenv(render.SOUNDFONT_ENV, str(tmp_path / "from_env.sf2"))
    with pytest.raises(ValueError, match="from_env.sf2 is not a file .*MOODGEN_SOUNDFONT"):
        render.SoundfontRenderer(SR)
    with pytest.raises(ValueError, match="sample_rate"):
        render.SoundfontRenderer(0, render.bundled_soundfont())


def test_fluidr3_cut_to_the_offered_programs_plays_them_as_the_whole_file_does(fluidr3):
    programs = sorted(set(render.INSTRUMENTS.values()))
    with fluidr3.open("rb") as f:
        cut = soundfont.subset(f, programs)
    assert len(cut) < fluidr3.stat().st_size / 4  # what the renderer loads instead of the whole 148 MB
    for program in programs:
        expected, got = play(str(fluidr3), program), play(cut, program)
        assert np.abs(expected).max() > 0.01
        np.testing.assert_allclose(got, expected, atol=1e-5)  # sample positions move: float rounding only


def test_the_suite_finds_only_the_bundled_soundfont_and_the_variable_chooses_folders(tmp_path, monkeypatch):
    assert render.find_soundfonts() == [render.bundled_soundfont().resolve()]  # tests/conftest.py: a fresh machine
    assert render.default_soundfont() == render.bundled_soundfont().resolve()
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name.upper()}.sf2").write_bytes(b"x")
    monkeypatch.setenv(render.SOUNDFONT_DIRS_ENV, f"{tmp_path / 'b'}{os.pathsep}{tmp_path / 'absent'}")
    assert [p.name for p in render.find_soundfonts()] == ["B.sf2", "TimGM6mb.sf2"]
    monkeypatch.delenv(render.SOUNDFONT_DIRS_ENV)
    assert render.find_soundfonts() == render.find_soundfonts(render.SYSTEM_SOUNDFONT_DIRS)  # unset: the system's


def test_soundfonts_found_best_first_bundled_last(tmp_path, monkeypatch):
    system = tmp_path / "sf2"
    system.mkdir()
    for name in ("Another.sf2", "FluidR3_GM.sf2", "notes.txt"):
        (system / name).write_bytes(b"x")
    (system / "default-GM.sf2").symlink_to(system / "FluidR3_GM.sf2")
    found = render.find_soundfonts((system, tmp_path / "absent"))
    assert [p.name for p in found] == ["FluidR3_GM.sf2", "Another.sf2", "TimGM6mb.sf2"]
    assert found[-1] == render.bundled_soundfont().resolve()
    monkeypatch.setenv(render.SOUNDFONT_ENV, str(system / "Another.sf2"))
    assert render.default_soundfont() == system / "Another.sf2"
    renderer = render.SoundfontRenderer(SR, render.bundled_soundfont())
    assert renderer.name == "TimGM6mb.sf2"
    assert renderer.sha256 == hashlib.sha256(render.bundled_soundfont().read_bytes()).hexdigest()


def test_mastered_true_peak_stays_under_the_ceiling():
    t = np.arange(2 * SR) / SR
    near_nyquist = (0.5 * np.sin(2 * np.pi * 10_000 * t + 0.3)).astype(np.float32)  # inter-sample peaks
    for y in (tones(3.0, 0.5), near_nyquist):
        for settings in (mastering.Mastering(gain_db=20.0, reverb_wet=0.1, ceiling_dbtp=-1.0),
                         mastering.Mastering(gain_db=12.0, ceiling_dbtp=-3.0)):
            out = mastering.master(y, SR, settings)
            assert out.shape == y.shape and out.dtype == np.float32
            assert mastering.true_peak_dbtp(out, SR) <= settings.ceiling_dbtp + 1e-6
            assert mastering.true_peak_dbtp(out, SR) > settings.ceiling_dbtp - 1.0  # the gain did push it there
            assert np.array_equal(out, mastering.master(y, SR, settings))


def test_fixed_gain_keeps_the_level_difference_between_moods():
    loud, quiet = tones(4.0, 0.1), tones(4.0, 0.02)  # 14 dB apart, both below the ceiling after +6 dB
    settings = mastering.Mastering(gain_db=6.0, reverb_wet=0.1)
    before = [mastering.measure_loudness(y, SR).lufs for y in (loud, quiet)]
    after = [mastering.measure_loudness(mastering.master(y, SR, settings), SR).lufs for y in (loud, quiet)]
    assert before[0] - before[1] == pytest.approx(13.98, abs=0.05)
    assert after[0] - after[1] == pytest.approx(before[0] - before[1], abs=0.1)
    assert after[0] > before[0] + 5.0


def test_dry_mastering_returns_the_input():
    y = tones(1.0, 0.3)
    assert mastering.DRY.is_dry and not mastering.Mastering().is_dry
    assert mastering.master(y, SR, mastering.DRY) is y


def test_loudness_of_a_sine_follows_bs1770():
    t = np.arange(5 * SR) / SR
    y = (0.1 * np.sin(2 * np.pi * 997 * t)).astype(np.float32)  # -20 dBFS peak: -23.0 LUFS by BS.1770's definition
    loudness = mastering.measure_loudness(y, SR)
    assert loudness.lufs == pytest.approx(-23.0, abs=0.2)
    assert loudness.true_peak_dbtp == pytest.approx(-20.0, abs=0.05)
    assert loudness.lra_lu == pytest.approx(0.0, abs=0.5)


def test_bad_mastering_inputs_name_the_field():
    for kwargs, field in (({"reverb_wet": 1.5}, "reverb_wet"), ({"room_size": -0.1}, "room_size"),
                          ({"ceiling_dbtp": 2.0}, "ceiling_dbtp"), ({"gain_db": 100.0}, "gain_db")):
        with pytest.raises(ValueError, match=field):
            mastering.Mastering(**kwargs)
    with pytest.raises(ValueError, match=r"audio must be mono \(S,\)"):
        mastering.master(np.zeros((2, SR), np.float32), SR, mastering.Mastering())
    with pytest.raises(ValueError, match="at least 0.4 s"):
        mastering.measure_loudness(np.zeros(100, np.float32), SR)


def test_corpus_level_takes_the_gain_back():
    y = tones(4.0, 0.05)
    settings = mastering.Mastering(gain_db=12.0, reverb_wet=0.1)
    back = mastering.at_corpus_level(mastering.master(y, SR, settings), settings)
    assert back.dtype == np.float32 and back.shape == y.shape
    assert mastering.measure_loudness(back, SR).lufs == pytest.approx(mastering.measure_loudness(y, SR).lufs, abs=0.5)


def test_renderer_lends_loaded_copies_and_keeps_idle_ones_within_a_byte_budget(monkeypatch):
    renderer = render.SoundfontRenderer(22050, render.bundled_soundfont())
    assert renderer.copies_loaded == 1 and renderer.idle_copies == 1
    assert renderer.nbytes == 2 * render.bundled_soundfont().stat().st_size  # float32 samples from 16-bit ones
    lent = [renderer.borrow() for _ in range(3)]  # three streams at once: the idle copy and two new ones
    assert renderer.copies_loaded == 3 and renderer.idle_copies == 0
    monkeypatch.setattr(render, "IDLE_SYNTH_BYTES", 2 * renderer.nbytes)
    for loaded in lent:
        renderer.give_back(loaded)
    assert renderer.idle_copies == 2  # the third would pass the budget
    renderer.render(render.level_reference(0))  # a whole render plays on an idle copy: nothing loaded
    assert renderer.copies_loaded == 3 and renderer.idle_copies == 2
    monkeypatch.setattr(render, "IDLE_SYNTH_BYTES", 0)  # a soundfont larger than the budget: one copy is kept
    single = render.SoundfontRenderer(22050, render.bundled_soundfont())
    extra = single.borrow(), single.borrow()
    for loaded in extra:
        single.give_back(loaded)
    assert single.idle_copies == 1


def test_true_peak_in_blocks_is_the_whole_clips_bit_for_bit():
    from scipy.signal import resample_poly
    rng = np.random.default_rng(7)
    for n, sr in ((3 * mastering.TRUE_PEAK_BLOCK + 17, 22050), (mastering.TRUE_PEAK_BLOCK - 5, 44100), (50, 48000)):
        y = (rng.standard_normal(n) * 0.3).astype(np.float32)
        y[rng.integers(n)] = 0.99  # one sharp peak, wherever it lands relative to the blocks
        factor = 8 if sr == 22050 else 4
        whole = 20.0 * np.log10(np.abs(resample_poly(y.astype(np.float64), factor, 1)).max())
        assert mastering.true_peak_dbtp(y, sr) == whole
