"""How sustained General MIDI programs keep the dynamics of the piano the note engine learned from.

A piano note fades; a string section or a pad holds it. Played as written, a sad clip's few long, pedalled notes then
sound as loud as a happy clip's many short ones, and the loudness that carries arousal is lost. `PianoDynamics`
drives the channel's expression so that sustained programs fade as a piano would; `LowCut` removes the sub-bass
some pad samples carry, which only costs the limiter headroom. Both are used by `render.SoundfontRenderer` and
`note_synth.ContinuingSynth` alike, so a whole render and a render in chunks sound the same.
"""
from __future__ import annotations

import math
from types import MappingProxyType

import numpy as np
import tinysoundfont
from scipy.signal import butter, sosfilt, sosfilt_zi


def full_expression(synth: tinysoundfont.Synth) -> None:
    """Channel 0's expression back at its default, full level (what every program but the sustained ones keeps)."""
    synth.control_change(0, 11, 127)
    synth.control_change(0, 43, 127)


def mono(buffer: memoryview) -> np.ndarray:
    """tinysoundfont's interleaved stereo float32 -> (S,) mono."""
    return np.frombuffer(buffer, dtype=np.float32).reshape(-1, 2).mean(axis=1)


# Programs whose notes hold their level (the others decay as a piano does). Played as written, sad clips came
# within 3.4-3.6 LU of happy ones on strings and -1.2 to +1.0 LU on the warm pad (target: 5 LU or more).
STRINGS, WARM_PAD = 48, 89  # General MIDI programs (0-based)
SUSTAINED_PROGRAMS = frozenset({STRINGS, WARM_PAD})
PIANO_DECAY_DB_PER_S = 9.5  # both soundfonts' pianos, a held C3-C5 falls 17-23 dB in its first 2 s
EXPRESSION_STEP_S = 0.02
EXPRESSION_FLOOR_DB = -60.0


class PianoDynamics:
    """The channel expression (CC11, 14-bit) that gives a sustained program the piano's dynamics: every sounding
    note fades from its velocity at the piano's rate, and the channel plays at the ratio of that energy to the
    energy of the notes held at full level. Times in samples; deterministic in the events."""

    def __init__(self, sample_rate: int):
        self.sample_rate = sample_rate
        self.sounding: dict[int, tuple[int, int]] = {}  # pitch -> (start sample, velocity)
        self.sent: int | None = None

    def note_on(self, synth: tinysoundfont.Synth, at: int, pitch: int, velocity: int) -> None:
        self.sounding[pitch] = (at, velocity)
        self._express(synth, at)

    def note_off(self, pitch: int) -> None:
        self.sounding.pop(pitch, None)  # the level holds until the next note: no jump in a release tail

    def generate(self, synth: tinysoundfont.Synth, start: int, end: int) -> np.ndarray:
        """Samples start..end -> (end - start,), the expression updated on a fixed grid of EXPRESSION_STEP_S (so
        the audio does not depend on how the span is split into calls)."""
        step = max(1, int(EXPRESSION_STEP_S * self.sample_rate))
        cuts = [start, *range(-(-start // step) * step, end, step), end]
        parts = []
        for a, b in zip(cuts, cuts[1:]):
            if a % step == 0:
                self._express(synth, a)
            if b > a:
                parts.append(mono(synth.generate(b - a)))
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def _express(self, synth: tinysoundfont.Synth, at: int) -> None:
        if not self.sounding:
            return
        held = sum(v * v for _, v in self.sounding.values())
        faded = sum(v * v * 10.0 ** (-PIANO_DECAY_DB_PER_S * (at - t) / self.sample_rate / 10.0)
                    for t, v in self.sounding.values())
        db = max(EXPRESSION_FLOOR_DB, 10.0 * math.log10(faded / held))
        value = int(round(16383 * 10.0 ** (db / 60.0)))  # tinysoundfont's expression law: (value / 16383) ** 3
        if value != self.sent:
            synth.control_change(0, 11, value >> 7)  # MSB, then LSB
            synth.control_change(0, 43, value & 127)
            self.sent = value


class LowCut:
    """A 2nd-order high-pass that keeps its state from call to call (so split audio filters as a whole). For
    programs whose samples carry sub-bass: FluidR3's Warm Pad puts 4.4 dB of its peak below 120 Hz for 0.4 LU of
    its loudness, and the limiter then pressed happy clips down until they were no louder than sad ones."""

    def __init__(self, sample_rate: int, hz: float):
        self.sos = butter(2, hz, "highpass", fs=sample_rate, output="sos")
        self.state = sosfilt_zi(self.sos) * 0.0

    def __call__(self, y: np.ndarray) -> np.ndarray:
        out, self.state = sosfilt(self.sos, y, zi=self.state)
        return out.astype(np.float32)


LOW_CUT_HZ = MappingProxyType({WARM_PAD: 80.0})


def low_cut(program: int, sample_rate: int) -> LowCut | None:
    return LowCut(sample_rate, LOW_CUT_HZ[program]) if program in LOW_CUT_HZ else None


def piano_dynamics(program: int, sample_rate: int) -> PianoDynamics | None:
    """The expression a program needs to keep the piano's dynamics: None for programs that decay by themselves."""
    return PianoDynamics(sample_rate) if program in SUSTAINED_PROGRAMS else None
