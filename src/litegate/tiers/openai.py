"""``kind = "openai"``: any OpenAI-compatible endpoint.

Task calls go through the ``openai`` SDK (sync, in the task's worker thread). The same tier is
also served on the chat API under its name: chat requests are relayed over aiohttp (measured
about a millisecond per call faster than httpx's async client: bench/overhead.py), with the
same retries and the same circuit breaker.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from litegate.errors import LitegateError, RemoteRejected, TierDown, TransientStatus
from litegate.tiers.remote import RemoteTier
from litegate.tiers.resilience import RETRY_STATUS

_SDK_FIELDS = ("messages", "max_tokens", "temperature", "logprobs", "top_logprobs", "stop", "seed")


class OpenAITier(RemoteTier):
    kind = "openai"
    capabilities = frozenset({"chat", "labels", "relay"})
    requires = ("model", "base_url")

    def __init__(self, config: Any, deps: Any = None):
        super().__init__(config, deps)
        self._session: Any = None
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
        return self.client().chat.completions.create(model=self.model, **kwargs).model_dump(exclude_none=True)

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
        import aiohttp

        if self._session is None or self._session.closed:
            key = self.api_key()
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {key}"} if key != "unused" else {},
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_s, connect=5.0),
                connector=aiohttp.TCPConnector(limit=self.config.concurrency))
        return self._session

    async def achat(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /chat/completions with retries; raises TierDown or RemoteRejected."""
        payload = dict(body, model=self.model, stream=False)

        async def attempt() -> dict[str, Any]:
            async with self.session().post(self._url, json=payload) as r:
                raw = await r.read()
                if r.status in RETRY_STATUS:
                    raise TransientStatus(r.status)
                if r.status >= 400:
                    raise RemoteRejected(r.status, json_or_text(raw))
                return json.loads(raw)

        return await self.resilience.acall(attempt, self._classify_relay)

    def _classify_relay(self, error: BaseException) -> str | LitegateError | None:
        if isinstance(error, RemoteRejected):
            return error
        return self.classify(error)

    async def astream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
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
        if self._session is not None:
            await self._session.close()


def json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return {"error": {"message": raw.decode(errors="replace")[:500]}}
