"""Node facts read over SSH: the parser on the script's real output captured over SSH from
this machine (tests/data/golden/ssh_node_facts.out), and the --ssh destination syntax."""

from __future__ import annotations

import json

import pytest

from conftest import golden
from sandbench.facts import node as sshfacts


def test_facts_from_the_captured_output() -> None:
    facts = sshfacts.parse_facts(golden("ssh_node_facts.out"))
    assert facts["kernel"] == "6.18.44-fc-v769" and facts["arch"] == "x86_64"
    assert facts["cpu_model"] == "Intel(R) Xeon(R) Processor" and facts["cpus"] == 2
    assert facts["kernel_cmdline"].startswith("mitigations=auto")
    assert facts["governor"] is None  # no cpufreq in this VM: None, not an error
    assert facts["ksm"] == {"run": "stopped", "pages_sharing": 0}
    assert facts["thp"] == {"enabled": "madvise", "defrag": "madvise"}
    assert facts["kata"] == {"installed": False}


def test_an_unfinished_script_is_an_error() -> None:
    text = golden("ssh_node_facts.out")
    with pytest.raises(ValueError, match="did not run to its end"):
        sshfacts.parse_facts(text[:text.index("@@sandbench kata_path")])


def test_kata_env_is_kept_whole() -> None:
    # Hand-written, in the shape kata-runtime env --json has (Host.VMContainerCapable); no
    # Kata node is reachable from here to capture a real one.
    env = {"Host": {"Kernel": "6.1.0", "VMContainerCapable": True}, "Runtime": {"Version": {}}}
    text = golden("ssh_node_facts.out").replace(
        "@@sandbench kata_path\n", "@@sandbench kata_path\n/opt/kata/bin/kata-runtime\n").replace(
        "@@sandbench kata_env\n", f"@@sandbench kata_env\n{json.dumps(env)}\n")
    kata = sshfacts.parse_facts(text)["kata"]
    assert kata == {"installed": True, "path": "/opt/kata/bin/kata-runtime",
                    "vm_container_capable": True, "env": env}


def test_kata_that_fails_is_recorded_with_its_words() -> None:
    text = golden("ssh_node_facts.out").replace(
        "@@sandbench kata_path\n", "@@sandbench kata_path\n/usr/bin/kata-runtime\n").replace(
        "@@sandbench kata_env\n", "@@sandbench kata_env\nERROR: no config\n")
    assert sshfacts.parse_facts(text)["kata"]["error"] == "ERROR: no config"


@pytest.mark.parametrize(("text", "expected"), [
    ("node1", (None, "node1", None)),
    ("root@node1", ("root", "node1", None)),
    ("admin@10.0.0.5:2222", ("admin", "10.0.0.5", 2222)),
    ("[::1]:22", (None, "::1", 22)),
])
def test_destinations(text: str, expected: tuple[object, ...]) -> None:
    assert sshfacts.parse_destination(text) == expected


@pytest.mark.parametrize("text", ["root@", "host:port", "@"])
def test_bad_destinations(text: str) -> None:
    with pytest.raises(ValueError, match="expected \\[user@\\]host\\[:port\\]"):
        sshfacts.parse_destination(text)
