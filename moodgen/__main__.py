"""python -m moodgen generate --preset happy --seconds 10 --seed 1 --out clip.wav [--loop]
python -m moodgen journey --path "0:-0.6,-0.6 30:0.7,0.7 60:-0.6,0.8" --out journey.wav [--loop]
python -m moodgen journey --presets sad,relaxed,happy --seconds 90 --out journey.wav
python -m moodgen generate --preset happy --bpm 96 --loop-bars 8 --stems --out loop.wav
python -m moodgen journey --path "0:-0.6,-0.6 8:0.7,0.7" --in-bars --bpm 96 --out journey.wav
python -m moodgen extend journey.json --seconds 20 [--valence V --arousal A] --out longer.wav
python -m moodgen live --osc 127.0.0.1:9000 [--midi-out NAME] --out live.wav   (OSC: /moodgen/mood v a, /moodgen/stop)

Writes clip.wav (16-bit PCM), clip.json (every parameter, the checkpoint's hash, the judge's estimate; for music
whose mood moves also the waypoints, the mood curve and the key changes) and, for engines that play notes, clip.mid.
Existing files are kept unless --force. Every error is one line on stderr, exit 2.
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
from pathlib import Path
from typing import NoReturn

import torch

from moodgen.config import shown
from moodgen.engines import engine_names
from moodgen.generation import stem_paths
from moodgen.hub import CheckpointNotFound
from moodgen.journey import parse_path, preset_path
from moodgen.live import CHUNK_SECONDS, Steering, play_live, sound_output
from moodgen.mood import PRESETS, preset, validate_mood
from moodgen.parts import PARTS
from moodgen.pipeline import MoodPipeline
from moodgen.render import INSTRUMENTS
from moodgen.settings import Settings
from moodgen.sidecar import read_sidecar, remake


def parse_device(name: str | None) -> str | None:
    """A device torch knows and this machine has, or None for the default; ValueError naming --device otherwise."""
    if name is None:
        return None
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device must be a torch device such as cpu or cuda, got {shown(name)}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device is available here")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu or cuda, got {shown(name)}")
    return name


def check_out(out: Path, has_midi: bool, force: bool, stems: bool = False) -> None:
    """Refuse, before any work, an --out that cannot be written: wrong suffix, a folder, no writable place for it
    (missing folders are made), or files that exist (without --force)."""
    if out.suffix.lower() != ".wav":
        raise ValueError(f"--out must name a .wav file, got {shown(out.suffix) if out.suffix else 'no suffix'}")
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; name a .wav file inside it")
    existing_parent = next(p for p in out.absolute().parents if p.exists())
    if not existing_parent.is_dir():
        raise ValueError(f"--out: {existing_parent} is a file, not a folder")
    if not os.access(existing_parent, os.W_OK):
        raise ValueError(f"--out: folder {existing_parent} is not writable")
    targets = [out, out.with_suffix(".json")] + ([out.with_suffix(".mid")] if has_midi else []) + \
        (list(stem_paths(out, PARTS).values()) if stems else [])
    folders = [str(t) for t in targets if t.is_dir()]
    if folders:
        raise ValueError(f"--out: {', '.join(folders)} is a folder, in the way of a file written beside --out")
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise ValueError(f"--out: {', '.join(existing)} already exist; pass --force to overwrite")


class UsageError(ValueError):
    pass


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser that raises its errors (main prints them as one short line) instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message if len(message) <= 200 else message[:200] + "...")


def add_common(p: argparse.ArgumentParser, out: str) -> None:
    p.add_argument("--checkpoint", type=Path, default=None, help="checkpoints folder (default: ./checkpoints)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--soundfont", type=Path, default=None, dest="soundfont_file",
                   help="a General MIDI .sf2 (default: $MOODGEN_SOUNDFONT, else FluidR3 GM when installed, else "
                        "the TimGM6mb that pretty_midi ships)")
    p.add_argument("--out", type=Path, default=Path(out))
    p.add_argument("--force", action="store_true", help="overwrite existing output files")


def add_settings(p: argparse.ArgumentParser) -> None:
    """A flag per moodgen.settings.Settings field, its dest the field's name. Values stay strings here: the
    pipeline checks each (Settings.checked) and names the field."""
    p.add_argument("--seed", default=0)
    p.add_argument("--steps", default=None, help="sampling steps (default: the checkpoint's)")
    p.add_argument("--guidance", default=None, help="classifier-free guidance (default: the checkpoint's)")
    p.add_argument("--engine", default=None, help=f"one of {', '.join(engine_names())} (default: the checkpoint's "
                                                  "best engine)")
    p.add_argument("--key", default=None, help="musical key, e.g. 'A minor' (default: drawn for the mood)")
    p.add_argument("--loop", action="store_true", help="make the end flow into the start, for music that repeats")
    p.add_argument("--instrument", default=None, metavar="|".join(INSTRUMENTS),
                   help="what plays the notes (engines with notes; default: piano, what the model learned from)")
    p.add_argument("--dry", action="store_true", help="no room, no mastering gain or limiter (research, evaluation)")
    p.add_argument("--bpm", default=None, help="a tempo in 4/4 for engines that play notes, or 'mood' to draw one "
                                               "for the mood (default: the engine's own time)")
    p.add_argument("--stems", action="store_true", help="split the notes into melody, harmony and bass: a MIDI "
                   "track and a WAV (clip.melody.wav, ...) per part")
    p.add_argument("--part-instruments", default=None, metavar="PART=INSTRUMENT,...",
                   help="what plays each part, e.g. bass=strings,melody=vibraphone (default: --instrument)")
    p.add_argument("--intensity", default=None, help="0 to 1, or 'arousal': parts come in as it rises (harmony, "
                                                     "then bass, then melody)")


def parser() -> argparse.ArgumentParser:
    ap = OneLineParser(prog="python -m moodgen", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="generate a clip for a mood")
    where = g.add_mutually_exclusive_group(required=True)
    where.add_argument("--preset", help=f"one of {', '.join(PRESETS)}")
    where.add_argument("--valence", help="-1 (unpleasant) to 1 (pleasant); needs --arousal")
    g.add_argument("--arousal", help="-1 (calm) to 1 (energetic)")
    g.add_argument("--seconds", default=None, help="length (default 10)")
    g.add_argument("--loop-bars", default=None, help="a loop of exactly this many bars (at --bpm, else at a tempo "
                                                     "drawn for the mood) instead of --seconds")
    add_settings(g)
    add_common(g, "clip.wav")
    j = sub.add_parser("journey", help="music whose mood moves along a path on the pad")
    path = j.add_mutually_exclusive_group(required=True)
    path.add_argument("--path", help="waypoints 'seconds:valence,arousal ...'; the length is the last one's time")
    path.add_argument("--presets", help="presets evenly spaced in time, e.g. sad,relaxed,happy (with --seconds)")
    j.add_argument("--seconds", type=float, default=None, help="length of a --presets journey")
    j.add_argument("--in-bars", action="store_true", help="--path times (or --seconds) are bars, at --bpm (else at "
                                                         "a tempo drawn for the first mood)")
    add_settings(j)
    add_common(j, "journey.wav")
    e = sub.add_parser("extend", help="continue a clip from the JSON sidecar that generate or journey wrote")
    e.add_argument("sidecar", type=Path)
    e.add_argument("--seconds", type=float, required=True, help="how much longer")
    e.add_argument("--valence", type=float, default=None, help="the mood to move to (default: as the clip ends)")
    e.add_argument("--arousal", type=float, default=None)
    add_common(e, "extended.wav")
    lv = sub.add_parser("live", help="play a live stream, steered over OSC, heard and recorded to --out")
    lv.add_argument("--osc", default="127.0.0.1:9000",
                    help="HOST:PORT to listen on for /moodgen/mood valence arousal and /moodgen/stop (0: a free port)")
    lv.add_argument("--midi-out", default=None, metavar="NAME",
                    help="send the notes as they are heard to this MIDI output port (made as a virtual port if none "
                         "has that name)")
    lv.add_argument("--valence", default=0.0, help="the mood it starts in (default 0, 0)")
    lv.add_argument("--arousal", default=0.0)
    lv.add_argument("--seconds", default=600.0, help="stop after this long at most (default 600)")
    lv.add_argument("--chunk-seconds", default=CHUNK_SECONDS, help="how often the mood is read (default %(default)s)")
    add_settings(lv)  # --loop and --stems do not apply: the stream says so
    add_common(lv, "live.wav")
    return ap


def live(args: argparse.Namespace) -> list[Path]:
    """Play live until /moodgen/stop, Ctrl-C or --seconds; save what was played with the OSC changes' times."""
    try:
        from moodgen.osc import OscServer, parse_address  # python-osc: the `live` extra
    except ImportError as exc:
        raise ValueError(f"live needs the live extra (pip install 'moodgen[live]'): {exc}") from None
    host, port = parse_address(args.osc)
    try:
        seconds = float(args.seconds)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= 3600:
        raise ValueError(f"--seconds must be a number in (0, 3600], got {shown(args.seconds)}")
    steering = Steering(validate_mood(args.valence, args.arousal))
    pipe = MoodPipeline.from_checkpoint(args.checkpoint, device=parse_device(args.device),
                                        soundfont=args.soundfont_file)
    settings = pipe.settings(Settings.from_record(vars(args)))
    check_out(args.out, pipe.engine(settings.engine).makes_midi, args.force)
    stream = pipe.stream(lambda: steering.mood, args.chunk_seconds, settings)
    outputs, (sound, heard) = [], sound_output(stream.sample_rate)
    if args.midi_out is not None:
        from moodgen.midi_out import MidiOutput, open_port  # python-rtmidi: the `live` extra

        if not pipe.engine(settings.engine).makes_midi:
            raise ValueError(f"--midi-out: engine {settings.engine!r} plays no notes")
        outputs.append(MidiOutput(open_port(args.midi_out), stream.render_record.get("program")))
    outputs += [sound] if sound is not None else []
    server = OscServer(host, port, steering, log=lambda line: print(line, file=sys.stderr, flush=True)).start()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: steering.stop())
    print(f"live: OSC on {server.address[0]}:{server.address[1]}; {heard}", flush=True)
    try:
        played = play_live(stream, steering, outputs, max_seconds=seconds)
    finally:
        server.stop()
    if played.generation is None:
        raise ValueError("live: stopped before anything played; nothing to save")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    return played.generation.save(args.out, extra=played.record(), overwrite=args.force)


