"""How far real EMOPIA note onsets sit from the note engine's frame grid (1/16 s), and what the grid does to them.

    python -m benchmarks.studies.timing_grid [--emopia ../shared/data/emopia/EMOPIA_1.0] [--checkpoint checkpoints]

For every note onset of every EMOPIA clip (the MIDI, all splits): its distance to the nearest grid frame, with the
grid where it is (frame 0 at time 0) and shifted to the phase that suits each clip best (the grid is arbitrary;
the best phase is what a model could at most gain by aligning it). The same for finer grids. Between consecutive
distinct onsets: how often two onsets heard as separate (>= 30 ms apart) fall into one frame, how often a chord
played within 20 ms is split across two frames (heard as a 62 ms arpeggio), and how much each inter-onset interval
moves. Notes lost when the same key starts twice in one frame (the roll keeps one onset per key per frame). Then
whether the mood judge (the evaluation's realism yardstick) hears a difference between the test clips as performed
and on the grid. Then the cost of a finer grid for the engine that makes MIDI: its generation CPU time for 10, 20 and
30 s (160, 320, 480 frames at 16 fps: the frames a 10 s clip needs at 16, 32 and 48 fps), median of `--repeats`.
Writes the "Note timing and the 1/16 s grid" section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from benchmarks import results
from benchmarks.results import command, machine, publish
from moodgen import audio, midi
from moodgen.config import RollParams
from moodgen.judge import Judge
from moodgen.pipeline import MoodPipeline
from train.corpus.emopia import list_clips
from train.evaluation.metrics import EmbeddingSpace, nearest_distances

WITHIN_MS = (5, 10, 20)
SEPARATE_MS = 30.0  # onsets this far apart are heard as two events
TOGETHER_MS = 20.0  # onsets closer than this are heard as one (a chord)
FINER_FPS = (16, 32, 48, 100)


def onsets_of(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N,) sorted onset times in seconds and their (N,) MIDI pitches, pitched notes only."""
    notes = sorted((n.start, n.pitch) for inst in midi.load_midi(path).instruments if not inst.is_drum
                   for n in inst.notes)
    return np.array([t for t, _ in notes]), np.array([p for _, p in notes])


def grid_offsets(times: np.ndarray, fps: float, phase: float = 0.0) -> np.ndarray:
    """(N,) signed distance in seconds from each time to the nearest frame of a grid starting at `phase`."""
    x = (times - phase) * fps
    return (x - np.round(x)) / fps


def best_phase(times: np.ndarray, fps: float, tries: int = 64) -> float:
    """The grid phase (of `tries` across one frame) with the smallest mean |offset|."""
    phases = np.arange(tries) / tries / fps
    return float(phases[np.argmin([np.abs(grid_offsets(times, fps, p)).mean() for p in phases])])


def pair_effects(times: np.ndarray, pitches: np.ndarray, fps: float) -> dict[str, np.ndarray | int]:
    """What quantizing to the grid does between consecutive distinct onset times, and to repeated keys."""
    distinct = np.unique(times)
    gaps = np.diff(distinct)
    frames = np.round(distinct * fps)
    quantized_gaps = np.diff(frames) / fps
    frame_key = np.round(times * fps).astype(np.int64) * 128 + pitches
    return {"gaps": gaps, "quantized_gaps": quantized_gaps,
            "lost_notes": int(len(frame_key) - len(np.unique(frame_key)))}


def share(x: np.ndarray, limit_ms: float) -> float:
    return float(np.mean(np.abs(x) * 1000 <= limit_ms + 1e-9))


