"""Inference: `MoodPipeline.from_checkpoint(...)`, then `generate(valence, arousal, seconds, settings)`,
`journey(waypoints, settings)`, `extend(generation, seconds, ...)` or `stream(mood_at, chunk_seconds, settings)`.

The pipeline holds the engines found in a checkpoints folder (moodgen.engines), the mood judge and the atlas of real
clips. It checks every input against one `Limits` (the settings with `Settings.checked`), draws the musical key for
the mood, asks the engine for the clip, masters it, judges what is heard, and caches clips in an LRU bounded in
bytes, so a repeated request answers at once. Music whose mood moves runs through an engine `Session` with a mood
curve and a key per frame (moodgen.journey). Clips, journeys, extensions and stream chunks are computed on the
pipeline's own worker thread (`workers`: one unless asked), whichever threads call it, so memory does not grow with
the number of server threads and torch keeps one team of math threads; identical clip requests made at the same time
share one computation.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moodgen import audio
from moodgen.atlas import ATLAS_FILE, Atlas, AtlasMatch
from moodgen.config import Limits, MelParams, shown
from moodgen.engines import Continuation, Engine, Session, engine_classes
from moodgen.generation import Generation
from moodgen.joins import close_loop, fit
from moodgen.journey import (
    KeyState,
    Waypoint,
    derived_seed,
    first_arousal,
    follow_keys,
    key_changes,
    mood_curve,
    on_bar_lines,
    validate_waypoints,
)
from moodgen.judge import JUDGE_FILE, Judge
from moodgen.keys import key_name, parse_key, sample_keys
from moodgen.layers import layered, mix_layers, parts_record
from moodgen.mastering import DRY, Mastering, at_corpus_level, master, master_after, master_loop
from moodgen.memory import TrimmingWorkers
from moodgen.mood import validate_mood
from moodgen.settings import Settings
from moodgen.shared import SharedWork
from moodgen.stream import MoodStream
from moodgen.tempo import FRAMES_PER_BAR, FRAMES_PER_SIXTEENTH, TEMPO_FROM_MOOD, Tempo, clip_seconds, tempo_for
from moodgen.threads import free_cores, math_threads

__all__ = ["CheckpointNotFound", "Generation", "MoodPipeline", "Settings", "resolve_checkpoint_dir"]
EXTEND_TRANSITION_SECONDS = 4.0  # an extension eases from the clip's last mood to the one asked for over this long
NEAREST_BY = ("mood", "sound")


class CheckpointNotFound(FileNotFoundError):
    pass


def loop_frames(eng: Engine, seconds: float, tempo: Tempo | None = None) -> int:
    """A loop's length in frames: its loop point falls on a frame boundary, so its audio lasts `seconds` rounded to
    the engine's frame grid (at a tempo, whole bars are whole frames)."""
    return int(round(seconds * eng.frame_rate_at(tempo)))


def session_frames(eng: Engine, seconds: float, tempo: Tempo | None, loop: bool) -> int:
    """Frames a session samples for `seconds` (a loop's body, or enough to cover every sample)."""
    return loop_frames(eng, seconds, tempo) if loop or tempo else eng.frames_for(seconds)


def resolve_checkpoint_dir(path: str | Path | None = None) -> Path:
    """A local checkpoints folder, else a snapshot of the Hugging Face Hub repo named by MOODGEN_HF_REPO."""
    files = [e.weights_file for e in engine_classes()]
    folder = Path(path) if path is not None else Path("checkpoints")
    if folder.is_dir() and any((folder / f).is_file() for f in files):
        return folder
    repo = os.environ.get("MOODGEN_HF_REPO")
    if path is None and repo:
        from huggingface_hub import snapshot_download
        return Path(snapshot_download(repo_id=repo))
    raise CheckpointNotFound(
        f"no moodgen checkpoint in {folder.resolve()} (expected {' or '.join(files)}). "
        "Train one with `python -m train`, or set MOODGEN_HF_REPO=<user>/<repo> to download one.")


