"""Image pull, cold against warm: crictl's answers parsed (golden files captured from crictl
v1.34.0 against containerd 1.6.20, tests/data/crictl/), the cold and warm states made and
checked call by call on those recorded answers, the pull states in a spec and in a plan.
The real thing, registry and kubelet included, is tests/cluster/test_image_pull_cluster.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbench import runner
from sandbench.analysis.summary import summarize_run
from conftest import GOLDEN
from sandbench.backends.kubernetes.cri import Answer, CriError, NodeCri, parse_status
from sandbench.backends.kubernetes.kubelet import Totals, observations, round_ms, totals
from sandbench.backends.kubernetes.lifecycle import PLANNED, PodProgress, observe_pod
from sandbench.backends.kubernetes.watcher import Seen
from sandbench.backends.kubernetes.pull import PullStates, StateNotReached
from sandbench.model import Clock, Execution, Sample, Status
from sandbench.report.labels import runtimes
from sandbench.report.pull import pull_notes
from sandbench.results import RunWriter, load_run
from sandbench.spec import Overrides, SpecError, load_spec, parse_spec

CRICTL = Path(__file__).parent / "data" / "crictl"
REF = "127.0.0.1:5598/sandbench/workload:67c10f547728"
ID = "sha256:d42f363e0dfea74662f330c5cd877497e1fde23c4d7958061e7e6dd7ff4ecf2f"


def recorded(name: str, returncode: int = 0) -> Answer:
    text = (CRICTL / name).read_text()
    return Answer(returncode, text if name.endswith(".stdout") else "",
                  text if name.endswith(".stderr") else "")


PRESENT = recorded("inspecti-present.stdout")
ABSENT = recorded("inspecti-absent.stderr", 1)
UNREACHABLE = recorded("inspecti-unreachable.stderr", 1)
REMOVED = recorded("rmi.stdout")
PULLED = recorded("pull.stdout")
#: One exited container of the image, of a deleted pod in namespace psx, and its removal.
EXITED = recorded("ps-exited.stdout")
CONTAINER_REMOVED = recorded("rm.stdout")


def test_a_present_image_with_its_size_and_layers() -> None:
    found = parse_status(PRESENT)
    assert found.present and found.image_id == ID
    assert found.size_bytes == 50_719_962 and found.layers == 1


def test_an_absent_image_is_an_answer_not_an_error() -> None:
    assert not parse_status(ABSENT).present


def test_an_unreachable_cri_is_an_error_in_crictls_words() -> None:
    with pytest.raises(CriError, match=r"ImageStatus failed: validate service connection.*"
                                       r"no such file or directory"):
        parse_status(UNREACHABLE)


def test_output_that_is_not_crictls_is_an_error() -> None:
    with pytest.raises(CriError, match="printed no JSON"):
        parse_status(Answer(0, "Image is up to date", ""))


class Replay:
    """crictl's recorded answers, in the order a sequence of calls got them; each call's
    subcommand and reference are kept to check what was asked."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], timeout_s: float) -> Answer:
        # After crictl's own flags: the subcommand, its options, the reference.
        self.calls.append([argv[argv.index("--timeout") + 2], argv[-1]])
        return self.answers.pop(0)


def states(*answers: Answer, namespace: str = "psx") -> tuple[PullStates, Replay]:
    replay = Replay(*answers)
    return PullStates(REF, NodeCri("crictl", "unix:///run/x.sock", 30, replay), namespace), replay


def test_cold_removes_the_runs_exited_containers_and_the_image() -> None:
    pulls, replay = states(PRESENT, EXITED, CONTAINER_REMOVED, REMOVED, ABSENT, ABSENT, PRESENT)
    assert pulls.before("cold") == {"pull": "cold", "pull_check": "cri-imagestatus"}
    container = "50f92ce3e2aecf7fa594ce0f47704367631b429575128291e0d8217c84820515"
    assert replay.calls == [["inspecti", REF], ["ps", "json"], ["rm", container], ["rmi", REF],
                            ["inspecti", REF], ["inspecti", ID]]
    assert pulls.after("cold") == {"image_size": "50719962", "image_layers": "1"}
    assert pulls.verified == {"cold": 1}


def test_cold_waits_for_the_kubelet_to_remove_another_pods_exited_container() -> None:
    pulls, replay = states(PRESENT, EXITED, Answer(0, '{"containers": []}', ""), REMOVED,
                           ABSENT, ABSENT, namespace="sandbench-other-run")
    pulls.before("cold")
    assert [call[0] for call in replay.calls] == ["inspecti", "ps", "ps", "rmi", "inspecti",
                                                  "inspecti"]  # not removed by the harness


def test_cold_fails_at_once_when_another_pods_container_runs_the_image() -> None:
    running = Answer(0, EXITED.stdout.replace("CONTAINER_EXITED", "CONTAINER_RUNNING"), "")
    pulls, replay = states(PRESENT, running, namespace="sandbench-other-run")
    with pytest.raises(StateNotReached, match="container 50f92ce3e2aec of pod psx/p1 "
                                              r"\(CONTAINER_RUNNING\) uses the image"):
        pulls.before("cold")
    assert [call[0] for call in replay.calls] == ["inspecti", "ps"]  # nothing removed


