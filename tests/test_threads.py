"""moodgen.threads: MKL on one thread and teams sized to the free cores, for the calling thread only, restored
after; the same rolls and flow samples whatever the thread count."""
from __future__ import annotations

import ctypes
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from conftest import tiny_flow, tiny_note_model

from moodgen import threads
from moodgen.flow_model import sample
from moodgen.note_model import sample_roll
from moodgen.threads import PointwiseConv1d, math_threads, one_blas_thread, torch_function


def test_one_blas_thread_is_local_to_the_calling_thread_and_restored():
    max_threads = torch_function("MKL_Get_Max_Threads")
    if max_threads is None:
        pytest.skip("this torch build has no MKL; one_blas_thread does nothing")
    before, torch_threads = max_threads(), torch.get_num_threads()
    with ThreadPoolExecutor(1) as pool:  # another thread (another request): its own count, untouched
        elsewhere = pool.submit(max_threads).result()
        with one_blas_thread():
            assert max_threads() == 1
            assert pool.submit(max_threads).result() == elsewhere
            assert torch.get_num_threads() == torch_threads
    assert max_threads() == before


def test_rolls_are_the_same_sampled_in_a_worker_thread():
    model = tiny_note_model(2, keys=True).eval()
    mood, key = torch.tensor([[0.4, 0.9]]), torch.tensor([7])
    here = sample_roll(model, mood, 40, 1.5, seed=3, key=key)
    with ThreadPoolExecutor(1) as pool:
        there = pool.submit(sample_roll, model, mood, 40, 1.5, 1.0, 3, key).result()
    assert here[0].any()
    for a, b in zip(here, there):
        np.testing.assert_array_equal(a, b)


def omp_max_threads() -> int | None:
    fn = torch_function("omp_get_max_threads")
    return None if fn is None else fn()


def test_math_threads_sizes_the_calling_thread_only_and_restores():
    if torch_function("omp_set_num_threads", ctypes.c_int) is None:
        pytest.skip("this torch build has no GNU OpenMP; math_threads leaves the counts alone")
    configured = torch.get_num_threads()
    with ThreadPoolExecutor(1) as pool:
        elsewhere = pool.submit(torch.get_num_threads).result()
        with math_threads(1) as used:
            assert used == 1 and torch.get_num_threads() == 1 and omp_max_threads() == 1
            assert pool.submit(torch.get_num_threads).result() == elsewhere
        with math_threads(configured + 5) as used:  # never more than torch's setting
            assert used == configured == torch.get_num_threads()
    assert torch.get_num_threads() == configured


def test_free_cores_counts_the_tasks_running_elsewhere(tmp_path, monkeypatch):
    cores = len(os.sched_getaffinity(0))
    loadavg = tmp_path / "loadavg"
    monkeypatch.setattr(threads, "LOADAVG", loadavg)
    loadavg.write_text("0.50 0.40 0.30 1/200 4242\n")  # the caller alone
    assert threads.runnable_elsewhere() == 0 and threads.free_cores() == cores
    loadavg.write_text(f"3.00 2.00 1.00 {cores + 3}/200 4242\n")  # more than the cores elsewhere
    assert threads.runnable_elsewhere() == cores + 2 and threads.free_cores() == 1
    loadavg.write_text("garbled")
    assert threads.runnable_elsewhere() is None and 1 <= threads.free_cores() <= cores


def test_pointwise_conv_is_a_1x1_conv_with_the_same_state_dict():
    torch.manual_seed(0)
    conv, pointwise = torch.nn.Conv1d(12, 20, 1), PointwiseConv1d(12, 20)
    pointwise.load_state_dict(conv.state_dict(), strict=True)
    x = torch.randn(3, 12, 50)
    out = pointwise(x)
    assert out.shape == (3, 20, 50)
    torch.testing.assert_close(out, conv(x), rtol=1e-5, atol=1e-6)


def test_flow_samples_are_the_same_on_one_and_on_several_threads():
    model = tiny_flow(16, seed=2).eval()

    def draw(count: int) -> torch.Tensor:
        with math_threads(count):
            return sample(model, torch.tensor([[0.3, -0.6]]), 96, steps=3, guidance=2.0, seed=4)

    with ThreadPoolExecutor(1) as pool:
        one, many = pool.submit(draw, 1).result(), pool.submit(draw, 8).result()
    assert one.abs().sum() > 0
    assert torch.equal(one, many)
