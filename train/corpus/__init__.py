"""Corpus preparation: labelled sources (EMOPIA MIDI, DEAM audio) -> a memory-mappable training cache."""
