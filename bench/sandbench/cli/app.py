"""The `sandbench` command: the group, its commands, and the one place errors become exit
codes.

Exit codes (see sandbench.errors): 0 success; 1 a run that finished but is not valid (over 10%
failed samples) or another failure; 2 bad input (spec, names, flags), nothing run; 3 a
requested runtime is not usable here, nothing measured; 4 (compare) the environments differ;
130 interrupted (samples kept, report still renders).
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn, TextIO, cast

import click

from sandbench import __version__
from sandbench.cli import cluster, doctor, export, image, nightly, run, schema
from sandbench.cli.common import console, fail
from sandbench.errors import BadInput, RunFailed, SandbenchError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sandbench")
def cli() -> None:
    """Run identical workloads under different sandboxes and show what isolation costs.

    \b
    Start with:  sandbench doctor       (what runs here)
                 sandbench run          (the quick profile on native, runc, crun)
                 sandbench report DIR   (the HTML comparison of a run)
    """


for _command in (run.run, run.report, run.summary, doctor.doctor_command, doctor.gc,
                 cluster.runtimeclasses_group, cluster.rbac, image.image_group,
                 *nightly.COMMANDS, *export.COMMANDS, schema.schema_command):
    cli.add_command(_command)


def main() -> None:
    """The console script: every SandbenchError ends here, as one line and its exit code, and
    so does every usage error click finds (a bad flag value is bad input like a bad spec)."""
    _check_standard_streams()
    sys.stdout = cast(TextIO, _Stdout(sys.stdout))
    code: int | str | None
    try:
        code = _invoke()
    except SystemExit as done:  # fail(), and click's own exits
        code = done.code
    sys.stdout.flush()
    sys.exit(code)


def _invoke() -> int | None:
    try:
        code = cli.main(standalone_mode=False)
        return code if isinstance(code, int) else 0
    except click.exceptions.NoArgsIsHelpError as error:
        error.show()  # the help, as click shows it
        return error.exit_code
    except click.UsageError as error:
        where = f" (see `{error.ctx.command_path} --help`)" if error.ctx else ""
        fail(UsageError(" ".join(error.format_message().split()) + where))
    except click.ClickException as error:
        fail(UsageError(" ".join(error.format_message().split())))
    except click.Abort:
        console.print("Aborted!")
        return 1
    except SandbenchError as error:
        fail(error)


class UsageError(BadInput):
    """A flag or argument click refused."""


def _check_standard_streams() -> None:
    """Refuse to start with standard output or error closed (`>&-`): the first file opened
    would take its descriptor, and what runtimes and tools print would land in it. A closed
    standard input is only given /dev/null."""
    if sys.stdin is None:
        os.open(os.devnull, os.O_RDONLY)  # the lowest free descriptor: 0
    if sys.stderr is None:
        os._exit(BadInput.exit_code)  # nowhere to say why
    if sys.stdout is None:
        fail(BadInput("standard output is closed; redirect it (to a file, or to /dev/null) "
                      "instead of closing it"))


class _Stdout:
    """Standard output that fails as sandbench fails: a reader gone (`| head`) ends the
    command quietly, another write error (a full disk, /dev/full) is one line; either way
    nothing is left buffered for Python to fail on again, with a traceback, at exit."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            self._failed(exc)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            self._failed(exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _failed(self, exc: OSError) -> NoReturn:
        # What is still buffered can never be written: send it where it can go, nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)
        if isinstance(exc, BrokenPipeError):
            sys.exit(1)  # the reader has what it wanted
        fail(RunFailed(f"cannot write to standard output: {exc.strerror}"))
