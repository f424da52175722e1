"""The flow generator: config checks, shapes, sampler determinism, guidance, loss."""
from __future__ import annotations

import pytest
import torch

from moodgen.conditioning import mood_fourier_features
from moodgen.flow_model import FlowConfig, FlowModel, flow_matching_loss, sample
from tests.conftest import tiny_flow


def test_config_cross_field_checks():
    with pytest.raises(ValueError, match="groups"):
        FlowConfig(base_channels=10, groups=8)
    with pytest.raises(ValueError, match="kernel_size"):
        FlowConfig(kernel_size=4)
    with pytest.raises(ValueError, match="attention_heads"):
        FlowConfig(base_channels=8, channel_mults=(1, 3), groups=4, attention_heads=5)


def test_forward_shape_and_time_multiple():
    model = tiny_flow(12, seed=0)
    x = torch.randn(3, 12, 8)
    out = model(x, torch.rand(3), torch.rand(3, 2) * 2 - 1, torch.tensor([False, True, False]))
    assert out.shape == (3, 12, 8)
    with pytest.raises(ValueError, match="multiple of 2"):
        model(torch.randn(1, 12, 7), torch.rand(1), torch.zeros(1, 2), torch.zeros(1, dtype=torch.bool))


def test_fourier_features_shape():
    assert mood_fourier_features(torch.zeros(5, 2), 3).shape == (5, 2 + 4 * 3)


def test_sample_is_deterministic_per_seed_and_handles_any_length():
    model = tiny_flow(12, seed=0).eval()
    mood = torch.tensor([[0.7, 0.7]])
    a = sample(model, mood, frames=13, steps=3, guidance=2.0, seed=5)
    b = sample(model, mood, frames=13, steps=3, guidance=2.0, seed=5)
    c = sample(model, mood, frames=13, steps=3, guidance=2.0, seed=6)
    assert a.shape == (1, 12, 13)
    assert torch.equal(a, b)
    assert (a - c).abs().mean() > 1e-3


def test_condition_and_guidance_change_the_sample():
    model = tiny_flow(12, seed=0).eval()
    happy = sample(model, torch.tensor([[0.7, 0.7]]), 8, 3, 2.0, seed=1)
    sad = sample(model, torch.tensor([[-0.7, -0.7]]), 8, 3, 2.0, seed=1)
    uncond = sample(model, torch.tensor([[0.7, 0.7]]), 8, 3, 0.0, seed=1)
    assert (happy - sad).abs().mean() > 1e-4
    assert (happy - uncond).abs().mean() > 1e-4
    with pytest.raises(ValueError, match="steps"):
        sample(model, torch.zeros(1, 2), 8, 0)


def test_loss_is_finite_and_trains():
    torch.manual_seed(0)
    model = FlowModel(FlowConfig(in_channels=4, base_channels=8, channel_mults=(1, 2), blocks_per_level=1,
                                 cond_dim=16, attention_heads=2, groups=4))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    x1 = torch.ones(8, 4, 8) * 0.5
    mood = torch.zeros(8, 2)
    gen = torch.Generator().manual_seed(0)
    first = flow_matching_loss(model, x1, mood, 0.1, gen).item()
    for _ in range(30):
        loss = flow_matching_loss(model, x1, mood, 0.1, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.isfinite(loss)
    assert loss.item() < first


def test_key_condition_moves_the_output_and_is_required():
    model = tiny_flow(12, seed=0, keys=True).eval()
    x, t, mood = torch.randn(2, 12, 8), torch.rand(2), torch.zeros(2, 2)
    keep, drop = torch.zeros(2, dtype=torch.bool), torch.ones(2, dtype=torch.bool)
    c_major, a_minor = torch.tensor([0, 0]), torch.tensor([21, 21])
    assert (model(x, t, mood, keep, c_major) - model(x, t, mood, keep, a_minor)).abs().mean() > 1e-3
    # the unconditional branch drops the key with the mood
    assert torch.equal(model(x, t, mood, drop, c_major), model(x, t, mood, drop, a_minor))
    with pytest.raises(ValueError, match="conditioned on a musical key"):
        model(x, t, mood, keep)
    s1 = sample(model, mood[:1], 8, steps=2, seed=0, key=c_major[:1])
    assert not torch.equal(s1, sample(model, mood[:1], 8, steps=2, seed=0, key=a_minor[:1]))
