"""The CLI as a client of a running server: task commands and ``generate`` send their requests
to it (``--url``, ``LITEGATE_URL``, or a litegate answering on the default port) instead of
loading the models in their own process, and say on stderr which they do."""

from __future__ import annotations

import functools
import json
import os
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from litegate.cli.common import err, fail

DEFAULT_URL = "http://127.0.0.1:8080"
PROBE_TIMEOUT_S = 0.5  # a server on loopback answers /healthz in milliseconds; nothing there fails at once


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default TLS context, made once a process: loading its CA bundle takes about 50 ms,
    and the probe and the client of one command would each load it."""
    return httpx.create_ssl_context()


def _litegate_at(url: str, timeout: float) -> bool:
    try:
        r = httpx.get(url.rstrip("/") + "/healthz", timeout=timeout, verify=_tls())
        return r.status_code == 200 and isinstance(r.json(), dict) and "models" in r.json()
    except (httpx.HTTPError, ValueError):
        return False


def find_server(url: str | None, local: bool, model: str = "lite") -> str | None:
    """The server to send requests to, or None to load the models here. An address the user
    gave must answer; the default port is only tried (``LITEGATE_LOCAL=1`` skips that)."""
    given = None if local else url or os.environ.get("LITEGATE_URL")
    if local:
        found = None
    elif given:
        if not _litegate_at(given, 5.0):
            fail(f"no litegate server answers at {given} (--url / LITEGATE_URL); start one with `litegate serve`, "
                 f"or pass --local to load the models in this process")
        found = given.rstrip("/")
    elif os.environ.get("LITEGATE_LOCAL", "") not in ("", "0") or model != "lite" \
            or not _litegate_at(DEFAULT_URL, PROBE_TIMEOUT_S):
        found = None
    else:
        found = DEFAULT_URL
    if found is not None and model != "lite":
        fail(f"--model {model} loads a model in this process; a server answers with its own models: "
             f"drop --url / LITEGATE_URL, or pass --local")
    if found:
        err.print(f"[dim]using the server at {found}[/dim]", highlight=False, soft_wrap=True)
    elif not local and model == "lite" and os.environ.get("LITEGATE_LOCAL", "") in ("", "0"):
        # chosen for the user, so said; --local, LITEGATE_LOCAL and --model say it themselves
        err.print(f"[dim]no server at {DEFAULT_URL} (or --url, LITEGATE_URL): loading the models in this "
                  f"process[/dim]", highlight=False, soft_wrap=True)
    return found


class ServerClient:
    """Requests to a litegate server with the key from ``LITEGATE_API_KEY``; a refused request
    ends the command with the server's own one-line message."""

    def __init__(self, url: str, timeout: float = 600.0):
        key = os.environ.get("LITEGATE_API_KEY")
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=timeout, verify=_tls(),
                                 headers={"Authorization": f"Bearer {key}"} if key else {})

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            r = self.http.post(path, json=body, headers=headers or {})
        except httpx.HTTPError as e:
            fail(f"the server at {self.url} did not answer: {e}")
        if r.status_code >= 400:
            fail(f"{_message(r)} (HTTP {r.status_code})")
        return r.json()

    def stream_chat(self, path: str, body: dict[str, Any], headers: dict[str, str],
                    on_text: Callable[[str], None]) -> dict[str, Any]:
        """A streamed chat or completion: each piece of text to ``on_text``; returns the
        last chunk that carried usage (or {})."""
        last: dict[str, Any] = {}
        try:
            with self.http.stream("POST", path, json=dict(body, stream=True, stream_options={"include_usage": True}),
                                  headers=headers) as r:
                if r.status_code >= 400:
                    r.read()
                    fail(f"{_message(r)} (HTTP {r.status_code})")
                for chunk in _sse(r.iter_lines()):
                    for choice in chunk.get("choices") or []:
                        text = choice.get("text") if "text" in choice else (choice.get("delta") or {}).get("content")
                        if text:
                            on_text(text)
                    if chunk.get("usage"):
                        last = chunk
        except httpx.HTTPError as e:
            fail(f"the server at {self.url} did not answer: {e}")
        return last


def _sse(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.startswith("data: ") and line != "data: [DONE]":
            try:
                yield json.loads(line[6:])
            except ValueError:
                continue


def _message(r: httpx.Response) -> str:
    try:
        error = r.json()["error"]
        return error["message"] if isinstance(error, dict) else str(error)
    except (ValueError, KeyError, TypeError):
        return r.text[:300]
