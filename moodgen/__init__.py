"""moodgen: a mood (valence, arousal), or a path of moods, becomes music.

    from moodgen import MoodPipeline, Settings
    pipe = MoodPipeline.from_checkpoint("checkpoints")
    clip = pipe.generate(0.7, 0.7, 10, Settings(seed=1))  # or pipe.generate(0.7, 0.7, 10, seed=1)
    clip.save("happy.wav")
"""
from moodgen.pipeline import Generation, MoodPipeline
from moodgen.settings import Settings

__version__ = "0.2.0"
__all__ = ["Generation", "MoodPipeline", "Settings", "__version__"]
