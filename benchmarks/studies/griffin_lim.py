"""Mel -> audio without a learned model: the seed's librosa path against our torch fast Griffin-Lim.

    python -m benchmarks.studies.griffin_lim [--cache .cache/corpus/emopia] [--clips 20] [--seconds 10] [--repeats 3]

Clips: the first `--clips` held-out test-split EMOPIA clips (by id) of the prepared cache that last at least
`--seconds`; from each, the centred excerpt of that length of the rendered (untransposed) audio. Its mel
(moodgen.audio.mel_from_audio) is inverted by each method; spectral convergence ||S - S^||_F / ||S||_F is measured
on linear STFT magnitude against the excerpt itself. Wall and process CPU time: torch.set_num_threads(--threads), every
method timed on every clip in each of `--repeats` interleaved rounds; reported is the median over rounds of the mean
time per clip.
Writes the "Griffin-Lim ... N torch thread(s)" section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import results
from benchmarks.results import command, machine, update_section
from moodgen import audio
from moodgen.config import MelParams
from moodgen.inverter import mel_to_audio
from train.corpus.cache import CorpusCache

BASELINE = "librosa mel_to_audio (seed), 32 it"


def methods(params: MelParams) -> dict:
    """name -> function (M, T) float32 tensor -> (S,) waveform. The first entry is the baseline."""
    def fast(n_iter):
        return lambda mel: audio.mel_to_audio_fast(mel, params, n_iter=n_iter)

    def vocoder(n_iter):
        return lambda mel: mel_to_audio(mel, params, method="fast_gl", n_iter=n_iter, phase_init="vocoder")

    return {BASELINE: lambda mel: audio.mel_to_audio_librosa(mel, params, n_iter=32),
            "fast GL (audio.mel_to_audio_fast), random init, 32 it": fast(32),
            "fast GL, random init, 16 it": fast(16),
            "fast GL, phase-vocoder init (inverter.mel_to_audio fast_gl), 16 it": vocoder(16),
            "fast GL, phase-vocoder init, 8 it": vocoder(8)}


def excerpts(cache: CorpusCache, n_clips: int, seconds: float, sample_rate: int) -> list[tuple[str, np.ndarray]]:
    n = int(round(seconds * sample_rate))
    out = []
    for item in sorted(cache.select(split="test", transpose=0), key=lambda it: it["clip_id"]):
        y = cache.audio(item)
        if len(y) >= n:
            start = (len(y) - n) // 2
            out.append((item["clip_id"], y[start:start + n]))
        if len(out) == n_clips:
            break
    if len(out) < n_clips:
        raise SystemExit(f"only {len(out)} test clips of >= {seconds} s in {cache.root}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = results.parser(__doc__, threads=2, repeats=3, seconds=10.0)
    ap.add_argument("--cache", type=Path, default=Path(".cache/corpus/emopia"))
    ap.add_argument("--clips", type=int, default=20)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    cache = CorpusCache(args.cache)
    params = cache.mel_params
    clips = excerpts(cache, args.clips, args.seconds, params.sample_rate)
    mels = [audio.mel_from_audio(y, params) for _, y in clips]
    fns = methods(params)
    for fn in fns.values():  # warm-up: librosa filterbank/numba, torch kernels
        fn(mels[0][:, :64])

    # Each round times every method on every clip, methods back to back per clip, so that load from other jobs
    # on the machine hits all methods alike; round 0's outputs give the spectral convergence.
    sc = {name: [] for name in fns}
    wall = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    for r in range(args.repeats):
        times = {name: ([], []) for name in fns}
        for (_, y), mel in zip(clips, mels):
            for name, fn in fns.items():
                w0, c0 = time.perf_counter(), time.process_time()
                out = fn(mel)
                times[name][0].append(time.perf_counter() - w0)
                times[name][1].append(time.process_time() - c0)
                if r == 0:
                    sc[name].append(audio.spectral_convergence(y, out, params))
        for name, (w, c) in times.items():
            wall[name].append(float(np.mean(w)))
            cpu[name].append(float(np.mean(c)))
        print(f"round {r + 1}/{args.repeats}: " + ", ".join(f"{np.mean(times[n][0]):.2f}" for n in fns), flush=True)
    seconds = {name: float(np.median(r)) for name, r in wall.items()}
    cpu_seconds = {name: float(np.median(r)) for name, r in cpu.items()}

    base_sc, base_t = float(np.mean(sc[BASELINE])), seconds[BASELINE]
    lines = [f"Machine: {machine()}; torch {torch.__version__}, torch.set_num_threads({args.threads}) "
             f"(the machine was shared with other jobs: absolute times are noisy, the ratios less so). "
             f"Command: `{command()}`.", "",
             f"{len(clips)} held-out test-split EMOPIA clips (rendered piano, {args.seconds:g} s centred excerpts, "
             f"{clips[0][0]} ... {clips[-1][0]}), mel -> audio. SC = spectral convergence on linear STFT magnitude "
             f"against the excerpt (lower is better): mean, and worst clip. Time: median over {args.repeats} rounds "
             f"of the mean seconds per clip (wall clock, and CPU time of the process summed over its threads).", "",
             "| method | SC mean | SC max | wall s / clip | speed-up (wall) | CPU s / clip | speed-up (CPU) "
             "| SC <= librosa on clips |",
             "|---|---|---|---|---|---|---|---|"]
    for name in fns:
        wins = sum(a <= b for a, b in zip(sc[name], sc[BASELINE]))
        lines.append(f"| {name} | {np.mean(sc[name]):.4f} | {np.max(sc[name]):.4f} | {seconds[name]:.3f} | "
                     f"{base_t / seconds[name]:.1f}x | {cpu_seconds[name]:.3f} | "
                     f"{cpu_seconds[BASELINE] / cpu_seconds[name]:.1f}x | {wins}/{len(clips)} |")
    ok = [n for n in fns if n != BASELINE and base_t / seconds[n] >= 3 and np.mean(sc[n]) <= base_sc]
    lines += ["", "Target (>= 3x faster than librosa at equal or better mean SC) met by: "
              + ("; ".join(ok) if ok else "none") + "."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        update_section(f"Griffin-Lim: librosa vs torch fast GL, {args.threads} torch thread(s) "
                       "(benchmarks/studies/griffin_lim.py)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
