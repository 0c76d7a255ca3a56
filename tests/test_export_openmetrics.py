"""OpenMetrics and Pushgateway exports, read back by Debian's real Prometheus tools: promtool,
a Prometheus server on the backfilled blocks, and a Pushgateway."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import resources
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import sandbench
from prometheus_servers import PROMTOOL, Server, need, prometheus, pushgateway
from sandbench.analysis.summary import RunSummary, summarize_run
from sandbench.nightly.openmetrics import (UNITS, end_time, family_name, to_openmetrics,
                                           to_prometheus_text, to_pushgateway, unix_seconds)
from sandbench.model import Sample, Status
from sandbench.nightly.push import group_url, push
from sandbench.results import RunWriter, load_run
from test_export import make_run, sample

GOLDEN_RUN = Path(__file__).parent / "data" / "runs" / "format1-local"


@pytest.fixture(scope="module")
def golden() -> RunSummary:
    return summarize_run(load_run(GOLDEN_RUN))


def lines(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name + "{")]


def test_names_are_in_base_units_with_their_suffix(tmp_path: Path) -> None:
    text = to_openmetrics(summarize_run(make_run(tmp_path / "run"))).text
    # 10 ms -> 0.04 s for runc (factor 4); ns/op -> seconds; IOPS per second; the flag as is.
    runc = [line for line in lines(text, "sandbench_request_to_exit_seconds")
            if 'runtime="runc"' in line]
    assert [line.split()[1] for line in runc] == ["0.04", "0.044", "0.048", "0.052", "0.056"]
    assert lines(text, "sandbench_op_duration_seconds")[0].split()[1] == "1e-07"
    assert "# UNIT sandbench_op_duration_seconds seconds" in text
    assert lines(text, "sandbench_io_operations_per_second")[0].split()[1] == "1000.0"
    assert lines(text, "sandbench_direct_io")
    # Labels: the series' own, then the sample's; fio's job may not pose as Prometheus' job.
    io = lines(text, "sandbench_io_operations_per_second")[0]
    assert io.startswith('sandbench_io_operations_per_second{runtime="runc",workload="io",'
                         'backend="local",run_id="run",sample_job="randread",target="rootfs"}')
    # The warmup (1000 ms) is not a measured sample.
    assert not any(" 1.0 " in line for line in runc)
    assert text.endswith("# EOF\n")


def test_summary_gauges_are_the_summarys_own(tmp_path: Path) -> None:
    summary = summarize_run(make_run(tmp_path / "run"))
    text = to_openmetrics(summary).text
    row = summary.by_key.loc[("runc", "start", "request_to_exit", "")]
    for column, stat in (("median", "median"), ("p90", "p90"), ("p99", "p99"),
                         ("ci_low", "median_ci_low"), ("ci_high", "median_ci_high")):
        name = family_name("request_to_exit", UNITS["ms"], stat)
        (line,) = [line for line in lines(text, name) if 'runtime="runc"' in line]
        assert float(line.split()[1]) == row[column] / 1000
        assert float(line.split()[2]) == pytest.approx(end_time(summary), abs=1e-3)
    assert row["median"] == 48.0 and row["p90"] == pytest.approx(54.4)
    counts = lines(text, "sandbench_samples")
    assert any('metric="request_to_exit",status="ok"} 5.0' in line and 'runc' in line
               for line in counts)
    (info,) = lines(text, "sandbench_run_info")
    assert 'status="completed",valid="unknown"' in info


def test_failed_samples_are_counted_not_values(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path / "run", {"run_id": "run", "backend": "local",
                                          "started_at": "2026-01-01T00:00:00+00:00"})
    for round_, status in enumerate([Status.OK, Status.FAILED, Status.FAILED], start=1):
        writer.append([Sample("run", "local", "runc", "start", "request_to_workload", "ms",
                              5.0 if status == Status.OK else None, round_, False, status,
                              f"2026-01-01T00:00:0{round_}+00:00",
                              reason=None if status == Status.OK else "runc create failed")])
    writer.finish("completed")
    text = to_openmetrics(summarize_run(load_run(tmp_path / "run"))).text
    assert [line.split()[1] for line in lines(text, "sandbench_request_to_workload_seconds")] \
        == ["0.005"]
    assert any('status="failed"} 2.0' in line for line in lines(text, "sandbench_samples"))
    assert "runc create failed" not in text


def test_promtool_check_metrics_accepts_it(golden: RunSummary, tmp_path: Path) -> None:
    promtool = need(PROMTOOL, "prometheus")
    # Debian's promtool (2.42) lints Prometheus' text format 0.0.4 only, so it is given the
    # same series in that format (integer millisecond stamps), and the Pushgateway's body.
    for text in (to_prometheus_text(golden).text, to_pushgateway(golden).text):
        checked = subprocess.run([promtool, "check", "metrics"], input=text,
                                 capture_output=True, text=True, timeout=60, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout + checked.stderr == ""  # no lint warning either


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The golden run exported as OpenMetrics, made into TSDB blocks by promtool, and a real
    Prometheus serving them."""
    promtool = need(PROMTOOL, "prometheus")
    work = tmp_path_factory.mktemp("prometheus")
    exported = sandbench("export", "--format", "openmetrics", str(GOLDEN_RUN), "-o",
                         str(work / "run.om"))
    assert exported.returncode == 0, exported.stderr
    storage = work / "data"
    created = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics",
                              str(work / "run.om"), str(storage)],
                             capture_output=True, text=True, timeout=120, check=False)
    assert created.returncode == 0, created.stdout + created.stderr
    assert list(storage.iterdir()), "promtool wrote no block"
    with prometheus(storage) as server:
        yield server


