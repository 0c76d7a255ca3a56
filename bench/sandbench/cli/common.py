"""What every command shares: the two consoles, the one way a command fails, and the flags
several commands take."""

from __future__ import annotations

import os
import signal
import tempfile
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape

from sandbench.errors import BadInput, SandbenchError
from sandbench.results import Run
from sandbench.spec import KubernetesSettings

#: Messages, progress and warnings: stderr, so that stdout stays what a script reads.
console = Console(stderr=True)
#: Results: tables, paths.
show = Console()


def fail(error: SandbenchError) -> NoReturn:
    """End the command: the error's message on one line, and its exit code."""
    hint = f" ({error.hint})" if error.hint else ""
    # One line whatever the message holds (a path with a newline in it).
    message = (str(error) + hint).replace("\n", "\\n")
    console.print(f"[bold red]sandbench:[/] {escape(message)}", highlight=False, soft_wrap=True)
    # The command is over and has said why: a late Ctrl-C (the second of a double one) must
    # not turn its exit code into a traceback on the way out.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    sys.exit(error.exit_code)


def warn_damaged(*runs: Run | None) -> None:
    """Say on stderr which runs had damaged samples.jsonl lines, left out of what follows."""
    for run in runs:
        warning = run.damage_warning() if run is not None else None
        if warning:
            console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False,
                          soft_wrap=True)


def default_cache() -> Path:
    configured = os.environ.get("SANDBENCH_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sandbench"


def split(value: str | None, flag: str = "--runtimes",
          example: str = "native,runc") -> list[str] | None:
    """A comma-separated flag as a list; None when not given. Given, it must name something:
    an empty list would silently become the defaults."""
    if value is None:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise BadInput(f"{flag} {value!r} names nothing; give comma-separated names, "
                       f"e.g. {flag} {example}, or leave the flag out for the defaults")
    return names


def check_out_dir(path: Path, flag: str) -> None:
    """Refuse, before anything runs, a directory that cannot hold what a command will write:
    a file in the way, a read-only filesystem. Nothing is created."""
    existing = _nearest_existing(path, flag)
    if not existing.is_dir():
        raise BadInput(f"{flag} {str(path)!r}: {str(existing)!r} is not a directory; "
                       f"give a directory (it is made if missing)")
    _check_writable(existing, path, flag)


def check_out_file(path: Path, flag: str) -> None:
    """Refuse, before any work, a file that cannot be written: a directory, a missing or
    read-only parent. Nothing is created."""
    if path.is_dir():
        raise BadInput(f"{flag} {str(path)!r} is a directory; give a file name, e.g. "
                       f"{str(path / 'out')!r}")
    if os.path.lexists(path) and not path.exists():
        raise BadInput(f"{flag} {str(path)!r} is a symbolic link that leads nowhere (missing, "
                       f"or a loop); give another path")
    parent = path.parent
    if not parent.is_dir():
        raise BadInput(f"{flag} {str(path)!r}: {str(parent)!r} is not a directory; give a "
                       f"file in an existing directory")
    if path.exists() and not path.is_file():
        # A named pipe or a device: opening it to try would wait for a reader, or hand the
        # one waiting an end of file before anything was written.
        if not os.access(path, os.W_OK):
            raise BadInput(f"{flag} {str(path)!r}: cannot write in it; give a writable place")
        return
    _check_writable(path if path.exists() else parent, path, flag)


def _nearest_existing(path: Path, flag: str) -> Path:
    probe = path.absolute()
    while not probe.exists() and probe != probe.parent:
        if os.path.lexists(probe):  # a link to nothing, or a loop: mkdir would fail on it
            raise BadInput(f"{flag} {str(path)!r}: {str(probe)!r} is a symbolic link that "
                           f"leads nowhere (missing, or a loop); give another path")
        probe = probe.parent
    return probe


def _check_writable(existing: Path, path: Path, flag: str) -> None:
    """Try it: make and remove a directory in ``existing`` (or open an existing file for
    appending). os.access says yes to root on /proc and on some read-only mounts."""
    try:
        if existing.is_dir():
            os.rmdir(tempfile.mkdtemp(prefix=".sandbench-check-", dir=existing))
        else:
            with open(existing, "a", encoding="utf-8"):
                pass
    except OSError as exc:
        raise BadInput(f"{flag} {str(path)!r}: cannot write in {str(existing)!r}: "
                       f"{exc.strerror}; give a writable place") from None


def write_out_file(path: Path, text: str, flag: str) -> None:
    """Write what a command made; a failure is one line, never a traceback. A regular file (or
    a new one) is written beside its place and renamed into it, so that a signal mid-write
    leaves the old file or the new, never half a verdict, and no temporary file; a symbolic
    link is followed (the file it leads to is replaced, not the link). This command's own
    stdout or stderr (/dev/stdout redirected to a file) is written through, after what was
    printed; anything else (a pipe, a device) is written in place, and so is a file whose
    directory cannot hold another file (read-only, sticky, a file bind-mounted alone)."""
    try:
        stream = _own_stream(path)
        if stream is not None:
            stream.flush()
            stream.write(text)
            stream.flush()
            return
        if path.exists() and not path.is_file():
            path.write_text(text, encoding="utf-8")
            return
        target = Path(os.path.realpath(path))
        if not _replace_whole(target, text):
            target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"{flag} {str(path)!r}: cannot write it: {exc.strerror or exc}; give a "
                       f"writable place") from exc


