"""Watches of a run's namespace: every pod change and every event, stamped as it arrives.

The receive time is read on the harness's monotonic clock the moment a line of the watch
stream is read, before it is even parsed: ClusterLoader2 moved to watch receive times because
object timestamps have one-second precision. Each watch is established (its response headers
received) before the first pod is created, so no transition of a measured pod can be missed
or stamped late; a watch that ends (server timeout) is resumed from its last resourceVersion.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from kubernetes.client.exceptions import ApiException

from sandbench.backends.kubernetes import api


@dataclass(frozen=True)
class Seen:
    """One watch event as received: ``kind`` is "pod", "vmi" or "event"."""

    kind: str
    type: str
    received_ns: int
    object: dict[str, Any]

    @property
    def subject(self) -> str:
        """The pod (or VMI) the event is about."""
        if self.kind != "event":
            return str(self.object["metadata"]["name"])
        return str((self.object.get("involvedObject") or {}).get("name", ""))


Lister = Callable[..., Any]


class NamespaceWatch:
    """Streams one kind of object in a namespace into per-pod queues."""

    def __init__(self, kind: str, lister: Lister, namespace: str) -> None:
        self.kind = kind
        self.lister = lister
        self.namespace = namespace
        self.queues: dict[str, queue.Queue[Seen]] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.resource_version = ""
        self.error: str | None = None
        self._response: Any = None
        self._thread: threading.Thread | None = None

    def subscribe(self, pod: str, into: queue.Queue[Seen]) -> None:
        with self.lock:
            self.queues[pod] = into

    def unsubscribe(self, pod: str) -> None:
        with self.lock:
            self.queues.pop(pod, None)

    def _open(self) -> Any:
        return self.lister(self.namespace, watch=True, _preload_content=False,
                           resource_version=self.resource_version or None,
                           allow_watch_bookmarks=True, timeout_seconds=300)

    def start(self) -> None:
        """Open the stream now (so it is established before any pod exists), read it in a
        background thread."""
        self._response = self._open()
        self._thread = threading.Thread(target=self._loop, name=f"watch-{self.kind}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self.stopped.is_set():
            try:
                self._read(self._response)
                if not self.stopped.is_set():
                    self._response = self._open()
            except ApiException as exc:
                if api.is_expired(exc):
                    self.resource_version = ""
                    continue
                self.error = f"{self.kind} watch failed: {exc.status} {exc.reason}"
                time.sleep(1)
            except Exception as exc:  # a dropped connection: reopen unless stopping
                if self.stopped.is_set():
                    return
                self.error = f"{self.kind} watch interrupted: {exc}"
                time.sleep(0.5)
                try:
                    self._response = self._open()
                except Exception:
                    time.sleep(1)

    def _read(self, response: Any) -> None:
        for line in response:
            received = time.monotonic_ns()
            if self.stopped.is_set():
                return
            if not line.strip():
                continue
            event = json.loads(line)
            obj = event.get("object") or {}
            version = (obj.get("metadata") or {}).get("resourceVersion")
            if version:
                self.resource_version = version
            if event.get("type") in ("BOOKMARK", "ERROR"):
                continue
            self._dispatch(Seen(self.kind, event["type"], received, obj))

    def _dispatch(self, seen: Seen) -> None:
        with self.lock:
            target = self.queues.get(seen.subject)
        if target is not None:
            target.put(seen)

    def stop(self) -> None:
        self.stopped.set()
        response = self._response
        if response is not None:
            try:
                # shutdown() unblocks the reader thread at once; close() alone would wait
                # for the server to end an idle watch (minutes).
                response.shutdown()
                response.close()
            except Exception:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)


class RunWatch:
    """The pod and event watches of one namespace, merged per pod."""

    def __init__(self, core: Any, namespace: str) -> None:
        self.pods = NamespaceWatch("pod", core.list_namespaced_pod, namespace)
        self.events = NamespaceWatch("event", core.list_namespaced_event, namespace)

    def start(self) -> None:
        self.pods.start()
        self.events.start()

    def subscribe(self, pod: str) -> queue.Queue[Seen]:
        into: queue.Queue[Seen] = queue.Queue()
        self.pods.subscribe(pod, into)
        self.events.subscribe(pod, into)
        return into

    def unsubscribe(self, pod: str) -> None:
        self.pods.unsubscribe(pod)
        self.events.unsubscribe(pod)

    def stop(self) -> None:
        self.pods.stop()
        self.events.stop()
