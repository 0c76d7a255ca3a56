"""A real HTTPS proxy in front of the test API server that answers the first requests with
throttling (429) or server errors (503), then forwards everything: how the harness's retries
are tested against a real server without touching the API server's own settings."""

from __future__ import annotations

import http.client
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def server_cert(pki: Path, work: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by the cluster's CA, so clients trust the proxy."""
    key, csr, crt, ext = (work / n for n in ("proxy.key", "proxy.csr", "proxy.crt", "ext.cnf"))
    ext.write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(csr), "-subj", "/CN=sandbench-faulty-proxy"], check=True,
                   capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(pki / "ca.crt"),
                    "-CAkey", str(pki / "ca.key"), "-CAcreateserial", "-out", str(crt),
                    "-days", "1", "-extfile", str(ext)], check=True, capture_output=True)
    return crt, key


class FaultyProxy:
    def __init__(self, pki: Path, work: Path, failures: int, status: int,
                 upstream: tuple[str, int] = ("127.0.0.1", 6443)) -> None:
        self.failures = failures
        self.status = status
        self.seen: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        crt, key = server_cert(pki, work)
        upstream_tls = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _relay(self) -> None:
                with proxy.lock:
                    fail = proxy.failures > 0
                    proxy.failures -= 1 if fail else 0
                if fail:
                    self.send_response(proxy.status)
                    if proxy.status == 429:  # as the API server's priority and fairness does
                        self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    proxy.seen.append((self.path, proxy.status))
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPSConnection(*upstream, context=upstream_tls, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                proxy.seen.append((self.path, answer.status))

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(crt), str(key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
