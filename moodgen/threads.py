"""Thread-local control of the math library's threads, for loops of tiny tensor operations.

On x86, torch does its matrix products and vector math (tanh, ...) with Intel MKL, which splits even a (2, 128) x
(128, 256) product over `torch.get_num_threads()` OpenMP threads. For such sizes the second thread costs more than
it saves, and far more in a thread other than the main one (where a request runs): waking that thread's OpenMP
team every product made the note sampler 6x slower in a worker thread (0.63 s against 0.10 s for a 10 s clip).
`one_blas_thread` sets MKL's thread-local count for the calling thread only, so requests running at once in other
threads, and torch's own setting, are untouched. Products computed on one thread give the same bits here (the note
engine's rolls are identical at 1 and 2 threads). Without MKL (other platforms, other builds) it does nothing.
"""
from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

TORCH_LIBRARY = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"  # where torch's wheels link MKL in


def mkl_function(name: str, *argtypes: type) -> Callable[..., int] | None:
    """An MKL C function returning an int, from the library torch loaded; None without MKL."""
    try:
        fn = getattr(ctypes.CDLL(str(TORCH_LIBRARY)), name)
    except (OSError, AttributeError):
        return None
    fn.restype, fn.argtypes = ctypes.c_int, list(argtypes)
    return fn


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with MKL on one thread, in the calling thread only (see the module docstring)."""
    # returns the previous thread-local count; 0 means "follow the global one"
    set_local = mkl_function("MKL_Set_Num_Threads_Local", ctypes.c_int)
    if set_local is None:
        yield
        return
    previous = set_local(1)
    try:
        yield
    finally:
        set_local(previous)
