"""Test helper for the app tests: the real app served in-process on a free port.

The pipeline is the real `MoodPipeline` loaded from the tiny random-weights checkpoint (conftest), plus a tiny
judge (with held-out numbers in its provenance, as `train.judge` records them) and a small atlas of synthetic audio
clips written beside it, so every output of the app is exercised.
"""
from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile as sf

from moodgen.atlas import Atlas, AtlasEntry, embedding_function
from moodgen.audio import mel_from_audio
from moodgen.checkpoint import save_component
from moodgen.config import MelParams
from moodgen.deam import load_audio_file
from moodgen.judge import JudgeConfig, JudgeNet
from moodgen.mood import PRESETS, quadrant_of
from moodgen.pipeline import MoodPipeline
from moodgen_app import server as app

ATLAS_LICENCE = "synthetic test clip"
ATLAS_SECONDS = 6.0
# held-out numbers of the tiny judge, in the layout `train.judge` writes (errors on the [0, 1] scale)
JUDGE_TEST = {"n": 88, "mae_unit_valence": 0.25, "mae_unit_arousal": 0.1, "spearman_valence": 0.56,
              "spearman_arousal": 0.94}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_atlas(folder: Path, mel_params: MelParams) -> Path:
    """atlas.npz with one synthetic 6 s chord per preset, played back from WAV files in folder/audio."""
    entries, paths, embeddings = [], [], []
    sr = mel_params.sample_rate
    t = np.arange(int(ATLAS_SECONDS * sr)) / sr
    for i, (name, (v, a)) in enumerate(PRESETS.items()):
        path = folder / "audio" / f"{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        y = sum(0.1 * np.sin(2 * np.pi * f * (i + 1) * t) for f in (220.0, 277.2, 329.6))
        sf.write(path, y.astype(np.float32), sr)
        entries.append(AtlasEntry(f"synthetic_{name}", "synthetic", ATLAS_LICENCE, v, a, quadrant_of(v, a).number))
        paths.append(str(path))
        embeddings.append(embedding_function("mel_stats16")(
            mel_from_audio(load_audio_file(path, sr), mel_params).numpy()))
    atlas = Atlas(entries, mel_params, "mel_stats16", np.stack(embeddings), audio_paths=paths)
    return atlas.save(folder / "atlas.npz")


def write_tiny_judge(folder: Path, mel_params: MelParams) -> Path:
    net = JudgeNet(JudgeConfig(n_mels=mel_params.n_mels, channels=(8, 8), kernel_sizes=(3, 3), embed_dim=4))
    provenance = {"git_sha": "test", "data_manifest_hash": "test", "steps": 0, "wall_time_s": 0.0,
                  "test": JUDGE_TEST}
    return save_component(folder / "judge.safetensors", net, mel_params, provenance)


def full_checkpoints(tiny_checkpoints: Path, folder: Path) -> Path:
    """The tiny engines plus a tiny judge and a synthetic atlas, as one checkpoints/ folder."""
    shutil.copytree(tiny_checkpoints, folder)
    write_tiny_judge(folder, MelParams())
    write_atlas(folder, MelParams())
    return folder


@contextmanager
def serve(checkpoints: Path, out_dir: Path, make_examples: bool = False,
          soundfont: Path | None = None) -> Iterator[str]:
    """Load the pipeline as `app.main` does, launch the demo without blocking, yield its URL, close it."""
    pipeline = MoodPipeline.from_checkpoint(checkpoints, device="cpu", soundfont=soundfont)
    demo = app.build_demo(pipeline, out_dir=out_dir, make_examples=make_examples)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **app.launch_options(demo))
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