def test_cold_fails_when_another_name_keeps_the_image() -> None:
    pulls, _ = states(PRESENT, EXITED, CONTAINER_REMOVED, REMOVED, ABSENT, PRESENT)
    with pytest.raises(StateNotReached, match=f"still finds {ID}"):
        pulls.before("cold")


def test_warm_pulls_an_absent_image_first_and_checks_it_is_there() -> None:
    pulls, replay = states(ABSENT, PULLED, PRESENT)
    labels = pulls.before("warm")
    assert labels["pull"] == "warm" and labels["image_layers"] == "1"
    assert [call[0] for call in replay.calls] == ["inspecti", "pull", "inspecti"]


def test_warm_on_a_cri_that_cannot_be_asked_is_not_verified_and_says_so() -> None:
    pulls, _ = states(UNREACHABLE)
    with pytest.raises(StateNotReached, match="warm not verified: ImageStatus failed"):
        pulls.before("warm")


def test_an_image_gone_after_the_pod_fails_it() -> None:
    pulls, _ = states(ABSENT)
    with pytest.raises(StateNotReached, match="finds no .* after the pod"):
        pulls.after("warm")


def test_without_a_cri_warm_is_labelled_unverified() -> None:
    pulls = PullStates(REF, None)
    assert pulls.before("warm") == {"pull": "warm", "pull_check": "none"}
    assert pulls.facts("warm", None)["verified"] is False


def kube_spec(**kubernetes: object) -> dict[str, object]:
    return {"backend": "kubernetes", "runtimes": ["runc", "crun"], "rounds": 2, "warmup": 0,
            "kubernetes": kubernetes, "workloads": {"start": {}, "syscall": {}}}


def test_both_runs_each_state_every_round_alternating_which_goes_first() -> None:
    spec = parse_spec(kube_spec(pull="both", cri_endpoint="unix:///x"), "test")
    assert spec.pull_states() == ("cold", "warm")
    steps = runner.plan(spec, {"runc": "", "crun": ""}).steps
    start = [(s.round, s.case.pull) for s in steps if s.workload.name == "start"]
    assert start == [(1, "cold"), (1, "cold"), (1, "warm"), (1, "warm"),
                     (2, "warm"), (2, "warm"), (2, "cold"), (2, "cold")]
    # Only a start is timed with a pull state; the other workloads' pods are just pods.
    assert {s.case.pull for s in steps if s.workload.name == "syscall"} == {None}


def test_the_default_is_warm_and_the_local_backend_pulls_nothing() -> None:
    assert parse_spec(kube_spec(), "test").pull_states() == ("warm",)
    assert load_spec(None, "quick").pull_states() == ()


@pytest.mark.parametrize(("kubernetes", "backend", "message"), [
    ({"pull": "cold"}, "kubernetes", "pull 'cold' removes the image from the node before a pod, "
                                     "which needs the node's CRI: give cri_endpoint"),
    ({"pull": "both", "cri_endpoint": "unix:///x", "pull_policy": "Never"}, "kubernetes",
     "pull 'both' needs pull_policy IfNotPresent or Always"),
    ({"pull": "cold"}, "local", "kubernetes.pull 'cold' applies to the kubernetes backend only"),
    ({"pull": "lukewarm"}, "kubernetes", "kubernetes.pull: 'lukewarm' is not valid: Input should "
                                         "be 'warm', 'cold' or 'both'"),
])
def test_a_pull_state_that_cannot_be_had_is_refused(kubernetes: dict[str, object], backend: str,
                                                    message: str) -> None:
    with pytest.raises(SpecError) as refused:
        load_spec(None, "quick", Overrides(backend=backend, kubernetes=kubernetes))
    assert message in str(refused.value)


def pulled_run(path: Path, runtime: str = "runc",
               facts: dict[str, object] | None = None) -> Path:
    """A kubernetes run's start samples, three rounds cold and three warm, as the backend
    labels them, and the image_state it records. A VMI's (facts of kind kubevirt) have the
    pull in create_to_scheduled, its scheduled_to_running the same either way."""
    writer = RunWriter(path, {"run_id": path.name, "backend": "kubernetes", "baseline": runtime,
                              "started_at": "2026-01-01T00:00:00+00:00",
                              "spec": {"backend": "kubernetes", "runtimes": [runtime],
                                       "workloads": {}},
                              "runtimes": {runtime: facts or {}},
                              "environment": {"image_state": PullStates(REF, None).facts(
                                  "both", None) | {"verified": True, "how": "checked"}},
                              "metrics": {}})
    values = {("scheduled_to_running", "cold"): [2400.0, 2600.0, 2500.0],
              ("scheduled_to_running", "warm"): [900.0, 1100.0, 1000.0],
              ("kubelet_image_pull", "cold"): [1400.0, 1500.0, 1600.0]}
    if (facts or {}).get("kind") == "kubevirt":
        values = {("create_to_scheduled", "cold"): [7400.0, 7500.0, 7300.0],
                  ("create_to_scheduled", "warm"): [5900.0, 5800.0, 6000.0],
                  ("scheduled_to_running", "cold"): [1100.0, 1000.0, 1200.0],
                  ("scheduled_to_running", "warm"): [1100.0, 1000.0, 1200.0]}
    writer.append(Sample(run_id=path.name, backend="kubernetes", runtime=runtime,
                         workload="start", metric=metric, unit="ms", value=value, round=i + 1,
                         warmup=False, status=Status.OK, time="2026-01-01T00:00:00+00:00",
                         labels={"pull": pull, "pull_check": "cri-imagestatus",
                                 "image_size": "50719962", "image_layers": "1"})
                  for (metric, pull), series in values.items() for i, value in enumerate(series))
    writer.finish("completed")
    return path


