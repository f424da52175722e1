"""Train the mel -> linear-magnitude inverter on the EMOPIA cache and export checkpoints/inverter.safetensors.

    nohup nice -n 5 .venv/bin/python -m train.inverter --minutes 28 > logs/inverter.log 2>&1 &
    python -m train.inverter --smoke --out /tmp/inverter.safetensors   # a few tiny steps, for the tests

Data: random crops of the train split's untransposed audio (transpose 0 items); the target magnitude and the input
mel are both computed from the same (gain-shifted) crop, so input and target always agree. Loss: L1 on natural-log
magnitude plus `sc_weight` x spectral convergence on linear magnitude (which weights the loud, audible bins). The
learning rate follows a cosine over whichever runs out first, steps or minutes. One thread by default: the generator
trains alongside. Writes the resolved config and the loss history to runs/inverter/.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from moodgen import audio
from moodgen.checkpoint import save_component
from moodgen.config import MelParams
from moodgen.inverter import InverterConfig, MelInverter
from train.corpus.cache import CorpusCache
from train.runs import provenance as run_provenance

EDGE = 2  # frames of real context on each side of a crop, so every kept STFT frame sees no padding


@dataclass(frozen=True)
class InverterTrainConfig:
    cache_dir: str = ".cache/corpus/emopia"
    out: str = "checkpoints/inverter.safetensors"
    run_dir: str = "runs/inverter"
    model: InverterConfig = field(default_factory=InverterConfig)
    seed: int = 0
    steps: int = 20_000
    minutes: float = 28.0  # wall-clock budget of the loop; export and validation come after
    batch_size: int = 16
    crop_frames: int = 128  # ~1.5 s; the net only sees a few frames of context
    lr: float = 2e-3
    warmup_steps: int = 200
    weight_decay: float = 1e-4
    gain_db: tuple[float, float] = (-12.0, 6.0)  # random level shift: generated mels need not match render levels
    sc_weight: float = 1.0
    ridge_batches: int = 20  # batches for the closed-form fit of the linear skip before training
    val_crops: int = 64
    log_every: int = 50
    threads: int = 1

    def __post_init__(self) -> None:
        if self.steps < 1 or self.minutes <= 0 or self.batch_size < 1 or self.crop_frames < 8:
            raise ValueError(f"steps, minutes, batch_size must be positive and crop_frames >= 8: {self}")
        if not self.gain_db[0] <= self.gain_db[1]:
            raise ValueError(f"gain_db must be (low, high) with low <= high, got {self.gain_db}")
        if self.lr <= 0 or self.sc_weight < 0 or self.warmup_steps < 0 or min(self.threads, self.val_crops,
                                                                                self.ridge_batches) < 1:
            raise ValueError(f"need lr > 0, sc_weight >= 0, warmup_steps >= 0, threads, val_crops, ridge_batches "
                             f">= 1: {self}")


SMOKE = dict(steps=3, batch_size=2, crop_frames=16, val_crops=2, warmup_steps=1, log_every=1, ridge_batches=2,
             model=InverterConfig(channels=16, n_blocks=1, expansion=1))


def sample_batch(cache: CorpusCache, items: list[dict], config: InverterTrainConfig, mel_params: MelParams,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crops: (B, M, T) normalized log-mel input and (B, F, T) linear magnitude target, T = crop_frames."""
    hop, t = mel_params.hop_length, config.crop_frames
    segments = []
    for i in rng.integers(len(items), size=config.batch_size):
        clip = cache.audio(items[i])
        last_start = len(clip) // hop + 1 - t - 2 * EDGE  # first frame index of the crop, minus EDGE, at most
        start = int(rng.integers(max(last_start, 0) + 1)) * hop
        seg = clip[start:start + (t + 2 * EDGE) * hop]
        seg = np.pad(seg, (0, (t + 2 * EDGE) * hop - len(seg)))
        segments.append(seg * 10 ** (rng.uniform(*config.gain_db) / 20))
    mag = audio.magnitude_from_audio(np.stack(segments), mel_params)[..., EDGE:EDGE + t]
    return audio.mel_from_magnitude(mag, mel_params), mag