def instant(server: Server, query: str, at: float) -> list[dict[str, object]]:
    answer = server.get("/api/v1/query", query=query, time=f"{at:.3f}")
    assert answer["status"] == "success", answer
    result: list[dict[str, object]] = answer["data"]["result"]
    return result


def test_promql_median_equals_the_runs_median(backfilled: Server, golden: RunSummary) -> None:
    (series,) = instant(backfilled, 'sandbench_request_to_workload_median_seconds'
                                    '{runtime="runc",workload="start"}', end_time(golden))
    median_ms = golden.by_key.loc[("runc", "start", "request_to_workload", "")]["median"]
    value = series["value"]
    assert isinstance(value, list)
    # To the unit: the same double, in seconds.
    assert float(value[1]) == median_ms / 1000
    assert series["metric"] == {"__name__": "sandbench_request_to_workload_median_seconds",
                                "runtime": "runc", "workload": "start", "backend": "local",
                                "run_id": golden.run.run_id}


def test_promql_reads_every_sample_at_its_time(backfilled: Server, golden: RunSummary) -> None:
    good = golden.good
    runc = good[(good["runtime"] == "runc") & (good["metric"] == "request_to_exit")]
    # A range selector returns the stored points themselves, each at its own stamp.
    (series,) = instant(backfilled, 'sandbench_request_to_exit_seconds{runtime="runc"}[1d]',
                        end_time(golden))
    values = series["values"]
    assert isinstance(values, list)
    assert [(round(t * 1000), float(v)) for t, v in values] == sorted(
        (round(unix_seconds(t) * 1000), v / 1000) for t, v in zip(runc["time"], runc["value"]))
    (info,) = instant(backfilled, "sandbench_run_info", end_time(golden))
    assert info["metric"] == {"__name__": "sandbench_run_info", **{
        "run_id": golden.run.run_id, "backend": "local", "status": "completed",
        "valid": "true", "baseline": "native", "git_commit": golden.run.info.git_commit,
        "sandbench_version": "0.1.0"}}


def test_push_lands_in_a_real_pushgateway(tmp_path: Path, golden: RunSummary) -> None:
    other = shutil.copytree(GOLDEN_RUN, tmp_path / "again")
    meta = json.loads((other / "run.json").read_text())
    (other / "run.json").write_text(json.dumps({**meta, "run_id": "again"}))
    with pushgateway(tmp_path) as gateway:
        url = group_url(gateway.url, "sandbench-nightly", {"backend": "local"})
        push(url, to_pushgateway(summarize_run(load_run(other))).text)
        # The command, as a nightly job runs it, replaces what was there.
        pushed = sandbench("push", str(GOLDEN_RUN), "--gateway", gateway.url, "--job",
                           "sandbench-nightly")
        assert pushed.returncode == 0, pushed.stderr
        assert "pushed to" in pushed.stderr
        families = {f.name: f for f in text_string_to_metric_families(gateway.get("/metrics"))}
    median_ms = golden.by_key.loc[("runc", "start", "request_to_workload", "")]["median"]
    (runc,) = [s for s in families["sandbench_request_to_workload_median_seconds"].samples
               if s.labels["runtime"] == "runc"]
    assert runc.value == median_ms / 1000 and runc.timestamp is None
    assert runc.labels["job"] == "sandbench-nightly" and runc.labels["backend"] == "local"
    # The second push replaced the group: one run's series, not two.
    (info,) = families["sandbench_run_info"].samples
    assert info.labels["run_id"] == golden.run.run_id


