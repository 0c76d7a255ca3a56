"""The `sandbench` command.

Exit codes: 0 success; 1 a run that finished but is not valid (over 10% failed samples) or
another failure; 2 bad input (spec, names, flags), nothing run; 3 a requested runtime is not
usable here, nothing measured; 130 interrupted (samples kept, report still renders).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sandbench import __version__, backends, doctor, image, results, runner
from sandbench.backends import BackendError
from sandbench.report import render_report
from sandbench.spec import PROFILES, Overrides, Resources, SpecError, load_spec
from sandbench.summary import summary_rows

EXIT_INVALID, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 1, 2, 3, 130

console = Console(stderr=True)
show = Console()


def default_cache() -> Path:
    configured = os.environ.get("SANDBENCH_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sandbench"


def fail(message: str, code: int) -> NoReturn:
    console.print(f"[bold red]sandbench:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    sys.exit(code)


def _split(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


cache_option = click.option(
    "--cache-dir", type=click.Path(path_type=Path), default=default_cache, show_default="$SANDBENCH_CACHE or ~/.cache/sandbench",
    help="Where the workload image and scratch space live.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sandbench")
def cli() -> None:
    """Run identical workloads under different sandboxes and show what isolation costs.

    \b
    Start with:  sandbench doctor       (what runs here)
                 sandbench run          (the quick profile on native, runc, crun)
                 sandbench report DIR   (the HTML comparison of a run)
    """


@cli.command()
@click.argument("spec_file", required=False, type=click.Path(path_type=Path))
@click.option("--profile", type=click.Choice(PROFILES), default="quick", show_default=True,
              help="Built-in spec used when no SPEC_FILE is given.")
@click.option("--backend", help="Where sandboxes run: local (this host).")
@click.option("--runtimes", help="Comma-separated runtimes, e.g. native,runc,crun.")
@click.option("--workloads", "workload_names", help="Comma-separated workloads: start,syscall,io.")
@click.option("--rounds", type=click.IntRange(min=1), help="Measured rounds for every workload.")
@click.option("--warmup", type=click.IntRange(min=0), help="Warmup rounds for every workload.")
@click.option("--timeout", type=click.FloatRange(min=0.1), help="Seconds one sandbox may take.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True, help="Directory the run directory is created in.")
@click.option("--no-report", is_flag=True, help="Do not render the HTML report at the end.")
@cache_option
def run(spec_file: Path | None, profile: str, backend: str | None, runtimes: str | None,
        workload_names: str | None, rounds: int | None, warmup: int | None,
        timeout: float | None, out: Path, no_report: bool, cache_dir: Path) -> None:
    """Run an experiment: SPEC_FILE (YAML) or the --profile, with flags overriding it.

    Every sample is written to OUT/RUN_ID/samples.jsonl as it is measured; the report goes
    to OUT/RUN_ID/report.html. Ctrl-C stops cleanly and keeps what was measured.
    """
    overrides = Overrides(backend=backend, runtimes=_split(runtimes),
                          workloads=_split(workload_names), rounds=rounds, warmup=warmup,
                          timeout_s=timeout)
    try:
        spec = load_spec(spec_file, profile, overrides)
        run_id = results.new_run_id()
        backend_obj = backends.create(spec.backend, cache_dir=cache_dir, resources=spec.resources,
                                      run_id=run_id)
        the_plan = runner.plan(spec, backend_obj.known_runtimes())
    except (SpecError, BackendError) as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        runner.check_runtimes(backend_obj, spec)
    except runner.RuntimeUnavailable as exc:
        fail(f"{exc} (run `sandbench doctor`)", EXIT_UNAVAILABLE)
    with console.status("preparing the workload image..."):
        try:
            backend_obj.prepare(progress=lambda line: console.log(line))
        except (image.ImageBuildError, BackendError) as exc:
            fail(f"cannot prepare the image: {exc}", 1)
    run_dir = out / run_id
    writer = results.RunWriter(run_dir, runner.run_metadata(run_id, the_plan, backend_obj))
    console.print(f"run [bold]{run_id}[/]: {len(the_plan.steps)} sandboxes, "
                  f"runtimes {', '.join(spec.runtimes)}, samples in {run_dir}/", highlight=False)
    status = _run_with_progress(the_plan, backend_obj, writer)
    loaded = results.load_run(run_dir)
    print_summary(loaded)
    if not no_report:
        report = render_report(run_dir)
        show.print(f"report: {report}", highlight=False, soft_wrap=True)
    _exit_for(status, loaded)


def _run_with_progress(the_plan: runner.Plan, backend_obj: backends.Backend,
                       writer: results.RunWriter) -> str:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("starting", total=len(the_plan.steps))

        def progress(done: int, total: int, step: runner.Step) -> None:
            warm = " warmup" if step.warmup else ""
            what = f"{step.workload.name}/{step.case.name} {step.runtime} round {step.round}{warm}"
            bar.update(task, completed=done, description=what)

        return runner.Runner(the_plan, backend_obj, writer, progress).run()


def _exit_for(status: str, loaded: results.Run) -> None:
    if status == "interrupted":
        fail(f"interrupted; the samples measured so far are in {loaded.dir}", EXIT_INTERRUPTED)
    if loaded.meta.get("valid") is False:
        fail("; ".join(loaded.meta.get("warnings", [])), EXIT_INVALID)


def print_summary(loaded: results.Run) -> None:
    header, rows = summary_rows(loaded)
    if not rows:
        show.print("no samples were measured")
        return
    table = Table(title=f"run {loaded.run_id} ({loaded.meta.get('status')})", show_lines=False)
    for column in header:
        table.add_column(column, justify="left" if column in ("workload", "metric") else "right")
    for row in rows:
        table.add_row(*row)
    show.print(table)


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="HTML file to write (default RUN_DIR/report.html).")
@click.option("--no-embed-js", is_flag=True,
              help="Link plotly.js from a CDN instead of embedding it (smaller, needs a network).")
def report(run_dir: Path, output: Path | None, no_embed_js: bool) -> None:
    """Render RUN_DIR's results as one self-contained HTML file."""
    try:
        path = render_report(run_dir, output, embed_js=not no_embed_js)
    except results.ResultsError as exc:
        fail(str(exc), EXIT_USAGE)
    show.print(f"report: {path}", highlight=False, soft_wrap=True)


