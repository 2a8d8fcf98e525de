"""The kubelet's container-log endpoint, so that `kubectl logs` works against the agent.

The API server proxies `kubectl logs` to `https://<node>:<port>/containerLogs/<ns>/<pod>/
<container>` and authenticates with its kubelet client certificate, which this server
requires (signed by the cluster CA).
"""

from __future__ import annotations

import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# (namespace, pod, container, previous) -> (log file, still running?) or None.
LogLocator = Callable[[str, str, str, bool], tuple[Path, Callable[[], bool]] | None]


def _tail(data: bytes, lines: int | None) -> bytes:
    if lines is None:
        return data
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:]) if lines > 0 else b""


def make_server(
    port: int, cert: Path, key: Path, ca: Path, locate: LogLocator
) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            parts = url.path.strip("/").split("/")
            if url.path == "/healthz":
                self._reply(200, b"ok")
                return
            if len(parts) != 4 or parts[0] != "containerLogs":
                self._reply(404, b"not found")
                return
            previous = query.get("previous", ["false"])[0] == "true"
            found = locate(parts[1], parts[2], parts[3], previous)
            if found is None:
                self._reply(404, f"no logs for {'/'.join(parts[1:])}".encode())
                return
            path, running = found
            tail = query.get("tailLines", [None])[0]
            data = _tail(path.read_bytes() if path.exists() else b"", int(tail) if tail else None)
            follow = query.get("follow", ["false"])[0] == "true"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            if not follow:
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.end_headers()
            self.wfile.write(data)
            offset = path.stat().st_size if path.exists() else 0
            while True:
                with path.open("rb") as f:
                    f.seek(offset)
                    chunk = f.read()
                if chunk:
                    offset += len(chunk)
                    self.wfile.write(chunk)
                    self.wfile.flush()
                elif not running():
                    return
                else:
                    time.sleep(0.5)

        def _reply(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    context.load_verify_locations(str(ca))
    context.verify_mode = ssl.CERT_REQUIRED
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    return server


def serve_in_background(server: ThreadingHTTPServer) -> None:
    threading.Thread(target=server.serve_forever, name="log-server", daemon=True).start()
