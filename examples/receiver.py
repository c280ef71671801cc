"""A webhook receiver for the intake example: checks each delivery's signature, prints it, and
answers 204 (401 to a bad signature, so litegate retries and then dead-letters it).

    INTAKE_WEBHOOK_SECRET=s3cret python examples/receiver.py 9000
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from litegate.pipelines.notify import verify

SECRET = os.environ.get("INTAKE_WEBHOOK_SECRET", "")


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not verify(SECRET, self.headers, body):
            self.send_response(401)
            self.end_headers()
            return
        event = json.loads(body)
        print(f"received {self.headers['X-Litegate-Delivery']}: {json.dumps(event)[:200]}", flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:  # the deliveries above are the log
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    ThreadingHTTPServer(("127.0.0.1", port), Receiver).serve_forever()
