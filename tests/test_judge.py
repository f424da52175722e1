import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from moodgen.checkpoint import CheckpointError, read_metadata, save_component
from moodgen.config import MelParams, to_dict
from moodgen.judge import Judge, JudgeConfig, JudgeNet
from moodgen.mood_features import FEATURE_SET, N_FEATURES

SMALL = JudgeConfig(n_mels=16, channels=(8, 12), kernel_sizes=(3, 3), embed_dim=6)


def small_params() -> MelParams:
    return MelParams(n_mels=16)


def test_shapes_and_ranges():
    torch.manual_seed(0)
    net = JudgeNet(SMALL).eval()
    va, logits, emb = net(torch.randn(3, 16, 40) * 3)
    assert va.shape == (3, 2) and logits.shape == (3, 4) and emb.shape == (3, 6)
    assert va.abs().max() <= 1.0
    # inputs shorter than the pooling stack are padded, not rejected
    va, _, _ = net(torch.zeros(1, 16, 1))
    assert va.shape == (1, 2)


def test_rejects_wrong_band_count():
    with pytest.raises(ValueError, match="mels"):
        JudgeNet(SMALL)(torch.zeros(1, 17, 40))
    with pytest.raises(ValueError, match="mel bands"):
        Judge(JudgeNet(SMALL), MelParams())


def test_config_validation():
    with pytest.raises(ValueError):
        JudgeConfig(channels=(8, 8), kernel_sizes=(3,))
    with pytest.raises(ValueError):
        JudgeConfig(kernel_sizes=(4, 3, 3, 3))


def test_save_load_gives_identical_predictions(tmp_path):
    torch.manual_seed(1)
    net = JudgeNet(SMALL)
    # non-trivial BatchNorm statistics, so a lost buffer would change the outputs
    net.train()
    with torch.no_grad():
        net(torch.randn(8, 16, 50) * 0.5 + 0.2)
    net.eval()
    path = save_component(tmp_path / "judge.safetensors", net, small_params(),
                          {"git_sha": "x", "test_quadrant_accuracy": 0.5}, half=False)
    loaded, meta = JudgeNet.from_file(path)
    assert meta["config"]["embed_dim"] == 6
    assert read_metadata(path)["provenance"]["test_quadrant_accuracy"] == 0.5
    mel = np.random.default_rng(2).uniform(-1, 1, (16, 70)).astype(np.float32)
    judge_a = Judge(net, small_params())
    judge_b = Judge.from_file(path)
    assert judge_a.predict(mel) == judge_b.predict(mel)
    np.testing.assert_array_equal(judge_a.embed(mel), judge_b.embed(mel))
    probs = judge_b.quadrant_probs(mel)
    assert probs.shape == (4,) and abs(probs.sum() - 1.0) < 1e-5
    assessment = judge_b.assess(mel)
    assert assessment.quadrant == int(np.argmax(probs)) + 1
    assert (assessment.valence, assessment.arousal) == judge_b.predict(mel)


def test_batch_matches_single():
    torch.manual_seed(3)
    judge = Judge(JudgeNet(SMALL), small_params())
    mels = np.random.default_rng(4).uniform(-1, 1, (3, 16, 33)).astype(np.float32)
    batch = judge.assess_batch(mels)
    for mel, a in zip(mels, batch):
        v, ar = judge.predict(mel)
        assert abs(v - a.valence) < 1e-5 and abs(ar - a.arousal) < 1e-5


