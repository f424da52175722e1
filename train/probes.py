"""Cheap checks, during training, that the mood condition takes hold: simple correlates per preset."""
from __future__ import annotations

import numpy as np
import torch

from moodgen import notes
from moodgen.config import MelParams, RollParams
from moodgen.keys import key_probabilities, sample_keys
from moodgen.model import sample
from moodgen.note_model import sample_roll
from moodgen.mood import PRESETS
from train.corpus.features import key_profile_scores


def roll_correlates(x: np.ndarray, roll: RollParams) -> dict[str, float]:
    """Mood correlates of one encoded roll (2K, T): onsets/s, mean onset velocity, major-minus-minor, mean pitch."""
    active, onset = notes.decode_roll(x)
    seconds = x.shape[1] / roll.fps
    pcs = np.zeros(12)
    keys = np.arange(roll.n_keys) + roll.lowest_pitch
    np.add.at(pcs, keys % 12, (active > 0).sum(axis=0))
    major, minor = key_profile_scores(pcs)
    ons = onset[onset > 0]
    sounding = np.nonzero(active)[1]
    return {"onsets_per_s": float((onset > 0).sum() / seconds), "velocity": float(ons.mean()) if ons.size else 0.0,
            "mode": major - minor, "pitch": float(keys[sounding].mean()) if sounding.size else 0.0}


def mel_correlates(x: np.ndarray, params: MelParams) -> dict[str, float]:
    """Mood correlates of one normalized log-mel (M, T): mean level (dB) and spectral flux per second."""
    db = (x + 1) / 2 * (params.db_max - params.db_min) + params.db_min
    flux = np.clip(np.diff(db, axis=1), 0, None).mean(axis=0)
    return {"level_db": float(db.mean()), "flux_per_s": float(flux.sum() / (x.shape[1] / params.frames_per_second))}


def preset_moods() -> tuple[list[str], torch.Tensor]:
    return list(PRESETS), torch.tensor(list(PRESETS.values()), dtype=torch.float32)


def major_probability(model: torch.nn.Module) -> dict[str, float]:
    """p(major key | preset) under a key-conditioned model's prior."""
    names, moods = preset_moods()
    p = key_probabilities(model.key.prior, moods)[:, :12].sum(dim=1)
    return {n: round(float(v), 3) for n, v in zip(names, p)}


@torch.no_grad()
def condition_probe(model: torch.nn.Module, engine: str, frames: int, steps: int, guidance: float,
                    seeds: tuple[int, ...] = (0, 1)) -> dict:
    """Per-preset correlates averaged over `seeds`, and how much the condition moves samples compared with the
    noise seed: cond_effect = mean |x(preset) - x(unconditional)| / mean |x(seed a) - x(seed b)| (same preset)."""
    model.eval()
    names, moods = preset_moods()

    def keys(seed: int) -> torch.Tensor | None:
        return None if model.key is None else sample_keys(model.key.prior, moods, seed)

    if engine == "notes":
        def draw(g: float, seed: int) -> np.ndarray:
            active, onset = sample_roll(model, moods, frames, g, seed=seed, key=keys(seed))
            return np.stack([notes.encode_roll(a, o) for a, o in zip(active, onset)])
    else:
        def draw(g: float, seed: int) -> np.ndarray:
            return sample(model, moods, frames, steps, g, seed=seed, key=keys(seed)).cpu().numpy()

    per_seed = [draw(guidance, s) for s in seeds]
    uncond = draw(0.0, seeds[0])
    measure = ((lambda x: roll_correlates(x, RollParams())) if engine == "notes"
               else (lambda x: mel_correlates(x, MelParams())))
    out = {}
    for i, name in enumerate(names):
        rows = [measure(xs[i]) for xs in per_seed]
        out[name] = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}
    seed_gap = float(np.abs(per_seed[0] - per_seed[1]).mean())
    out["cond_effect"] = round(float(np.abs(per_seed[0] - uncond).mean()) / max(seed_gap, 1e-8), 4)
    return out
