"""What the report says about how fio ran on each target: direct I/O (O_DIRECT, past the page
cache) or buffered (through it), under which runtimes, and why O_DIRECT was refused.

Every io sample carries the mode as its ``direct`` label (``true`` or ``false``), so the two
never share a row. Runs from before the label recorded a ``direct_io`` metric (1 or 0) per
target instead, and their rows hold both modes together: for them the mode is read from that
metric, and a target whose runtimes differ is called out.
"""

from __future__ import annotations

import pandas as pd

from sandbench.formats import RunMeta
from sandbench.report.labels import Runtimes

#: The label new runs carry on every io sample, and the metric older runs recorded instead.
DIRECT_LABEL = "direct"
LEGACY_METRIC = "direct_io"
MODE_TEXT = {True: "direct I/O (O_DIRECT, past the page cache)",
             False: "buffered I/O (through the page cache)"}


def io_mode_notes(samples: pd.DataFrame, runtimes: Runtimes) -> list[str]:
    """One sentence per target: which mode each runtime's fio ran in, and why not direct."""
    modes = _modes(samples)
    if modes.empty:
        return []
    legacy = not (modes["source"] == "label").all()
    notes = [_target_note(target, rows, runtimes, legacy)
             for target, rows in modes.groupby("target", sort=True)]
    if legacy:
        notes.append(f"This run predates the {DIRECT_LABEL!r} label: its io rows are per "
                     "target and job only, so where runtimes ran in different modes a row "
                     "compares direct with buffered I/O.")
    return notes


def io_target_notes(meta: RunMeta, runtimes: Runtimes) -> list[str]:
    """One sentence per runtime whose run.json says what io's targets are in its sandboxes
    (``io_targets``: gVisor's own overlay or the host's), when they differ from the host
    kernel's own overlay and bind mount, or for every runtime when any does."""
    said = {name: meta.runtime_facts(name).get("io_targets") for name in runtimes.order}
    known = {name: targets for name, targets in said.items() if isinstance(targets, dict)}
    labels = {tuple(sorted((t, str(d.get("label"))) for t, d in targets.items()))
              for targets in known.values()}
    if len(labels) < 2:
        return []
    return [f"Under {runtimes.name(name)}: "
            + "; ".join(f"{target} is {d.get('description', '?')} (storage={d.get('label')})"
                        for target, d in sorted(targets.items()))
            + "." for name, targets in known.items()]


def _modes(samples: pd.DataFrame) -> pd.DataFrame:
    """(runtime, target, direct, reason, source) for every good io sample that says its mode."""
    io = samples[(samples["workload"] == "io") & (samples["status"] == "ok")]
    found = []
    for row in io.to_dict("records"):
        labels = row["labels"] or {}
        if DIRECT_LABEL in labels:
            direct, source = labels[DIRECT_LABEL] == "true", "label"
        elif row["metric"] == LEGACY_METRIC:
            direct, source = row["value"] == 1.0, "metric"
        else:
            continue
        found.append({"runtime": row["runtime"], "target": labels.get("target", "?"),
                      "direct": direct, "source": source,
                      "reason": row["reason"] if isinstance(row["reason"], str) else ""})
    return pd.DataFrame(found, columns=["runtime", "target", "direct", "reason", "source"])


def _target_note(target: str, rows: pd.DataFrame, runtimes: Runtimes, legacy: bool) -> str:
    parts = []
    for direct in (True, False):
        mine = rows[rows["direct"] == direct]
        if mine.empty:
            continue
        names = [n for n in runtimes.order if n in set(mine["runtime"])]
        names += sorted(set(mine["runtime"]) - set(names))
        part = f"{MODE_TEXT[direct]} under {', '.join(runtimes.name(n) for n in names)}"
        reasons = sorted({r.removeprefix("buffered: ") for r in mine["reason"] if r})
        if reasons:
            part += f" ({'; '.join(reasons)})"
        parts.append(part)
    mixed = legacy and len(parts) > 1
    return (f"{target}: {'; '.join(parts)}."
            + (" Its rows mix the two modes." if mixed else ""))
