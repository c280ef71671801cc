"""A web page cannot make a browser drive the server: pages in headless Chromium, served from
an allowed origin, from another port of the same host and from a sandboxed frame (``Origin:
null``), each try to upload a file to a keyless server; only the allowed origin's upload lands."""

from __future__ import annotations

import http.server
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import CHROMIUM, free_port, start_server, stop_server

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs chromium")

UPLOAD = """<script>
const form = new FormData();
form.append("purpose", "user_data");
form.append("file", new Blob(["planted by a web page"]), "NAME.txt");
fetch("BASE/v1/files", {method: "POST", mode: "no-cors", body: form})
  .then(() => { document.title = "sent"; }, () => { document.title = "failed"; });
</script>"""


class Pages(http.server.ThreadingHTTPServer):
    """A web site on a loopback port: every path answers the page it was made with."""

    def __init__(self, port: int, html: str):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the standard library's name
                body = html.encode()
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", port), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    friendly, hostile = free_port(), free_port()
    proc, base = start_server(tmp_path_factory.mktemp("guard-home"), "--ctx", "2048", "--allowed-hosts",
                              f"127.0.0.1,localhost,http://127.0.0.1:{friendly}")
    sandboxed = UPLOAD.replace("NAME", "sandboxed").replace("BASE", base).replace('"', "&quot;")
    pages = [Pages(friendly, UPLOAD.replace("NAME", "friendly").replace("BASE", base)
                   + f'<iframe sandbox="allow-scripts" srcdoc="{sandboxed}"></iframe>'),
             Pages(hostile, UPLOAD.replace("NAME", "hostile").replace("BASE", base))]
    try:
        yield base, {"friendly": f"http://127.0.0.1:{friendly}/", "hostile": f"http://127.0.0.1:{hostile}/"}
    finally:
        for p in pages:
            p.shutdown()
        stop_server(proc)


def open_in_chromium(url: str, profile: Path) -> str:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={profile}", "--virtual-time-budget=8000", "--dump-dom", url],
                          check=True, capture_output=True, text=True, timeout=120).stdout


def test_only_the_allowed_origin_can_drive_the_server(sites: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    base, pages = sites
    for name, url in pages.items():
        open_in_chromium(url, tmp_path / name)
    deadline = time.monotonic() + 20
    names: set[str] = set()
    while "friendly.txt" not in names and time.monotonic() < deadline:  # the positive control: a browser did post
        names = {f["filename"] for f in httpx.get(base + "/v1/files").json()["data"]}
        time.sleep(0.3)
    assert "friendly.txt" in names, "the allowed page's upload should land (the browser ran the page)"
    assert "hostile.txt" not in names and "sandboxed.txt" not in names, names
