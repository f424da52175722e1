"""Cheap checks, during training, that the mood condition takes hold (each engine's simple correlates per preset),
and the choice of the exported guidance scale on the validation split."""
from __future__ import annotations

import numpy as np
import torch

from moodgen.config import MelParams, RollParams
from moodgen.engines import Engine
from moodgen.keys import key_probabilities, sample_keys
from moodgen.mood import PRESETS, quadrant_by_number
from train.corpus.cache import CorpusCache

# The criterion below has no realism term, so the list stops at 3: widened to 5, the mel engine picked 5.0 and its
# clips saturated (evaluation FD 7e6 against 10 at 3.0).
GUIDANCE_CANDIDATES = (1.0, 1.5, 2.0, 3.0)


def preset_moods() -> tuple[list[str], torch.Tensor]:
    return list(PRESETS), torch.tensor(list(PRESETS.values()), dtype=torch.float32)


def major_probability(model: torch.nn.Module) -> dict[str, float]:
    """p(major key | preset) under a key-conditioned model's prior."""
    names, moods = preset_moods()
    p = key_probabilities(model.key.prior, moods)[:, :12].sum(dim=1)
    return {n: round(float(v), 3) for n, v in zip(names, p)}


@torch.no_grad()
def condition_probe(model: torch.nn.Module, engine: type[Engine], frames: int, steps: int, guidance: float,
                    seeds: tuple[int, ...] = (0, 1)) -> dict:
    """Per-preset correlates averaged over `seeds`, and how much the condition moves samples compared with the
    noise seed: cond_effect = mean |x(preset) - x(unconditional)| / mean |x(seed a) - x(seed b)| (same preset)."""
    model.eval()
    names, moods = preset_moods()

    def draw(g: float, seed: int) -> np.ndarray:
        key = None if model.key is None else sample_keys(model.key.prior, moods, seed)
        return engine.sample(model, moods, frames, steps, g, seed, key)

    per_seed = [draw(guidance, s) for s in seeds]
    uncond = draw(0.0, seeds[0])
    out = {}
    for i, name in enumerate(names):
        rows = [engine.correlates(xs[i], MelParams(), RollParams()) for xs in per_seed]
        out[name] = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}
    seed_gap = float(np.abs(per_seed[0] - per_seed[1]).mean())
    out["cond_effect"] = round(float(np.abs(per_seed[0] - uncond).mean()) / max(seed_gap, 1e-8), 4)
    return out


def real_correlates(cache: CorpusCache, engine: type[Engine], split: str,
                    frames: int) -> dict[str, list[dict[str, float]]]:
    """Correlates of the centre `frames` of every untransposed clip of a split, by quadrant name (the preset's)."""
    out: dict[str, list[dict[str, float]]] = {}
    array = getattr(cache, engine.cache_field + "s")
    for item in cache.select(split=split, transpose=0):
        if item[engine.cache_field] is None or item[engine.cache_field][1] < frames:
            continue
        off, n = item[engine.cache_field]
        s = off + (n - frames) // 2
        row = engine.correlates(engine.encode_crop(array[s:s + frames], 0), cache.mel_params, cache.roll_params)
        out.setdefault(quadrant_by_number(item["quadrant"]).name, []).append(row)
    return out


@torch.no_grad()
def choose_guidance(model: torch.nn.Module, engine: type[Engine], cache: CorpusCache, frames: int, steps: int,
                    candidates: tuple[float, ...] = GUIDANCE_CANDIDATES, seeds: int = 4) -> tuple[float | None, dict]:
    """The guidance whose presets come nearest real validation music: the candidate with the smallest
    sum over presets and correlates of |mean over `seeds` samples - mean over the quadrant's validation clips| /
    (std of the correlate over all validation clips). Real music is the yardstick, not the judge (which only
    evaluates). Returns (best guidance, or None when the split has no clip of `frames` in some quadrant; the table
    of distances)."""
    real = real_correlates(cache, engine, "val", frames)
    names, moods = preset_moods()
    if set(real) != set(names):
        return None, {"skipped": f"validation clips of >= {frames} frames cover only {sorted(real)}"}
    spread = {k: max(float(np.std([r[k] for rows in real.values() for r in rows])), 1e-6) for k in real[names[0]][0]}
    moods = moods.repeat(seeds, 1)  # preset i, seed j at row j * 4 + i
    key = None if model.key is None else sample_keys(model.key.prior, moods, seed=0)
    distances = {}
    for g in candidates:
        x = engine.sample(model.eval(), moods, frames, steps, g, 0, key)
        rows = [engine.correlates(m, cache.mel_params, cache.roll_params) for m in x]
        total = 0.0
        for i, name in enumerate(names):
            mine = rows[i::len(names)]
            for k in mine[0]:
                ref = np.mean([r[k] for r in real[name]])
                total += abs(np.mean([r[k] for r in mine]) - ref) / spread[k]
        distances[str(g)] = round(float(total), 3)
    best = min(candidates, key=lambda g: distances[str(g)])
    return best, {"distance_to_validation": distances, "seeds": seeds, "frames": frames}
