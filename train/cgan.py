"""Train the seed project's cGAN baseline (moodgen.cgan) and export checkpoints/cgan.safetensors.

    python -m train --model cgan                                   # CGANTrainConfig defaults
    python -m train --model cgan --threads 1 --max_minutes 20      # any field: --field value, --model.g_channels 96
    python -m train --model cgan --resume                          # continue from runs/cgan/state.pt (--fresh)
    python -m train --model cgan --smoke                           # a few steps (< 2 min), used by the tests

Same data and budget logic as the engines (train.train): random mel crops of the cache's train split (CropSampler
over the mel engine's representation), stop at `steps` or `max_minutes`, whichever comes first. One step = one
discriminator update followed by `g_steps` generator updates (the seed's 4:1 schedule). runs/cgan/log.jsonl holds
"loss" = generator loss and "val_loss" = discriminator loss (both on training batches; a GAN has no held-out loss
worth the name) plus mean D(real), D(fake); the model card labels them accordingly. state.pt holds both networks,
both optimizers, the step and the RNGs; only the generator is released.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from moodgen.cgan import CGANConfig, CGANDiscriminator, CGANGenerator, generate
from moodgen.checkpoint import save_component
from moodgen.config import MelParams, to_dict
from moodgen.engines.mel import MelEngine, mel_correlates
from moodgen.mood import PRESETS
from train import model_card
from train.data import CropSampler
from train.runs import Run, StopRequests, apply_overrides, ensure_cache, pick_device, seed_everything
from train.runs import provenance as run_provenance

KIND = "cgan"
LOSS_LABELS = {"loss": "generator", "val_loss": "discriminator", "axis": "binary cross-entropy"}
CARD_TEXT = ("The seed project's conditional GAN, kept as a baseline and not loaded by the app. Same design as the"
             " seed's Keras model (noise {noise} + (valence, arousal) -> dense -> transposed 2D convolutions with "
             'batch norm, ReLU, dropout -> tanh; discriminator: strided convolutions, LeakyReLU, dropout, (v, a) '
             'concatenated before its dense layers; real label 0.9, Gaussian noise {sigma} on discriminator '
             "inputs, {g} generator steps per discriminator step), scaled from the seed's ~350M parameters to "
             '{pg:,} (generator) + {pd:,} (discriminator, not released) for a 2-core CPU. It generates one '
             '{window}-frame (3 s) window of the {m}-band log-mel at a time; longer clips are independent windows '
             'concatenated (no coherence across seams). Losses: generator and discriminator binary cross-entropy '
             'on training batches. cond_effect for this component compares each preset with the neutral mood (0, '
             '0), as a cGAN has no unconditional sample.')


@dataclass(frozen=True)
class CGANTrainConfig:
    model: CGANConfig = field(default_factory=CGANConfig)
    cache: str = ".cache/corpus/emopia"
    emopia_root: str = "../shared/data/emopia/EMOPIA_1.0"
    out: str = "checkpoints"
    runs: str = "runs"
    steps: int = 20000  # discriminator steps; the wall-clock budget usually ends the run first
    max_minutes: float = 20.0
    batch_size: int = 16
    g_steps: int = 4  # generator updates per discriminator update (the seed's schedule)
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5  # DCGAN Adam settings, as in the seed
    real_label: float = 0.9  # one-sided label smoothing
    log_every: int = 10
    probe_every: int = 100
    seed: int = 0
    threads: int = 0  # 0 = all cores
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 2 or self.g_steps < 1 or self.max_minutes <= 0:
            raise ValueError(f"steps, g_steps, max_minutes must be positive and batch_size >= 2: {self}")
        if not 0.0 < self.real_label <= 1.0:
            raise ValueError(f"real_label must be in (0, 1], got {self.real_label}")
        if self.lr_g <= 0 or self.lr_d <= 0 or not 0.0 <= self.beta1 < 1.0:
            raise ValueError(f"learning rates must be positive and beta1 in [0, 1): {self}")
        if self.log_every < 1 or self.probe_every < 1:
            raise ValueError("log_every and probe_every must be >= 1")


def smoke_config(config: CGANTrainConfig) -> CGANTrainConfig:
    """The same code on the real config's shapes, a few steps, in well under two minutes."""
    return dataclasses.replace(config, steps=3, max_minutes=1.5, batch_size=2, log_every=1, probe_every=3,
                               out=str(Path(config.runs) / "smoke" / "checkpoints"),
                               runs=str(Path(config.runs) / "smoke"))


