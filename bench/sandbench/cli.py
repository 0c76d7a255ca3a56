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
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sandbench import __version__, backends, doctor, image, results, runner
from sandbench.backends import BackendError
from sandbench.cli_compare import COMMANDS as NIGHTLY_COMMANDS
from sandbench.image import ImageBuildError
from sandbench.report import render_report
from sandbench.spec import PROFILES, KubernetesSettings, Overrides, Resources, SpecError, load_spec
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
    console.print(f"[bold red]sandbench:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def _split(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


cache_option = click.option(
    "--cache-dir", type=click.Path(path_type=Path), default=default_cache, show_default="$SANDBENCH_CACHE or ~/.cache/sandbench",
    help="Where the workload image and scratch space live.")


def kube_options(command: Any) -> Any:
    """Flags of the kubernetes backend, shared by run, doctor and gc."""
    options = [
        click.option("--kubeconfig", help="kubeconfig file (default $KUBECONFIG, ~/.kube/config, "
                     "then in-cluster config)."),
        click.option("--context", "kube_context", help="kubeconfig context to use."),
        click.option("--node", help="Node to pin every pod to (default: chosen)."),
        click.option("--image", help="Workload image reference for pods (default: the built one)."),
        click.option("--pull-policy", type=click.Choice(["Always", "IfNotPresent", "Never"]),
                     help="imagePullPolicy of the pods."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _kube_flags(kubeconfig: str | None, kube_context: str | None, node: str | None,
                image_ref: str | None, pull_policy: str | None) -> dict[str, Any]:
    return {"kubeconfig": kubeconfig, "context": kube_context, "node": node, "image": image_ref,
            "pull_policy": pull_policy}


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
@kube_options
def run(spec_file: Path | None, profile: str, backend: str | None, runtimes: str | None,
        workload_names: str | None, rounds: int | None, warmup: int | None,
        timeout: float | None, out: Path, no_report: bool, cache_dir: Path,
        kubeconfig: str | None, kube_context: str | None, node: str | None,
        image: str | None, pull_policy: str | None) -> None:
    """Run an experiment: SPEC_FILE (YAML) or the --profile, with flags overriding it.

    Every sample is written to OUT/RUN_ID/samples.jsonl as it is measured; the report goes
    to OUT/RUN_ID/report.html. Ctrl-C stops cleanly and keeps what was measured.
    """
    overrides = Overrides(backend=backend, runtimes=_split(runtimes),
                          workloads=_split(workload_names), rounds=rounds, warmup=warmup,
                          timeout_s=timeout,
                          kubernetes=_kube_flags(kubeconfig, kube_context, node, image, pull_policy))
    try:
        spec = load_spec(spec_file, profile, overrides)
        run_id = results.new_run_id()
        backend_obj = backends.create(spec.backend, cache_dir=cache_dir, resources=spec.resources,
                                      run_id=run_id, kubernetes=spec.kubernetes)
        runner.add_variants(backend_obj, spec)
        the_plan = runner.plan(spec, backend_obj.known_runtimes())
    except (SpecError, BackendError) as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        runner.check_runtimes(backend_obj, spec)
    except runner.RuntimeUnavailable as exc:
        fail(f"{exc} (run `sandbench doctor`)", EXIT_UNAVAILABLE)
    with console.status(f"preparing the {spec.backend} backend..."):
        try:
            backend_obj.prepare(spec.runtimes, progress=lambda line: console.log(line))
        except (ImageBuildError, BackendError) as exc:
            fail(f"cannot prepare: {exc}", 1)
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
        # Fold, never cut: a truncated metric name cannot be told from its neighbours.
        table.add_column(column, justify="left" if column in ("workload", "metric") else "right",
                         overflow="fold")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    show.print(table)


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="HTML file to write (default RUN_DIR/report.html).")
@click.option("--no-embed-js", is_flag=True,
              help="Link plotly.js from a CDN instead of embedding it (smaller, needs a network).")
@click.option("--baseline", type=click.Path(path_type=Path),
              help="A run to judge this one against: a verdict section at the top.")
@click.option("--history", type=click.Path(path_type=Path),
              help="A directory of past runs: trend charts and change points per metric.")
def report(run_dir: Path, output: Path | None, no_embed_js: bool, baseline: Path | None,
           history: Path | None) -> None:
    """Render RUN_DIR's results as one self-contained HTML file."""
    try:
        path = render_report(run_dir, output, embed_js=not no_embed_js, baseline=baseline,
                             history=history)
    except results.ResultsError as exc:
        fail(str(exc), EXIT_USAGE)
    show.print(f"report: {path}", highlight=False, soft_wrap=True)


@cli.command(name="doctor")
@click.option("--backend", type=click.Choice(backends.BACKENDS), default="local",
              show_default=True, help="Backend to check.")
@click.option("--runtimes", help="Runtimes to check (default: every one the backend knows "
              "locally; runc,crun on a cluster).")
@click.option("--fix", is_flag=True, help="Apply the fixes known to be safe (crun's cgroup mount).")
@click.option("--ssh", "ssh_dest", metavar="[USER@]HOST[:PORT]",
              help="Also read node facts over SSH (kernel command line, governor, KSM, THP, "
                   "kata-runtime env); the host key must be known.")
@click.option("--ssh-key", help="Private key file for --ssh (default: agent, ~/.ssh keys).")
@click.option("--ssh-known-hosts", help="known_hosts file holding --ssh's host key "
              "(default ~/.ssh/known_hosts).")
@click.option("--ssh-fingerprint", metavar="SHA256:...",
              help="The only host key --ssh accepts, as ssh-keygen -lf prints it.")
@cache_option
@kube_options
def doctor_command(backend: str, runtimes: str | None, fix: bool, ssh_dest: str | None,
                   ssh_key: str | None, ssh_known_hosts: str | None,
                   ssh_fingerprint: str | None, cache_dir: Path,
                   kubeconfig: str | None, kube_context: str | None, node: str | None,
                   image: str | None, pull_policy: str | None) -> None:
    """Say which runtimes are usable here and, for each that is not, why and how to fix it.

    On a cluster: reachability, the harness's permissions, the RuntimeClasses, a real probe
    pod per runtime, Kata node labels and the clock offset to each runtime's sandboxes.
    """
    if fix:
        for done in doctor.apply_fixes():
            show.print(f"fixed: {done}", highlight=False)
    ssh_findings: list[doctor.Finding] = []
    if ssh_dest:
        from sandbench import doctor_ssh

        try:
            target = doctor_ssh.target(ssh_dest, ssh_key, ssh_known_hosts, ssh_fingerprint)
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE)
        ssh_findings = doctor_ssh.findings(target)
    settings = KubernetesSettings(**{k: v for k, v in _kube_flags(
        kubeconfig, kube_context, node, image, pull_policy).items() if v is not None})
    backend_obj = backends.create(backend, cache_dir=cache_dir, resources=Resources(),
                                  run_id=f"doctor-{results.new_run_id()[-4:]}", kubernetes=settings)
    default = "runc,crun" if backend == "kubernetes" else None
    names = _split(runtimes or default) or list(backend_obj.known_runtimes())
    unknown = [n for n in names if n not in backend_obj.known_runtimes()]
    if unknown:
        fail(f"unknown runtime {unknown[0]!r}; known runtimes: "
             f"{', '.join(backend_obj.known_runtimes())}", EXIT_USAGE)
    if backend == "kubernetes":
        from sandbench import doctor_cluster
        from sandbench.backends.kubernetes import KubernetesBackend

        assert isinstance(backend_obj, KubernetesBackend)
        findings = doctor_cluster.diagnose(backend_obj, names)
    else:
        findings = doctor.diagnose(backend_obj, names, cache_dir)
    findings = ssh_findings + findings
    table = Table(title=f"sandbench doctor ({backend})")
    for column in ("check", "ok", "detail", "fix"):
        table.add_column(column)
    for finding in findings:
        table.add_row(escape(finding.subject), "yes" if finding.ok else "[red]NO[/]",
                      escape(finding.detail), escape(finding.fix or ""))
    show.print(table)
    if not all(f.ok for f in findings):
        sys.exit(EXIT_UNAVAILABLE)


@cli.group(name="runtimeclasses")
def runtimeclasses_group() -> None:
    """The RuntimeClasses of runtimeclasses/kubernetes (kata-deploy's names and settings)."""


@runtimeclasses_group.command(name="list")
def runtimeclasses_list() -> None:
    """List the RuntimeClasses sandbench knows, with handler and overhead."""
    from sandbench.backends.kubernetes import classes

    for name, manifest in classes.manifests().items():
        show.print(f"{name}: {classes.describe(manifest)}", highlight=False)


@runtimeclasses_group.command(name="apply")
@click.argument("names", nargs=-1, required=True)
@kube_options
def runtimeclasses_apply(names: tuple[str, ...], kubeconfig: str | None,
                         kube_context: str | None, node: str | None, image: str | None,
                         pull_policy: str | None) -> None:
    """Create or update the named RuntimeClasses in the cluster (needs cluster-admin)."""
    from sandbench.backends.kubernetes import api
    from sandbench.backends.kubernetes.apply import ApplyError, apply

    try:
        for done in apply(api.connect(kubeconfig, kube_context), list(names)):
            show.print(done, highlight=False)
    except (ApplyError, api.ClusterError) as exc:
        fail(str(exc), EXIT_USAGE)


@cli.command()
def rbac() -> None:
    """Print the least-privilege RBAC manifest for running the harness as a ServiceAccount."""
    from sandbench.backends.kubernetes import access

    click.echo(access.manifest_text(), nl=False)


@cli.group(name="image")
def image_group() -> None:
    """The workload image every sandbox runs."""


@image_group.command(name="build")
@click.option("--force", is_flag=True, help="Rebuild even when the cached image is current.")
@click.option("--print-env", is_flag=True,
              help="Print only SANDBENCH_WORKLOAD_IMAGE=... and SANDBENCH_WORKLOAD_ARCHIVE=... "
                   "lines, for scripts that import the image into a cluster.")
@cache_option
def image_build(force: bool, print_env: bool, cache_dir: Path) -> None:
    """Build the workload image (rootfs + OCI archive), unless it is cached for these inputs."""
    with console.status("building the workload image..."):
        try:
            built = image.build_image(cache_dir, force=force, progress=lambda l: console.log(l))
        except image.ImageBuildError as exc:
            fail(str(exc), 1)
    if print_env:
        click.echo(f"SANDBENCH_WORKLOAD_IMAGE={built.name}\nSANDBENCH_WORKLOAD_ARCHIVE={built.oci_archive}")
        return
    state = "built" if built.built else "cached"
    lines = [f"{state}: {built.name}", f"  rootfs: {built.rootfs}",
             f"  oci archive: {built.oci_archive}", f"  digest: {built.manifest_digest}"]
    if built.guest is not None:
        guest = built.guest
        lines += [f"  guest kernel: {guest.kernel} ({guest.kernel_package})",
                  f"  guest initrd: {guest.initrd}", f"  guest disk: {guest.rootfs_disk}",
                  *(f"  kubevirt {kind}: {name} ({path})" for kind, name, path in (
                      ("containerDisk", guest.names["containerdisk"], guest.containerdisk_archive),
                      ("data disk", guest.names["datadisk"], guest.datadisk_archive),
                      ("kernel boot", guest.names["kernelboot"], guest.kernelboot_archive)))]
    show.print("\n".join(lines), highlight=False, soft_wrap=True)


@cli.command()
@click.option("--backend", type=click.Choice(backends.BACKENDS), default="local",
              show_default=True, help="Backend to clean.")
@cache_option
@kube_options
def gc(backend: str, cache_dir: Path, kubeconfig: str | None, kube_context: str | None,
       node: str | None, image: str | None, pull_policy: str | None) -> None:
    """Delete whatever earlier (crashed) runs left behind: containers, mounts and scratch
    locally; the runs' namespaces (found by label) on a cluster."""
    settings = KubernetesSettings(**{k: v for k, v in _kube_flags(
        kubeconfig, kube_context, node, image, pull_policy).items() if v is not None})
    backend_obj = backends.create(backend, cache_dir=cache_dir, resources=Resources(),
                                  kubernetes=settings)
    try:
        deleted = backend_obj.gc()
    except BackendError as exc:
        fail(str(exc), 1)
    for item in deleted:
        show.print(f"deleted {item}", highlight=False)
    show.print(f"{len(deleted)} leftovers deleted")


for _command in NIGHTLY_COMMANDS:  # compare, history, export, examples
    cli.add_command(_command)


def main() -> None:
    cli()
