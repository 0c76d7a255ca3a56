"""Facts about a node read over SSH, for what the Kubernetes API does not say: the kernel
command line, CPU model and frequency governor, KSM and transparent huge pages, and Kata's own
view of the node (``kata-runtime env --json``, recorded as absent where Kata is not installed).

One POSIX shell script does all the reading in one round trip and prints each fact under a
``@@sandbench <name>`` line; ``parse_facts`` turns that output into the record (a pure
function, tested on real captured output).
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from sandbench.facts import ssh
from sandbench.spec import SshTarget

SECTION = "@@sandbench "
#: Kata's runtime is on PATH where a package installed it, in /opt/kata/bin where kata-deploy did.
SCRIPT = r"""
section() { printf '\n%s%s\n' '@@sandbench ' "$1"; }
section kernel; uname -r
section kernel_version; uname -v
section arch; uname -m
section cmdline; cat /proc/cmdline
section cpu_model; grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2-
section cpus; getconf _NPROCESSORS_ONLN
section governor; cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null
section ksm_run; cat /sys/kernel/mm/ksm/run 2>/dev/null
section ksm_pages_sharing; cat /sys/kernel/mm/ksm/pages_sharing 2>/dev/null
section thp_enabled; cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null
section thp_defrag; cat /sys/kernel/mm/transparent_hugepage/defrag 2>/dev/null
k=$(command -v kata-runtime || echo /opt/kata/bin/kata-runtime)
section kata_path; [ -x "$k" ] && echo "$k"
section kata_env; [ -x "$k" ] && "$k" env --json 2>&1
section end
"""
#: /sys/kernel/mm/ksm/run: what each value means (Documentation/admin-guide/mm/ksm.rst).
KSM_RUN = {"0": "stopped", "1": "running", "2": "unmerging"}
_SELECTED = re.compile(r"\[([^\]]+)\]")


def sections(output: str) -> dict[str, str]:
    """The script's output split into its named sections, each stripped."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith(SECTION):
            current = found.setdefault(line[len(SECTION):].strip(), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines).strip() for name, lines in found.items()}


def _selected(setting: str) -> str | None:
    """The bracketed choice of a sysfs setting like ``always [madvise] never``."""
    match = _SELECTED.search(setting)
    return match.group(1) if match else (setting or None)


def _kata(path: str, env: str) -> dict[str, Any]:
    if not path:
        return {"installed": False}
    try:
        parsed = json.loads(env)
    except ValueError:
        return {"installed": True, "path": path, "error": env[-2000:] or "no output"}
    host = parsed.get("Host") if isinstance(parsed, dict) else None
    capable = host.get("VMContainerCapable") if isinstance(host, dict) else None
    return {"installed": True, "path": path, "vm_container_capable": capable, "env": parsed}


def parse_facts(output: str) -> dict[str, Any]:
    """The facts from the script's output. A missing sysfs file (no cpufreq in a VM, a kernel
    without KSM) is None, not an error."""
    found = sections(output)
    if "end" not in found:
        raise ValueError("the facts script did not run to its end; output: " + output[-500:])
    ksm = found.get("ksm_run", "")
    return {
        "kernel": found.get("kernel") or None,
        "kernel_version": found.get("kernel_version") or None,
        "arch": found.get("arch") or None,
        "kernel_cmdline": found.get("cmdline") or None,
        "cpu_model": found.get("cpu_model") or None,
        "cpus": int(found["cpus"]) if found.get("cpus", "").isdigit() else None,
        "governor": found.get("governor") or None,
        "ksm": {"run": KSM_RUN.get(ksm, ksm or None),
                "pages_sharing": int(found["ksm_pages_sharing"])
                if found.get("ksm_pages_sharing", "").isdigit() else None},
        "thp": {"enabled": _selected(found.get("thp_enabled", "")),
                "defrag": _selected(found.get("thp_defrag", ""))},
        "kata": _kata(found.get("kata_path", ""), found.get("kata_env", "")),
    }


def collect(target: SshTarget, timeout_s: float = 60.0) -> dict[str, Any]:
    """Connect (host key verified) and read the facts; raises ssh.SshError."""
    with ssh.connect(target) as connection:
        result = ssh.run(connection, "/bin/sh -c " + shlex.quote(SCRIPT), timeout_s)
        try:
            facts = parse_facts(result.stdout)
        except ValueError as exc:
            raise ssh.SshError(f"{connection.name}: {exc} {result.stderr[-300:]}") from None
        return {"host": connection.name, "user": target.user, "host_key": connection.host_key,
                "verified_by": connection.verified_by, **facts}


def parse_destination(text: str) -> tuple[str | None, str, int | None]:
    """``[user@]host[:port]`` (an IPv6 address in brackets) as (user, host, port)."""
    user, at, rest = text.rpartition("@")
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port_text = tail.removeprefix(":")
    else:
        host, _, port_text = rest.partition(":")
    if not host or (port_text and not port_text.isdigit()):
        raise ValueError(f"{text!r} is not a destination; expected [user@]host[:port]")
    return (user if at else None), host, (int(port_text) if port_text else None)


def host_view(facts: dict[str, Any]) -> dict[str, Any]:
    """The facts run.json keeps under ``host`` (what envdiff compares across runs), in the
    shape the local backend's hostfacts gives them."""
    return {"cpu_model": facts["cpu_model"], "kernel_cmdline": facts["kernel_cmdline"],
            "governor": facts["governor"] or "n/a", "thp": facts["thp"]["enabled"] or "n/a"}


def summary(facts: dict[str, Any]) -> str:
    """One line for doctor."""
    kata = facts["kata"]
    kata_text = ("absent" if not kata["installed"] else
                 f"{kata['path']} (VMContainerCapable={kata.get('vm_container_capable')})")
    return (f"{facts['host']}: kernel {facts['kernel']}, {facts['cpus']}x {facts['cpu_model']}, "
            f"governor {facts['governor'] or 'n/a'}, KSM {facts['ksm']['run'] or 'n/a'}, "
            f"THP {facts['thp']['enabled'] or 'n/a'}, kata-runtime {kata_text}; host key "
            f"{facts['host_key']} verified by {facts['verified_by']}")
