"""The names of an exercise's outcome, in one place: what a check records in the notebook
(:mod:`lecture_utils.checks`), what the grader reports (:mod:`lecture_utils.grading`) and what the class
roll-up counts. Plain strings, because they travel as JSON (a check's display data, ``grade --json``, the
class CSV); this module imports nothing, so the grader and its sandboxed re-check can read it without torch.
"""

PASSED = "passed"
FAILED = "failed"  # with the check's message
NOT_ATTEMPTED = "not attempted"  # the exercise's stub still raises NotImplementedError
NOT_VERIFIED = "not verified"  # only the grader says it: it could not re-check the exercise itself

#: what a check can record in a notebook
CHECK_STATUSES = (PASSED, FAILED, NOT_ATTEMPTED)
#: what the grader reports for one exercise of a notebook
STATUSES = (PASSED, FAILED, NOT_ATTEMPTED, NOT_VERIFIED)

MISSING = "missing"  # class roll-up only: the learner handed in no notebook with this exercise
