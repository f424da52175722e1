"""Evaluation: the report that puts moodgen beside real audio, judged by the mood judge (train/evaluation/).

    python -m train.evaluate --checkpoint checkpoints/ [--quick]
    python -m train.evaluate --checkpoint checkpoints/ --journeys-only     # only the journey section
    python -m train.evaluate --checkpoint checkpoints/ --realism           # only the realism report (MIDI)
    python -m train.evaluate --checkpoint checkpoints/ --mood-check notes  # quick: one engine's judge columns
    ... --sampler key_bias=2,chord_correlation=0.3                         # try note sampler settings
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from moodgen import cgan
from moodgen.judge import Judge
from moodgen.pipeline import MoodPipeline
from moodgen.render import bundled_soundfont
from train.corpus.cache import CorpusCache
from train.evaluation import journey_report, realism
from train.evaluation.journeys import JourneyConfig, evaluate_journeys
from train.evaluation.mood_check import configure_sampler, mood_check, parse_overrides
from train.evaluation.protocol import QUICK, EvalConfig, evaluate
from train.evaluation.report import write_report


def cgan_rows(checkpoint: Path, seconds: float) -> tuple[dict, list[dict]]:
    """The seed's cGAN baseline as an extra row when checkpoints/cgan.safetensors exists."""
    path = checkpoint / "cgan.safetensors"
    if not path.is_file():
        return {}, [{"row": "seed cGAN", "reason": f"{path} not found"}]
    model = cgan.load(path)

    def generate(valence: float, arousal: float, seed: int) -> tuple[np.ndarray, int, None]:
        return *model.generate_audio(valence, arousal, seconds=seconds, seed=seed), None

    return {"seed cGAN": generate}, []


@dataclass(frozen=True)
class Extras:
    """What a run does besides (or instead of) the full report: the realism report, a quick mood check, sampler
    settings to try."""

    realism: realism.RealismConfig | None = None  # only the realism report
    mood_check: str | None = None  # only this engine's judge columns
    grid_seeds: int = 1
    sampler: str | None = None  # "name=value,..." on top of the note sampler's settings
    guidance: float | None = None  # --mood-check and --realism: instead of the engine's default
    engines: str | None = None  # "a,b": only these engines' rows
    command: str = "python -m train.evaluate"


def parse_args(argv: list[str]) -> tuple[EvalConfig, JourneyConfig | None, bool, Path | None, Extras]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = EvalConfig()
    ap.add_argument("--checkpoint", default=d.checkpoint, help="checkpoints/ folder (engines, judge, optional cgan)")
    ap.add_argument("--cache", default=d.cache_dir, help="prepared EMOPIA cache (real clips)")
    ap.add_argument("--out", default=d.out_dir)
    ap.add_argument("--quick", action="store_true", help="few seeds, coarse grid, short clips (CI)")
    ap.add_argument("--seeds", type=int)
    ap.add_argument("--grid", type=int)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--threads", type=int, default=d.threads)
    ap.add_argument("--no-null-guidance", action="store_true", help="skip the unconditional (guidance 0) row")
    ap.add_argument("--journeys", type=int, default=JourneyConfig.journeys, help="60 s journeys per engine (0: none)")
    ap.add_argument("--journeys-only", action="store_true", help="only the journey section (reports/journeys.md)")
    ap.add_argument("--emopia-root", default=JourneyConfig.emopia_root,
                    help="EMOPIA_1.0 folder: the journeys' real reference when the corpus cache is absent")
    ap.add_argument("--soundfont", type=Path, default=None,
                    help="what plays the note engine's notes (default: the TimGM6mb the corpus and the judge were "
                         "rendered with, so the judge hears the sound it knows)")
    ap.add_argument("--realism", action="store_true", help="only the realism report (reports/realism.md)")
    ap.add_argument("--realism-seeds", type=int, default=realism.RealismConfig.seeds, help="clips per preset")
    ap.add_argument("--mood-check", metavar="ENGINE", help="only ENGINE's quadrant accuracy and grid Spearman")
    ap.add_argument("--grid-seeds", type=int, default=1, help="--mood-check: grid repeats with other seeds")
    ap.add_argument("--sampler", help="note sampler settings to try, e.g. key_bias=2,chord_correlation=0.3")
    ap.add_argument("--guidance", type=float, help="--mood-check / --realism: guidance instead of the default")
    ap.add_argument("--engines", help="comma-separated: only these engines' rows (default: every engine)")
    a = ap.parse_args(argv)
    config = EvalConfig(checkpoint=a.checkpoint, cache_dir=a.cache, out_dir=a.out, threads=a.threads,
                        null_guidance=not a.no_null_guidance, **(QUICK if a.quick else {}))
    explicit = {k: v for k, v in (("seeds", a.seeds), ("grid", a.grid), ("seconds", a.seconds)) if v is not None}
    quick = {"journeys": min(2, a.journeys), "seconds": 20.0, "hop_seconds": 5.0, "join_seconds": 10.0}
    journeys = JourneyConfig(**(quick if a.quick else {"journeys": a.journeys}),
                             emopia_root=a.emopia_root) if a.journeys else None
    if a.journeys_only and journeys is None:
        ap.error("--journeys-only needs --journeys of at least 1")
    extras = Extras(realism.RealismConfig(emopia_root=a.emopia_root, seeds=a.realism_seeds, guidance=a.guidance)
                    if a.realism else None, a.mood_check, a.grid_seeds, a.sampler, a.guidance, a.engines,
                    "python -m train.evaluate " + " ".join(argv))
    return replace(config, **explicit), journeys, a.journeys_only, a.soundfont, extras


