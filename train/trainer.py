"""One engine's training state on one rank and its optimizer step, shared by the training loop (train.train) and
the throughput benchmark (benchmarks/speed/train_speed.py).

Where a batch comes from: on the host, `CropSampler` in numpy (the CPU path, unchanged); on a GPU, when the
split's clips fit, `DeviceCropSampler` keeps them on the device and the flow noise is drawn there too, so a step
never waits for the host. Mixed precision: bf16 autocast on a GPU by default (losses and norms stay in fp32 under
autocast); `compile` wraps the training model in torch.compile (the EMA copy and the export stay plain modules).
Distillation (config.teacher): the model starts as the teacher, with what the student adds (its engine's
`distilled_config`) fresh, and trains on the engine's `distillation_loss` against the frozen teacher.
"""
from __future__ import annotations

import contextlib
import copy
from typing import Any

import numpy as np
import torch

from moodgen.keys import fit_key_prior
from train.corpus.cache import CorpusCache
from train.data import CropSampler, DeviceCropSampler
from train.distributed import SINGLE, Ranks, gather, wrap
from train.runs import seed_everything

DEVICE_MEMORY_SHARE = 0.5  # the crops' copy may take this share of the free GPU memory; the model needs the rest


def crops_on_device(config: Any, sampler: CropSampler, device: torch.device) -> bool:
    """Whether the batches are drawn on the device: config.crops "device", or "auto" on a GPU that holds the
    split's clips with room to spare."""
    if config.crops != "auto":
        return config.crops == "device"
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return DeviceCropSampler.nbytes(sampler) <= DEVICE_MEMORY_SHARE * free


def autocast_dtype(config: Any, device: torch.device) -> torch.dtype | None:
    """bf16 for config.precision "bf16", or "auto" on a GPU; None: plain fp32."""
    if config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


class Trainer:
    """Model, EMA copy, optimizer, crop sampler and random generators of one rank; `step()` trains one batch."""

    def __init__(self, config: Any, cache: CorpusCache, device: torch.device, ranks: Ranks = SINGLE):
        self.config, self.device, self.ranks = config, device, ranks
        self.engine = eng = config.engine_class
        seed = config.seed + ranks.rank  # every rank draws its own crops; DDP copies rank 0's initial weights
        seed_everything(seed)
        self.sampler = CropSampler(cache, eng, "train", config.crop_frames, config.max_shift)
        self.model = eng.model_class(config.model).to(device)
        if self.model.key is not None:
            self.model.key.prior.copy_(fit_key_prior(
                torch.tensor([[it["valence"], it["arousal"]] for it in self.sampler.items]),
                torch.tensor(self.sampler.keys)))
        self.teacher, self.teacher_metadata = None, None
        if config.teacher:
            self.teacher, self.teacher_metadata = eng.model_class.from_file(config.teacher, device)
            self.teacher.requires_grad_(False)
            unexpected = self.model.load_state_dict(self.teacher.state_dict(), strict=False).unexpected_keys
            if unexpected:
                raise ValueError(f"{config.teacher}: the student lacks the teacher's {unexpected[:3]}")
        net = wrap(self.model, ranks, device)
        self.net = torch.compile(net) if config.compile else net
        self.ema = copy.deepcopy(self.model).eval()  # after wrap: DDP has made every rank's weights rank 0's
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.rng = np.random.default_rng(seed)
        self.device_crops = None
        self.noise = torch.Generator().manual_seed(seed)  # the loss's noise and condition dropout
        if crops_on_device(config, self.sampler, device):
            self.device_crops = DeviceCropSampler(self.sampler, device, torch.Generator(device).manual_seed(seed))
            self.noise = torch.Generator(device).manual_seed(seed + 2 ** 31)
        self.autocast = autocast_dtype(config, device)
        self.step_count = 0
        self.elapsed = 0.0

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, C, T), mood (B, 2), key (B,) on the device."""
        if self.device_crops is not None:
            return self.device_crops.batch(self.config.batch_size)
        arrays = self.sampler.batch(self.config.batch_size, self.rng)
        return tuple(torch.from_numpy(a).to(self.device, non_blocking=True) for a in arrays)

    def step(self) -> torch.Tensor:
        """One optimizer step and EMA update; the batch's loss (a 0-dim tensor on the device, not synchronized)."""
        c = self.config
        x, mood, key = self.batch()
        for g in self.opt.param_groups:
            g["lr"] = c.lr * min(1.0, (self.step_count + 1) / c.warmup_steps)
        self.model.train()
        mixed = torch.autocast(self.device.type, self.autocast) if self.autocast else contextlib.nullcontext()
        with mixed:
            loss = self.loss(self.net, x, mood, self.noise, key, c.cond_dropout)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        self.opt.step()
        with torch.no_grad():
            decay = min(c.ema_decay, (1 + self.step_count) / (10 + self.step_count))
            for pe, pm in zip(self.ema.parameters(), self.model.parameters()):
                pe.lerp_(pm, 1 - decay)
        self.step_count += 1
        return loss.detach()

    def loss(self, model: torch.nn.Module, x: torch.Tensor, mood: torch.Tensor, generator: torch.Generator | None,
             key: torch.Tensor | None, cond_dropout: float) -> torch.Tensor:
        """The engine's training loss of a batch, or its distillation loss against the teacher (which drops no
        condition: the student is never asked for an unconditional prediction)."""
        if self.teacher is None:
            return self.engine.loss(model, x, mood, cond_dropout, generator, key)
        guidance = self.teacher_metadata["provenance"]["sampler"]["guidance"]
        return self.engine.distillation_loss(model, self.teacher, x, mood, generator, key, guidance)

    def _rngs(self) -> dict[str, Any]:
        rngs = {"numpy": self.rng.bit_generator.state, "global": torch.get_rng_state(),
                "noise": self.noise.get_state(), "noise_device": self.noise.device.type}
        if self.device_crops is not None:
            rngs["crops"] = self.device_crops.generator.get_state()
            rngs["crops_device"] = self.device.type
        if self.device.type == "cuda":  # dropout on a GPU draws from its default generator
            rngs["cuda"] = torch.cuda.get_rng_state(self.device)
        return rngs

    def state(self) -> dict[str, Any]:
        """The resumable state, with every rank's generators (a collective: every rank must call it)."""
        return {"model": self.model.state_dict(), "ema": self.ema.state_dict(), "opt": self.opt.state_dict(),
                "step": self.step_count, "elapsed": self.elapsed, "rngs": gather(self._rngs(), self.ranks)}

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from `state`; ranks it has no generators for (a run resumed on more ranks) keep fresh ones."""
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        self.step_count, self.elapsed = state["step"], state["elapsed"]
        if self.ranks.rank >= len(state["rngs"]):
            return
        rngs = state["rngs"][self.ranks.rank]
        self.rng.bit_generator.state = rngs["numpy"]
        torch.set_rng_state(rngs["global"])
        if rngs["noise_device"] == self.noise.device.type:  # a run resumed on other hardware keeps fresh ones
            self.noise.set_state(rngs["noise"])
        if self.device_crops is not None and rngs.get("crops_device") == self.device.type:
            self.device_crops.generator.set_state(rngs["crops"])
        if self.device.type == "cuda" and "cuda" in rngs:
            torch.cuda.set_rng_state(rngs["cuda"], self.device)
