"""Runtime variants in the spec and the local backend (same-run A/B), without running them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbench import backends, runner
from sandbench.backends import BackendError
from sandbench.spec import Resources, SpecError, parse_spec

SPEC = {"runtimes": ["runc", "runc-b"], "workloads": {"start": {}},
        "variants": {"runc-b": {"runtime": "runc", "wrapper": ["/usr/bin/env", "X=1"]}}}


def local(tmp_path: Path) -> backends.Backend:
    return backends.create("local", cache_dir=tmp_path, resources=Resources())


def test_a_variant_is_a_runtime_of_the_plan(tmp_path: Path) -> None:
    spec = parse_spec(SPEC, "test")
    backend = local(tmp_path)
    runner.add_variants(backend, spec)
    plan = runner.plan(spec, backend.known_runtimes())
    # Warmup round 1: runc first; round 2: runc-b first (the order is balanced).
    assert [s.runtime for s in plan.steps[:4]] == ["runc", "runc-b", "runc-b", "runc"]
    facts = backend.environment()["runtimes"]["runc-b"]
    assert facts["variant_of"] == "runc" and facts["wrapper"] == ["/usr/bin/env", "X=1"]
    assert facts["description"] == "runc under /usr/bin/env X=1"


def test_a_variant_of_a_variant_is_refused() -> None:
    data = {**SPEC, "variants": {"runc-b": {"runtime": "runc"}, "runc-c": {"runtime": "runc-b"}}}
    with pytest.raises(SpecError, match="variant 'runc-c' is of 'runc-b', which is a variant"):
        parse_spec(data, "test")


def test_the_backend_refuses_unknown_or_clashing_variants(tmp_path: Path) -> None:
    backend = local(tmp_path)
    with pytest.raises(BackendError, match="unknown runtime 'kata'; known runtimes: native"):
        backend.add_variant("kata-b", "kata", [], "")
    with pytest.raises(BackendError, match="has the name of a runtime"):
        backend.add_variant("crun", "runc", [], "")


def test_a_missing_wrapper_makes_the_variant_unusable(tmp_path: Path) -> None:
    backend = local(tmp_path)
    backend.add_variant("runc-b", "runc", ["/no/such/wrapper"], "")
    availability = backend.check("runc-b")
    assert not availability.usable and "/no/such/wrapper" in availability.detail


@pytest.mark.parametrize("count", [2, 3, 4, 5])
def test_round_order_is_balanced(count: int) -> None:
    runtimes = [f"r{i}" for i in range(count)]
    period = count if count % 2 == 0 else 2 * count
    rows = [runner.round_order(runtimes, n) for n in range(1, period + 1)]
    assert all(sorted(row) == runtimes for row in rows)
    positions = {(row[i], i) for row in rows for i in range(count)}
    follows = [(row[i], row[i + 1]) for row in rows for i in range(count - 1)]
    # Each runtime in each position, and right after each other one, equally often.
    assert len(positions) == count * count
    assert len(follows) == len(set(follows)) * (period // count)
    assert len(set(follows)) == count * (count - 1)
    assert runner.round_order(runtimes, period + 1) == rows[0]
