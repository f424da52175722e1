"""A JSON sidecar read back: the clip it describes made again, exactly (the same inputs and seed give the same
audio), so that `python -m moodgen extend clip.json` can continue it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from moodgen.config import shown
from moodgen.settings import Settings


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The parameters in a JSON sidecar that `generate`, `journey` or `extend` wrote; ValueError naming the file."""
    path = Path(path)
    try:
        params = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable JSON sidecar ({type(exc).__name__})") from None
    needed = ("engine", "seed", "guidance", "checkpoint_sha256", "seconds", "valence", "arousal")
    missing = [k for k in needed if not isinstance(params, dict) or k not in params]
    if missing:
        raise ValueError(f"{path}: not a moodgen sidecar (no {', '.join(missing)})")
    return params


def remake(pipe, params: dict[str, Any], source: str = "the sidecar"):
    """The Generation `params` describes, made again with `pipe` (a MoodPipeline): its engine must be loaded with
    the very weights that made it."""
    name = params["engine"]
    if name not in pipe.engines:
        raise ValueError(f"{source}: made by engine {shown(name)}, which this checkpoint does not have "
                         f"({', '.join(pipe.engines)})")
    eng = pipe.engine(name)
    if params["checkpoint_sha256"] != eng.sha256:
        raise ValueError(f"{source}: made with other weights for engine {name!r} "
                         f"({str(params['checkpoint_sha256'])[:12]}..., loaded {eng.sha256[:12]}...)")
    played = params.get("render") or {}
    # sidecars from before Settings name the settings one by one
    asked = params.get("settings") or {
        "seed": params["seed"], "engine": name, "steps": params.get("steps"), "guidance": params["guidance"],
        "key": params.get("key"), "instrument": played.get("instrument"), "dry": played.get("mastering") == "dry",
        "soundfont": played.get("soundfont"), "loop": bool(params.get("loop"))}
    if not isinstance(asked, dict):
        raise ValueError(f"{source}: settings must be a JSON object, got {shown(asked)}")
    settings = Settings.from_record(asked)
    # the soundfont that played the notes when one of that name is here; else the default (the hash check below
    # refuses a different file)
    settings = settings.with_changes(soundfont=settings.soundfont if settings.soundfont in pipe.soundfonts else None)
    stream = params.get("stream")
    if stream:
        moods = iter([tuple(m) for m in stream["moods"]])
        live = pipe.stream(lambda: next(moods), stream["chunk_seconds"], settings)
        for _ in stream["moods"]:
            next(live)
        generation = live.close()
    elif params.get("waypoints"):
        generation = pipe.journey(params["waypoints"], settings)
    else:
        generation = pipe.generate(params["valence"], params["arousal"], params["seconds"], settings)
    if generation.render.get("soundfont_sha256") != played.get("soundfont_sha256"):
        raise ValueError(f"{source}: its notes were played on soundfont {played.get('soundfont')!r}, this pipeline "
                         f"plays {generation.render.get('soundfont')!r} (install it, or choose it with --soundfont)")
    for ext in params.get("extensions") or []:
        generation = pipe.extend(generation, ext["seconds"], ext["valence"], ext["arousal"])
    return generation
