#!/usr/bin/python3
"""PID 1 of the test cluster's node: the PID (and mount) namespace up.sh runs containerd and
the kubelet in, so that hostPID pods (KubeVirt's virt-handler) see this process as /proc/1.

This machine's own PID 1 refuses /proc/1/root and /proc/1/ns/* even to root; this one is an
ordinary dumpable root process in the host's root directory, so /proc/1/root is the host's /
and /proc/1/ns/mnt the node's mount namespace (containerd's and the kubelet's), as on a
kind node, whose PID 1 is systemd.

It does what an init must and nothing more: reap every child (containerd's shims are
re-parented here when their `start` exits) and exit on SIGTERM, SIGINT or SIGHUP. When PID 1
of a namespace exits, the kernel SIGKILLs every process left in it (containers, shims, runsc
sandboxes, which are in nested namespaces); then the node's mount namespace, with every mount
containerd and the kubelet made in it, goes away. down.sh stops the daemons in order first.

The argument (up.sh passes the cluster's state dir) only puts that dir on this process's
command line, which is how up.sh and down.sh recognise their own processes.
"""

from __future__ import annotations

import os
import signal
import sys

STOP = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main() -> int:
    if os.getpid() != 1:
        print("node-init: must be PID 1 of a new PID namespace (unshare --pid --fork)",
              file=sys.stderr)
        return 2
    # Blocked signals are queued even for a namespace's init, which otherwise ignores every
    # signal it has no handler for (SIGKILL from the parent namespace always works).
    waited = STOP | {signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    print(f"node-init: PID 1 of the node namespace, state dir {' '.join(sys.argv[1:])}",
          flush=True)
    while True:
        sig = signal.sigwait(waited)
        reap()
        if sig in STOP:
            print(f"node-init: {signal.Signals(sig).name}, exiting; the kernel ends what is left",
                  flush=True)
            return 0


if __name__ == "__main__":
    sys.exit(main())
