"""A real OpenSSH sshd (Debian's openssh-server) for the SSH tests: bound to 127.0.0.1 on a free
port, as root, with its own host key, config, authorized_keys (a generated client key) and pid
file in a temporary directory; stopped by its PID, never by name."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
#: sshd's privilege separation directory; Debian's service creates it at boot, a container may
#: not have it, and sshd refuses to start without it.
PRIVSEP = Path("/run/sshd")


def keygen(path: Path) -> str:
    """A new ed25519 key pair at ``path``; returns the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f",
                    str(path)], check=True, capture_output=True)
    return path.with_suffix(".pub").read_text().strip()


def fingerprint_of(public_key: Path) -> str:
    """The fingerprint OpenSSH itself prints (ssh-keygen -lf), to compare ours with."""
    out = subprocess.run(["ssh-keygen", "-lf", str(public_key)], check=True,
                         capture_output=True, text=True).stdout
    return out.split()[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Sshd:
    directory: Path
    port: int
    client_key: Path
    host_key: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def host_public(self) -> str:
        return self.host_key.with_name(self.host_key.name + ".pub").read_text().strip()

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.host_key.with_name(self.host_key.name + ".pub"))

    def known_hosts(self, name: str = "known_hosts") -> Path:
        """A known_hosts file holding the current host key under [127.0.0.1]:port."""
        path = self.directory / name
        key_type, key = self.host_public.split()[:2]
        path.write_text(f"[127.0.0.1]:{self.port} {key_type} {key}\n")
        return path

    def start(self) -> None:
        config = self.directory / "sshd_config"
        config.write_text(f"""\
Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.host_key}
PidFile {self.directory / 'sshd.pid'}
AuthorizedKeysFile {self.directory / 'authorized_keys'}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
AllowUsers root
StrictModes no
LogLevel VERBOSE
""")
        check = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        log = open(self.directory / "sshd.log", "ab")
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                                        stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.directory / "sshd.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("sshd did not listen within 10 s")

    def stop(self) -> None:
        """SIGTERM to the PID sshd wrote (the listener we started), then wait for it."""
        if self.process is None:
            return
        pid_file = self.directory / "sshd.pid"
        pid = int(pid_file.read_text()) if pid_file.is_file() else self.process.pid
        assert pid == self.process.pid, "the pid file names another process"
        if self.process.poll() is None:
            os.kill(pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None

    def restart_with_new_host_key(self) -> None:
        self.stop()
        for path in (self.host_key, self.host_key.with_name(self.host_key.name + ".pub")):
            path.unlink()
        keygen(self.host_key)
        self.start()


def start_sshd(directory: Path) -> tuple[Sshd, bool]:
    """A running sshd, and whether /run/sshd was created for it (to be removed after)."""
    if shutil.which(SSHD) is None or shutil.which("ssh-keygen") is None:
        pytest.skip("openssh-server is not installed (make deps installs it)")
    if os.geteuid() != 0:
        pytest.skip("the test sshd runs as root to let root log in with a key")
    created = not PRIVSEP.exists()
    if created:
        PRIVSEP.mkdir(mode=0o755)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    client_key = directory / "client_ed25519"
    (directory / "authorized_keys").write_text(keygen(client_key) + "\n")
    host_key = directory / "host_ed25519"
    keygen(host_key)
    server = Sshd(directory, free_port(), client_key, host_key)
    server.start()
    return server, created


def stop_sshd(server: Sshd, created_privsep: bool) -> None:
    server.stop()
    if created_privsep:
        try:
            PRIVSEP.rmdir()
        except OSError:
            pass  # something else uses it now


@contextmanager
def running_sshd(directory: Path) -> Iterator[Sshd]:
    """A started sshd, stopped by its PID on the way out whatever happens."""
    server, created = start_sshd(directory)
    try:
        yield server
    finally:
        stop_sshd(server, created)
