"""`sandbench run` and `sandbench report`: measure, then render what was measured."""

from __future__ import annotations

import math
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich import box
from rich.table import Table

from sandbench import backends, results, runner
from sandbench.analysis.summary import RunSummary, summarize_run
from sandbench.cli.common import (cache_option, check_out_dir, check_out_file, console,
                                   kube_flags, kube_options, pull_options, show, split,
                                   warn_damaged)
from sandbench.cli.summary import legend, summary_tables
from sandbench.errors import BadInput, Interrupted, InvalidRun, RunFailed, SandbenchError
from sandbench.report import write_report
from sandbench.report.render import REPORT_FILE
from sandbench.report.vm_overhead import NotComparable
from sandbench.spec import (ARRIVAL_SYNTAX, MAX_CONCURRENCY, MAX_ROUNDS, MAX_TIMEOUT_S, PROFILES,
                            Overrides, Spec, load_spec, parse_arrival, parse_levels)

VERBOSE_HELP = ("Every metric in the summary table, not only each workload's headline "
                "(`sandbench summary RUN_DIR -v` prints it again later).")


@click.command()
@click.argument("spec_file", required=False, type=click.Path(path_type=Path))
@click.option("--profile", type=click.Choice(PROFILES), default="quick", show_default=True,
              help="Built-in spec used when no SPEC_FILE is given.")
@click.option("--backend", help="Where sandboxes run: " + "; ".join(
    f"{name} ({about})" for name, about in backends.DESCRIPTIONS.items()) + ".")
@click.option("--runtimes", help="Comma-separated runtimes, e.g. native,runc,crun.")
@click.option("--workloads", "workload_names",
              help="Comma-separated workloads: start,syscall,io,footprint,density,net.")
@click.option("--rounds", type=click.IntRange(min=1, max=MAX_ROUNDS),
              help=f"Measured rounds for every workload, at most {MAX_ROUNDS:,} (each round is "
                   "a fresh sandbox per case and runtime).")
@click.option("--warmup", type=click.IntRange(min=0, max=MAX_ROUNDS),
              help="Warmup rounds for every workload.")
@click.option("--timeout", type=click.FloatRange(min=0.1, max=MAX_TIMEOUT_S),
              help=f"Seconds one sandbox may take, at most {MAX_TIMEOUT_S:,.0f} (a day).")
@click.option("--concurrency", help="Comma-separated levels of sandboxes started together, e.g. "
              f"1,4,16 (1 to {MAX_CONCURRENCY}; start only). Default 1: one at a time.")
@click.option("--arrival", help=f"When a burst's sandboxes are requested: {ARRIVAL_SYNTAX}. "
              "Default burst: all at once.")
