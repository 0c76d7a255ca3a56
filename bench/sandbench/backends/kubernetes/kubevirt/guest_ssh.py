"""The fallback for clusters whose serial console log is disabled: the guest's console
transcript read over SSH (paramiko), through a port-forward to the VMI's virt-launcher pod,
whose masquerade binding passes the pod's port 22 on to the guest. The way `virtctl ssh` goes,
without virtctl. The host key is verified (spec.SshTarget: known_hosts or a fingerprint).

It needs a guest that runs sshd and keeps a copy of its console at GUEST_CONSOLE (the guest
sandbench builds has neither: its init writes only to the serial port and powers off). Lines
read this way are stamped when the harness received them, long after the guest wrote the boot
lines, so in this mode no kernel, init or workload marks are taken from them: the results come
through, the guest's boot phases are not measured.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from kubernetes.stream import portforward

from sandbench.backends.guest_protocol import ERROR, STDERR_END, ConsoleLine
from sandbench.backends.kubernetes.kubevirt.console import ConsoleUnavailable
from sandbench.facts import ssh

#: Where a guest that supports this fallback keeps its console transcript.
GUEST_CONSOLE = "/run/sandbench/console"
RETRY_S = 1.0

SocketOpener = Callable[[], AbstractContextManager[socket.socket]]


def port_forward(core: Any, namespace: str, pod: str, port: int) -> SocketOpener:
    """Opens a port-forward to ``pod``'s ``port`` each time it is called."""

    @contextmanager
    def opened() -> Iterator[socket.socket]:
        forward = portforward(core.connect_get_namespaced_pod_portforward, pod, namespace,
                              ports=str(port))
        sock = forward.socket(port)
        sock.setblocking(True)
        try:
            yield sock
        finally:
            sock.close()
            forward.close()

    return opened


def complete(lines: list[ConsoleLine], nonce: str) -> bool:
    """Whether the transcript has the init's last word (its stderr's end, or an error)."""
    ends = (f"{STDERR_END} {nonce}", f"{ERROR} {nonce}")
    return any(line.text.startswith(ends) for line in lines)


def read_console(open_socket: SocketOpener, target: ssh.Endpoint, nonce: str,
                 deadline: float, command: str = f"cat {GUEST_CONSOLE}") -> list[ConsoleLine]:
    """The guest's console transcript once it is complete, each line stamped with the
    harness's CLOCK_MONOTONIC when it arrived. Retried until ``deadline`` (monotonic) while
    sshd is not up yet or the transcript is unfinished; a host key that is unknown or
    changed is never retried: it raises ssh.HostKeyError at once."""
    last = "no attempt"
    while True:
        try:
            with open_socket() as sock, ssh.connect(target, sock=sock) as connection:
                lines = [ConsoleLine(ns, text) for ns, text in
                         ssh.stream_lines(connection, command)]
            if complete(lines, nonce):
                return lines
            last = f"the transcript has no end marker yet ({len(lines)} lines)"
        except ssh.HostKeyError:
            raise
        except (ssh.SshError, OSError) as exc:
            last = str(exc)
        if time.monotonic() + RETRY_S > deadline:
            raise ConsoleUnavailable(f"guest console over SSH not read: {last}")
        time.sleep(RETRY_S)
