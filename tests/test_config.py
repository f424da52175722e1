"""MelParams / RollParams validation and the dict round trip every checkpoint relies on."""
import dataclasses

import numpy as np
import pytest

from moodgen.config import Limits, MelParams, RollParams, bounded_json, from_dict, from_json, to_dict, to_json


@pytest.mark.parametrize("kwargs, message", [
    ({"hop_length": 0}, "hop_length"),
    ({"hop_length": 2048}, "hop_length"),
    ({"fmin": -1.0}, "fmin"),
    ({"fmin": 500.0, "fmax": 400.0}, "fmin"),
    ({"fmax": 20000.0}, "fmax"),
    ({"n_mels": 0}, "n_mels"),
    ({"n_mels": 514}, "n_mels"),
    ({"db_min": 10.0, "db_max": 10.0}, "db_min"),
])
def test_mel_params_rejects_invalid(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MelParams(**kwargs)


def test_mel_params_defaults_and_derived_numbers():
    p = MelParams()
    assert p.n_freqs == p.n_fft // 2 + 1 == 513
    assert p.frames_per_second == pytest.approx(22050 / 256)
    # centered STFT: T = S // hop + 1
    assert p.frames_for(10.0) == 220500 // 256 + 1


def test_mel_params_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        MelParams().n_mels = 64


@pytest.mark.parametrize("kwargs", [{"fps": 0}, {"n_keys": 0}, {"lowest_pitch": 100}, {"lowest_pitch": -1}])
def test_roll_params_rejects_invalid(kwargs):
    with pytest.raises(ValueError, match="RollParams"):
        RollParams(**kwargs)


@pytest.mark.parametrize("config", [MelParams(), MelParams(n_mels=80, hop_length=128, db_min=-80.0), RollParams(fps=8)])
def test_dict_and_json_round_trip(config):
    assert from_dict(type(config), to_dict(config)) == config
    assert from_json(type(config), to_json(config)) == config


def test_from_dict_fills_defaults_for_missing_fields():
    assert from_dict(MelParams, {"n_mels": 64}) == MelParams(n_mels=64)


def test_from_dict_refuses_unknown_fields():
    data = dict(to_dict(MelParams()), n_mel_bands=64)
    with pytest.raises(ValueError, match="n_mel_bands"):
        from_dict(MelParams, data)


def test_from_dict_still_validates():
    with pytest.raises(ValueError, match="hop_length"):
        from_dict(MelParams, {"hop_length": -5})


@dataclasses.dataclass(frozen=True)
class Typed:
    count: int = 1
    scale: float = 1.0
    name: str = "x"
    flag: bool = False
    sizes: tuple[int, ...] = (1, 2)
    pair: tuple[float, str] = (0.5, "a")
    maybe: int | None = None


@pytest.mark.parametrize("data, value", [({"count": 3}, 3), ({"scale": 2}, 2), ({"sizes": [4, 5, 6]}, (4, 5, 6)),
                                         ({"pair": [1, "b"]}, (1, "b")), ({"maybe": 7}, 7), ({"maybe": None}, None),
                                         ({"flag": True}, True)])
def test_from_dict_accepts_the_annotated_types(data, value):
    [name] = data
    assert getattr(from_dict(Typed, data), name) == value


@pytest.mark.parametrize("data, message", [
    ({"count": "3"}, "Typed.count must be int, got '3'"),
    ({"count": True}, "Typed.count must be int, got True"),
    ({"count": 1.5}, "Typed.count must be int, got 1.5"),
    ({"scale": "wide"}, "Typed.scale must be float, got 'wide'"),
    ({"flag": 1}, "Typed.flag must be bool, got 1"),
    ({"sizes": [1, "2"]}, r"Typed.sizes must be tuple\[int, \.\.\.\]"),
    ({"pair": [1.0]}, r"Typed.pair must be tuple\[float, str\]"),
    ({"maybe": "x" * 100}, r"Typed.maybe must be int \| None, got 'x{39}\.\.\.$"),
])
def test_from_dict_names_a_field_of_the_wrong_type(data, message):
    with pytest.raises(ValueError, match=message):
        from_dict(Typed, data)
    with pytest.raises(ValueError, match="Typed needs a dict of fields"):
        from_dict(Typed, [1, 2])


@pytest.mark.parametrize("value", [True, False, np.True_])
def test_booleans_are_not_numbers(value):
    """seconds=True was one second."""
    with pytest.raises(ValueError, match=f"seconds must be a number in \\[1, 30\\], got {value!r}"):
        Limits().seconds(value)
    with pytest.raises(ValueError, match="seed must be an integer"):
        Limits().seed(value)


@pytest.mark.parametrize("text, message", [
    ("[" * 17 + "]" * 17, "JSON nested 17 deep, over the limit of 16"),
    ('{"a": "' + "[" * 100 + '"}', None),  # brackets inside a string do not nest
    ("[1, 2]" + " " * 100, "106 bytes of JSON, over the 100-byte limit"),
])
def test_json_is_bounded_before_it_is_parsed(text, message):
    if message is None:
        assert bounded_json(text, 1000) == {"a": "[" * 100}
    else:
        with pytest.raises(ValueError, match=message):
            bounded_json(text, 100)
