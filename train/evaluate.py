"""Evaluation: the report that puts moodgen beside real audio, judged by the mood judge (train/evaluation/).

    python -m train.evaluate --checkpoint checkpoints/ [--quick]
    python -m train.evaluate --checkpoint checkpoints/ --journeys-only     # only the journey section
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from moodgen import cgan
from moodgen.judge import Judge
from moodgen.pipeline import MoodPipeline
from moodgen.render import bundled_soundfont
from train.corpus.cache import CorpusCache
from train.evaluation import journey_report
from train.evaluation.journeys import JourneyConfig, evaluate_journeys
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


def parse_args(argv: list[str]) -> tuple[EvalConfig, JourneyConfig | None, bool, Path | None]:
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
    a = ap.parse_args(argv)
    config = EvalConfig(checkpoint=a.checkpoint, cache_dir=a.cache, out_dir=a.out, threads=a.threads,
                        null_guidance=not a.no_null_guidance, **(QUICK if a.quick else {}))
    explicit = {k: v for k, v in (("seeds", a.seeds), ("grid", a.grid), ("seconds", a.seconds)) if v is not None}
    quick = {"journeys": min(2, a.journeys), "seconds": 20.0, "hop_seconds": 5.0, "join_seconds": 10.0}
    journeys = JourneyConfig(**(quick if a.quick else {"journeys": a.journeys}),
                             emopia_root=a.emopia_root) if a.journeys else None
    if a.journeys_only and journeys is None:
        ap.error("--journeys-only needs --journeys of at least 1")
    return replace(config, **explicit), journeys, a.journeys_only, a.soundfont


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


def run(config: EvalConfig, journeys: JourneyConfig | None = None, journeys_only: bool = False,
        soundfont: Path | None = None) -> Path:
    torch.set_num_threads(config.threads)
    extra, skipped = cgan_rows(Path(config.checkpoint), config.seconds)
    try:
        pipeline = MoodPipeline.from_checkpoint(config.checkpoint, soundfont=soundfont or bundled_soundfont())
    except (ValueError, FileNotFoundError) as exc:  # no engine yet: the real and baseline rows still make sense
        pipeline = None
        skipped.append({"row": "moodgen engines", "reason": str(exc)})
    judge = (pipeline and pipeline.judge) or Judge.from_file(Path(config.checkpoint) / "judge.safetensors")
    journey_path = run_journeys(pipeline, judge, config, journeys) if journeys else None
    if journeys_only:
        return journey_path
    result = evaluate(pipeline, judge, CorpusCache(config.cache_dir), config, extra, skipped)
    return write_report(result, config.out_dir)


def main(argv: list[str] | None = None) -> None:
    print(run(*parse_args(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    main()
