"""pytest plugin: custom benchmarks against fresh sandboxes of any runtime, on any backend.

Registered as the ``pytest11`` entry point ``sandbench``, so installing sandbench is enough::

    @pytest.mark.parametrize("sandbench_runtime", ["native", "runc"])
    def test_start(benchmark, sandbox):
        benchmark.pedantic(sandbox.start, rounds=5)   # five fresh sandboxes, timed

``sandbox`` runs sandboxes of the test's runtime through the backend's own lifecycle
(``backends.create``, then ``Backend.execute``: create, wait, collect, delete, one fresh sandbox
per call). Tests that use it without parametrizing ``sandbench_runtime`` run once per runtime of
``--sandbench-runtimes``. A runtime that cannot run here is skipped with the backend's reason
and fix. The backend is created and prepared once per session (the image built or found in the
cache) and cleaned up at the end of it, Ctrl-C included.

Options: ``--sandbench-runtimes native,runc`` (default native), ``--sandbench-backend local``,
``--sandbench-cache DIR`` (default $SANDBENCH_CACHE or ~/.cache/sandbench),
``--sandbench-timeout SECONDS`` (60).

Imports of the harness happen inside the fixtures: a pytest run that never asks for a sandbox
pays nothing for this plugin.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sandbench.errors import SandboxFailed

if TYPE_CHECKING:
    from sandbench.backends import Backend
    from sandbench.model import Case, Execution, Value

RUNTIME = "sandbench_runtime"
_RUNTIMES = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sandbench", "sandbench sandboxes")
    group.addoption("--sandbench-runtimes", default="native",
                    help="Runtimes for tests using `sandbox` that do not parametrize "
                         "sandbench_runtime themselves (comma-separated; default native).")
    group.addoption("--sandbench-backend", default="local",
                    help="Backend the sandboxes run on (default local).")
    group.addoption("--sandbench-cache", default=None,
                    help="Image and scratch cache (default $SANDBENCH_CACHE or "
                         "~/.cache/sandbench).")
    group.addoption("--sandbench-timeout", type=float, default=60.0,
                    help="Seconds one sandbox may take (default 60).")


def _option_runtimes(config: pytest.Config) -> list[str]:
    text = str(config.getoption("--sandbench-runtimes"))
    return [name.strip() for name in text.split(",") if name.strip()]


def _parametrizes_runtime(metafunc: pytest.Metafunc) -> bool:
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0] if marker.args else marker.kwargs.get("argnames", "")
        listed = names.split(",") if isinstance(names, str) else list(names)
        if RUNTIME in (str(n).strip() for n in listed):
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if RUNTIME in metafunc.fixturenames and not _parametrizes_runtime(metafunc):
        metafunc.parametrize(RUNTIME, _option_runtimes(metafunc.config))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The backend is prepared once for every runtime the session will use.
    runtimes = {str(item.callspec.params[RUNTIME]) for item in items
                if hasattr(item, "callspec") and RUNTIME in item.callspec.params}
    config.stash[_RUNTIMES] = sorted(runtimes)


class Sandbox:
    """Fresh sandboxes of one runtime: each call runs one from create to delete.

    ``start()`` is the start workload (returns its phases in ms); ``run(workload, **params)``
    any registered workload (returns its values); ``execute(case)`` any case. Every call's
    result is appended to ``results``, so a benchmark can report the backend's own timings
    beside pytest-benchmark's wall-clock ones.
    """

    def __init__(self, backend: Backend, runtime: str, timeout_s: float) -> None:
        self.backend = backend
        self.runtime = runtime
        self.timeout_s = timeout_s
        self.results: list[list[Value]] = []
        self._prefix = f"sandbench-pytest-{secrets.token_hex(3)}"
        self._count = 0

    def execute(self, case: Case) -> Execution:
        self._count += 1
        sandbox_id = f"{self._prefix}-{self._count:05d}"
        execution = self.backend.execute(self.runtime, case, sandbox_id, self.timeout_s)
        if execution.error or execution.exit_reason():
            reason = execution.exit_reason() or execution.error
            raise SandboxFailed(f"{self.runtime} sandbox {sandbox_id} failed: {reason}\n"
                                f"{execution.raw()[-2000:]}")
        return execution

    def run(self, workload: str = "start", **params: Any) -> list[Value]:
        from sandbench import workloads

        chosen = workloads.get(workload)
        parsed = chosen.params(params)
        values: list[Value] = []
        for case in chosen.cases(parsed):
            values += chosen.parse(case, self.execute(case))
        self.results.append(values)
        return values

    def start(self) -> dict[str, float]:
        """One fresh sandbox of the start workload; its phases, in ms."""
        return {v.metric.name: v.value for v in self.run("start") if v.value is not None}


def _cache(config: pytest.Config) -> Path:
    given = config.getoption("--sandbench-cache") or os.environ.get("SANDBENCH_CACHE")
    return Path(given) if given else Path.home() / ".cache" / "sandbench"


@pytest.fixture(scope="session")
def sandbench_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The session's backend, prepared for every runtime the collected tests use."""
    from sandbench import backends
    from sandbench.spec import Resources

    config = request.config
    backend = backends.create(str(config.getoption("--sandbench-backend")),
                              cache_dir=_cache(config), resources=Resources(),
                              run_id=f"pytest-{secrets.token_hex(2)}")
    runtimes = config.stash.get(_RUNTIMES, []) or _option_runtimes(config)
    usable = [r for r in runtimes
              if r in backend.known_runtimes() and backend.check(r).ok]
    try:
        if usable:
            backend.prepare(usable)
        yield backend
    finally:
        backend.cleanup()


@pytest.fixture
def sandbench_runtime(request: pytest.FixtureRequest) -> str:
    """The runtime of this test; tests are parametrized with it (see the module docstring)."""
    return _option_runtimes(request.config)[0]


@pytest.fixture
def sandbox(sandbench_backend: Backend, sandbench_runtime: str,
            request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """Fresh sandboxes of ``sandbench_runtime``; skipped when the runtime cannot run here."""
    known = sandbench_backend.known_runtimes()
    if sandbench_runtime not in known:
        pytest.fail(f"unknown runtime {sandbench_runtime!r}; known runtimes: {', '.join(known)}")
    availability = sandbench_backend.check(sandbench_runtime)
    if not availability.ok:
        fix = f" (fix: {availability.fix})" if availability.fix else ""
        pytest.skip(f"{sandbench_runtime} cannot run here: {availability.detail}{fix}")
    yield Sandbox(sandbench_backend, sandbench_runtime,
                  float(request.config.getoption("--sandbench-timeout")))
