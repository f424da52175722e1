"""The mood judge against human labels it never saw: VGMIDI's labelled phrases (evaluation only)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from tqdm import tqdm

from moodgen import audio, midi
from moodgen.judge import Judge
from train.evaluation.metrics import AXES, agreement_of


def vgmidi_agreement(judge: Judge, csv_path: str | Path, window_seconds: float = 10.0,
                     max_seconds: float = 60.0) -> dict:
    """Render VGMIDI's labelled phrases and compare the judge with the human (valence, arousal) signs.

    Evaluation only: VGMIDI never trains anything. Each phrase is rendered like the training corpus (sustain
    applied, same soundfont), cut to its first `max_seconds` to bound the cost, and judged as the mean over
    `window_seconds` windows. Labels are in {-1, +1}, so R2 is not reported.
    """
    csv_path = Path(csv_path)
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    params = judge.mel_params
    window = params.frames_for(window_seconds)
    assessments, targets, skipped = [], [], []
    for row in tqdm(rows, desc="vgmidi", unit="phrase"):
        path = csv_path.parent / row["midi"]
        try:
            pm = midi.apply_sustain(midi.load_midi(path))
        except ValueError as exc:
            skipped.append(str(exc))
            continue
        for inst in pm.instruments:  # pm is apply_sustain's copy; later notes would only be cut off again
            inst.notes = [n for n in inst.notes if n.start < max_seconds]
        y = midi.render_midi(pm, params.sample_rate)[: int(max_seconds * params.sample_rate)]
        assessments.append(judge.assess_windows(audio.mel_from_audio(y, params).numpy(), window))
        targets.append([float(row["valence"]), float(row["arousal"])])
    metrics = agreement_of(assessments, np.array(targets))
    for axis in AXES:
        metrics.pop(f"r2_{axis}")
        metrics.pop(f"mae_unit_{axis}")
    metrics.pop("mae_unit")
    metrics.update(skipped=skipped, window_seconds=window_seconds, max_seconds=max_seconds)
    return metrics