@cli.command(name="doctor")
@click.option("--backend", default="local", show_default=True, help="Backend to check.")
@click.option("--runtimes", help="Runtimes to check (default: every one the backend knows).")
@click.option("--fix", is_flag=True, help="Apply the fixes known to be safe (crun's cgroup mount).")
@cache_option
def doctor_command(backend: str, runtimes: str | None, fix: bool, cache_dir: Path) -> None:
    """Say which runtimes are usable here and, for each that is not, why and how to fix it."""
    if fix:
        for done in doctor.apply_fixes():
            show.print(f"fixed: {done}", highlight=False)
    try:
        backend_obj = backends.create(backend, cache_dir=cache_dir, resources=Resources())
    except BackendError as exc:
        fail(str(exc), EXIT_USAGE)
    names = _split(runtimes) or list(backend_obj.known_runtimes())
    unknown = [n for n in names if n not in backend_obj.known_runtimes()]
    if unknown:
        fail(f"unknown runtime {unknown[0]!r}; known runtimes: "
             f"{', '.join(backend_obj.known_runtimes())}", EXIT_USAGE)
    findings = doctor.diagnose(backend_obj, names, cache_dir)
    table = Table(title=f"sandbench doctor ({backend})")
    for column in ("check", "ok", "detail", "fix"):
        table.add_column(column)
    for finding in findings:
        table.add_row(finding.subject, "yes" if finding.ok else "[red]NO[/]", finding.detail,
                      finding.fix or "")
    show.print(table)
    if not all(f.ok for f in findings):
        sys.exit(EXIT_UNAVAILABLE)


@cli.group(name="image")
def image_group() -> None:
    """The workload image every sandbox runs."""


@image_group.command(name="build")
@click.option("--force", is_flag=True, help="Rebuild even when the cached image is current.")
@cache_option
def image_build(force: bool, cache_dir: Path) -> None:
    """Build the workload image (rootfs + OCI archive), unless it is cached for these inputs."""
    with console.status("building the workload image..."):
        try:
            built = image.build_image(cache_dir, force=force, progress=lambda l: console.log(l))
        except image.ImageBuildError as exc:
            fail(str(exc), 1)
    state = "built" if built.built else "cached"
    show.print(f"{state}: {built.name}\n  rootfs: {built.rootfs}\n  oci archive: "
              f"{built.oci_archive}\n  digest: {built.manifest_digest}", highlight=False,
               soft_wrap=True)


@cli.command()
@click.option("--backend", default="local", show_default=True, help="Backend to clean.")
@cache_option
def gc(backend: str, cache_dir: Path) -> None:
    """Delete whatever earlier (crashed) runs left behind: containers, mounts, scratch."""
    try:
        backend_obj = backends.create(backend, cache_dir=cache_dir, resources=Resources())
    except BackendError as exc:
        fail(str(exc), EXIT_USAGE)
    deleted = backend_obj.gc()
    for item in deleted:
        show.print(f"deleted {item}", highlight=False)
    show.print(f"{len(deleted)} leftovers deleted")


def main() -> None:
    cli()
