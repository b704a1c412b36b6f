"""Diagnosis precision of the checks on the wrong-solution catalogue (tests/wrong_solutions/).

For every exercise: how many catalogued wrong solutions get the intended diagnosis, another specific one (a
diagnosis that names a different mistake: the worst outcome, it sends the learner to the wrong fix), a generic
message, or pass. Prints a Markdown table.

    python benchmarks/catalogue_precision.py
    python benchmarks/catalogue_precision.py --list     # and every entry not caught with its intended diagnosis

The checks come from the ``lecture_utils`` that Python imports (``PYTHONPATH`` picks another tree, e.g. an older
commit's, to compare); the catalogue always from this repository's tests/.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from wrong_solutions import CATALOGUE
from wrong_solutions._catalogue import diagnosis, precision_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list the entries not caught with their diagnosis")
    args = parser.parse_args(argv)
    import lecture_utils

    with contextlib.redirect_stdout(io.StringIO()):  # the checks' own lines
        table = precision_table(CATALOGUE)
    print(f"checks from {Path(lecture_utils.__file__).parent}\n")
    print(table)
    if args.list:
        for w in CATALOGUE:
            with contextlib.redirect_stdout(io.StringIO()):
                kind, message = diagnosis(w)
            if kind != "intended":
                print(f"  {w.exercise} {w.name}: {kind}: {message[:160]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
