"""The engine interface: a new engine is one class registered from anywhere (here, this test), and the note engine's
incremental sampler computes exactly what the teacher-forced network computes, causally."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from moodgen import render
from moodgen.checkpoint import Component, save_component
from moodgen.config import MelParams, RollParams
from moodgen.engines import Engine, EngineOutput, base, engine_class, engine_names, register
from moodgen.pipeline import MoodPipeline
from tests.conftest import tiny_note_model
from train.train import TrainConfig


@dataclass(frozen=True)
class ToneConfig:
    base_hz: float = 220.0


class ToneModel(nn.Module, Component):
    """A sine whose pitch follows valence and whose level follows arousal."""

    kind = "tone_test"
    config_class = ToneConfig

    def __init__(self, config: ToneConfig):
        super().__init__()
        self.config = config
        self.level = nn.Parameter(torch.tensor(0.3))
        self.key = None


class ToneEngine(Engine):
    name = "tone"
    label = "tone: a test sine"
    rank = 99
    weights_file = "tone.safetensors"
    model_class = ToneModel
    uses_steps = False
    makes_midi = False
    cache_field = "mel"
    transposes_on_the_fly = False

    def generate(self, mood, seconds, seed, steps, guidance, key, instrument=None, soundfont=None) -> EngineOutput:
        v, a = (float(x) for x in mood[0])
        t = np.arange(int(round(seconds * self.mel_params.sample_rate))) / self.mel_params.sample_rate
        level = float(self.model.level.detach()) * (1.5 + a)
        return EngineOutput(audio=(level * np.sin(2 * np.pi * self.model.config.base_hz * 2 ** v * t)).astype(
            np.float32), mel=None, midi=None, render={})

    @staticmethod
    def default_model_config() -> ToneConfig:
        return ToneConfig()

    @staticmethod
    def loss(model, x, mood, cond_dropout, generator, key) -> torch.Tensor:
        return (model.level - x.mean()) ** 2

    @staticmethod
    def encode_crop(raw: np.ndarray, shift: int) -> np.ndarray:
        return np.asarray(raw, dtype=np.float32).T

    @staticmethod
    def sample(model, mood, frames, steps, guidance, seed, key) -> np.ndarray:
        return np.zeros((mood.shape[0], MelParams().n_mels, frames), dtype=np.float32)

    @staticmethod
    def correlates(x: np.ndarray, mel_params: MelParams, roll_params: RollParams) -> dict[str, Any]:
        return {"level": float(x.mean())}


@pytest.fixture
def tone_registered(monkeypatch):
    monkeypatch.setitem(base._REGISTRY, "tone", ToneEngine)  # removed again after the test
    register(ToneEngine)
    return ToneEngine


def test_a_new_engine_is_one_registered_class(tone_registered, tmp_path):
    assert engine_names()[-1] == "tone" and engine_class("tone") is ToneEngine
    save_component(tmp_path / "tone.safetensors", ToneModel(ToneConfig()), MelParams(), {"sampler": {"guidance": 1}})
    pipe = MoodPipeline.from_checkpoint(tmp_path)
    assert pipe.engines == ("tone",) and pipe.default_engine == "tone"
    assert not pipe.engine("tone").continues
    pipe.warmup()  # a clip, and no stream for an engine without sessions
    low, high = (pipe.generate(0.0, a, seconds=1.0, seed=0) for a in (-0.9, 0.9))
    assert low.engine == "tone" and low.steps is None and low.midi is None and low.key is None
    assert np.abs(high.audio).max() > 2 * np.abs(low.audio).max()  # arousal -> level, through the pipeline
    assert low.mel.shape[0] == MelParams().n_mels  # the display mel comes from the audio when the engine has none
    files = low.save(tmp_path / "tone.wav")
    assert [f.suffix for f in files] == [".wav", ".json"]
    assert TrainConfig(engine="tone", model=ToneConfig()).engine_class is ToneEngine  # training accepts it too
    with pytest.raises(ValueError, match="already registered"):
        register(type("Other", (ToneEngine,), {}))


def test_registry_refuses_unknown_names():
    with pytest.raises(ValueError, match="engine must be one of notes, mel"):
        engine_class("tape")


def incremental_logits(model, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """Logits for every frame of x (B, 2K, T) computed one frame at a time with `NoteModel.step`."""
    queues = model.empty_queues(x.shape[0])
    frame = torch.full((x.shape[0], x.shape[1]), -1.0)  # the silent frame before the first
    out = []
    for t in range(x.shape[-1]):
        out.append(model.step(frame, queues, cond))
        frame = x[:, :, t]
    return torch.stack(out, dim=-1)


@torch.no_grad()
def test_incremental_steps_equal_the_teacher_forced_pass_and_are_causal():
    model = tiny_note_model(0, keys=True).eval()
    torch.manual_seed(1)
    b, t = 2, 40  # longer than the receptive field (1 + 1 + 2 frames), so every queue wraps
    x = torch.where(torch.rand(b, 2 * model.config.n_keys, t) < 0.1, 1.0, -1.0)
    mood, drop, key = torch.tensor([[0.5, -0.3], [-0.8, 0.9]]), torch.tensor([False, True]), torch.tensor([3, 17])
    forward = model(x, mood, drop, key)
    cond = model.mood_embedding(mood, drop, key)
    step = incremental_logits(model, x, cond)
    assert forward.shape == step.shape == (b, 3 * model.config.n_keys, t)
    torch.testing.assert_close(step, forward, rtol=1e-5, atol=1e-5)
    changed = x.clone()
    changed[:, :, 25] = -changed[:, :, 25]
    after = model(changed, mood, drop, key)
    assert torch.equal(after[..., :26], forward[..., :26])  # logits at t see frames < t only
    assert not torch.equal(after[..., 26:], forward[..., 26:])


def test_warmup_leaves_one_loaded_soundfont_shared_by_renders_and_streams(tiny_checkpoints):
    pipe = MoodPipeline.from_checkpoint(tiny_checkpoints, soundfont=render.bundled_soundfont())
    pipe.warmup()  # a render and a stream: before, each kept its own copy (two FluidR3 GM copies are 570 MB)
    renderer = pipe.engine("notes").renderer
    assert renderer.copies_loaded == 1 and renderer.idle_copies == 1
    live = pipe.stream(lambda: (0.5, 0.5), chunk_seconds=0.25, engine="notes")
    next(live)  # the stream holds the copy, so a render meanwhile loads a second
    pipe.generate(0.5, 0.5, seconds=1.0, seed=1, engine="notes")
    live.close()
    assert renderer.copies_loaded == 2
