"""The number boxes, checked by the library as they are typed.

The page's script (static/page.js) holds a box's text back from Gradio until `check_field` finds it valid: until
then Gradio neither clamps it nor sends it in a request, and the library's one-line message (naming the field and
its range) shows under the box. The checks are the library's own (`Settings` through `MoodPipeline.settings`,
`Limits`, `validate_mood`), the ones every request goes through again.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from moodgen.config import shown
from moodgen.mood import validate_mood
from moodgen.pipeline import MoodPipeline
from moodgen_app.wiring import Wiring

# a number box's elem_id -> the library's check of its value, the one every request goes through (the page's boxes
# are named as the library's fields; the mood and the duration as `read_request` checks them)
CHECKS: dict[str, Callable[[MoodPipeline, Any], Any]] = {
    "valence": lambda pipeline, value: validate_mood(value, 0.0),
    "arousal": lambda pipeline, value: validate_mood(0.0, value),
    "duration": lambda pipeline, value: pipeline.limits.seconds(value, field="duration"),
    "seed": lambda pipeline, value: pipeline.settings(seed=value),
    "steps": lambda pipeline, value: pipeline.settings(steps=value),
    "guidance": lambda pipeline, value: pipeline.settings(guidance=value),
}


def field_problem(pipeline: MoodPipeline, field: Any, value: Any) -> str:
    """'' when `value` is valid for the number box `field`, else the library's message."""
    if field not in CHECKS:
        return f"field must be one of {', '.join(CHECKS)}, got {shown(field)}"
    try:
        CHECKS[field](pipeline, value)
    except ValueError as exc:
        return str(exc)
    return ""


def wire_fields(w: Wiring) -> None:
    def check_field(field: str, value: float | str) -> str:
        """'' when a number box's value is valid, else why not (one line naming the field and its range)."""
        return field_problem(w.pipeline, field, value)

    gr.api(check_field, api_name="check_field", queue=False, api_visibility="undocumented")
