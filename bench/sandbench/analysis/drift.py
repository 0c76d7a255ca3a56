"""Did the runtime change, or did the host? Each runtime judged against its own run's baseline.

Two runs taken on a shared host at different times see different load: in one of this
project's own CI runs, an A/A pair a few seconds apart had native 31% and every runc phase
about 22% slower in the second run, and the absolute comparison called runc "regressed"
(p = 0.009). A slowdown of the host moves every runtime of a run, so it leaves each runtime's *ratio to
the baseline runtime of the same run* about where it was. That ratio is what this module
compares, round by round:

    runtime R, round k:   R_k / reference_k

The reference, in the same round, is the first that exists of:

1. the baseline runtime's value of the same metric and labels (native's getpid for runc's);
2. the geometric mean of the run's other runtimes' values of it: for the baseline itself (if
   only native slowed, its ratio to runc grew), and for what the baseline does not measure
   (runc's ``request_to_created`` against crun's);
3. the geometric mean of the baseline's values in the same workload and unit (runc's
   ``start_to_workload`` against native's whole start).

Taking both sides from one round also cancels load that changes within a run (rounds are
interleaved, so both ran within a second or two of each other). Load does not move every
operation by the same factor (under a one-core CPU hog here native's syscalls moved +40%,
runc's start +20%), which is why the same operation is preferred as the reference.

A verdict on an absolute change stands only when the ratio changed the same way, judged by the
same rule (verdict.judge: significant and past the threshold); otherwise it is "host drift".
With a single runtime there is nothing to compare with, and the absolute verdict stands alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: The key of one compared metric: (runtime, workload, metric, labels), as stats.GROUP.
Key = tuple[str, ...]


def _per_round(good: pd.DataFrame, workload: str) -> pd.DataFrame:
    """One column per (runtime, metric, labels), one row per round, the round's median."""
    rows = good.loc[good["workload"] == workload]
    if rows.empty:
        return pd.DataFrame()
    return rows.pivot_table(index="round", columns=["runtime", "metric", "labels"],
                            values="value", aggfunc="median")


def _geometric_mean(columns: pd.DataFrame) -> pd.Series:
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(columns.where(columns > 0))
    # A round where any reference value is missing has no reference: a mean over fewer
    # metrics would be a different reference.
    return pd.Series(np.exp(logs.mean(axis=1, skipna=False)), index=columns.index)


def _reference(table: pd.DataFrame, units: dict[Key, str], key: Key,
               baseline: str) -> tuple[pd.Series, str] | None:
    """The per-round reference of ``key`` and what it is, in words; None when there is none."""
    runtime, workload, metric, labels = key
    columns = list(table.columns)
    if (baseline, metric, labels) in columns and runtime != baseline:
        return table[(baseline, metric, labels)], f"{baseline} in the same run"
    # The same operation under the run's other runtimes: the baseline's own ratio to them,
    # or a phase only containers have (runc's create against crun's).
    others = [c for c in columns if c[0] != runtime and c[1:] == (metric, labels)]
    if others:
        names = ", ".join(sorted(c[0] for c in others))
        return _geometric_mean(table[others]), f"{names} in the same run"
    unit = units.get(key)
    alike = [c for c in columns
             if c[0] == baseline and units.get((c[0], workload, c[1], c[2])) == unit]
    if runtime == baseline or not alike:
        return None
    return _geometric_mean(table[alike]), f"{baseline}'s {workload} ({unit}) in the same run"


class Rounds:
    """One run's good samples laid out by round, per workload, computed once for all the
    keys a comparison asks about."""

    def __init__(self, good: pd.DataFrame) -> None:
        self.good = good
        self._tables: dict[str, pd.DataFrame] = {}
        self.units = {tuple(str(v) for v in k): str(u) for k, u in good.groupby(
            ["runtime", "workload", "metric", "labels"])["unit"].first().items()}

    def table(self, workload: str) -> pd.DataFrame:
        if workload not in self._tables:
            self._tables[workload] = _per_round(self.good, workload)
        return self._tables[workload]

    def ratios(self, key: Key, baseline: str) -> tuple[np.ndarray, str] | None:
        """The key's per-round ratios to its reference (see the module docstring) and what
        that reference is, or None when the run has no reference for it."""
        if not baseline:
            return None
        table = self.table(key[1])
        if table.empty or key[0:1] + key[2:] not in set(table.columns):
            return None
        found = _reference(table, self.units, key, baseline)
        if found is None:
            return None
        reference, name = found
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = table[key[0:1] + key[2:]] / reference
        values: np.ndarray = ratio.to_numpy(dtype=np.float64)
        finite: np.ndarray = values[np.isfinite(values) & (values > 0)]
        return finite, name