def judged_with_and_without_grid(judge: Judge, path: Path, params: RollParams, seconds: float):
    """The judge's Assessments of a clip's centre `seconds` as performed, after the note engine's roll round trip
    (onsets and ends on the grid, velocities kept), and as performed but cropped half a frame later (a change of
    alignment only: the judge's noise floor); rendered with the sustain pedal applied."""
    pm = midi.apply_sustain(midi.load_midi(path))
    sr = judge.mel_params.sample_rate
    performed = midi.render_midi(pm, sr)
    on_grid = midi.render_midi(midi.midi_from_roll(*midi.roll_from_midi(pm, params), params), sr)
    n = int(seconds * sr)
    start = max(0, (len(performed) - n) // 2)
    window = judge.mel_params.frames_for(seconds)
    late = int(sr / params.fps / 2)
    return [judge.assess_windows(audio.mel_from_audio(y[s:s + n], judge.mel_params).numpy(), window)
            for y, s in ((performed, start), (on_grid, start), (performed, start + late))]


def generation_seconds(pipe: MoodPipeline, engine: str, seconds: float, repeats: int) -> float:
    """Median CPU time of generating one dry clip (distinct seeds, so no cache answers). CPU time, not wall time:
    on cores shared with other jobs wall time swings with their load."""
    cpu = []
    for seed in range(repeats):
        t0 = time.process_time()
        pipe.generate(0.7, 0.7, seconds, seed=1000 + seed, engine=engine, dry=True)
        cpu.append(time.process_time() - t0)
    return float(np.median(cpu))


def main() -> None:
    ap = results.parser(__doc__, checkpoint=True, repeats=5)
    ap.add_argument("--emopia", type=Path, default=Path("../shared/data/emopia/EMOPIA_1.0"))
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on busy shared cores)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()
    fps = RollParams().fps
    clips = list_clips(args.emopia)[0]
    offsets = {f: [] for f in FINER_FPS}
    aligned, gaps, quantized, lost, n_notes = [], [], [], 0, 0
    for clip in tqdm(clips, desc="clips", unit="clip"):
        times, pitches = onsets_of(clip.path)
        n_notes += len(times)
        for f in FINER_FPS:
            offsets[f].append(grid_offsets(times, f))
        aligned.append(grid_offsets(times, fps, best_phase(times, fps)))
        effects = pair_effects(times, pitches, fps)
        gaps.append(effects["gaps"])
        quantized.append(effects["quantized_gaps"])
        lost += effects["lost_notes"]
    offsets = {f: np.concatenate(o) for f, o in offsets.items()}
    aligned, gaps, quantized = np.concatenate(aligned), np.concatenate(gaps), np.concatenate(quantized)
    frame_ms = 1000 / fps
    uniform = [min(1.0, w / (frame_ms / 2)) for w in WITHIN_MS]

    lines = [f"{machine()}; `{command()}`; {len(clips)} clips, {n_notes:,} note onsets (MIDI, all splits).", "",
             "Distance of each onset to the nearest grid frame (|offset|, ms):", "",
             "| grid | median | mean | 90th pct | " + " | ".join(f"within {w} ms" for w in WITHIN_MS) + " |",
             "|---" * (4 + len(WITHIN_MS)) + "|"]

    def offset_row(name: str, o: np.ndarray) -> str:
        ms = np.abs(o) * 1000
        return (f"| {name} | {np.median(ms):.1f} | {ms.mean():.1f} | {np.percentile(ms, 90):.1f} | "
                + " | ".join(f"{share(o, w):.0%}" for w in WITHIN_MS) + " |")

    lines.append(offset_row(f"1/{fps} s (the note engine), frame 0 at 0 s", offsets[fps]))
    lines.append(offset_row(f"1/{fps} s, best phase per clip", aligned))
    lines.append(f"| 1/{fps} s, onsets spread evenly (reference) | {frame_ms / 4:.1f} | {frame_ms / 4:.1f} | "
                 f"{0.9 * frame_ms / 2:.1f} | " + " | ".join(f"{u:.0%}" for u in uniform) + " |")
    lines += [offset_row(f"1/{f} s", offsets[f]) for f in FINER_FPS if f != fps]

    moved = np.abs(quantized - gaps) * 1000
    separate, together = gaps * 1000 >= SEPARATE_MS, (gaps > 0) & (gaps * 1000 < TOGETHER_MS)
    lines += ["", f"Between consecutive distinct onset times ({len(gaps):,} intervals) on the 1/{fps} s grid:", "",
              f"- intervals under {TOGETHER_MS:g} ms (a chord's notes; heard as one event): {together.mean():.0%} of "
              f"all; {np.mean(quantized[together] > 0):.0%} of them are split into different frames, i.e. played "
              f"{frame_ms:.1f} ms or more apart;",
              f"- intervals of {SEPARATE_MS:g} ms or more (heard as separate events): {separate.mean():.0%} of all; "
              f"{np.mean(quantized[separate] == 0):.1%} of them collapse into one frame (the two onsets become "
              "simultaneous);",
              f"- how far each interval moves: median {np.median(moved):.1f} ms, 90th percentile "
              f"{np.percentile(moved, 90):.1f} ms; {np.mean(moved > 10):.0%} move more than 10 ms and "
              f"{np.mean(moved > 20):.0%} more than 20 ms (intervals of {SEPARATE_MS:g} ms or more: "
              f"{np.mean(moved[separate] > 10):.0%} / {np.mean(moved[separate] > 20):.0%});",
              f"- notes lost because the same key starts twice in one frame: {lost:,} of {n_notes:,} "
              f"({lost / n_notes:.2%})."]

    judge = Judge.from_file(args.checkpoint / "judge.safetensors")
    test = [c for c in clips if c.split == "test"]
    pairs = [judged_with_and_without_grid(judge, c.path, RollParams(), 10.0)
             for c in tqdm(test, desc="judge", unit="clip")]
    space = EmbeddingSpace.fit(np.stack([p.embedding for p, _, _ in pairs]))
    performed, on_grid, late = (space(np.stack([t[i].embedding for t in pairs])) for i in range(3))
    moved = np.linalg.norm(performed - on_grid, axis=1)
    others = [nearest_distances(performed[i:i + 1], np.delete(performed, i, axis=0))[0] for i in range(len(test))]
    delta = np.abs(np.array([[p.valence - g.valence, p.arousal - g.arousal] for p, g, _ in pairs]))
    shifted = np.linalg.norm(performed - late, axis=1)
    lines += ["", f"Can the mood judge hear the grid? The {len(test)} test-split clips (10 s centre crops) as "
              "performed and after the note engine's roll round trip (onsets and note ends on the grid, velocities "
              f"kept): median distance between the two in the judge's embedding {np.median(moved):.2f}, against "
              f"{np.median(shifted):.2f} for the performed clip cropped {500 / fps:.0f} ms later and "
              f"{np.median(others):.2f} from a performed clip to the nearest other one; judged valence moves "
              f"{delta[:, 0].mean():.3f} and arousal {delta[:, 1].mean():.3f} on average (on [-1, 1]); the judged "
              f"quadrant stays the same for {np.mean([p.quadrant == g.quadrant for p, g, _ in pairs]):.0%}."]

    pipe = MoodPipeline.from_checkpoint(args.checkpoint, soundfont=midi.soundfont_path())
    engine = next(e for e in pipe.engines if pipe.engine(e).makes_midi)
    pipe.generate(0.7, 0.7, 2.0, seed=999, engine=engine, dry=True)  # warm-up
    walls = {s: generation_seconds(pipe, engine, s, args.repeats) for s in (10.0, 20.0, 30.0)}
    load = os.getloadavg()
    lines += ["", f"Cost of a finer grid: the {engine} engine generates frame by frame, so a 10 s clip at 32 or 48 "
              f"fps costs what a 20 or 30 s clip costs at {fps} fps (CPU time, median of {args.repeats}, "
              f"{args.threads} torch thread(s), load average {load[0]:.1f}): "
              + ", ".join(f"{s * fps:.0f} frames {w:.2f} s" for s, w in walls.items())
              + f" ({walls[20.0] / walls[10.0]:.1f}x and {walls[30.0] / walls[10.0]:.1f}x the 16 fps time). "
              f"Total wall {time.time() - start:.0f} s."]
    publish("Note timing and the 1/16 s grid", "\n".join(lines), write=not args.no_write)


if __name__ == "__main__":
    main()
