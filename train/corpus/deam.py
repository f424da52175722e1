"""DEAM (placeholder until the DEAM loader lands)."""
LICENCE = "DEAM (Aljanaki, Yang & Soleymani, PLOS ONE 2017): research use"


def list_clips(root):
    raise NotImplementedError("DEAM loader not written yet")


def process_audio_clip(clip, key, mel_params):
    raise NotImplementedError("DEAM loader not written yet")
