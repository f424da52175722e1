"""Property-based: any input to `MoodPipeline.generate` or to `python -m moodgen generate` either makes a clip or is
refused with one short line naming a field that was given an odd value; never another exception, never a
traceback."""
from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from moodgen.__main__ import main as cli
from moodgen.pipeline import MoodPipeline

FIELDS = ("valence", "arousal", "seconds", "seed", "steps", "guidance", "engine", "key")
# Valid values kept small (short clips, few steps) so that examples which succeed stay fast.
VALID = {
    "valence": st.floats(-1, 1), "arousal": st.floats(-1, 1), "seconds": st.floats(1, 2),
    "seed": st.integers(0, 2**31 - 1), "steps": st.integers(1, 3), "guidance": st.floats(0, 10),
    "engine": st.sampled_from(["notes", "mel"]), "key": st.sampled_from([None, "C major", "F# minor"]),
}
ODD_TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["nan", "-inf", "1e400", "-0", "1.5", " 2 ", "0x10",
                                                             "C  major", "c major", "", "x" * 5000]))
ODD = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), ODD_TEXT,
                st.lists(st.integers(), max_size=2), st.binary(max_size=4), st.builds(np.float32, st.floats(-2, 2)),
                st.builds(object))
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def requests(draw, odd_values):
    """(keyword arguments, the fields given odd values); each field is odd with probability 1/3."""
    kwargs, odd = {}, set()
    for field in FIELDS:
        if draw(st.integers(0, 2)) == 0:
            kwargs[field] = draw(odd_values)
            odd.add(field)
        else:
            kwargs[field] = draw(VALID[field])
    return kwargs, odd


def assert_one_line_naming(message: str, odd: set[str]) -> None:
    assert "\n" not in message.strip() and len(message) < 300, message
    assert odd and any(field in message for field in odd), (message, odd)


@pytest.fixture(scope="module")
def pipe(tiny_checkpoints):
    return MoodPipeline.from_checkpoint(tiny_checkpoints, device="cpu", cache_bytes=0)


# Inputs that once raised something else than a ValueError naming the field
BASE = {"valence": 0.0, "arousal": 0.0, "seconds": 1.0, "seed": 0, "steps": 1, "guidance": 1.0, "engine": "notes",
        "key": None}


@SETTINGS
@given(request=requests(ODD))
@example(request=(BASE | {"engine": []}, {"engine"}))
@example(request=(BASE | {"steps": float("inf")}, {"steps"}))
@example(request=(BASE | {"key": 7}, {"key"}))
def test_generate_makes_a_clip_or_names_the_field(pipe, request):
    kwargs, odd = request
    try:
        gen = pipe.generate(**kwargs)
    except ValueError as exc:
        assert_one_line_naming(str(exc), odd)
        return
    assert len(gen.audio) == round(gen.seconds * gen.sample_rate) and np.isfinite(gen.audio).all()
    assert -1 <= gen.valence <= 1 and math.isfinite(gen.guidance)


@SETTINGS
@given(request=requests(ODD_TEXT))
@example(request=(BASE | {"steps": "INF"}, {"steps"}))
@example(request=(BASE | {"arousal": "-1e-3"}, set()))
def test_the_cli_makes_files_or_prints_one_line_naming_the_field(tiny_checkpoints, tmp_path_factory, request):
    kwargs, odd = request
    argv = ["generate", "--checkpoint", str(tiny_checkpoints), "--force",
            "--out", str(tmp_path_factory.mktemp("cli") / "clip.wav")]
    # --field=value: argparse would take a value such as "-1e-3" for an option in "--field value"
    argv += [f"--{field}={value}" for field, value in kwargs.items() if value is not None]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli(argv)
    if status == 0:
        assert err.getvalue() == "" and all(Path(p).is_file() for p in out.getvalue().split())
    else:
        assert status == 2 and out.getvalue() == "" and err.getvalue().startswith("error: ")
        assert_one_line_naming(err.getvalue(), odd)
