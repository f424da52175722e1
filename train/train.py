"""Train a moodgen engine and export its release weights to checkpoints/.

    python -m train                       # the shipped configuration: note engine, then mel engine
    python -m train --engine notes        # one engine; any TrainConfig field can be overridden: --steps 200
    python -m train --engine mel --resume # continue from runs/mel/state.pt
    python -m train --model cgan          # the seed project's cGAN baseline, same data and budget logic
    python -m train --smoke               # tiny run (< 2 min) used by the tests

Each run writes runs/<name>/config.json (the resolved config), log.jsonl (loss, probes), state.pt (resumable
training state: weights, EMA, optimizer, step, RNG) and exports <out>/<kind>.safetensors (EMA weights, uncompiled)
plus the model card.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from moodgen.checkpoint import save_component
from moodgen.config import MelParams, RollParams, from_dict, to_dict
from moodgen.model import FlowConfig, FlowModel, flow_matching_loss
from moodgen.note_model import NoteModel, NoteModelConfig, note_loss
from moodgen.keys import fit_key_prior
from train import probes
from train.corpus.cache import CorpusCache
from train.data import CropSampler

ENGINE_KIND = {"mel": "mel_flow", "notes": "note_model"}
MODEL_CLASSES = {"mel": (FlowConfig, FlowModel, flow_matching_loss), "notes": (NoteModelConfig, NoteModel, note_loss)}
BUDGET_FIELDS = ("steps", "max_minutes")  # may grow on --resume; every other field must match the saved state


def default_model(engine: str) -> FlowConfig | NoteModelConfig:
    if engine == "mel":
        return FlowConfig(in_channels=MelParams().n_mels, base_channels=64, channel_mults=(1, 2, 3, 4), kernel_size=3,
                          key_conditioning=True)
    return NoteModelConfig(n_keys=RollParams().n_keys, key_conditioning=True)


@dataclass(frozen=True)
class TrainConfig:
    engine: str = "notes"  # "notes" (piano roll) or "mel" (log-mel spectrogram)
    model: FlowConfig | NoteModelConfig = field(default_factory=lambda: default_model("notes"))
    cache: str = ".cache/corpus/emopia"
    emopia_root: str = "../shared/data/emopia/EMOPIA_1.0"
    out: str = "checkpoints"
    runs: str = "runs"
    steps: int = 30000
    max_minutes: float = 60.0  # wall-clock budget; training stops at whichever limit comes first
    batch_size: int = 32
    crop_frames: int = 128  # 8 s of roll at 16 fps; 3 s of mel at hop 256
    max_shift: int = 3  # on-the-fly transposition (notes engine)
    lr: float = 3e-4
    warmup_steps: int = 300
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    cond_dropout: float = 0.15
    sample_steps: int = 16  # sampler steps stored with the weights (flow engines only)
    guidance: float = 2.0  # for the training probes; export picks the default on the validation split
    log_every: int = 50
    probe_every: int = 1000
    seed: int = 0
    threads: int = 0  # 0 = all cores
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.engine not in ENGINE_KIND:
            raise ValueError(f"engine must be one of {sorted(ENGINE_KIND)}, got {self.engine!r}")
        config_cls = MODEL_CLASSES[self.engine][0]
        if not isinstance(self.model, config_cls):
            raise ValueError(f"engine {self.engine} needs a {config_cls.__name__}, got {type(self.model).__name__}")
        if self.engine == "mel":
            if self.model.in_channels != MelParams().n_mels:
                raise ValueError(f"engine mel needs model.in_channels={MelParams().n_mels}, got {self.model.in_channels}")
            if self.crop_frames % 2 ** (len(self.model.channel_mults) - 1):
                raise ValueError(f"crop_frames {self.crop_frames} must be a multiple of the model's time multiple")
        elif self.model.n_keys != RollParams().n_keys:
            raise ValueError(f"engine notes needs model.n_keys={RollParams().n_keys}, got {self.model.n_keys}")
        if self.steps < 1 or self.batch_size < 1 or self.max_minutes <= 0:
            raise ValueError("steps, batch_size and max_minutes must be positive")

    @property
    def name(self) -> str:
        return self.engine


def engine_defaults(engine: str) -> TrainConfig:
    """The shipped configuration of each engine (the shipped runs added --threads 1: another job had the other core)."""
    if engine == "mel":
        return TrainConfig(engine="mel", model=default_model("mel"), batch_size=16, crop_frames=256,
                           max_minutes=85.0, max_shift=0, probe_every=500)
    return TrainConfig(engine="notes", model=default_model("notes"), batch_size=16, lr=1e-3, warmup_steps=200,
                       probe_every=500, max_minutes=55.0)


def smoke(config: TrainConfig) -> TrainConfig:
    """A run of the same code on the real config's shapes that finishes in well under two minutes."""
    return dataclasses.replace(config, steps=3, max_minutes=1.5, log_every=1, probe_every=3, warmup_steps=1,
                               batch_size=2, out=str(Path(config.runs) / "smoke" / "checkpoints"),
                               runs=str(Path(config.runs) / "smoke"))


