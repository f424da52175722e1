"""Writing files at the edges: several files appear together or not at all, never half-written."""
from __future__ import annotations

import os
import threading
from pathlib import Path


def write_together(contents: dict[Path, bytes], overwrite: bool = False) -> list[Path]:
    """Write each {path: bytes} to a temporary name beside it, then rename them all into place.

    A failure leaves none of the new files behind (a rename that fails takes back those already made); a folder in
    the way is refused, and so are existing files unless `overwrite`. Returns the paths, in the order given."""
    paths = [Path(p) for p in contents]
    folders = [str(p) for p in paths if p.is_dir()]
    if folders:
        raise IsADirectoryError(f"{', '.join(folders)} {'is a folder' if len(folders) == 1 else 'are folders'}")
    if not overwrite:
        existing = [str(p) for p in paths if p.exists()]
        if existing:
            raise FileExistsError(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}")
    temps: list[Path] = []
    placed: list[Path] = []
    try:
        for path, data in zip(paths, contents.values()):
            tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")  # one per writer
            temps.append(tmp)
            tmp.write_bytes(data)
        for tmp, path in zip(temps, paths):
            os.replace(tmp, path)
            placed.append(path)
    except BaseException:
        for path in placed:
            path.unlink(missing_ok=True)
        raise
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
    return paths
