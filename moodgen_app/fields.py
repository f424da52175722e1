"""The number boxes, checked by the library as they are typed.

The page's script (static/page.js) holds a box's text back from Gradio until `check_field` finds it valid: until
then Gradio neither clamps it nor sends it in a request, and the library's one-line message (naming the field and
its range) shows under the box. The checks are the library's own (`Limits`, `validate_mood`), the ones every
request goes through again.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from moodgen.config import Limits, shown
from moodgen.mood import validate_mood
from moodgen_app.wiring import Wiring

# a number box's elem_id -> the library's check of its value (the page's boxes are named as the library's fields)
CHECKS: dict[str, Callable[[Limits, Any], Any]] = {
    "valence": lambda limits, value: validate_mood(value, 0.0),
    "arousal": lambda limits, value: validate_mood(0.0, value),
    "duration": lambda limits, value: limits.seconds(value, field="duration"),
    "seed": Limits.seed,
    "steps": Limits.steps,
    "guidance": Limits.guidance,
}


def field_problem(limits: Limits, field: Any, value: Any) -> str:
    """'' when `value` is valid for the number box `field`, else the library's message."""
    if field not in CHECKS:
        return f"field must be one of {', '.join(CHECKS)}, got {shown(field)}"
    try:
        CHECKS[field](limits, value)
    except ValueError as exc:
        return str(exc)
    return ""


def wire_fields(w: Wiring) -> None:
    def check_field(field: str, value: float | str) -> str:
        """'' when a number box's value is valid, else why not (one line naming the field and its range)."""
        return field_problem(w.pipeline.limits, field, value)

    gr.api(check_field, api_name="check_field", queue=False, api_visibility="undocumented")
