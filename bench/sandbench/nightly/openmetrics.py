"""A run as OpenMetrics text, for Prometheus (``promtool tsdb create-blocks-from openmetrics``)
and, without timestamps, for a Pushgateway.

Names follow Prometheus' conventions: ``sandbench_`` and the metric, then the base unit
(``sandbench_request_to_workload_seconds``, ``sandbench_bandwidth_bytes_per_second``). Every
series has the labels ``runtime``, ``workload``, ``backend`` and ``run_id``, then the sample's
own labels (``op``, ``job``...; one that would collide with these or with Prometheus' own target
labels is written ``sample_<name>``).

    sandbench_<metric>_<unit>              every ok, measured (non-warmup) sample, stamped with
                                           the time it was recorded
    sandbench_<metric>_<stat>_<unit>       the run's summary (analysis.summary): stat is
                                           median, p90, p99, median_ci_low, median_ci_high,
                                           stamped with the run's end
    sandbench_samples{metric, status}      measured samples per series by status: ok, failed,
                                           skipped. A failure is counted, never a value; its
                                           reason is free text (numbers, paths) and would make
                                           every failure a series of its own, so it is left to
                                           samples.jsonl and to the OTLP export's error spans
    sandbench_run_info{status, valid...}   the run's status and validity

Units: ns, µs, ms and ns/op become seconds; MiB bytes; MiB/s and Gbit/s bytes per second
(Prometheus' base unit of data is the byte, bits included: node_network_*_bytes); ms/s (CPU
time per second of wall time) a ratio, 1 being one CPU busy; IOPS stays operations per second;
the direct_io flag stays 0 or 1. A metric name that spells its unit loses it for the base
unit's (``host_pss_mib`` is written ``sandbench_host_pss_bytes``). A unit not in UNITS is left
out and listed, by `export` and by `push` alike.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pandas as pd

from sandbench.analysis.summary import RunSummary
from sandbench.model import PER_SANDBOX_LABELS
from sandbench.nightly.export import SECONDS
from sandbench.results import Run

PREFIX = "sandbench"


@dataclass(frozen=True)
class Unit:
    """How one sandbench unit is written."""

    #: Ends the metric's name; "" for a plain number.
    suffix: str
    #: The OpenMetrics UNIT of the family (a base unit), "" when there is none.
    unit: str = ""
    #: A value in the base unit is ``value * multiply / divide``. Dividing by a power of ten
    #: is exact to the last bit where multiplying by its inverse is not (52 * 1e-3 is
    #: 0.052000000000000005): a median read back by PromQL is the summary's ms / 1000.
    multiply: float = 1.0
    divide: float = 1.0
    #: The end of a metric name that spells this unit, dropped for ``suffix``.
    spelled: str = ""

    def convert(self, value: float) -> float:
        return value * self.multiply / self.divide


UNITS: dict[str, Unit] = {
    **{name: Unit("seconds", "seconds", divide=round(1 / factor))
       for name, factor in SECONDS.items()},
    "MiB": Unit("bytes", "bytes", multiply=1024.0 * 1024.0, spelled="_mib"),
    "MiB/s": Unit("bytes_per_second", multiply=1024.0 * 1024.0),
    # 10^9 bits are 1.25 x 10^8 bytes, exactly.
    "Gbit/s": Unit("bytes_per_second", multiply=125_000_000.0),
    "ms/s": Unit("ratio", "ratio", divide=1000, spelled="_ms_per_s"),
    "IOPS": Unit("per_second"),
    "flag": Unit(""),
}
#: Metric names that hold their unit already; the name they are written under.
RENAMED = {"ns_per_op": "op_duration", "iops": "io_operations"}
#: Summary columns (analysis.stats) written as gauges, by the name they take.
STATS = {"median": "median", "p90": "p90", "p99": "p99", "ci_low": "median_ci_low",
         "ci_high": "median_ci_high"}
#: Label names a sample's own label may not take: the series' own and Prometheus' target labels.
RESERVED = frozenset({"runtime", "workload", "backend", "run_id", "metric", "status", "job",
                      "instance", "le", "quantile"})

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Point:
    labels: Labels
    value: float
    #: Unix seconds; None when written without a timestamp (a Pushgateway refuses them).
    time: float | None


@dataclass
class Family:
    name: str
    kind: str
    help: str
    unit: str = ""
    points: list[Point] = field(default_factory=list)


@dataclass(frozen=True)
class Document:
    text: str
    #: One line per (runtime, workload, metric, unit) left out, saying why.
    skipped: list[str]
    series: int


def family_name(metric: str, unit: Unit, stat: str = "") -> str:
    base = RENAMED.get(metric, metric)
    if unit.spelled and base.endswith(unit.spelled):
        base = base[:-len(unit.spelled)]
    parts = [PREFIX, base, stat, unit.suffix]
    return _name("_".join(part for part in parts if part))


def _name(text: str) -> str:
    text = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return text if not text[:1].isdigit() else "_" + text


def label_name(name: str) -> str:
    name = _name(name).lstrip("_") or "label"
    return f"sample_{name}" if name in RESERVED else name


def unix_seconds(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def _series_labels(run: Run, runtime: str, workload: str,
                   own: dict[str, str]) -> list[tuple[str, str]]:
    return [("runtime", runtime), ("workload", workload), ("backend", run.info.backend),
            ("run_id", run.run_id), *sorted((label_name(k), str(v)) for k, v in own.items())]


def sample_families(summary: RunSummary) -> tuple[list[Family], list[str]]:
    """Every good measured sample, one family per metric; and what was left out."""
    run, families, skipped = summary.run, dict[str, Family](), list[str]()
    good = summary.good.assign(seconds=summary.good["time"].map(unix_seconds))
    for (runtime, workload, metric, unit_name), rows in good.groupby(
            ["runtime", "workload", "metric", "unit"], sort=True):
        unit = UNITS.get(str(unit_name))
        if unit is None:
            skipped.append(unknown_unit(str(runtime), str(workload), str(metric), str(unit_name)))
            continue
        name = family_name(str(metric), unit)
        family = families.setdefault(name, Family(
            name, "gauge", f"{metric} of one sandbox ({_description(run, str(metric))})",
            unit.unit))
        for labels, series in rows.groupby("labels", sort=True):
            own = {k: v for k, v in series["label_values"].iloc[0].items()
                   if k not in PER_SANDBOX_LABELS}
            key = tuple(_series_labels(run, str(runtime), str(workload), own))
            for value, seconds in sorted(zip(series["value"], series["seconds"]),
                                         key=lambda pair: pair[1]):
                family.points.append(Point(key, unit.convert(float(value)), seconds))
    return list(families.values()), skipped


def unknown_unit(runtime: str, workload: str, metric: str, unit: str) -> str:
    return (f"{runtime} {workload} {metric} ({unit}): unit not known to the OpenMetrics export "
            f"(known: {', '.join(UNITS)})")


def _description(run: Run, metric: str) -> str:
    info = run.info.metrics.get(metric)
    return f"better {info.better}" if info is not None else "from the run's samples"


def summary_families(summary: RunSummary,
                     time: float | None) -> tuple[list[Family], list[str]]:
    """The summary's statistics of each series, and its sample counts by status; and what
    was left out."""
    run, families, skipped = summary.run, dict[str, Family](), list[str]()
    counts = Family(f"{PREFIX}_samples", "gauge",
                    "measured samples of a series by status (ok, failed, skipped)")
    for row in summary.table.itertuples(index=False):
        labels = _series_labels(run, str(row.runtime), str(row.workload),
                                dict(row.label_values or {}))
        for status, count in (("ok", row.n), ("failed", row.failed), ("skipped", row.skipped)):
            counts.points.append(Point(tuple([*labels, ("metric", str(row.metric)),
                                              ("status", status)]), float(count), time))
        unit = UNITS.get(str(row.unit))
        if unit is None:
            line = unknown_unit(str(row.runtime), str(row.workload), str(row.metric),
                                str(row.unit))
            skipped += [] if line in skipped else [line]
            continue
        for column, stat in STATS.items():
            value = float(getattr(row, column))
            if not math.isfinite(value):
                continue  # no good sample, or too few for an interval
            name = family_name(str(row.metric), unit, stat)
            family = families.setdefault(name, Family(
                name, "gauge", f"{stat} of {row.metric} over the run's measured rounds",
                unit.unit))
            family.points.append(Point(tuple(labels), unit.convert(value), time))
    return [*families.values(), counts], skipped


def info_family(run: Run, time: float | None, kind: str = "info") -> Family:
    """The run's status and validity (an OpenMetrics info; a gauge of 1 where info is not
    understood, as by a Pushgateway)."""
    info = run.info
    valid = "unknown" if info.valid is None else str(info.valid).lower()
    labels = (("run_id", run.run_id), ("backend", info.backend), ("status", str(info.status)),
              ("valid", valid), ("baseline", info.baseline or ""),
              ("git_commit", info.git_commit or ""),
              ("sandbench_version", info.sandbench_version or ""))
    name = f"{PREFIX}_run" if kind == "info" else f"{PREFIX}_run_info"
    return Family(name, kind, "a sandbench run: its status and whether it is valid",
                  points=[Point(labels, 1.0, time)])


def end_time(summary: RunSummary) -> float:
    """When the run ended (its last sample, if run.json has no end): the summary's stamp."""
    if summary.run.info.ended_at:
        return unix_seconds(summary.run.info.ended_at)
    times = pd.Series(summary.run.samples["time"].dropna())
    return max([unix_seconds(str(t)) for t in times], default=unix_seconds(
        summary.run.info.started_at))


