"""Train a moodgen engine and export its release weights to checkpoints/.

    python -m train                       # the shipped configuration: every engine, in menu order
    python -m train --engine notes        # one engine; any TrainConfig field can be overridden: --steps 200
    python -m train --engine mel --resume # continue from runs/mel/state.pt (--fresh: start over, old state kept)
    python -m train --engine mel --teacher runs/mel_teacher.safetensors --runs runs/distilled
                                          # distil an exported model (Engine.distilled_config); same loop
    python -m train --model cgan          # the seed project's cGAN baseline, same data and budget logic
    python -m train --smoke               # tiny run (< 2 min) used by the tests

Each run writes runs/<engine>/config.json (the resolved config), log.jsonl (loss, probes), state.pt (resumable
training state: weights, EMA, optimizer, step, RNG) and exports <out>/<weights file> (EMA weights, uncompiled) plus
the model card. Ctrl-C or SIGTERM saves the state before exiting. The loop is the same for every engine: the
engine (moodgen.engines) gives the model, the loss, the representation and the probe correlates.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from moodgen.checkpoint import file_sha256, read_metadata, save_component
from moodgen.config import from_dict, to_dict
from moodgen.engines import Engine, engine_class, engine_names
from train import model_card, probes
from train.corpus.cache import CorpusCache
from train.data import CropSampler
from train.distributed import SINGLE, Ranks, any_rank, barrier, process_group
from train.runs import Run, StopRequests, apply_overrides, ensure_cache, pick_device
from train.runs import provenance as run_provenance
from train.trainer import Trainer


@dataclass(frozen=True)
class TrainConfig:
    engine: str = engine_names()[0]
    model: Any = field(default_factory=lambda: engine_class(engine_names()[0]).default_model_config())
    cache: str = ".cache/corpus/emopia"
    emopia_root: str = "../shared/data/emopia/EMOPIA_1.0"
    out: str = "checkpoints"
    runs: str = "runs"
    steps: int = 30000
    max_minutes: float = 60.0  # wall-clock budget; training stops at whichever limit comes first
    batch_size: int = 32
    crop_frames: int = 128  # 8 s of roll at 16 fps; 3 s of mel at hop 256
    max_shift: int = 3  # on-the-fly transposition (engines that transpose crops)
    lr: float = 3e-4
    warmup_steps: int = 300
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    cond_dropout: float = 0.15
    sample_steps: int = 16  # sampler steps stored with the weights (engines that use steps)
    guidance: float = 2.0  # for the training probes; export picks the default on the validation split
    log_every: int = 50
    probe_every: int = 1000
    seed: int = 0
    threads: int = 0  # 0 = all cores
    device: str = "auto"
    crops: str = "auto"  # where batches are drawn: "host" (numpy), "device", "auto" (device on a GPU they fit on)
    precision: str = "auto"  # "auto" (bf16 autocast on a GPU, fp32 elsewhere), "fp32" or "bf16"
    compile: bool = False  # torch.compile the training model (the export stays a plain module)
    teacher: str = ""  # an exported weights file of this engine to distil (the model is then its distilled config)

    def __post_init__(self) -> None:
        cls = engine_class(self.engine)
        config_cls = type(cls.default_model_config())
        if not isinstance(self.model, config_cls):
            raise ValueError(f"engine {self.engine} needs a {config_cls.__name__}, got {type(self.model).__name__}")
        cls.check_train_config(self.model, self.crop_frames)
        if self.steps < 1 or self.batch_size < 1 or self.max_minutes <= 0:
            raise ValueError("steps, batch_size and max_minutes must be positive")
        if self.log_every < 1 or self.probe_every < 1 or self.warmup_steps < 1:
            raise ValueError("log_every, probe_every and warmup_steps must be >= 1")
        if self.crops not in ("auto", "host", "device"):
            raise ValueError(f"crops must be auto, host or device, got {self.crops!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16, got {self.precision!r}")

    @property
    def engine_class(self) -> type[Engine]:
        return engine_class(self.engine)


def engine_defaults(engine: str) -> TrainConfig:
    """The shipped configuration of an engine (the shipped runs added --threads 1: another job had the other core)."""
    cls = engine_class(engine)
    return TrainConfig(engine=engine, model=cls.default_model_config(), **cls.train_overrides())


def smoke(config: TrainConfig) -> TrainConfig:
    """A run of the same code on the real config's shapes that finishes in well under two minutes."""
    return dataclasses.replace(config, steps=3, max_minutes=1.5, log_every=1, probe_every=3, warmup_steps=1,
                               batch_size=2, out=str(Path(config.runs) / "smoke" / "checkpoints"),
                               runs=str(Path(config.runs) / "smoke"))


