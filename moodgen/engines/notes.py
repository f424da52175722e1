"""The note engine: an autoregressive piano-roll model (moodgen.note_model) whose rolls become MIDI, rendered by a
soundfont. It trains on untransposed piano rolls from the corpus cache, shifted by a few semitones per crop. It
samples frame by frame, so music that goes on (`NoteSession`) takes a mood and key per frame and continues from the
model's queues; its synth keeps playing from one render to the next."""
from __future__ import annotations

import copy
import dataclasses
import io
import math
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pretty_midi
import torch

from moodgen import midi, render
from moodgen.config import MelParams, RollParams, from_dict, shown
from moodgen.engines.base import Continuation, Engine, EngineOutput, Session, provenance_record, register
from moodgen.joins import fit
from moodgen.keys import key_profile_scores
from moodgen.mastering import Mastering
from moodgen.note_model import NoteModel, NoteModelConfig, NoteSampler, SamplerConfig, note_loss, sample_roll
from moodgen.note_synth import ContinuingSynth, frame_sample, roll_events
from moodgen.parts import parts_midi, split_parts
from moodgen.tempo import FRAMES_PER_SIXTEENTH, Tempo


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


def rendered(pm: pretty_midi.PrettyMIDI, n_samples: int, renderer: render.SoundfontRenderer) -> np.ndarray:
    """`pm` (one program) played by `renderer`, cut or padded with silence to (n_samples,) float32."""
    wav = renderer.render(pm) if pm.instruments and pm.instruments[0].notes else np.zeros(0)
    return fit(wav, n_samples).astype(np.float32)


def with_events(pm: pretty_midi.PrettyMIDI, key_changes: list[tuple[float, int]],
                markers: list[tuple[float, str]]) -> pretty_midi.PrettyMIDI:
    """`pm` with key signatures (seconds, key) and text markers (seconds, text)."""
    pm.key_signature_changes = [pretty_midi.KeySignature(key, seconds) for seconds, key in key_changes]
    pm.text_events = [pretty_midi.Text(text, seconds) for seconds, text in markers]
    return pm


def midi_bytes(pm: pretty_midi.PrettyMIDI) -> bytes:
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


