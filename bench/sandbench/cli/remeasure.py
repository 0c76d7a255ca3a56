"""``sandbench compare --remeasure``: run the borderline metrics' runtimes and workloads again
and judge them on the new measurement (nightly/remeasure.py says which are borderline and why).

The re-measurement is a run of its own, in ``NEW_RUN/remeasured/<run id>/``, made from the
spec NEW_RUN recorded (same rounds, warmup, resources, backend settings) with only the
runtimes and workloads the borderline metrics need. It stays with the run it re-measured, so
a history directory never takes it for a night of its own.
"""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from sandbench import results, runner
from sandbench.cli.common import console
from sandbench.cli.run import measure
from sandbench.errors import BadInput, Interrupted, InvalidRun, RunFailed
from sandbench.nightly import remeasure
from sandbench.nightly.compare import Comparison
from sandbench.spec import Overrides
from sandbench.spec.load import parse_spec

#: Where, inside the re-measured run's directory, the re-measurements go.
SUBDIR = "remeasured"


def measure_again(comparison: Comparison, keys: dict[remeasure.Key, str],
                  cache_dir: Path) -> results.Run:
    """Run the borderline metrics' runtimes and workloads again, as NEW_RUN ran them."""
    new = results.load_run(comparison.new_dir)
    recorded = new.info.spec.model_dump()
    chosen = remeasure.selection(comparison, keys, new.info.baseline, new.info.spec.runtimes)
    if chosen.missing:
        raise BadInput(f"cannot re-measure run {new.run_id!r}: its recorded spec does not run "
                       f"{', '.join(chosen.missing)} (it runs "
                       f"{', '.join(new.info.spec.runtimes)})")
    data = Overrides(runtimes=chosen.runtimes, workloads=chosen.workloads).apply(recorded)
    if data.get("baseline") not in chosen.runtimes:
        data["baseline"] = None
    spec = parse_spec(data, f"the spec recorded in run {new.run_id!r}")
    for metric, why in keys.items():
        console.print(f"borderline: {escape(' '.join(filter(None, metric)))}: {escape(why)}",
                      highlight=False, soft_wrap=True)
    console.print(f"re-measuring {len(keys)} borderline metrics: runtimes "
                  f"{', '.join(chosen.runtimes)}, workloads {', '.join(chosen.workloads)}",
                  highlight=False, soft_wrap=True)
    out = comparison.new_dir / SUBDIR
    new_out = not out.exists()
    run_id, run_dir = results.create_run_dir(out)
    with runner.sigterm_interrupts():
        return checked(measure(spec, run_id, run_dir, cache_dir, new_out))


def checked(again: results.Run) -> results.Run:
    """The re-measurement, if it can judge anything: one that was interrupted, failed or is
    not valid has too few honest samples, and a verdict on them would read as a pass."""
    info = again.info
    none = "no verdict was given or recorded"
    if info.status == "interrupted":
        raise Interrupted(f"interrupted while re-measuring; the samples measured so far are in "
                          f"{again.dir}; {none}")
    if info.status != "completed":
        why = f": {info.status_reason}" if info.status_reason else ""
        raise RunFailed(f"the re-measurement {again.run_id!r} is {info.status}{why}; {none}")
    if info.valid is False:
        raise InvalidRun(f"the re-measurement {again.run_id!r} is not valid "
                         f"({'; '.join(info.warnings)}); {none}")
    return again
