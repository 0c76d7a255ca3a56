"""The net workload really run on native, runc, crun and runsc: throughput both ways and round
trips to a peer over a veth pair between two namespaces the run made; each path with no
default route, and nothing left behind, also when the run is stopped in the middle."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import sandbench
from leaks import leftovers, private_cache, stop_at_random
from sandbench import owner
from sandbench.backends.local import find_binary, netpath, runtime_table
from sandbench.image import WorkloadImage
from sandbench.report.render import build_report
from sandbench.results import load_run

pytestmark = pytest.mark.integration

SPEC = """
runtimes: [native, runc, crun, runsc]
workloads:
  net: {rounds: 1, warmup: 0, params: {duration_s: 1, round_trips: 200}}
"""


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory, workload_image: WorkloadImage,
          sandbench_cache: Path) -> Path:
    if find_binary(runtime_table()["runsc"], sandbench_cache) is None:
        pytest.fail("runsc is neither on PATH nor built in the cache: `make test` builds it")
    private = private_cache(sandbench_cache, tmp_path_factory.mktemp("net-cache"))
    # runsc is found in the cache it was built in.
    (private / "gvisor").symlink_to(sandbench_cache / "gvisor")
    return private


@pytest.fixture(scope="module")
def net_run(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> tuple[Path, Path]:
    spec = tmp_path_factory.mktemp("spec") / "net.yaml"
    spec.write_text(SPEC)
    out = tmp_path_factory.mktemp("net-out")
    result = sandbench("run", str(spec), "--no-report", "--out", str(out),
                       "--cache-dir", str(cache))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    (run_dir,) = list(out.iterdir())
    return run_dir, out


def test_every_runtime_measures_both_directions_and_round_trips(
        net_run: tuple[Path, Path]) -> None:
    samples = load_run(net_run[0]).samples
    failed = samples[samples["status"] != "ok"]
    assert failed.empty, failed[["runtime", "metric", "reason"]].to_string()
    net = samples[samples["metric"].isin(["throughput", "rr_latency_p50", "rr_latency_p99"])]
    for runtime in ("native", "runc", "crun", "runsc"):
        mine = net[net["runtime"] == runtime]
        measured = {(m, labels["direction"]) for m, labels in zip(mine["metric"], mine["labels"])}
        assert measured == {(metric, direction)
                            for metric in ("throughput", "rr_latency_p50", "rr_latency_p99")
                            for direction in ("sandbox_to_peer", "peer_to_sandbox")}
        for labels in mine["labels"]:
            assert labels["net_path"] == "veth" and labels["peer_runtime"] == "native"
        assert (mine["value"] > 0).all()


def test_runsc_ran_its_own_netstack(net_run: tuple[Path, Path]) -> None:
    run = load_run(net_run[0])
    facts = run.meta["runtimes"]["runsc"]
    assert facts["network_flags"] == ["--network=sandbox"]
    runsc = run.samples[(run.samples["runtime"] == "runsc")
                        & (run.samples["metric"] == "throughput")]
    assert {labels["platform"] for labels in runsc["labels"]} == {"systrap"}


def test_the_report_has_a_network_section(net_run: tuple[Path, Path]) -> None:
    html = build_report(load_run(net_run[0]), embed_js=False).html
    assert '<section id="section-net">' in html and "<h2>Network</h2>" in html
    assert "net_path=veth" in html and "--network=sandbox" in html
    assert 'data-chart="net-bars-throughput"' in html


def test_nothing_left_behind(net_run: tuple[Path, Path], cache: Path) -> None:
    assert leftovers(cache, net_run[1]) == []


def test_qemu_reaches_the_peer_through_a_tap_on_the_veth(
        tmp_path: Path, cache: Path) -> None:
    """One VM per case (TCG here): short, so the whole file stays near a minute."""
    spec = tmp_path / "qemu.yaml"
    spec.write_text(SPEC.replace("[native, runc, crun, runsc]", "[qemu]"))
    out = tmp_path / "out"
    result = sandbench("run", str(spec), "--no-report", "--out", str(out),
                       "--cache-dir", str(cache))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    (run_dir,) = list(out.iterdir())
    samples = load_run(run_dir).samples
    net = samples[samples["metric"].isin(["throughput", "rr_latency_p50", "rr_latency_p99"])]
    assert len(net) == 6 and (net["status"] == "ok").all(), net[["metric", "reason"]].to_string()
    for labels in net["labels"]:
        assert labels["net_path"] == netpath.VM_PATH and labels["accel"] in ("tcg", "kvm")
    assert leftovers(cache, out) == []


def test_gc_deletes_the_path_of_a_killed_run(tmp_path: Path, cache: Path) -> None:
    """SIGKILL while a net sandbox runs: its namespaces and peer outlive the harness, and
    gc takes them, as the peer runs in the dead run's scratch directory."""
    out = tmp_path / "out"
    child = subprocess.Popen(
        [sys.executable, "-m", "sandbench", "run", "--workloads", "net", "--runtimes", "runc",
         "--rounds", "20", "--out", str(out), "--no-report", "--cache-dir", str(cache)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not any(netpath.peer_dir(netpath.sandbox_of(n)) for n in _of(out)):
            assert time.monotonic() < deadline and child.poll() is None, "no net sandbox ran"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    assert _of(out), "the killed run left no namespace to test gc with"
    result = sandbench("gc", "--cache-dir", str(cache))
    assert result.returncode == 0, result.stderr
    assert "network namespace sbnet-" in result.stdout, result.stdout
    assert leftovers(cache, out) == []


def _of(out: Path) -> list[str]:
    prefixes = tuple(owner.sandbox_prefix(run.name) for run in out.iterdir()) \
        if out.is_dir() else ()
    return [n for n in netpath.present() if prefixes and netpath.sandbox_of(n).startswith(prefixes)]


def test_a_path_has_no_default_route(tmp_path: Path) -> None:
    path = netpath.NetPath("sandbench-nettest-00000", tmp_path / "peer")
    try:
        path.create()
        for netns in (path.peer_netns, path.sandbox_netns):
            routes = subprocess.run(["ip", "-n", netns, "route", "show", "table", "all"],
                                    capture_output=True, text=True, check=True).stdout
            assert "default" not in routes
            assert f"10.213.0.0/{netpath.PREFIX_LEN} dev {netpath.LINK}" in routes
        # Only the pair's two ends and loopback: nothing of the root namespace.
        links = subprocess.run(["ip", "-n", path.sandbox_netns, "-o", "link"],
                               capture_output=True, text=True, check=True).stdout
        assert len(links.splitlines()) == 2
    finally:
        path.delete()
        path.delete()  # safe twice
    assert not set(netpath.names("sandbench-nettest-00000")) & set(netpath.present())


def test_stopped_in_the_middle_leaves_no_namespace(tmp_path: Path, cache: Path) -> None:
    out = tmp_path / "out"
    stopped = stop_at_random(cache, out, random.Random(15), latest_s=3.0, runtimes="runc,runsc",
                             workloads="net")
    assert stopped.returncode != 0 or "completed" in stopped.stderr, stopped.stderr[-2000:]
    assert leftovers(cache, out) == []
