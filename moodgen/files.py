"""Writing files at the edges: several files appear together or not at all, never half-written."""
from __future__ import annotations

import os
from pathlib import Path


def write_together(contents: dict[Path, bytes], overwrite: bool = False) -> list[Path]:
    """Write each {path: bytes} to a temporary name beside it, then rename them all into place.

    A failure before the renames leaves no file behind; existing files are refused unless `overwrite`.
    Returns the paths, in the order given."""
    paths = [Path(p) for p in contents]
    if not overwrite:
        existing = [str(p) for p in paths if p.exists()]
        if existing:
            raise FileExistsError(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}")
    temps: list[Path] = []
    try:
        for path, data in zip(paths, contents.values()):
            tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
            temps.append(tmp)
            tmp.write_bytes(data)
        for tmp, path in zip(temps, paths):
            os.replace(tmp, path)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
    return paths