def to_openmetrics(summary: RunSummary) -> Document:
    """The whole run, samples and summary, timestamped (see the module docstring)."""
    return _whole_run(summary, openmetrics=True)


def to_prometheus_text(summary: RunSummary) -> Document:
    """The same series in Prometheus' older text format (0.0.4): timestamps in milliseconds,
    the info metric a gauge. What `promtool check metrics` and a textfile reader take."""
    return _whole_run(summary, openmetrics=False)


def _whole_run(summary: RunSummary, openmetrics: bool) -> Document:
    time = end_time(summary)
    samples, skipped = sample_families(summary)
    info = info_family(summary.run, time, kind="info" if openmetrics else "gauge")
    stats, not_summarised = summary_families(summary, time)
    skipped += [line for line in not_summarised if line not in skipped]
    families = [info, *samples, *stats]
    return Document(render(families, openmetrics=openmetrics), skipped, _count(families))


def to_pushgateway(summary: RunSummary) -> Document:
    """The summary and the run's info, in Prometheus' text format without timestamps: a
    Pushgateway refuses timestamps, and the raw samples would be scraped as current values."""
    stats, skipped = summary_families(summary, None)
    families = [info_family(summary.run, None, kind="gauge"), *stats]
    return Document(render(families, openmetrics=False), skipped, _count(families))