def make(args: argparse.Namespace, ap: argparse.ArgumentParser):
    """Load the pipeline, check --out, make the Generation the command asks for; returns (generation, extra)."""
    pipe = MoodPipeline.from_checkpoint(args.checkpoint, device=parse_device(args.device),
                                        soundfont=args.soundfont_file)
    if args.command == "extend":
        params = read_sidecar(args.sidecar)
        check_out(args.out, pipe.engine(params["engine"]).makes_midi if params["engine"] in pipe.engines else False,
                  args.force)
        before = remake(pipe, params, str(args.sidecar))
        return pipe.extend(before, args.seconds, args.valence, args.arousal), {"preset": params.get("preset")}
    settings = pipe.settings(Settings.from_record(vars(args)))
    check_out(args.out, pipe.engine(settings.engine).makes_midi, args.force, settings.stems)
    if args.command == "journey":
        if args.presets and args.seconds is None:
            ap.error("--presets needs --seconds")
        if args.path and args.seconds is not None:
            ap.error("--seconds goes with --presets; a --path ends at its last waypoint")
        waypoints = parse_path(args.path) if args.path else preset_path(args.presets, args.seconds)
        return pipe.journey(waypoints, settings, in_bars=args.in_bars), {"presets": args.presets}
    if args.loop_bars is not None and args.seconds is not None:
        ap.error("--loop-bars sets the loop's length; leave out --seconds")
    valence, arousal = preset(args.preset) if args.preset else (args.valence, args.arousal)
    return pipe.generate(valence, arousal, 10.0 if args.seconds is None else args.seconds, settings,
                         loop_bars=args.loop_bars), {"preset": args.preset}