def git_sha() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def ensure_cache(config: TrainConfig) -> CorpusCache:
    """Open the corpus cache, preparing it first when it is missing."""
    if not (Path(config.cache) / "manifest.json").is_file():
        from train.prepare import main as prepare_main
        if prepare_main(["--source", "emopia", "--root", config.emopia_root, "--out", config.cache]) != 0:
            raise SystemExit(f"could not prepare the corpus cache at {config.cache}")
    return CorpusCache(config.cache)


def lr_at(step: int, config: TrainConfig) -> float:
    return config.lr * min(1.0, (step + 1) / config.warmup_steps)


def train_flow(config: TrainConfig, resume: bool = False, command: str = "") -> Path:
    """The training loop of a flow engine; returns the exported weights' path."""
    seed_everything(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    cache = ensure_cache(config)
    run_dir = Path(config.runs) / config.name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(to_dict(config), indent=1))
    sampler = CropSampler(cache, config.engine, "train", config.crop_frames, config.max_shift)
    val_sampler = CropSampler(cache, config.engine, "val", config.crop_frames)
    val_batch = [torch.from_numpy(a).to(device) for a in val_sampler.batch(64, np.random.default_rng(12345))]

    _, model_cls, loss_fn = MODEL_CLASSES[config.engine]
    model = model_cls(config.model).to(device)
    if model.key is not None:
        model.key.prior.copy_(fit_key_prior(torch.tensor([[it["valence"], it["arousal"]] for it in sampler.items]),
                                            torch.tensor(sampler.keys)))
    ema = copy.deepcopy(model).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed)
    torch_gen = torch.Generator().manual_seed(config.seed)
    step, elapsed = 0, 0.0
    state_path = run_dir / "state.pt"
    if resume and state_path.is_file():
        state = torch.load(state_path, map_location=device, weights_only=False)
        budget_free = {k: v for k, v in to_dict(config).items() if k not in BUDGET_FIELDS}
        if {k: v for k, v in state["config"].items() if k not in BUDGET_FIELDS} != budget_free:
            raise SystemExit(f"{state_path}: saved with a different config; only {', '.join(BUDGET_FIELDS)} "
                             "may change on --resume")
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        step, elapsed = state["step"], state["elapsed"]
        rng.bit_generator.state = state["numpy_rng"]
        torch_gen.set_state(state["torch_rng"])
        torch.set_rng_state(state["torch_global_rng"])  # dropout draws from the global generator
    elif state_path.exists():
        state_path.unlink()
        (run_dir / "log.jsonl").unlink(missing_ok=True)

    def save_state() -> None:
        tmp = state_path.with_suffix(".tmp")
        torch.save({"config": to_dict(config), "model": model.state_dict(), "ema": ema.state_dict(),
                    "opt": opt.state_dict(), "step": step, "elapsed": elapsed,
                    "numpy_rng": rng.bit_generator.state, "torch_rng": torch_gen.get_state(),
                    "torch_global_rng": torch.get_rng_state()}, tmp)
        os.replace(tmp, state_path)

    log = open(run_dir / "log.jsonl", "a")
    budget = config.max_minutes * 60
    start = time.time() - elapsed
    bar = tqdm(total=config.steps, initial=step, desc=f"train {config.name}", unit="step")
    while step < config.steps and time.time() - start < budget:
        x, mood, key = (torch.from_numpy(a).to(device) for a in sampler.batch(config.batch_size, rng))
        for g in opt.param_groups:
            g["lr"] = lr_at(step, config)
        model.train()
        loss = loss_fn(model, x, mood, config.cond_dropout, torch_gen, key)
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
                      "val_loss": validation_loss(ema, loss_fn, *val_batch)}
        if step % config.probe_every == 0 or step == config.steps:
            record = record or {"step": step, "time_s": round(time.time() - start, 1), "loss": loss.item()}
            record["probe"] = probes.condition_probe(ema, config.engine, config.crop_frames, config.sample_steps,
                                                     config.guidance)
            elapsed = time.time() - start
            save_state()
        if record:
            log.write(json.dumps(record) + "\n")
            log.flush()
    bar.close()
    elapsed = time.time() - start
    save_state()
    log.close()
    return export_flow(config, ema.cpu(), cache, step, elapsed, command)


