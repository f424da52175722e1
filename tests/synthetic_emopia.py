"""A small folder in EMOPIA 1.0's layout (midis/, label.csv, split/*_SL.csv) of synthetic piano MIDI clips."""
from __future__ import annotations

from pathlib import Path

import pretty_midi

from moodgen.mood import quadrant_by_number


def synthetic_clip(quadrant: int, seconds: float, variant: int = 0) -> pretty_midi.PrettyMIDI:
    """Fast and loud for high arousal, slow and soft for low; major or minor arpeggios for the valence sign."""
    q = quadrant_by_number(quadrant)
    third = 4 if q.valence_sign > 0 else 3
    step = 0.125 if q.arousal_sign > 0 else 0.5
    velocity = 100 if q.arousal_sign > 0 else 45
    root = 48 + 2 * variant
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    t, i = 0.0, 0
    while t < seconds:
        pitch = root + (0, third, 7, 12)[i % 4]
        piano.notes.append(pretty_midi.Note(velocity, pitch, t, t + step * 1.5))
        t, i = t + step, i + 1
    piano.control_changes.append(pretty_midi.ControlChange(64, 100, 0.0))
    piano.control_changes.append(pretty_midi.ControlChange(64, 0, seconds / 2))
    pm.instruments.append(piano)
    return pm


def write_emopia_folder(root: Path, per_split: dict[str, int] | None = None, seconds: float = 10.0) -> Path:
    """`per_split[split]` songs per quadrant, one clip each; returns `root`."""
    per_split = per_split or {"train": 2, "val": 1, "test": 1}
    (root / "midis").mkdir(parents=True, exist_ok=True)
    (root / "split").mkdir(exist_ok=True)
    labels = ["ID,4Q,annotator"]
    for split, n in per_split.items():
        songs = ["songID,num_Q1,num_Q2,num_Q3,num_Q4,DominantQ"]
        for quadrant in (1, 2, 3, 4):
            for i in range(n):
                song = f"{split}_song{quadrant}{i}"
                clip_id = f"Q{quadrant}_{song}_0"
                synthetic_clip(quadrant, seconds, i).write(str(root / "midis" / f"{clip_id}.mid"))
                labels.append(f"{clip_id},{quadrant},T")
                songs.append(f"{song},{int(quadrant == 1)},{int(quadrant == 2)},{int(quadrant == 3)},"
                             f"{int(quadrant == 4)},{quadrant}")
        (root / "split" / f"{split}_SL.csv").write_text("\n".join(songs) + "\n")
    (root / "label.csv").write_text("\n".join(labels) + "\n")
    return root