def load_cache(folder: str) -> CorpusCache | None:
    """The prepared corpus cache, or None when it has not been prepared."""
    return CorpusCache(folder) if (Path(folder) / "manifest.json").is_file() else None


def run_journeys(pipeline: MoodPipeline | None, judge: Judge, config: EvalConfig, journeys: JourneyConfig) -> Path:
    """The journey section: reports/journeys.json, journeys.md and its plot."""
    section = evaluate_journeys(pipeline, judge, load_cache(config.cache_dir), journeys)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "journeys.json").write_text(json.dumps(section, indent=1, sort_keys=True, allow_nan=True))
    journey_report.plot(section, out)
    path = out / "journeys.md"
    path.write_text("# moodgen evaluation: journeys\n\n`python -m train.evaluate --checkpoint "
                    f"{config.checkpoint} --journeys-only` ({section['wall_time_s'] / 60:.1f} min)\n\n"
                    + journey_report.markdown(section))
    return path


def run_realism(pipeline: MoodPipeline, config: EvalConfig, extras: Extras) -> Path:
    """reports/realism.json, realism.md and its figure."""
    section = realism.evaluate_realism(pipeline, extras.realism)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "realism.json").write_text(json.dumps(section, indent=1, sort_keys=True, allow_nan=True))
    realism.plot(section, out)
    path = out / "realism.md"
    path.write_text(realism.markdown(section, extras.command))
    return path


def run(config: EvalConfig, journeys: JourneyConfig | None = None, journeys_only: bool = False,
        soundfont: Path | None = None, extras: Extras = Extras()) -> Path | dict:
    torch.set_num_threads(config.threads)
    extra, skipped = cgan_rows(Path(config.checkpoint), config.seconds)
    try:
        pipeline = MoodPipeline.from_checkpoint(config.checkpoint, soundfont=soundfont or bundled_soundfont())
    except (ValueError, FileNotFoundError) as exc:  # no engine yet: the real and baseline rows still make sense
        pipeline = None
        skipped.append({"row": "moodgen engines", "reason": str(exc)})
    if pipeline is not None and extras.engines:
        pipeline = MoodPipeline({n: pipeline.engine(n) for n in extras.engines.split(",")}, judge=pipeline.judge,
                                atlas=pipeline.atlas)
    if pipeline is not None:
        configure_sampler(pipeline, parse_overrides(extras.sampler))
    if (extras.realism or extras.mood_check) and pipeline is None:
        raise SystemExit(f"no engine to evaluate: {skipped[-1]['reason']}")
    if extras.realism:
        return run_realism(pipeline, config, extras)
    judge = (pipeline and pipeline.judge) or Judge.from_file(Path(config.checkpoint) / "judge.safetensors")
    if extras.mood_check:
        return mood_check(pipeline, judge, config, extras.mood_check, extras.grid_seeds, extras.guidance)
    journey_path = run_journeys(pipeline, judge, config, journeys) if journeys else None
    if journeys_only:
        return journey_path
    result = evaluate(pipeline, judge, CorpusCache(config.cache_dir), config, extra, skipped)
    return write_report(result, config.out_dir)


def main(argv: list[str] | None = None) -> None:
    print(run(*parse_args(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    main()
