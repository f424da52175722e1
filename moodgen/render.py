"""Notes played on soundfonts: MIDI -> soundfont audio (room, mastering and loudness are moodgen.mastering).

`SoundfontRenderer` loads its soundfont once and plays any number of PrettyMIDIs with it; it also lends loaded copies
of the soundfont to synths that keep playing across calls (streams), keeping one idle copy rather than one per use.
"""
from __future__ import annotations

import copy
import hashlib
import os
import threading
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import pretty_midi
import tinysoundfont

from moodgen.dynamics import full_expression, low_cut, mono, piano_dynamics
from moodgen.mastering import measure_loudness
from moodgen.soundfont import checked as checked_soundfont

SOUNDFONT_ENV = "MOODGEN_SOUNDFONT"
# Where Linux distributions install soundfonts; Debian's fluid-soundfont-gm puts FluidR3_GM.sf2 in the first.
SYSTEM_SOUNDFONT_DIRS = (Path("/usr/share/sounds/sf2"), Path("/usr/share/sounds/sf3"), Path("/usr/share/soundfonts"))
SOUNDFONT_DIRS_ENV = "MOODGEN_SOUNDFONT_DIRS"  # searched instead, os.pathsep between; empty: none
PREFERRED_SOUNDFONTS = ("FluidR3_GM.sf2",)  # best first, ahead of any other soundfont found
RELEASE_TAIL_S = 0.5
DRAIN_S = 0.05  # longer than tinysoundfont's 10 ms quick release, so "all sound off" leaves no voice behind
# Loaded soundfont copies kept idle for the next render or stream: eight of FluidR3 GM cut to the offered programs
# (37 MB each; 285 MB whole), many of TimGM6mb (11 MB).
IDLE_SYNTH_BYTES = 320 << 20

# General MIDI program numbers (0-based) of the instruments offered; the note engine learned from piano only.
PIANO_PROGRAM = 0
INSTRUMENTS = MappingProxyType({"piano": PIANO_PROGRAM, "electric-piano": 4, "vibraphone": 11, "harp": 46,
                                "strings": 48, "warm-pad": 89})


def bundled_soundfont() -> Path:
    """The GM soundfont (TimGM6mb.sf2, GPL-2) inside the installed pretty_midi package: always available."""
    path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise FileNotFoundError(f"soundfont not found at {path}; reinstall pretty_midi")
    return path


def find_soundfonts(dirs: tuple[Path, ...] | None = None) -> list[Path]:
    """Soundfonts in `dirs` and the bundled one, best first: preferred names, others by name, bundled last. `dirs`:
    by default $MOODGEN_SOUNDFONT_DIRS's folders when it is set (set but empty: only the bundled soundfont, as on a
    fresh machine), else SYSTEM_SOUNDFONT_DIRS. Links (Debian's default-GM.sf2) are resolved: each file is once."""
    if dirs is None:
        env = os.environ.get(SOUNDFONT_DIRS_ENV)
        dirs = SYSTEM_SOUNDFONT_DIRS if env is None else tuple(Path(d) for d in env.split(os.pathsep) if d)
    found: dict[Path, None] = {}
    for folder in dirs:
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in (".sf2", ".sf3") and path.is_file():
                    found[path.resolve()] = None
    rank = {name: i for i, name in enumerate(PREFERRED_SOUNDFONTS)}
    system = sorted(found, key=lambda p: (rank.get(p.name, len(rank)), p.name))
    bundled = bundled_soundfont().resolve()
    return [p for p in system if p != bundled] + [bundled]


def default_soundfont() -> Path:
    """$MOODGEN_SOUNDFONT when set, else the best soundfont found (`find_soundfonts`)."""
    return Path(os.environ[SOUNDFONT_ENV]) if os.environ.get(SOUNDFONT_ENV) else find_soundfonts()[0]


def program_for(instrument: str) -> int:
    """General MIDI program of a named instrument; ValueError naming the choices."""
    if instrument not in INSTRUMENTS:
        raise ValueError(f"instrument must be one of {', '.join(INSTRUMENTS)}; got {instrument!r}")
    return INSTRUMENTS[instrument]


def with_instrument(pm: pretty_midi.PrettyMIDI, instrument: str) -> pretty_midi.PrettyMIDI:
    """Copy of `pm` whose pitched tracks all play `instrument`'s program (the MIDI file written from it says so)."""
    program = program_for(instrument)
    out = copy.deepcopy(pm)
    for track in out.instruments:
        if not track.is_drum:
            track.program = program
    return out


def loaded_bytes(soundfont: Path) -> int:
    """About what a soundfont takes in memory once loaded: tinysoundfont holds its samples as float32, twice an
    .sf2's 16-bit samples (FluidR3 GM, 148 MB: 285 MB measured) and about ten times an .sf3's compressed ones."""
    return soundfont.stat().st_size * (10 if soundfont.suffix.lower() == ".sf3" else 2)


