"""The commands of nightly CI: ``compare``, ``history`` and ``examples`` (``export`` and
``push`` are in export.py).

``sandbench compare`` exit codes: 0 compared (and, with ``--fail-on``, passed); 1 a metric
regressed (or, with ``--fail-on inconclusive``, one was inconclusive); 2 bad input; 4 the
environments differ in a way that moves the numbers (kernel, CPU, runtime or cluster version,
image...) and ``--fail-on`` was given without ``--allow-env-change``: no pass or fail is given
across them.
"""

from __future__ import annotations

import json
import math
import sys
from importlib import resources
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sandbench.analysis.thresholds import Thresholds, parse
from sandbench import runner
from sandbench.cli import remeasure as remeasuring
from sandbench.cli.common import (cache_option, check_out_file, console, warn_damaged,
                                  write_out_file)
from sandbench.cli.summary import number
from sandbench.errors import EnvironmentChanged, Interrupted, NothingFound, Regressed
from sandbench.formats import RunMeta, VerdictRecord
from sandbench.nightly import compare as comparing
from sandbench.nightly import history as runs_history
from sandbench.nightly.compare import Comparison, ComparisonError, MetricComparison, Verdict
from sandbench.nightly.junit import to_junit
from sandbench.nightly.remeasure import borderline, merged
from sandbench.results import load_meta, load_run

#: Verdicts in the order the table lists them: what needs a look first.
ORDER = [Verdict.REGRESSED, Verdict.IMPROVED, Verdict.HOST_DRIFT, Verdict.INCONCLUSIVE,
         Verdict.UNCHANGED]
STYLE = {Verdict.REGRESSED: "bold red", Verdict.IMPROVED: "green", Verdict.HOST_DRIFT: "magenta",
         Verdict.INCONCLUSIVE: "yellow", Verdict.UNCHANGED: "dim"}

#: CI logs are no terminal: rich would fold the comparison table into 80 columns.
WIDTH = None if sys.stdout is not None and sys.stdout.isatty() else 200
show = Console(width=WIDTH)


def _median(side: comparing.Side) -> str:
    if not side.n:
        return f"failed x{side.failed}" if side.failed else "-"
    return f"{number(side.median)} [{number(side.ci_low)}, {number(side.ci_high)}]"


def _change(judgement: comparing.Judgement) -> str:
    j = judgement
    if not (math.isfinite(j.change) and math.isfinite(j.change_low)):
        return "-"
    return f"{j.change:+.1%} [{j.change_low:+.1%}, {j.change_high:+.1%}]"


def _row(metric: MetricComparison) -> list[str]:
    p_value = metric.judgement.p_value
    style = STYLE[metric.verdict]
    return [escape(metric.runtime), escape(f"{metric.workload} {metric.name} ({metric.unit})"),
            _median(metric.base), _median(metric.new), _change(metric.judgement),
            f"{p_value:.2g}" if math.isfinite(p_value) else "-", f"{metric.threshold:.0%}",
            f"[{style}]{metric.verdict}[/]"]


def print_comparison(comparison: Comparison) -> None:
    title = (f"{comparison.base_id} -> {comparison.new_id}" if comparison.mode == "runs"
             else f"run {comparison.base_id}, same-run A/B")
    table = Table(title=escape(title))
    for column in ("runtime", "metric", "base median [95% CI]", "new median [95% CI]",
                   "change [95% CI]", "p", "threshold", "verdict"):
        table.add_column(column, justify="left" if column in ("runtime", "metric", "verdict")
                         else "right")
    for metric in sorted(comparison.metrics, key=lambda m: ORDER.index(m.verdict)):
        table.add_row(*_row(metric))
    show.print(table)
    for metric in comparison.metrics:
        again = metric.judgement.reason.startswith("re-measured")
        floored = "(--min-change)" in metric.judgement.reason
        if again or floored or metric.verdict in (Verdict.REGRESSED, Verdict.IMPROVED,
                                                  Verdict.HOST_DRIFT):
            show.print(f"[{STYLE[metric.verdict]}]{metric.verdict}[/] "
                       f"{escape(metric.runtime)} {escape(metric.workload)} "
                       f"{escape(metric.name)}: {escape(metric.judgement.reason)}",
                       soft_wrap=True)
    show.print(f"{comparison.tally()} (Mann-Whitney U, alpha {comparison.alpha:g}; "
               f"threshold {comparison.thresholds.default:.0%} unless set per metric; "
               f"minimum change {comparison.thresholds.min_change_text()})",
               highlight=False, soft_wrap=True)
    if comparison.remeasured is not None:
        rerun = comparison.remeasured
        show.print(f"re-measured {len(rerun.metrics)} borderline metrics in run "
                   f"{escape(rerun.run_id)} ({escape(rerun.dir)}); their verdicts above are the "
                   "re-measurement's", highlight=False, soft_wrap=True)


