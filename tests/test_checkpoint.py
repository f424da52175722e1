"""The one save/load pair: identical outputs after save -> load, self-describing metadata, strict refusals."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from moodgen.checkpoint import FORMAT_VERSION, CheckpointError, read_metadata, save_component
from moodgen.config import MelParams
from moodgen.flow_model import FlowModel, sample
from moodgen.note_model import NoteModel
from tests.conftest import tiny_flow


@pytest.fixture
def saved(tmp_path):
    model = tiny_flow(12, seed=3)
    path = save_component(tmp_path / "m.safetensors", model, MelParams(),
                          {"git_sha": "abc", "data_manifest_hash": "def", "steps": 7}, half=False)
    return model, path


def test_round_trip_gives_identical_samples(saved):
    model, path = saved
    loaded, meta = FlowModel.from_file(path)
    mood = torch.tensor([[0.1, -0.4]])
    assert torch.equal(sample(model.eval(), mood, 8, 3, 2.0, seed=0), sample(loaded, mood, 8, 3, 2.0, seed=0))
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["mel_params_obj"] == MelParams()
    assert meta["config"]["in_channels"] == 12
    assert meta["provenance"] == {"git_sha": "abc", "data_manifest_hash": "def", "steps": 7}


def test_half_precision_round_trip_is_close(tmp_path):
    model = tiny_flow(12, seed=3).eval()
    loaded, _ = FlowModel.from_file(save_component(tmp_path / "h.safetensors", model, MelParams(), {}))
    mood = torch.tensor([[0.5, 0.5]])
    a, b = sample(model, mood, 8, 2, 1.0, seed=0), sample(loaded, mood, 8, 2, 1.0, seed=0)
    assert (a - b).abs().max() < 0.05


def test_refuses_wrong_kind_unknown_version_and_foreign_files(saved, tmp_path):
    _, path = saved
    with pytest.raises(ValueError, match="expected 'note_model'"):
        NoteModel.from_file(path)
    state = {k: v.float() for k, v in tiny_flow(12, 3).state_dict().items()}
    meta = read_metadata(path)
    meta.pop("mel_params_obj", None)
    bad = tmp_path / "v99.safetensors"
    save_file(state, str(bad), metadata={"moodgen": json.dumps(dict(meta, format_version=99))})
    with pytest.raises(ValueError, match="format version 99 is not supported"):
        FlowModel.from_file(bad)
    foreign = tmp_path / "foreign.safetensors"
    save_file(state, str(foreign))
    with pytest.raises(ValueError, match="not a moodgen checkpoint"):
        FlowModel.from_file(foreign)


def test_load_is_strict_about_tensors(saved, tmp_path):
    _, path = saved
    meta = read_metadata(path)
    state = {k: v.float() for k, v in tiny_flow(12, 3).state_dict().items()}
    state.pop(next(iter(state)))
    partial = tmp_path / "partial.safetensors"
    save_file(state, str(partial), metadata={"moodgen": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="partial.safetensors: tensors do not match"):
        FlowModel.from_file(partial)


def test_save_refuses_a_mismatched_kind(tmp_path):
    with pytest.raises(TypeError, match="not a Component"):
        save_component(tmp_path / "x.safetensors", torch.nn.Linear(2, 2), MelParams(), {})


def test_round_trip_keeps_the_key_prior(tmp_path):
    model = tiny_flow(12, seed=3, keys=True).eval()
    path = save_component(tmp_path / "m.safetensors", model, MelParams(), {"steps": 1}, half=False)
    loaded, _ = FlowModel.from_file(path)
    assert torch.equal(loaded.key.prior, model.key.prior) and loaded.key.prior.abs().sum() > 0
    mood, key = torch.tensor([[0.5, -0.5]]), torch.tensor([7])
    assert torch.equal(sample(model, mood, 8, steps=3, seed=1, key=key),
                       sample(loaded, mood, 8, steps=3, seed=1, key=key))
