"""OTLP/JSON traces of start phases, checked against OpenTelemetry's own protobuf definitions
(opentelemetry-proto): google.protobuf's JSON parser into an ExportTraceServiceRequest."""

from __future__ import annotations

import base64
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status as SpanStatus

from conftest import cache_dir, sandbench
from prometheus_servers import serve
from sshd import free_port
from sandbench.model import Sample, Status
from sandbench.nightly.openmetrics import unix_seconds
from sandbench.nightly.otlp import to_otlp
from sandbench.results import RunWriter, load_run
from sandbench.workloads.base import probe_header, realtime_stamp

GOLDEN_RUN = Path(__file__).parent / "data" / "runs" / "format1-local"
ID_FIELDS = ("traceId", "spanId", "parentSpanId")
OFFSET_CLOCK = "host_realtime->sandbox_realtime (offset 250±40 ns, measured clock pod)"


def as_protobuf_json(value: Any) -> Any:
    """OTLP/JSON writes ids as hex where protobuf's JSON mapping has base64 (the one place the
    two differ, by the OTLP specification); everything else is parsed as it is."""
    if isinstance(value, dict):
        return {k: (base64.b64encode(bytes.fromhex(v)).decode() if k in ID_FIELDS
                    else as_protobuf_json(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [as_protobuf_json(v) for v in value]
    return value


def parse(document: dict[str, Any]) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    json_format.Parse(json.dumps(as_protobuf_json(document)), request)  # unknown fields refused
    return request


def attributes(span: Span) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in span.attributes}


def write_run(path: Path) -> Path:
    """One runc sandbox, no output file: request_to_workload across an offset, request_to_exit
    on the monotonic clock, request_to_created failed."""
    def sample(metric: str, value: float | None, clock: str | None, reason: str | None = None,
               ) -> Sample:
        return Sample("r", "local", "runc", "start", metric, "ms", value, 1, False,
                      Status.FAILED if value is None else Status.OK,
                      "2026-01-01T00:00:10+00:00", clock=clock, reason=reason)
    writer = RunWriter(path, {"run_id": "r", "backend": "local",
                              "started_at": "2026-01-01T00:00:00+00:00"})
    writer.append([sample("request_to_workload", 100.0, OFFSET_CLOCK),
                   sample("request_to_exit", 150.0, "host_monotonic"),
                   sample("request_to_created", None, None, "runc create timed out after 60 s")])
    writer.finish("completed")
    return path


def spans_by_name(request: ExportTraceServiceRequest) -> dict[str, Span]:
    (resource_spans,) = request.resource_spans
    return {span.name: span for span in resource_spans.scope_spans[0].spans}


def test_golden_run_is_valid_otlp_one_trace_per_sandbox() -> None:
    run = load_run(GOLDEN_RUN)
    document = to_otlp(run)
    request = parse(document)
    start = run.samples[run.samples["workload"] == "start"]
    assert len(request.resource_spans) == start["output"].nunique()
    trace_ids = {bytes(rs.scope_spans[0].spans[0].trace_id) for rs in request.resource_spans}
    assert len(trace_ids) == len(request.resource_spans)
    spans = [s for rs in request.resource_spans for s in rs.scope_spans[0].spans]
    assert len(spans) == len(start)
    for span in spans:
        assert len(span.trace_id) == 16 and len(span.span_id) == 8
        # Each span lasts its phase's value, to the nanosecond.
        assert span.end_time_unix_nano - span.start_time_unix_nano == round(
            attributes(span)["sandbench.value_ms"] * 1e6)
        assert attributes(span)["sandbench.clock"]
    assert to_otlp(run) == document  # deterministic ids and times


def test_spans_meet_at_the_probes_stamp() -> None:
    run = load_run(GOLDEN_RUN)
    request = parse(to_otlp(run))
    resource = request.resource_spans[0]
    sandbox = {kv.key: kv.value.string_value for kv in resource.resource.attributes}
    header, _ = probe_header((GOLDEN_RUN / sandbox["sandbench.sandbox"]).read_text(), "start")
    spans = {s.name: s for s in resource.scope_spans[0].spans}
    workload = spans["request_to_workload"]
    # Offset 0 (same kernel clock): the phase ends at the probe's own stamp.
    assert workload.end_time_unix_nano == realtime_stamp(header)
    assert attributes(workload)["sandbench.clock.offset_ns"] == 0
    assert attributes(workload)["sandbench.clock.end"] == "sandbox_realtime"
    assert spans["request_to_exit"].start_time_unix_nano == workload.start_time_unix_nano
    assert attributes(spans["request_to_exit"])["sandbench.clock"] == "host_monotonic"


def test_offsets_go_in_attributes_and_failures_are_error_spans(tmp_path: Path) -> None:
    request = parse(to_otlp(load_run(write_run(tmp_path / "run"))))
    spans = spans_by_name(request)
    recorded = round(unix_seconds("2026-01-01T00:00:10+00:00") * 1e9)
    # No probe stamp: the last event (the exit) is placed when the samples were recorded.
    exit_ = spans["request_to_exit"]
    assert exit_.end_time_unix_nano == recorded
    assert exit_.start_time_unix_nano == recorded - 150_000_000
    workload = spans["request_to_workload"]
    assert workload.start_time_unix_nano == exit_.start_time_unix_nano
    assert workload.end_time_unix_nano == workload.start_time_unix_nano + 100_000_000
    got = attributes(workload)
    assert got["sandbench.clock.start"] == "host_realtime"
    assert got["sandbench.clock.end"] == "sandbox_realtime"
    assert got["sandbench.clock.offset_ns"] == 250
    assert got["sandbench.clock.offset_uncertainty_ns"] == 40
    assert got["sandbench.clock.offset_method"] == "measured clock pod"
    assert got["sandbench.placement"] == "the time its samples were recorded"
    failed = spans["request_to_created"]
    assert failed.status.code == SpanStatus.STATUS_CODE_ERROR
    assert failed.status.message == "runc create timed out after 60 s"
    assert failed.start_time_unix_nano == exit_.start_time_unix_nano  # at its start mark
    assert failed.end_time_unix_nano == failed.start_time_unix_nano
    assert workload.status.code == SpanStatus.STATUS_CODE_OK


def test_command_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "traces.json"
    result = sandbench("export", "--format", "otlp", str(GOLDEN_RUN), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "traces" in result.stderr and "spans" in result.stderr
    assert parse(json.loads(out.read_text())).resource_spans


def test_a_run_without_start_samples_has_no_trace(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path / "run", {"run_id": "r", "backend": "local",
                                          "started_at": "2026-01-01T00:00:00+00:00"})
    writer.finish("completed")
    assert to_otlp(load_run(tmp_path / "run")) == {"resourceSpans": []}


#: Jaeger v2 as tests/tools/build-jaeger.sh builds it (optional: a long build).
JAEGER = cache_dir() / "jaeger" / "v1.76.0" / "jaeger"
JAEGER_CONFIG = """\
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
extensions:
  jaeger_storage:
    backends:
      memory:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memory
    http:
      endpoint: 127.0.0.1:{query}
    grpc:
      endpoint: 127.0.0.1:{query_grpc}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  jaeger_storage_exporter:
    trace_storage: memory
"""


def test_jaeger_accepts_the_traces_and_serves_them(tmp_path: Path) -> None:
    if not JAEGER.is_file():
        pytest.skip(f"Jaeger v2 is not built at {JAEGER}: run tests/tools/build-jaeger.sh "
                    "(optional; the proto check above always runs)")
    ports = {name: free_port() for name in ("query", "query_grpc", "otlp")}
    config = tmp_path / "jaeger.yaml"
    config.write_text(JAEGER_CONFIG.format(**ports))
    document = to_otlp(load_run(write_run(tmp_path / "run")))
    golden = to_otlp(load_run(GOLDEN_RUN))
    with serve([str(JAEGER), "--config", str(config)], ports["query"], tmp_path / "jaeger.log",
               ready="/api/services") as query:
        for sent in (document, golden):
            request = urllib.request.Request(
                f"http://127.0.0.1:{ports['otlp']}/v1/traces", method="POST",
                data=json.dumps(sent).encode(), headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.loads(response.read() or b"{}")
            assert not answer.get("partialSuccess"), answer  # nothing rejected
        trace_id = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]
        (trace,) = query.get(f"/api/traces/{trace_id}")["data"]
        # Every sandbox of a real run is a trace of its own, with all its phases.
        for sandbox in golden["resourceSpans"]:
            sent_spans = sandbox["scopeSpans"][0]["spans"]
            (stored,) = query.get(f"/api/traces/{sent_spans[0]['traceId']}")["data"]
            assert len(stored["spans"]) == len(sent_spans)
    spans = {span["operationName"]: span for span in trace["spans"]}
    assert set(spans) == {"request_to_workload", "request_to_exit", "request_to_created"}
    # Jaeger's API speaks microseconds.
    assert spans["request_to_exit"]["duration"] == 150_000
    assert spans["request_to_workload"]["startTime"] == spans["request_to_exit"]["startTime"]
    tags = {tag["key"]: tag["value"] for tag in spans["request_to_workload"]["tags"]}
    assert tags["sandbench.clock.offset_ns"] == 250
    failed = {tag["key"]: tag["value"] for tag in spans["request_to_created"]["tags"]}
    assert failed["error"] is True
    assert failed["otel.status_description"] == "runc create timed out after 60 s"
