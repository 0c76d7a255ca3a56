"""Bad input to `export` and `push`: one line naming the value and what is accepted, its exit
code, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import sandbench
from sshd import free_port

GOLDEN_RUN = str(Path(__file__).parent / "data" / "runs" / "format1-local")


def not_a_run(tmp_path: Path) -> str:
    (tmp_path / "run.json").write_text("[1, 2]")
    return str(tmp_path)


CASES: list[tuple[str, Callable[[Path], list[str]], int, str]] = [
    ("unknown format", lambda t: ["export", "--format", "graphite", GOLDEN_RUN], 2,
     "'graphite' is not one of 'pytest-benchmark', 'openmetrics', 'prometheus', 'otlp'"),
    ("missing run dir", lambda t: ["export", "--format", "openmetrics", str(t / "nope")], 2,
     "is not a run directory: it has no run.json"),
    ("invalid run dir", lambda t: ["export", "--format", "otlp", not_a_run(t)], 2,
     "holds an array, not the object a run.json is"),
    ("push, not a URL", lambda t: ["push", GOLDEN_RUN, "--gateway", "pushgateway:9091"], 2,
     "--gateway 'pushgateway:9091' is not an http:// or https:// URL"),
    ("push, empty job", lambda t: ["push", GOLDEN_RUN, "--gateway", "http://127.0.0.1:9",
                                   "--job", ""], 2, "--job '' is empty"),
    ("push, nobody listening",
     lambda t: ["push", GOLDEN_RUN, "--gateway", f"http://127.0.0.1:{free_port()}"], 1,
     "cannot reach the Pushgateway at 'http://127.0.0.1:"),
]


@pytest.mark.parametrize(("args", "code", "says"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_one_line_and_its_exit_code(tmp_path: Path, args: Callable[[Path], list[str]],
                                    code: int, says: str) -> None:
    result = sandbench(*args(tmp_path))
    assert result.returncode == code, result.stderr
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
