"""`Settings`: everything a request asks for besides its mood and its length, checked in one place.

The library, the command line and the app all build one (`Settings(seed=3, key="A minor")`) and hand it to
`MoodPipeline.generate / journey / stream`, which check it with `Settings.checked` against the engines loaded and
the `Limits`: every bad value raises one ValueError that starts with the field's name; a checked Settings has every
default filled in, so equal requests compare equal.

A new setting is a field here, its check in `checked`, a flag in moodgen.__main__ and a widget in the app; the
pipeline hands the checked Settings to the engine, and a sidecar records and replays it (`record`, `from_record`).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from moodgen.config import Limits, shown
from moodgen.keys import PITCH_NAMES, key_name, parse_key
from moodgen.parts import check_layering
from moodgen.tempo import check_bpm

if TYPE_CHECKING:
    from moodgen.engines import Engine


@dataclass(frozen=True)
class Settings:
    """How to make the music; None (or "" from a form) means the engine's default."""

    engine: str | None = None  # a loaded engine's name; None: the checkpoint's best
    seed: int = 0
    steps: int | None = None  # sampler steps (engines that sample in steps; checked even where ignored)
    guidance: float | None = None  # classifier-free guidance
    key: str | None = None  # "A minor"; None: drawn for the mood
    instrument: str | None = None  # what plays the notes (engines that play notes; checked even where ignored)
    soundfont: str | None = None  # a file name from `MoodPipeline.soundfonts` (likewise)
    dry: bool = False  # no room, no mastering gain or limiter
    loop: bool = False  # the end flows into the start
    bpm: float | str | None = None  # a tempo in 4/4 (engines that play tempo); "mood": drawn for it; None: free
    stems: bool = False  # the notes split into melody, harmony and bass, a WAV each (engines that play notes)
    intensity: float | str | None = None  # 0-1 or "arousal": parts come in as it rises; None: every part
    part_instruments: Any = None  # {part: instrument} or "bass=strings,..."; None: `instrument` plays every part

    def checked(self, engines: Mapping[str, Engine], limits: Limits) -> Settings:
        """These settings checked against `engines` (loaded, in menu order: the first is the default) and
        `limits`, defaults filled in; ValueError naming the field otherwise. Engines ignore what they cannot use
        (steps, instrument, soundfont): those become None."""
        if self.engine not in (None, "") and (not isinstance(self.engine, str) or self.engine not in engines):
            raise ValueError(f"engine must be one of {', '.join(engines)} (in this checkpoint), got "
                             f"{shown(self.engine)}")
        eng = engines[self.engine or next(iter(engines))]
        steps = None if self.steps is None else limits.steps(self.steps)
        instruments = tuple(dict.fromkeys(i for e in engines.values() for i in e.instruments))
        soundfonts = tuple(dict.fromkeys(s for e in engines.values() for s in e.soundfonts))
        if self.instrument not in (None, "", *(eng.instruments or instruments)):
            raise ValueError(f"instrument must be one of {', '.join(eng.instruments or instruments)}, got "
                             f"{shown(self.instrument)}")
        if self.soundfont not in (None, "", *soundfonts):
            raise ValueError(f"soundfont must be one of {', '.join(soundfonts)}, got {shown(self.soundfont)}")
        for name in ("dry", "loop", "stems"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {shown(getattr(self, name))}")
        instrument = (self.instrument or eng.instruments[0]) if eng.instruments else None
        return Settings(
            engine=eng.name,
            seed=limits.seed(self.seed),
            steps=(eng.default_steps if steps is None else steps) if eng.uses_steps else None,
            guidance=limits.guidance(eng.default_guidance if self.guidance is None else self.guidance),
            key=self._key(eng),
            instrument=instrument,
            soundfont=(self.soundfont or eng.soundfont) if eng.soundfonts else None,
            dry=self.dry,
            loop=self.loop,
            bpm=check_bpm(self.bpm, eng, limits),
            **check_layering(eng, self.stems, self.intensity, self.part_instruments, instrument),
        )

    def _key(self, eng: Engine) -> str | None:
        if self.key in (None, ""):
            return None
        try:
            key = key_name(parse_key(self.key))
        except ValueError:
            raise ValueError(f"key must be written like 'C major' or 'F# minor' (tonics: {', '.join(PITCH_NAMES)}), "
                             f"got {shown(self.key)}") from None
        if eng.key_prior is None:
            raise ValueError(f"key must be unset: engine {eng.name!r} of this checkpoint is not conditioned on a key, "
                             f"got {shown(self.key)}")
        return key

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with some fields changed; TypeError naming an unknown one."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def record(self) -> dict[str, Any]:
        """JSON-able, for a sidecar."""
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Settings:
        """The fields a record names (a sidecar's "settings"); the others keep their defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})
