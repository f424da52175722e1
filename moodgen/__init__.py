"""moodgen: a mood (valence, arousal), or a path of moods, becomes music.

    from moodgen import MoodPipeline
    pipe = MoodPipeline.from_checkpoint("checkpoints")
    clip = pipe.generate(0.7, 0.7, seconds=10, seed=1)
    clip.save("happy.wav")
"""
from moodgen.pipeline import Generation, MoodPipeline

__version__ = "0.2.0"
__all__ = ["Generation", "MoodPipeline", "__version__"]
