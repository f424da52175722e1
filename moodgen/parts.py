"""The note engine's music split into parts (melody, harmony, bass) and the intensity that layers them.

The split is a skyline per onset (Uitdenbogerd and Zobel's skyline, the usual melody-extraction baseline for
polyphonic piano), applied to each group of notes struck together: the group's highest note is the melody when it is
at least as high as everything still sounding (and not under BASS_BELOW); its lowest note is the bass when it is at
least as low as everything still sounding and under BASS_BELOW; every other note is harmony. It needs no model, looks
only at what has already been played (so it could run live), keeps a chord's inner voices together, and gives every
note to exactly one part, so the parts add up to the whole.

Intensity (vertical layering): at intensity 0 only the harmony plays; the bass comes in over LAYERS["bass"] and the
melody over LAYERS["melody"] (linear fades in intensity), as a game's music adds layers when the action rises.
"""
from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

import numpy as np
import pretty_midi

from moodgen.config import shown

PARTS = ("melody", "harmony", "bass")
BASS_BELOW = 60  # middle C: a bass note lies under it
INTENSITY_FROM_AROUSAL = "arousal"  # intensity="arousal": (arousal + 1) / 2 along the mood curve
LAYERS = MappingProxyType({"harmony": (0.0, 0.0), "bass": (0.25, 0.45), "melody": (0.5, 0.7)})  # fade in over


def split_parts(notes: Iterable[pretty_midi.Note]) -> dict[str, list[pretty_midi.Note]]:
    """Notes -> {part: its notes} (see the module docstring); every note lands in exactly one part."""
    out: dict[str, list[pretty_midi.Note]] = {p: [] for p in PARTS}
    ordered = sorted(notes, key=lambda n: (n.start, n.pitch))
    earlier: list[pretty_midi.Note] = []
    i = 0
    while i < len(ordered):
        start = ordered[i].start
        group = [n for n in ordered[i:] if n.start == start]
        i += len(group)
        earlier = [n for n in earlier if n.end > start]
        high = max((n.pitch for n in earlier), default=-1)
        low = min((n.pitch for n in earlier), default=128)
        top, bottom = group[-1], group[0]
        for note in group:
            if note is top and note.pitch >= max(high, BASS_BELOW):
                out["melody"].append(note)
            elif note is bottom and note.pitch <= low and note.pitch < BASS_BELOW:
                out["bass"].append(note)
            else:
                out["harmony"].append(note)
        earlier += group
    return out


def layer_gains(intensity: np.ndarray) -> dict[str, np.ndarray]:
    """Intensity (T,) in [0, 1] -> {part: gain (T,) in [0, 1]}."""
    x = np.asarray(intensity, np.float64)
    gains = {}
    for part, (enter, full) in LAYERS.items():
        gains[part] = np.ones_like(x) if full <= enter else np.clip((x - enter) / (full - enter), 0.0, 1.0)
    return gains


def parts_midi(parts: dict[str, list[pretty_midi.Note]], programs: dict[str, int],
               template: pretty_midi.PrettyMIDI) -> pretty_midi.PrettyMIDI:
    """A MIDI with one named track per part on its program, carrying `template`'s tempo, meter and events."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=template.get_tempo_changes()[1][0])
    pm.time_signature_changes = list(template.time_signature_changes)
    for part in PARTS:
        track = pretty_midi.Instrument(program=programs[part], name=part)
        track.notes = sorted(parts[part], key=lambda n: (n.start, n.pitch))
        pm.instruments.append(track)
    return pm


def check_layering(eng: Any, stems: Any, intensity: Any, part_instruments: Any, instrument: str | None) -> dict:
    """A Settings' stems, intensity and part_instruments checked against engine `eng` (its `makes_midi` and
    `instruments`): {"stems", "intensity", "part_instruments": ((part, instrument) for each of PARTS) or None};
    ValueError starting with the field's name otherwise."""
    if not stems and intensity in (None, "") and not part_instruments:
        return {"stems": False, "intensity": None, "part_instruments": None}
    if not eng.makes_midi:
        field = "stems" if stems else "intensity" if intensity not in (None, "") else "part_instruments"
        raise ValueError(f"{field} must be unset: engine {eng.name!r} plays no notes to split into parts")
    try:
        pairs = [p.split("=") for p in part_instruments.split(",")] if isinstance(part_instruments, str) else \
            list(dict(part_instruments or {}).items())
        chosen = {str(part).strip(): str(inst).strip() for part, inst in pairs}
    except (TypeError, ValueError):
        chosen = {"?": shown(part_instruments)}
    for part, inst in chosen.items():
        if part not in PARTS or inst not in eng.instruments:
            raise ValueError(f"part_instruments must map parts ({', '.join(PARTS)}) to instruments "
                             f"({', '.join(eng.instruments)}), e.g. bass=strings, got {shown(part)}: {shown(inst)}")
    if intensity not in (None, "", INTENSITY_FROM_AROUSAL):
        try:
            intensity = float(intensity)
        except (TypeError, ValueError):
            intensity = float("nan")
        if not 0.0 <= intensity <= 1.0:
            raise ValueError(f"intensity must be a number in [0, 1] or {INTENSITY_FROM_AROUSAL!r}")
    return {"stems": stems, "intensity": None if intensity == "" else intensity,
            "part_instruments": tuple((p, chosen.get(p, instrument)) for p in PARTS)}
