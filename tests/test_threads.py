"""moodgen.threads: MKL on one thread for the calling thread only, restored after, and the same rolls."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from conftest import tiny_note_model

from moodgen.note_model import sample_roll
from moodgen.threads import mkl_function, one_blas_thread


def test_one_blas_thread_is_local_to_the_calling_thread_and_restored():
    max_threads = mkl_function("MKL_Get_Max_Threads")
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
