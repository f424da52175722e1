"""The note sampler's fast loop (per-clip StepContext, one random draw per clip, numpy bookkeeping) gives the same
rolls as the plain frame-by-frame loop it replaced, and a condition can change from frame to frame."""
from __future__ import annotations

import numpy as np
import torch
from conftest import tiny_note_model

from moodgen.midi import ONSET_FLOOR
from moodgen.note_model import StepContext, sample_roll


@torch.no_grad()
def plain_sample_roll(model, mood, frames, guidance, seed, key):
    """The sampler as first written: `NoteModel.step` without a context, torch bookkeeping, two draws per frame."""
    k, b = model.config.n_keys, mood.shape[0]
    gen = torch.Generator().manual_seed(seed)
    drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)])
    cond = model.mood_embedding(torch.cat([mood, mood]), drop, torch.cat([key, key]))
    queues = model.empty_queues(2 * b)
    frame = torch.full((2 * b, 2 * k), -1.0)
    active, onset = np.zeros((b, frames, k), dtype=np.uint8), np.zeros((b, frames, k), dtype=np.uint8)
    current_vel = torch.zeros(b, k)
    for t in range(frames):
        logits = model.step(frame, queues, cond)
        lc, lu = logits[:b], logits[b:]
        guided = lu + guidance * (lc - lu)
        p_onset, p_sound = torch.sigmoid(guided[:, :k]), torch.sigmoid(guided[:, k:2 * k])
        vel = torch.sigmoid(lc[:, 2 * k:])
        new = torch.rand(b, k, generator=gen) < p_onset
        sounding = new | ((current_vel > 0) & (torch.rand(b, k, generator=gen) < p_sound))
        current_vel = torch.where(new, (1 + vel * 126).round(), torch.where(sounding, current_vel, 0.0))
        onset[:, t] = torch.where(new, current_vel, 0.0).numpy().astype(np.uint8)
        active[:, t] = current_vel.numpy().astype(np.uint8)
        enc = torch.cat([torch.where(sounding, 1.0, -1.0),
                         torch.where(new, ONSET_FLOOR + (1 - ONSET_FLOOR) * current_vel / 127.0, -1.0)], dim=1)
        frame = torch.cat([enc, enc])
    return active, onset


def test_fast_sampler_gives_the_plain_loops_rolls_bit_for_bit():
    model = tiny_note_model(0, keys=True).eval()
    mood, key = torch.tensor([[0.6, 0.8], [-0.7, -0.2]]), torch.tensor([5, 20])
    for seed, guidance in ((0, 1.5), (7, 0.0), (3, 3.0)):
        fast = sample_roll(model, mood, 50, guidance, seed=seed, key=key)
        plain = plain_sample_roll(model, mood, 50, guidance, seed, key)
        assert fast[0].any(), "the tiny model should play something"
        np.testing.assert_array_equal(fast[0], plain[0])
        np.testing.assert_array_equal(fast[1], plain[1])


@torch.no_grad()
def test_a_condition_can_change_from_frame_to_frame():
    model = tiny_note_model(1, keys=True).eval()
    key = torch.tensor([0])
    conds = [model.mood_embedding(torch.tensor([[v, 0.5]]), torch.tensor([False]), key) for v in (-0.9, 0.0, 0.9)]
    frame = torch.where(torch.rand(1, 2 * model.config.n_keys) < 0.2, 1.0, -1.0)
    context, queues, plain_queues = StepContext.build(model, conds[0]), model.empty_queues(1), model.empty_queues(1)
    outs = []
    for cond in conds:  # one frame each: the journey's condition moves, the queues carry on
        context = context.with_condition(model, cond)
        outs.append(model.step(frame, queues, cond, context))
        torch.testing.assert_close(outs[-1], model.step(frame, plain_queues, cond), rtol=0, atol=0)
    assert not torch.equal(outs[0], outs[2])
