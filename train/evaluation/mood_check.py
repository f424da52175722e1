"""A fast subset of the evaluation for trying sampler settings: one engine's quadrant accuracy on the presets and
its Spearman V / A on the target grid, judged exactly as `train.evaluate` judges them (same targets, seeds, clip
length, judge), without the real rows, distances and other engines. `grid_seeds` > 1 repeats the grid with seeds
offset by 1000 (a steadier estimate; the first repeat is the evaluation's own grid).

    python -m train.evaluate --checkpoint checkpoints/ --mood-check notes [--sampler key_bias=2]
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from moodgen.judge import Judge
from train.evaluation.metrics import agreement_of
from train.evaluation.protocol import EvalConfig, generated_units, pipeline_generator

SEED_OFFSET = 1000


def configure_sampler(pipeline, overrides: dict[str, float]) -> dict[str, float] | None:
    """Give every engine that has sampler settings (`sampler_config`) `overrides` on top of its own; call before
    the first clip (the pipeline caches clips). Returns the settings now used (None: no engine has any)."""
    used = None
    for name in pipeline.engines:
        eng = pipeline.engine(name)
        if hasattr(eng, "sampler_config"):
            eng.sampler_config = replace(eng.sampler_config, **overrides)
            used = eng.sampler_config.record()
    if overrides and used is None:
        raise ValueError("--sampler: no loaded engine has sampler settings")
    return used


def parse_overrides(text: str | None) -> dict[str, float]:
    """'key_bias=2,chord_correlation=0.3' -> {'key_bias': 2.0, 'chord_correlation': 0.3}."""
    out = {}
    for part in filter(None, (text or "").split(",")):
        name, _, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--sampler wants name=number pairs separated by commas, got {part!r}") from None
    return out


def mood_check(pipeline, judge: Judge, config: EvalConfig, engine: str, grid_seeds: int = 1,
               guidance: float | None = None) -> dict:
    """{quadrant_accuracy, spearman_valence, spearman_arousal, ...} of `engine` as in the evaluation table; with
    grid_seeds > 1 also the Spearman columns over all the grid repeats (`*_repeats`)."""
    start = time.time()
    generate = pipeline_generator(pipeline, engine, config.seconds, guidance)
    units = generated_units(generate, judge, config, f"mood check {engine}", with_features=False)
    presets = [u for u in units if u.kind == "preset"]
    grid = [u for u in units if u.kind == "grid"]
    targets = lambda us: np.array([u.target for u in us])  # noqa: E731
    p, g = agreement_of([u.assessment for u in presets], targets(presets)), agreement_of(
        [u.assessment for u in grid], targets(grid))
    out = {"engine": engine, "quadrant_accuracy": p["quadrant_accuracy"], "spearman_valence": g["spearman_valence"],
           "spearman_arousal": g["spearman_arousal"], "preset_valence": {
               name: float(np.mean([u.assessment.valence for u in presets if u.group == name]))
               for name in dict.fromkeys(u.group for u in presets)}}
    for r in range(1, grid_seeds):
        shifted = lambda v, a, seed, r=r: generate(v, a, seed + SEED_OFFSET * r)  # noqa: E731
        grid += [u for u in generated_units(shifted, judge, replace(config, seeds=2), f"grid repeat {r}",
                                            with_features=False)
                 if u.kind == "grid"]
    if grid_seeds > 1:
        a = agreement_of([u.assessment for u in grid], targets(grid))
        out |= {"spearman_valence_repeats": a["spearman_valence"], "spearman_arousal_repeats": a["spearman_arousal"]}
    return out | {"grid_clips": len(grid), "wall_time_s": round(time.time() - start, 1)}