@click.option("--nodes", help="kubernetes: run every burst on these nodes at once, the "
              "--concurrency level on each: all (every schedulable node), a comma list of "
              "names, or a label selector (role=bench; selector:KEY for a bare key). Every "
              "sample is labelled with its node.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True, help="Directory the run directory is created in.")
@click.option("--no-report", is_flag=True, help="Do not render the HTML report at the end.")
@click.option("-v", "--verbose", is_flag=True, help=VERBOSE_HELP)
@cache_option
@kube_options
@pull_options
def run(spec_file: Path | None, profile: str, backend: str | None, runtimes: str | None,
        workload_names: str | None, rounds: int | None, warmup: int | None,
        timeout: float | None, concurrency: str | None, arrival: str | None,
        nodes: str | None, out: Path,
        no_report: bool, verbose: bool, cache_dir: Path,
        kubeconfig: str | None, kube_context: str | None, node: str | None,
        image: str | None, pull_policy: str | None, pull: str | None,
        cri_endpoint: str | None, crictl: str | None) -> None:
    """Run an experiment: SPEC_FILE (YAML) or the --profile, with flags overriding it.

    Every sample is written to OUT/RUN_ID/samples.jsonl as it is measured; the report goes
    to OUT/RUN_ID/report.html. Ctrl-C stops cleanly and keeps what was measured.
    """
    if timeout is not None and not math.isfinite(timeout):  # FloatRange lets nan through
        raise BadInput(f"--timeout {timeout} is not a number of seconds; give 0.1 to "
                       f"{MAX_TIMEOUT_S:.0f}")
    try:
        levels = parse_levels(concurrency) if concurrency is not None else None
        arrives = parse_arrival(arrival) if arrival is not None else None
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    overrides = Overrides(backend=backend, runtimes=split(runtimes),
                          workloads=split(workload_names, "--workloads", "start,syscall"),
                          rounds=rounds, warmup=warmup,
                          timeout_s=timeout, concurrency=levels, arrival=arrives,
                          kubernetes={**kube_flags(kubeconfig, kube_context, node, image,
                                                   pull_policy),
                                      "pull": pull, "cri_endpoint": cri_endpoint,
                                      "crictl": crictl, "nodes": nodes})
    spec = load_spec(spec_file, profile, overrides)
    # Before the run directory is made and the image prepared (minutes, when it is built):
    # a bad --out is bad input, not a run that failed.
    check_out_dir(out, "--out")
    new_out = not out.exists()
    run_id, run_dir = results.create_run_dir(out)
    with runner.sigterm_interrupts():
        try:
            loaded = measure(spec, run_id, run_dir, cache_dir, new_out)
            # One summary for the terminal and the report (computed once).
            summary = summarize_run(loaded)
            print_summary(summary, verbose=verbose)
            if not no_report:
                report_file = write_report(summary)
                show.print(f"report: {report_file}", highlight=False, soft_wrap=True)
        except KeyboardInterrupt:
            # A Ctrl-C after the run recorded its end (the summary, the report): the run
            # itself is whole on disk.
            raise Interrupted(f"interrupted; the run is in {run_dir}") from None
    _raise_for(loaded.info.status, loaded)


def measure(spec: Spec, run_id: str, run_dir: Path, cache_dir: Path,
             new_out: bool) -> results.Run:
    """Prepare, run every sandbox, print the summary; the run as recorded."""
    backend_obj: backends.Backend | None = None
    writer: results.RunWriter | None = None
    try:
        backend_obj = backends.create(spec.backend, cache_dir=cache_dir,
                                      resources=spec.resources, run_id=run_id,
                                      kubernetes=spec.kubernetes)
        runner.add_variants(backend_obj, spec)
        # Every name checked before any probing.
        runner.plan(spec, backend_obj.known_runtimes(), backend_obj.concurrent)
        spec, notes = runner.check_runtimes(backend_obj, spec)
        for note in notes:
            console.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
        runner.plan(spec, backend_obj.known_runtimes(), backend_obj.concurrent)
        with console.status(f"preparing the {spec.backend} backend..."):
            try:
                backend_obj.prepare(spec.runtimes, progress=lambda line: console.log(line))
            except SandbenchError as exc:
                # Whatever the kind, failing here is a run that could not start.
                raise RunFailed(f"cannot prepare: {exc}") from exc
        # Laid out once prepared: a cluster knows only then which paths a peer can take.
        prepared = backend_obj
        the_plan = runner.plan(spec, prepared.known_runtimes(), prepared.concurrent,
                               lambda: prepared.peer_paths(spec.runtimes))
        writer = results.RunWriter(run_dir, runner.run_metadata(run_id, the_plan, backend_obj,
                                                               notes))
        width = prepared.burst_width()
        on_nodes = f" (bursts on {width} nodes at once)" if width > 1 else ""
        console.print(f"run [bold]{run_id}[/]: {the_plan.started(width)} sandboxes{on_nodes}, "
                      f"runtimes {', '.join(spec.runtimes)}, samples in {run_dir}/",
                      highlight=False)
        _run_with_progress(the_plan, backend_obj, writer)
    except BaseException as exc:
        # Once the runner has begun, it deletes what it made and records the run's end
        # itself. Before that (a signal while preparing, or between the writer and the
        # runner) nothing was measured: leave nothing behind, the run directory included.
        if writer is None or writer.meta.get("status") == "running":
            if backend_obj is not None:
                backend_obj.cleanup()
            results.discard_unmeasured(run_dir, with_parent=new_out)
            if isinstance(exc, (KeyboardInterrupt, Interrupted)):
                raise Interrupted("interrupted before anything was measured") from None
        raise
    loaded = results.load_run(run_dir)
    warn_damaged(loaded)
    return loaded


def _run_with_progress(the_plan: runner.Plan, backend_obj: backends.Backend,
                       writer: results.RunWriter) -> str:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("starting", total=len(the_plan.steps))

        def progress(done: int, total: int, step: runner.Step) -> None:
            warm = " warmup" if step.warmup else ""
            what = f"{step.workload.name}/{step.case.name} {step.runtime} round {step.round}{warm}"
            bar.update(task, completed=done, description=escape(what))

        def notice(line: str) -> None:
            console.print(f"[yellow]{escape(line)}[/]", highlight=False, soft_wrap=True)

        return runner.Runner(the_plan, backend_obj, writer, progress, notice).run()


def _raise_for(status: str, loaded: results.Run) -> None:
    if status == "interrupted":
        skipped = any("cleanup was skipped" in w for w in loaded.info.warnings)
        gc = "; cleanup was skipped: run `sandbench gc` to finish it" if skipped else ""
        raise Interrupted(f"interrupted; the samples measured so far are in {loaded.dir}{gc}")
    if loaded.info.valid is False:
        raise InvalidRun("; ".join(loaded.info.warnings))


def print_summary(summary: RunSummary, *, verbose: bool = False) -> None:
    """The run's summary on stdout: a table per workload, then what the marks mean."""
    loaded = summary.run
    tables = summary_tables(summary.table, loaded.info, verbose=verbose)
    if not tables:
        show.print("no samples were measured")
        return
    show.print(f"run {loaded.run_id} ({loaded.info.status})", highlight=False)
    for found in tables:
        # Title and caption as lines of their own: under a table's title they would wrap
        # at the table's width, not the terminal's.
        show.print(f"\n[bold]{escape(found.title)}[/]", highlight=False, soft_wrap=True)
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for i, column in enumerate(found.header):
            table.add_column(escape(column), justify="left" if i < found.names else "right",
                             overflow="fold")
        for row in found.rows:
            table.add_row(*(escape(cell) for cell in row))
        show.print(table)
        if found.caption:
            show.print(escape(found.caption), highlight=False)
    show.print()
    for line in legend(loaded.info, summary.table):
        show.print(escape(line), highlight=False)


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("-v", "--verbose", is_flag=True, help="Every metric, not only each workload's "
              "headline.")
def summary(run_dir: Path, verbose: bool) -> None:
    """Print RUN_DIR's summary tables again, as `sandbench run` printed them at its end."""
    loaded = results.load_run(run_dir)
    warn_damaged(loaded)
    print_summary(summarize_run(loaded), verbose=verbose)


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="HTML file to write (default RUN_DIR/report.html).")
@click.option("--no-embed-js", is_flag=True,
              help="Link plotly.js from a CDN instead of embedding it (smaller, needs a network).")
