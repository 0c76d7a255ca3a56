"""The nightly pipeline examples that ship in the wheel: well-formed, and using commands and
flags that exist."""

from __future__ import annotations

import json
from importlib import resources

import yaml
from kubernetes.client import ApiClient

from conftest import sandbench


def example(name: str) -> str:
    return resources.files("sandbench").joinpath("examples", name).read_text()


def test_the_cronjob_is_valid_for_the_kubernetes_api() -> None:
    # A round trip through the official client's models drops any field the API does not
    # know, so a misspelt field shows as a difference.
    client = ApiClient()
    docs = list(yaml.safe_load_all(example("nightly-cronjob.yaml")))
    assert [d["kind"] for d in docs] == ["PersistentVolumeClaim", "CronJob"]
    for doc in docs:
        model = client.deserialize(json.dumps(doc), f"V1{doc['kind']}", "application/json")
        assert client.sanitize_for_serialization(model) == doc
    job = docs[1]["spec"]
    assert job["concurrencyPolicy"] == "Forbid" and job["jobTemplate"]["spec"]["backoffLimit"] == 0
    pod = job["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "sandbench"  # the one `sandbench rbac` makes
    script = pod["containers"][0]["args"][0]
    assert "--fail-on regression" in script and "--last-good" in script
    assert 'sandbench push "$NEW" --gateway "$PUSHGATEWAY"' in script


def test_the_workflow_runs_nightly_compares_publishes_and_fails_on_regressions() -> None:
    workflow = yaml.safe_load(example("nightly-github-actions.yml"))
    assert workflow[True]["schedule"][0]["cron"]  # YAML 1.1 reads the key `on` as True
    steps = workflow["jobs"]["nightly"]["steps"]
    scripts = "\n".join(str(step.get("run", "")) for step in steps)
    for command in ("sandbench run --profile standard", "sandbench history", "--last-good",
                    "sandbench compare", "--fail-on regression", "--junit", "--record",
                    "sandbench report", "--history"):
        assert command in scripts
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and "report.html" in uploads[0]["with"]["path"]


def test_examples_are_printed_by_the_command() -> None:
    listed = sandbench("examples")
    assert "github-actions" in listed.stdout and "cronjob" in listed.stdout
    printed = sandbench("examples", "cronjob")
    assert printed.stdout == example("nightly-cronjob.yaml")
