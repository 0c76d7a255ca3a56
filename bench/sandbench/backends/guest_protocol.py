"""What the harness and the guest init (workloads/guest/init) say to each other.

Down, on the kernel command line: the kernel passes every ``name=value`` it does not know
(and whose name has no dot) to init as an environment variable, so the init needs no parsing.
The command and its environment travel as base64 of POSIX shell words (``shlex.join``), which
survives the command line's space splitting and any byte in an argument; the init only
``eval``s words the host quoted. x86 kernels keep 2048 bytes of command line.

Up, on the serial console, as lines (the kernel's own lines start with a ``[ seconds]`` stamp,
``printk.time=1``)::

    SANDBENCH-INIT <nonce>          the init started
    SANDBENCH-BEGIN <nonce>         what follows is the workload's stdout, and only that
    SANDBENCH-END <nonce> rc=<N>    the workload exited with N
    SANDBENCH-STDERR <nonce> ... SANDBENCH-STDERR-END <nonce>   its stderr
    SANDBENCH-ERROR <nonce> <why>   the init could not run the workload

Both the local qemu runtime and a KubeVirt backend read a console through ``read_console``.
"""

from __future__ import annotations

import base64
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sandbench.errors import BadInput

#: Kernel parameters every guest boots with. earlycon writes from the first lines of
#: setup_arch, so the first console line is close to the kernel's start rather than to the
#: console driver's registration; panic=-1 turns a panic into a reboot, which QEMU's
#: -no-reboot (and KubeVirt's runStrategy) turn into the VM stopping instead of hanging.
#: loglevel=6 keeps the informational flood off the (emulated, slow) UART.
BASE_ARGS: tuple[str, ...] = ("console=ttyS0", "earlycon=uart8250,io,0x3f8,115200",
                              "printk.time=1", "loglevel=6", "panic=-1")
#: COMMAND_LINE_SIZE on x86, including the terminating NUL.
CMDLINE_LIMIT = 2048

INIT, BEGIN, END, ERROR = "SANDBENCH-INIT", "SANDBENCH-BEGIN", "SANDBENCH-END", "SANDBENCH-ERROR"
STDERR, STDERR_END = "SANDBENCH-STDERR", "SANDBENCH-STDERR-END"
KERNEL_LINE = re.compile(r"^\[\s*\d+\.\d+\] ")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_END_RC = re.compile(r"^rc=(\d+)$")


class CommandLineError(BadInput, ValueError):
    """A workload that cannot be put on a kernel command line."""


def _b64_words(words: Sequence[str]) -> str:
    return base64.b64encode(shlex.join(words).encode()).decode()


def kernel_cmdline(argv: Sequence[str], env: Mapping[str, str], nonce: str,
                   extra: Sequence[str] = ()) -> str:
    """The whole command line of a guest that runs ``argv`` with ``env``; an empty argv boots
    the guest to its init and powers it off (the accelerator test boot)."""
    bad = [name for name in env if not _ENV_NAME.match(name)]
    if bad:
        raise CommandLineError(f"environment name {bad[0]!r} cannot be passed to the guest: "
                               "letters, digits and '_' only")
    args = [*BASE_ARGS, *extra, f"sandbench_nonce={nonce}"]
    if argv:
        args.append(f"sandbench_argv={_b64_words(argv)}")
        if env:
            args.append(f"sandbench_env={_b64_words([f'{k}={v}' for k, v in env.items()])}")
    line = " ".join(args)
    if len(line) + 1 > CMDLINE_LIMIT:
        raise CommandLineError(f"the guest's command line would be {len(line) + 1} bytes; the "
                               f"kernel keeps {CMDLINE_LIMIT}: shorten the command or environment")
    return line


@dataclass(frozen=True)
class ConsoleLine:
    """One console line and when the host read it (CLOCK_MONOTONIC ns)."""

    ns: int
    text: str


@dataclass(frozen=True)
class Console:
    """What a console said, and when each event was read."""

    kernel_ns: int | None
    """The first kernel line."""
    init_ns: int | None
    """The init's start marker."""
    workload_ns: int | None
    """The workload's first stdout line (the probe's header, printed right after its stamp)."""
    stdout: str
    """The workload's stdout, exactly: the lines between the BEGIN and END markers."""
    stderr: str
    exit_code: int | None
    """From the END marker; None when the workload never finished."""
    error: str | None
    """What the init reported with SANDBENCH-ERROR."""
    last_line: str


def _marker(text: str, marker: str, nonce: str) -> str | None:
    """The rest of a marker line for this nonce ('' when nothing follows), else None."""
    prefix = f"{marker} {nonce}"
    if text == prefix:
        return ""
    if text.startswith(prefix + " "):
        return text[len(prefix) + 1:]
    return None


def _closing(text: str, marker: str, nonce: str) -> tuple[str, str] | None:
    """(what came before, the rest) of a closing marker. The init prints it on a new line,
    but output that did not end with a newline leaves it at the end of its last line."""
    at = text.find(f"{marker} {nonce}")
    if at < 0:
        return None
    rest = _marker(text[at:], marker, nonce)
    return None if rest is None else (text[:at], rest)


def read_console(lines: Sequence[ConsoleLine], nonce: str) -> Console:
    """Pick the events and the workload's output out of a console, markers matched by nonce."""
    kernel_ns = init_ns = workload_ns = exit_code = None
    error = None
    stdout: list[str] = []
    stderr: list[str] = []
    section = None
    for line in lines:
        if section == "stdout":
            closing = _closing(line.text, END, nonce)
            if closing is None or closing[0]:
                workload_ns = line.ns if workload_ns is None else workload_ns
            if closing is None:
                stdout.append(line.text + "\n")
                continue
            stdout.append(closing[0])
            match = _END_RC.match(closing[1])
            exit_code = int(match.group(1)) if match else None
            section = None
        elif section == "stderr":
            closing = _closing(line.text, STDERR_END, nonce)
            stderr.append(line.text + "\n" if closing is None else closing[0])
            section = "stderr" if closing is None else None
        elif kernel_ns is None and KERNEL_LINE.match(line.text):
            kernel_ns = line.ns
        elif init_ns is None and _marker(line.text, INIT, nonce) is not None:
            init_ns = line.ns
        elif _marker(line.text, BEGIN, nonce) is not None:
            section = "stdout"
        elif _marker(line.text, STDERR, nonce) is not None:
            section = "stderr"
        elif error is None:
            error = _marker(line.text, ERROR, nonce)
    last = next((line.text for line in reversed(lines) if line.text.strip()), "")
    return Console(kernel_ns, init_ns, workload_ns, "".join(stdout), "".join(stderr),
                   exit_code, error, last)


def annotate(lines: Sequence[ConsoleLine], origin_ns: int) -> str:
    """The console as kept with a sandbox's output: each line with the ms since ``origin_ns``
    (the request) at which it was read. ``parse_annotated`` reads it back."""
    return "".join(f"{(line.ns - origin_ns) / 1e6:12.3f} | {line.text}\n" for line in lines)


def parse_annotated(text: str, origin_ns: int = 0) -> list[ConsoleLine]:
    """Lines written by ``annotate``, with their times; other lines (QEMU's own) are skipped."""
    found = []
    for raw in text.splitlines():
        stamp, sep, rest = raw.partition(" | ")
        try:
            ms = float(stamp)
        except ValueError:
            continue
        if sep:
            found.append(ConsoleLine(origin_ns + round(ms * 1e6), rest))
    return found
