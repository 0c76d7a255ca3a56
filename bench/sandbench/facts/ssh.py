"""SSH connections (paramiko) whose host key is checked, never blindly accepted.

Two ways to know a host: its key in a known_hosts file (paramiko's own lookup, with its
RejectPolicy for a host that is not there and its BadHostKeyException for one whose key
changed), or a SHA256 fingerprint given beforehand (``ssh-keygen -lf`` format), which is then
the only key accepted; known_hosts is not read at all in that case, so a stale entry cannot
override it. After the handshake the key the server proved it holds is compared once more.
Every refusal is an SshError whose message says which key was offered and what was expected.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import paramiko

from sandbench.errors import RunFailed

#: Seconds for the TCP connection, the banner and authentication.
CONNECT_TIMEOUT_S = 15.0


class SshError(RunFailed):
    """An SSH connection that was refused or failed; the message is one line."""


class HostKeyError(SshError):
    """The server's host key is unknown or is not the expected one."""


class Endpoint(Protocol):
    """What a connection needs (spec.SshTarget has exactly these)."""

    @property
    def host(self) -> str: ...
    @property
    def user(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def key_file(self) -> str | None: ...
    @property
    def known_hosts(self) -> str | None: ...
    @property
    def fingerprint(self) -> str | None: ...


def fingerprint(key: paramiko.PKey) -> str:
    """The key's fingerprint as OpenSSH prints it: SHA256, base64 without padding."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(host: str, port: int) -> str:
    """The name a host's key is filed under in known_hosts (OpenSSH's rule)."""
    return host if port == 22 else f"[{host}]:{port}"


def default_known_hosts() -> Path:
    return Path.home() / ".ssh" / "known_hosts"


class _RejectUnknown(paramiko.RejectPolicy):  # type: ignore[misc]  # paramiko is untyped
    """paramiko's RejectPolicy, with a message that says what was offered and what to do."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        raise HostKeyError(
            f"host key of {hostname} ({key.get_name()} {fingerprint(key)}) is not in "
            f"{str(self.source)!r}: refusing to connect to an unknown host. Check the key out of "
            "band, then add it to that file or give its fingerprint (SHA256:...)")


class _ExpectFingerprint(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
    """Accepts exactly one key: the one whose fingerprint was given."""

    def __init__(self, expected: str) -> None:
        self.expected = expected

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        got = fingerprint(key)
        if got != self.expected:
            raise HostKeyError(
                f"host key of {hostname} is {key.get_name()} {got}, not the expected "
                f"{self.expected}: refusing to connect (the host was reinstalled, or someone "
                "is in between)")


def _policy(target: Endpoint, client: paramiko.SSHClient) -> str:
    """Set up the host key check; returns how the key is verified, for the record."""
    if target.fingerprint:
        client.set_missing_host_key_policy(_ExpectFingerprint(target.fingerprint))
        return f"fingerprint {target.fingerprint}"
    source = Path(target.known_hosts).expanduser() if target.known_hosts else default_known_hosts()
    if not source.is_file():
        raise HostKeyError(f"known_hosts file {str(source)!r} does not exist: the host key of "
                           f"{target.host} cannot be checked; give a known_hosts file or the "
                           "key's fingerprint (SHA256:...)")
    client.load_host_keys(str(source))
    client.set_missing_host_key_policy(_RejectUnknown(source))
    return f"known_hosts {source}"


@dataclass
class Connection:
    """An open, verified connection."""

    client: paramiko.SSHClient
    name: str
    host_key: str
    """The server's host key fingerprint (SHA256:...)."""
    verified_by: str

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(target: Endpoint, sock: socket.socket | None = None,
            timeout_s: float = CONNECT_TIMEOUT_S) -> Connection:
    """Connect and authenticate, the host key verified; ``sock`` is an already connected
    socket to speak SSH over (a Kubernetes port-forward), else target.host:port is dialled."""
    client = paramiko.SSHClient()
    name = known_hosts_name(target.host, target.port)
    try:
        verified_by = _policy(target, client)
        client.connect(
            target.host, port=target.port, username=target.user, key_filename=target.key_file,
            look_for_keys=target.key_file is None, allow_agent=target.key_file is None,
            sock=sock, timeout=timeout_s, banner_timeout=timeout_s, auth_timeout=timeout_s)
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostKeyError(
            f"host key of {name} has CHANGED: the server offers {exc.key.get_name()} "
            f"{fingerprint(exc.key)}, known_hosts has {exc.expected_key.get_name()} "
            f"{fingerprint(exc.expected_key)}; refusing to connect (the host was reinstalled, "
            "or someone is in between). If the change is expected, replace the old entry "
            f"(ssh-keygen -R '{name}')") from None
    except HostKeyError:
        client.close()
        raise
    except paramiko.AuthenticationException as exc:
        client.close()
        raise SshError(f"authentication as {target.user!r} on {name} failed: {exc}") from None
    except (paramiko.SSHException, OSError) as exc:
        client.close()
        raise SshError(f"cannot connect to {name}: {exc}") from None
    transport = client.get_transport()
    key = transport.get_remote_server_key() if transport is not None else None
    if key is None or (target.fingerprint and fingerprint(key) != target.fingerprint):
        client.close()  # the policy already checked; this guards against a policy not called
        raise HostKeyError(f"host key of {name} could not be confirmed after the handshake")
    return Connection(client, name, fingerprint(key), verified_by)


@dataclass(frozen=True)
class Result:
    exit_status: int
    stdout: str
    stderr: str


def run(connection: Connection, command: str, timeout_s: float = 60.0) -> Result:
    """Run ``command`` (by the login shell) and wait for it."""
    try:
        _, stdout, stderr = connection.client.exec_command(command, timeout=timeout_s)
        out = stdout.read().decode("utf-8", errors="replace")
        err = stderr.read().decode("utf-8", errors="replace")
        return Result(stdout.channel.recv_exit_status(), out, err)
    except (paramiko.SSHException, OSError) as exc:
        raise SshError(f"running a command on {connection.name} failed: {exc}") from None


def stream_lines(connection: Connection, command: str,
                 timeout_s: float = 60.0) -> Iterator[tuple[int, str]]:
    """Run ``command`` and yield its stdout lines as they arrive, each with the harness's
    CLOCK_MONOTONIC (ns) at the moment its read returned."""
    try:
        _, stdout, _ = connection.client.exec_command(command, timeout=timeout_s)
        for line in stdout:
            yield time.monotonic_ns(), str(line).rstrip("\r\n")
    except (paramiko.SSHException, OSError) as exc:
        raise SshError(f"reading from {connection.name} failed: {exc}") from None
