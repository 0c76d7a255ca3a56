"""A run's statistics, computed once and passed along.

The terminal summary, the report's tables and charts, its verdict against a baseline run and
its trends all read the same medians and intervals of the same run. Each takes a
:class:`RunSummary` rather than the run's samples, so the samples are filtered and
bootstrapped once per run, and every part shows the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from sandbench.analysis import concurrency, decision, footprint, stats
from sandbench.results import Run

#: What one summary row is about: (runtime, workload, metric, labels), as stats.GROUP.
Key = tuple[str, ...]


@dataclass(frozen=True)
class RunSummary:
    """One run, its measured samples and their summary."""

    run: Run
    #: The measured (non-warmup) samples, labels as stats.labels_key strings (stats.measured).
    rows: pd.DataFrame
    #: One row per Key with the columns of stats.summarize, ratios to the run's baseline.
    table: pd.DataFrame

    @cached_property
    def good(self) -> pd.DataFrame:
        """The measured samples that count: status ok, a finite value (stats.good)."""
        return stats.good(self.rows)

    @cached_property
    def values(self) -> dict[Key, stats.Floats]:
        """Each Key's good values, for the tests that judge a change."""
        return {tuple(str(k) for k in key): values.to_numpy(dtype=np.float64)
                for key, values in self.good.groupby(stats.GROUP, sort=False)["value"]}

    @cached_property
    def decision(self) -> list[decision.DecisionLine]:
        """Each runtime's one-line cost against the baseline, from this table and values."""
        emulated = frozenset(r for r in set(self.table["runtime"])
                             if self.run.info.runtime_facts(str(r)).get("emulated"))
        return decision.decision_lines(self.table, self.values, self.run.info.baseline or "",
                                       emulated, list(self.run.info.spec.runtimes))

    @cached_property
    def density(self) -> list[footprint.DensityCurve]:
        """Each runtime's density sweep, fitted (empty without density samples)."""
        return footprint.density_curves(self.good, self.rows[self.rows["status"] == "failed"])

    @cached_property
    def concurrency(self) -> pd.DataFrame:
        """Each metric's p50/p90/p99 against concurrency, with intervals (concurrency.curves;
        empty without a concurrency axis)."""
        return concurrency.curves(self.rows)

    @cached_property
    def by_key(self) -> pd.DataFrame:
        """The table indexed by Key."""
        return self.table.set_index(stats.GROUP)


def summarize_run(run: Run) -> RunSummary:
    """The run's summary (stats.summarize_rows, with the run's baseline)."""
    rows = stats.measured(run.samples)
    return RunSummary(run, rows, stats.summarize_rows(rows, run.info))
