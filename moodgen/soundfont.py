"""A SoundFont 2 file cut down to the presets that will be played, so a loaded copy holds only their samples.

tinysoundfont converts every sample of a soundfont to float32 when it loads it: FluidR3 GM (148 MB) takes 285 MB
per loaded copy, although the six instruments offered (`render.INSTRUMENTS`) use 13% of its sample data. The subset
keeps those presets with every zone, generator, modulator, instrument and sample they use, byte for byte, so it
plays exactly as the whole file does. The file layout is the SoundFont 2.04 specification's (RIFF "sfbk": INFO,
sdta with the 16-bit "smpl" data, pdta with nine record tables, each ending in a terminal record).
"""
from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

# pdta record layouts (SoundFont 2.04, section 7), in file order
RECORDS = {b"phdr": "<20sHHHIII", b"pbag": "<HH", b"pmod": "<HHhHH", b"pgen": "<HH", b"inst": "<20sH",
           b"ibag": "<HH", b"imod": "<HHhHH", b"igen": "<HH", b"shdr": "<20sIIIIIBbHH"}
INSTRUMENT_GEN, SAMPLE_GEN = 41, 53  # the generators that point at an instrument / a sample
SAMPLE_PADDING = 46  # zero points the specification puts after every sample; interpolation may read them


class SoundfontFormatError(ValueError):
    """The bytes are not a SoundFont 2 file this module can cut down (e.g. an .sf3 with compressed samples)."""


