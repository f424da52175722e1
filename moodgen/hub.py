"""Where a checkpoints folder comes from: a local folder, else a snapshot of the Hugging Face Hub repo named by
$MOODGEN_HF_REPO."""
from __future__ import annotations

import os
from pathlib import Path

from moodgen.engines import engine_classes


class CheckpointNotFound(FileNotFoundError):
    pass


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
