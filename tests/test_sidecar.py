"""moodgen.sidecar: a tampered sidecar is refused from its JSON alone, in one line naming the file, before any of
the clip it describes is made again."""
from __future__ import annotations

import json

import pytest

from moodgen.sidecar import MAX_SIDECAR_BYTES, read_sidecar

PLAIN = {"engine": "notes", "seed": 1, "guidance": 1.5, "checkpoint_sha256": "0" * 64, "seconds": 10.0,
         "valence": 0.1, "arousal": 0.2, "render": {"instrument": "piano", "soundfont": "TimGM6mb.sf2"}}
STREAM = PLAIN | {"seconds": 20.0, "stream": {"chunk_seconds": 10.0, "moods": [[0.1, 0.2], [0.3, 0.4]]}}
JOURNEY = PLAIN | {"seconds": 30.0, "waypoints": [[0, 0.1, 0.2], [30, -0.5, 0.5]]}
ONE_SECOND = {"seconds": 1.0, "valence": None, "arousal": None}

# a sidecar as a tamperer leaves it -> what the one line says
TAMPERED = {
    "300 stream chunks of 10 s": (STREAM | {"stream": {"chunk_seconds": 10.0, "moods": [[0.0, 0.0]] * 300}},
                                  "stream: 300 chunks of 10 s, over the 600 s limit"),
    "600 one-second extensions": (PLAIN | {"extensions": [ONE_SECOND] * 600}, "extensions: 600, over the limit of 32"),
    "extensions past the length limit": (JOURNEY | {"extensions": [ONE_SECOND | {"seconds": 300.0}] * 2},
                                         "the clip it describes lasts 630 s, over the 600 s limit"),
    "2,000 waypoints": (JOURNEY | {"waypoints": [[i / 4, 0, 0] for i in range(2000)]},
                        "waypoints: a journey needs at least two .* and at most 1000, got 2000"),
    "render a list": (PLAIN | {"render": ["piano"]}, "render must be dict or absent, got"),
    "stream a list": (PLAIN | {"stream": [1, 2]}, "stream must be dict or absent"),
    "stream without chunk length": (STREAM | {"stream": {"moods": [[0, 0]]}}, "chunk_seconds must be a number"),
    "a chunk's mood a string": (STREAM | {"stream": {"chunk_seconds": 1.0, "moods": ["happy"]}},
                                "stream chunk 0: its mood must be \\[valence, arousal\\]"),
    "an extension a number": (PLAIN | {"extensions": [5]}, "extension 0 must be a dict"),
    "an extension's seconds a string": (PLAIN | {"extensions": [ONE_SECOND | {"seconds": "x"}]},
                                        "extension 0 seconds must be a number"),
    "seed a word": (PLAIN | {"seed": "abc"}, "seed must be an integer"),
    "seconds a boolean": (PLAIN | {"seconds": True}, "seconds must be a number in \\[1, 30\\], got True"),
    "engine a number": (PLAIN | {"engine": 3}, "engine must be a string"),
    "instrument a list": (PLAIN | {"render": {"instrument": ["piano"]}}, "instrument must be str or absent"),
    "a waypoint a word": (JOURNEY | {"waypoints": [[0, 0, 0], "x"]}, "waypoint 2 must be"),
}


def write(tmp_path, params) -> object:
    path = tmp_path / "clip.json"
    path.write_text(json.dumps(params) if not isinstance(params, str) else params)
    return path


@pytest.mark.parametrize("case", list(TAMPERED))
def test_a_tampered_sidecar_is_one_line_naming_the_file_before_any_work(tmp_path, case):
    params, message = TAMPERED[case]
    path = write(tmp_path, params)
    with pytest.raises(ValueError, match=message) as refused:
        read_sidecar(path)
    assert str(refused.value).startswith(f"{path}: ") and "\n" not in str(refused.value)
    assert len(str(refused.value)) < 300 + len(str(path))


@pytest.mark.parametrize("text, message", [
    ('{"a": ' * 10_000 + "1" + "}" * 10_000, "JSON nested 10000 deep"),  # was a RecursionError traceback
    (" " * (MAX_SIDECAR_BYTES + 1), f"over the {MAX_SIDECAR_BYTES}-byte limit"),
    ("[1, 2]", "not a moodgen sidecar"),
])
def test_a_sidecar_too_deep_or_too_long_is_refused_before_it_is_parsed(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_sidecar(write(tmp_path, text))


@pytest.mark.parametrize("params", [PLAIN, STREAM, JOURNEY, JOURNEY | {"extensions": [ONE_SECOND] * 32}])
def test_a_sidecar_within_the_limits_is_read(tmp_path, params):
    assert read_sidecar(write(tmp_path, params)) == params
