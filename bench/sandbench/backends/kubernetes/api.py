"""The Kubernetes API client: configuration by the usual conventions, and retries.

Configuration: an explicit kubeconfig, else $KUBECONFIG, else ~/.kube/config, else the
in-cluster service account. Throttling (429) and server errors (5xx) are retried with
exponential back-off, honouring Retry-After, by urllib3's Retry under the official client,
for every method: a retried create that had in fact succeeded answers 409, which the pod
code treats as success. The client itself never throttles: it has no client-side rate
limiter (no QPS or burst to set, unlike client-go), and its connection pool is sized
(POOL_SIZE) for a burst's concurrent creates.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import urllib3
from kubernetes import client, config
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from sandbench.errors import BadInput

#: Statuses worth another try: throttled, or the server (or a proxy in front) failing.
RETRY_STATUSES = (429, 500, 502, 503, 504)
NOT_FOUND, CONFLICT, EXPIRED = 404, 409, 410
#: Connections the client keeps open for reuse. Its default (5 per core) under a burst's
#: creates (one thread per pod) made every request past it open a connection of its own, TLS
#: handshake included, and throw it away after. Idle ones cost a socket; none is opened
#: before a request needs it. (The client has no rate limiter to set: see fanout.py.)
POOL_SIZE = 1024


class ClusterError(BadInput):
    """The cluster cannot be used; the message is one line."""


def retry_policy(attempts: int = 6, backoff_s: float = 0.2) -> urllib3.Retry:
    """Up to ``attempts`` tries, sleeping backoff_s * 2**n between them (0.2 s ... 6.4 s)."""
    return urllib3.Retry(
        total=attempts, connect=attempts, read=2, status=attempts,
        status_forcelist=RETRY_STATUSES, allowed_methods=None, backoff_factor=backoff_s,
        respect_retry_after_header=True, raise_on_status=False)


@dataclass(frozen=True)
class Apis:
    """The API groups sandbench uses, over one client."""

    api_client: ApiClient
    core: client.CoreV1Api
    node: client.NodeV1Api
    version: client.VersionApi
    authz: client.AuthorizationV1Api
    custom: client.CustomObjectsApi
    extensions: client.ApiextensionsV1Api
    source: str


def _configuration(kubeconfig: str | None, context: str | None) -> tuple[Configuration, str]:
    configuration = Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    default = Path.home() / ".kube" / "config"
    if path or default.is_file():
        chosen = path or str(default)
        try:
            config.load_kube_config(config_file=chosen, context=context,
                                    client_configuration=configuration)
        except (ConfigException, OSError) as exc:
            raise ClusterError(f"cannot use kubeconfig {chosen!r}: {exc}") from exc
        return configuration, f"kubeconfig {chosen}" + (f" context {context}" if context else "")
    try:
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException as exc:
        raise ClusterError("no kubeconfig ($KUBECONFIG, ~/.kube/config or --kubeconfig) and "
                           "not running in a cluster") from exc
    return configuration, "in-cluster service account"


def connect(kubeconfig: str | None = None, context: str | None = None) -> Apis:
    configuration, source = _configuration(kubeconfig, context)
    configuration.retries = retry_policy()
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0,
                                                POOL_SIZE)
    api_client = ApiClient(configuration)
    return Apis(api_client, client.CoreV1Api(api_client), client.NodeV1Api(api_client),
                client.VersionApi(api_client), client.AuthorizationV1Api(api_client),
                client.CustomObjectsApi(api_client), client.ApiextensionsV1Api(api_client),
                source)


def api_message(exc: ApiException) -> str:
    """The API server's own message from an error answer, on one line."""
    try:
        body = json.loads(exc.body or "{}")
        message = body.get("message") or exc.reason
    except (ValueError, AttributeError):
        message = exc.reason
    return f"{exc.status} {message}".replace("\n", " ")


# The client's ApiException is read here only: the rest of the backend asks these questions.

def is_not_found(exc: BaseException) -> bool:
    """Whether ``exc`` is the API server saying the object does not exist (404): for a delete
    or a wait for deletion, the object is already gone."""
    return isinstance(exc, ApiException) and exc.status == NOT_FOUND


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is the API server saying the object already exists (409): after a
    retried create, the first try had in fact succeeded."""
    return isinstance(exc, ApiException) and exc.status == CONFLICT


def is_expired(exc: BaseException) -> bool:
    """Whether ``exc`` is the API server saying a watch's resourceVersion is too old (410):
    the watch starts again from now."""
    return isinstance(exc, ApiException) and exc.status == EXPIRED


def absent(read: Callable[[], object]) -> bool:
    """Whether reading an object answers 404; any other error counts as still there."""
    try:
        read()
    except ApiException as exc:
        return is_not_found(exc)
    return False


def delete(remove: Callable[[], object]) -> bool:
    """Ask for a deletion; False when the object was already gone (404). Other refusals
    raise ApiException."""
    try:
        remove()
    except ApiException as exc:
        if is_not_found(exc):
            return False
        raise
    return True


def wait_gone(gone: Callable[[], bool], wait_s: float, interval_s: float) -> bool:
    """Poll ``gone`` until it is true or ``wait_s`` passed; whether it went. Deletion is
    polled rather than watched: it is housekeeping between sandboxes, never timed."""
    deadline = time.monotonic() + wait_s
    while not gone():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)
    return True
