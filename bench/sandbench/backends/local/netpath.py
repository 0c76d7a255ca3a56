"""A local sandbox's network path: two network namespaces the run makes, a veth pair between
them, and the case's peer running natively in the far one.

Nothing of it is in the host's root namespace: the veth pair is created inside the peer's
namespace with its other end put straight into the sandbox's, both ends get an address on one
private /30 and only the route that address implies, so neither namespace has a default route
and no packet can leave the pair. Every sandbox gets a pair of its own, so the addresses can
be the same each time. The namespaces are named after the sandbox (``sbnet-<sandbox id>-peer``
and ``-box``, under /run/netns), so `gc` knows whose they are.

A runtime joins the sandbox's namespace its own way: native runs the client under
`ip netns exec`, runc and crun get its path in the OCI config, runsc runs its own netstack on
the veth it finds there (--network=sandbox).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from sandbench.backends.local import proc
from sandbench.image.inputs import IMAGE_DIR
from sandbench.model import PEER, SANDBOX, Peer

#: Where `ip netns` keeps its namespaces; only the ones named NETNS_PREFIX... are sandbench's.
NETNS_DIR = Path("/run/netns")
NETNS_PREFIX = "sbnet-"
#: The /30 every pair uses: the peer's end, the sandbox's end.
PEER_ADDRESS, SANDBOX_ADDRESS, PREFIX_LEN = "10.213.0.1", "10.213.0.2", 30
#: The veth's name at both ends (each end is alone in its namespace).
LINK = "eth0"
#: The labels of every sample measured over this path: how the packets went (a context label,
#: model.CONTEXT_LABELS) and what the peer ran under.
LABELS = {"net_path": "veth", "peer_runtime": "native"}
#: Seconds for `ip` commands and for a peer to start listening; both take milliseconds.
SETUP_S = 10.0


class NetPathError(Exception):
    """The path or its peer could not be set up; the message says which step and why."""


def _ip(*args: str) -> None:
    try:
        done = proc.run_tool(["ip", *args], SETUP_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetPathError(f"ip {' '.join(args)}: {exc}") from exc
    if done.returncode != 0:
        raise NetPathError(f"ip {' '.join(args)}: {proc.last_line(done.stderr)}")


def names(sandbox_id: str) -> tuple[str, str]:
    """The peer's namespace and the sandbox's."""
    return f"{NETNS_PREFIX}{sandbox_id}-peer", f"{NETNS_PREFIX}{sandbox_id}-box"


@dataclass
class NetPath:
    """One sandbox's path to its peer; ``delete`` is safe to call twice, and after a failed
    or partial ``create``."""

    sandbox_id: str
    #: Where the peer's output goes (a file per stream), in the run's scratch directory.
    logs: Path
    _peer: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def peer_netns(self) -> str:
        return names(self.sandbox_id)[0]

    @property
    def sandbox_netns(self) -> str:
        return names(self.sandbox_id)[1]

    def create(self) -> None:
        peer, box = self.peer_netns, self.sandbox_netns
        for netns in (peer, box):
            _ip("netns", "add", netns)
            _ip("-n", netns, "link", "set", "lo", "up")
        _ip("-n", peer, "link", "add", LINK, "type", "veth", "peer", "name", LINK, "netns", box)
        for netns, address in ((peer, PEER_ADDRESS), (box, SANDBOX_ADDRESS)):
            _ip("-n", netns, "address", "add", f"{address}/{PREFIX_LEN}", "dev", LINK)
            _ip("-n", netns, "link", "set", LINK, "up")

    def start_peer(self, peer: Peer, image_rootfs: Path) -> None:
        """Run the peer in its namespace (the image's paths in its argv mapped to the unpacked
        image, as native maps them) and wait until it listens on all its ports."""
        argv = [_host_arg(arg, image_rootfs) for arg in peer.argv]
        self.logs.mkdir(parents=True, exist_ok=True)
        with (open(self.logs / "peer.stdout", "wb") as out,
              open(self.logs / "peer.stderr", "wb") as err, proc.signals_held()):
            self._peer = subprocess.Popen(
                ["ip", "netns", "exec", self.peer_netns, *argv], stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, start_new_session=True,
                # In the run's scratch directory: gc reads whose it is from there.
                cwd=self.logs)
        deadline = time.monotonic() + SETUP_S
        while not set(peer.ports) <= listening(self._peer.pid):
            if self._peer.poll() is not None:
                raise NetPathError(f"the peer {' '.join(argv)!r} exited "
                                   f"({self._peer.returncode}) before it listened: "
                                   f"{proc.last_line(self.peer_output())}")
            if time.monotonic() > deadline:
                raise NetPathError(f"the peer {' '.join(argv)!r} did not listen on "
                                   f"{list(peer.ports)} within {SETUP_S:.0f} s")
            time.sleep(0.005)

    def wait_peer(self, timeout_s: float) -> str:
        """Wait for a peer that ends by itself (a client) and return its stdout."""
        if self._peer is not None:
            proc.wait_exit(self._peer.pid, timeout_s)
        return proc.read_text(self.logs / "peer.stdout")

    def peer_output(self) -> str:
        return proc.read_text(self.logs / "peer.stdout") + proc.read_text(self.logs / "peer.stderr")

    def delete(self) -> None:
        if self._peer is not None:
            proc.end_group(self._peer)
            self._peer = None
        # Deleting a namespace destroys the veth end in it, and with it the other end.
        for netns in (self.sandbox_netns, self.peer_netns):
            remove(netns)


#: The tap a VM's network device is on, bridged to the veth in the sandbox's namespace.
TAP, BRIDGE = "tap0", "br0"
#: The net_path label of a VM's samples: its virtio-net device, a tap, a bridge, the veth.
VM_PATH = "tap+bridge+veth"


def bridge_tap(netns: str) -> str:
    """Give the sandbox's end of the path to a VM: its address goes to the guest (which
    configures it itself), and the veth and a new tap are bridged in the namespace, so the
    guest's frames reach the peer's end unrouted. Returns the tap's name."""
    _ip("-n", netns, "address", "flush", "dev", LINK)
    _ip("-n", netns, "link", "add", BRIDGE, "type", "bridge")
    _ip("-n", netns, "tuntap", "add", "dev", TAP, "mode", "tap")
    for device in (LINK, TAP):
        _ip("-n", netns, "link", "set", device, "master", BRIDGE)
    for device in (TAP, BRIDGE):
        _ip("-n", netns, "link", "set", device, "up")
    # A client peer that started first may have learnt the address at the veth's MAC, which
    # no longer answers for it: forgotten, it asks again and finds the guest's.
    _ip("-n", names(sandbox_of(netns))[0], "neigh", "flush", "dev", LINK)
    return TAP


