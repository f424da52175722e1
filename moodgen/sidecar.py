"""A JSON sidecar read back: the clip it describes made again, exactly (the same inputs and seed give the same
audio), so that `python -m moodgen extend clip.json` can continue it.

A sidecar is bounded from its JSON alone before anything is made: its size and nesting, the type of every field
`remake` reads, and what making it again would cost (the waypoints, the stream's chunks, the extensions, and the
length they add up to, within `Limits`). A tampered stream claiming 300 chunks of 10 s used to cost a minute and
4.5 GB before its length was refused.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from moodgen.config import Limits, bounded_json, shown
from moodgen.journey import validate_waypoints
from moodgen.mood import validate_mood
from moodgen.settings import Settings

# A 600 s journey's sidecar (its mood curve at 4 rows a second, 1,000 waypoints) is under 200 KB
MAX_SIDECAR_BYTES = 4 << 20
NEEDED = ("engine", "seed", "guidance", "checkpoint_sha256", "seconds", "valence", "arousal")


def read_sidecar(path: str | Path, limits: Limits | None = None) -> dict[str, Any]:
    """The parameters in a JSON sidecar that `generate`, `journey` or `extend` wrote, checked (`check_sidecar`);
    ValueError, one line naming the file, for anything else."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            params = bounded_json(f.read(MAX_SIDECAR_BYTES + 1), MAX_SIDECAR_BYTES)
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{path}: not a readable JSON sidecar ({type(exc).__name__}: "
                         f"{shown(str(exc), 100)})") from None
    missing = [k for k in NEEDED if not isinstance(params, dict) or k not in params]
    if missing:
        raise ValueError(f"{path}: not a moodgen sidecar (no {', '.join(missing)})")
    try:
        check_sidecar(params, limits or Limits())
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return params


def field(params: dict[str, Any], name: str, *types: type) -> Any:
    """params[name] (None when absent) when it is None or of `types`, else ValueError naming it."""
    value = params.get(name)
    if value is not None and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)):
        kinds = " or ".join(t.__name__ for t in types)
        raise ValueError(f"{name} must be {kinds} or absent, got {shown(value)}")
    return value


def check_sidecar(params: dict[str, Any], limits: Limits) -> None:
    """ValueError naming the field unless every field `remake` reads has its type, and the clip it describes stays
    within `limits` (waypoints, stream chunks, extensions, total length), from the JSON alone."""
    for name in ("engine", "checkpoint_sha256"):
        if not isinstance(params[name], str):
            raise ValueError(f"{name} must be a string, got {shown(params[name])}")
    limits.seed(params["seed"])
    limits.guidance(params["guidance"])
    field(params, "key", str)
    field(params, "loop", bool)
    field(params, "steps", int)
    field(params, "settings", dict)  # its fields are checked as the request's are, before any work
    played = field(params, "render", dict) or {}
    for name in ("instrument", "soundfont", "soundfont_sha256"):
        field(played, name, str)
    if (stream := field(params, "stream", dict)) is not None:
        chunk = limits.chunk_seconds(stream.get("chunk_seconds"))
        moods = field(stream, "moods", list) or []
        if not 1 <= len(moods) <= limits.max_journey_seconds / chunk:
            raise ValueError(f"stream: {len(moods)} chunks of {chunk:g} s, over the "
                             f"{limits.max_journey_seconds:g} s limit" if moods else "stream: no chunks")
        for i, mood in enumerate(moods):
            if not isinstance(mood, list) or len(mood) != 2:
                raise ValueError(f"stream chunk {i}: its mood must be [valence, arousal], got {shown(mood)}")
            validate_mood(*mood)
        length = len(moods) * chunk
    elif (waypoints := field(params, "waypoints", list)) is not None:
        length = validate_waypoints(waypoints, limits)[-1][0]
    else:
        length = limits.seconds(params["seconds"])
    extensions = field(params, "extensions", list) or []
    if len(extensions) > limits.max_extensions:
        raise ValueError(f"extensions: {len(extensions)}, over the limit of {limits.max_extensions}")
    for i, ext in enumerate(extensions):
        if not isinstance(ext, dict):
            raise ValueError(f"extension {i} must be a dict of seconds, valence, arousal, got {shown(ext)}")
        length += limits.extension_seconds(ext.get("seconds"), f"extension {i} seconds")
        validate_mood(*(0.0 if ext.get(k) is None else ext[k] for k in ("valence", "arousal")))
    if length > limits.max_journey_seconds + 1e-6:
        raise ValueError(f"the clip it describes lasts {length:g} s, over the {limits.max_journey_seconds:g} s limit")


def remake(pipe, params: dict[str, Any], source: str = "the sidecar"):
    """The Generation `params` (from `read_sidecar`, so checked) describes, made again with `pipe` (a
    MoodPipeline): its engine must be loaded with the very weights that made it."""
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
