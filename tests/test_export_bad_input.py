"""Bad input to `export` and `push`: one line naming the value and what is accepted, its exit
code, never a traceback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import sandbench
from sandbench.nightly.push import PushFailed, push
from sshd import free_port

GOLDEN_RUN = str(Path(__file__).parent / "data" / "runs" / "format1-local")


def not_a_run(tmp_path: Path) -> str:
    (tmp_path / "run.json").write_text("[1, 2]")
    return str(tmp_path)


CASES: list[tuple[str, Callable[[Path], list[str]], int, str]] = [
    ("unknown format", lambda t: ["export", "--format", "graphite", GOLDEN_RUN], 2,
     "'graphite' is not one of 'pytest-benchmark', 'openmetrics', 'prometheus', 'otlp'"),
    ("missing run dir", lambda t: ["export", "--format", "openmetrics", str(t / "nope")], 2,
     "is not a run directory: it has no run.json"),
    ("invalid run dir", lambda t: ["export", "--format", "otlp", not_a_run(t)], 2,
     "holds an array, not the object a run.json is"),
    ("push, not a URL", lambda t: ["push", GOLDEN_RUN, "--gateway", "pushgateway:9091"], 2,
     "--gateway 'pushgateway:9091' is not an http:// or https:// URL"),
    ("push, empty job", lambda t: ["push", GOLDEN_RUN, "--gateway", "http://127.0.0.1:9",
                                   "--job", ""], 2, "--job '' is empty"),
    *[(f"push, gateway {gateway!r}",
       (lambda g: lambda t: ["push", GOLDEN_RUN, "--gateway", g])(gateway), 2,
       f"--gateway {gateway!r}")
      for gateway in ("http://[::1", "http://127.0.0.1:abc", "http://127.0.0.1:9091/a b",
                      "http://127.0.0.1:9091/\nx", "http://127.0.0.1:9091/\u00e9",
                      "http://127.0.0.1:9091/#frag", "http://127.0.0.1:9091?x=1",
                      "http://127.0.0.1:99999")],
    ("push, nobody listening",
     lambda t: ["push", GOLDEN_RUN, "--gateway", f"http://127.0.0.1:{free_port()}"], 1,
     "cannot reach the Pushgateway at 'http://127.0.0.1:"),
]


@pytest.mark.parametrize(("args", "code", "says"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_one_line_and_its_exit_code(tmp_path: Path, args: Callable[[Path], list[str]],
                                    code: int, says: str) -> None:
    result = sandbench(*args(tmp_path))
    assert result.returncode == code, result.stderr
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def serve(answer: Callable[[socket.socket], None]) -> tuple[str, threading.Event]:
    """A one-connection-at-a-time server on 127.0.0.1 that reads a request and answers with
    ``answer``; its URL, and an event that stops it."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536) or b"\r\n\r\n"
                try:
                    answer(conn)
                except OSError:
                    pass
        server.close()

    threading.Thread(target=loop, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}", stop


BROKEN = {
    "not HTTP": b"HELLO WORLD THIS IS NOT HTTP\r\n\r\n",
    "status not a number": b"HTTP/1.1 abc OK\r\n\r\n",
    "body cut short": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc",
    "header line too long": b"HTTP/1.1 200 OK\r\nX: " + b"a" * 100000 + b"\r\n\r\n",
    "too many headers": b"HTTP/1.1 200 OK\r\n" + b"X: a\r\n" * 200 + b"\r\n",
    "bad chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n",
}


@pytest.mark.parametrize("answer", list(BROKEN.values()), ids=list(BROKEN))
def test_a_broken_http_answer_is_one_line(answer: bytes) -> None:
    url, stop = serve(lambda conn: conn.sendall(answer))
    try:
        result = sandbench("push", GOLDEN_RUN, "--gateway", url)
    finally:
        stop.set()
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"the Pushgateway at '{url}/metrics" in result.stderr


def test_a_trickling_gateway_is_given_up_on_at_the_deadline() -> None:
    def trickle(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        for _ in range(40):  # each line well within one read's timeout
            time.sleep(0.1)
            conn.sendall(b"X: a\r\n")

    url, stop = serve(trickle)
    began = time.monotonic()
    try:
        with pytest.raises(PushFailed, match="did not answer within 1 s"):
            push(url + "/metrics/job/x", "", timeout=1.0)
    finally:
        stop.set()
    assert time.monotonic() - began < 2.0
