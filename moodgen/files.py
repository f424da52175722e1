"""Writing files at the edges: several files appear together or not at all, never half-written.

Renames cannot move several files at once, so a set has a commit record: its last file (a clip's JSON sidecar, the
file `extend` reads). The record is renamed into place last, and an overwritten set loses its old record before
any of its files is replaced; so at every instant a record on disk describes the files beside it, and a process
killed between two renames leaves files without a record and its temporaries. The next write of the same set
finds them by the temporaries of a writer that no longer runs, and removes them.
"""
from __future__ import annotations

import os
import re
import threading
from pathlib import Path

TEMP = re.compile(r"\.(?P<name>.+)\.(?P<pid>[0-9]+)-[0-9]+\.tmp")  # .<file name>.<pid>-<thread>.tmp


def temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")  # one per writer


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def clear_dead_writes(paths: list[Path]) -> None:
    """Remove the temporaries that writers no longer running left for `paths`; where one was the record's, that
    writer died between its renames (the record goes last), so the record-less files it placed go too."""
    names = {p.name: p for p in paths}
    dead = [t for folder in {p.parent for p in paths} if folder.is_dir() for t in folder.iterdir()
            if (m := TEMP.fullmatch(t.name)) and m["name"] in names and not running(int(m["pid"]))]
    record = paths[-1]
    if not record.exists() and any(TEMP.fullmatch(t.name)["name"] == record.name for t in dead):
        dead += paths[:-1]
    for path in dead:
        path.unlink(missing_ok=True)


def write_together(contents: dict[Path, bytes], overwrite: bool = False) -> list[Path]:
    """Write each {path: bytes} to a temporary name beside it, then rename them all into place, the last one given
    (the set's record) last.

    A failure leaves none of the new files behind (a rename that fails takes back those already made); a folder in
    the way is refused, and so are existing files unless `overwrite`. Returns the paths, in the order given."""
    paths = [Path(p) for p in contents]
    folders = [str(p) for p in paths if p.is_dir()]
    if folders:
        raise IsADirectoryError(f"{', '.join(folders)} {'is a folder' if len(folders) == 1 else 'are folders'}")
    clear_dead_writes(paths)
    if not overwrite:
        existing = [str(p) for p in paths if p.exists()]
        if existing:
            raise FileExistsError(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}")
    temps: list[Path] = []
    placed: list[Path] = []
    try:
        for path, data in zip(paths, contents.values()):
            temps.append(temp_path(path))
            temps[-1].write_bytes(data)
        paths[-1].unlink(missing_ok=True)  # an old record would describe the new files until the new one is in
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
