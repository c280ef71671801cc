"""Webhooks are posted concurrently: a receiver that takes its time delays only its own
deliveries, never another receiver's."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from litegate.pipelines.notify import Outbox
from litegate.pipelines.store import RunStore

pytestmark = pytest.mark.unit


class Receiver:
    """Answers 200, once ``gate`` opens (a receiver that takes its time); records each answer."""

    def __init__(self, held: bool):
        self.answered: list[float] = []
        self.gate = threading.Event()
        if not held:
            self.gate.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.gate.wait(30)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.answered.append(time.monotonic())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_slow_receiver_does_not_hold_up_the_others(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    RunStore(engine)
    outbox = Outbox(engine, "test-process")
    slow, fast = Receiver(held=True), Receiver(held=False)
    try:
        for i, url in enumerate([slow.url, slow.url, fast.url]):  # the slow receiver's come first
            outbox.enqueue(run_id=f"r{i}", pipeline="p", step="notify", url=url, body={"i": i}, secret_env=None,
                           max_attempts=1, backoff_s=1.0, timeout_s=40.0)
        assert outbox.deliver_due() == 3  # all three posted at once
        deadline = time.monotonic() + 10
        while not fast.answered and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fast.answered and not slow.answered  # delivered while the slow receiver still holds its two
        slow.gate.set()
        assert outbox.drain(15) == 0
        assert {d["status"] for d in outbox.list("p")} == {"delivered"} and len(slow.answered) == 2
    finally:
        slow.gate.set()
        outbox.close()
        slow.close()
        fast.close()