def _count(families: Iterable[Family]) -> int:
    return len({(f.name, p.labels) for f in families for p in f.points})


def render(families: Iterable[Family], *, openmetrics: bool) -> str:
    return "".join(_lines(families, openmetrics)) + ("# EOF\n" if openmetrics else "")


def _lines(families: Iterable[Family], openmetrics: bool) -> Iterator[str]:
    for family in families:
        if not family.points:
            continue
        yield f"# HELP {family.name} {_escape(family.help, quote=False)}\n"
        yield f"# TYPE {family.name} {family.kind}\n"
        if family.unit and openmetrics:
            yield f"# UNIT {family.name} {family.unit}\n"
        suffix = "_info" if family.kind == "info" else ""
        for point in family.points:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in point.labels)
            stamp = _stamp(point.time, openmetrics)
            yield f"{family.name}{suffix}{{{labels}}} {_number(point.value)}{stamp}\n"


def _stamp(time: float | None, openmetrics: bool) -> str:
    # OpenMetrics stamps in seconds, the text format 0.0.4 in integer milliseconds.
    if time is None:
        return ""
    return f" {time:.3f}" if openmetrics else f" {round(time * 1000)}"


def _escape(text: str, quote: bool = True) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if quote else text


def _number(value: float) -> str:
    # repr is the shortest text that reads back as the same double: a median read back by
    # PromQL equals the summary's, to the last bit.
    return repr(float(value))
