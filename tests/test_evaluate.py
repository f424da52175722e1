import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from synthetic_cache import SMALL_MEL, make_cache, tone_clip

from moodgen.checkpoint import save_component
from moodgen.config import MelParams
from moodgen.judge import Judge, JudgeConfig, JudgeNet
from moodgen.mood import quadrant_of
from train import evaluate
from train.corpus.cache import CorpusCache
from train.evaluation import correlates, journeys, metrics, protocol, report

SMALL = JudgeConfig(n_mels=SMALL_MEL.n_mels, channels=(8, 12), kernel_sizes=(3, 3), embed_dim=6)
ROW_COLUMNS = {"quadrant_accuracy", "spearman_valence", "spearman_arousal", "mae_unit", "frechet_distance", "kid",
               "diversity", "nearest_train_median", "closer_than_real_p05", "confusion"}


class FakePipeline:
    """Stands in for moodgen.pipeline.MoodPipeline: a 'generator' that plays the target quadrant's tone pattern."""

    engines = ("notes",)
    default_engine = "notes"
    judge = None

    def generate(self, valence, arousal, seconds=10.0, seed=0, steps=None, guidance=None, engine=None):
        rng = np.random.default_rng(seed)
        quadrant = int(rng.integers(1, 5)) if guidance == 0.0 else quadrant_of(valence, arousal).number
        audio = tone_clip(quadrant, seconds, rng, SMALL_MEL.sample_rate)
        return SimpleNamespace(audio=audio, at_corpus_level=lambda: audio, sample_rate=SMALL_MEL.sample_rate,
                               key="A major" if valence > 0 else "A minor")


def small_judge() -> Judge:
    torch.manual_seed(0)
    return Judge(JudgeNet(SMALL), SMALL_MEL, {"provenance": {}})


def test_agreement_measures():
    target = np.array([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]])
    perfect = metrics.mood_agreement(target, target)
    assert perfect["quadrant_accuracy"] == 1.0 and perfect["mae_unit"] == 0.0
    assert perfect["spearman_valence"] == pytest.approx(1.0) and perfect["r2_arousal"] == pytest.approx(1.0)
    flipped = metrics.mood_agreement(-target, target)
    assert flipped["quadrant_accuracy"] == 0.0 and flipped["sign_accuracy_valence"] == 0.0
    assert flipped["mae_unit"] == pytest.approx(0.5)  # |1.0| on [-1, 1] is 0.5 on the 0-1 scale
    assert np.isnan(metrics.spearman([1, 1, 1], [1, 2, 3]))
    assert list(metrics.quadrant_numbers(target)) == [1, 2, 3, 4]


def test_distances():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 4)), rng.normal(size=(200, 4))
    far = b + 3.0
    assert metrics.frechet_distance(a, b) < 0.5 < metrics.frechet_distance(a, far)
    assert abs(metrics.kernel_inception_distance(a, b)) < 0.05 < metrics.kernel_inception_distance(a, far)
    assert metrics.mean_pairwise_distance(np.zeros((5, 3))) == 0.0
    nearest = metrics.nearest_distances(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0], [1.0, 0.0]]))
    np.testing.assert_allclose(nearest, [1.0])


def test_mood_correlates_follow_the_tone_patterns():
    rng = np.random.default_rng(1)
    sr = SMALL_MEL.sample_rate
    happy = correlates.mood_correlates(tone_clip(1, 4.0, rng, sr), sr)
    sad = correlates.mood_correlates(tone_clip(3, 4.0, rng, sr), sr)
    assert happy["loudness_db"] > sad["loudness_db"] + 6
    assert happy["onset_rate"] > sad["onset_rate"]
    assert happy["mode"] > sad["mode"]  # major triad vs minor triad


def test_evaluate_quick_writes_every_column(tmp_path):
    cache = CorpusCache(make_cache(tmp_path / "cache", per_split={"train": 2, "val": 1, "test": 4}))
    config = protocol.EvalConfig(out_dir=str(tmp_path / "reports"), **protocol.QUICK)
    skipped = [{"row": "seed cGAN", "reason": "absent"}]
    result = protocol.evaluate(FakePipeline(), small_judge(), cache, config, skipped=skipped)
    path = report.write_report(result, config.out_dir)
    data = json.loads((tmp_path / "reports" / "eval.json").read_text())
    names = [r["name"] for r in data["rows"]]
    assert names == ["real held-out", "nearest real (oracle)", "moodgen notes", "null: shuffled targets",
                     "null: unconditional"]
    for row in data["rows"]:
        assert ROW_COLUMNS <= set(row["metrics"]), row["name"]
        assert np.array(row["metrics"]["confusion"]).sum() > 0
    generated = data["rows"][2]
    assert generated["metrics"]["n_clips"] == 4 * config.seeds + config.grid ** 2
    assert set(generated["correlates"]) == {"happy", "angry", "sad", "relaxed"}
    assert set(data["rows"][0]["correlates"]) == {"happy", "angry", "sad", "relaxed"}
    # the fake plays an A major / A minor triad for the key it reports, so it is always in mode
    assert all(c["in_mode"] == 1.0 for c in generated["correlates"].values())
    assert "in_mode" not in data["rows"][0]["correlates"]["happy"]  # real clips have no conditioned key
    for row in (data["rows"][0], generated):
        contrasts = row["contrasts"]
        assert contrasts["arousal: loudness"]["diff"] > 6 and contrasts["valence: major-minor"]["diff"] > 0
        assert row["contrasts"]["arousal: loudness"]["se"] >= 0
    assert data["skipped"] == skipped
    text = path.read_text()
    assert "| moodgen notes |" in text and "seed cGAN" in text and "Do the presets differ" in text
    assert "## Musical structure" in text
    for row in (data["rows"][0], generated):  # fast clicks of one triad: steady rhythm, no harmonic movement
        assert set(row["structure"]) == {"chroma_change", "pitch_class_turnover", "ioi_entropy",
                                         "beat_spectral_change"}
        assert row["structure"]["ioi_entropy"]["mean"] < 0.5 and row["structure"]["chroma_change"]["mean"] < 0.3
    assert (tmp_path / "reports" / "eval_va.png").stat().st_size > 0
    assert (tmp_path / "reports" / "eval_confusion.png").stat().st_size > 0


