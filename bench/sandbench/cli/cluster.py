"""`sandbench runtimeclasses` and `sandbench rbac`: what a cluster needs before a run.

The kubernetes modules are imported inside the commands: the client is slow to import and
local commands need none of it.
"""

from __future__ import annotations

import click

from sandbench.cli.common import kube_options, show


@click.group(name="runtimeclasses")
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
    from sandbench.backends.kubernetes.apply import apply

    for done in apply(api.connect(kubeconfig, kube_context), list(names)):
        show.print(done, highlight=False)


@click.command()
@click.option("--kubelet-metrics", is_flag=True,
              help="Also grant nodes/proxy get, so the kubelet's own sandbox-creation time is "
                   "recorded. Off by default: nodes/proxy opens each node's whole kubelet API.")
def rbac(kubelet_metrics: bool) -> None:
    """Print the least-privilege manifest for running the harness as a ServiceAccount: RBAC,
    and an admission policy (Kubernetes 1.30+) that keeps its writes in sandbench's
    namespaces."""
    from sandbench.backends.kubernetes import access

    click.echo(access.manifest_text(kubelet_metrics), nl=False)
