"""MIDI handling: load, apply the sustain pedal, render with the General MIDI soundfont pretty_midi ships.

Pure functions except `load_midi` (reads a file) and `render_midi` (loads the soundfont; see `moodgen.render`).
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pretty_midi

from moodgen import render
from moodgen.config import RollParams
from moodgen.tempo import BEAT_UNIT, BEATS_PER_BAR, Tempo

SUSTAIN_CC = 64
PIANO_PROGRAM = render.PIANO_PROGRAM
RELEASE_TAIL_S = render.RELEASE_TAIL_S


def soundfont_path() -> Path:
    """The GM soundfont (TimGM6mb.sf2, GPL-2) inside the installed pretty_midi package: the corpus's soundfont."""
    return render.bundled_soundfont()


def load_midi(path: str | Path) -> pretty_midi.PrettyMIDI:
    """Read a MIDI file; a missing, empty, corrupt or note-less file raises ValueError naming the path."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: not a file")
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # pretty_midi/mido raise many types for corrupt files
        raise ValueError(f"{path}: unreadable MIDI ({type(exc).__name__}: {exc})") from exc
    if not any(inst.notes for inst in pm.instruments if not inst.is_drum):
        raise ValueError(f"{path}: MIDI has no pitched notes")
    return pm


def apply_sustain(pm: pretty_midi.PrettyMIDI) -> pretty_midi.PrettyMIDI:
    """Copy of `pm` whose notes last while the sustain pedal (CC64 >= 64) is held.

    A note released under the pedal rings until the pedal lifts, or until the same key is struck again.
    Pedal events are removed from the copy since their effect is now in the note ends.
    """
    out = copy.deepcopy(pm)
    for inst in out.instruments:
        pedal = sorted((c.time, c.value >= 64) for c in inst.control_changes if c.number == SUSTAIN_CC)
        inst.control_changes = [c for c in inst.control_changes if c.number != SUSTAIN_CC]
        downs = []  # (start, end) intervals with the pedal held
        start = None
        for t, is_down in pedal:
            if is_down and start is None:
                start = t
            elif not is_down and start is not None:
                downs.append((start, t))
                start = None
        if start is not None:
            downs.append((start, max(n.end for n in inst.notes) if inst.notes else start))
        for note in inst.notes:
            for d0, d1 in downs:
                if d0 <= note.end < d1:
                    note.end = d1
                    break
        by_pitch: dict[int, list[pretty_midi.Note]] = {}
        for note in sorted(inst.notes, key=lambda n: n.start):
            by_pitch.setdefault(note.pitch, []).append(note)
        for notes in by_pitch.values():
            for a, b in zip(notes, notes[1:]):
                if a.end > b.start:
                    a.end = max(b.start, a.start + 1e-3)
    return out


def render_midi(pm: pretty_midi.PrettyMIDI, sample_rate: int, soundfont: str | Path | None = None,
                program: int = PIANO_PROGRAM, gain_db: float = 0.0) -> np.ndarray:
    """Render every pitched note of `pm` on one soundfont program (default: the bundled soundfont, whatever
    $MOODGEN_SOUNDFONT says, as the corpus was rendered); returns mono float32 (S,).

    Loads the soundfont on every call: code that renders repeatedly keeps a `render.SoundfontRenderer`.
    Apply `apply_sustain` first: tinysoundfont ignores CC64. The result is a deterministic function of the notes.
    """
    one_program = copy.deepcopy(pm)
    for inst in one_program.instruments:
        inst.program = program
    renderer = render.SoundfontRenderer(sample_rate, soundfont or soundfont_path(), gain_db, programs=[program])
    return renderer.render(one_program)


def transpose(pm: pretty_midi.PrettyMIDI, semitones: int) -> pretty_midi.PrettyMIDI:
    """Copy of `pm` shifted by `semitones`, notes leaving the 88-key range (21..108) dropped."""
    out = copy.deepcopy(pm)
    for inst in out.instruments:
        if inst.is_drum:
            continue
        inst.notes = [pretty_midi.Note(n.velocity, n.pitch + semitones, n.start, n.end)
                      for n in inst.notes if 21 <= n.pitch + semitones <= 108]
    return out


def roll_from_midi(pm: pretty_midi.PrettyMIDI, params: RollParams) -> tuple[np.ndarray, np.ndarray]:
    """Piano roll of the pitched notes on `params`' grid: (active, onset), each (T, K) uint8 velocities.

    `active[t, k]` is the velocity of the note sounding on key k in frame t (0 = silent); `onset[t, k]` is the
    velocity of a note starting there. Apply `apply_sustain` first for the sounding length. Notes outside the
    key range are dropped; every note lasts at least one frame.
    """
    notes = [n for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    frames = max((int(round(n.end * params.fps)) for n in notes), default=0) + 1
    active = np.zeros((frames, params.n_keys), dtype=np.uint8)
    onset = np.zeros_like(active)
    for n in sorted(notes, key=lambda n: n.start):
        k = n.pitch - params.lowest_pitch
        if not 0 <= k < params.n_keys:
            continue
        s = int(round(n.start * params.fps))
        e = max(s + 1, int(round(n.end * params.fps)))
        active[s:e, k] = np.maximum(active[s:e, k], n.velocity)
        onset[s, k] = max(onset[s, k], n.velocity)
    return active, onset


def midi_from_roll(active: np.ndarray, onset: np.ndarray, params: RollParams,
                   program: int = PIANO_PROGRAM, tempo: Tempo | None = None) -> pretty_midi.PrettyMIDI:
    """Inverse of `roll_from_midi`: (T, K) active and onset velocity rolls -> a one-instrument PrettyMIDI.

    A note starts at each onset (or where a key turns on without one, taking the active velocity) and lasts
    while the key stays active, up to the next onset on that key. With a `tempo` the frames are 32nd notes of it
    and onsets sit on its 16th-note grid (moodgen.tempo); the file carries the tempo and a 4/4 time signature.
    """
    if active.shape != onset.shape or active.ndim != 2 or active.shape[1] != params.n_keys:
        raise ValueError(f"rolls must both be (T, {params.n_keys}), got {active.shape} and {onset.shape}")
    pm = pretty_midi.PrettyMIDI() if tempo is None else pretty_midi.PrettyMIDI(initial_tempo=tempo.bpm)
    if tempo is not None:
        pm.time_signature_changes = [pretty_midi.TimeSignature(BEATS_PER_BAR, BEAT_UNIT, 0.0)]
    inst = pretty_midi.Instrument(program=program)
    frames = active.shape[0]
    for k in range(params.n_keys):
        on = active[:, k] > 0
        starts = np.flatnonzero((onset[:, k] > 0) & on | on & ~np.concatenate([[False], on[:-1]]))
        for i, s in enumerate(starts):
            limit = starts[i + 1] if i + 1 < len(starts) else frames
            e = s + 1
            while e < limit and on[e]:
                e += 1
            velocity = int(onset[s, k] or active[s, k])
            if tempo is None:
                start, end = float(s) / params.fps, float(e) / params.fps
            else:  # a note cut by the next one on its key ends where that one is played
                start, end = tempo.onset_time(s), tempo.onset_time(e) if e == limit < frames else tempo.frame_time(e)
            inst.notes.append(pretty_midi.Note(velocity, k + params.lowest_pitch, start, end))
    inst.notes.sort(key=lambda n: (n.start, n.pitch))
    pm.instruments.append(inst)
    return pm


ONSET_FLOOR = 0.2  # an onset's encoded value is at least this, far from the -1 of "no onset"


def pitch_class_histogram(active: np.ndarray, params: RollParams) -> np.ndarray:
    """(T, K) roll values -> (12,) their sums per pitch class (C first). With velocities that weighs each note by
    duration x velocity; pass `active > 0` to count sounding frames."""
    pitch_classes = (np.arange(active.shape[1]) + params.lowest_pitch) % 12
    return np.bincount(pitch_classes, active.sum(axis=0, dtype=np.float64), minlength=12)


def encode_roll(active: np.ndarray, onset: np.ndarray) -> np.ndarray:
    """(T, K) uint8 velocity rolls -> (2K, T) float32 in [-1, 1] for the note engine.

    Rows 0..K-1: +1 where a key sounds, -1 elsewhere. Rows K..2K-1: -1 without an onset, else
    ONSET_FLOOR + (1 - ONSET_FLOOR) * velocity / 127, so loudness is carried by the onsets.
    """
    act = np.where(active > 0, 1.0, -1.0)
    ons = np.where(onset > 0, ONSET_FLOOR + (1 - ONSET_FLOOR) * onset / 127.0, -1.0)
    return np.concatenate([act, ons], axis=1).T.astype(np.float32)


def decode_roll(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `encode_roll` for model output: (2K, T) float -> (active, onset) (T, K) uint8 velocities.

    A key sounds where its row is > 0; an onset is where the onset row is above the midpoint between "none" (-1)
    and the floor; an onset also makes its key sound for that frame. Sounding frames carry the velocity of the
    onset that started them (64 when a note has none).
    """
    k = x.shape[0] // 2
    on_thresh = (ONSET_FLOOR - 1.0) / 2.0
    onset_vel = np.clip((x[k:].T - ONSET_FLOOR) / (1 - ONSET_FLOOR) * 127.0, 1, 127)
    onset = np.where(x[k:].T > on_thresh, onset_vel, 0).round().astype(np.uint8)
    sounding = (x[:k].T > 0) | (onset > 0)
    active = np.zeros_like(onset)
    current = np.full(k, 64, dtype=np.uint8)
    for t in range(sounding.shape[0]):
        current = np.where(onset[t] > 0, onset[t], current)
        active[t] = np.where(sounding[t], current, 0)
    return active, onset
