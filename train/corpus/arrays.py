"""The cache's array files and their compact codes.

Arrays are .npy files written as a stream of row blocks and read back by rows with plain file reads, never through
a memory map, so joining gigabytes of clips keeps the process small (mapped pages count as its resident memory).
Each file is described by its header shape, dtype and byte size; the manifest records that description and a
mismatch on disk (a deleted or truncated file) is caught before anything reads the rows.

Mels are 8-bit: q = round((x + 1) * 127.5) for a normalized log-mel x in [-1, 1], read back as (q - 127.5) / 127.5.
The step is 2/255 of the range, 0.39 dB at MelParams' default 100 dB span (error at most 0.2 dB); -1 (the dB floor,
silence) and 1 come back exactly. Audio is int16 PCM in FLAC, lossless and about a third of raw on piano renders.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

MEL_CODE = {"dtype": "uint8", "zero": 127.5, "scale": 127.5}  # x = (q - zero) / scale
FLAC_RATE = 22050  # nominal: FLAC needs a rate; the samples are at the cache's MelParams.sample_rate


def quantize_mel(mel: np.ndarray) -> np.ndarray:
    """(T, M) normalized log-mel in [-1, 1] (values outside are clipped) -> (T, M) uint8."""
    x = np.asarray(mel, dtype=np.float32)
    return np.clip(np.rint((x + 1.0) * MEL_CODE["scale"]), 0, 255).astype(np.uint8)


class DequantizedRows:
    """An 8-bit mel array whose slices read back as float32: `rows[a:b]` -> (b - a, M) float32 in [-1, 1].

    `raw` is the (N, M) uint8 array itself (memory-mapped): to move the whole cache to a device at a quarter of
    float32's size, copy `raw` and dequantize there as (raw - zero) / scale.
    """

    def __init__(self, raw: np.ndarray, zero: float, scale: float):
        self.raw, self.zero, self.scale = raw, zero, scale

    def __getitem__(self, key: Any) -> np.ndarray:
        return (self.raw[key].astype(np.float32) - self.zero) / self.scale

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.raw.shape

    @property
    def dtype(self) -> np.dtype:
        """What slices read back as (the device crop sampler allocates its copy with it)."""
        return np.dtype(np.float32)


def encode_flac(pcm: np.ndarray) -> np.ndarray:
    """(S,) int16 -> (n_bytes,) uint8, one FLAC stream."""
    buf = io.BytesIO()
    sf.write(buf, np.asarray(pcm, dtype=np.int16), FLAC_RATE, format="FLAC", subtype="PCM_16")
    return np.frombuffer(buf.getvalue(), dtype=np.uint8)


def _flac(data: np.ndarray) -> sf.SoundFile:
    return sf.SoundFile(io.BytesIO(np.asarray(data, dtype=np.uint8).tobytes()))


def decode_flac(data: np.ndarray, start: int = 0, length: int | None = None) -> np.ndarray:
    """(n_bytes,) uint8, one FLAC stream -> (S,) int16, or its `length` samples from `start` (decoding only those)."""
    with _flac(data) as f:
        f.seek(min(start, f.frames))
        return f.read(-1 if length is None else length, dtype="int16")


def flac_length(data: np.ndarray) -> int:
    """Samples in one FLAC stream, from its header."""
    with _flac(data) as f:
        return f.frames


def _read_header(f) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(f)
    if fortran:
        raise ValueError("Fortran-ordered array")
    return shape, dtype


def describe(path: Path) -> dict[str, Any]:
    """{"shape", "dtype", "bytes"} of a .npy file, from its header and size; ValueError if it is not one."""
    with open(path, "rb") as f:
        shape, dtype = _read_header(f)
    return {"shape": list(shape), "dtype": dtype.str, "bytes": path.stat().st_size}


def mismatch(path: Path, recorded: dict[str, Any]) -> str | None:
    """Why the file at `path` is not the array `recorded` describes, or None when it is."""
    try:
        found = describe(path)
    except FileNotFoundError:
        return f"{path.name} is missing"
    except (OSError, ValueError) as exc:
        return f"{path.name} is unreadable ({exc})"
    if found != recorded:
        return f"{path.name} is {found}, the manifest records {recorded}"
    return None


class RowWriter:
    """Writes a .npy of a shape known in advance, block after block along axis 0; `append` returns the block's
    (offset, length) and `close` refuses a file whose row count falls short of the header."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: np.dtype):
        self.path, self.shape, self.dtype, self.rows = path, tuple(shape), np.dtype(dtype), 0
        self.f = open(path, "wb")
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}
        np.lib.format.write_array_header_1_0(self.f, header)

    def append(self, block: np.ndarray) -> tuple[int, int]:
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if block.shape[1:] != self.shape[1:] or self.rows + len(block) > self.shape[0]:
            raise ValueError(f"{self.path.name}: block {block.shape} does not fit rows {self.rows}.. of {self.shape}")
        self.f.write(block.tobytes())
        self.rows += len(block)
        return self.rows - len(block), len(block)

    def close(self) -> None:
        self.f.close()
        if self.rows != self.shape[0]:
            raise ValueError(f"{self.path.name}: wrote {self.rows} rows, the header says {self.shape[0]}")

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.f.close()


class RowReader:
    """Rows of a .npy by (offset, length), with plain reads."""

    def __init__(self, path: Path):
        self.path = path
        self.f = open(path, "rb")
        self.shape, self.dtype = _read_header(self.f)
        self.data_start = self.f.tell()
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def rows(self, offset: int, length: int) -> np.ndarray:
        self.f.seek(self.data_start + offset * self.row_bytes)
        data = self.f.read(length * self.row_bytes)
        if len(data) != length * self.row_bytes:
            raise ValueError(f"{self.path}: rows {offset}..{offset + length} past the end of the file")
        return np.frombuffer(data, dtype=self.dtype).reshape(length, *self.shape[1:])

    def close(self) -> None:
        self.f.close()
