"""Training smoke runs on the real model configs over a small synthetic EMOPIA-layout corpus."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from moodgen.checkpoint import file_sha256, save_component
from moodgen.config import MelParams
from moodgen.engines import engine_class
from moodgen.flow_model import FlowModel
from moodgen.keys import transpose_key
from moodgen.mood import PRESETS
from moodgen.note_model import NoteModel
from moodgen.pipeline import MoodPipeline
from tests.synthetic_emopia import write_emopia_folder
from train.corpus.cache import CorpusCache
from train.data import CropSampler, DeviceCropSampler
from train.prepare import main as prepare_main
from train.probes import GUIDANCE_CANDIDATES
from train.train import TrainConfig, engine_defaults, parse_overrides
from train.train import main as train_main

REPO = Path(__file__).resolve().parents[1]


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


def test_distilling_an_exported_mel_model_exports_a_one_pass_student(corpus):
    cls = engine_class("mel")
    torch.manual_seed(0)
    teacher_path = save_component(corpus / "teacher" / cls.weights_file, FlowModel(cls.default_model_config()),
                                  MelParams(), {"command": "python -m train --engine mel", "steps": 7,
                                                "sampler": {"guidance": 3.0, "steps": 16}})
    runs = corpus / "distilled"
    assert train_main(["--engine", "mel", "--smoke", "--cache", str(corpus / "cache"), "--runs", str(runs),
                       "--threads", "1", "--teacher", str(teacher_path)]) == 0
    out = runs / "smoke" / "checkpoints"
    student, meta = FlowModel.from_file(out / cls.weights_file)
    assert student.config == cls.distilled_config(cls.default_model_config())
    assert student.config.guidance_conditioning and student.guidance_mlp is not None
    teacher_record = meta["provenance"]["teacher"]
    assert teacher_record["sha256"] == file_sha256(teacher_path) and teacher_record["steps"] == 7
    assert meta["provenance"]["sampler"]["guidance"] == 3.0  # the guidance it was distilled at, not re-chosen
    card = (out / "MODEL_CARD.md").read_text()
    assert "Distilled from a teacher" in card and "python -m train --engine mel" in card
    assert meta["provenance"]["train_config"]["teacher"] == str(teacher_path)
    gen = MoodPipeline.from_checkpoint(out).generate(0.5, 0.5, seconds=2.0, steps=2, engine="mel")
    assert gen.audio.shape == (2 * 22050,)
    with pytest.raises(SystemExit, match="already distilled"):
        train_main(["--engine", "mel", "--smoke", "--cache", str(corpus / "cache"), "--runs", str(runs / "again"),
                    "--teacher", str(out / cls.weights_file)])
    notes = engine_class("notes")
    wrong = save_component(corpus / "teacher" / notes.weights_file, NoteModel(notes.default_model_config()),
                           MelParams(), {})
    with pytest.raises(SystemExit, match="not a mel model"):
        train_main(["--engine", "mel", "--smoke", "--cache", str(corpus / "cache"), "--runs", str(runs / "bad"),
                    "--teacher", str(wrong)])
    with pytest.raises(ValueError, match="no distilled form"):
        engine_class("notes").distilled_config(engine_class("notes").default_model_config())


@pytest.mark.parametrize("crops", ["host", "device"])
def test_resume_matches_an_uninterrupted_run(corpus, crops):
    def run(name, steps, resume=False):
        runs = corpus / crops / name
        args = ["--engine", "notes", "--cache", str(corpus / "cache"), "--runs", str(runs), "--out",
                str(runs / "ck"), "--threads", "1", "--batch_size", "2", "--warmup_steps", "1",
                "--probe_every", "100", "--steps", str(steps), "--crops", crops]
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
        train_main(["--engine", "notes", "--cache", str(corpus / "cache"), "--runs", str(corpus / crops / "resumed"),
                    "--threads", "1", "--batch_size", "4", "--crops", crops, "--resume"])


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
    assert parse_overrides(cfg, [("compile", "True")]).compile is True
    assert parse_overrides(cfg, [("compile", "false")]).compile is False
    with pytest.raises(SystemExit, match="expected a bool"):
        parse_overrides(cfg, [("compile", "yes please")])
    with pytest.raises(SystemExit, match="crops must be"):
        parse_overrides(cfg, [("crops", "gpu")])


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


def test_two_processes_train_with_ddp_resume_and_export(corpus):
    """torchrun with 2 CPU processes (gloo): rank 0 writes the state with both ranks' generators and exports."""
    runs = corpus / "ddp"
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "train",
            "--engine", "notes", "--cache", str(corpus / "cache"), "--runs", str(runs), "--out", str(runs / "ck"),
            "--threads", "1", "--batch_size", "2", "--warmup_steps", "1", "--probe_every", "100",
            "--crop_frames", "32", "--model.channels", "16", "--model.dilations", "1,2"]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    for steps, extra in (("2", []), ("4", ["--resume"])):
        done = subprocess.run([*args, "--steps", steps, *extra], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.count("exported") == 1  # rank 0 alone exports
    model, meta = NoteModel.from_file(runs / "ck" / "note_model.safetensors")
    assert meta["provenance"]["steps"] == 4 and meta["provenance"]["processes"] == 2
    assert model.config.channels == 16
    state = torch.load(runs / "notes" / "state.pt", weights_only=True)
    assert state["step"] == 4 and len(state["rngs"]) == 2
    assert state["rngs"][0]["numpy"]["state"] != state["rngs"][1]["numpy"]["state"]  # each rank its own crops
    steps = [json.loads(line)["step"] for line in (runs / "notes" / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 4


@pytest.mark.parametrize("engine", ["notes", "mel"])
def test_device_crops_match_the_host_encoding(corpus, engine):
    cache = CorpusCache(corpus / "cache")
    cls = engine_class(engine)
    host = CropSampler(cache, cls, "train", 16, max_shift=3)
    device = DeviceCropSampler(host, "cpu", torch.Generator().manual_seed(5))
    x, mood, key = device.batch(24)
    again = DeviceCropSampler(host, "cpu", torch.Generator().manual_seed(5)).batch(24)
    assert all(torch.equal(a, b) for a, b in zip((x, mood, key), again))  # seeded
    ref = host.batch(24, np.random.default_rng(0))[0]
    assert x.shape == ref.shape and x.dtype == torch.float32 and key.dtype == torch.int64
    moods = {(it["valence"], it["arousal"]) for it in host.items}
    assert {tuple(m) for m in mood.tolist()} <= {(np.float32(v), np.float32(a)) for v, a in moods}
    raw = torch.from_numpy(np.stack([host.array[i * 7:i * 7 + 16] for i in range(6)]))
    shift = torch.tensor([-3, -1, 0, 1, 2, 3]) if host.max_shift else None
    expected = np.stack([cls.encode_crop(r, s) for r, s in zip(raw.numpy(), [-3, -1, 0, 1, 2, 3] if host.max_shift
                                                               else [0] * 6)])
    torch.testing.assert_close(cls.encode_crops(raw, shift), torch.from_numpy(expected), rtol=0, atol=1e-6)
    if engine == "mel":  # every crop is a window of the clips' rows
        windows = device.window_rows(torch.arange(len(device.rows) - 15)).transpose(1, 2)  # (N - 15, M, 16)
        assert all(bool((windows == c).all(dim=(1, 2)).any()) for c in x)
    else:
        allowed = {transpose_key(k, s) for k in host.keys for s in range(-3, 4)}
        assert set(key.tolist()) <= allowed
