"""A soundfont synth that keeps playing across calls, fed the note events of a piano roll frame by frame.

The notes a roll's frames start and stop are exactly those of `midi.midi_from_roll`, at the sample times and in the
order `render.SoundfontRenderer` plays a whole MIDI file; calls over consecutive frames continue one another without
a seam, since the synth and its ringing voices persist.
Shapes: rolls (T, K) uint8 velocities; an event (sample, order, pitch, velocity), order 0 = note off, 1 = note on.
"""
from __future__ import annotations

import numpy as np

from moodgen.config import RollParams
from moodgen.dynamics import LowCut, PianoDynamics, full_expression, low_cut, mono, piano_dynamics
from moodgen.render import DRAIN_S, PIANO_PROGRAM, LoadedSoundfont
from moodgen.tempo import Tempo

Event = tuple[int, int, int, int]


def frame_sample(frame: int, params: RollParams, sample_rate: int, tempo: Tempo | None = None) -> int:
    """The sample at which a roll frame begins (as `render_midi` places a note starting there); with a `tempo`,
    frames are its 32nd notes."""
    if tempo is not None:
        return tempo.frame_sample(frame, sample_rate)
    return int(round(float(frame) / params.fps * sample_rate))


def roll_events(active: np.ndarray, onset: np.ndarray, before: np.ndarray, first_frame: int, params: RollParams,
                sample_rate: int, tempo: Tempo | None = None) -> list[Event]:
    """Note offs and ons of frames first_frame.. of the (T, K) rolls, given the (K,) active velocities of the frame
    before them. A note starts at an onset or where a key turns on; it stops where its key turns off or restarts.
    With a `tempo`, notes are struck on its 16th-note grid as `midi.midi_from_roll` places them (sorted by time)."""
    events: list[Event] = []
    previous = np.asarray(before) > 0
    for t in range(active.shape[0]):
        on = active[t] > 0
        starts = on & ((onset[t] > 0) | ~previous)
        at = frame_sample(first_frame + t, params, sample_rate, tempo)
        struck = at if tempo is None else tempo.sample(tempo.onset_time(first_frame + t), sample_rate)
        events += [(struck if starts[k] else at, 0, int(k) + params.lowest_pitch, 0)
                   for k in np.flatnonzero(previous & (~on | starts))]
        events += [(struck, 1, int(k) + params.lowest_pitch, int(onset[t, k] or active[t, k]))
                   for k in np.flatnonzero(starts)]
        previous = on
    return events if tempo is None else sorted(events)


class ContinuingSynth:
    """A loaded soundfont (`render.SoundfontRenderer.borrow`) playing one program: `start` readies it for a new
    piece, then `play` plays events and renders audio up to a given sample, call after call. `trim_db` is the
    program's level match (`render.SoundfontRenderer.level_trim_db`)."""

    def __init__(self, loaded: LoadedSoundfont, sample_rate: int):
        self.loaded = loaded
        self.sample_rate = sample_rate
        self.synth, self.sfid = loaded
        self.scale = np.float32(1.0)
        self.position = 0  # samples rendered so far
        self.dynamics: PianoDynamics | None = None
        self.low_cut: LowCut | None = None

    def start(self, program: int = PIANO_PROGRAM, trim_db: float = 0.0) -> ContinuingSynth:
        """Silence whatever played before (as `render.SoundfontRenderer` does between renders) and select `program`."""
        self.synth.sounds_off()
        self.synth.generate(int(DRAIN_S * self.sample_rate))
        full_expression(self.synth)
        self.synth.program_select(0, self.sfid, 0, program)
        self.dynamics = piano_dynamics(program, self.sample_rate)
        self.low_cut = low_cut(program, self.sample_rate)
        self.scale = np.float32(10.0 ** (trim_db / 20.0))
        self.position = 0
        return self

    def play(self, events: list[Event], until: int) -> np.ndarray:
        """Play `events` (sorted; one before `position` plays at once) and render to sample `until` -> (S,)."""
        start = self.position
        out = np.zeros(max(0, until - start), dtype=np.float32)
        for at, order, pitch, velocity in events:
            at = min(at, until)
            if at > self.position:
                out[self.position - start:at - start] = self._generate(at)
                self.position = at
            if order:
                self.synth.noteon(0, pitch, velocity)
                if self.dynamics is not None:
                    self.dynamics.note_on(self.synth, at, pitch, velocity)
            else:
                self.synth.noteoff(0, pitch)
                if self.dynamics is not None:
                    self.dynamics.note_off(pitch)
        if until > self.position:
            out[self.position - start:] = self._generate(until)
            self.position = until
        out = out if self.low_cut is None else self.low_cut(out)
        return out if self.scale == 1 else out * self.scale

    def _generate(self, until: int) -> np.ndarray:
        """Samples position..until."""
        if self.dynamics is not None:
            return self.dynamics.generate(self.synth, self.position, until)
        return mono(self.synth.generate(until - self.position))