def print_statuses(run_dirs: list[Path]) -> None:
    """Say so when a compared run did not complete (interrupted, failed, crashed)."""
    for run_dir in run_dirs:
        meta = RunMeta.read(load_meta(run_dir))
        if meta.status != "completed":
            reason = f": {meta.status_reason}" if meta.status_reason else ""
            console.print(f"[bold yellow]note: run {escape(meta.run_id)} "
                          f"is {meta.status}{escape(reason)}; its numbers are partial[/]",
                          soft_wrap=True, highlight=False)


def print_environment(comparison: Comparison) -> None:
    gating = comparison.gating_differences
    if gating:
        console.rule("[bold red]THE ENVIRONMENTS DIFFER[/]")
        for difference in gating:
            console.print(f"[bold red]  {escape(str(difference))}[/]", soft_wrap=True)
        console.print("[bold red]Changes across these may be the environment's, not the "
                      "runtimes'.[/]")
        console.rule()
    for difference in comparison.environment:
        if not difference.gating:
            console.print(f"note: {escape(str(difference))}", soft_wrap=True, highlight=False)


def _comparison(base_run: Path, new_run: Path | None, runtime_a: str | None,
                runtime_b: str | None, thresholds: Thresholds, alpha: float) -> Comparison:
    base = load_run(base_run)
    if new_run is not None:
        if runtime_a or runtime_b:
            raise ComparisonError("--a/--b compare two runtimes of one run; with two runs, "
                                  "runtimes are matched by name")
        new = load_run(new_run)
        warn_damaged(base, new)
        return comparing.compare_runs(base, new, thresholds=thresholds, alpha=alpha)
    warn_damaged(base)
    if runtime_a and runtime_b:
        return comparing.compare_variants(base, runtime_a, runtime_b, thresholds=thresholds,
                                          alpha=alpha)
    if runtime_a or runtime_b:
        raise ComparisonError("give both --a and --b (the base and the new runtime of the run)")
    pairs = comparing.compare_all_variants(base, thresholds=thresholds, alpha=alpha)
    if not pairs:
        raise ComparisonError(f"run {base.run_id!r} has no variants run beside their runtime; "
                              "give a second run, or --a and --b")
    return comparing.merge(pairs)


def _warn_unknown_names(comparison: Comparison, thresholds: Thresholds) -> None:
    """Say which per-metric --threshold and --min-change names no compared metric has: a
    misspelt name (END_TO_EXIT) would silently leave that metric to the defaults."""
    measured = sorted({m.metric for m in comparison.metrics})
    for flag, names in (("--threshold", thresholds.per_metric), ("--min-change",
                                                                 thresholds.min_change)):
        for name in sorted(set(names) - set(measured)):
            console.print(f"[yellow]warning:[/] {flag} {escape(name)}=...: no compared metric "
                          f"is named {escape(name)!r}, so it sets nothing (the metrics: "
                          f"{escape(', '.join(measured)) or 'none'})", highlight=False,
                          soft_wrap=True)


def _remeasured(comparison: Comparison, base_run: Path, cache_dir: Path) -> Comparison:
    """The comparison with its borderline metrics measured again (cli/remeasure.py)."""
    keys = borderline(comparison)
    if not keys:
        console.print("no borderline metric: nothing re-measured", highlight=False)
        return comparison
    again = remeasuring.measure_again(comparison, keys, cache_dir)
    thresholds = comparison.thresholds
    if comparison.mode == "runs":
        second = comparing.compare_runs(load_run(base_run), again, thresholds=thresholds,
                                        alpha=comparison.alpha)
    else:
        ran = set(again.info.runtimes)
        second = comparing.merge(
            comparing.compare_variants(again, a, b, thresholds=thresholds,
                                       alpha=comparison.alpha)
            for a, b in comparison.pairs if a in ran and b in ran)
    return merged(comparison, second, keys, again.run_id)


def _gate(comparison: Comparison, fail_on: str | None, allow_env_change: bool) -> str:
    """"compared" (no gate asked for), "refused", "failed" or "passed"."""
    if fail_on is None:
        return "compared"
    if comparison.gating_differences and not allow_env_change:
        return "refused"
    bad = {Verdict.REGRESSED} | ({Verdict.INCONCLUSIVE} if fail_on == "inconclusive" else set())
    return "failed" if any(m.verdict in bad for m in comparison.metrics) else "passed"


