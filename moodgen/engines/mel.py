"""The mel engine: a conditional flow-matching U-Net (moodgen.flow_model) samples a log-mel spectrogram that the
learned inverter (moodgen.inverter) turns into audio; the path the project grew from. It trains on every
transposition of the corpus cache's mels. Music that goes on is sampled in overlapping windows, each with its own
mood, each continuing the one before by inpainting (`MelSession`).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moodgen import audio
from moodgen.config import MelParams, RollParams
from moodgen.engines.base import Continuation, Engine, EngineOutput, Session, register
from moodgen.flow_model import FlowConfig, FlowModel, flow_matching_loss, guidance_distillation_loss, sample
from moodgen.inverter import DEFAULT_N_ITER, MelInverter, default_inversion, load_inverter, phase_vocoder_phase
from moodgen.joins import declick
from moodgen.journey import derived_seed
from moodgen.mastering import Mastering

WINDOW_FRAMES = 384  # one window of a session: the frames it continues plus the new ones (4.5 s)
CONTEXT_FRAMES = 64  # each window continues the last 0.74 s before it, kept by inpainting
LOOKAHEAD_FRAMES = 16  # each window samples 0.19 s past its frames; the next one fades from those into its own
RENDER_CONTEXT_FRAMES = 32  # a continuing inversion also sees this much mel before its first new frame


def mel_correlates(x: np.ndarray, params: MelParams) -> dict[str, float]:
    """Mood correlates of one normalized log-mel (M, T): mean level (dB) and spectral flux per second."""
    db = (x + 1) / 2 * (params.db_max - params.db_min) + params.db_min
    flux = np.clip(np.diff(db, axis=1), 0, None).mean(axis=0)
    return {"level_db": float(db.mean()), "flux_per_s": float(flux.sum() / (x.shape[1] / params.frames_per_second))}


def window_sizes(frames: int, most: int) -> list[int]:
    """`frames` split into the fewest windows of at most `most` new frames, as even as can be."""
    count = -(-frames // most)
    return [frames * (i + 1) // count - frames * i // count for i in range(count)]


class MelSession(Session):
    """Windows of at most WINDOW_FRAMES: each has the mean mood and the middle key of its new frames, continues the
    CONTEXT_FRAMES before it by inpainting and samples LOOKAHEAD_FRAMES more; the next window's first frames fade
    from those into its own, so a window starts where the last one was heading instead of at an inpainting seam.
    The first render inverts all the mel at once; later renders invert from a little before their first new frame,
    Griffin-Lim starting from the phase of the audio already heard, and fade in from the audio the last render made
    of the frames then not final (a continued clip has none: its join is de-clicked)."""

    loop_crossfade_seconds = 0.1  # the overrun is the head's own mel, so a short fade suffices
    loop_overrun_frames = CONTEXT_FRAMES

    def __init__(self, model: FlowModel, inverter: MelInverter | None, params: MelParams, seed: int, steps: int,
                 guidance: float, before: Continuation | None):
        self.model, self.inverter, self.params = model, inverter, params
        self.seed, self.steps, self.guidance = seed, steps, guidance
        self.parts = [] if before is None else [np.asarray(before.frames, dtype=np.float32)]
        self.lookahead = np.zeros((params.n_mels, 0), np.float32)  # frames sampled past the last window's own
        self.length = sum(p.shape[1] for p in self.parts)
        self.played = np.zeros(0, dtype=np.float32) if before is None else np.asarray(before.audio, np.float32)
        self.audio_length = len(self.played)  # samples rendered so far
        self.pending = np.zeros(0, dtype=np.float32)  # audio past them, of frames not yet final
        self.played = self.played[-self.kept_samples:]

    def mel(self, start_frame: int, end_frame: int) -> np.ndarray:
        return self.frames[:, start_frame:end_frame]

    @property
    def kept_samples(self) -> int:
        return (RENDER_CONTEXT_FRAMES + 2) * self.params.hop_length

    @property
    def frames(self) -> np.ndarray:
        if len(self.parts) > 1:
            self.parts = [np.concatenate(self.parts, axis=1)]
        return self.parts[0] if self.parts else np.zeros((self.params.n_mels, 0), dtype=np.float32)

    def tail(self, frames: int) -> np.ndarray:
        out, need = [], frames
        for part in reversed(self.parts):
            if need <= 0:
                break
            out.insert(0, part[:, -need:])
            need -= out[0].shape[1]
        return np.concatenate(out, axis=1) if out else np.zeros((self.params.n_mels, 0), dtype=np.float32)

    def samples_for(self, frames: int) -> int:
        return frames * self.params.hop_length

    def advance(self, moods: np.ndarray, keys: np.ndarray | None, wrap: int = 0) -> np.ndarray:
        sizes = window_sizes(len(moods) - wrap, WINDOW_FRAMES - CONTEXT_FRAMES - LOOKAHEAD_FRAMES)
        done = 0
        for i, n in enumerate(sizes):
            final = i == len(sizes) - 1
            # a loop's last window inpaints towards the loop's own first frames, which then are its overrun; a loop
            # too short to have them yet samples its overrun like any frames
            head = self.frames[:, :wrap] if final and wrap and self.length >= wrap else None
            free = n + (wrap if final and head is None else 0)
            ahead = 0 if head is not None else LOOKAHEAD_FRAMES
            context = self.tail(CONTEXT_FRAMES)
            end = np.zeros((self.params.n_mels, 0), np.float32) if head is None else head
            known = np.concatenate([context, np.zeros((self.params.n_mels, free + ahead), np.float32), end], axis=1)
            mask = np.ones(known.shape[1], dtype=bool)
            mask[context.shape[1]:context.shape[1] + free + ahead] = False
            mood = torch.from_numpy(moods[done:done + free].mean(axis=0, keepdims=True))
            key = None if keys is None else torch.tensor([int(keys[done + free // 2])])
            seed = derived_seed(self.seed, self.length)  # each window its own noise
            x = sample(self.model, mood, known.shape[1], self.steps, self.guidance, seed, key,
                       torch.from_numpy(known)[None], torch.from_numpy(mask))[0].clamp(-1, 1).cpu().numpy()
            new = x[:, context.shape[1]:context.shape[1] + free]
            if self.lookahead.shape[1]:  # the last window sampled these frames already, continuing its own
                m = min(self.lookahead.shape[1], free)
                fade = (np.arange(m, dtype=np.float32) + 0.5) / m
                new[:, :m] = (1 - fade) * self.lookahead[:, :m] + fade * new[:, :m]
            self.lookahead = x[:, context.shape[1] + free:context.shape[1] + free + ahead]
            self.parts.append(new if head is None else np.concatenate([new, head], axis=1))
            self.length += self.parts[-1].shape[1]
            done += self.parts[-1].shape[1]
        return self.tail(len(moods))

    def render(self) -> np.ndarray:
        # the frames sampled past the last window are inverted too: their audio, not yet final, is what the next
        # render crossfades from, so a join is a fade between two renders of nearly the same frames
        mel, hop = np.concatenate([self.frames, self.lookahead], axis=1), self.params.hop_length
        if self.audio_length == 0:
            wav = default_inversion(mel, self.params, self.inverter)
        else:
            start = max(0, self.audio_length // hop - RENDER_CONTEXT_FRAMES)
            heard = np.concatenate([self.played[len(self.played) - (self.audio_length - start * hop):], self.pending])
            wav = self.continue_inversion(mel[:, start:], heard)[self.audio_length - start * hop:]
            fade = min(len(self.pending), len(wav))
            if fade:
                w = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)
                wav[:fade] = (1 - w) * self.pending[:fade] + w * wav[:fade]
            else:
                wav = declick(self.played, wav, self.params.sample_rate)
        final = max(0, (self.length - 1) * hop - self.audio_length)
        new, self.pending = wav[:final].astype(np.float32), wav[final:].astype(np.float32)
        self.audio_length += len(new)
        self.played = np.concatenate([self.played, new])[-self.kept_samples:]
        return new

    def continue_inversion(self, mel: np.ndarray, heard: np.ndarray) -> np.ndarray:
        """(M, T) mel whose audio begins with `heard` (S,) -> its audio, Griffin-Lim started from the phase the
        heard frames already have (elsewhere from the phase vocoder), so the new audio continues their waveform."""
        mel_t = torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))
        if self.inverter is not None:
            magnitude, n_iter = self.inverter.magnitude(mel_t).float().cpu(), DEFAULT_N_ITER
        else:
            magnitude, n_iter = audio.magnitude_from_mel_pinv(mel_t, self.params), 32
        phase = phase_vocoder_phase(magnitude, self.params)
        known = audio.stft(torch.from_numpy(np.ascontiguousarray(heard, np.float32)), self.params).angle()
        inside = min(known.shape[1], max(0, (len(heard) - self.params.n_fft // 2) // self.params.hop_length))
        phase[:, :inside] = known[:, :inside]
        length = (mel.shape[1] - 1) * self.params.hop_length
        return audio.griffin_lim(magnitude, self.params, n_iter=n_iter, length=length, init_phase=phase).numpy()


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
                 key: torch.Tensor | None, instrument: str | None = None,
                 soundfont: str | None = None) -> EngineOutput:
        n_samples = int(round(seconds * self.mel_params.sample_rate))
        frames = -(-n_samples // self.mel_params.hop_length) + 1  # enough frames to cover every sample
        mel = sample(self.model, mood, frames, steps, guidance, seed, key)[0].clamp(-1, 1).cpu().numpy()
        wav = default_inversion(mel, self.mel_params, self.inverter)[:n_samples]
        return EngineOutput(audio=wav, mel=mel, midi=None, render={}, frames=mel)

    @property
    def frame_rate(self) -> float:
        return self.mel_params.frames_per_second

    def frames_for(self, seconds: float) -> int:
        return -(-int(round(seconds * self.mel_params.sample_rate)) // self.mel_params.hop_length) + 1

    def session(self, seed: int, steps: int | None, guidance: float, before: Continuation | None = None,
                instrument: str | None = None, soundfont: str | None = None) -> MelSession:
        return MelSession(self.model, self.inverter, self.mel_params, seed, steps or self.default_steps, guidance,
                          before)

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
    def distilled_config(model_config: FlowConfig) -> FlowConfig:
        """Guidance distillation: the student takes the guidance scale and samples in one pass per step."""
        return dataclasses.replace(model_config, guidance_conditioning=True)

    @staticmethod
    def distillation_loss(student: FlowModel, teacher: FlowModel, x: torch.Tensor, mood: torch.Tensor,
                          generator: torch.Generator | None, key: torch.Tensor | None,
                          teacher_guidance: float) -> torch.Tensor:
        return guidance_distillation_loss(student, teacher, x, mood, generator, key, teacher_guidance)

    @staticmethod
    def encode_crop(raw: np.ndarray, shift: int) -> np.ndarray:
        if shift:
            raise ValueError("the mel engine trains on the cache's rendered transpositions, not on shifted crops")
        return np.asarray(raw, dtype=np.float32).T

    @classmethod
    def encode_crops(cls, raw: torch.Tensor, shift: torch.Tensor | None) -> torch.Tensor:
        """(B, T, M) float16 mels -> (B, M, T) float32 on raw's device; no shift (see `encode_crop`)."""
        if shift is not None:
            raise ValueError("the mel engine trains on the cache's rendered transpositions, not on shifted crops")
        return raw.float().transpose(1, 2).contiguous()

    @staticmethod
    def sample(model: FlowModel, mood: torch.Tensor, frames: int, steps: int | None, guidance: float, seed: int,
               key: torch.Tensor | None) -> np.ndarray:
        return sample(model, mood, frames, steps, guidance, seed=seed, key=key).cpu().numpy()

    @staticmethod
    def correlates(x: np.ndarray, mel_params: MelParams, roll_params: RollParams) -> dict[str, float]:
        return mel_correlates(x, mel_params)