class MoodPipeline:
    def __init__(self, engines: dict[str, Engine], device: torch.device | str = "cpu", judge: Judge | None = None,
                 atlas: Atlas | None = None, limits: Limits | None = None, cache_bytes: int = 64 << 20,
                 workers: int = 1):
        if not engines:
            raise ValueError("a pipeline needs at least one engine")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        params = {e.mel_params for e in engines.values()}
        if len(params) > 1:
            raise ValueError("the engines' MelParams differ")
        self.engines_by_name = engines
        self.mel_params: MelParams = params.pop()
        self.device = torch.device(device)
        self.judge = judge
        self.atlas = atlas
        self.limits = limits or Limits()
        # clips by request, in an LRU bounded in bytes; identical requests at once share one computation
        self._clips: SharedWork[Generation] = SharedWork(cache_bytes, lambda _, g: g.nbytes)
        # All model and signal work runs on these threads, whichever thread asks. A server calls from a pool of many
        # threads, and every thread that runs torch or numpy keeps its own malloc arena and OpenMP team: memory
        # grew with the number of threads that had ever generated, not with the work (benchmarks/speed/soak.py). After
        # each task they give freed memory back (moodgen.memory). One worker by default, so torch keeps one team of
        # OpenMP threads (a second one made every op wait for its team to wake: mel 10 s clip 0.29 -> 0.45-0.6 s on 2
        # cores); each task's team has only the cores other programs leave free (moodgen.threads).
        self._workers = TrimmingWorkers(workers, "moodgen", around=lambda: math_threads(free_cores()))

    @property
    def engines(self) -> tuple[str, ...]:
        """The loaded engines' names, in menu order."""
        return tuple(c.name for c in engine_classes() if c.name in self.engines_by_name)

    @property
    def default_engine(self) -> str:
        return self.engines[0]

    @property
    def soundfonts(self) -> tuple[str, ...]:
        """The soundfonts (file names) some loaded engine plays notes with, each engine's default first."""
        return tuple(dict.fromkeys(s for e in self.engines for s in self.engines_by_name[e].soundfonts))

    def engine(self, name: str | None) -> Engine:
        """The loaded engine `name` (None: the default); ValueError naming the choices otherwise."""
        if name is None:
            return self.engines_by_name[self.default_engine]
        if not isinstance(name, str) or name not in self.engines_by_name:
            raise ValueError(f"engine must be one of {', '.join(self.engines)} (in this checkpoint), "
                             f"got {shown(name)}")
        return self.engines_by_name[name]

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, device: str | None = None, cache_bytes: int = 64 << 20,
                        soundfont: str | Path | None = None, workers: int = 1) -> MoodPipeline:
        """The engines, judge and atlas in a checkpoints folder; `soundfont` plays the notes (default:
        $MOODGEN_SOUNDFONT, else the best General MIDI soundfont installed, else the one pretty_midi ships)."""
        folder = resolve_checkpoint_dir(path)
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        engines = {c.name: c.load(folder, dev, soundfont) for c in engine_classes()
                   if (folder / c.weights_file).is_file()}
        judge = Judge.from_file(folder / JUDGE_FILE, device=dev) if (folder / JUDGE_FILE).is_file() else None
        atlas = Atlas.load(folder / ATLAS_FILE) if (folder / ATLAS_FILE).is_file() else None
        return cls(engines, dev, judge=judge, atlas=atlas, cache_bytes=cache_bytes, workers=workers)

    def settings(self, settings: Settings | None = None, **changes: Any) -> Settings:
        """`settings` (None: every default) with `changes` made, checked against the loaded engines and the limits,
        defaults filled in: the one way a request's settings enter the pipeline. ValueError naming the field."""
        engines = {name: self.engines_by_name[name] for name in self.engines}  # menu order: the default first
        return (settings or Settings()).with_changes(**changes).checked(engines, self.limits)

    def generate(self, valence: float, arousal: float, seconds: float = 10.0, settings: Settings | None = None, *,
                 loop_bars: int | None = None, **changes: Any) -> Generation:
        """A clip of `seconds` for the mood (valence, arousal); identical inputs give identical outputs.

        `settings` (moodgen.settings.Settings; keywords such as seed=3 change single fields of it) pick the engine,
        seed, sampler, key (None: the engine's prior draws one for the mood, seeded), instrument and soundfont of
        engines that play notes, `dry` (no mastering: gain, room, limiter) and `loop` (the end flows into the
        start, for music that repeats), `bpm` (engines that play tempo: notes on that beat in 4/4; "mood" draws one
        for the mood), `stems`, `intensity` and `part_instruments` (engines that play notes: moodgen.layers).
        `loop_bars`: a loop of exactly that many bars instead of `seconds` (at `bpm`, else drawn for the mood). Every
        bad input raises ValueError naming the field."""
        valence, arousal = validate_mood(valence, arousal)
        if loop_bars is not None:  # recorded as a loop of whole bars at a tempo, which its sidecar replays
            changes |= {"loop": True, "bpm": changes.get("bpm", settings.bpm if settings else None) or TEMPO_FROM_MOOD}
        s = self.settings(settings, **changes)
        tempo = tempo_for(s.bpm, arousal, s.seed)
        seconds = clip_seconds(seconds, s.loop, loop_bars, tempo, self.limits)

        def compute() -> Generation:
            if s.loop or tempo is not None or s.part_instruments is not None:  # made by a session
                curve = np.tile([valence, arousal], (session_frames(self._engine(s), seconds, tempo, s.loop), 1))
                return self._moving(s, seconds, curve, tempo)
            return self._generate(s, valence, arousal, seconds)

        return self._clips.get((valence, arousal, seconds, s), lambda: self._workers.run(compute))

    def _engine(self, s: Settings) -> Engine:
        return self.engines_by_name[s.engine]

    def _mastering(self, s: Settings) -> Mastering:
        return DRY if s.dry else self._engine(s).mastering

    @staticmethod
    def _key_index(eng: Engine, key: str | None, mood: torch.Tensor, seed: int) -> torch.Tensor | None:
        """(1,) the key asked for, else drawn from the engine's prior for mood (1, 2); None without keys."""
        if eng.key_prior is None:
            return None
        return torch.tensor([parse_key(key)]) if key is not None else sample_keys(eng.key_prior, mood, seed)

    def _generate(self, s: Settings, valence: float, arousal: float, seconds: float) -> Generation:
        eng, mastering = self._engine(s), self._mastering(s)
        mood = torch.tensor([[valence, arousal]], dtype=torch.float32)
        key_index = self._key_index(eng, s.key, mood, s.seed)
        out = eng.generate(mood, seconds, s.seed, s.steps, s.guidance, key_index, s.instrument, s.soundfont)
        wav = np.clip(master(out.audio, self.mel_params.sample_rate, mastering), -1.0, 1.0).astype(np.float32)
        # Judge and display at the corpus' level: the judge reads level as arousal, and the real clip beside this
        # one is a dry render on the same absolute dB scale.
        heard = audio.mel_from_audio(at_corpus_level(wav, mastering), self.mel_params).numpy()
        continuation = None
        if out.frames is not None:
            frames = out.frames.shape[1]
            continuation = Continuation(out.frames, np.tile([valence, arousal], (frames, 1)),
                                        None if key_index is None else np.full(frames, int(key_index[0])), out.audio)
        return Generation(
            valence=valence, arousal=arousal, seconds=seconds, settings=s,
            key=None if key_index is None else key_name(int(key_index[0])),
            mel=heard if out.mel is None else out.mel, audio=wav, sample_rate=self.mel_params.sample_rate,
            midi=out.midi, judged=self._judge(eng, heard, len(wav), mastering, out.midi, out.render),
            checkpoint_sha256=eng.sha256, render=out.render, mastering=mastering, continuation=continuation)

    def _judge(self, eng: Engine, heard: np.ndarray, n_samples: int, mastering: Mastering, midi: bytes | None,
               record: dict[str, Any]) -> tuple[float, float] | None:
        """The judge's (valence, arousal) for a clip whose (M, T) mel at the corpus' level is `heard`; notes
        played on another sound than the corpus' are judged as the corpus plays them, mastered alike."""
        if self.judge is None:
            return None
        corpus = eng.as_the_corpus_plays(midi, n_samples, record)
        if corpus is not None:
            heard = audio.mel_from_audio(at_corpus_level(master(corpus, self.mel_params.sample_rate, mastering),
                                                         mastering), self.mel_params).numpy()
        return self.judge.predict(heard)

    def journey(self, waypoints: Iterable[Waypoint], settings: Settings | None = None, *, in_bars: bool = False,
                **changes: Any) -> Generation:
        """Music whose mood follows waypoints (seconds, valence, arousal): at least two, times increasing, the
        length the last one's time (10 s to 10 min). The mood eases from one waypoint to the next; the key starts
        as asked or drawn for the first mood and modulates when valence crosses zero. The result holds the mood
        curve used (`curve`, per engine frame) and the key changes. `settings` as for `generate`. At a tempo waypoints
        move to the nearest bar line, keys change on bar lines; `in_bars`: times in bars (a tempo drawn if unset)."""
        if in_bars:
            changes |= {"bpm": changes.get("bpm", settings.bpm if settings else None) or TEMPO_FROM_MOOD}
        s = self.settings(settings, **changes)
        points = None if in_bars else validate_waypoints(waypoints, self.limits)
        eng, tempo = self._engine(s), tempo_for(s.bpm, first_arousal(waypoints), s.seed)
        if tempo is not None:
            points = on_bar_lines(waypoints if points is None else points, tempo, self.limits, in_bars)
        curve = mood_curve(points, session_frames(eng, points[-1][0], tempo, s.loop), eng.frame_rate_at(tempo))
        return self._workers.run(lambda: self._moving(s, points[-1][0], curve, tempo, waypoints=points))

    def _session(self, s: Settings, tempo: Tempo | None, seed: int, before: Continuation | None = None) -> Session:
        return self._engine(s).session(seed, s.steps, s.guidance, before, s.instrument, s.soundfont,
                                       **({} if tempo is None else {"tempo": tempo}))  # only engines with a beat

    def _moving(self, s: Settings, seconds: float, curve: np.ndarray, tempo: Tempo | None,
                **record: Any) -> Generation:
        """Sample and render a mood curve (T, 2) in one session; a loop also samples its overrun and closes."""
        eng, sr, frames, mastering = self._engine(s), self.mel_params.sample_rate, len(curve), self._mastering(s)
        rate, phrase = eng.frame_rate_at(tempo), None if tempo is None else FRAMES_PER_BAR
        key_index = self._key_index(eng, s.key, torch.tensor(curve[:1], dtype=torch.float32), s.seed)
        keys = None if key_index is None else follow_keys(
            curve[:, 0], KeyState.start(int(key_index[0]), float(curve[0, 0])), rate, phrase)[0]
        session = self._session(s, tempo, s.seed)
        wrap = session.loop_overrun_frames if s.loop else 0
        moods = np.concatenate([curve, mood_curve([(0.0, *curve[-1]), (wrap / rate, *curve[0])], wrap, rate)])
        session.advance(moods, None if keys is None else np.concatenate([keys, keys[:wrap]]), wrap=wrap)
        n = session.samples_for(frames) if s.loop else int(round(seconds * sr))
        crossfade = int(round(session.loop_crossfade_seconds * sr)) if s.loop else None
        markers = [(0.0, "loopStart"), (frames / rate, "loopEnd")] if s.loop else []
        if s.part_instruments is not None:  # the mix is the sum of its parts, each rendered on its own
            changes = key_changes(keys, rate) if keys is not None else []
            parts, midi = layered(session, s, frames, frames + wrap, moods, changes, markers)
            wav, dry, stems = mix_layers(parts, n, crossfade, sr, mastering)
            return self._finish(s, session, curve, keys, wav, dry, seconds, markers, tempo, midi, loop=s.loop,
                                stems=stems if s.stems else None, **record)
        dry = close_loop(session.render(), n, crossfade) if s.loop else fit(session.render(), n)
        wav = master_loop(dry, sr, mastering) if s.loop else master(dry, sr, mastering)
        return self._finish(s, session, curve, keys, wav, dry, seconds, markers, tempo, loop=s.loop, **record)

    def _finish(self, s: Settings, session: Session, curve: np.ndarray, keys: np.ndarray | None, wav: np.ndarray,
                dry: np.ndarray, seconds: float, markers: list[tuple[float, str]], tempo: Tempo | None,
                midi: bytes | None = None, **record: Any) -> Generation:
        """The Generation of what a session made: the first len(curve) frames, their audio (mastered, and `dry`
        for a continuation), judged at the corpus' level; `midi` when it is not the session's own."""
        eng, frames, mastering = self._engine(s), len(curve), self._mastering(s)
        rate = eng.frame_rate_at(tempo)
        wav = np.clip(wav, -1.0, 1.0).astype(np.float32)
        changes = key_changes(keys, rate) if keys is not None else []
        heard = audio.mel_from_audio(at_corpus_level(wav, mastering), self.mel_params).numpy()
        own = session.mel(0, frames)
        continuation = Continuation(session.frames[:, :frames], curve, keys, np.asarray(dry, np.float32))
        midi = session.midi(0, frames, changes, markers) if midi is None else midi
        played = session.render_record | ({} if s.part_instruments is None else parts_record(s))
        judged = self._judge(eng, heard, len(wav), mastering, midi, played)
        session.close()
        return Generation(
            valence=float(curve[-1, 0]), arousal=float(curve[-1, 1]), seconds=seconds, settings=s,
            key=None if keys is None else key_name(int(keys[0])), mel=heard if own is None else own, audio=wav,
            sample_rate=self.mel_params.sample_rate, midi=midi, judged=judged, checkpoint_sha256=eng.sha256,
            render=played, mastering=mastering, curve=curve, frame_rate=rate, bpm=tempo and tempo.bpm,
            key_changes=tuple((t, key_name(k)) for t, k in changes), continuation=continuation, **record)

    def extend(self, generation: Generation, seconds: float, valence: float | None = None,
               arousal: float | None = None) -> Generation:
        """`generation` continued by `seconds` from its end: its audio unchanged, then more music, easing from its
        last mood to (valence, arousal) (either left out: as it ends), in its key unless valence crosses zero, with
        its settings (instrument, soundfont, mastering). The same engine and checkpoint must be loaded; the total
        stays within the journey limit."""
        return self._workers.run(self._extend, generation, seconds, valence, arousal)

    def _extend(self, generation: Generation, seconds: float, valence: float | None = None,
                arousal: float | None = None) -> Generation:
        """The work of `extend`, on a worker thread."""
        before = generation.continuation
        if before is None or generation.settings.part_instruments is not None:
            raise ValueError(f"generation: {'its parts play as layers' if before else f'engine {generation.engine!r}'}"
                             " made it in a way that extend cannot continue")
        s = self.settings(generation.settings)
        eng = self._engine(s)
        if generation.checkpoint_sha256 != eng.sha256:
            raise ValueError(f"generation: made with checkpoint {generation.checkpoint_sha256[:12]}..., but engine "
                             f"{eng.name!r} here is {eng.sha256[:12]}...")
        seconds = self.limits.extension(seconds, done=len(generation.extensions))
        total = generation.seconds + seconds
        if total > self.limits.max_journey_seconds:
            raise ValueError(f"seconds: the extended clip would last {total:g} s, over the "
                             f"{self.limits.max_journey_seconds:g} s limit")
        last = before.moods[-1]
        target = validate_mood(last[0] if valence is None else valence, last[1] if arousal is None else arousal)
        old, tempo = before.frames.shape[1], None if generation.bpm is None else Tempo(generation.bpm)
        rate, phrase = eng.frame_rate_at(tempo), None if tempo is None else FRAMES_PER_BAR
        new = max(1, eng.frames_for(total) - old) if tempo is None else tempo.frames_after(old, total)
        ease = min(EXTEND_TRANSITION_SECONDS, new / rate)
        curve = mood_curve([(0.0, *last), (ease, *target)], new, rate, start=1 / rate)
        keys = None
        if before.keys is not None:
            _, state = follow_keys(before.moods[:, 0], KeyState.start(int(before.keys[0]), float(before.moods[0, 0])),
                                   rate, phrase)
            keys = follow_keys(curve[:, 0], state, rate, phrase)[0]
        session = self._session(s, tempo, derived_seed(s.seed, old), before)
        session.advance(curve, keys)
        sr = self.mel_params.sample_rate
        dry = fit(session.render(), int(round(total * sr)) - len(before.audio))
        wav = np.concatenate([generation.audio, master_after(before.audio, dry, generation.audio, sr,
                                                             self._mastering(s))])
        extension = {"seconds": seconds, "valence": None if valence is None else target[0],
                     "arousal": None if arousal is None else target[1]}
        return self._finish(generation.settings, session, np.concatenate([before.moods, curve]),
                            None if keys is None else np.concatenate([before.keys, keys]), wav,
                            np.concatenate([before.audio, dry]), total, [], tempo, waypoints=generation.waypoints,
                            extensions=(*generation.extensions, extension), stream=generation.stream)

    def stream(self, mood_at: Callable[[], tuple[float, float]], chunk_seconds: float = 1.0,
               settings: Settings | None = None, **changes: Any) -> MoodStream:
        """A live stream: iterate it for chunks of about `chunk_seconds` of audio, each continuing the last.
        `mood_at()` is called before each chunk and returns the current (valence, arousal); the chunk eases from
        the previous mood to it. `close()` ends it and returns what was played as a Generation (`.save()` writes
        WAV, JSON and MIDI). `settings` as for `generate`; a stream does not loop and has no stems. At a tempo
        (bpm="mood": drawn for a neutral arousal, the mood being unknown yet) chunks end on 16th notes and keys
        change on bar lines."""
        s = self.settings(settings, **changes)
        if s.loop:
            raise ValueError("loop must be false for a stream, which goes on until it is closed")
        if s.stems or s.intensity is not None:
            raise ValueError("stems must be unset for a stream: its parts are not rendered apart")
        chunk_seconds = self.limits.chunk_seconds(chunk_seconds)
        eng, sr, tempo = self._engine(s), self.mel_params.sample_rate, tempo_for(s.bpm, 0.0, s.seed)

        def finish(session: Session, curve: np.ndarray, keys: np.ndarray | None, wav: np.ndarray,
                   dry_audio: np.ndarray, moods: list[tuple[float, float]]) -> Generation:
            return self._finish(s, session, curve, keys, wav, dry_audio, len(wav) / sr, [], tempo,
                                stream={"chunk_seconds": chunk_seconds, "moods": [list(m) for m in moods]})

        session = self._workers.run(lambda: self._session(s, tempo, s.seed))
        return MoodStream(session, eng.frame_rate_at(tempo), sr, chunk_seconds, mood_at,
                          lambda mood: self._key_index(eng, s.key, mood, s.seed), self._mastering(s), finish,
                          self._workers.run, (1, None) if tempo is None else (FRAMES_PER_SIXTEENTH, FRAMES_PER_BAR))

    def nearest(self, generation: Generation, by: str = "mood", atlas: Atlas | None = None) -> AtlasMatch | None:
        """The real clip nearest a generation in `atlas` (default: the checkpoint's), by mood (distance on the pad)
        or by sound (the atlas' spectral embedding); None without an atlas."""
        atlas = self.atlas if atlas is None else atlas
        if by not in NEAREST_BY:
            raise ValueError(f"nearest must be one of {', '.join(NEAREST_BY)}, got {shown(by)}")
        if atlas is None:
            return None
        if by == "sound":
            return self._workers.run(lambda: atlas.nearest_by_sound(atlas.embed(generation.mel)))
        return self._workers.run(atlas.nearest_by_mood, generation.valence, generation.arousal)

    def run(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        """fn(*args) on the pipeline's worker thread. Torch work done beside the pipeline's (an engine called
        directly, a benchmark) belongs there too, so the process keeps one team of math threads (see __init__)."""
        return self._workers.run(fn, *args)

    def warmup(self) -> None:
        """Run each engine once on a short clip, and a short stream where it has sessions (which leaves a loaded
        synth behind), so the first real request is fast."""
        for name in self.engines:
            eng = self.engines_by_name[name]
            s = self.settings(engine=name, steps=2 if eng.uses_steps else None, guidance=1.0)  # 2 flow steps
            self._workers.run(self._generate, s, 0.0, 0.0, 2.0)
            if eng.continues:
                live = self.stream(lambda: (0.0, 0.0), 0.25, s)
                next(live)
                live.close()