def train_engine(config: TrainConfig, resume: bool = False, fresh: bool = False, command: str = "",
                 ranks: Ranks = SINGLE) -> Path | None:
    """The training loop of any engine, on this process's rank; returns the exported weights' path (rank 0) or
    None (the other ranks)."""
    if config.threads:
        torch.set_num_threads(config.threads)
    device = ranks.device(config.device)
    if ranks.is_main:
        ensure_cache(config)  # the other ranks wait for it (and for the run folder) at the barrier
        run = Run(Path(config.runs) / config.engine, config, resume, fresh)
    barrier(ranks)
    if not ranks.is_main:
        run = Run(Path(config.runs) / config.engine, config, resume=True, fresh=False, writes=False)
    cache = CorpusCache(config.cache)
    trainer = Trainer(config, cache, device, ranks)
    state = run.load_state(device) if resume else None
    if state is not None:
        trainer.load_state(state)
    eng = config.engine_class
    if ranks.is_main:
        val_sampler = CropSampler(cache, eng, "val", config.crop_frames)
        val_batch = [torch.from_numpy(a).to(device) for a in val_sampler.batch(64, np.random.default_rng(12345))]

    def save_state() -> None:
        state = trainer.state()
        if ranks.is_main:
            run.save_state(state)

    budget = config.max_minutes * 60
    start = time.time() - trainer.elapsed
    bar = tqdm(total=config.steps, initial=trainer.step_count, desc=f"train {config.engine}", unit="step",
               disable=not ranks.is_main)
    with StopRequests() as stop:
        while not any_rank(trainer.step_count >= config.steps or time.time() - start >= budget or stop.requested,
                           ranks, device):
            loss = trainer.step()
            step = trainer.step_count
            bar.update(1)
            final = step == config.steps
            logged, probed = step % config.log_every == 0 or final, step % config.probe_every == 0 or final
            if ranks.is_main and (logged or probed):  # reading the loss waits for the device: only when logging
                record = {"step": step, "time_s": round(time.time() - start, 1), "loss": loss.item()}
                bar.set_postfix(loss=f"{record['loss']:.4f}")
                if logged:
                    record["val_loss"] = validation_loss(trainer, *val_batch)
                if probed:
                    record["probe"] = probes.condition_probe(trainer.ema, eng, config.crop_frames,
                                                             config.sample_steps, config.guidance)
                run.log(record)
            if probed:
                trainer.elapsed = time.time() - start
                save_state()
        stopped = any_rank(stop.requested, ranks, device)
    bar.close()
    trainer.elapsed = time.time() - start
    save_state()
    if stopped:
        raise SystemExit(f"stopped at step {trainer.step_count}; the state is saved in {run.state_path}: "
                         "continue with --resume")
    if not ranks.is_main:
        return None
    return export_engine(config, trainer.ema.cpu(), cache, trainer.step_count, trainer.elapsed, command,
                         ranks.world_size, trainer.teacher_metadata)


@torch.no_grad()
def validation_loss(trainer: Trainer, x: torch.Tensor, mood: torch.Tensor, key: torch.Tensor) -> float:
    """Loss of the EMA model on a fixed validation batch (fixed noise and times for the flow)."""
    gen = torch.Generator().manual_seed(0)
    return float(trainer.loss(trainer.ema.eval(), x, mood, gen, key, 0.0))