def test_train_judge_smoke(tmp_path):
    """A few steps on a synthetic cache: the exported file loads, and its provenance carries the held-out numbers."""
    from synthetic_cache import make_cache

    from train.judge import JudgeTrainConfig, train

    cache = make_cache(tmp_path / "cache")
    config = JudgeTrainConfig(cache_dir=str(cache), out=str(tmp_path / "ck" / "judge.safetensors"),
                              report_dir=str(tmp_path / "reports"), run_dir=str(tmp_path / "run"), vgmidi_csv="",
                              model=SMALL, minutes=5,
                              max_steps=4, batch_size=4, eval_every=2, crop_seconds=(2.0, 3.0))
    report = train(config, "test")
    judge = Judge.from_file(config.out)
    prov = judge.metadata["provenance"]
    assert prov["steps"] == 4 and prov["best_step"] in (2, 4)
    assert prov["data_manifest_hash"] and prov["command"] == "test"
    assert 0.0 <= prov["test"]["quadrant_accuracy"] <= 1.0 and prov["test"]["n"] == 8
    assert (tmp_path / "reports" / "judge.md").read_text().startswith("# Mood judge")
    assert len(report["history"]) == 2

    # the second stage: a valence head on that judge, exported only when it beats the CNN on test valence
    from train.judge_head import HeadConfig, run

    head_out = tmp_path / "ck" / "judge_head.safetensors"
    head = run(HeadConfig(base=config.out, out=str(head_out), cache_dir=str(cache), report_dir=str(tmp_path / "r2"),
                          vgmidi_csv="", bootstrap=20), "head test")
    text = (tmp_path / "r2" / "judge.md").read_text()
    assert "| base test | 8 |" in text and "| new test | 8 |" in text and "valence ±" in text
    assert head["exported"] == head_out.is_file()
    if head["exported"]:
        shipped = Judge.from_file(head_out)
        assert shipped.net.config.feature_set == FEATURE_SET
        assert set(shipped.metadata["provenance"]["uncertainty"]) == {"valence", "arousal"}

    # the shared training skeleton: the run resumes from its saved state, logging each evaluation once
    with pytest.raises(SystemExit, match="pass --resume to continue it"):
        train(config, "test")
    longer = train(dataclasses.replace(config, max_steps=6), "test resumed", resume=True)
    assert longer["provenance"]["steps"] == 6 and [h["step"] for h in longer["history"]] == [2, 4, 6]
    logged = [json.loads(line)["step"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert logged == [2, 4, 6]


HEADED = JudgeConfig(n_mels=16, channels=(8, 12), kernel_sizes=(3, 3), embed_dim=6, feature_set=FEATURE_SET)


def test_valence_head_round_trip_and_strict_load(tmp_path):
    torch.manual_seed(5)
    net = JudgeNet(HEADED).eval()
    with torch.no_grad():
        net.valence_head.weight.normal_()
        net.feature_mean.uniform_(-1, 1)
    path = save_component(tmp_path / "judge.safetensors", net, small_params(), {"git_sha": "x"}, half=False)
    judge_a, judge_b = Judge(net, small_params()), Judge.from_file(path)
    mel = np.random.default_rng(6).uniform(-1, 1, (16, 70)).astype(np.float32)
    assert judge_a.predict(mel) == judge_b.predict(mel)
    cnn = Judge(JudgeNet(SMALL), small_params())
    cnn.net.load_state_dict({k: v for k, v in net.state_dict().items() if k in cnn.net.state_dict()})
    assert cnn.predict(mel)[1] == judge_b.predict(mel)[1]  # the head changes valence only
    with pytest.raises(ValueError, match="cues"):
        net(torch.zeros(1, 16, 40))
    # a file whose config names a feature set this moodgen does not know: one line naming the file
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "future.safetensors"),
              metadata={"moodgen": json.dumps({**read_metadata(path), "config": {**to_dict(HEADED),
                                                                                  "feature_set": "chroma-mode-9"}})})
    with pytest.raises(CheckpointError, match="unknown valence feature set 'chroma-mode-9'") as info:
        Judge.from_file(tmp_path / "future.safetensors")
    assert "\n" not in str(info.value) and "future.safetensors" in str(info.value)
    # head weights in a file whose config has no head: refused, not silently dropped
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "mixed.safetensors"),
              metadata={"moodgen": json.dumps({**read_metadata(path), "config": to_dict(SMALL)})})
    with pytest.raises(CheckpointError, match="unexpected"):
        Judge.from_file(tmp_path / "mixed.safetensors")


def test_older_judge_files_load_without_a_head(tmp_path):
    """Judge files written before the valence head have no feature_set in their config: CNN-only judges."""
    net = JudgeNet(SMALL).eval()
    path = save_component(tmp_path / "judge.safetensors", net, small_params(), {}, half=False)
    meta = read_metadata(path)
    del meta["config"]["feature_set"]
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "old.safetensors"),
              metadata={"moodgen": json.dumps(meta)})
    old = Judge.from_file(tmp_path / "old.safetensors")
    assert old.net.config.feature_set == "" and not hasattr(old.net, "valence_head")


def test_fit_head_blends_cnn_and_cues():
    from train.judge_head import HeadConfig, fit_head, with_head

    rng = np.random.default_rng(7)
    cues = {s: rng.standard_normal((n, N_FEATURES)) for s, n in (("train", 60), ("val", 30))}
    valence = {s: np.tanh(c[:, 2]) for s, c in cues.items()}  # valence follows the "mode" cue
    head = fit_head(cues, rng.standard_normal(30), valence, HeadConfig(blends=5))
    assert head["blend"] < 0.5 and head["val_spearman"] > 0.9  # the uninformative CNN gets little weight
    base = Judge(JudgeNet(SMALL), small_params())
    net = with_head(base, head)
    assert net.config.feature_set == FEATURE_SET
    assert torch.allclose(net.valence_head.weight[0, 0], torch.tensor(head["blend"], dtype=torch.float32))
