"""The realism report's statistics (known answers on synthetic MIDI), its overlapping area, and its tables."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pretty_midi
import pytest

from train.evaluation import realism
from train.evaluation.symbolic import NAMES, clip_statistics, midi_statistics, notes_of, overlapping_area


def write_midi(path, notes) -> pretty_midi.PrettyMIDI:
    """notes: (start, end, pitch, velocity); written to `path` and read back, as a real clip would be."""
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(0)
    piano.notes = [pretty_midi.Note(int(v), int(p), s, e) for s, e, p, v in notes]
    pm.instruments.append(piano)
    pm.write(str(path))
    return pretty_midi.PrettyMIDI(str(path))


def test_statistics_of_a_known_clip(tmp_path):
    # a C major triad struck together at 0 s (one note 10 ms late), then E, C# (outside C major), A one at a time
    notes = [(0.0, 1.0, 60, 50), (0.01, 1.0, 64, 70), (0.0, 1.0, 67, 90),
             (1.0, 1.5, 64, 60), (2.0, 2.5, 61, 60), (3.0, 3.5, 69, 60), (12.0, 13.0, 72, 60)]
    stats = midi_statistics(write_midi(tmp_path / "c.mid", notes), seconds=10.0)  # the last note is past 10 s
    assert stats["notes_per_s"] == pytest.approx(0.6)
    assert stats["pitch_classes"] == 5  # C E G C# A
    assert stats["distinct_pitches"] == 5
    assert stats["pitch_range"] == 9
    assert stats["out_of_scale"] == pytest.approx(1 / 6)  # C# only, in the best scale (C major / A minor)
    assert stats["chord_share"] == pytest.approx(3 / 6)
    assert stats["ioi"] == pytest.approx(1.0)  # onsets 0 (the chord), 1, 2, 3
    assert stats["duration"] == pytest.approx((0.99 + 0.5) / 2, abs=0.005)
    velocity = np.array([50, 70, 90, 60, 60, 60])
    assert stats["velocity_mean"] == pytest.approx(velocity.mean())
    assert stats["velocity_sd"] == pytest.approx(velocity.std())
    assert stats["polyphony"] == pytest.approx((3 * 1000 + 3 * 500) / (1000 + 3 * 500), rel=1e-2)
    assert set(stats) == set(NAMES)


def test_pitch_classes_and_entropy(tmp_path):
    chromatic = [(i * 0.25, i * 0.25 + 0.2, 60 + i, 64) for i in range(12)]
    stats = midi_statistics(write_midi(tmp_path / "c.mid", chromatic), seconds=3.0)
    assert stats["pitch_classes"] == 12
    assert stats["pitch_class_entropy"] == pytest.approx(np.log2(12))
    assert stats["chord_share"] == 0.0
    assert stats["out_of_scale"] == pytest.approx(5 / 12)


def test_a_clip_without_notes_says_so():
    stats = clip_statistics(np.zeros((0, 4)), 20.0)
    assert stats["notes_per_s"] == 0.0 and np.isnan(stats["pitch_classes"])


def test_notes_are_cut_at_the_clip_end(tmp_path):
    pm = write_midi(tmp_path / "c.mid", [(1.0, 30.0, 60, 64), (25.0, 26.0, 62, 64)])
    np.testing.assert_allclose(notes_of(pm, 20.0), [[1.0, 20.0, 60, 64]])


def test_overlapping_area_known_answers():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 4000)
    assert overlapping_area(a, a) == pytest.approx(1.0, abs=1e-3)
    # two unit normals one SD apart overlap by 2 Phi(-1/2) = 0.617
    assert overlapping_area(a, rng.normal(1, 1, 4000)) == pytest.approx(0.617, abs=0.03)
    assert overlapping_area(a, a + 100) < 1e-3
    assert overlapping_area(np.full(10, 3.0), np.full(10, 3.0)) == pytest.approx(1.0, abs=1e-3)  # no spread
    assert np.isnan(overlapping_area([], a))
    assert overlapping_area([1.0, np.nan, 2.0], [1.0, 2.0]) == pytest.approx(1.0, abs=1e-3)  # NaNs dropped


def rows(values):
    return [{n: float(v) for n in NAMES} for v in values]


def test_compare_checks_and_markdown():
    rng = np.random.default_rng(1)
    real = {q: rows(rng.normal(0, 1, 30)) for q in ("happy", "angry", "sad", "relaxed")}
    other = {q: rows(rng.normal(0, 1, 30)) for q in real}
    near = {q: rows(rng.normal(0, 1, 30)) for q in real}
    far = {q: rows(rng.normal(5, 1, 30)) for q in real}
    good, bad = realism.compare(near, real, other), realism.compare(far, real, other)
    assert good["pooled"]["mean_oa"] > 0.7 > 0.1 > bad["pooled"]["mean_oa"]
    assert good["happy"]["statistics"]["velocity_sd"]["ceiling"] == bad["happy"]["statistics"]["velocity_sd"]["ceiling"]
    assert good["pooled"]["n_generated"] == 120
    assert realism.checks(good)["out_of_scale_inside_real_iqr"]
    assert not realism.checks(bad)["out_of_scale_inside_real_iqr"] and realism.checks(bad)["min_oa"] < 0.1
    section = {"config": {"seeds": 30, "seconds": 20.0}, "wall_time_s": 6.0, "real_test": real,
               "engines": {"notes": {"groups": good, "checks": realism.checks(good), "sampler": {"key_bias": 1.0},
                                     "clips": near}}}
    text = realism.markdown(section, "python -m train.evaluate --realism")
    assert "| out-of-scale share |" in text and "key_bias 1.0" in text and "--realism" in text


def test_config_checks():
    with pytest.raises(ValueError, match="seeds"):
        realism.RealismConfig(seeds=1)


def test_the_realism_report_end_to_end(tiny_checkpoints, tmp_path):
    from synthetic_emopia import write_emopia_folder

    from train import evaluate

    root = write_emopia_folder(tmp_path / "EMOPIA_1.0", {"train": 1, "val": 2, "test": 2}, seconds=4.0)
    args = ["--checkpoint", str(tiny_checkpoints), "--out", str(tmp_path / "reports"), "--realism",
            "--realism-seeds", "2", "--emopia-root", str(root), "--sampler", "key_bias=1.5"]
    config, _, _, _, extras = evaluate.parse_args(args)
    extras = replace(extras, realism=replace(extras.realism, seconds=3.0))
    path = evaluate.run(config, extras=extras)
    text = path.read_text()
    assert "| pitch classes used |" in text and "key_bias 1.5" in text
    section = json.loads((tmp_path / "reports" / "realism.json").read_text())
    pooled = section["engines"]["notes"]["groups"]["pooled"]
    assert pooled["n_generated"] == 8 and pooled["n_real"] == 8 and pooled["n_ceiling"] == 8
    assert 0 <= pooled["mean_oa"] <= 1
    assert (tmp_path / "reports" / realism.PLOT).is_file()


def test_sampler_overrides_are_checked():
    from train.evaluation.mood_check import parse_overrides

    assert parse_overrides("key_bias=2, chord_correlation=0.3") == {"key_bias": 2.0, "chord_correlation": 0.3}
    assert parse_overrides(None) == {}
    with pytest.raises(ValueError, match="name=number"):
        parse_overrides("key_bias=high")