def export_engine(config: TrainConfig, model: torch.nn.Module, cache: CorpusCache, steps: int, wall_s: float,
                  command: str, world_size: int = 1, teacher: dict[str, Any] | None = None) -> Path:
    eng = config.engine_class
    guidance, selection = probes.choose_guidance(model, eng, cache, config.crop_frames, config.sample_steps)
    if teacher is not None:  # a student keeps the guidance it was distilled at; the table stays for the record
        guidance = teacher["provenance"]["sampler"]["guidance"]
    sampler = {"guidance": config.guidance if guidance is None else guidance}
    if eng.uses_steps:
        sampler["steps"] = config.sample_steps
    provenance = run_provenance(
        cache.manifest_hash, steps, wall_s, command, engine=config.engine, roll_params=to_dict(cache.roll_params),
        train_config=to_dict(config), sampler=sampler, guidance_selection=selection,
        device=str(pick_device(config.device)), processes=world_size)
    if model.key is not None:
        provenance["key_prior_major"] = probes.major_probability(model)
    description = None
    if teacher is not None:
        provenance["teacher"] = {**{k: v for k, v in teacher["provenance"].items() if k != "train_config"},
                                 "sha256": file_sha256(config.teacher)}
        t = provenance["teacher"]
        description = (f"Distilled from a teacher of the same design (SHA-256 {t['sha256'][:12]}), itself trained "
                       f"with `{t.get('command')}` ({t.get('steps')} steps, {t.get('wall_time_s')} s on "
                       f"{t.get('device')}); the loss below is the distillation loss.")
    path = save_component(Path(config.out) / eng.weights_file, model, cache.mel_params, provenance)
    model_card.update(Path(config.out), eng.model_class.kind, provenance,
                      Path(config.runs) / config.engine / "log.jsonl", description=description)
    return path


def with_teacher(config: TrainConfig) -> TrainConfig:
    """A config that distils `config.teacher` trains the teacher's model in its engine's distilled form."""
    if not config.teacher:
        return config
    eng = config.engine_class
    metadata = read_metadata(config.teacher)
    if metadata.get("kind") != eng.model_class.kind:
        raise SystemExit(f"--teacher {config.teacher}: holds a {metadata.get('kind')!r}, not a {config.engine} model")
    taught = from_dict(eng.model_class.config_class, metadata["config"])
    model = eng.distilled_config(taught)
    if model == taught:
        raise SystemExit(f"--teacher {config.teacher}: is already distilled; give the model it was distilled from")
    return dataclasses.replace(config, model=model)


def parse_overrides(config: TrainConfig, pairs: list[tuple[str, str]]) -> TrainConfig:
    return apply_overrides(config, pairs, type(config.model))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", choices=["all", *engine_names()], default="all")
    ap.add_argument("--resume", action="store_true", help="continue the saved run")
    ap.add_argument("--fresh", action="store_true", help="start over, keeping a saved run's state beside it")
    ap.add_argument("--smoke", action="store_true")
    args, rest = ap.parse_known_args(argv)
    if len(rest) % 2 or any(not r.startswith("--") for r in rest[::2]):
        ap.error(f"overrides must be --field value pairs, got {rest}")
    overrides = [(k[2:].replace("-", "_"), v) for k, v in zip(rest[::2], rest[1::2])]
    command = "python -m train " + " ".join(argv)
    configs = [with_teacher(parse_overrides(engine_defaults(engine), overrides))
               for engine in (engine_names() if args.engine == "all" else [args.engine])]
    with process_group(configs[0].device) as ranks:
        for config in configs:
            path = train_engine(smoke(config) if args.smoke else config, resume=args.resume, fresh=args.fresh,
                                command=command, ranks=ranks)
            if path is not None:
                print(f"exported {path}")
    return 0
