"""Training smoke runs on the real model configs over a small synthetic EMOPIA-layout corpus."""
from __future__ import annotations

import json

import pytest
import torch

from moodgen.checkpoint import load_component
from moodgen.pipeline import MoodPipeline
from tests.synthetic_emopia import write_emopia_folder
from train.prepare import main as prepare_main
from train.train import TrainConfig, default_model, engine_defaults, main as train_main, parse_overrides


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    midi = write_emopia_folder(root / "EMOPIA_1.0")
    assert prepare_main(["--root", str(midi), "--out", str(root / "cache"), "--workers", "1"]) == 0
    return root


@pytest.mark.parametrize("engine, kind", [("notes", "note_model"), ("mel", "mel_flow")])
def test_smoke_training_exports_a_loadable_checkpoint(corpus, engine, kind):
    runs = corpus / f"runs_{engine}"
    assert train_main(["--engine", engine, "--smoke", "--cache", str(corpus / "cache"), "--runs", str(runs),
                       "--threads", "1"]) == 0
    out = runs / "smoke" / "checkpoints"
    model, meta = load_component(out / f"{kind}.safetensors", kind=kind)
    assert meta["config"] == json.loads(json.dumps(vars(default_model(engine))))
    prov = meta["provenance"]
    assert prov["steps"] == 3 and prov["data_manifest_hash"] and prov["git_sha"]
    card = json.loads((out / "model_card.json").read_text())
    assert "CC BY-NC-SA" in card["licence"] and kind in card["components"]
    run_config = json.loads((runs / "smoke" / engine / "config.json").read_text())
    assert run_config["engine"] == engine and run_config["steps"] == 3
    assert (runs / "smoke" / engine / "state.pt").is_file()
    gen = MoodPipeline.from_checkpoint(out).generate(0.5, 0.5, seconds=2.0, steps=2, engine=engine)
    assert gen.audio.shape == (2 * 22050,)


def test_resume_matches_an_uninterrupted_run(corpus):
    def run(name, steps, resume=False):
        runs = corpus / name
        args = ["--engine", "notes", "--cache", str(corpus / "cache"), "--runs", str(runs), "--out",
                str(runs / "ck"), "--threads", "1", "--batch_size", "2", "--warmup_steps", "1",
                "--probe_every", "100", "--steps", str(steps)]
        assert train_main(args + (["--resume"] if resume else [])) == 0
        return runs / "ck" / "note_model.safetensors"

    straight = run("straight", 4)
    run("resumed", 2)
    resumed = run("resumed", 4, resume=True)
    a, _ = load_component(straight)
    b, meta = load_component(resumed)
    assert meta["provenance"]["steps"] == 4
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    with pytest.raises(SystemExit, match="different config"):
        train_main(["--engine", "notes", "--cache", str(corpus / "cache"), "--runs", str(corpus / "resumed"),
                    "--threads", "1", "--batch_size", "4", "--resume"])


def test_overrides_and_validation():
    cfg = parse_overrides(engine_defaults("notes"), [("steps", "10"), ("model.channels", "32"),
                                                    ("model.dilations", "1,2")])
    assert cfg.steps == 10 and cfg.model.channels == 32 and cfg.model.dilations == (1, 2)
    with pytest.raises(SystemExit, match="unknown option --bogus"):
        parse_overrides(cfg, [("bogus", "1")])
    with pytest.raises(ValueError, match="needs a FlowConfig"):
        TrainConfig(engine="mel", model=default_model("notes"))
    cfg = parse_overrides(engine_defaults("mel"), [("model.base_channels", "32"), ("model.channel_mults", "1,2")])
    assert cfg.model.base_channels == 32 and cfg.model.channel_mults == (1, 2)
