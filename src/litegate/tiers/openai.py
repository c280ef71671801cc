"""``kind = "openai"``: any OpenAI-compatible endpoint.

Task calls go through the ``openai`` SDK (sync, in the task's worker thread). The same tier is
also served on the chat API under its name: async chat (``achat``) and the byte relay
(``arelay_stream``) go over aiohttp (measured about a millisecond per call faster than httpx's
async client: bench/overhead.py), with the same retries and the same circuit breaker. Each
event loop gets its own session (the server's, and the one sync callers run on).
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator
from typing import Any

from litegate.errors import LitegateError, RemoteRejected, TierDown, TransientStatus
from litegate.tiers.base import TierConfig, TierDeps
from litegate.tiers.remote import RemoteTier, check_reply
from litegate.tiers.resilience import RETRY_STATUS

_SDK_FIELDS = ("messages", "max_tokens", "temperature", "logprobs", "top_logprobs", "stop", "seed")


class OpenAITier(RemoteTier):
    kind = "openai"
    capabilities = frozenset({"chat", "labels", "relay"})
    requires = ("model", "base_url")

    def __init__(self, config: TierConfig, deps: TierDeps | None = None):
        super().__init__(config, deps)
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._url = (config.base_url or "").rstrip("/") + "/chat/completions"

    # -- sync, for tasks -----------------------------------------------------------------------

    def _make_client(self) -> Any:
        import openai

        return openai.OpenAI(base_url=self.config.base_url, api_key=self.api_key(), max_retries=0,
                             timeout=self.config.timeout_s)

    def _request(self, body: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
        kwargs = {k: v for k, v in body.items() if k in _SDK_FIELDS}
        if schema is not None:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
        reply: dict[str, Any] = self.client().chat.completions.create(model=self.model, **kwargs).model_dump(
            exclude_none=True)
        return reply

    def classify(self, error: BaseException) -> str | LitegateError | None:
        import aiohttp
        import openai

        if isinstance(error, (openai.APIConnectionError, openai.APITimeoutError, aiohttp.ClientError,
                              asyncio.TimeoutError, TransientStatus)):
            return "transient"
        if isinstance(error, openai.APIStatusError):
            if error.status_code in RETRY_STATUS:
                return "transient"
            return RemoteRejected(error.status_code, error.body if isinstance(error.body, dict) else
                                  {"error": {"message": str(error)}})
        return None

    # -- async, for the chat API relay -----------------------------------------------------------

    def session(self) -> Any:
        """This event loop's session (an aiohttp session belongs to the loop it was made on)."""
        import aiohttp

        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            key = self.api_key()
            session = self._sessions[loop] = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {key}"} if key != "unused" else {},
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_s, connect=5.0),
                connector=aiohttp.TCPConnector(limit=self.config.concurrency))
        return session

    async def achat(self, body: dict[str, Any], schema: Any = None) -> dict[str, Any]:
        """POST /chat/completions with retries; raises TierDown or RemoteRejected. A reply that
        breaks ``schema`` raises SchemaViolation, as on the sync path."""
        raw_schema = getattr(schema, "schema", schema)
        payload = dict(body, model=self.model, stream=False)
        if raw_schema is not None:
            payload["response_format"] = {"type": "json_schema", "json_schema": {"name": "reply",
                                                                                 "schema": raw_schema}}
        result = await self._apost(payload)
        if raw_schema is not None:
            choice = result["choices"][0]
            if choice.get("finish_reason") != "length":
                check_reply(self.name, choice["message"].get("content") or "", raw_schema)
        return result

    async def arelay(self, body: dict[str, Any]) -> dict[str, Any]:
        """A client's OpenAI-shaped body passed to the remote as is, answered in full."""
        return await self._apost(dict(body, model=self.model, stream=False))

    async def _apost(self, payload: dict[str, Any]) -> dict[str, Any]:
        async def attempt() -> dict[str, Any]:
            async with self.session().post(self._url, json=payload) as r:
                raw = await r.read()
                if r.status in RETRY_STATUS:
                    raise TransientStatus(r.status)
                if r.status >= 400:
                    raise RemoteRejected(r.status, json_or_text(raw))
                reply: dict[str, Any] = json.loads(raw)
                return reply

        return await self.resilience.acall(attempt, self._classify_relay)

    def _classify_relay(self, error: BaseException) -> str | LitegateError | None:
        if isinstance(error, RemoteRejected):
            return error
        return self.classify(error)

    async def arelay_stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        """The remote's SSE bytes (no retry once bytes have flowed); TierDown when it is down."""
        import aiohttp

        breaker = self.resilience.breaker
        if not breaker.allow():
            raise TierDown(self.name, "circuit open after repeated failures")
        payload = dict(body, model=self.model, stream=True)
        try:
            async with self.session().post(self._url, json=payload) as r:
                if r.status >= 400:
                    detail = await r.read()
                    if r.status in RETRY_STATUS:
                        breaker.failure()
                        raise TierDown(self.name, f"answered HTTP {r.status}")
                    raise RemoteRejected(r.status, json_or_text(detail))
                breaker.success()
                async for chunk in r.content.iter_any():
                    yield chunk
        except (TimeoutError, aiohttp.ClientError) as e:
            breaker.failure()
            raise TierDown(self.name, f"{type(e).__name__}: {e}") from None

    async def aclose(self) -> None:
        """Close the sessions of the running loop (others close with their loop)."""
        loop = asyncio.get_running_loop()
        session = self._sessions.pop(loop, None)
        if session is not None:
            await session.close()


def json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return {"error": {"message": raw.decode(errors="replace")[:500]}}