@click.option("--baseline", type=click.Path(path_type=Path),
              help="A run to judge this one against: a verdict section at the top.")
@click.option("--history", type=click.Path(path_type=Path),
              help="A directory of past runs: trend charts and change points per metric.")
@click.option("--qemu-run", type=click.Path(path_type=Path),
              help="A local run of the qemu runtime (start workload) booting the same guest as "
                   "this run's KubeVirt VMIs: a section on what KubeVirt adds around the same "
                   "VM, event by event.")
def report(run_dir: Path, output: Path | None, no_embed_js: bool, baseline: Path | None,
           history: Path | None, qemu_run: Path | None) -> None:
    """Render RUN_DIR's results as one self-contained HTML file."""
    loaded = results.load_run(run_dir)
    against = results.load_run(baseline) if baseline else None
    local_vm = results.load_run(qemu_run) if qemu_run else None
    path = output if output is not None else run_dir / REPORT_FILE
    check_out_file(path, "-o" if output is not None else "RUN_DIR")
    warn_damaged(loaded, against, local_vm)
    try:
        write_report(summarize_run(loaded), path, embed_js=not no_embed_js, baseline=against,
                     history=history, qemu_run=local_vm)
    except NotComparable as exc:
        given = run_dir if exc.argument == "RUN_DIR" else qemu_run
        raise BadInput(f"{exc.argument} {str(given)!r}: {exc}") from exc
    except OSError as exc:
        raise BadInput(f"cannot write the report to {str(path)!r}: {exc.strerror}") from exc
    show.print(f"report: {path}", highlight=False, soft_wrap=True)
