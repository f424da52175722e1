"""moodgen's Gradio app: widgets and callbacks over `moodgen.MoodPipeline` (entry point: the root's `app.py`)."""
