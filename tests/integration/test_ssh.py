"""SSH against a real sshd (Debian's openssh-server, tests/sshd.py) on 127.0.0.1: a known host
key is accepted and the node's facts come back; a changed host key, an unknown host and a wrong
fingerprint are refused with a clear error; `sandbench doctor --ssh` says the same; and the
KubeVirt backend's SSH fallback reads a guest console transcript through the same checks."""

from __future__ import annotations

import contextlib
import platform
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import golden, sandbench
from sandbench.backends.guest_protocol import parse_annotated, read_console
from sandbench.backends.kubernetes.kubevirt import console, guest_ssh
from sandbench.facts import ssh
from sandbench.facts import host as hostfacts
from sandbench.facts import node as sshfacts
from sandbench.spec import SshTarget
from sshd import Sshd, running_sshd

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Sshd]:
    with running_sshd(tmp_path / "sshd") as running:
        yield running


def target(server: Sshd, **given: object) -> SshTarget:
    values: dict[str, object] = {"host": "127.0.0.1", "port": server.port,
                                 "key_file": str(server.client_key)}
    return SshTarget(**{**values, **given})  # type: ignore[arg-type]


def test_a_known_host_key_is_accepted_and_facts_come_back(server: Sshd) -> None:
    known = server.known_hosts()
    facts = sshfacts.collect(target(server, known_hosts=str(known)))
    # The sshd runs on this very machine: its facts are this machine's.
    assert facts["kernel"] == platform.release()
    assert facts["cpu_model"] == hostfacts.cpu_model()
    assert facts["kernel_cmdline"] == Path("/proc/cmdline").read_text().strip()
    assert facts["ksm"]["run"] in ("stopped", "running", "unmerging")
    assert facts["thp"]["enabled"] in ("always", "madvise", "never")
    assert facts["kata"] == {"installed": False}
    assert facts["host_key"] == server.fingerprint  # ours, as ssh-keygen -lf prints it
    assert facts["verified_by"] == f"known_hosts {known}"


def test_a_given_fingerprint_is_the_only_key_accepted(server: Sshd) -> None:
    facts = sshfacts.collect(target(server, fingerprint=server.fingerprint))
    assert facts["verified_by"] == f"fingerprint {server.fingerprint}"
    wrong = "SHA256:" + "A" * 43
    with pytest.raises(ssh.HostKeyError, match="not the expected SHA256:AAAA"):
        sshfacts.collect(target(server, fingerprint=wrong))


def test_a_changed_host_key_is_refused(server: Sshd) -> None:
    known = server.known_hosts()
    old = server.fingerprint
    server.restart_with_new_host_key()
    new = server.fingerprint
    assert new != old
    with pytest.raises(ssh.HostKeyError) as refused:
        sshfacts.collect(target(server, known_hosts=str(known)))
    message = str(refused.value)
    assert "has CHANGED" in message and new in message and old in message
    assert f"ssh-keygen -R '[127.0.0.1]:{server.port}'" in message
    with pytest.raises(ssh.HostKeyError, match=f"is ssh-ed25519 {re.escape(new)}, not the "):
        sshfacts.collect(target(server, fingerprint=old))


def test_an_unknown_host_is_refused(server: Sshd, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(ssh.HostKeyError) as refused:
        sshfacts.collect(target(server, known_hosts=str(empty)))
    assert "is not in" in str(refused.value) and server.fingerprint in str(refused.value)
    with pytest.raises(ssh.HostKeyError, match="does not exist"):
        sshfacts.collect(target(server, known_hosts=str(tmp_path / "absent")))


def test_a_key_the_server_does_not_know_fails_authentication(server: Sshd, tmp_path: Path) -> None:
    from sshd import keygen

    stranger = tmp_path / "stranger"
    keygen(stranger)
    with pytest.raises(ssh.SshError, match="authentication as 'root'"):
        sshfacts.collect(target(server, known_hosts=str(server.known_hosts()),
                                key_file=str(stranger)))


def doctor(server: Sshd, *flags: str) -> tuple[int, str]:
    result = sandbench("doctor", "--runtimes", "native", "--ssh", f"root@127.0.0.1:{server.port}",
                       "--ssh-key", str(server.client_key), *flags, env={"COLUMNS": "400"})
    return result.returncode, result.stdout + result.stderr


def test_doctor_reports_node_facts_and_refuses_a_changed_key(server: Sshd) -> None:
    known = server.known_hosts()
    code, out = doctor(server, "--ssh-known-hosts", str(known))
    row = next(line for line in out.splitlines() if "node facts (ssh)" in line)
    assert " yes " in row and platform.release() in row and "kata-runtime absent" in row
    server.restart_with_new_host_key()
    code, out = doctor(server, "--ssh-known-hosts", str(known))
    assert code == 3
    row = next(line for line in out.splitlines() if "node facts (ssh)" in line)
    assert " NO " in row and "has CHANGED" in row


def test_doctor_refuses_a_malformed_fingerprint(server: Sshd) -> None:
    code, out = doctor(server, "--ssh-fingerprint", "MD5:00:11")
    assert code == 2 and "--ssh: fingerprint" in out


def transcript(server: Sshd, complete: bool = True) -> tuple[Path, str]:
    """A real console of the local qemu runtime (golden), as a guest would keep it."""
    text = golden("qemu_console_start.txt")
    nonce = re.search(r"sandbench_nonce=(\w+)", text)
    assert nonce is not None
    lines = [line.text for line in parse_annotated(text)]
    if not complete:
        lines = lines[:next(i for i, t in enumerate(lines) if t.startswith("SANDBENCH-END"))]
    path = server.directory / "console"
    path.write_text("\r\n".join(lines) + "\r\n")
    return path, nonce.group(1)


def direct(server: Sshd) -> guest_ssh.SocketOpener:
    """In place of the port-forward to a launcher pod: a plain TCP connection."""
    return lambda: contextlib.closing(socket.create_connection(("127.0.0.1", server.port)))


def test_guest_console_over_ssh(server: Sshd) -> None:
    path, nonce = transcript(server)
    deadline = time.monotonic() + 30
    lines = guest_ssh.read_console(direct(server), target(server, fingerprint=server.fingerprint),
                                   nonce, deadline, command=f"cat {path}")
    said = read_console(lines, nonce)
    assert said.exit_code == 0 and said.stdout.startswith('{"probe":"start"')
    assert not any(line.text.endswith("\r") for line in lines)


def test_guest_console_over_ssh_waits_for_the_end_then_gives_up(server: Sshd) -> None:
    path, nonce = transcript(server, complete=False)
    began = time.monotonic()
    with pytest.raises(console.ConsoleUnavailable, match="no end marker yet"):
        guest_ssh.read_console(direct(server), target(server, fingerprint=server.fingerprint),
                               nonce, began + 3, command=f"cat {path}")
    assert time.monotonic() - began < 10


def test_guest_console_over_ssh_never_retries_a_wrong_key(server: Sshd) -> None:
    path, nonce = transcript(server)
    began = time.monotonic()
    with pytest.raises(ssh.HostKeyError):
        guest_ssh.read_console(direct(server), target(server, fingerprint="SHA256:" + "B" * 43),
                               nonce, began + 30, command=f"cat {path}")
    assert time.monotonic() - began < 10
