"""Mutation testing of every exercise's check, the full run: every mutant of every solution (see
lecture_utils/mutation.py for the operators), killed with a specific diagnosis, killed generically, or survived
(and then listed as equivalent, with its reason, or a hole). Prints the Markdown table that RESULTS.md quotes,
then every survivor not listed as equivalent; exits 1 if there is one.

    python benchmarks/mutants.py                 # 2 worker processes (the CPU machine's cores)
    python benchmarks/mutants.py --all           # every mutant's outcome and message, to review the diagnoses

Same as ``python -m lecture_utils.authoring mutants``; tests/test_mutation.py runs a small sample.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lecture_utils import mutation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--exercise", help="only this exercise")
    parser.add_argument("--all", action="store_true", help="list every mutant's outcome, not only survivors")
    args = parser.parse_args(argv)
    return mutation.main(Path(__file__).resolve().parents[1], args.exercise, jobs=args.jobs,
                         show="all" if args.all else "survivors")


if __name__ == "__main__":
    sys.exit(main())
