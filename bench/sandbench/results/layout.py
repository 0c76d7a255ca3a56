"""The files of a run directory, by name (the package's docstring describes them)."""

from __future__ import annotations

RUN_FILE = "run.json"
SAMPLES_FILE = "samples.jsonl"
OUTPUTS_DIR = "outputs"
#: Space set aside when a run starts, given back to write its end (write.RESERVE_BYTES).
RESERVE_FILE = ".reserve"
