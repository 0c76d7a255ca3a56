"""`sandbench doctor --ssh [user@]host[:port]`: node facts over SSH, the host key verified."""

from __future__ import annotations

from pydantic import ValidationError

from sandbench.backends import Finding
from sandbench.errors import BadInput
from sandbench.facts import ssh
from sandbench.facts import node as sshfacts
from sandbench.spec import SshTarget, validation_message


def findings(target: SshTarget) -> list[Finding]:
    try:
        facts = sshfacts.collect(target)
    except ssh.HostKeyError as exc:
        return [Finding("node facts (ssh)", False, str(exc),
                        "verify the key out of band; --ssh-known-hosts FILE or "
                        "--ssh-fingerprint SHA256:...")]
    except ssh.SshError as exc:
        return [Finding("node facts (ssh)", False, str(exc))]
    return [Finding("node facts (ssh)", True, sshfacts.summary(facts))]


def target(destination: str, key_file: str | None, known_hosts: str | None,
           fingerprint: str | None) -> SshTarget:
    """The --ssh flags as a target; raises BadInput naming the bad one."""
    try:
        user, host, port = sshfacts.parse_destination(destination)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    values = {"host": host, "user": user, "port": port, "key_file": key_file,
              "known_hosts": known_hosts, "fingerprint": fingerprint}
    try:
        return SshTarget.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise BadInput(validation_message(exc, "--ssh")) from None