@click.command(name="compare")
@click.argument("base_run", type=click.Path(path_type=Path))
@click.argument("new_run", required=False, type=click.Path(path_type=Path))
@click.option("--a", "runtime_a", help="Same-run A/B: the base runtime (of BASE_RUN).")
@click.option("--b", "runtime_b", help="Same-run A/B: the runtime judged against --a.")
@click.option("--threshold", "threshold_options", multiple=True, metavar="SPEC",
              help="Change that counts, repeatable: 10% or median:10% (every metric, default "
                   "10%), request_to_exit=5% (one metric).")
@click.option("--min-change", "min_change_options", multiple=True, metavar="SPEC",
              help="Smallest absolute move of a median that can count, repeatable: 1 (ms, "
                   "every millisecond metric; the default), 0 (none), end_to_exit=0.5 (one "
                   "metric, in its own unit).")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=comparing.ALPHA, show_default=True,
              help="Significance level of the Mann-Whitney U test.")
@click.option("--fail-on", type=click.Choice(["regression", "inconclusive"]),
              help="Exit 1 when a metric regressed (inconclusive: or could not be judged).")
@click.option("--allow-env-change", is_flag=True,
              help="Gate even though kernel, CPU, versions or image differ between the runs.")
@click.option("--json", "json_file", type=click.Path(path_type=Path),
              help="Write the comparison as JSON.")
@click.option("--junit", "junit_file", type=click.Path(path_type=Path),
              help="Write JUnit XML: a test case per metric (regressed fails, inconclusive "
                   "is skipped).")
@click.option("--record", is_flag=True,
              help=f"Write the comparison and its gate to NEW_RUN/{runs_history.VERDICT_FILE}, "
                   "for `sandbench history --last-good`.")
@click.option("--remeasure", is_flag=True,
              help="Measure borderline metrics again (p between alpha and 10 x alpha past the "
                   "threshold, or a change whose interval reaches inside the threshold): their "
                   "runtimes and workloads are run again with NEW_RUN's spec, into "
                   f"NEW_RUN/{remeasuring.SUBDIR}/, and judged on that run. Needs the backend "
                   "NEW_RUN ran on.")
@cache_option
def compare_command(base_run: Path, new_run: Path | None, runtime_a: str | None,
                    runtime_b: str | None, threshold_options: tuple[str, ...],
                    min_change_options: tuple[str, ...], alpha: float,
                    fail_on: str | None, allow_env_change: bool, json_file: Path | None,
                    junit_file: Path | None, record: bool, remeasure: bool,
                    cache_dir: Path) -> None:
    """Compare NEW_RUN with BASE_RUN, or two runtimes of one run (same-run A/B).

    \b
    sandbench compare BASE_RUN NEW_RUN        every runtime in both, matched by name
    sandbench compare RUN --a runc --b runc-b  runc-b against runc, both in RUN
    sandbench compare RUN                      each variant of RUN's spec against its runtime

    A metric regressed when its median moved past the threshold in the direction that is
    worse for it AND the change is significant (Mann-Whitney U, p < alpha) AND the median moved
    by at least the metric's minimum change (1 ms for a millisecond metric unless
    --min-change says otherwise).
    """
    with runner.sigterm_interrupts():
        try:
            _compare(base_run, new_run, runtime_a, runtime_b,
                     parse(threshold_options, min_changes=min_change_options), alpha, fail_on,
                     allow_env_change, json_file, junit_file, record, remeasure, cache_dir)
        except KeyboardInterrupt:
            # Ctrl-C is an interrupt like SIGTERM (130), not click's "Aborted!" (1).
            raise Interrupted("interrupted before the comparison ended: its gate was not "
                              "given, and its --json, --junit or --record file may be "
                              "missing") from None


