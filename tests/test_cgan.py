"""moodgen.cgan (the seed's cGAN baseline) and its training run (train.cgan) on a tiny synthetic cache."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from synthetic_cache import SMALL_MEL, make_cache

from moodgen import cgan
from moodgen.cgan import CGANConfig, CGANDiscriminator, CGANGenerator, generate
from moodgen.checkpoint import save_component
from moodgen.config import MelParams
from train.cgan import CGANTrainConfig, main, parse_overrides

# Small enough for a test, same code path: 16 bands x 64 frames (SMALL_MEL of the synthetic cache).
SMALL = CGANConfig(n_mels=16, frames=64, noise_dim=32, g_channels=32, d_channels=(4, 8, 8, 8), d_hidden=8)
SMALL_OVERRIDES = [("model.n_mels", "16"), ("model.frames", "64"), ("model.noise_dim", "32"),
                   ("model.g_channels", "32"), ("model.d_channels", "4,8,8,8"), ("model.d_hidden", "8"),
                   ("threads", "1")]


def argv(pairs: list[tuple[str, str]], *flags: str) -> list[str]:
    return [a for k, v in pairs for a in (f"--{k}", v)] + list(flags)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return make_cache(tmp_path_factory.mktemp("cgan") / "cache")


def test_shapes_and_range():
    torch.manual_seed(0)
    gen, disc = CGANGenerator(SMALL), CGANDiscriminator(SMALL)
    mel = gen(torch.randn(3, SMALL.noise_dim), torch.zeros(3, 2))
    assert mel.shape == (3, 16, 64) and mel.abs().max() <= 1.0
    assert disc(mel, torch.zeros(3, 2)).shape == (3,)
    default = CGANConfig()
    assert CGANGenerator(default)(torch.randn(2, 256), torch.zeros(2, 2)).shape == (2, MelParams().n_mels, 256)


@pytest.mark.parametrize("kwargs", [{"frames": 100}, {"n_mels": 24}, {"g_dropout": 1.0}, {"d_channels": ()},
                                    {"g_channels": 4}, {"d_input_noise": -0.1}])
def test_config_rejects_invalid(kwargs):
    with pytest.raises(ValueError):
        CGANConfig(**{**vars(SMALL), **kwargs})


def test_generate_tiles_independent_windows_deterministically():
    torch.manual_seed(0)
    gen = CGANGenerator(SMALL)
    long = generate(gen, 0.5, -0.5, 150, seed=3)
    assert long.shape == (16, 150) and long.dtype == np.float32
    np.testing.assert_array_equal(long, generate(gen, 0.5, -0.5, 150, seed=3))
    # window 0 is the same draw whatever the length (up to batch-size-dependent rounding)
    np.testing.assert_allclose(long[:, :64], generate(gen, 0.5, -0.5, 64, seed=3), atol=1e-6)
    assert not np.array_equal(long[:, :64], long[:, 64:128])  # later windows get their own noise
    assert not np.array_equal(long, generate(gen, 0.5, -0.5, 150, seed=4))
    with pytest.raises(ValueError):
        generate(gen, 0.0, 0.0, 0)


def test_save_load_gives_identical_output(tmp_path):
    torch.manual_seed(1)
    gen = CGANGenerator(SMALL)
    with torch.no_grad():  # non-trivial running statistics, so eval-mode batch norm is exercised
        gen(torch.randn(8, SMALL.noise_dim), torch.rand(8, 2) * 2 - 1)
    path = save_component(tmp_path / "cgan.safetensors", gen, MelParams(n_mels=16), {"steps": 0},
                          half=False)
    loaded, meta = CGANGenerator.from_file(path)
    assert meta["config"]["frames"] == 64
    np.testing.assert_array_equal(generate(gen, -0.2, 0.7, 100, 5), generate(loaded, -0.2, 0.7, 100, 5))


def test_overrides():
    config = parse_overrides(CGANTrainConfig(), [("max_minutes", "20"), ("model.d_channels", "8,8,8,8")])
    assert config.max_minutes == 20.0 and config.model.d_channels == (8, 8, 8, 8)
    with pytest.raises(SystemExit, match="unknown option"):
        parse_overrides(CGANTrainConfig(), [("nope", "1")])


def test_smoke_training_exports_a_loadable_baseline(cache, tmp_path):
    runs = tmp_path / "runs"
    assert main(argv([("cache", str(cache)), ("runs", str(runs))] + SMALL_OVERRIDES, "--smoke")) == 0
    out = runs / "smoke" / "checkpoints"
    gen, meta = CGANGenerator.from_file(out / "cgan.safetensors")
    prov = meta["provenance"]
    assert prov["steps"] == 3 and prov["generator_steps"] == 12
    assert prov["command"].startswith("python -m train --model cgan --cache")
    assert prov["data_manifest_hash"] and prov["git_sha"] and prov["wall_time_s"] > 0
    assert meta["mel_params"]["n_mels"] == 16
    card = json.loads((out / "model_card.json").read_text())
    entry = card["components"]["cgan"]
    assert entry["loss_labels"]["val_loss"] == "discriminator" and entry["probes"][-1]["step"] == 3
    assert "cond_effect" in entry["probes"][-1] and "discriminator loss" in (out / "MODEL_CARD.md").read_text()
    assert (runs / "smoke" / "cgan" / "state.pt").is_file()

    # fp16 release weights load as float32 and survive another save/load unchanged
    again, _ = CGANGenerator.from_file(save_component(tmp_path / "again.safetensors", gen, meta["mel_params_obj"],
                                             prov))
    np.testing.assert_array_equal(generate(gen, 0.3, 0.3, 80, 1), generate(again, 0.3, 0.3, 80, 1))

    baseline = cgan.load(out / "cgan.safetensors")
    wav, sr = baseline.generate_audio(0.5, 0.5, seconds=1.5, seed=2)
    assert sr == 8000 and wav.shape == (12000,) and np.abs(wav).max() <= 1.0
    assert baseline.generate_mel(0.5, 0.5, seconds=1.5, seed=2).shape == (16, SMALL_MEL.frames_for(1.5))


def test_resume_matches_an_uninterrupted_run(cache, tmp_path):
    def run(name, steps, resume=False):
        runs = tmp_path / name
        overrides = [("cache", str(cache)), ("runs", str(runs)), ("out", str(runs / "ck")), ("batch_size", "2"),
                     ("probe_every", "100"), ("steps", str(steps))] + SMALL_OVERRIDES
        assert main(argv(overrides, *(["--resume"] if resume else []))) == 0
        return runs / "ck" / "cgan.safetensors"

    straight = run("straight", 4)
    run("resumed", 2)
    a, _ = CGANGenerator.from_file(straight)
    b, meta = CGANGenerator.from_file(run("resumed", 4, resume=True))
    assert meta["provenance"]["steps"] == 4
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    with pytest.raises(SystemExit, match="different config"):
        main(argv([("cache", str(cache)), ("runs", str(tmp_path / "resumed")), ("out", str(tmp_path / "x")),
                   ("lr_g", "1e-3")] + SMALL_OVERRIDES, "--resume"))


def test_load_uses_the_inverter_beside_the_weights(tmp_path):
    from moodgen.inverter import InverterConfig, MelInverter
    torch.manual_seed(2)
    save_component(tmp_path / "cgan.safetensors", CGANGenerator(SMALL), SMALL_MEL, {"steps": 0})
    assert cgan.load(tmp_path / "cgan.safetensors").inverter is None
    inverter = MelInverter(InverterConfig(n_mels=16, n_freqs=SMALL_MEL.n_freqs, channels=8, n_blocks=1, expansion=1))
    save_component(tmp_path / "inverter.safetensors", inverter, SMALL_MEL, {"steps": 0})
    baseline = cgan.load(tmp_path / "cgan.safetensors")
    assert isinstance(baseline.inverter, MelInverter)
    wav, sr = baseline.generate_audio(-0.5, 0.5, seconds=1.0, seed=0)
    assert sr == SMALL_MEL.sample_rate and wav.shape == (SMALL_MEL.sample_rate,) and np.isfinite(wav).all()
