"""Hugging Face ZeroGPU: the pipeline work that uses CUDA runs under `spaces.GPU`; elsewhere nothing changes.

On ZeroGPU hardware a Space's process has no GPU of its own: a function decorated with `spaces.GPU` is run, per
call, in a worker process forked from it that holds a GPU for the call, and its result is pickled back. Clips,
journeys and extensions (the pipeline's `generate`, `journey`, `extend`) run so; their `Generation` holds only
numpy arrays and plain values. Live streams stay in the server process, where the pad steers them. `spaces.GPU` is a
no-op off ZeroGPU (a CPU Space, a local machine), and without the `spaces` package the pipeline is used as it is.

`spaces` must be imported before torch initialises CUDA and before gradio, so app.py imports this module first.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    import spaces
except ImportError:  # not installed: run as on a CPU Space
    spaces = None

GPU_METHODS = ("generate", "journey", "extend")


def on_gpu(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` run under `spaces.GPU` (a worker with a GPU on ZeroGPU, `fn` itself elsewhere)."""
    return fn if spaces is None else spaces.GPU(fn)


class GPUPipeline:
    """A MoodPipeline whose `generate`, `journey` and `extend` run under `spaces.GPU`; everything else is its own."""

    def __init__(self, pipeline: Any):
        self.pipeline = pipeline
        for name in GPU_METHODS:  # decorated once: ZeroGPU keeps a worker per decorated function
            setattr(self, name, on_gpu(getattr(pipeline, name)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipeline, name)


def adapt(pipeline: Any) -> Any:
    """The pipeline the app serves: `GPUPipeline(pipeline)` where the `spaces` package is installed."""
    if spaces is None:
        return pipeline
    spaces.disable_gradio_auto_wrap()  # only the work above leaves the server process; callbacks keep their state
    return GPUPipeline(pipeline)
