"""One error tree: every failure sandbench reports is a SandbenchError that carries its exit code.

Modules raise the kind of failure they mean (their own subclasses say more); library errors
(the Kubernetes client's, paramiko's, pydantic's) are translated into these once, where they
are caught. The command line has one handler (cli/app.py) that prints the message on one line
and exits with the error's code, so an exit code is decided by what went wrong, not by which
command noticed it.

Exit codes: 0 success; 1 a run that failed or is not valid, or another failure; 2 bad input
(spec, names, flags, files), nothing run; 3 a requested runtime is not usable here; 4 two runs'
environments differ and a gate was asked for; 130 interrupted.
"""

from __future__ import annotations

import reprlib
from typing import ClassVar


class SandbenchError(Exception):
    """A failure sandbench reports to its user; the message is one line and quotes the bad
    value."""

    #: The process's exit code when this error ends a command.
    exit_code: ClassVar[int] = 1
    #: Said after the message on the command line: what would help.
    hint: ClassVar[str | None] = None


class BadInput(SandbenchError):
    """A spec, name, flag or file that cannot be used; nothing was run."""

    exit_code = 2


class RuntimeUnavailable(SandbenchError):
    """A requested runtime cannot run here; nothing was measured."""

    exit_code = 3
    hint = "run `sandbench doctor`"


class RunFailed(SandbenchError):
    """Something the harness needed broke: preparing a backend, building the image, cleaning
    up."""

    exit_code = 1


class InvalidRun(SandbenchError):
    """A run that finished but whose results are not valid (too many failed samples)."""

    exit_code = 1


class SandboxFailed(SandbenchError):
    """One sandbox did not give its results; inside a run its samples fail with this message
    and the run goes on."""

    exit_code = 1


class Interrupted(SandbenchError):
    """Ctrl-C or SIGTERM: what was measured is kept and the sandboxes are deleted."""

    exit_code = 130


class Regressed(SandbenchError):
    """A comparison gate failed: a metric regressed (or could not be judged, when asked)."""

    exit_code = 1


class EnvironmentChanged(SandbenchError):
    """A comparison gate refused to judge across environments that differ in what moves the
    numbers (kernel, CPU, versions, image)."""

    exit_code = 4


class NothingFound(SandbenchError):
    """What was asked for does not exist, e.g. a good run in a history."""

    exit_code = 1


def quoted(value: object, limit: int = 80) -> str:
    """A bad value as an error message quotes it: its repr (so a newline or a control
    character cannot break the one line), cut when it is longer than ``limit``. reprlib
    bounds the work too: a YAML alias bomb is a billion elements deep in references."""
    text = _SHORT.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxtuple = 3, 6, 6, 6
_SHORT.maxstring, _SHORT.maxother = 120, 120