def with_addresses(argv: list[str] | tuple[str, ...]) -> list[str]:
    """``argv`` with model.PEER and model.SANDBOX replaced by this path's addresses."""
    return [arg.replace(PEER, PEER_ADDRESS).replace(SANDBOX, SANDBOX_ADDRESS) for arg in argv]


def _host_arg(arg: str, image_rootfs: Path) -> str:
    arg = with_addresses([arg])[0]
    if arg.startswith(IMAGE_DIR + "/"):
        return str(image_rootfs) + arg
    return arg


def listening(pid: int) -> set[int]:
    """TCP ports listened on in the network namespace of process ``pid``."""
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A":  # TCP_LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def present() -> list[str]:
    """sandbench's network namespaces on this host, whoever made them."""
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(NETNS_PREFIX))
    except OSError:
        return []


def sandbox_of(netns: str) -> str:
    """The sandbox id a namespace of ours was made for."""
    return netns.removeprefix(NETNS_PREFIX).rsplit("-", 1)[0]


def _pids(netns: str) -> list[int]:
    try:
        listed = proc.run_tool(["ip", "netns", "pids", netns], SETUP_S).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [int(pid) for pid in listed if pid.isdigit()]


def peer_dir(sandbox_id: str) -> Path | None:
    """The directory a sandbox's peer runs in (in its run's scratch directory), while it
    runs: where gc learns which run a namespace pair belongs to."""
    for pid in _pids(names(sandbox_id)[0]):
        try:
            return Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            continue
    return None


def age_s(sandbox_id: str) -> float:
    """Seconds since the younger of a sandbox's namespaces was made (its file under
    /run/netns); 0 when neither is there."""
    ages = []
    for netns in names(sandbox_id):
        try:
            ages.append(time.time() - (NETNS_DIR / netns).stat().st_mtime)
        except OSError:
            continue
    return min(ages, default=0.0)


def remove(netns: str) -> bool:
    """Kill what still runs in ``netns`` (a peer whose harness died) and delete it; whether
    it was there."""
    if not (NETNS_DIR / netns).exists():
        return False
    for pid in _pids(netns):
        proc.kill(pid)
    try:
        proc.run_tool(["ip", "netns", "delete", netns], SETUP_S)
    except (OSError, subprocess.TimeoutExpired):
        pass
    return True
