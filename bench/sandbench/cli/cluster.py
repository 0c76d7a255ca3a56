"""`sandbench runtimeclasses` and `sandbench rbac`: what a cluster needs before a run.

The kubernetes modules are imported inside the commands: the client is slow to import and
local commands need none of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from sandbench.cli.common import kube_options, show
from sandbench.errors import BadInput


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


@runtimeclasses_group.command(name="recommend")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--quantile", type=click.FloatRange(0.5, 1.0), default=0.95, show_default=True,
              help="Quantile of the measured per-sandbox overhead the recommendation covers.")
@click.option("--margin", type=click.FloatRange(0.0, 10.0), default=0.10, show_default=True,
              help="Added on top of the quantile, as a fraction (0.10 = 10%).")
@click.option("--write", "write_dir", type=click.Path(path_type=Path),
              help="Also write each patched RuntimeClass to DIR/NAME.yaml.")
def runtimeclasses_recommend(run_dir: Path, quantile: float, margin: float,
                             write_dir: Path | None) -> None:
    """Compare each RuntimeClass's declared overhead.podFixed memory with the per-sandbox
    overhead RUN_DIR measured (its footprint workload), and print a recommended value with
    its 95% interval and a patch ready to apply."""
    import yaml

    from sandbench import results
    from sandbench.analysis.summary import summarize_run
    from sandbench.backends.kubernetes import overhead

    summary = summarize_run(results.load_run(run_dir))
    rows = overhead.compare(summary, quantile, margin)
    if not any(row.recommendation for row in rows):
        raise BadInput(f"{str(run_dir)!r} has no footprint samples of any RuntimeClass's "
                       "runtime; run `sandbench run --workloads footprint` first")
    show.print(f"overhead.podFixed memory against {summary.run.run_id} ({overhead.MEASURED_AS}; "
               f"recommended = p{quantile * 100:g} + {margin:.0%}, 95% bootstrap interval)",
               highlight=False, soft_wrap=True)
    for row in rows:
        show.print(_line(row), highlight=False, soft_wrap=True)
    for row in rows:
        manifest = overhead.patched_manifest(row)
        if manifest is None:
            continue
        text = yaml.safe_dump(manifest, sort_keys=False)
        show.print(f"\n# {row.runtime_class}: kubectl patch runtimeclass {row.runtime_class} "
                   f"--type merge -p '{json.dumps(overhead.merge_patch(row))}'\n"
                   f"# or kubectl apply -f:\n{text}", highlight=False, soft_wrap=True,
                   markup=False)
        if write_dir is not None:
            write_dir.mkdir(parents=True, exist_ok=True)
            (write_dir / f"{row.runtime_class}.yaml").write_text(text)


def _line(row: Any) -> str:
    declared = row.declared or "none"
    if row.recommendation is None:
        return f"  {row.runtime_class}: declared {declared}; not measured in this run"
    found = row.recommendation
    verdict = ""
    if row.declared_mib is not None:
        verdict = ("; declared is too low" if row.declared_mib < found.measured_low
                   else "; declared covers it" if row.declared_mib >= found.high_mib
                   else "; declared is within the interval")
    return (f"  {row.runtime_class} (measured as {row.runtime}, {found.n} sandboxes): declared "
            f"{declared}; measured median {row.median_mib:.1f} MiB, p{found.quantile * 100:g} "
            f"{found.measured:.1f} MiB [{found.measured_low:.1f}, {found.measured_high:.1f}]; "
            f"recommended {found.value_mib}Mi [{found.low_mib:.0f}, {found.high_mib:.0f}]"
            f"{verdict}")


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
