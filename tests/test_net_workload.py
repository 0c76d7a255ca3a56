"""The net workload's cases and parsers, on iperf3 -J and probe rr outputs captured on this
machine (tests/data/golden), and the pieces of its local path that need no namespace."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import golden
from sandbench import resources
from sandbench.backends.local import netpath, oci_config
from sandbench.backends.local.oci import with_network_flags
from sandbench.image import inputs
from sandbench.model import PEER, SANDBOX, Execution
from sandbench.workloads import ParseError, get
from sandbench.workloads.net import RR_P50, RR_P99, THROUGHPUT, parse_iperf3, parse_rr


def test_three_cases_each_with_a_peer_and_no_address() -> None:
    workload = get("net")
    found = workload.cases(workload.params({"duration_s": 1, "round_trips": 50}))
    assert [c.name for c in found] == ["send", "receive", "rr", "rr_peer"]
    assert [c.labels["direction"] for c in found] == [
        "sandbox_to_peer", "peer_to_sandbox", "sandbox_to_peer", "peer_to_sandbox"]
    for case in found[:3]:
        assert case.peer is not None and case.peer.ports
        # The workload names no address: the backend writes the peer's in place of PEER.
        assert PEER in case.argv and PEER in case.peer.argv
        assert not any("10.213" in arg for arg in case.argv)
    assert "-R" in found[1].argv and "-R" not in found[0].argv
    assert found[2].argv[-2:] == ["50", "1"]
    # The other way round: the sandbox serves on its own address, the peer is the client.
    rr_peer = found[3]
    assert rr_peer.peer is not None and rr_peer.peer.ports == ()
    assert SANDBOX in rr_peer.argv and rr_peer.argv[-1] == "once"
    assert SANDBOX in rr_peer.peer.argv and rr_peer.peer.argv[-3:-1] == ("50", "1")


def test_rr_peer_reads_the_peers_output_and_its_clock() -> None:
    workload = get("net")
    case = workload.cases(workload.params({}))[3]
    served = '{"probe":"rr-serve","realtime_ns":1}\n'
    p50, p99 = workload.parse(case, Execution(stdout=served,
                                              peer_stdout=golden("probe_rr_runc.out")))
    assert (p50.value, p99.value) == (11.103, 29.625)
    assert p50.clock == "peer_monotonic" and p50.labels["direction"] == "peer_to_sandbox"
    with pytest.raises(ParseError, match="printed nothing"):
        workload.parse(case, Execution(stdout=served))


def test_iperf3_send_golden() -> None:
    case = get("net").cases(get("net").params({}))[0]
    (value,) = get("net").parse(case, Execution(stdout=golden("iperf3_send_runsc.out")))
    assert value.metric == THROUGHPUT and value.labels == {"direction": "sandbox_to_peer"}
    # end.sum_received.bits_per_second of the capture, in Gbit/s.
    assert value.value == pytest.approx(3.38743062352807)


def test_iperf3_receive_golden_reads_the_receiving_end() -> None:
    value = parse_iperf3(golden("iperf3_receive_runc.out").split("\n", 1)[1],
                         {"direction": "peer_to_sandbox"})
    assert value.value == pytest.approx(7.581014954626135)


def test_iperf3_error_is_a_parse_error_with_iperf3s_reason() -> None:
    case = get("net").cases(get("net").params({}))[0]
    with pytest.raises(ParseError, match="unable to connect to server: Network is unreachable"):
        get("net").parse(case, Execution(stdout=golden("iperf3_refused.out")))


def test_iperf3_truncated_json() -> None:
    text = golden("iperf3_send_runsc.out").split("\n", 1)[1]
    with pytest.raises(ParseError, match="not valid"):
        parse_iperf3(text[: len(text) // 2], {})


def test_rr_golden_in_microseconds() -> None:
    p50, p99 = parse_rr(golden("probe_rr_runc.out"), {"direction": "sandbox_to_peer"})
    assert (p50.metric, p99.metric) == (RR_P50, RR_P99)
    assert (p50.value, p99.value) == (11.103, 29.625)
    assert p50.clock == "sandbox_monotonic"


def test_rr_missing_percentile() -> None:
    text = golden("probe_rr_runsc.out").replace('"p99_ns":', '"p99":')
    with pytest.raises(ParseError, match="p99_ns is null"):
        parse_rr(text, {})


def test_runsc_network_flags_replace_the_same_named_ones() -> None:
    flags = ("--platform=systrap", "--network=none")
    assert with_network_flags(flags, ("--network=sandbox",)) == (
        "--platform=systrap", "--network=sandbox")
    assert with_network_flags(flags, ()) == flags


def test_oci_config_joins_the_prepared_namespace() -> None:
    joined = {n["type"]: n for n in oci_config.namespaces("/run/netns/sbnet-x-box")}
    assert joined["network"] == {"type": "network", "path": "/run/netns/sbnet-x-box"}
    assert {n["type"]: n for n in oci_config.namespaces(None)}["network"] == {"type": "network"}


def test_peer_paths_and_address() -> None:
    assert netpath.with_addresses(["-c", PEER, SANDBOX]) == ["-c", netpath.PEER_ADDRESS, netpath.SANDBOX_ADDRESS]
    assert netpath._host_arg("/sandbench/probe", Path("/img")) == "/img/sandbench/probe"
    assert netpath.names("sandbench-1-00001") == ("sbnet-sandbench-1-00001-peer",
                                                  "sbnet-sandbench-1-00001-box")
    assert netpath.sandbox_of("sbnet-sandbench-1-00001-peer") == "sandbench-1-00001"


def test_listening_ports_of_a_process() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert server.getsockname()[1] in netpath.listening(os.getpid())


def test_probe_rr_against_its_echo(tmp_path: Path) -> None:
    """The probe's two rr modes on 127.0.0.1, compiled as the image build compiles them."""
    probe = tmp_path / "probe"
    subprocess.run(["gcc", *inputs.CFLAGS, "-o", str(probe),
                    str(resources.workloads_dir() / inputs.PROBE_SOURCE)], check=True)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = str(free.getsockname()[1])
    echo = subprocess.Popen([str(probe), "rr-serve", "127.0.0.1", port], stdout=subprocess.PIPE)
    try:
        assert echo.stdout is not None and b'"probe":"rr-serve"' in echo.stdout.readline()
        out = subprocess.run([str(probe), "rr", "127.0.0.1", port, "200", "64"],
                             capture_output=True, text=True, check=True).stdout
    finally:
        echo.kill()
        echo.wait()
    p50, p99 = parse_rr(out, {})
    assert p50.value is not None and p99.value is not None and 0 < p50.value <= p99.value
    assert '"round_trips":200,"warmup":20,"bytes":64' in out