class NoteSession(Session):
    """The note sampler with a condition per frame; a continuation first runs the clip's last receptive field of
    frames through the model (teacher-forced) and replays the clip's notes into the synth, silently."""

    loop_crossfade_seconds = 0.5  # lets the notes ringing at the loop point die away into the head
    loop_overrun_frames = 10

    def __init__(self, engine: NoteEngine, seed: int, guidance: float, before: Continuation | None, instrument: str,
                 soundfont: str | None, tempo: Tempo | None = None):
        self.engine, self.params, self.sample_rate = engine, engine.roll_params, engine.mel_params.sample_rate
        self.instrument, self.tempo = instrument, tempo
        if tempo is not None:  # the overrun lasts as long as at 16 frames/s, in whole 16ths
            overrun = math.ceil(self.loop_overrun_frames / self.params.fps / tempo.frame_seconds / FRAMES_PER_SIXTEENTH)
            self.loop_overrun_frames = overrun * FRAMES_PER_SIXTEENTH
        self.renderer = engine.renderer_for(soundfont)
        self.sampler = NoteSampler(engine.sampling_model, guidance, seed, config=engine.sampler_config,
                                   roll=engine.roll_params)
        self.synth = engine.synth(instrument, self.renderer)
        self.active: list[np.ndarray] = []  # (t, K) uint8 parts of the rolls
        self.onset: list[np.ndarray] = []
        self.length = self.rendered = 0
        self.rendered_notes: list[tuple[int, int, int, int]] = []
        self.sounding = np.zeros(self.params.n_keys, dtype=np.uint8)  # active velocities of the last rendered frame
        if before is not None:
            active, onset = midi.decode_roll(before.frames)
            recent = slice(max(0, len(active) - engine.sampling_model.config.receptive_field - 1), len(active))
            keys = None if before.keys is None else before.keys[recent]
            self.sampler.prime(before.frames[:, recent].T, self.conditions(before.moods[recent], keys), active[-1])
            self.active, self.onset, self.length = [active], [onset], len(active)
            self.synth.play(roll_events(active, onset, self.sounding, 0, self.params, self.sample_rate, tempo),
                            len(before.audio))
            self.rendered, self.sounding = len(active), active[-1]

    def conditions(self, moods: np.ndarray, keys: np.ndarray | None) -> torch.Tensor:
        return self.sampler.frame_conditions(torch.from_numpy(np.asarray(moods, np.float32)),
                                             None if keys is None else torch.from_numpy(np.asarray(keys, np.int64)))

    @property
    def frames(self) -> np.ndarray:
        active, onset = self.rolls(0, self.length)
        return midi.encode_roll(active, onset)

    def rolls(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self.active) > 1:
            self.active, self.onset = [np.concatenate(self.active)], [np.concatenate(self.onset)]
        if not self.active:
            return (np.zeros((0, self.params.n_keys), np.uint8),) * 2
        return self.active[0][start:end], self.onset[0][start:end]

    def samples_for(self, frames: int) -> int:
        return frame_sample(frames, self.params, self.sample_rate, self.tempo)

    def advance(self, moods: np.ndarray, keys: np.ndarray | None, wrap: int = 0) -> np.ndarray:
        active, onset = (roll[0] for roll in self.sampler.run(len(moods), self.conditions(moods, keys), keys))
        self.active.append(active)
        self.onset.append(onset)
        self.length += len(active)
        return midi.encode_roll(active, onset)

    def render(self) -> np.ndarray:
        active, onset = self.rolls(self.rendered, self.length)
        events = roll_events(active, onset, self.sounding, self.rendered, self.params, self.sample_rate, self.tempo)
        if len(active):
            self.sounding = active[-1]
        self.rendered, self.rendered_notes = self.length, events
        return self.synth.play(events, self.samples_for(self.length))

    @property
    def render_record(self) -> dict[str, Any]:
        return self.engine.render_record(self.instrument, self.renderer)

    def close(self) -> None:
        if self.synth is not None:
            self.renderer.give_back(self.synth.loaded)  # the soundfont copy waits for the next session
            self.synth = None

    def midi(self, start_frame: int, end_frame: int, key_changes: list[tuple[float, int]],
             markers: list[tuple[float, str]]) -> bytes:
        pm = render.with_instrument(midi.midi_from_roll(*self.rolls(start_frame, end_frame), self.params,
                                                        tempo=self.tempo), self.instrument)
        return midi_bytes(with_events(pm, key_changes, markers))

    def parts(self, end_frame: int, audio_frames: int, instruments: dict[str, str],
              key_changes: list[tuple[float, int]], markers: list[tuple[float, str]]) -> tuple[dict, bytes]:
        whole = midi.midi_from_roll(*self.rolls(0, audio_frames), self.params, tempo=self.tempo)
        split = split_parts(whole.instruments[0].notes)
        n = self.samples_for(audio_frames)
        audio = {}
        for part, notes in split.items():
            pm, track = copy.copy(whole), pretty_midi.Instrument(render.program_for(instruments[part]))
            pm.instruments, track.notes = [track], notes
            audio[part] = rendered(pm, n, self.renderer)
        end = self.tempo.frame_time(end_frame) if self.tempo is not None else end_frame / self.params.fps
        kept = {part: [nt for nt in notes if nt.start < end] for part, notes in split.items()}
        for notes in kept.values():
            for note in notes:
                note.end = min(note.end, end)
        pm = parts_midi(kept, {p: render.program_for(i) for p, i in instruments.items()}, whole)
        return audio, midi_bytes(with_events(pm, key_changes, markers))