def _own_stream(path: Path) -> Any:
    """sys.stdout or sys.stderr when PATH is the very file this process writes them to."""
    try:
        here = os.stat(path)
    except OSError:
        return None
    for stream in (sys.stdout, sys.stderr):
        try:
            if os.path.samestat(here, os.fstat(stream.fileno())):
                return stream
        except (AttributeError, OSError, ValueError):
            continue
    return None


def _replace_whole(target: Path, text: str) -> bool:
    """Write TARGET through a temporary file beside it, renamed in. False, with nothing left
    behind, when its directory takes no new file or no rename over it but TARGET exists:
    the caller then writes it in place. Whatever else goes wrong (a full disk at close, a
    signal) removes the temporary file and raises."""
    partial: Path | None = None
    try:
        try:
            # A name of at most 255 bytes whatever the file's: ".<name>.<8 random>".
            fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name[:200]}.")
        except OSError:
            if target.is_file():
                return False
            raise
        partial = Path(name)
        with open(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # The mode a plain write would have given, not mkstemp's 0600.
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(partial, (target.stat().st_mode & 0o7777) if target.exists()
                 else 0o666 & ~mask)
        try:
            os.replace(partial, target)
        except OSError:
            if target.is_file():  # EPERM in a sticky directory, EBUSY on a bind mount
                return False
            raise
        partial = None
        return True
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)


def _writable_cache(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    # Checked before anything is built or run there: a file in the way or a read-only
    # filesystem failed deep in the image build, with a traceback.
    check_out_dir(value, "--cache-dir")
    return value


cache_option = click.option(
    "--cache-dir", type=click.Path(path_type=Path), default=default_cache, show_default="$SANDBENCH_CACHE or ~/.cache/sandbench",
    callback=_writable_cache, help="Where the workload image and scratch space live.")


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


def pull_options(command: Any) -> Any:
    """Flags of the image's state on the node before each timed pod start (`run` only)."""
    options = [
        click.option("--pull", type=click.Choice(["warm", "cold", "both"]),
                     help="The image's state on the node before each start pod: warm (present; "
                          "the default), cold (removed first, so the kubelet pulls it) or both "
                          "(each round measures each). Verified through the node's CRI given "
                          "--cri-endpoint; cold needs it."),
        click.option("--cri-endpoint", help="The node's CRI socket for crictl, e.g. "
                     "unix:///run/containerd/containerd.sock (the harness runs on the node)."),
        click.option("--crictl", help="crictl binary that asks it (default: crictl on PATH)."),
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
