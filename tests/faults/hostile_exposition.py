"""A trainer pod gone wrong (or hostile): it answers every scrape with a 30 MB
exposition of 200,000 series. Run as the container's command in the hostile-exposition
fault test: `python -m tests.faults.hostile_exposition ... --metrics-port PORT ...`."""

from __future__ import annotations

import contextlib
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERIES = 200_000


def body() -> bytes:
    label = "x" * 110  # ~150 bytes a line: 200,000 lines, 30 MB
    lines = [
        "# HELP gentrain_milestone_loss_mean Mean loss over the window.",
        "# TYPE gentrain_milestone_loss_mean gauge",
        *(f'gentrain_milestone_loss_mean{{component="{label}{i:06d}"}} 1.0' for i in range(SERIES)),
    ]
    return ("\n".join(lines) + "\n").encode()


def main() -> None:
    port = int(sys.argv[sys.argv.index("--metrics-port") + 1])
    payload = body()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            # The operator stops reading at its limit and hangs up.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(payload)

    print(f"serving {len(payload) >> 20} MiB of exposition on :{port}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()  # the pod's own address


if __name__ == "__main__":
    main()
