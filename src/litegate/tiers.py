"""Tiers: the places a task's model work can run, declared in cascade order.

A tier is one of four kinds:

- ``local``: an embedded model or a GGUF file, in-process on llama.cpp (priced by compute
  time at ``usd_per_hour``);
- ``openai``: any OpenAI-compatible endpoint, through the ``openai`` SDK (priced per token);
- ``gemini``: a Gemini model, through the ``google-genai`` SDK (priced per token);
- ``nano``: the trained classifiers (classify and rank only).

Every LLM tier answers the same two calls, so task code does not know where it runs:
``chat(body, schema=...)`` returns an OpenAI-shaped chat completion, and
``label_scores(messages, labels)`` a probability for each label. Locally the schema or
label set becomes a grammar and labels are priced by token id; remotely the schema becomes
the provider's JSON mode (the reply is validated here, a violation escalates), and labels
are priced from the returned top log-probabilities by token *text*.

Remote calls are retried on timeouts, refused connections, 429 and 5xx with exponential
backoff and jitter; a circuit breaker per tier stops calling a tier that keeps failing, and
the runner falls back to the tier's ``fallback``.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from litegate.errors import InvalidRequest, LitegateError
from litegate.remote import RETRY_STATUS, CircuitBreaker, RemoteRejected, backoff_s, read_config

KINDS = ("local", "openai", "gemini", "nano")


class TierDown(LitegateError):
    """A remote tier failed after its retries, or its circuit is open."""

    status_code = 503
    error_type = "tier_unavailable"

    def __init__(self, tier: str, reason: str):
        super().__init__(f"the {tier} tier is unavailable: {reason}")
        self.tier = tier
        self.reason = reason


class SchemaViolation(LitegateError):
    """A remote tier's reply does not follow the requested JSON schema (escalates)."""

    status_code = 502
    error_type = "schema_violation"


@dataclass
class TierConfig:
    name: str
    kind: str
    model: str | None = None  # local: embedded name or GGUF path; remote: the provider's model name
    base_url: str | None = None
    api_key_env: str | None = None  # the key is read from this environment variable, never from the file
    price_in_per_million: float = 0.0
    price_out_per_million: float = 0.0
    usd_per_hour: float | None = None  # local and nano tiers: compute-time price
    timeout_s: float = 60.0
    max_retries: int = 2
    concurrency: int = 8
    fallback: str | None = None  # another tier's name, used when this one is down
    breaker_failures: int = 3
    breaker_reset_s: float = 30.0
    classifier: str | None = None  # nano: the classifier used when a request names none

    @property
    def remote(self) -> bool:
        return self.kind in ("openai", "gemini")


def parse_tiers(tables: Any, source: str) -> list[TierConfig]:
    """Validate ``[[tier]]`` tables (in order) into TierConfigs."""
    if not isinstance(tables, list):
        raise InvalidRequest(f"{source}: 'tier' must be an array of tables ([[tier]])")
    known = {f.name for f in fields(TierConfig)}
    tiers: list[TierConfig] = []
    for i, table in enumerate(tables):
        where = f"{source}: [[tier]] #{i + 1}"
        unknown = set(table) - known
        if unknown:
            raise InvalidRequest(f"{where} has unknown keys {sorted(unknown)}")
        if not isinstance(table.get("name"), str) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", table["name"]):
            raise InvalidRequest(f"{where} needs 'name' (letters, digits, _ . : -)")
        if table["name"] == "auto":
            raise InvalidRequest(f"{where}: 'auto' is reserved for the cascade")
        if table.get("kind") not in KINDS:
            raise InvalidRequest(f"{where} ({table['name']}): 'kind' must be one of {', '.join(KINDS)}")
        if table["kind"] in ("local", "openai", "gemini") and not table.get("model"):
            raise InvalidRequest(f"{where} ({table['name']}): kind {table['kind']} needs 'model'")
        if table["kind"] == "openai" and not table.get("base_url"):
            raise InvalidRequest(f"{where} ({table['name']}): kind openai needs 'base_url'")
        for key in ("price_in_per_million", "price_out_per_million", "usd_per_hour", "timeout_s",
                    "breaker_reset_s"):
            if key in table and (not isinstance(table[key], (int, float)) or table[key] < 0):
                raise InvalidRequest(f"{where} ({table['name']}): '{key}' must be a number >= 0")
        for key in ("max_retries", "concurrency", "breaker_failures"):
            if key in table and (not isinstance(table[key], int) or table[key] < (0 if key == "max_retries" else 1)):
                raise InvalidRequest(f"{where} ({table['name']}): '{key}' must be a positive integer")
        tiers.append(TierConfig(**table))
    names = [t.name for t in tiers]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidRequest(f"{source}: tier names must be unique ({', '.join(dupes)})")
    for t in tiers:
        if t.fallback is not None and t.fallback not in names and t.fallback not in ("lite", "pro"):
            raise InvalidRequest(f"{source}: tier {t.name!r} falls back to {t.fallback!r}, which is not a tier")
        # a chain of fallbacks must end: each one is tried when the previous is down
        chain, at = [t.name], t.fallback
        by_name = {x.name: x for x in tiers}
        while at is not None:
            if at in chain:
                raise InvalidRequest(f"{source}: tier fallbacks form a cycle: {' -> '.join(chain + [at])}")
            chain.append(at)
            at = by_name[at].fallback if at in by_name else None
    return tiers


