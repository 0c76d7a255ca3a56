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
import urllib.error
import urllib.parse
import urllib.request

from sandbench.errors import BadInput, SandbenchError, quoted

#: The text format a Pushgateway reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Seconds to wait for the Pushgateway: a nightly job should fail, not hang, when it is gone.
TIMEOUT_S = 30.0


class PushFailed(SandbenchError):
    """The Pushgateway could not be reached or refused the metrics; nothing was stored."""

    exit_code = 1
    hint = "is the Pushgateway running at that address?"


def group_url(gateway: str, job: str, grouping: dict[str, str]) -> str:
    """The group's URL; a value with a slash (or empty) goes base64, as the Pushgateway
    reads it (its ``<label>@base64`` form)."""
    parsed = urllib.parse.urlsplit(gateway)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise BadInput(f"--gateway {quoted(gateway)} is not an http:// or https:// URL, e.g. "
                       "'http://pushgateway:9091'")
    if not job:
        raise BadInput("--job '' is empty; give the job name Prometheus should show")
    path = gateway.rstrip("/") + "/metrics"
    for label, value in {"job": job, **grouping}.items():
        path += "/" + _segment(label, value)
    return path


def _segment(label: str, value: str) -> str:
    if value and "/" not in value:
        return f"{label}/{urllib.parse.quote(value, safe='')}"
    encoded = base64.urlsafe_b64encode(value.encode()).decode() or "="
    return f"{label}@base64/{encoded}"


def push(url: str, text: str, timeout: float = TIMEOUT_S) -> None:
    """PUT the metrics to the group at ``url``, replacing what it held."""
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


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__