def file_chunks(f: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(id, data offset, size) of each RIFF chunk in bytes start..end of the file `f`, reading only their headers."""
    while start + 8 <= end:
        f.seek(start)
        header = f.read(8)
        if len(header) < 8:
            return
        cid, size = header[:4], struct.unpack("<I", header[4:])[0]
        yield cid, start + 8, size
        start += 8 + size + (size & 1)


def chunk(cid: bytes, body: bytes) -> bytes:
    return cid + struct.pack("<I", len(body)) + body + (b"\0" if len(body) & 1 else b"")


def read_tables(f: BinaryIO) -> tuple[bytes, dict[bytes, list[tuple]], tuple[int, int]]:
    """The INFO list, the pdta tables as record tuples, and where the 16-bit sample data lies in `f` (offset,
    bytes); the samples themselves are not read."""
    f.seek(0)
    header = f.read(12)
    if header[:4] != b"RIFF" or header[8:12] != b"sfbk":
        raise SoundfontFormatError("not a SoundFont 2 file (no RIFF sfbk header)")
    end = min(8 + struct.unpack("<I", header[4:8])[0], f.seek(0, 2))
    lists = {}
    for cid, off, size in file_chunks(f, 12, end):
        if cid == b"LIST":
            f.seek(off)
            lists[f.read(4)] = (off + 4, size - 4)
    if not {b"INFO", b"sdta", b"pdta"} <= lists.keys():
        raise SoundfontFormatError("a SoundFont 2 file needs INFO, sdta and pdta lists")
    samples = {cid: (off, size) for cid, off, size in file_chunks(f, lists[b"sdta"][0], sum(lists[b"sdta"]))}

    def read(where: tuple[int, int]) -> bytes:
        f.seek(where[0])
        return f.read(where[1])

    tables = {}
    pdta = read(lists[b"pdta"])
    for cid, off, size in file_chunks(io.BytesIO(pdta), 0, len(pdta)):
        if cid in RECORDS:
            width = struct.calcsize(RECORDS[cid])
            tables[cid] = [struct.unpack_from(RECORDS[cid], pdta, off + i) for i in range(0, size - width + 1, width)]
    if tables.keys() != RECORDS.keys() or b"smpl" not in samples:
        raise SoundfontFormatError("pdta tables or the smpl chunk missing")
    return read(lists[b"INFO"]), tables, samples[b"smpl"]


def subset(f: BinaryIO, programs: Iterable[int], bank: int = 0) -> bytes:
    """A SoundFont 2 file holding only `bank`'s presets for `programs` (General MIDI numbers, 0-based; those the
    file lacks are left out, as playing them would fail on the whole file too), as bytes. `f` is the whole file,
    open for reading; only its tables and the kept samples are read."""
    info, t, (smpl_at, smpl_bytes) = read_tables(f)
    wanted = set(programs)
    out: dict[bytes, list[tuple]] = {cid: [] for cid in RECORDS}
    instrument_index: dict[int, int] = {}
    sample_index: dict[int, int] = {}
    sample_data = bytearray()

    def zones(level: bytes, first: int, last: int, operator: int, add: Callable[[int], int]) -> None:
        """Copy a preset's or instrument's zones first..last-1 (`level` b"p" or b"i") with their generators and
        modulators; the generator `operator` points at the next level, whose index `add` copies and remaps."""
        bags, gens, mods = t[level + b"bag"], t[level + b"gen"], t[level + b"mod"]
        for b in range(first, last):
            out[level + b"bag"].append((len(out[level + b"gen"]), len(out[level + b"mod"])))
            out[level + b"gen"].extend((oper, add(amount) if oper == operator else amount)
                                       for oper, amount in gens[bags[b][0]:bags[b + 1][0]])
            out[level + b"mod"].extend(mods[bags[b][1]:bags[b + 1][1]])

    def add_sample(index: int) -> int:
        if index not in sample_index:
            name, start, end, loop_start, loop_end, rate, pitch, correction, link, kind = t[b"shdr"][index]
            stop = min(end + SAMPLE_PADDING, smpl_bytes // 2)
            shift = len(sample_data) // 2 - start
            f.seek(smpl_at + 2 * start)
            sample_data.extend(f.read(2 * (stop - start)))
            sample_index[index] = len(out[b"shdr"])
            out[b"shdr"].append((name, start + shift, end + shift, loop_start + shift, loop_end + shift, rate,
                                 pitch, correction, link, kind))
        return sample_index[index]

    def add_instrument(index: int) -> int:
        if index not in instrument_index:
            instrument_index[index] = len(out[b"inst"])
            out[b"inst"].append((t[b"inst"][index][0], len(out[b"ibag"])))
            zones(b"i", t[b"inst"][index][1], t[b"inst"][index + 1][1], SAMPLE_GEN, add_sample)
        return instrument_index[index]

    presets = t[b"phdr"]
    for i, (name, program, preset_bank, first_bag, library, genre, morphology) in enumerate(presets[:-1]):
        if preset_bank == bank and program in wanted:
            out[b"phdr"].append((name, program, preset_bank, len(out[b"pbag"]), library, genre, morphology))
            zones(b"p", first_bag, presets[i + 1][3], INSTRUMENT_GEN, add_instrument)
    # stereo pairs stay linked only when both halves are kept
    out[b"shdr"] = [(*s[:8], sample_index.get(s[8], 0), s[9]) for s in out[b"shdr"]]
    terminals = {b"phdr": (b"EOP", 0, 0, len(out[b"pbag"]), 0, 0, 0), b"pbag": (len(out[b"pgen"]), len(out[b"pmod"])),
                 b"pmod": (0, 0, 0, 0, 0), b"pgen": (0, 0), b"inst": (b"EOI", len(out[b"ibag"])),
                 b"ibag": (len(out[b"igen"]), len(out[b"imod"])), b"imod": (0, 0, 0, 0, 0), b"igen": (0, 0),
                 b"shdr": (b"EOS", 0, 0, 0, 0, 0, 0, 0, 0, 0)}
    pdta = b"".join(chunk(cid, b"".join(struct.pack(RECORDS[cid], *r) for r in [*out[cid], terminals[cid]]))
                    for cid in RECORDS)
    body = (b"sfbk" + chunk(b"LIST", b"INFO" + info) + chunk(b"LIST", b"sdta" + chunk(b"smpl", sample_data))
            + chunk(b"LIST", b"pdta" + pdta))
    return chunk(b"RIFF", body)
