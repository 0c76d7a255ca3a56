"""`sandbench doctor` and `sandbench gc`: is this place ready to measure, and what did
crashed runs leave behind."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from sandbench import backends, doctor, results
from sandbench.backends import Finding
from sandbench.cli.common import cache_option, kube_options, kube_settings, show, split
from sandbench.errors import BadInput, RuntimeUnavailable
from sandbench.spec import Resources


@click.command(name="doctor")
@click.option("--backend", type=click.Choice(list(backends.BACKENDS)), default="local",
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
    ssh_findings: list[Finding] = []
    if ssh_dest:
        from sandbench.doctor import ssh as doctor_ssh

        target = doctor_ssh.target(ssh_dest, ssh_key, ssh_known_hosts, ssh_fingerprint)
        ssh_findings = doctor_ssh.findings(target)
    backend_obj = backends.create(
        backend, cache_dir=cache_dir, resources=Resources(),
        run_id=f"doctor-{results.new_run_id()[-4:]}",
        kubernetes=kube_settings(kubeconfig, kube_context, node, image, pull_policy))
    if fix:
        for done in backend_obj.apply_fixes():
            show.print(f"fixed: {done}", highlight=False)
    default = "runc,crun" if backend == "kubernetes" else None
    names = split(runtimes or default) or list(backend_obj.known_runtimes())
    unknown = [n for n in names if n not in backend_obj.known_runtimes()]
    if unknown:
        raise BadInput(f"unknown runtime {unknown[0]!r}; known runtimes: "
                       f"{', '.join(backend_obj.known_runtimes())}")
    if backend == "kubernetes":
        from sandbench.backends.kubernetes import KubernetesBackend
        from sandbench.doctor import cluster as doctor_cluster

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
        # The table said what is wrong; only the exit code is left to say.
        sys.exit(RuntimeUnavailable.exit_code)


@click.command()
@click.option("--backend", type=click.Choice(list(backends.BACKENDS)), default="local",
              show_default=True, help="Backend to clean.")
@cache_option
@kube_options
def gc(backend: str, cache_dir: Path, kubeconfig: str | None, kube_context: str | None,
       node: str | None, image: str | None, pull_policy: str | None) -> None:
    """Delete whatever earlier (crashed) runs left behind: containers, mounts and scratch
    locally; the runs' namespaces (found by label) on a cluster."""
    backend_obj = backends.create(
        backend, cache_dir=cache_dir, resources=Resources(),
        kubernetes=kube_settings(kubeconfig, kube_context, node, image, pull_policy))
    deleted = backend_obj.gc()
    for item in deleted:
        show.print(f"deleted {item}", highlight=False)
    for item in backend_obj.gc_kept:
        show.print(f"kept {item}", highlight=False, soft_wrap=True)
    show.print(f"{len(deleted)} leftovers deleted")
