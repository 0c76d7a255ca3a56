"""What every command shares: the two consoles, the one way a command fails, and the flags
several commands take."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape

from sandbench.errors import SandbenchError
from sandbench.spec import KubernetesSettings

#: Messages, progress and warnings: stderr, so that stdout stays what a script reads.
console = Console(stderr=True)
#: Results: tables, paths.
show = Console()


def fail(error: SandbenchError) -> NoReturn:
    """End the command: the error's message on one line, and its exit code."""
    hint = f" ({error.hint})" if error.hint else ""
    console.print(f"[bold red]sandbench:[/] {escape(str(error) + hint)}", highlight=False,
                  soft_wrap=True)
    # The command is over and has said why: a late Ctrl-C (the second of a double one) must
    # not turn its exit code into a traceback on the way out.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    sys.exit(error.exit_code)


def default_cache() -> Path:
    configured = os.environ.get("SANDBENCH_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sandbench"


def split(value: str | None) -> list[str] | None:
    """A comma-separated flag as a list; None when not given."""
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


def kube_flags(kubeconfig: str | None, kube_context: str | None, node: str | None,
               image_ref: str | None, pull_policy: str | None) -> dict[str, Any]:
    """The kubernetes flags as a spec's ``kubernetes`` overrides (None: not given)."""
    return {"kubeconfig": kubeconfig, "context": kube_context, "node": node, "image": image_ref,
            "pull_policy": pull_policy}


def kube_settings(kubeconfig: str | None, kube_context: str | None, node: str | None,
                  image_ref: str | None, pull_policy: str | None) -> KubernetesSettings:
    """The kubernetes flags given, over the defaults (for commands that take no spec)."""
    flags = kube_flags(kubeconfig, kube_context, node, image_ref, pull_policy)
    return KubernetesSettings(**{k: v for k, v in flags.items() if v is not None})
