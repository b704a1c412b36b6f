"""pytest configuration shared by tests/ and the nbval runs over notebooks/ and solutions/.

The smoke setting shrinks every long loop in the course; notebook kernels inherit it from this
process. Set LECTURE_UTILS_SMOKE=0 to run the notebooks at full length.
"""

import os

os.environ.setdefault("LECTURE_UTILS_SMOKE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
