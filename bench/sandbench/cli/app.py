"""The `sandbench` command: the group, its commands, and the one place errors become exit
codes.

Exit codes (see sandbench.errors): 0 success; 1 a run that finished but is not valid (over 10%
failed samples) or another failure; 2 bad input (spec, names, flags), nothing run; 3 a
requested runtime is not usable here, nothing measured; 4 (compare) the environments differ;
130 interrupted (samples kept, report still renders).
"""

from __future__ import annotations

import click

from sandbench import __version__
from sandbench.cli import cluster, doctor, image, nightly, run
from sandbench.cli.common import fail
from sandbench.errors import SandbenchError


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
                 *nightly.COMMANDS):
    cli.add_command(_command)


def main() -> None:
    """The console script: every SandbenchError ends here, as one line and its exit code."""
    try:
        cli()
    except SandbenchError as error:
        fail(error)
