"""The checked settings of one request to the pipeline (`Request`), and the beat grid it asks for."""
from __future__ import annotations

from dataclasses import dataclass

from moodgen.config import Limits, shown
from moodgen.engines import Continuation, Engine, Session
from moodgen.keys import key_name, parse_key
from moodgen.layers import Layering, check_layering
from moodgen.render import DRY, Mastering
from moodgen.tempo import FRAMES_PER_BAR, Tempo, tempo_for_mood

TEMPO_FROM_MOOD = "mood"  # bpm="mood": a tempo drawn for the mood, as the key is


def beat_grid(bpm: float | str | None, arousal: float, seed: int, limits: Limits, needed: bool) -> Tempo | None:
    """The beat grid asked for: `bpm` checked, drawn for the mood (bpm="mood", or None where bars need a tempo),
    else None."""
    if bpm is None and not needed:
        return None
    if bpm is None or bpm == TEMPO_FROM_MOOD:
        return Tempo(tempo_for_mood(arousal, seed))
    return Tempo(limits.bpm(bpm))


def check_request(eng: Engine, limits: Limits, soundfonts: tuple[str, ...], seed: int, steps: int | None,
                  guidance: float | None, key: str | None, instrument: str | None, dry: bool, soundfont: str | None,
                  tempo: Tempo | None, layering: tuple) -> Request:
    """A request's settings checked against engine `eng`, the limits and the pipeline's soundfonts, defaults filled
    in; `layering`: (stems, intensity, part_instruments) as asked. ValueError naming the field."""
    if tempo is not None:
        eng.frame_rate_at(tempo)  # an engine without a beat refuses a tempo
    seed = limits.seed(seed)
    steps = None if steps is None else limits.steps(steps)  # checked even where the engine ignores it
    steps = (eng.default_steps if steps is None else steps) if eng.uses_steps else None
    guidance = limits.guidance(eng.default_guidance if guidance is None else guidance)
    if key is not None:
        if eng.key_prior is None:
            raise ValueError(f"key: engine {eng.name!r} of this checkpoint is not conditioned on a key; "
                             "leave key unset")
        key = key_name(parse_key(key))
    if instrument is not None and instrument not in eng.instruments:
        choices = f"one of {', '.join(eng.instruments)}" if eng.instruments else f"unset for engine {eng.name!r}"
        raise ValueError(f"instrument must be {choices}, got {shown(instrument)}")
    instrument = instrument or (eng.instruments[0] if eng.instruments else None)
    if soundfont is not None and soundfont not in soundfonts:  # checked even where the engine ignores it
        raise ValueError(f"soundfont must be one of {', '.join(soundfonts)}, got {shown(soundfont)}")
    soundfont = (soundfont or eng.soundfont) if eng.soundfonts else None
    layers = check_layering(eng, *layering, instrument)
    return Request(eng, seed, steps, guidance, key, instrument, soundfont, DRY if dry else eng.mastering, tempo,
                   layers)


@dataclass(frozen=True)
class Request:
    """The checked settings of a request, defaults filled in."""

    engine: Engine
    seed: int
    steps: int | None
    guidance: float
    key: str | None  # as asked; None: drawn for the mood
    instrument: str | None
    soundfont: str | None  # None for engines without notes
    mastering: Mastering
    tempo: Tempo | None = None  # the beat grid its notes play on; None: the engine's own frame grid
    layering: Layering | None = None  # its parts as layers and stems; None: the music as one

    @property
    def frame_rate(self) -> float:
        """Engine frames per second of audio."""
        return self.engine.frame_rate_at(self.tempo)

    @property
    def phrase_frames(self) -> int | None:
        """Where keys may change: on bar lines at a tempo, else the journey default."""
        return None if self.tempo is None else FRAMES_PER_BAR

    def session(self, seed: int, before: Continuation | None = None) -> Session:
        at_tempo = {} if self.tempo is None else {"tempo": self.tempo}  # only engines that play tempo get one
        return self.engine.session(seed, self.steps, self.guidance, before, self.instrument, self.soundfont,
                                   **at_tempo)


def loop_frames(r: Request, seconds: float) -> int:
    """A loop's length in frames: its loop point falls on a frame boundary, so its audio lasts `seconds` rounded to
    the engine's frame grid (at a tempo, `seconds` is whole bars)."""
    return int(round(seconds * r.frame_rate))


def clip_seconds(r: Request, seconds: float, loop: bool, loop_bars: int | None,
                 limits: Limits) -> tuple[float, bool]:
    """A clip's length and whether it loops: `loop_bars` bars at the request's tempo (a loop; `seconds` is not
    used), else `seconds`, whole bars for a loop at a tempo."""
    if loop_bars is not None:
        return limits.seconds(r.tempo.bars_seconds(limits.bars(loop_bars)), "loop_bars (in seconds)"), True
    seconds = limits.seconds(seconds)
    if loop and r.tempo is not None:
        seconds = r.tempo.bars_seconds(max(1, round(seconds / r.tempo.bar_seconds)))
    return seconds, loop
