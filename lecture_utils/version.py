"""The course's version, in a module of its own that imports nothing, so that parts of the package (the grader's
reports, its caches) can name it without importing the package's ``__init__``."""

__version__ = "0.1.0"