def test_the_report_says_how_the_state_was_verified_and_cold_against_warm(
        tmp_path: Path) -> None:
    run = load_run(pulled_run(tmp_path / "pulled"))
    summary = summarize_run(run)
    # The size and layer labels do not split rows; the state does. A warm start's row has no
    # pull label: it measures what every start measured before, so it matches older runs.
    assert set(summary.table["labels"]) == {"pull=cold", ""}
    notes = pull_notes(summary.table, run.info, runtimes(run.info, ["runc"]))
    assert notes[0] == "Image state before each pod: cold and warm (label pull). Verified: checked."
    assert notes[1].startswith("runc: scheduled_to_running median 2500 ms cold against 1000 ms "
                               "warm (+1500 ms; p5-p95 spread")
    assert notes[1].endswith("the kubelet's own pull, cold: median 1500 ms.")
    # A run with VMIs says how their images' states were kept too.
    run.info.environment["kubevirt"] = {"image_state": {"how": "three images each checked"}}
    notes = pull_notes(summary.table, run.info, runtimes(run.info, ["runc"]))
    assert notes[1] == ("Image state before each KubeVirt VMI: cold and warm (label pull). "
                        "Verified: three images each checked.")


def test_a_vmis_cold_against_warm_is_read_where_its_pulls_are(tmp_path: Path) -> None:
    run = load_run(pulled_run(tmp_path / "vmi", "kubevirt-vm", {"kind": "kubevirt"}))
    run.info.environment["kubevirt"] = {"image_state": {"how": "three images each checked"}}
    summary = summarize_run(run)
    notes = pull_notes(summary.table, run.info, runtimes(run.info, ["kubevirt-vm"]))
    # Only VMIs ran: no sentence about pods.
    assert notes[0].startswith("Image state before each KubeVirt VMI: cold and warm")
    assert notes[1].startswith("kubevirt-vm: create_to_scheduled median 7400 ms cold against "
                               "5900 ms warm (+1500 ms")


def test_the_kubelets_pull_histogram_from_a_real_scrape() -> None:
    """tests/data/golden/kubelet_metrics_pulled.txt: the test cluster's kubelet after eight
    cold pulls of the workload image (its two histogram families, as scraped)."""
    scraped = totals((GOLDEN / "kubelet_metrics_pulled.txt").read_text())
    assert scraped["kubelet_image_pull"].count == 8
    assert scraped["kubelet_image_pull"].sum_s == pytest.approx(27.523)
    one_more = {"kubelet_image_pull": Totals(27.523 + 4.142, 9)}
    assert observations(scraped, one_more, "kubelet_image_pull") == 1
    assert round_ms(scraped, one_more, "kubelet_image_pull") == pytest.approx(4142.0)
    # A warm pod adds no observation: no value, and the cold check sees zero pulls.
    assert observations(scraped, scraped, "kubelet_image_pull") == 0
    assert round_ms(scraped, scraped, "kubelet_image_pull") is None


def test_no_pod_status_arrives_while_the_kubelet_pulls() -> None:
    """tests/data/golden/pod_watch_cold_pull.jsonl: a cold runc pod on the test cluster, each
    watch event with the ms it was received after the create call. Between the kubelet's first
    status (ContainerCreating) and Running, 4.3 s of pulling, nothing: no watch phase isolates
    the pull, and scheduled_to_running holds it."""
    events = [json.loads(line) for line in
              (GOLDEN / "pod_watch_cold_pull.jsonl").read_text().splitlines()]
    progress = PodProgress(Execution(planned=PLANNED))
    progress.execution.mark("create", Clock.HOST_MONOTONIC, 0)
    for event in events:
        observe_pod(progress, Seen("pod", event["type"], int(event["received_ms"] * 1e6),
                                   event["object"]))
    marks = {m.name: m.ns / 1e6 for m in progress.execution.marks}
    assert marks["scheduled"] == pytest.approx(28.8) and marks["running"] == pytest.approx(4401.4)
    between = [e for e in events if marks["scheduled"] < e["received_ms"] < marks["running"]]
    assert [e["object"]["status"]["containerStatuses"][0]["state"] for e in between] == [
        {"waiting": {"reason": "ContainerCreating"}}]
