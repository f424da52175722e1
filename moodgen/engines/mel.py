"""The mel engine: a conditional flow-matching U-Net (moodgen.flow_model) samples a log-mel spectrogram that the
learned inverter (moodgen.inverter) turns into audio; the path the project grew from. It trains on every
transposition of the corpus cache's mels."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from moodgen.config import MelParams, RollParams
from moodgen.engines.base import Engine, EngineOutput, register
from moodgen.flow_model import FlowConfig, FlowModel, flow_matching_loss, sample
from moodgen.inverter import MelInverter, default_inversion, load_inverter
from moodgen.render import Mastering


def mel_correlates(x: np.ndarray, params: MelParams) -> dict[str, float]:
    """Mood correlates of one normalized log-mel (M, T): mean level (dB) and spectral flux per second."""
    db = (x + 1) / 2 * (params.db_max - params.db_min) + params.db_min
    flux = np.clip(np.diff(db, axis=1), 0, None).mean(axis=0)
    return {"level_db": float(db.mean()), "flux_per_s": float(flux.sum() / (x.shape[1] / params.frames_per_second))}


@register
class MelEngine(Engine):
    name = "mel"
    label = "mel: the spectrogram path the project grew from, smoother sound"
    rank = 1
    weights_file = "mel_flow.safetensors"
    model_class = FlowModel
    uses_steps = True
    makes_midi = False
    mastering = Mastering(gain_db=13.5, reverb_wet=0.1)  # happy -14.0 LUFS, sad 6.5 LU below
    cache_field = "mel"
    transposes_on_the_fly = False

    def __init__(self, model: FlowModel, metadata: dict[str, Any], sha256: str, inverter: MelInverter | None = None):
        super().__init__(model, metadata, sha256)
        self.inverter = inverter

    @staticmethod
    def load_companions(folder: Path, device: torch.device | str, metadata: dict[str, Any],
                        soundfont: str | Path | None) -> dict[str, Any]:
        """The learned inverter when the folder has one (else the engine inverts with fast Griffin-Lim)."""
        return {"inverter": load_inverter(folder, device)}

    def generate(self, mood: torch.Tensor, seconds: float, seed: int, steps: int | None, guidance: float,
                 key: torch.Tensor | None, instrument: str | None = None) -> EngineOutput:
        n_samples = int(round(seconds * self.mel_params.sample_rate))
        frames = -(-n_samples // self.mel_params.hop_length) + 1  # enough frames to cover every sample
        mel = sample(self.model, mood, frames, steps, guidance, seed, key)[0].clamp(-1, 1).cpu().numpy()
        wav = default_inversion(mel, self.mel_params, self.inverter)[:n_samples]
        return EngineOutput(audio=wav, mel=mel, midi=None, render={})

    @staticmethod
    def default_model_config() -> FlowConfig:
        return FlowConfig(in_channels=MelParams().n_mels, base_channels=64, channel_mults=(1, 2, 3, 4), kernel_size=3,
                          key_conditioning=True)

    @staticmethod
    def train_overrides() -> dict[str, Any]:
        return {"batch_size": 16, "crop_frames": 256, "max_minutes": 85.0, "max_shift": 0, "probe_every": 500}

    @staticmethod
    def check_train_config(model_config: FlowConfig, crop_frames: int) -> None:
        if model_config.in_channels != MelParams().n_mels:
            raise ValueError(f"engine mel needs model.in_channels={MelParams().n_mels}, got {model_config.in_channels}")
        if crop_frames % 2 ** (len(model_config.channel_mults) - 1):
            raise ValueError(f"crop_frames {crop_frames} must be a multiple of the model's time multiple")

    @staticmethod
    def loss(model: FlowModel, x: torch.Tensor, mood: torch.Tensor, cond_dropout: float,
             generator: torch.Generator | None, key: torch.Tensor | None) -> torch.Tensor:
        return flow_matching_loss(model, x, mood, cond_dropout, generator, key)

    @staticmethod
    def encode_crop(raw: np.ndarray, shift: int) -> np.ndarray:
        if shift:
            raise ValueError("the mel engine trains on the cache's rendered transpositions, not on shifted crops")
        return np.asarray(raw, dtype=np.float32).T

    @staticmethod
    def sample(model: FlowModel, mood: torch.Tensor, frames: int, steps: int | None, guidance: float, seed: int,
               key: torch.Tensor | None) -> np.ndarray:
        return sample(model, mood, frames, steps, guidance, seed=seed, key=key).cpu().numpy()

    @staticmethod
    def correlates(x: np.ndarray, mel_params: MelParams, roll_params: RollParams) -> dict[str, float]:
        return mel_correlates(x, mel_params)