class LoadedSoundfont(NamedTuple):
    """One tinysoundfont synth with the soundfont loaded, and the font's id in it."""
    synth: tinysoundfont.Synth
    sfid: int


def level_reference(program: int) -> pretty_midi.PrettyMIDI:
    """The 4 s phrase instruments and soundfonts are level-matched on: held two-note chords (velocity 60) under a
    six-notes-a-second melody over two octaves (velocity 80). On the note engine's happy clips its loudness
    predicts every (soundfont, instrument)'s level relative to the bundled piano within 2.6 dB (rms 1.4 dB)."""
    track = pretty_midi.Instrument(program)
    melody = (60, 64, 67, 72, 69, 64, 60, 57, 72, 76, 79, 84, 81, 76, 72, 69)
    for bar, chord in enumerate(((48, 55), (45, 52), (41, 48), (43, 50))):
        track.notes += [pretty_midi.Note(60, pitch, bar, bar + 1) for pitch in chord]
        track.notes += [pretty_midi.Note(80, melody[(bar * 6 + i) % len(melody)], bar + i / 6, bar + (i + 1) / 6)
                        for i in range(6)]
    pm = pretty_midi.PrettyMIDI()
    pm.instruments.append(track)
    return pm


class SoundfontRenderer:
    """One soundfont, loaded once, rendering PrettyMIDIs to mono float32 (S,) at a fixed sample rate.

    `soundfont`: a path, else `default_soundfont()`. `name` and `sha256` identify the file for the JSON sidecar.
    Every program is level-matched to the bundled soundfont's piano (`level_trim_db`; exactly 0 for that piano),
    so one mastering gain suits every soundfont and instrument: General MIDI soundfonts play their instruments up
    to 17 dB apart (TimGM6mb's harp and piano). Renders are deterministic functions of the notes and the program:
    each starts from a silent synth. Thread-safe.
    """

    def __init__(self, sample_rate: int, soundfont: str | Path | None = None, gain_db: float = 0.0,
                 programs: Iterable[int] = INSTRUMENTS.values()):
        if int(sample_rate) != sample_rate or sample_rate <= 0:
            raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
        self.sample_rate = int(sample_rate)
        self.path = Path(soundfont) if soundfont is not None else default_soundfont()
        if not self.path.is_file():
            raise ValueError(f"soundfont: {self.path} is not a file (pass a .sf2/.sf3 path or unset ${SOUNDFONT_ENV})")
        self.name = self.path.name
        self.is_bundled = self.path.resolve() == bundled_soundfont().resolve()
        self.programs = tuple(sorted(set(programs)))
        # Only the programs played: FluidR3 GM loads as 39 MB instead of 285 MB (moodgen.soundfont). The subset
        # moves samples, which changes the audio by about 1e-6, so the bundled soundfont, which rendered the corpus
        # and is 11 MB loaded, stays whole and bit-identical to the corpus' renders; an .sf3 cannot be cut.
        self._font: bytes | str = str(self.path)
        self.nbytes = loaded_bytes(self.path)
        if not self.is_bundled and (cut := checked_soundfont(self.path, self.programs)) is not None:
            self._font = cut
            self.nbytes = 2 * len(cut)  # tinysoundfont holds the 16-bit samples as float32
        self.gain_db = float(gain_db)
        self.copies_loaded = 0
        self._idle_lock = threading.Lock()
        self._lock = threading.Lock()  # whole renders one at a time: each takes milliseconds
        self._idle = [self._load()]  # loaded now, so a bad file fails here
        self._reference_lufs: dict[int, float] = {}
        self._trims_db: dict[int, float] = {}

    @cached_property
    def sha256(self) -> str:
        """The soundfont file's SHA-256, read on first use (FluidR3 is 148 MB: ~0.3 s that an app's start skips)."""
        with self.path.open("rb") as f:  # streamed
            return hashlib.file_digest(f, "sha256").hexdigest()

    def _load(self) -> LoadedSoundfont:
        if isinstance(self._font, str):  # the whole file, which tinysoundfont reads itself: checked before each load
            checked_soundfont(self.path)
        synth = tinysoundfont.Synth(samplerate=self.sample_rate, gain=self.gain_db)
        try:
            sfid = synth.sfload(self._font)
        except Exception as exc:  # the extension raises a bare Exception/RuntimeError on malformed files
            raise ValueError(f"soundfont: {self.path} is not a readable soundfont ({exc})") from exc
        with self._idle_lock:
            self.copies_loaded += 1
        return LoadedSoundfont(synth, sfid)

    def borrow(self) -> LoadedSoundfont:
        """A loaded copy of the soundfont for the caller alone until `give_back`: an idle one, else a new one."""
        with self._idle_lock:
            if self._idle:
                return self._idle.pop()
        return self._load()

    def give_back(self, loaded: LoadedSoundfont) -> None:
        """Keep a borrowed copy for the next borrower while the idle copies stay within IDLE_SYNTH_BYTES (at least
        one is always kept: the renderer loaded one to begin with)."""
        with self._idle_lock:
            if not self._idle or (len(self._idle) + 1) * self.nbytes <= IDLE_SYNTH_BYTES:
                self._idle.append(loaded)

    @property
    def idle_copies(self) -> int:
        with self._idle_lock:
            return len(self._idle)

    def render(self, pm: pretty_midi.PrettyMIDI) -> np.ndarray:
        """Every pitched note of `pm` on its tracks' program (one for all) -> (S,) float32, level-matched, lasting
        to the last note end plus a short release tail. Apply `notes.apply_sustain` first: tinysoundfont ignores
        CC64."""
        programs = sorted({t.program for t in pm.instruments if not t.is_drum and t.notes})
        if len(programs) > 1:
            raise ValueError(f"pm: its tracks use programs {programs}; render one program (`with_instrument`)")
        program = programs[0] if programs else PIANO_PROGRAM
        with self._lock:
            y = self._play(pm, program)
            trim = self._trim_db(program)
        return y if trim == 0.0 else y * np.float32(10.0 ** (trim / 20.0))

    def level_trim_db(self, program: int) -> float:
        """dB added to `program` so `level_reference` sounds as loud as on the bundled piano at this sample rate."""
        with self._lock:
            return self._trim_db(program)

    def reference_lufs(self, program: int) -> float:
        """Loudness of `level_reference` on `program` of this soundfont at 0 dB gain, before level matching."""
        with self._lock:
            return self._unmatched_lufs(program)

    def _unmatched_lufs(self, program: int) -> float:
        if program not in self._reference_lufs:
            y = self._play(level_reference(program), program)
            self._reference_lufs[program] = measure_loudness(y, self.sample_rate).lufs - self.gain_db
        return self._reference_lufs[program]

    def _trim_db(self, program: int) -> float:
        if program not in self._trims_db:
            if self.is_bundled and program == PIANO_PROGRAM:
                trim = 0.0  # the reference itself: no phrase to render and measure for every new renderer
            else:
                target = (self._unmatched_lufs(PIANO_PROGRAM) if self.is_bundled
                          else SoundfontRenderer(self.sample_rate, bundled_soundfont(), programs=[PIANO_PROGRAM])
                          .reference_lufs(PIANO_PROGRAM))
                trim = round(target - self._unmatched_lufs(program), 2)  # a readable constant
            self._trims_db[program] = trim
        return self._trims_db[program]

    def _play(self, pm: pretty_midi.PrettyMIDI, program: int) -> np.ndarray:
        """`pm`'s notes played on a borrowed copy, under the lock."""
        events = []  # (time, order, kind, pitch, velocity): note-offs sort before note-ons at the same instant
        for track in pm.instruments:
            if not track.is_drum:
                for n in track.notes:
                    events.append((n.start, 1, "on", n.pitch, n.velocity))
                    events.append((n.end, 0, "off", n.pitch, 0))
        events.sort()
        end_time = (max(e[0] for e in events) if events else 0.0) + RELEASE_TAIL_S
        total = int(round(end_time * self.sample_rate))
        loaded = self.borrow()
        try:
            return self._play_on(loaded, events, total, program)
        finally:
            self.give_back(loaded)

    def _play_on(self, loaded: LoadedSoundfont, events: list[tuple], total: int, program: int) -> np.ndarray:
        """The synth loop on channel 0, from silence."""
        out = np.zeros(total, dtype=np.float32)
        synth = loaded.synth
        synth.sounds_off()  # a previous render's release tail must not reach this one
        synth.generate(int(DRAIN_S * self.sample_rate))
        full_expression(synth)
        try:
            synth.program_select(0, loaded.sfid, 0, program)
        except RuntimeError as exc:
            raise ValueError(f"program {program} is not in soundfont {self.name} (this renderer loaded programs "
                             f"{', '.join(map(str, self.programs))})") from exc
        dynamics = piano_dynamics(program, self.sample_rate)
        pos = 0
        for t, _, kind, pitch, velocity in events:
            at = min(int(round(t * self.sample_rate)), total)
            if at > pos:
                out[pos:at] = mono(synth.generate(at - pos)) if dynamics is None else dynamics.generate(synth, pos, at)
                pos = at
            if kind == "on":
                synth.noteon(0, pitch, int(velocity))
                if dynamics is not None:
                    dynamics.note_on(synth, at, pitch, int(velocity))
            else:
                synth.noteoff(0, pitch)
                if dynamics is not None:
                    dynamics.note_off(pitch)
        if total > pos:
            out[pos:] = mono(synth.generate(total - pos)) if dynamics is None else dynamics.generate(synth, pos, total)
        cut = low_cut(program, self.sample_rate)
        return out if cut is None else cut(out)
