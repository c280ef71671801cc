"""What the remote kinds share: the call through ``Resilience``, the API key from the
environment, JSON-mode replies validated here (a violation escalates), and labels priced from
returned log-probabilities by token text."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from litegate.errors import LitegateError, SchemaViolation, TierDown
from litegate.tiers.base import BaseTier, TierConfig
from litegate.tiers.resilience import Resilience
from litegate.tiers.scoring import TOP_LOGPROBS, text_label_distribution, text_only_distribution


class RemoteTier(BaseTier):
    capabilities = frozenset({"chat", "labels"})
    remote = True

    def __init__(self, config: TierConfig, deps: Any = None):
        super().__init__(config, deps)
        self.resilience = Resilience(config.name, config.max_retries, config.concurrency,
                                     config.breaker_failures, config.breaker_reset_s)
        self.breaker = self.resilience.breaker
        self._client: Any = None
        self._client_lock = threading.Lock()

    @property
    def model(self) -> str:
        return self.config.model or ""

    def api_key(self) -> str:
        env = self.config.api_key_env
        key = os.environ.get(env, "") if env else ""
        if env and not key:
            raise TierDown(self.name, f"the environment variable {env} holding its API key is not set")
        return key or "unused"

    def client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    # -- what a remote kind implements ---------------------------------------------------------

    def _make_client(self) -> Any:
        raise NotImplementedError

    def _request(self, body: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
        """One provider call, answered as an OpenAI chat completion dict."""
        raise NotImplementedError

    def classify(self, error: BaseException) -> str | LitegateError | None:
        raise NotImplementedError

    # -- the protocol --------------------------------------------------------------------------

    def call(self, body: dict[str, Any], schema: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.resilience.call(lambda: self._request(body, schema), self.classify)

    def chat(self, body: dict[str, Any], schema: Any = None) -> dict[str, Any]:
        raw_schema = getattr(schema, "schema", schema)
        result = self.call(body, raw_schema)
        if raw_schema is not None:
            choice = result["choices"][0]
            if choice.get("finish_reason") != "length":
                check_reply(self.name, choice["message"].get("content") or "", raw_schema)
        return result

    def label_scores(self, messages: list[dict[str, Any]], labels: list[str],
                     max_tokens: int | None = None) -> tuple[dict[str, float], dict[str, Any]]:
        longest = max(len(label) for label in labels)
        body = {"messages": messages, "temperature": 0.0, "logprobs": True, "top_logprobs": TOP_LOGPROBS,
                "max_tokens": max_tokens or min(64, 4 + longest)}
        result = self.call(body)
        steps = (result["choices"][0].get("logprobs") or {}).get("content") or []
        if not steps:  # a provider or model without log-probabilities: only the text is known
            return text_only_distribution(labels, result["choices"][0]["message"].get("content") or ""), result
        return text_label_distribution(labels, steps), result


def check_reply(tier: str, text: str, schema: dict[str, Any]) -> None:
    """Raise SchemaViolation unless ``text`` is JSON following ``schema``."""
    import jsonschema

    try:
        jsonschema.validate(json.loads(text), schema)
    except (ValueError, jsonschema.ValidationError) as e:
        raise SchemaViolation(f"the {tier} tier's reply does not follow the schema: "
                              f"{str(e).splitlines()[0][:200]}") from None
