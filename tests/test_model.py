"""The flow generator: config checks, shapes, sampler determinism, guidance, loss."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from moodgen.conditioning import mood_fourier_features
from moodgen.flow_model import FlowConfig, FlowModel, flow_matching_loss, guidance_distillation_loss, sample
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


def distilled(teacher: FlowModel) -> FlowModel:
    student = FlowModel(dataclasses.replace(teacher.config, guidance_conditioning=True))
    assert student.load_state_dict(teacher.state_dict(), strict=False).missing_keys[0].startswith("guidance_mlp")
    return student.eval()


def test_a_fresh_student_is_its_teachers_conditional_model_in_one_pass_per_step():
    teacher = tiny_flow(12, seed=0, keys=True).eval()
    student = distilled(teacher)
    mood, key = torch.tensor([[0.7, -0.3]]), torch.tensor([3])
    passes = []
    student.register_forward_hook(lambda module, args, out: passes.append(args[0].shape[0]))
    got = sample(student, mood, 13, steps=3, guidance=3.0, seed=2, key=key)
    assert passes == [1, 1, 1]  # a batch of one per step: no unconditional pass
    assert torch.allclose(got, sample(teacher, mood, 13, steps=3, guidance=1.0, seed=2, key=key), atol=1e-6)
    x, t = torch.randn(1, 12, 8), torch.rand(1)
    with pytest.raises(ValueError, match="requires guidance"):
        student(x, t, mood, torch.zeros(1, dtype=torch.bool), key)
    with pytest.raises(ValueError, match="take none"):
        teacher(x, t, mood, torch.zeros(1, dtype=torch.bool), key, torch.ones(1))


def test_guidance_distillation_trains_the_student_towards_the_guided_teacher():
    teacher = tiny_flow(12, seed=0, keys=True).eval()
    student = distilled(teacher).train()
    x1, mood, key = torch.rand(8, 12, 8) * 2 - 1, torch.rand(8, 2) * 2 - 1, torch.randint(0, 24, (8,))
    before = [p.clone() for p in teacher.parameters()]
    opt = torch.optim.Adam(student.parameters(), 1e-3)
    losses = []
    for _ in range(20):
        loss = guidance_distillation_loss(student, teacher, x1, mood, torch.Generator().manual_seed(0), key, 3.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(torch.equal(a, b) for a, b in zip(before, teacher.parameters()))  # the teacher stays frozen
    assert all(p.grad is None for p in teacher.parameters())
    # the student now follows the guidance scale it is given
    xt, t = torch.randn(1, 12, 8), torch.full((1,), 0.5)
    keep = torch.zeros(1, dtype=torch.bool)
    assert (student(xt, t, mood[:1], keep, key[:1], torch.ones(1))
            - student(xt, t, mood[:1], keep, key[:1], torch.full((1,), 5.0))).abs().mean() > 1e-4
