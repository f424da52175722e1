import numpy as np
import pretty_midi
import pytest

from moodgen import midi
from train.evaluation import structure

SR = 22050


def piano(notes: list[tuple[int, float, float]]) -> np.ndarray:
    """Render (pitch, start, end) notes with the bundled soundfont: the same piano the corpus is rendered with."""
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    inst.notes = [pretty_midi.Note(80, p, s, e) for p, s, e in notes]
    pm.instruments.append(inst)
    return midi.render_midi(pm, SR)[: int(8 * SR)]


def drone_and_pulse() -> np.ndarray:
    """'Pulses over drones': one C major chord struck every 0.5 s, each strike ringing into the next."""
    return piano([(p, t, t + 0.5) for t in np.arange(0, 8, 0.5) for p in (48, 60, 64, 67)])


def music_like() -> np.ndarray:
    """A chord per bar (C, A minor, F, G) under a melody on the scale with uneven note lengths."""
    rng = np.random.default_rng(0)
    chords = ((48, 52, 55), (45, 48, 52), (41, 45, 48), (43, 47, 50))
    notes = [(p, 2.0 * i, 2.0 * i + 2.0) for i in range(4) for p in chords[i]]
    scale = [60, 62, 64, 65, 67, 69, 71, 72, 74, 76]
    t, step = 0.0, 4
    while t < 8.0:
        length = float(rng.choice([0.125, 0.25, 0.375, 0.5, 0.75]))
        step = int(np.clip(step + rng.integers(-2, 3), 0, len(scale) - 1))
        notes.append((scale[step], t, t + length))
        t += length
    return piano(notes)


@pytest.fixture(scope="module")
def measured() -> dict[str, dict[str, float]]:
    return {"drone": structure.structure_measures(drone_and_pulse(), SR),
            "music": structure.structure_measures(music_like(), SR)}


@pytest.mark.parametrize("name", structure.MEASURES)
def test_each_measure_separates_music_from_pulses_over_a_drone(measured, name):
    drone, music = measured["drone"][name], measured["music"][name]
    assert np.isfinite(drone) and np.isfinite(music)
    assert music > 2 * drone + 0.05, (name, drone, music)


def test_a_steady_pulse_has_no_rhythmic_or_harmonic_change(measured):
    drone = measured["drone"]
    assert drone["ioi_entropy"] == 0.0
    assert drone["pitch_class_turnover"] == 0.0
    assert drone["chroma_change"] < 0.05


def test_ioi_entropy_counts_distinct_intervals():
    assert structure.ioi_entropy(np.arange(0, 200, 21)) == 0.0  # steady, at any bin phase
    assert structure.ioi_entropy(np.cumsum([0] + [8, 16] * 10)) == pytest.approx(1.0)  # two intervals, equally often
    assert structure.ioi_entropy(np.array([5])) == 0.0


def test_silence_and_other_sample_rates_give_finite_zeros():
    quiet = structure.structure_measures(np.zeros(3 * 8000, dtype=np.float32), 8000)
    assert set(quiet) == set(structure.MEASURES)
    assert quiet == {"chroma_change": 0.0, "pitch_class_turnover": 0.0, "ioi_entropy": 0.0,
                     "beat_spectral_change": 0.0}


@pytest.mark.parametrize("y, sr, field", [(np.zeros((2, 4000)), 8000, "mono"), (np.zeros(4000), 0, "sample_rate"),
                                          (np.full(4000, np.nan), 8000, "NaN"), (np.zeros(100), 8000, "short")])
def test_bad_audio_is_refused(y, sr, field):
    with pytest.raises(ValueError, match=field):
        structure.structure_measures(y, sr)


def test_summary_weights_groups_equally():
    values = [{m: v for m in structure.MEASURES} for v in (0.0, 0.0, 0.0, 2.0, 4.0)]
    summary = structure.structure_summary(values, ["a", "a", "a", "b", "b"])
    assert summary["chroma_change"]["mean"] == pytest.approx(1.5)  # (0 + 3) / 2, not 6 / 5
    assert summary["chroma_change"]["n"] == 5
    assert summary["chroma_change"]["se"] == pytest.approx(np.sqrt(2.0 / 2) / 2)
