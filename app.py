"""Hugging Face Spaces' entry point: `python app.py` serves moodgen's app (`moodgen_app`); `--help` lists options."""
from moodgen_app import zerogpu  # noqa: F401  first: ZeroGPU's `spaces` must be imported before torch and gradio
from moodgen_app.server import main

if __name__ == "__main__":
    main()