def losses(inverter: MelInverter, mel: torch.Tensor, mag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(L1 on log magnitude, spectral convergence on linear magnitude), both scalars."""
    pred = inverter(mel)
    target = mag.clamp_min(math.exp(inverter.config.log_floor)).log()
    l1 = (pred - target).abs().mean()
    diff = pred.clamp_max(10.0).exp() - mag
    sc = diff.flatten(1).norm(dim=1) / mag.flatten(1).norm(dim=1).clamp_min(1e-6)
    return l1, sc.mean()


@torch.no_grad()
def fit_skip(inverter: MelInverter, cache: CorpusCache, items: list[dict], config: InverterTrainConfig,
             mel_params: MelParams, rng: np.random.Generator) -> None:
    """Set the linear mel -> log-magnitude skip to the ridge-regression fit on `ridge_batches` training batches,
    so training starts from the best linear inverter and the blocks only learn what a linear map cannot."""
    xtx = torch.zeros(config.model.n_mels + 1, config.model.n_mels + 1, dtype=torch.float64)
    xty = torch.zeros(config.model.n_mels + 1, config.model.n_freqs, dtype=torch.float64)
    floor = math.exp(config.model.log_floor)
    for _ in range(config.ridge_batches):
        mel, mag = sample_batch(cache, items, config, mel_params, rng)
        x = torch.cat([mel, torch.ones_like(mel[:, :1])], dim=1).transpose(1, 2).reshape(-1, mel.shape[1] + 1)
        y = mag.clamp_min(floor).log().transpose(1, 2).reshape(-1, mag.shape[1])
        xtx += x.double().T @ x.double()
        xty += x.double().T @ y.double()
    ridge = 1e-3 * xtx.diagonal().mean() * torch.eye(len(xtx), dtype=torch.float64)
    w = torch.linalg.solve(xtx + ridge, xty).float()  # (M + 1, F)
    inverter.skip.weight.copy_(w[:-1].T.unsqueeze(-1))
    inverter.skip.bias.copy_(w[-1])


def lr_at(config: InverterTrainConfig, step: int, progress: float) -> float:
    """Linear warmup, then cosine to 5 % over `progress` in [0, 1] (the larger of step and time fractions)."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def train(config: InverterTrainConfig, command: str) -> dict:
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    cache = CorpusCache(config.cache_dir)
    mel_params = cache.mel_params
    config.model.check_matches(mel_params)
    train_items, val_items = cache.select("train", transpose=0), cache.select("val", transpose=0)
    if not train_items or not val_items:
        raise ValueError(f"{config.cache_dir}: need train and val items with transpose 0")
    val_batch = sample_batch(cache, val_items, replace(config, batch_size=config.val_crops),
                             mel_params, np.random.default_rng(config.seed + 1))

    inverter = MelInverter(config.model)
    fit_skip(inverter, cache, train_items, config, mel_params, rng)
    inverter.to(device)
    opt = torch.optim.AdamW(inverter.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history, t0, step = [], time.time(), 0
    bar = tqdm(total=config.steps, desc="inverter", mininterval=5.0)
    while step < config.steps:
        progress = max(step / config.steps, (time.time() - t0) / (60 * config.minutes))
        if progress >= 1.0:
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(config, step, progress)
        mel, mag = (x.to(device) for x in sample_batch(cache, train_items, config, mel_params, rng))
        l1, sc = losses(inverter, mel, mag)
        opt.zero_grad(set_to_none=True)
        (l1 + config.sc_weight * sc).backward()
        torch.nn.utils.clip_grad_norm_(inverter.parameters(), 1.0)
        opt.step()
        step += 1
        bar.update(1)
        if step % config.log_every == 0 or step == 1:
            history.append({"step": step, "time_s": round(time.time() - t0, 1), "l1_log": l1.item(),
                            "sc": sc.item()})
            bar.set_postfix(l1=f"{l1.item():.3f}", sc=f"{sc.item():.3f}")
    bar.close()
    wall = time.time() - t0

    inverter.eval()
    with torch.no_grad():
        val_l1, val_sc = losses(inverter, *(x.to(device) for x in val_batch))
        pinv = audio.magnitude_from_mel_pinv(val_batch[0], mel_params)
        pinv_sc = float((pinv - val_batch[1]).flatten(1).norm(dim=1).div(val_batch[1].flatten(1).norm(dim=1)
                                                                          .clamp_min(1e-6)).mean())
    summary = {"steps": step, "wall_time_s": round(wall, 1), "val_l1_log": float(val_l1),
               "val_magnitude_sc": float(val_sc), "val_pinv_magnitude_sc": pinv_sc,
               "params": sum(p.numel() for p in inverter.parameters()), "device": device}
    provenance = run_provenance(cache.manifest_hash, step, wall, command, device=device,
                                val_magnitude_sc=round(float(val_sc), 4))
    save_component(config.out, inverter.cpu(), mel_params, provenance)

    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({"config": asdict(config), "command": command}, indent=1))
    (run_dir / "history.json").write_text(json.dumps({"summary": summary, "history": history}, indent=1))
    print(json.dumps(summary))
    return summary


def parse_args(argv: list[str]) -> InverterTrainConfig:
    d = InverterTrainConfig()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=d.cache_dir)
    ap.add_argument("--out", default=d.out)
    ap.add_argument("--run-dir", default=d.run_dir)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--steps", type=int, default=d.steps)
    ap.add_argument("--minutes", type=float, default=d.minutes)
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--crop-frames", type=int, default=d.crop_frames)
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--sc-weight", type=float, default=d.sc_weight)
    ap.add_argument("--channels", type=int, default=d.model.channels)
    ap.add_argument("--blocks", type=int, default=d.model.n_blocks)
    ap.add_argument("--threads", type=int, default=d.threads)
    ap.add_argument("--smoke", action="store_true", help="a few steps of a tiny model (for the tests)")
    a = ap.parse_args(argv)
    config = InverterTrainConfig(
        cache_dir=a.cache, out=a.out, run_dir=a.run_dir, seed=a.seed, steps=a.steps, minutes=a.minutes,
        batch_size=a.batch_size, crop_frames=a.crop_frames, lr=a.lr, sc_weight=a.sc_weight, threads=a.threads,
        model=InverterConfig(channels=a.channels, n_blocks=a.blocks))
    return replace(config, **SMOKE) if a.smoke else config


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    train(parse_args(argv), "python -m train.inverter " + shlex.join(argv))


if __name__ == "__main__":
    main()
