"""``sandbench export`` (a run in another tool's format) and ``sandbench push`` (its summary to a
Prometheus Pushgateway): results where operators already look.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import click
from rich.markup import escape

from sandbench.analysis.summary import summarize_run
from sandbench.cli.common import check_out_file, console, warn_damaged, write_out_file
from sandbench.nightly import export as exporting
from sandbench.nightly import openmetrics, otlp, push
from sandbench.results import Run, load_run


def _pytest_benchmark(run: Run) -> tuple[str, str, list[str]]:
    document = exporting.export(run, "pytest-benchmark")
    left_out = [f"{s['runtime']} {s['metric']} ({s['unit']}): {s['reason']}"
                for s in document["machine_info"]["sandbench"]["skipped"]]
    return (json.dumps(document, indent=2) + "\n", f"{len(document['benchmarks'])} benchmarks",
            left_out)


def _metrics(render: Callable[..., openmetrics.Document]) -> Callable[[Run], tuple[str, str,
                                                                                 list[str]]]:
    def text(run: Run) -> tuple[str, str, list[str]]:
        document = render(summarize_run(run))
        return document.text, f"{document.series} series", document.skipped
    return text


def _otlp(run: Run) -> tuple[str, str, list[str]]:
    document = otlp.to_otlp(run)
    spans = sum(len(r["scopeSpans"][0]["spans"]) for r in document["resourceSpans"])
    return (json.dumps(document, indent=1) + "\n",
            f"{len(document['resourceSpans'])} traces, {spans} spans", [])


#: Each format: the text, what it holds in words, and what was left out, one line each.
FORMATS: dict[str, Callable[[Run], tuple[str, str, list[str]]]] = {
    "pytest-benchmark": _pytest_benchmark,
    "openmetrics": _metrics(openmetrics.to_openmetrics),
    "prometheus": _metrics(openmetrics.to_prometheus_text),
    "otlp": _otlp,
}


@click.command(name="export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)),
              default="pytest-benchmark", show_default=True, help="The format to write.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="File to write (default: standard output).")
def export_command(run_dir: Path, fmt: str, output: Path | None) -> None:
    """Write RUN_DIR's results in another tool's format.

    \b
    pytest-benchmark  pytest-benchmark's JSON: times in seconds, throughput inverted
                      (seconds per MiB or per I/O); other units left out and listed
    openmetrics       OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`:
                      every ok measured sample at the time it was recorded, the summary
                      (median, p90, p99, median CI) at the run's end, sample counts by
                      status, and sandbench_run_info (status, valid); base units
                      (_seconds, _bytes_per_second); labels runtime, workload, backend,
                      run_id and the sample's own
    prometheus        the same series in Prometheus' text format 0.0.4 (millisecond
                      timestamps), as `promtool check metrics` reads it
    otlp              OTLP/JSON traces: one per sandbox of the start workload, one span per
                      phase, each timed on its own clock (clock and offset in attributes);
                      a failed phase is a span with error status and the reason

    To push the summary to a Pushgateway, see `sandbench push`.
    """
    run = load_run(run_dir)
    if output is not None:
        check_out_file(output, "-o")
    warn_damaged(run)
    text, what, left_out = FORMATS[fmt](run)
    if output is None:
        sys.stdout.write(text)
    else:
        write_out_file(output, text, "-o")
        console.print(f"{what} written to {escape(str(output))}", highlight=False)
    for line in left_out:
        console.print(f"left out: {escape(line)}", highlight=False)


@click.command(name="push")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--gateway", required=True, metavar="URL",
              help="The Pushgateway, e.g. http://pushgateway:9091.")
@click.option("--job", default="sandbench", show_default=True,
              help="The job label of the pushed group.")
def push_command(run_dir: Path, gateway: str, job: str) -> None:
    """Push RUN_DIR's summary to a Prometheus Pushgateway, for a nightly job that is not
    scraped.

    Pushes the median, p90, p99 and median CI of every series, the sample counts by status and
    sandbench_run_info (status, valid), without timestamps (a Pushgateway refuses them), into
    the group job=JOB, backend=<the run's backend>. Each push replaces that group, so
    Prometheus scrapes the latest run; run_id is a label on every series. Raw samples are not
    pushed: backfill them with `sandbench export --format openmetrics`.
    Exit codes: 0 pushed; 1 the Pushgateway could not be reached or refused; 2 bad input.
    """
    run = load_run(run_dir)
    url = push.group_url(gateway, job, {"backend": run.info.backend})
    warn_damaged(run)
    document = openmetrics.to_pushgateway(summarize_run(run))
    push.push(url, document.text)
    console.print(f"{document.series} series of run {escape(run.run_id)} pushed to "
                  f"{escape(url)}", highlight=False)
    for line in document.skipped:
        console.print(f"left out: {escape(line)}", highlight=False)


COMMANDS = [export_command, push_command]
