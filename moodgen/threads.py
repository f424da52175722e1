"""Thread-local control of the math libraries' threads: one MKL thread for loops of tiny products, as many OpenMP
threads per task as the machine has cores free, and 1x1 convolutions that give the same bits on any thread count.

On x86, torch does its matrix products and vector math (tanh, ...) with Intel MKL, which splits even a (2, 128) x
(128, 256) product over `torch.get_num_threads()` OpenMP threads. For such sizes the second thread costs more than
it saves, and far more in a thread other than the main one (where a request runs): waking that thread's OpenMP
team every product made the note sampler 6x slower in a worker thread (0.63 s against 0.10 s for a 10 s clip).
`one_blas_thread` sets MKL's thread-local count for the calling thread only.

Every torch op splits its work over a team of OpenMP threads that wait for each other at its end. When other
programs keep the cores busy, a team member waits for a core while the rest of its team waits for it, spinning:
with two other CPU-bound processes on 2 cores, the mel engine's 10 s clip took 50-90 s on a team of two against
3-4 s on one thread. `math_threads(free_cores())` sizes the calling thread's team, for one task, to the cores no
other program is running on at that moment (OpenMP's and MKL's per-thread counts: other threads and torch's own
setting are untouched). The count changes no result: the note engine's products give the same bits on 1 and 2
threads, and so do the mel engine's once its 1x1 convolutions are matrix products (`PointwiseConv1d`: oneDNN's 1x1
convolution sums in an order that depends on the thread count). Without MKL or GNU OpenMP (other platforms, other
builds) the counts are left alone.
"""
from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

TORCH_LIBRARY = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"  # where torch's wheels link MKL and OpenMP
LOADAVG = Path("/proc/loadavg")  # its 4th field: runnable tasks now / all tasks


def torch_function(name: str, *argtypes: type) -> Callable[..., int] | None:
    """A C function returning an int from the libraries torch loaded (MKL, OpenMP); None without it."""
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
    set_local = torch_function("MKL_Set_Num_Threads_Local", ctypes.c_int)
    if set_local is None:
        yield
        return
    previous = set_local(1)
    try:
        yield
    finally:
        set_local(previous)


def runnable_elsewhere() -> int | None:
    """Tasks running or waiting for a core right now, other than the caller; None where the kernel does not say."""
    try:
        running = int(LOADAVG.read_text().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None
    return max(0, running - 1)


def free_cores() -> int:
    """The cores this process may use that no other task is running on now (at least 1). The instant count, not the
    load average: a program started a few seconds ago barely moves the 1-minute average."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    others = runnable_elsewhere()
    if others is None:
        others = int(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    return max(1, cores - others)


@contextmanager
def math_threads(count: int) -> Iterator[int]:
    """Run the block with at most `count` OpenMP and MKL threads (never more than torch's setting), in the calling
    thread only; yields the count used."""
    configured = torch.get_num_threads()  # also makes torch set this thread's counts first, so ours are not undone
    set_omp = torch_function("omp_set_num_threads", ctypes.c_int)
    set_mkl = torch_function("MKL_Set_Num_Threads_Local", ctypes.c_int)
    use = max(1, min(count, configured))
    if set_omp is None or use == configured:
        yield configured
        return
    set_omp(use)
    previous_mkl = set_mkl(use) if set_mkl is not None else None
    try:
        yield use
    finally:
        set_omp(configured)
        if set_mkl is not None:
            set_mkl(previous_mkl)


class PointwiseConv1d(nn.Conv1d):
    """A 1x1 `nn.Conv1d` (same parameters, same state dict) computed as a matrix product, which sums in the same
    order on any number of threads; (B, Cin, T) -> (B, Cout, T)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.transpose(1, 2), self.weight[:, :, 0], self.bias).transpose(1, 2)
