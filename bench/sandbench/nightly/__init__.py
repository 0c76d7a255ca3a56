"""Nightly CI: comparing two runs (verdicts), their environments, the history of runs, and
the files other tools read (JUnit XML, pytest-benchmark JSON)."""