def default_tiers(lite_model: str, pro_installed: bool) -> list[TierConfig]:
    """No config: nano (when a classifier is named) -> lite -> pro (when installed)."""
    tiers = [TierConfig("nano", "nano", usd_per_hour=0.05), TierConfig("lite", "local", model=lite_model)]
    if pro_installed:
        tiers.append(TierConfig("pro", "local", model="pro"))
    return tiers


# -- label probabilities from text log-probabilities ----------------------------------------

_SPECIAL = re.compile(r"<\|[^|>]*\|>|</?s>")
_TRAILING = " \t\r\n\"'.,;:!?)]}"


def _consistent(prefix: str, label: str) -> bool:
    """Whether generated text ``prefix`` can still be (or already is) ``label``."""
    p = prefix.lstrip(" \t\r\n\"'`").casefold()
    lab = label.casefold()
    if lab.startswith(p):
        return True
    return p.startswith(lab) and not p[len(lab):].strip(_TRAILING)


def text_label_distribution(labels: list[str], steps: list[dict[str, Any]]) -> dict[str, float]:
    """Label probabilities from OpenAI-shaped logprobs whose tokens are known only as text.

    Along the generated path, each step's alternatives give the labels they lead to their
    probability (renormalised over the alternatives that lead to some label: the label set's
    view); an alternative off the path splits its mass evenly between the labels it leads
    to. The path's own mass goes to the label it completes. A path that leaves the labels
    (the model wrote something else) leaves its mass to the alternatives that did not.
    """
    n = len(labels)
    final = [0.0] * n
    path = 1.0
    prefix = ""
    alive = list(range(n))
    for step in steps:
        chosen = _SPECIAL.sub("", step.get("token") or "")
        alts: dict[str, float] = {}
        for item in step.get("top_logprobs") or []:
            tok = _SPECIAL.sub("", item.get("token") or "")
            alts[tok] = alts.get(tok, 0.0) + math.exp(item.get("logprob", -50.0))
        alts.setdefault(chosen, math.exp(step.get("logprob", 0.0)))
        members = {a: [i for i in alive if _consistent(prefix + a, labels[i])] for a in alts}
        useful = {a: p for a, p in alts.items() if members[a]}
        total = sum(useful.values())
        for a, p in useful.items():
            if a != chosen:
                for i in members[a]:
                    final[i] += path * (p / total) / len(members[a])
        if chosen not in useful:
            # the model wrote something that is no label: as under a grammar, the
            # alternatives that lead to labels share the path's mass
            path, alive = 0.0, []
            break
        path *= useful[chosen] / total
        prefix += chosen
        alive = members[chosen]
        if len(alive) == 1 or not chosen:
            break
    done = [i for i in alive if _consistent(prefix, labels[i]) and prefix.strip(_TRAILING).casefold()
            .lstrip(" \"'`") == labels[i].casefold()]
    for i in done or alive:
        final[i] += path / len(done or alive)  # (nothing when the walk left the labels)
    total = sum(final)
    if total <= 0:
        return {label: 1.0 / n for label in labels}
    return {label: final[i] / total for i, label in enumerate(labels)}


def text_only_distribution(labels: list[str], text: str) -> dict[str, float]:
    """No log-probabilities: the label the reply names gets everything (calibration then
    learns how far to trust such a tier); a reply naming no label gets the uniform
    distribution, whose low confidence escalates or goes to human review."""
    named = [i for i, label in enumerate(labels) if _consistent(text.strip(), label)
             and text.strip().strip(_TRAILING).lstrip(" \"'`").casefold() == label.casefold()]
    if len(named) != 1:
        return {label: 1.0 / len(labels) for label in labels}
    return {label: float(i == named[0]) for i, label in enumerate(labels)}


# -- local --------------------------------------------------------------------------------------

