"""A seeded mutator of a small valid SoundFont 2, run in a child process: `python -m tests.soundfont_fuzz FIRST COUNT
FOLDER` loads cases FIRST..FIRST+COUNT-1 with `render.SoundfontRenderer` and plays a note on every accepted one.

It prints one line per case: `N loaded`, `N refused` (one ValueError line naming the file) or `N error TYPE: ...`
(any other exception). A crash of tinysoundfont kills the process, so the parent sees a non-zero exit status and
the case after the last line printed. The mutations aim at the record indices: fields of pdta records set to the
edges of the tables they point into, chunk sizes changed, chunks dropped or doubled (the parents' sizes fixed so the
damage gets past the RIFF walk), bytes overwritten, the file cut short.
"""
from __future__ import annotations

import random
import struct
import sys
from pathlib import Path

from moodgen import render, soundfont

SR = 22050
PROGRAMS = (0, 11)  # two presets of the bundled soundfont, so the preset table has an order to get wrong


def base_font() -> bytes:
    with render.bundled_soundfont().open("rb") as f:
        return soundfont.subset(f, PROGRAMS)


def chunks(font: bytes | bytearray, start: int = 12, end: int | None = None, parents: tuple[int, ...] = (4,)
           ) -> list[tuple[bytes, int, int, tuple[int, ...]]]:
    """(id, header offset, size, offsets of the size fields of its parents) of every whole chunk, LIST contents
    too."""
    end = len(font) if end is None else end
    out = []
    while start + 8 <= end:
        cid, size = bytes(font[start:start + 4]), struct.unpack_from("<I", font, start + 4)[0]
        if start + 8 + size > end:  # damaged by an earlier mutation: the walk stops
            break
        out.append((cid, start, size, parents))
        if cid == b"LIST":
            out += chunks(font, start + 12, min(start + 8 + size, end), (*parents, start + 4))
        start += 8 + size + (size & 1)
    return out


def resize(font: bytearray, parents: tuple[int, ...], delta: int) -> None:
    for at in parents:
        struct.pack_into("<I", font, at, (struct.unpack_from("<I", font, at)[0] + delta) % 2**32)


def edge(rng: random.Random, lengths: list[int], bits: int) -> int:
    """A value at the edge of some table (its length, one either side) or of the field, or anything."""
    n = rng.choice(lengths)
    return rng.choice([0, 1, n - 1, n, n + 1, 2 ** bits - 1, 2 ** (bits - 1), rng.randrange(2 ** bits)]) % 2 ** bits


def mutate(font: bytearray, rng: random.Random) -> None:
    layout = chunks(font)
    tables = [c for c in layout if c[0] in soundfont.RECORDS]
    lengths = [size // struct.calcsize(soundfont.RECORDS[cid]) for cid, _, size, _ in tables]
    kind = rng.randrange(7)
    if kind <= 2 and tables:  # a field of a record (not a name)
        cid, at, size, _ = rng.choice(tables)
        fmt = soundfont.RECORDS[cid]
        width = struct.calcsize(fmt)
        if size >= width:
            record = at + 8 + width * rng.randrange(size // width)
            codes = fmt[1:].replace("20s", "s")
            offset, fields = 0, []
            for code in codes:
                step = 20 if code == "s" else struct.calcsize("<" + code)
                if code != "s":
                    fields.append((offset, code))
                offset += step
            offset, code = rng.choice(fields)
            bits = 8 * struct.calcsize("<" + code)
            value = edge(rng, lengths, bits)
            struct.pack_into("<" + code.upper(), font, record + offset, value)  # as unsigned bits
    elif kind == 3 and layout:  # a chunk's size
        cid, at, size, _ = rng.choice(layout)
        struct.pack_into("<I", font, at + 4, rng.choice([0, 1, size - 1, size + 1, size + 2, size - 2,
                                                         size + 38, 2**32 - 1, rng.randrange(2**32)]) % 2**32)
    elif kind == 4 and layout:  # a chunk dropped or doubled, its parents' sizes fixed
        cid, at, size, parents = rng.choice(layout)
        whole = bytes(font[at:at + 8 + size + (size & 1)])
        if rng.random() < 0.5:
            del font[at:at + len(whole)]
            resize(font, parents, -len(whole))
        else:
            font[at:at] = whole
            resize(font, parents, len(whole))
    elif kind == 5 and font:  # bytes overwritten
        at = rng.randrange(len(font))
        font[at:at + rng.randint(1, 8)] = rng.randbytes(rng.randint(1, 8))
    elif font:  # cut short
        del font[rng.randrange(len(font)):]


def play(renderer: render.SoundfontRenderer) -> None:
    loaded = renderer.borrow()
    for program in PROGRAMS:
        try:
            loaded.synth.program_select(0, loaded.sfid, 0, program)
        except RuntimeError:
            continue
        for pitch in (21, 60, 108):
            loaded.synth.noteon(0, pitch, 100)
        loaded.synth.generate(SR // 10)
        loaded.synth.notes_off()
        loaded.synth.generate(SR // 10)


def main(first: int, count: int, folder: Path) -> None:
    base = base_font()
    for case in range(first, first + count):
        rng = random.Random(case)
        font = bytearray(base)
        for _ in range(rng.choice([1, 1, 2, 3])):
            mutate(font, rng)
        path = folder / f"case-{case}.sf2"
        path.write_bytes(bytes(font))
        try:
            play(render.SoundfontRenderer(SR, path, programs=PROGRAMS))
            outcome = "loaded"
        except ValueError as exc:
            line = str(exc)
            ok = "\n" not in line and str(path) in line
            outcome = f"refused: {line}" if ok else f"error ValueError not one line naming the file: {line!r}"
        except Exception as exc:  # noqa: BLE001 - every other exception is a finding, reported to the parent
            outcome = f"error {type(exc).__name__}: {exc}"
        path.unlink()
        print(case, outcome, flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
