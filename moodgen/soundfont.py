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
from pathlib import Path
from typing import BinaryIO

# pdta record layouts (SoundFont 2.04, section 7), in file order
RECORDS = {b"phdr": "<20sHHHIII", b"pbag": "<HH", b"pmod": "<HHhHH", b"pgen": "<HH", b"inst": "<20sH",
           b"ibag": "<HH", b"imod": "<HHhHH", b"igen": "<HH", b"shdr": "<20sIIIIIBbHH"}
INSTRUMENT_GEN, SAMPLE_GEN = 41, 53  # the generators that point at an instrument / a sample
SAMPLE_PADDING = 46  # zero points the specification puts after every sample; interpolation may read them
COMPRESSED = 0x30  # sampleType bits of an .sf3 sample (Ogg Vorbis), as tinysoundfont reads them


class SoundfontFormatError(ValueError):
    """The bytes are not a well-formed SoundFont 2 file: one line saying what is wrong."""


class UncuttableError(SoundfontFormatError):
    """A well-formed soundfont this module cannot cut down (an .sf3: its samples are compressed)."""


def file_chunks(f: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(id, data offset, size) of each RIFF chunk in bytes start..end of the file `f`, reading only their headers.

    A chunk must lie inside start..end and have an even size: tinysoundfont reads chunks without RIFF's pad byte,
    so an odd size would make it read other chunks than these."""
    while start + 8 <= end:
        f.seek(start)
        header = f.read(8)
        cid, size = header[:4], struct.unpack("<I", header[4:])[0]
        if size & 1 or start + 8 + size > end:
            raise SoundfontFormatError(f"chunk {cid!r} at byte {start}: its size {size} is odd or runs past its end")
        yield cid, start + 8, size
        start += 8 + size


def chunk(cid: bytes, body: bytes) -> bytes:
    return cid + struct.pack("<I", len(body)) + body + (b"\0" if len(body) & 1 else b"")


def only(found: dict[bytes, tuple[int, int]], cid: bytes, where: tuple[int, int]) -> None:
    """Record a chunk that may appear once: with two, tinysoundfont and this module could read different ones."""
    if cid in found:
        raise SoundfontFormatError(f"two {cid.decode('latin-1')!r} chunks")
    found[cid] = where


def read_tables(f: BinaryIO) -> tuple[bytes, dict[bytes, list[tuple]], tuple[int, int]]:
    """The INFO list, the pdta tables as record tuples, and where the 16-bit sample data lies in `f` (offset,
    bytes); the samples themselves are not read. Every record index is checked (`check_tables`), so a file read
    here without error cannot send tinysoundfont's loader, which trusts them, outside its tables."""
    f.seek(0)
    header = f.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"sfbk":
        raise SoundfontFormatError("not a SoundFont 2 file (no RIFF sfbk header)")
    end = 8 + struct.unpack("<I", header[4:8])[0]
    if end > f.seek(0, 2):
        raise SoundfontFormatError(f"the RIFF chunk claims {end} bytes; the file has {f.tell()}")
    lists: dict[bytes, tuple[int, int]] = {}
    for cid, off, size in file_chunks(f, 12, end):
        if cid == b"LIST" and size >= 4:
            f.seek(off)
            only(lists, f.read(4), (off + 4, size - 4))
    if not {b"INFO", b"sdta", b"pdta"} <= lists.keys():
        raise SoundfontFormatError("a SoundFont 2 file needs INFO, sdta and pdta lists")
    samples: dict[bytes, tuple[int, int]] = {}
    for cid, off, size in file_chunks(f, lists[b"sdta"][0], sum(lists[b"sdta"])):
        only(samples, cid, (off, size))

    def read(where: tuple[int, int]) -> bytes:
        f.seek(where[0])
        return f.read(where[1])

    tables: dict[bytes, list[tuple]] = {}
    pdta = read(lists[b"pdta"])
    for cid, off, size in file_chunks(io.BytesIO(pdta), 0, len(pdta)):
        if cid in RECORDS:
            width = struct.calcsize(RECORDS[cid])
            if size % width or not size:
                raise SoundfontFormatError(f"the {cid.decode()} table is {size} bytes, not whole {width}-byte records")
            only(tables, cid, (off, size))
    if tables.keys() != RECORDS.keys() or b"smpl" not in samples:
        raise SoundfontFormatError("pdta tables or the smpl chunk missing")
    records = {cid: list(struct.iter_unpack(RECORDS[cid], pdta[off:off + size]))
               for cid, (off, size) in tables.items()}
    check_tables(records, samples[b"smpl"][1])
    return read(lists[b"INFO"]), records, samples[b"smpl"]


def check_tables(t: dict[bytes, list[tuple]], smpl_bytes: int) -> None:
    """SoundfontFormatError unless every index the records hold stays inside the table it points into: zone ranges
    ascend and end within their bag, generator and modulator tables (each range is read up to the next record's
    start), instrument and sample numbers name a record before the terminal one, and each sample's points lie in
    the smpl chunk (16-bit points; compressed .sf3 samples are addressed in bytes)."""
    def ascending(table: bytes, field: int, into: bytes, last: int) -> None:
        previous = 0
        for i, record in enumerate(t[table]):
            if not previous <= record[field] <= last:
                raise SoundfontFormatError(f"{table.decode()} record {i}: index {record[field]} into "
                                           f"{into.decode()} is out of order or past its {last + 1} records")
            previous = record[field]

    levels = ((b"phdr", b"pbag", b"pgen", b"pmod", 3), (b"inst", b"ibag", b"igen", b"imod", 1))
    for head, bag, gen, mod, field in levels:
        ascending(head, field, bag, len(t[bag]) - 1)  # a zone reads its bag and the next one
        ascending(bag, 0, gen, len(t[gen]))
        ascending(bag, 1, mod, len(t[mod]))
    for gens, operator, into in ((b"pgen", INSTRUMENT_GEN, b"inst"), (b"igen", SAMPLE_GEN, b"shdr")):
        for i, (oper, amount) in enumerate(t[gens]):
            if oper == operator and amount >= len(t[into]) - 1:
                raise SoundfontFormatError(f"{gens.decode()} record {i}: {into.decode()} {amount} does not exist")
    for i, (_, start, end, loop_start, loop_end, *_, kind) in enumerate(t[b"shdr"][:-1]):
        if kind & COMPRESSED:
            ok = start <= end <= smpl_bytes
        else:
            ok = start <= end <= smpl_bytes // 2 and max(loop_start, loop_end) <= smpl_bytes // 2
        if not ok:
            raise SoundfontFormatError(f"shdr record {i}: sample points {start}..{end} (loop {loop_start}..{loop_end})"
                                       f" do not lie in the {smpl_bytes}-byte smpl chunk")


def checked(path: Path, programs: Iterable[int] | None = None) -> bytes | None:
    """Check the soundfont at `path` (`read_tables` checks every record index, which tinysoundfont's loader trusts:
    one bad index crashes the process) and, given `programs`, cut it down to them (`subset`; None for an .sf3).
    A malformed or unreadable file -> one ValueError naming it."""
    try:
        with path.open("rb") as f:
            if programs is not None:
                try:
                    return subset(f, programs)
                except UncuttableError:
                    pass
            read_tables(f)
            return None
    except (SoundfontFormatError, OSError) as exc:
        raise ValueError(f"soundfont: {path} is not a readable soundfont ({exc})") from None


def subset(f: BinaryIO, programs: Iterable[int], bank: int = 0) -> bytes:
    """A SoundFont 2 file holding only `bank`'s presets for `programs` (General MIDI numbers, 0-based; those the
    file lacks are left out, as playing them would fail on the whole file too), as bytes. `f` is the whole file,
    open for reading; only its tables and the kept samples are read."""
    info, t, (smpl_at, smpl_bytes) = read_tables(f)
    if any(s[9] & COMPRESSED for s in t[b"shdr"][:-1]):
        raise UncuttableError("compressed (.sf3) samples cannot be cut: their points count bytes of Vorbis")
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
            if min(loop_start, loop_end) < start:  # the loop would move with the sample to somewhere else
                raise SoundfontFormatError(f"shdr record {index}: its loop starts before the sample")
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