def test_shuffled_null_keeps_the_clips():
    judge = small_judge()
    config = protocol.EvalConfig(**protocol.QUICK)
    units = protocol.generated_units(lambda v, a, s: (tone_clip(quadrant_of(v, a).number, 1.0,
                                                                np.random.default_rng(s), SMALL_MEL.sample_rate),
                                                      SMALL_MEL.sample_rate, None),
                                     judge, config, "test")
    shuffled = protocol.shuffled_units(units, 0)
    assert sorted(u.assessment.valence for u in shuffled) == sorted(u.assessment.valence for u in units)
    assert sorted(u.target for u in shuffled) == sorted(u.target for u in units)


def test_evaluate_cli_on_tiny_pipeline(tmp_path, tiny_checkpoints):
    """End to end on the lead's tiny random-weights engines, a tiny judge and a synthetic cache."""
    folder = tmp_path / "checkpoints"
    shutil.copytree(tiny_checkpoints, folder)
    torch.manual_seed(0)
    save_component(folder / "judge.safetensors", JudgeNet(JudgeConfig(channels=(8, 8), kernel_sizes=(3, 3),
                                                                      embed_dim=4)),
                   MelParams(), {"git_sha": "test"})
    cache = make_cache(tmp_path / "cache", MelParams(), per_split={"train": 1, "val": 1, "test": 2}, seconds=3.0)
    evaluate.main(["--checkpoint", str(folder), "--cache", str(cache), "--quick", "--seconds", "1", "--out",
             str(tmp_path / "reports")])
    data = json.loads((tmp_path / "reports" / "eval.json").read_text())
    names = [r["name"] for r in data["rows"]]
    assert {"moodgen notes", "moodgen mel", "null: unconditional"} <= set(names)
    assert all(ROW_COLUMNS <= set(r["metrics"]) for r in data["rows"])
    assert data["skipped"][0]["row"] == "seed cGAN"  # no cgan.safetensors in the tiny folder
    journeys = json.loads((tmp_path / "reports" / "journeys.json").read_text())
    assert [r["name"] for r in journeys["rows"]] == ["moodgen notes", "moodgen mel"]
    for row in journeys["rows"]:
        assert len(row["journeys"]) == 2 and len(row["journeys"][0]["centres"]) == 3  # 20 s, 10 s windows, hop 5 s
        assert {"pooled_arousal", "mean_valence", "seconds_per_journey"} <= row.keys()
        assert len(row["joins"]["stream"]) == 9 and 0 <= row["joins"]["loop"][0]["jump_percentile"] <= 100
    assert journeys["skipped"][0]["reason"].startswith("no held-out clip of quadrant")  # 3 s synthetic clips
    assert "Spearman A pooled" in (tmp_path / "reports" / "journeys.md").read_text()
    assert (tmp_path / "reports" / "eval_journeys.png").stat().st_size > 0


def test_join_scores_rank_a_join_against_the_clip_itself():
    sr = MelParams().sample_rate
    y = (0.3 * np.sin(2 * np.pi * 220 * np.arange(2 * sr) / sr)).astype(np.float32)
    clicked = y.copy()
    clicked[sr:] += 0.5  # a step: the largest jump and the largest flux of the clip
    smooth, click = journeys.join_scores(y, [sr], sr, MelParams())[0], journeys.join_scores(clicked, [sr], sr,
                                                                                           MelParams())[0]
    assert click["jump_percentile"] > 99.9 and click["flux_percentile"] > 99
    assert smooth["jump_percentile"] < 99.9 and smooth["seconds"] == 1.0
    centres = np.array([5.0, 7.5])
    curve = np.stack([np.linspace(0, 1, 1000), np.zeros(1000)], axis=1)  # 10 s at 100 Hz
    assert journeys.window_targets(curve, 100.0, centres, 10.0)[0].tolist() == pytest.approx([0.5, 0.0], abs=1e-3)