def test_probe_rr_waits_for_a_late_echo(tmp_path: Path) -> None:
    """The client started first retries until the echo listens; the echo with ``once``
    exits after that one connection."""
    probe = tmp_path / "probe"
    subprocess.run(["gcc", *inputs.CFLAGS, "-o", str(probe),
                    str(resources.workloads_dir() / inputs.PROBE_SOURCE)], check=True)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = str(free.getsockname()[1])
    client = subprocess.Popen([str(probe), "rr", "127.0.0.1", port, "100", "1", "30"],
                              stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        echo = subprocess.run([str(probe), "rr-serve", "127.0.0.1", port, "once"],
                              capture_output=True, text=True, timeout=30)
        out, _ = client.communicate(timeout=30)
    finally:
        client.kill()
    assert echo.returncode == 0 and client.returncode == 0
    assert parse_rr(out, {})[0].value

def test_probe_rr_refused_is_an_error_line(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    subprocess.run(["gcc", *inputs.CFLAGS, "-o", str(probe),
                    str(resources.workloads_dir() / inputs.PROBE_SOURCE)], check=True)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = str(free.getsockname()[1])
    done = subprocess.run([str(probe), "rr", "127.0.0.1", port, "10", "1"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1 and '"error":"connect: Connection refused"' in done.stdout
    with pytest.raises(ParseError, match="no probe 'rr' line"):
        parse_rr(done.stdout, {})