class LocalTier:
    kind = "local"

    def __init__(self, config: TierConfig, runner: Any):
        self.config = config
        self.name = config.name
        self._runner = runner

    @property
    def model(self) -> str:
        return self._runner.registry.lookup(self.config.model or "lite").name

    def engine(self) -> Any:
        return self._runner.registry.engine(self.config.model or "lite")

    def chat(self, body: dict[str, Any], schema: Any = None) -> dict[str, Any]:
        if schema is not None:
            body = dict(body, grammar=schema.grammar)
        return self.engine().run("chat", body)

    def label_scores(self, messages: list[dict[str, Any]], labels: list[str],
                     max_tokens: int | None = None) -> tuple[dict[str, float], dict[str, Any]]:
        return self._runner.scorer(self.model, self.engine(), labels).score(messages, max_tokens=max_tokens)


# -- remote -------------------------------------------------------------------------------------

class RemoteTier:
    """Retries, backoff with jitter, a concurrency cap and a circuit breaker around a
    provider call; subclasses translate requests and replies."""

    kind = "remote"

    def __init__(self, config: TierConfig):
        self.config = config
        self.name = config.name
        self.model = config.model or ""
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_reset_s)
        self._slots = threading.BoundedSemaphore(config.concurrency)
        self._client: Any = None
        self._client_lock = threading.Lock()

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

    # subclasses
    def _make_client(self) -> Any:
        raise NotImplementedError

    def _request(self, body: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
        raise NotImplementedError

    def _transient(self, error: Exception) -> bool:
        raise NotImplementedError

    def _rejected(self, error: Exception) -> LitegateError | None:
        return None

    def call(self, body: dict[str, Any], schema: dict[str, Any] | None = None) -> dict[str, Any]:
        if not self.breaker.allow():
            raise TierDown(self.name, "circuit open after repeated failures")
        last = "no attempt"
        with self._slots:
            for attempt in range(self.config.max_retries + 1):
                if attempt:
                    time.sleep(backoff_s(attempt))
                try:
                    result = self._request(body, schema)
                except Exception as e:  # noqa: BLE001 - sorted into transient / rejected / unknown below
                    if self._transient(e):
                        last = f"{type(e).__name__}: {str(e)[:200]}"
                        continue
                    rejected = self._rejected(e)
                    if rejected is not None:
                        self.breaker.success()  # the tier is up; the request was wrong
                        raise rejected from None
                    raise
                self.breaker.success()
                return result
        self.breaker.failure()
        raise TierDown(self.name, f"failed after {self.config.max_retries + 1} attempts ({last})")

    def chat(self, body: dict[str, Any], schema: Any = None) -> dict[str, Any]:
        raw_schema = getattr(schema, "schema", schema)
        result = self.call(body, raw_schema)
        if raw_schema is not None:
            choice = result["choices"][0]
            if choice.get("finish_reason") != "length":
                import jsonschema

                try:
                    jsonschema.validate(json.loads(choice["message"]["content"] or ""), raw_schema)
                except (ValueError, jsonschema.ValidationError) as e:
                    raise SchemaViolation(f"the {self.name} tier's reply does not follow the schema: "
                                          f"{str(e).splitlines()[0][:200]}") from None
        return result

    def label_scores(self, messages: list[dict[str, Any]], labels: list[str],
                     max_tokens: int | None = None) -> tuple[dict[str, float], dict[str, Any]]:
        from litegate.tasks.scoring import TOP_LOGPROBS  # (tasks import this module)

        longest = max(len(label) for label in labels)
        body = {"messages": messages, "temperature": 0.0, "logprobs": True, "top_logprobs": TOP_LOGPROBS,
                "max_tokens": max_tokens or min(64, 4 + longest)}
        result = self.call(body)
        steps = (result["choices"][0].get("logprobs") or {}).get("content") or []
        if not steps:  # a provider or model without log-probabilities: only the text is known
            return text_only_distribution(labels, result["choices"][0]["message"].get("content") or ""), result
        return text_label_distribution(labels, steps), result


class OpenAITier(RemoteTier):
    kind = "openai"

    def _make_client(self) -> Any:
        import openai

        return openai.OpenAI(base_url=self.config.base_url, api_key=self.api_key(), max_retries=0,
                             timeout=self.config.timeout_s)

    def _request(self, body: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
        kwargs = {k: v for k, v in body.items() if k in ("messages", "max_tokens", "temperature", "logprobs",
                                                          "top_logprobs", "stop", "seed")}
        if schema is not None:
            kwargs["response_format"] = {"type": "json_schema",
                                         "json_schema": {"name": "reply", "schema": schema}}
        return self.client().chat.completions.create(model=self.model, **kwargs).model_dump(exclude_none=True)

    def _transient(self, error: Exception) -> bool:
        import openai

        if isinstance(error, (openai.APIConnectionError, openai.APITimeoutError)):
            return True
        return isinstance(error, openai.APIStatusError) and error.status_code in RETRY_STATUS

    def _rejected(self, error: Exception) -> LitegateError | None:
        import openai

        if isinstance(error, openai.APIStatusError):
            return RemoteRejected(error.status_code, error.body if isinstance(error.body, dict) else
                                  {"error": {"message": str(error)}})
        return None


class GeminiTier(RemoteTier):
    kind = "gemini"

    def _make_client(self) -> Any:
        from google import genai
        from google.genai import types

        options = types.HttpOptions(timeout=int(self.config.timeout_s * 1000),
                                    retry_options=types.HttpRetryOptions(attempts=1))
        if self.config.base_url:
            options.base_url = self.config.base_url
        return genai.Client(api_key=self.api_key(), http_options=options)

    def _request(self, body: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
        from google.genai import types

        system = "\n\n".join(m["content"] for m in body["messages"] if m["role"] == "system")
        contents = [types.Content(role="model" if m["role"] == "assistant" else "user",
                                  parts=[types.Part(text=m["content"])])
                    for m in body["messages"] if m["role"] != "system"]
        config = types.GenerateContentConfig(
            system_instruction=system or None, temperature=body.get("temperature"),
            max_output_tokens=body.get("max_tokens"),
            response_logprobs=bool(body.get("logprobs")) or None,
            logprobs=body.get("top_logprobs") if body.get("logprobs") else None)
        if schema is not None:
            config.response_mime_type = "application/json"
            config.response_json_schema = schema
        response = self.client().models.generate_content(model=self.model, contents=contents, config=config)
        return _gemini_to_openai(response, self.model)

    def _transient(self, error: Exception) -> bool:
        import httpx
        from google.genai import errors

        if isinstance(error, (httpx.TransportError, httpx.TimeoutException, ConnectionError, TimeoutError)):
            return True
        return isinstance(error, errors.APIError) and int(error.code or 0) in RETRY_STATUS

    def _rejected(self, error: Exception) -> LitegateError | None:
        from google.genai import errors

        if isinstance(error, errors.ClientError):
            return RemoteRejected(int(error.code or 400), {"error": {"message": error.message or str(error)}})
        return None


_GEMINI_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}


def _gemini_to_openai(response: Any, model: str) -> dict[str, Any]:
    """A google-genai GenerateContentResponse as an OpenAI chat completion dict."""
    candidate = (response.candidates or [None])[0]
    text = ""
    if candidate is not None and candidate.content is not None:
        text = "".join(p.text or "" for p in candidate.content.parts or [] if not getattr(p, "thought", False))
    finish = getattr(getattr(candidate, "finish_reason", None), "value", None) or "STOP"
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text},
                              "finish_reason": _GEMINI_FINISH.get(finish, "stop")}
    lp = getattr(candidate, "logprobs_result", None)
    if lp is not None and lp.chosen_candidates:
        tops = lp.top_candidates or []
        content = []
        for i, chosen in enumerate(lp.chosen_candidates):
            alts = tops[i].candidates if i < len(tops) and tops[i].candidates else []
            content.append({"token": chosen.token or "", "logprob": chosen.log_probability or 0.0,
                            "top_logprobs": [{"token": a.token or "", "logprob": a.log_probability or 0.0}
                                             for a in alts]})
        choice["logprobs"] = {"content": content}
    meta = response.usage_metadata
    usage = {"prompt_tokens": int(getattr(meta, "prompt_token_count", 0) or 0),
             "completion_tokens": int(getattr(meta, "candidates_token_count", 0) or 0),
             "prompt_tokens_details": {"cached_tokens": int(getattr(meta, "cached_content_token_count", 0) or 0)}}
    return {"id": getattr(response, "response_id", None) or "", "object": "chat.completion", "model": model,
            "choices": [choice], "usage": usage}


def make_tier(config: TierConfig, runner: Any) -> Any:
    if config.kind == "local":
        return LocalTier(config, runner)
    if config.kind == "openai":
        return OpenAITier(config)
    if config.kind == "gemini":
        return GeminiTier(config)
    return None  # nano: classify/rank read the classifier store directly


def load_tiers(path: Path | str) -> list[TierConfig]:
    """The ``[[tier]]`` tables of a config file (empty when it declares none)."""
    return parse_tiers(read_config(path).get("tier", []), str(path))


def apply_prices(prices: Any, configs: Any) -> None:
    """Put the tiers' prices into a ledger Prices table: remote tiers per token, local and
    nano tiers per compute hour."""
    for c in configs:
        if c.remote:
            prices.per_million_in[c.name] = c.price_in_per_million
            prices.per_million_out[c.name] = c.price_out_per_million
        elif c.usd_per_hour is not None:
            prices.local_usd_per_hour[c.name] = c.usd_per_hour