def parse_overrides(config: CGANTrainConfig, pairs: list[tuple[str, str]]) -> CGANTrainConfig:
    """Apply (field, value) overrides; model fields as ("model.g_channels", "96"), tuples as "8,16,32"."""
    return apply_overrides(config, pairs, CGANConfig)


def draw_moods(sampler: CropSampler, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) moods drawn like the sampler draws clips (by length), without reading any mel."""
    idx = rng.choice(len(sampler.items), size=n, p=sampler.weights)
    return np.array([[sampler.items[i]["valence"], sampler.items[i]["arousal"]] for i in idx], dtype=np.float32)


@torch.no_grad()
def condition_probe(generator: CGANGenerator, mel_params: MelParams, seeds: tuple[int, ...] = (0, 1)) -> dict:
    """Per-preset mel correlates averaged over `seeds`, and cond_effect = mean |x(preset) - x(neutral mood 0, 0)| /
    mean |x(seed a) - x(seed b)| (same preset): how far the mood moves a sample compared with the noise.
    The neutral mood stands in for the flow engines' unconditional sample, which a cGAN does not have."""
    frames = generator.config.frames
    per_seed = {name: [generate(generator, *PRESETS[name], frames, s) for s in seeds] for name in PRESETS}
    neutral = generate(generator, 0.0, 0.0, frames, seeds[0])
    out: dict = {}
    for name, xs in per_seed.items():
        rows = [mel_correlates(x, mel_params) for x in xs]
        out[name] = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}
    seed_gap = np.mean([np.abs(xs[0] - xs[1]).mean() for xs in per_seed.values()])
    cond_gap = np.mean([np.abs(xs[0] - neutral).mean() for xs in per_seed.values()])
    out["cond_effect"] = round(float(cond_gap / max(seed_gap, 1e-8)), 4)
    return out


