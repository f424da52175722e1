"""Training throughput of every engine: optimizer steps/s (train.trainer.Trainer.step, the loop's own step) and
crops/s of the crop samplers alone, with batches drawn on the host (numpy CropSampler) and on the device
(DeviceCropSampler), each engine at its shipped batch size and crop length unless --batch is given.

    python -m benchmarks.speed.train_speed --steps 30 --threads 2            # the CPU here
    python -m benchmarks.speed.train_speed --steps 200 --batch 128 --device cuda

Reads the corpus cache at --cache when it is prepared; otherwise builds a small synthetic EMOPIA-layout corpus in a
temporary folder (crops/s and steps/s depend on the crop and model sizes, not on the music).
"""
from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import results
from benchmarks.results import command, machine, update_section
from moodgen.engines import engine_names
from train.corpus.cache import CorpusCache
from train.prepare import main as prepare_main
from train.runs import pick_device
from train.train import engine_defaults
from train.trainer import Trainer


def synthetic_cache(folder: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/ is not a package of the install
    from tests.synthetic_emopia import write_emopia_folder

    midi = write_emopia_folder(folder / "EMOPIA_1.0", per_split={"train": 3, "val": 1, "test": 1}, seconds=12.0)
    if prepare_main(["--root", str(midi), "--out", str(folder / "cache"), "--workers", "1"]) != 0:
        raise SystemExit("could not prepare the synthetic corpus")
    return folder / "cache"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def crops_per_s(trainer: Trainer, batches: int) -> float:
    """Crops drawn per second by the trainer's own batch source (host sampler + copy, or the device sampler)."""
    trainer.batch()
    sync(trainer.device)
    t0 = time.perf_counter()
    for _ in range(batches):
        trainer.batch()
    sync(trainer.device)
    return batches * trainer.config.batch_size / (time.perf_counter() - t0)


def steps_per_s(trainer: Trainer, steps: int, repeats: int) -> float:
    """Median over `repeats` timed runs of `steps` optimizer steps, after 3 warm-up steps."""
    for _ in range(3):
        trainer.step()
    rates = []
    for _ in range(repeats):
        sync(trainer.device)
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = trainer.step()
        float(loss)  # waits for the device
        rates.append(steps / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    ap = results.parser(__doc__, threads=2, repeats=3)
    ap.add_argument("--cache", type=Path, default=Path(".cache/corpus/emopia"))
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=0, help="batch size (0: each engine's shipped one)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--compile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        real = (args.cache / "manifest.json").is_file()
        cache_dir = args.cache if real else synthetic_cache(Path(tmp))
        cache = CorpusCache(cache_dir)
        rows = []
        for engine in engine_names():
            base = engine_defaults(engine)
            batch = args.batch or base.batch_size
            for crops in ("host", "device"):
                config = dataclasses.replace(base, batch_size=batch, crops=crops, precision=args.precision,
                                             compile=args.compile)
                trainer = Trainer(config, cache, device)
                c_rate = crops_per_s(trainer, 20)
                s_rate = steps_per_s(trainer, args.steps, args.repeats)
                rows.append(f"| {engine} | {batch} | {config.crop_frames} | {crops} | {c_rate:,.0f} | {s_rate:.2f} | "
                            f"{s_rate * batch:,.0f} |")
                print(rows[-1], flush=True)
    where = "the prepared EMOPIA cache" if real else "a synthetic EMOPIA-layout corpus (no prepared cache)"
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none (no GPU was lent to this run)"
    body = "\n".join([
        f"Machine: {machine()}; device {device}, GPU: {gpu}; torch {torch.__version__}, {args.threads} CPU threads, "
        f"precision {args.precision}{', torch.compile' if args.compile else ''}. Command: `{command()}`. "
        f"Data: {where}. 1-minute load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        "(other jobs shared the machine: read these as lower bounds).",
        "",
        "Steps/s: median of "
        f"{args.repeats} runs of {args.steps} optimizer steps (`train.trainer.Trainer.step`: batch, loss, backward, "
        "clip, AdamW, EMA). Crops/s: the batch source alone (host: numpy crops + copy to the device; device: "
        "`DeviceCropSampler`).",
        "",
        "| engine | batch | crop frames | crops drawn on | crops/s (sampler alone) | steps/s | training crops/s |",
        "|---|---:|---:|---|---:|---:|---:|",
        *rows,
    ])
    print(body)
    if not args.no_write:
        update_section("Training throughput (benchmarks/speed/train_speed.py)", body)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
