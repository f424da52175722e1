"""moodgen.soundfont: a SoundFont 2 cut down to the programs played sounds as the whole file does."""
from __future__ import annotations

import io
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import tinysoundfont

from moodgen import render, soundfont

SR = 22050
PROGRAMS = (render.INSTRUMENTS["piano"], render.INSTRUMENTS["strings"])
ROOT = Path(__file__).resolve().parents[1]


def play(font: bytes | str, program: int) -> np.ndarray:
    """Two octaves of notes, each overlapping the next, on `program` -> (S, 2) float32."""
    synth = tinysoundfont.Synth(samplerate=SR)
    synth.program_select(0, synth.sfload(font), 0, program)
    out = []
    for pitch in range(48, 73, 2):
        synth.noteon(0, pitch, 90)
        out.append(np.frombuffer(synth.generate(SR // 8), np.float32))
        synth.noteoff(0, pitch - 2)
    out.append(np.frombuffer(synth.generate(SR), np.float32))
    return np.concatenate(out).reshape(-1, 2)


def test_a_subset_plays_its_programs_as_the_whole_file_does_and_holds_less():
    whole = render.bundled_soundfont()
    with whole.open("rb") as f:
        cut = soundfont.subset(f, PROGRAMS)
    assert len(cut) < whole.stat().st_size / 3
    for program in PROGRAMS:
        expected, got = play(str(whole), program), play(cut, program)
        assert np.abs(expected).max() > 0.01
        np.testing.assert_allclose(got, expected, atol=1e-5)  # sample positions move: float rounding only
    synth = tinysoundfont.Synth(samplerate=SR)
    with pytest.raises(RuntimeError):  # a program left out is not there
        synth.program_select(0, synth.sfload(cut), 0, render.INSTRUMENTS["harp"])


def test_what_is_not_a_soundfont_2_is_refused(tmp_path):
    with pytest.raises(soundfont.SoundfontFormatError, match="RIFF sfbk"):
        soundfont.subset(io.BytesIO(b"OggS" + bytes(100)), PROGRAMS)
    riff_without_tables = b"RIFF" + (4).to_bytes(4, "little") + b"sfbk"
    with pytest.raises(soundfont.SoundfontFormatError, match="INFO, sdta and pdta"):
        soundfont.subset(io.BytesIO(riff_without_tables), PROGRAMS)


def test_a_renderer_loads_only_its_programs_of_a_soundfont_other_than_the_bundled_one(tmp_path):
    other = tmp_path / "Other_GM.sf2"
    shutil.copy(render.bundled_soundfont(), other)
    cut = render.SoundfontRenderer(SR, other)
    whole = render.SoundfontRenderer(SR, render.bundled_soundfont())
    assert cut.nbytes < whole.nbytes / 2 and cut.sha256 == whole.sha256  # the file's hash, as the JSON records
    pm = pretty_midi.PrettyMIDI()
    pm.instruments.append(pretty_midi.Instrument(0))
    pm.instruments[0].notes = [pretty_midi.Note(80, p, i * 0.2, i * 0.2 + 0.5) for i, p in enumerate(range(40, 90, 5))]
    np.testing.assert_allclose(cut.render(pm), whole.render(pm), atol=1e-5)
    with pytest.raises(ValueError, match="program 30 is not in soundfont Other_GM.sf2"):
        cut.render(render.level_reference(30))


FUZZ_CHILDREN, FUZZ_CASES = 3, 200  # 600 mutated soundfonts; each child loads its share, in parallel


def test_no_mutated_soundfont_crashes_the_process_or_escapes_as_anything_but_one_line(tmp_path):
    """tinysoundfont's loader trusts the record indices: before they were checked, 13 of 988 fuzzed files killed
    the process (exit 139) and 46 ended in struct.error / IndexError tracebacks. Each child runs a share of the
    seeded cases (tests/soundfont_fuzz.py), so a crash fails this test, naming the case, instead of killing pytest."""
    children = []
    for i in range(FUZZ_CHILDREN):
        folder = tmp_path / str(i)
        folder.mkdir()
        children.append(subprocess.Popen([sys.executable, "-m", "tests.soundfont_fuzz", str(i * FUZZ_CASES),
                                           str(FUZZ_CASES), str(folder)], cwd=ROOT, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
    lines = []
    for child in children:
        out, err = child.communicate(timeout=120)
        done = out.splitlines()
        last = done[-1].split()[0] if done else "none"
        assert child.returncode == 0, f"a soundfont crashed the process after case {last}: {err[-2000:]}"
        lines += done
    assert len(lines) == FUZZ_CHILDREN * FUZZ_CASES
    assert not [line for line in lines if " error " in line]
    outcomes = [line.split()[1].rstrip(":") for line in lines]
    assert outcomes.count("loaded") > 50 and outcomes.count("refused") > 50  # the mutations reach both ways


def test_a_soundfont_without_info_or_with_a_bag_index_past_its_table_is_refused_in_one_line(tmp_path):
    """A file the cutter refused (no INFO list) went to tinysoundfont whole, which reads past the pbag table when a
    preset's bag index points there: exit 139. Now both files are refused, in a child process in case one is not."""
    whole = bytearray(soundfont.subset(io.BytesIO(render.bundled_soundfont().read_bytes()), PROGRAMS))
    struct.pack_into("<H", whole, whole.index(b"phdr") + 8 + 24, 60000)  # the first preset's first bag
    info_at = whole.index(b"LIST")
    without_info = whole[:info_at] + whole[info_at + 8 + int.from_bytes(whole[info_at + 4:info_at + 8], "little"):]
    without_info[4:8] = (len(without_info) - 8).to_bytes(4, "little")
    paths = [tmp_path / "Bag.sf2", tmp_path / "NoInfo.sf2"]
    for path, font in zip(paths, (whole, without_info)):
        path.write_bytes(bytes(font))
    code = ("import sys; from moodgen import render\nfor path in sys.argv[1:]:\n try:\n"
            "  render.SoundfontRenderer(22050, path)\n except ValueError as exc:\n  print(exc)")
    done = subprocess.run([sys.executable, "-c", code, *map(str, paths)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(str(path) in line for path, line in zip(paths, lines))
    assert "phdr record 0: index 60000 into pbag" in lines[0] and "needs INFO" in lines[1]