def train_cgan(config: CGANTrainConfig, resume: bool = False, fresh: bool = False, command: str = "") -> Path:
    """The adversarial loop; returns the exported generator's path."""
    seed_everything(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    cache = ensure_cache(config)
    mel_params = cache.mel_params
    config.model.check_matches(mel_params)
    run = Run(Path(config.runs) / KIND, config, resume, fresh)
    sampler = CropSampler(cache, MelEngine, "train", config.model.frames)

    gen = CGANGenerator(config.model).to(device)
    disc = CGANDiscriminator(config.model).to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=config.lr_g, betas=(config.beta1, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=config.lr_d, betas=(config.beta1, 0.999))
    rng = np.random.default_rng(config.seed)
    step, elapsed = 0, 0.0
    state = run.load_state(device) if resume else None
    if state is not None:
        gen.load_state_dict(state["generator"])
        disc.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        step, elapsed = state["step"], state["elapsed"]
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])

    def save_state() -> None:
        run.save_state({"generator": gen.state_dict(), "discriminator": disc.state_dict(),
                        "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "step": step, "elapsed": elapsed,
                        "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()})

    def noise(n: int) -> torch.Tensor:
        return torch.randn(n, config.model.noise_dim).to(device)

    budget = config.max_minutes * 60
    start = time.time() - elapsed
    bar = tqdm(total=config.steps, initial=step, desc="train cgan", unit="step")
    b = config.batch_size
    probed_at = step if state is not None else -1
    with StopRequests() as stop:
        while step < config.steps and time.time() - start < budget and not stop.requested:
            gen.train()
            disc.train()
            x, mood = (torch.from_numpy(a).to(device) for a in sampler.batch(b, rng)[:2])
            with torch.no_grad():
                fake = gen(noise(b), mood)
            real_logit, fake_logit = disc(x, mood), disc(fake, mood)
            d_loss = (F.binary_cross_entropy_with_logits(real_logit, torch.full_like(real_logit, config.real_label))
                      + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit)))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            g_losses = []
            for _ in range(config.g_steps):
                g_mood = torch.from_numpy(draw_moods(sampler, b, rng)).to(device)
                logit = disc(gen(noise(b), g_mood), g_mood)
                g_loss = F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
                g_losses.append(g_loss.item())
            step += 1
            bar.update(1)
            left = budget - (time.time() - start)  # the wall-clock budget usually ends the run before `steps`
            bar.set_postfix(g=f"{np.mean(g_losses):.3f}", d=f"{d_loss.item():.3f}", budget_left=f"{left / 60:.1f}min")
            record = None
            if step % config.log_every == 0 or step == config.steps:
                record = {"step": step, "time_s": round(time.time() - start, 1), "loss": float(np.mean(g_losses)),
                          "val_loss": d_loss.item(), "d_real": torch.sigmoid(real_logit).mean().item(),
                          "d_fake": torch.sigmoid(fake_logit).mean().item()}
            if step % config.probe_every == 0 or step == config.steps:
                record = record or {"step": step, "time_s": round(time.time() - start, 1)}
                record["probe"] = condition_probe(gen, mel_params)
                probed_at = step
                elapsed = time.time() - start
                save_state()
            if record:
                run.log(record)
    bar.close()
    elapsed = time.time() - start
    save_state()
    if stop.requested:
        raise SystemExit(f"stopped at step {step}; the state is saved in {run.state_path}: continue with --resume")
    if probed_at != step:  # the budget ended the run between probes: record where it stopped
        run.log({"step": step, "time_s": round(elapsed, 1), "probe": condition_probe(gen, mel_params)})
    return export(config, gen.cpu(), mel_params, cache.manifest_hash, step, elapsed, command)


def export(config: CGANTrainConfig, generator: CGANGenerator, mel_params: MelParams, manifest_hash: str,
           steps: int, wall_s: float, command: str) -> Path:
    provenance = run_provenance(
        manifest_hash, steps, wall_s, command, generator_steps=steps * config.g_steps, engine=MelEngine.name,
        train_config=to_dict(config), device=str(pick_device(config.device)),
        parameters={"generator": sum(p.numel() for p in generator.parameters()),
                    "discriminator": sum(p.numel() for p in CGANDiscriminator(config.model).parameters())})
    path = save_component(Path(config.out) / f"{KIND}.safetensors", generator, mel_params, provenance)
    m = config.model
    text = CARD_TEXT.format(noise=m.noise_dim, sigma=m.d_input_noise, g=config.g_steps, window=m.frames, m=m.n_mels,
                            pg=provenance["parameters"]["generator"], pd=provenance["parameters"]["discriminator"])
    model_card.update(Path(config.out), KIND, provenance, Path(config.runs) / KIND / "log.jsonl",
                      loss_labels=LOSS_LABELS, description=text)
    return path


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m train --model cgan", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resume", action="store_true", help="continue the saved run")
    ap.add_argument("--fresh", action="store_true", help="start over, keeping a saved run's state beside it")
    ap.add_argument("--smoke", action="store_true")
    args, rest = ap.parse_known_args(argv)
    if len(rest) % 2 or any(not r.startswith("--") for r in rest[::2]):
        ap.error(f"overrides must be --field value pairs, got {rest}")
    config = parse_overrides(CGANTrainConfig(), [(k[2:].replace("-", "_"), v) for k, v in zip(rest[::2], rest[1::2])])
    if args.smoke:
        config = smoke_config(config)
    command = "python -m train --model cgan " + " ".join(argv)
    print(f"exported {train_cgan(config, resume=args.resume, fresh=args.fresh, command=command)}")
    return 0
