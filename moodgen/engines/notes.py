"""The note engine: an autoregressive piano-roll model (moodgen.note_model) whose rolls become MIDI, rendered by a
soundfont. It trains on untransposed piano rolls from the corpus cache, shifted by a few semitones per crop."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pretty_midi
import torch

from moodgen import midi, render
from moodgen.config import MelParams, RollParams, from_dict
from moodgen.engines.base import Engine, EngineOutput, register
from moodgen.keys import key_profile_scores
from moodgen.note_model import NoteModel, NoteModelConfig, note_loss, sample_roll


def roll_correlates(x: np.ndarray, roll: RollParams) -> dict[str, float]:
    """Mood correlates of one encoded roll (2K, T): onsets/s, mean onset velocity, major-minus-minor, mean pitch."""
    active, onset = midi.decode_roll(x)
    seconds = x.shape[1] / roll.fps
    keys = np.arange(roll.n_keys) + roll.lowest_pitch
    major, minor = key_profile_scores(midi.pitch_class_histogram(active > 0, roll))
    ons = onset[onset > 0]
    sounding = np.nonzero(active)[1]
    return {"onsets_per_s": float((onset > 0).sum() / seconds), "velocity": float(ons.mean()) if ons.size else 0.0,
            "mode": major - minor, "pitch": float(keys[sounding].mean()) if sounding.size else 0.0}


def shift_roll(roll: np.ndarray, shift: int) -> np.ndarray:
    """(T, 2, K) roll moved `shift` keys up (down when negative); keys pushed off the keyboard are dropped."""
    out = np.roll(roll, shift, axis=2)
    if shift > 0:
        out[:, :, :shift] = 0
    elif shift < 0:
        out[:, :, shift:] = 0
    return out


@register
class NoteEngine(Engine):
    name = "notes"
    label = "notes: clean piano from a note model, with MIDI"
    rank = 0  # the default: far more realistic than "mel" in the evaluation report, and faster (README, Evaluation)
    weights_file = "note_model.safetensors"
    model_class = NoteModel
    uses_steps = False  # samples frame by frame
    makes_midi = True
    instruments = tuple(render.INSTRUMENTS)  # learned from piano: the others play the same notes
    mastering = render.Mastering(gain_db=12.5, reverb_wet=0.1)  # happy -13.4 LUFS, sad 9.7 LU below (TimGM6mb)
    cache_field = "roll"
    transposes_on_the_fly = True

    def __init__(self, model: NoteModel, metadata: dict[str, Any], sha256: str,
                 renderer: render.SoundfontRenderer):
        super().__init__(model, metadata, sha256)
        self.roll_params = from_dict(RollParams, metadata["provenance"].get("roll_params", {}))
        self.renderer = renderer

    @staticmethod
    def load_companions(folder: Path, device: torch.device | str, metadata: dict[str, Any],
                        soundfont: str | Path | None) -> dict[str, Any]:
        """The soundfont renderer, loaded once for every clip."""
        return {"renderer": render.SoundfontRenderer(metadata["mel_params_obj"].sample_rate, soundfont)}

    def generate(self, mood: torch.Tensor, seconds: float, seed: int, steps: int | None, guidance: float,
                 key: torch.Tensor | None, instrument: str | None = None) -> EngineOutput:
        active, onset = sample_roll(self.model, mood, self.roll_params.frames_for(seconds), guidance, seed=seed,
                                    key=key)
        pm = midi.midi_from_roll(active[0], onset[0], self.roll_params)
        return self.play(pm, seconds, instrument or self.instruments[0])

    def play(self, pm: pretty_midi.PrettyMIDI, seconds: float, instrument: str) -> EngineOutput:
        """Render `pm` on `instrument` to exactly `seconds` of audio, with the MIDI that says so."""
        pm = render.with_instrument(pm, instrument)
        n_samples = int(round(seconds * self.mel_params.sample_rate))
        wav = self.renderer.render(pm) if pm.instruments[0].notes else np.zeros(0)
        wav = np.pad(wav, (0, max(0, n_samples - len(wav))))[:n_samples].astype(np.float32)
        buf = io.BytesIO()
        pm.write(buf)
        return EngineOutput(audio=wav, mel=None, midi=buf.getvalue(),
                            render={"instrument": instrument, "program": render.program_for(instrument),
                                    "soundfont": self.renderer.name, "soundfont_sha256": self.renderer.sha256})

    @staticmethod
    def default_model_config() -> NoteModelConfig:
        return NoteModelConfig(n_keys=RollParams().n_keys, key_conditioning=True)

    @staticmethod
    def train_overrides() -> dict[str, Any]:
        return {"batch_size": 16, "lr": 1e-3, "warmup_steps": 200, "probe_every": 500, "max_minutes": 55.0}

    @staticmethod
    def check_train_config(model_config: NoteModelConfig, crop_frames: int) -> None:
        if model_config.n_keys != RollParams().n_keys:
            raise ValueError(f"engine notes needs model.n_keys={RollParams().n_keys}, got {model_config.n_keys}")

    @staticmethod
    def loss(model: NoteModel, x: torch.Tensor, mood: torch.Tensor, cond_dropout: float,
             generator: torch.Generator | None, key: torch.Tensor | None) -> torch.Tensor:
        return note_loss(model, x, mood, cond_dropout, generator, key)

    @staticmethod
    def encode_crop(raw: np.ndarray, shift: int) -> np.ndarray:
        roll = shift_roll(np.asarray(raw), shift)
        return midi.encode_roll(roll[:, 0], roll[:, 1])

    @staticmethod
    def sample(model: NoteModel, mood: torch.Tensor, frames: int, steps: int | None, guidance: float, seed: int,
               key: torch.Tensor | None) -> np.ndarray:
        active, onset = sample_roll(model, mood, frames, guidance, seed=seed, key=key)
        return np.stack([midi.encode_roll(a, o) for a, o in zip(active, onset)])

    @staticmethod
    def correlates(x: np.ndarray, mel_params: MelParams, roll_params: RollParams) -> dict[str, float]:
        return roll_correlates(x, roll_params)
