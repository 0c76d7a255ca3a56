"""A run's results on disk: ``run.json`` plus an append-only ``samples.jsonl``.

Layout of a run directory::

    run.json        metadata: resolved spec, versions, host facts, metrics, status, times
    samples.jsonl   one Sample per line, appended (and flushed) as soon as it exists, fsynced
                    at the end of each round and of the run
    outputs/        each sandbox's full stdout/stderr, named in the samples' ``output`` field

Format history (``format_version`` in run.json):

    1  the first version.

A reader of a newer version refuses it with a message; an older version is upgraded step by
step through ``UPGRADES`` (none so far), then checked against formats.RunMeta, the model
run.json is written through and its JSON Schema (``sandbench schema run``) comes from.

layout.py names the files, write.py writes them (RunWriter), read.py reads them back (load_run).
"""

from __future__ import annotations

from sandbench.results.layout import OUTPUTS_DIR, RESERVE_FILE, RUN_FILE, SAMPLES_FILE
from sandbench.results.read import (COLUMNS, UPGRADES, ResultsError, Run, liveness, load_meta,
                                    load_run, load_samples, read_samples)
from sandbench.results.write import (RESERVE_BYTES, WriteFailed, RunWriter, create_run_dir,
                                     discard_unmeasured, metrics_table, new_run_id,
                                     remove_if_empty)

__all__ = ["COLUMNS", "OUTPUTS_DIR", "RESERVE_BYTES", "RESERVE_FILE", "RUN_FILE", "SAMPLES_FILE",
           "UPGRADES", "ResultsError", "Run", "RunWriter", "WriteFailed", "create_run_dir",
           "discard_unmeasured", "liveness", "load_meta", "load_run", "load_samples",
           "metrics_table", "new_run_id", "read_samples", "remove_if_empty"]