INTERRUPTED = 130  # the shell's status for a command stopped by SIGINT


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """The command; SIGTERM (kill, a service stopping) stops it as Ctrl-C does, and Ctrl-C works even where a parent
    left SIGINT ignored: one line, status 130, nothing written. The caller's handlers come back after it."""
    signals = (signal.SIGINT, signal.SIGTERM) if threading.current_thread() is threading.main_thread() else ()
    previous = {sig: signal.signal(sig, interrupt) for sig in signals}
    try:
        return command(argv)
    except KeyboardInterrupt:  # files being written were taken back (moodgen.files)
        print("interrupted: no clip written", file=sys.stderr)
        return INTERRUPTED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def command(argv: list[str] | None) -> int:
    ap = parser()
    try:
        args = ap.parse_args(argv)
        if args.command == "generate" and args.preset is not None and args.arousal is not None:
            ap.error("--arousal goes with --valence, not --preset")
        if args.command == "generate" and not args.preset and args.arousal is None:
            ap.error("--valence needs --arousal")
        if args.command == "live":
            files = live(args)
        else:
            gen, extra = make(args, ap)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            files = gen.save(args.out, extra=extra, overwrite=args.force)
    except (CheckpointNotFound, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(" ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    status = main()
    if status == INTERRUPTED:  # now: not once the model work under way on the pipeline's worker thread ends
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
