"""A run in other tools' formats. One so far: pytest-benchmark's JSON (``--benchmark-json``).

pytest-benchmark's field names are kept as they are, so ``pytest-benchmark compare`` and tools
that read its files (github-action-benchmark's ``pytest`` mode) take an export as their own:

    machine_info   pytest-benchmark's keys (node, machine, release, system, cpu...) filled from
                   run.json's host facts, plus ``sandbench``: run id, backend, the host and
                   environment facts as run.json has them, and what was left out and why
    commit_info    sandbench's git commit, as pytest-benchmark records the project's
    benchmarks[]   one per (runtime, workload, metric, labels) with good measured samples:
                   group "<workload> <metric> [labels]", name "<metric>[<runtime>-<labels>]",
                   params {runtime, labels...}, extra_info {runtime, workload, metric, labels,
                   unit, better, conversion, run_id}, stats computed by pytest-benchmark's own
                   Stats class from ``stats.data``, the raw values (one round = one sandbox,
                   iterations 1)
    datetime       when the run started; version: the pytest-benchmark the format follows

Units. pytest-benchmark's values are seconds of one round, lower better, and ``ops`` is 1/mean.
Time metrics (ns, ns/op, µs, ms, s) are converted to seconds. Throughput metrics (MiB/s, IOPS)
are exported inverted, as seconds per MiB and seconds per I/O: that is pytest-benchmark's own
model (time per operation), lower stays better, and its ``ops`` column then reads as MiB/s or
IOPS again (the harmonic mean of the rounds). Anything else (the direct_io flag, unknown
units) is left out and listed in ``machine_info.sandbench.skipped``.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from pytest_benchmark import __version__ as PYTEST_BENCHMARK_VERSION
from pytest_benchmark.stats import Stats

from sandbench.analysis import stats
from sandbench.errors import BadInput
from sandbench.results import Run

#: Seconds per unit of each time unit sandbench metrics use.
SECONDS = {"ns": 1e-9, "ns/op": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
#: Throughput units, exported inverted; the name of the inverted unit.
INVERTED = {"MiB/s": "s/MiB", "IOPS": "s/IO", "ops/s": "s/op"}


class ExportError(BadInput):
    """A format that is not known; the message lists the known ones."""


def convert(values: np.ndarray[Any, Any], unit: str) -> tuple[np.ndarray[Any, Any], str, int] | None:
    """Values in pytest-benchmark's seconds, what was done, and how many values could not be
    converted; None when the unit is not a time or a throughput."""
    if unit in SECONDS:
        factor = SECONDS[unit]
        return values * factor, f"{unit} -> s" if factor != 1 else "s", 0
    if unit in INVERTED:
        # A throughput of 0 (a job that moved nothing) has no time per operation.
        positive = values[values > 0]
        return (1.0 / positive, f"inverted: {unit} -> {INVERTED[unit]} (ops = {unit})",
                int(values.size - positive.size))
    return None


def _machine_info(run: Run, skipped: list[dict[str, str]]) -> dict[str, Any]:
    host = run.info.host
    python = str(host.get("python") or platform.python_version())
    return {
        "node": host.get("hostname", ""), "processor": "", "machine": host.get("arch", ""),
        "python_compiler": "", "python_implementation": "CPython",
        "python_implementation_version": python, "python_version": python,
        "python_build": [], "release": host.get("kernel", ""), "system": "Linux",
        "cpu": {"brand_raw": host.get("cpu_model", ""), "count": host.get("cores"),
                "arch": host.get("arch", "")},
        "sandbench": {"run_id": run.run_id, "backend": run.info.backend,
                      "host": dict(host), "environment": run.info.environment,
                      "runtimes": run.info.runtimes, "skipped": skipped},
    }


def pytest_benchmark_stats(values: list[float]) -> dict[str, Any]:
    """pytest-benchmark's own Stats of ``values``, so each field means what it means there."""
    measured = Stats()  # type: ignore[no-untyped-call]
    measured.data = list(values)
    fields: dict[str, Any] = measured.as_dict()  # type: ignore[no-untyped-call]
    return fields


def _benchmark(run: Run, key: tuple[str, ...], row: pd.Series, values: np.ndarray[Any, Any],
               conversion: str) -> dict[str, Any]:
    runtime, workload, metric, labels = key
    label_values: dict[str, str] = dict(row["label_values"] or {})
    param = "-".join([runtime, *(str(label_values[k]) for k in sorted(label_values))])
    group = f"{workload} {metric}" + (f" [{labels}]" if labels else "")
    return {
        "group": group, "name": f"{metric}[{param}]",
        "fullname": f"sandbench/{workload}::{metric}[{param}]",
        "params": {"runtime": runtime, **label_values}, "param": param,
        "extra_info": {"runtime": runtime, "workload": workload, "metric": metric,
                       "labels": label_values, "unit": str(row["unit"]),
                       "better": str(row["better"]), "conversion": conversion,
                       "run_id": run.run_id, "failed": int(row["failed"])},
        "options": {"disable_gc": False, "timer": "sandbench", "min_rounds": len(values),
                    "max_time": 0, "min_time": 0, "warmup": bool(run.samples["warmup"].any())},
        "stats": {**pytest_benchmark_stats(values.tolist()), "data": values.tolist(),
                  "iterations": 1},
    }


def to_pytest_benchmark(run: Run) -> dict[str, Any]:
    """The run as pytest-benchmark's JSON (see the module docstring)."""
    rows = stats.measured(run.samples)
    summary = stats.summarize_rows(rows, run.info, against_baseline=False).set_index(stats.GROUP)
    good = stats.good(rows)
    benchmarks: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for key, group in good.groupby(stats.GROUP, sort=True)["value"]:
        key = tuple(str(k) for k in key)
        row = summary.loc[key]
        unit = str(row["unit"])
        where = {"runtime": key[0], "workload": key[1], "metric": key[2], "labels": key[3],
                 "unit": unit}
        converted = convert(group.to_numpy(dtype=np.float64), unit)
        if converted is None:
            skipped.append({**where, "reason": "not a time or a throughput"})
            continue
        values, conversion, dropped = converted
        if dropped:
            skipped.append({**where, "reason": f"{dropped} value(s) <= 0 {unit} have no time "
                                               f"per operation; left out of stats.data"})
        if values.size:
            benchmarks.append(_benchmark(run, key, row, values, conversion))
    commit = run.info.git_commit
    return {
        "machine_info": _machine_info(run, skipped),
        "commit_info": {"id": commit or "unversioned", "time": None, "author_time": None,
                        "dirty": False, "project": "sandbench", "branch": "(unknown)"},
        "benchmarks": benchmarks,
        "datetime": run.info.started_at,
        "version": PYTEST_BENCHMARK_VERSION,
    }


#: Export formats by name.
FORMATS: dict[str, Callable[[Run], dict[str, Any]]] = {"pytest-benchmark": to_pytest_benchmark}


def export(run: Run, fmt: str) -> dict[str, Any]:
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}")
    document = FORMATS[fmt](run)
    _check_finite(document)
    return document


def _check_finite(value: Any) -> None:
    # JSON has no NaN or infinity; pytest-benchmark would write them as invalid JSON.
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"non-finite number {value!r} in the export")
    if isinstance(value, dict):
        for item in value.values():
            _check_finite(item)
    elif isinstance(value, list):
        for item in value:
            _check_finite(item)
