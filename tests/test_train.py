"""Training smoke runs on the real model configs over a small synthetic EMOPIA-layout corpus."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from moodgen.engines import engine_class
from moodgen.keys import transpose_key
from moodgen.mood import PRESETS
from moodgen.note_model import NoteModel
from moodgen.pipeline import MoodPipeline
from tests.synthetic_emopia import write_emopia_folder
from train.corpus.cache import CorpusCache
from train.data import CropSampler
from train.prepare import main as prepare_main
from train.probes import GUIDANCE_CANDIDATES
from train.train import TrainConfig, engine_defaults, parse_overrides
from train.train import main as train_main


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    midi = write_emopia_folder(root / "EMOPIA_1.0")
    assert prepare_main(["--root", str(midi), "--out", str(root / "cache"), "--workers", "1"]) == 0
    return root


@pytest.mark.parametrize("engine", ["notes", "mel"])
def test_smoke_training_exports_a_loadable_checkpoint(corpus, engine):
    cls = engine_class(engine)
    kind = cls.model_class.kind
    runs = corpus / f"runs_{engine}"
    assert train_main(["--engine", engine, "--smoke", "--cache", str(corpus / "cache"), "--runs", str(runs),
                       "--threads", "1"]) == 0
    out = runs / "smoke" / "checkpoints"
    model, meta = cls.model_class.from_file(out / cls.weights_file)
    assert meta["config"] == json.loads(json.dumps(vars(cls.default_model_config())))
    prov = meta["provenance"]
    assert prov["steps"] == 3 and prov["data_manifest_hash"] and prov["git_sha"]
    # the exported guidance is the candidate nearest the validation clips' correlates
    distances = prov["guidance_selection"]["distance_to_validation"]
    assert set(distances) == {str(g) for g in GUIDANCE_CANDIDATES}
    assert distances[str(prov["sampler"]["guidance"])] == min(distances.values())
    assert model.key.prior.abs().sum() > 0 and set(prov["key_prior_major"]) == set(PRESETS)
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
    a, _ = NoteModel.from_file(straight)
    b, meta = NoteModel.from_file(resumed)
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
        TrainConfig(engine="mel", model=engine_class("notes").default_model_config())
    cfg = parse_overrides(engine_defaults("mel"), [("model.base_channels", "32"), ("model.channel_mults", "1,2")])
    assert cfg.model.base_channels == 32 and cfg.model.channel_mults == (1, 2)


def test_crop_keys_follow_transposition(corpus):
    cache = CorpusCache(corpus / "cache")
    mel = CropSampler(cache, engine_class("mel"), "train", 16)
    by_clip = {}
    for item, key in zip(mel.items, mel.keys):
        by_clip.setdefault(item["clip_id"], {})[item["transpose"]] = key
    assert by_clip and all(set(ks) == {-2, 0, 2} for ks in by_clip.values())
    for ks in by_clip.values():
        assert ks[2] == transpose_key(ks[0], 2) and ks[-2] == transpose_key(ks[0], -2)
    notes = CropSampler(cache, engine_class("notes"), "train", 16, max_shift=3)
    x, mood, key = notes.batch(32, np.random.default_rng(0))
    assert x.shape[0] == mood.shape[0] == key.shape[0] == 32 and key.dtype == np.int64
    allowed = {transpose_key(k, s) for k in notes.keys for s in range(-3, 4)}
    assert set(key.tolist()) <= allowed
    assert len(set(key.tolist())) > len(set(notes.keys))  # shifted crops carry shifted keys
