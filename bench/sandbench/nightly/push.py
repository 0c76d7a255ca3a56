"""A run's summary pushed to a Prometheus Pushgateway, so a nightly job lands in Prometheus
without being scraped.

One group per job and backend (``/metrics/job/<job>/backend/<backend>``), replaced by each push
(HTTP PUT): Prometheus scrapes tonight's medians, not every night's ever pushed, and the run id
stays a label on every series so a change of run shows. Raw samples are not pushed: a
Pushgateway refuses timestamps, and without them every round would read as a current value.
Backfill them from ``sandbench export --format openmetrics`` instead.
"""

from __future__ import annotations

import base64
import http.client
import threading
import urllib.error
import urllib.parse
import urllib.request

from sandbench.errors import BadInput, SandbenchError, quoted

#: The text format a Pushgateway reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Seconds to wait for the Pushgateway: a nightly job should fail, not hang, when it is gone.
#: Both for each read and for the whole request: a server that trickles a byte now and then
#: would otherwise keep every read within its timeout for ever.
TIMEOUT_S = 30.0


class PushFailed(SandbenchError):
    """The Pushgateway could not be reached or refused the metrics; nothing was stored."""

    exit_code = 1
    hint = "is the Pushgateway running at that address?"


def group_url(gateway: str, job: str, grouping: dict[str, str]) -> str:
    """The group's URL; a value with a slash (or empty) goes base64, as the Pushgateway
    reads it (its ``<label>@base64`` form)."""
    _check_gateway(gateway)
    if not job:
        raise BadInput("--job '' is empty; give the job name Prometheus should show")
    path = gateway.rstrip("/") + "/metrics"
    for label, value in {"job": job, **grouping}.items():
        path += "/" + _segment(label, value)
    return path


def _check_gateway(gateway: str) -> None:
    """Refuse a --gateway that is no plain http(s) URL of a host, port and path: the group's
    path is appended to it, so a query or fragment would swallow it."""
    example = "e.g. 'http://pushgateway:9091'"
    if not gateway.isascii() or any(c.isspace() or not c.isprintable() for c in gateway):
        raise BadInput(f"--gateway {quoted(gateway)} holds a space, a control or a non-ASCII "
                       f"character; give a plain http:// or https:// URL (percent-encode the "
                       f"path), {example}")
    try:
        parsed = urllib.parse.urlsplit(gateway)
        parsed.port  # noqa: B018 - it reads, and checks, the port
    except ValueError as exc:
        raise BadInput(f"--gateway {quoted(gateway)} is not a URL ({exc}); {example}") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise BadInput(f"--gateway {quoted(gateway)} is not an http:// or https:// URL, "
                       f"{example}")
    if parsed.query or parsed.fragment or "?" in gateway or "#" in gateway:
        raise BadInput(f"--gateway {quoted(gateway)} has a query or fragment; give the "
                       f"Pushgateway's address and path only, {example}")


def _segment(label: str, value: str) -> str:
    if value and "/" not in value:
        return f"{label}/{urllib.parse.quote(value, safe='')}"
    encoded = base64.urlsafe_b64encode(value.encode()).decode() or "="
    return f"{label}@base64/{encoded}"


def push(url: str, text: str, timeout: float = TIMEOUT_S) -> None:
    """PUT the metrics to the group at ``url``, replacing what it held; within ``timeout``
    seconds in all. The request runs in a thread of its own, which the deadline abandons
    (it ends at its next socket timeout, or with the process)."""
    failure: list[BaseException] = []

    def request() -> None:
        try:
            _put(url, text, timeout)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=request, name="push", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise PushFailed(f"the Pushgateway at {quoted(url)} did not answer within "
                         f"{timeout:g} s")
    if failure:
        raise failure[0]


def _put(url: str, text: str, timeout: float) -> None:
    request = urllib.request.Request(url, data=text.encode(), method="PUT",
                                     headers={"Content-Type": CONTENT_TYPE})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        said = " ".join(exc.read().decode(errors="replace").split())[:300]
        raise PushFailed(f"the Pushgateway at {quoted(url)} refused the metrics: HTTP "
                         f"{exc.code} {said}") from exc
    except urllib.error.URLError as exc:
        raise PushFailed(f"cannot reach the Pushgateway at {quoted(url)}: "
                         f"{_reason(exc.reason)}") from exc
    except (TimeoutError, OSError) as exc:
        raise PushFailed(f"cannot reach the Pushgateway at {quoted(url)}: "
                         f"{_reason(exc)}") from exc
    except http.client.HTTPException as exc:
        # Not HTTP as a Pushgateway speaks it: a bad status line, a body cut short, too many
        # or too long headers.
        raise PushFailed(f"the Pushgateway at {quoted(url)} gave a broken HTTP answer: "
                         f"{type(exc).__name__} {quoted(str(exc), 120)}") from exc


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__