def _compare(base_run: Path, new_run: Path | None, runtime_a: str | None,
             runtime_b: str | None, thresholds: Thresholds, alpha: float,
             fail_on: str | None, allow_env_change: bool, json_file: Path | None,
             junit_file: Path | None, record: bool, remeasure: bool, cache_dir: Path) -> None:
    for flag, path in (("--json", json_file), ("--junit", junit_file)):
        if path is not None:
            check_out_file(path, flag)
    print_statuses([base_run, *([new_run] if new_run else [])])
    comparison = _comparison(base_run, new_run, runtime_a, runtime_b, thresholds, alpha)
    _warn_unknown_names(comparison, thresholds)
    if record:  # before re-measuring, which runs sandboxes for minutes
        check_out_file(comparison.new_dir / runs_history.VERDICT_FILE, "--record")
    if remeasure:
        comparison = _remeasured(comparison, base_run, cache_dir)
    print_environment(comparison)
    print_comparison(comparison)
    gate = _gate(comparison, fail_on, allow_env_change)
    document = VerdictRecord.model_validate({
        **comparison.to_json(), "gate": gate, "fail_on": fail_on,
        "allow_env_change": allow_env_change}).model_dump(mode="json")
    if json_file is not None:
        write_out_file(json_file, json.dumps(document, indent=2) + "\n", "--json")
    if junit_file is not None:
        write_out_file(junit_file, to_junit(comparison, gate_environment=not allow_env_change),
                       "--junit")
    if record:
        write_out_file(comparison.new_dir / runs_history.VERDICT_FILE,
                       json.dumps(document, indent=2) + "\n", "--record")
    if gate == "refused":
        raise EnvironmentChanged("not gating across a changed environment (listed above); pass "
                                 "--allow-env-change if the change is expected")
    if gate == "failed":
        raise Regressed(f"{comparison.count(Verdict.REGRESSED)} metrics regressed"
                        + (f", {comparison.count(Verdict.INCONCLUSIVE)} inconclusive"
                           if fail_on == "inconclusive" else ""))


@click.command(name="history")
@click.argument("history_dir", type=click.Path(path_type=Path))
@click.option("--rebuild", is_flag=True, help=f"Rebuild {runs_history.INDEX_FILE} from scratch.")
@click.option("--json", "as_json", is_flag=True, help="Print the index entries as JSON lines.")
@click.option("--last-good", is_flag=True,
              help="Print only the directory of the newest good run (completed, valid, gate "
                   "not failed); exit 1 when there is none.")
@click.option("--before", metavar="RUN_ID", help="With --last-good: started before this run.")
@click.option("--backend", help="With --last-good: of this backend only.")
@click.option("--limit", type=click.IntRange(min=1), help="List only the newest N runs.")
def history_command(history_dir: Path, rebuild: bool, as_json: bool, last_good: bool,
                    before: str | None, backend: str | None, limit: int | None) -> None:
    """List the runs under HISTORY_DIR (a directory of run directories), oldest first."""
    found_runs = runs_history.scan(history_dir, rebuild=rebuild)
    for path, reason in found_runs.unreadable:
        console.print(f"[yellow]skipped[/] {escape(path)}: {escape(reason)}", highlight=False,
                      soft_wrap=True)
    entries = found_runs.entries
    if last_good:
        found = runs_history.last_good(entries, before=before, backend=backend)
        if found is None:
            raise NothingFound(f"no good run in {history_dir}")
        show.print(str(history_dir / found.path), highlight=False, soft_wrap=True)
        return
    entries = entries[-limit:] if limit else entries
    if as_json:
        for entry in entries:
            show.print(json.dumps(entry.to_json(), sort_keys=True), highlight=False,
                       soft_wrap=True)
        return
    table = Table(title=escape(f"{len(entries)} runs in {history_dir}"))
    for column in ("run id", "time", "status", "backend", "runtimes", "host", "commit", "gate"):
        table.add_column(column)
    for e in entries:
        status = e.status + ("" if e.valid is not False else " (invalid)")
        table.add_row(*(escape(text) for text in (
            e.run_id, e.started_at[:19].replace("T", " "), status, e.backend,
            ", ".join(e.runtimes), e.host, e.commit[:10], e.gate)))
    show.print(table)


EXAMPLES = {"github-actions": "nightly-github-actions.yml",
            "cronjob": "nightly-cronjob.yaml",
            "grafana": "grafana-dashboard.json"}


@click.command(name="examples")
@click.argument("name", required=False, type=click.Choice(list(EXAMPLES)))
def examples_command(name: str | None) -> None:
    """Print a ready-to-copy nightly pipeline (github-actions, cronjob) or the Grafana
    dashboard of the series `sandbench push` and `export --format openmetrics` write."""
    if name is None:
        for known, file in EXAMPLES.items():
            show.print(f"{known:16} {file}", highlight=False)
        return
    text = resources.files("sandbench").joinpath("examples", EXAMPLES[name]).read_text()
    sys.stdout.write(text)


COMMANDS = [compare_command, history_command, examples_command]