def test_grafana_dashboards_queries_run_on_the_backfilled_series(backfilled: Server,
                                                                  golden: RunSummary) -> None:
    dashboard = json.loads(resources.files("sandbench").joinpath(
        "examples", "grafana-dashboard.json").read_text())
    # Grafana's variables, as "All" sends them.
    for variable in dashboard["templating"]["list"][1:]:
        metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)",
                                     variable["query"]["query"]).groups()
        values = backfilled.get(f"/api/v1/label/{label}/values", **{"match[]": metric})
        assert values["data"], variable["name"]
    for panel in dashboard["panels"]:
        results = []
        for target in panel["targets"]:
            expr = target["expr"].replace("$backend", ".*").replace("$runtime", ".*")
            results += instant(backfilled, expr, end_time(golden))
        # A local run has no Kubernetes phases, but every panel shows something of it.
        assert results, panel["title"]
    phases = {r["metric"]["phase"] for r in instant(
        backfilled, dashboard["panels"][2]["targets"][0]["expr"].replace("$backend", ".*")
        .replace("$runtime", ".*"), end_time(golden))}
    assert phases == {"request_to_workload", "request_to_exit", "request_to_created",
                      "start_to_workload"}


def test_a_run_without_samples_is_its_info_alone(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path / "run", {"run_id": "r", "backend": "local",
                                          "started_at": "2026-01-01T00:00:00+00:00"})
    writer.finish("interrupted")
    text = to_openmetrics(summarize_run(load_run(tmp_path / "run"))).text
    assert [line for line in text.splitlines() if not line.startswith("#")] == [
        'sandbench_run_info{run_id="r",backend="local",status="interrupted",valid="unknown",'
        'baseline="",git_commit="",sandbench_version=""} 1.0 '
        f'{unix_seconds(load_run(tmp_path / "run").info.ended_at or ""):.3f}']
    assert text.endswith("# EOF\n")


def footprint_run(path: Path) -> Path:
    """Footprint, density and net metrics (units spelled in their names), and one unit no
    export knows."""
    rows = []
    for i in range(5):
        rows += [sample("runc", "host_pss_mib", "MiB", 2.5, i + 1, workload="footprint"),
                 sample("runc", "idle_cpu_ms_per_s", "ms/s", 4.0, i + 1, workload="footprint"),
                 sample("runc", "throughput", "Gbit/s", 8.0, i + 1, workload="net"),
                 sample("runc", "rr_latency_p50", "µs", 30.0, i + 1, workload="net"),
                 sample("runc", "distance", "furlongs", 1.0, i + 1, workload="net")]
    writer = RunWriter(path, {"run_id": path.name, "backend": "local",
                              "started_at": "2026-01-01T00:00:00+00:00"})
    writer.append(rows)
    writer.finish("completed")
    return path


def test_footprint_density_and_net_units_are_written_in_base_units(tmp_path: Path) -> None:
    summary = summarize_run(load_run(footprint_run(tmp_path / "run")))
    document = to_openmetrics(summary)
    text = document.text
    assert lines(text, "sandbench_host_pss_bytes")[0].split()[1] == "2621440.0"
    assert "# UNIT sandbench_host_pss_bytes bytes" in text
    assert lines(text, "sandbench_host_pss_median_bytes")
    assert lines(text, "sandbench_idle_cpu_ratio")[0].split()[1] == "0.004"
    assert "# UNIT sandbench_idle_cpu_ratio ratio" in text
    assert lines(text, "sandbench_throughput_bytes_per_second")[0].split()[1] == "1000000000.0"
    assert lines(text, "sandbench_rr_latency_p50_seconds")[0].split()[1] == "3e-05"
    (left_out,) = document.skipped
    assert left_out.startswith("runc net distance (furlongs): unit not known")
    pushed = to_pushgateway(summary)
    assert pushed.skipped == [left_out]
    assert lines(pushed.text, "sandbench_host_pss_median_bytes")


def test_push_says_what_it_left_out(tmp_path: Path) -> None:
    run = footprint_run(tmp_path / "run")
    with pushgateway(tmp_path) as gateway:
        pushed = sandbench("push", str(run), "--gateway", gateway.url)
    assert pushed.returncode == 0, pushed.stderr
    assert "left out: runc net distance (furlongs)" in pushed.stderr