@register
class NoteEngine(Engine):
    name = "notes"
    label = "notes: clean piano from a note model, with MIDI"
    rank = 0  # the default: far more realistic than "mel" in the evaluation report, and faster (README, Evaluation)
    weights_file = "note_model.safetensors"
    model_class = NoteModel
    uses_steps = False  # samples frame by frame
    makes_midi = True
    plays_tempo = True  # at a tempo its frames are 32nd notes (moodgen.tempo)
    instruments = tuple(render.INSTRUMENTS)  # learned from piano: the others play the same notes
    mastering = Mastering(gain_db=12.5, reverb_wet=0.1)  # happy -13.4 LUFS, sad 9.7 LU below (TimGM6mb)
    cache_field = "roll"
    transposes_on_the_fly = True

    def __init__(self, model: NoteModel, metadata: dict[str, Any], sha256: str,
                 renderer: render.SoundfontRenderer, soundfont_paths: Mapping[str, Path] | None = None):
        super().__init__(model, metadata, sha256)
        # the grid it was trained on, all of it: another grid's defaults would play at the wrong tempo or pitch
        self.roll_params = from_dict(RollParams, provenance_record(
            metadata, "roll_params", tuple(f.name for f in dataclasses.fields(RollParams))))
        self.renderer = renderer  # the default soundfont's
        self.sampler_config = SamplerConfig()  # how rolls are drawn from the model (moodgen.note_model)
        # The other soundfonts it may play with, by file name; each is loaded on first use and kept: cut down to
        # the offered programs, a loaded copy is small (README, Sound).
        self.soundfont_paths = {renderer.name: renderer.path,
                                **{n: p for n, p in (soundfont_paths or {}).items() if n != renderer.name}}
        self._renderers = {renderer.name: renderer}
        self._renderers_lock = threading.Lock()
        # The frame-by-frame sampler is a few hundred tiny kernels per frame: launch-bound and slower on a GPU than
        # on the CPU, so a model loaded onto a GPU samples from a CPU copy (same rolls as on a CPU-only machine).
        on_cpu = next(model.parameters()).device.type == "cpu"
        self.sampling_model = model if on_cpu else copy.deepcopy(model).cpu()

    @staticmethod
    def load_companions(folder: Path, device: torch.device | str, metadata: dict[str, Any],
                        soundfont: str | Path | None) -> dict[str, Any]:
        """The default soundfont's renderer, loaded once for every clip, and the soundfonts found (by file name; the
        best of those sharing a name) to choose from per request."""
        found: dict[str, Path] = {}
        for path in render.find_soundfonts():
            found.setdefault(path.name, path)
        return {"renderer": render.SoundfontRenderer(metadata["mel_params_obj"].sample_rate, soundfont),
                "soundfont_paths": found}

    def generate(self, mood: torch.Tensor, seconds: float, seed: int, steps: int | None, guidance: float,
                 key: torch.Tensor | None, instrument: str | None = None,
                 soundfont: str | None = None) -> EngineOutput:
        renderer = self.renderer_for(soundfont)  # a bad name fails before sampling
        active, onset = sample_roll(self.sampling_model, mood, self.roll_params.frames_for(seconds), guidance,
                                    seed=seed, key=key, sampler=self.sampler_config, roll=self.roll_params)
        pm = midi.midi_from_roll(active[0], onset[0], self.roll_params)
        out = self.play(pm, seconds, instrument or self.instruments[0], renderer)
        return dataclasses.replace(out, frames=midi.encode_roll(active[0], onset[0]))

    def play(self, pm: pretty_midi.PrettyMIDI, seconds: float, instrument: str,
             renderer: render.SoundfontRenderer) -> EngineOutput:
        """Render `pm` on `instrument` with `renderer` to exactly `seconds` of audio, with the MIDI that says so."""
        pm = render.with_instrument(pm, instrument)
        wav = rendered(pm, int(round(seconds * self.mel_params.sample_rate)), renderer)
        return EngineOutput(audio=wav, mel=None, midi=midi_bytes(pm), render=self.render_record(instrument, renderer))

    @property
    def soundfonts(self) -> tuple[str, ...]:
        return tuple(self.soundfont_paths)

    def as_the_corpus_plays(self, midi: bytes | None, n_samples: int, record: dict[str, Any]) -> np.ndarray | None:
        """The notes on the corpus' piano (the bundled soundfont), dry, when they were played on another soundfont
        or instrument: the judge learned from that sound only, and on FluidR3 GM it heard every preset as aroused
        (sad A +0.41 against -0.60 on the corpus' piano, README)."""
        corpus = render.bundled_soundfont().name
        played = {record.get("instrument"), *(p["instrument"] for p in record.get("parts", {}).values())}
        if midi is None or (record.get("soundfont") == corpus and played == {self.instruments[0]}):
            return None
        pm = render.with_instrument(pretty_midi.PrettyMIDI(io.BytesIO(midi)), self.instruments[0])
        return rendered(pm, n_samples, self.renderer_for(corpus))

    def renderer_for(self, soundfont: str | None) -> render.SoundfontRenderer:
        """The renderer of soundfont `soundfont` (a file name from `soundfonts`; None: the default), loaded on first
        use and kept; ValueError naming the choices otherwise."""
        name = self.renderer.name if soundfont is None else soundfont
        with self._renderers_lock:
            if name not in self._renderers:
                if not isinstance(name, str) or name not in self.soundfont_paths:
                    raise ValueError(f"soundfont must be one of {', '.join(self.soundfonts)}, got {shown(name)}")
                self._renderers[name] = render.SoundfontRenderer(self.renderer.sample_rate, self.soundfont_paths[name],
                                                                 gain_db=self.renderer.gain_db)
            return self._renderers[name]

    def render_record(self, instrument: str, renderer: render.SoundfontRenderer) -> dict[str, Any]:
        """How the notes are drawn and played, for the JSON sidecar."""
        return {"instrument": instrument, "program": render.program_for(instrument), "soundfont": renderer.name,
                "soundfont_sha256": renderer.sha256, "sampler": self.sampler_record}

    @property
    def sampler_record(self) -> dict[str, float]:
        return self.sampler_config.record()

    @property
    def default_guidance(self) -> float:
        """The sampler settings' guidance, else the one the checkpoint's export chose (docs/realism.md: 2.5 makes
        the valence heard follow the target more closely than the export's 1.5)."""
        guidance = self.sampler_config.guidance
        return self.checkpoint_guidance if guidance is None else guidance

    @default_guidance.setter
    def default_guidance(self, value: float) -> None:
        self.checkpoint_guidance = value

    @staticmethod
    def synth(instrument: str, renderer: render.SoundfontRenderer) -> ContinuingSynth:
        """A synth that keeps playing from call to call, sounding as `renderer` does (its soundfont, `instrument`'s
        program and level trim), on a copy of the soundfont borrowed from the renderer until given back."""
        program = render.program_for(instrument)
        synth = ContinuingSynth(renderer.borrow(), renderer.sample_rate)
        return synth.start(program, renderer.level_trim_db(program))

    @property
    def frame_rate(self) -> float:
        return float(self.roll_params.fps)

    def session(self, seed: int, steps: int | None, guidance: float, before: Continuation | None = None,
                instrument: str | None = None, soundfont: str | None = None,
                tempo: Tempo | None = None) -> NoteSession:
        return NoteSession(self, seed, guidance, before, instrument or self.instruments[0], soundfont, tempo)

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
        active, onset = sample_roll(model, mood, frames, guidance, seed=seed, key=key, sampler=SamplerConfig())
        return np.stack([midi.encode_roll(a, o) for a, o in zip(active, onset)])

    @staticmethod
    def correlates(x: np.ndarray, mel_params: MelParams, roll_params: RollParams) -> dict[str, float]:
        return roll_correlates(x, roll_params)
