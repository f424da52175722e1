"""Train a moodgen engine and export its release weights to checkpoints/.

    python -m train                       # the shipped configuration: every engine, in menu order
    python -m train --engine notes        # one engine; any TrainConfig field can be overridden: --steps 200
    python -m train --engine mel --resume # continue from runs/mel/state.pt (--fresh: start over, old state kept)
    python -m train --model cgan          # the seed project's cGAN baseline, same data and budget logic
    python -m train --smoke               # tiny run (< 2 min) used by the tests

Each run writes runs/<engine>/config.json (the resolved config), log.jsonl (loss, probes), state.pt (resumable
training state: weights, EMA, optimizer, step, RNG) and exports <out>/<weights file> (EMA weights, uncompiled) plus
the model card. Ctrl-C or SIGTERM saves the state before exiting. The loop is the same for every engine: the
engine (moodgen.engines) gives the model, the loss, the representation and the probe correlates.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from moodgen.checkpoint import save_component
from moodgen.config import to_dict
from moodgen.engines import Engine, engine_class, engine_names
from moodgen.keys import fit_key_prior
from train import model_card, probes
from train.corpus.cache import CorpusCache
from train.data import CropSampler
from train.runs import Run, StopRequests, apply_overrides, ensure_cache, git_sha, pick_device, seed_everything


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


def lr_at(step: int, config: TrainConfig) -> float:
    return config.lr * min(1.0, (step + 1) / config.warmup_steps)


def train_engine(config: TrainConfig, resume: bool = False, fresh: bool = False, command: str = "") -> Path:
    """The training loop of any engine; returns the exported weights' path."""
    seed_everything(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    cache = ensure_cache(config)
    run = Run(Path(config.runs) / config.engine, config, resume, fresh)
    eng = config.engine_class
    sampler = CropSampler(cache, eng, "train", config.crop_frames, config.max_shift)
    val_sampler = CropSampler(cache, eng, "val", config.crop_frames)
    val_batch = [torch.from_numpy(a).to(device) for a in val_sampler.batch(64, np.random.default_rng(12345))]

    model = eng.model_class(config.model).to(device)
    if model.key is not None:
        model.key.prior.copy_(fit_key_prior(torch.tensor([[it["valence"], it["arousal"]] for it in sampler.items]),
                                            torch.tensor(sampler.keys)))
    ema = copy.deepcopy(model).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed)
    torch_gen = torch.Generator().manual_seed(config.seed)
    step, elapsed = 0, 0.0
    state = run.load_state(device) if resume else None
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        step, elapsed = state["step"], state["elapsed"]
        rng.bit_generator.state = state["numpy_rng"]
        torch_gen.set_state(state["torch_rng"])
        torch.set_rng_state(state["torch_global_rng"])  # dropout draws from the global generator

    def save_state() -> None:
        run.save_state({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "step": step,
                        "elapsed": elapsed, "numpy_rng": rng.bit_generator.state, "torch_rng": torch_gen.get_state(),
                        "torch_global_rng": torch.get_rng_state()})

    budget = config.max_minutes * 60
    start = time.time() - elapsed
    bar = tqdm(total=config.steps, initial=step, desc=f"train {config.engine}", unit="step")
    with StopRequests() as stop:
        while step < config.steps and time.time() - start < budget and not stop.requested:
            x, mood, key = (torch.from_numpy(a).to(device) for a in sampler.batch(config.batch_size, rng))
            for g in opt.param_groups:
                g["lr"] = lr_at(step, config)
            model.train()
            loss = eng.loss(model, x, mood, config.cond_dropout, torch_gen, key)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            with torch.no_grad():
                decay = min(config.ema_decay, (1 + step) / (10 + step))
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.lerp_(pm, 1 - decay)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
            record = None
            if step % config.log_every == 0 or step == config.steps:
                record = {"step": step, "time_s": round(time.time() - start, 1), "loss": loss.item(),
                          "val_loss": validation_loss(ema, eng, *val_batch)}
            if step % config.probe_every == 0 or step == config.steps:
                record = record or {"step": step, "time_s": round(time.time() - start, 1), "loss": loss.item()}
                record["probe"] = probes.condition_probe(ema, eng, config.crop_frames, config.sample_steps,
                                                         config.guidance)
                elapsed = time.time() - start
                save_state()
            if record:
                run.log(record)
    bar.close()
    elapsed = time.time() - start
    save_state()
    if stop.requested:
        raise SystemExit(f"stopped at step {step}; the state is saved in {run.state_path}: continue with --resume")
    return export_engine(config, ema.cpu(), cache, step, elapsed, command)


@torch.no_grad()
def validation_loss(model: torch.nn.Module, eng: type[Engine], x: torch.Tensor, mood: torch.Tensor,
                    key: torch.Tensor) -> float:
    """Loss of the EMA model on a fixed validation batch (fixed noise and times for the flow)."""
    gen = torch.Generator().manual_seed(0)
    return float(eng.loss(model.eval(), x, mood, 0.0, gen, key))


def export_engine(config: TrainConfig, model: torch.nn.Module, cache: CorpusCache, steps: int, wall_s: float,
                  command: str) -> Path:
    eng = config.engine_class
    guidance, selection = probes.choose_guidance(model, eng, cache, config.crop_frames, config.sample_steps)
    sampler = {"guidance": config.guidance if guidance is None else guidance}
    if eng.uses_steps:
        sampler["steps"] = config.sample_steps
    provenance = {
        "git_sha": git_sha(), "data_manifest_hash": cache.manifest_hash, "steps": steps,
        "wall_time_s": round(wall_s, 1), "command": command, "engine": config.engine,
        "roll_params": to_dict(cache.roll_params), "train_config": to_dict(config), "sampler": sampler,
        "guidance_selection": selection,
        "device": str(pick_device(config.device)), "threads": torch.get_num_threads(),
    }
    if model.key is not None:
        provenance["key_prior_major"] = probes.major_probability(model)
    path = save_component(Path(config.out) / eng.weights_file, model, cache.mel_params, provenance)
    model_card.update(Path(config.out), eng.model_class.kind, provenance,
                      Path(config.runs) / config.engine / "log.jsonl")
    return path


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
    for engine in engine_names() if args.engine == "all" else [args.engine]:
        config = parse_overrides(engine_defaults(engine), overrides)
        if args.smoke:
            config = smoke(config)
        path = train_engine(config, resume=args.resume, fresh=args.fresh, command=command)
        print(f"exported {path}")
    return 0
