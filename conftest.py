"""pytest configuration shared by tests/ and the nbval runs over notebooks/ and solutions/.

The smoke setting shrinks every long loop in the course; notebook kernels inherit it from this
process. Set LECTURE_UTILS_SMOKE=0 to run the notebooks at full length.

Under pytest-xdist (pyproject's ``-n auto``: one worker per core) each worker, and every kernel and
subprocess it starts, gets one torch thread (``OMP_NUM_THREADS=1``, unless set already): two workers
with torch's default of one thread per core would ask a 2-core machine for four. A run with ``-n 0``
keeps torch's default.
"""

import os

os.environ.setdefault("LECTURE_UTILS_SMOKE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

if os.environ.get("PYTEST_XDIST_WORKER"):  # set by pytest-xdist in each worker process
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import sys

    if "torch" in sys.modules:  # imported before this file (a plugin): the variable came too late for it
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
