"""The evaluation: measures (metrics), audio mood correlates (correlates), a row's judged clips and columns (rows),
the clips each row judges (protocol), the written report (report). `python -m train.evaluate` runs it."""