@torch.no_grad()
def validation_loss(model: torch.nn.Module, loss_fn, x: torch.Tensor, mood: torch.Tensor, key: torch.Tensor) -> float:
    """Loss of the EMA model on a fixed validation batch (fixed noise and times for the flow)."""
    gen = torch.Generator().manual_seed(0)
    return float(loss_fn(model.eval(), x, mood, 0.0, gen, key))


def export_flow(config: TrainConfig, model: torch.nn.Module, cache: CorpusCache, steps: int, wall_s: float,
                command: str) -> Path:
    from train import model_card
    kind = ENGINE_KIND[config.engine]
    guidance, selection = probes.choose_guidance(model, config.engine, cache, config.crop_frames, config.sample_steps)
    provenance = {
        "git_sha": git_sha(), "data_manifest_hash": cache.manifest_hash, "steps": steps,
        "wall_time_s": round(wall_s, 1), "command": command, "engine": config.engine,
        "roll_params": to_dict(cache.roll_params), "train_config": to_dict(config),
        "sampler": {"steps": config.sample_steps, "guidance": config.guidance if guidance is None else guidance},
        "guidance_selection": selection,
        "device": str(pick_device(config.device)), "threads": torch.get_num_threads(),
    }
    if model.key is not None:
        provenance["key_prior_major"] = probes.major_probability(model)
    path = save_component(Path(config.out) / f"{kind}.safetensors", model, kind, cache.mel_params, provenance)
    model_card.update(Path(config.out), kind, provenance, Path(config.runs) / config.name / "log.jsonl")
    return path


def apply_overrides(config, pairs: list[tuple[str, str]], model_cls: type):
    """A copy of a training config with (field, value) overrides applied; model fields as ("model.channels", "96"),
    tuples as "1,2,4". `model_cls` is the config class of `config.model`."""
    flat = to_dict(config)
    for key, value in pairs:
        target, name = (flat["model"], key[len("model."):]) if key.startswith("model.") else (flat, key)
        if name not in target or (target is flat and name == "model"):
            raise SystemExit(f"unknown option --{key}")
        old = target[name]
        target[name] = [int(v) for v in value.split(",")] if isinstance(old, (list, tuple)) else type(old)(value)
    flat["model"] = from_dict(model_cls, flat["model"])
    return from_dict(type(config), flat)


def parse_overrides(config: TrainConfig, pairs: list[tuple[str, str]]) -> TrainConfig:
    return apply_overrides(config, pairs, MODEL_CLASSES[config.engine][0])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", choices=["all", "notes", "mel"], default="all")
    ap.add_argument("--model", choices=["flow", "cgan"], default="flow")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    args, rest = ap.parse_known_args(argv)
    if len(rest) % 2 or any(not r.startswith("--") for r in rest[::2]):
        ap.error(f"overrides must be --field value pairs, got {rest}")
    overrides = [(k[2:].replace("-", "_"), v) for k, v in zip(rest[::2], rest[1::2])]
    command = "python -m train " + " ".join(argv)
    if args.model == "cgan":
        from train import cgan
        return cgan.main(overrides, resume=args.resume, smoke=args.smoke, command=command)
    engines = ["notes", "mel"] if args.engine == "all" else [args.engine]
    for engine in engines:
        config = parse_overrides(engine_defaults(engine), overrides)
        if args.smoke:
            config = smoke(config)
        path = train_flow(config, resume=args.resume, command=command)
        print(f"exported {path}")
    return 0
