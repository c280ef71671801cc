"""The chat service: the one path under every chat-shaped front end.

OpenAI routes, Gemini routes, the Python API and ``litegate generate`` all hand it a
validated request and get back a finished reply or a stream of chunks. In between, once:
model lookup (a local model, or a remote tier served under its name) -> request checks ->
context budget -> engine or remote -> reply checks (schema, tool calls) -> ledger row priced
by the tier that answered. Front ends only translate shapes.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from litegate.chat.request import ChatCompletionRequest, CompletionRequest, PreparedChat, prepare_chat
from litegate.errors import ContextLengthExceeded, InvalidRequest, RemoteRejected, TierDown
from litegate.ledger.pricing import LOCAL_USD_PER_HOUR, Price, Usage

Kind = Literal["chat", "completion"]
# tool_choice "auto" on local models (measured on the labeled set in chat/tool_cases.py with
# bench/tool_choice.py): call when the request is this close (cosine of nano sentence vectors)
# to a tool's name and description, or when the model itself gives the call branch at least
# TOOL_CALL_THRESHOLD; right after a tool result, only when the model is this sure
TOOL_MATCH = 0.16
TOOL_CALL_THRESHOLD = 0.5
TOOL_CALL_AFTER_RESULT = 0.9


@dataclass
class ChatCall:
    """One chat-shaped request, as a front end hands it over."""

    request: ChatCompletionRequest | CompletionRequest
    api: str = "chat"  # the ledger's task column: chat, completion, gemini, python, cli
    feature: str | None = None
    api_key: str | None = None  # the key's fingerprint, never the key
    documents: Any = None  # what its files read as (litegate.documents.attachments.Read), set by the service

    @property
    def kind(self) -> Kind:
        return "completion" if isinstance(self.request, CompletionRequest) else "chat"


@dataclass
class Target:
    """Where a model name leads: a local model on the registry, or a remote tier."""

    model: str  # the served name
    tier: str  # the ledger's tier column
    price: Price
    remote: Any = None  # a tier with achat/astream (kind openai), or one with chat only


@dataclass
class ChatRun:
    """A started call: ``result`` (finished and ledgered) or ``chunks`` (engine chunks, ledgered
    when the usage chunk passes)."""

    model: str
    kind: Kind
    prepared: PreparedChat | None = None
    result: dict[str, Any] | None = None
    chunks: AsyncIterator[dict[str, Any]] | None = None
    fallback_from: str | None = None
    fallback_reason: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def surely_fits(n_ctx: int, messages: list[dict[str, Any]], max_tokens: int | None) -> bool:
    """Whether the prompt fits without counting it. Every token of a byte-level or
    byte-fallback vocabulary covers at least one byte, so the messages' UTF-8 size (as JSON,
    which only adds) plus the chat template's own tokens bound the prompt; when even that
    bound fits, the exact count (a loopback round trip, ~1 ms) is skipped."""
    bound = len(json.dumps(messages, ensure_ascii=False).encode()) + 16 * len(messages) + 256
    return bound + (max_tokens or 0) < n_ctx


def check_max_tokens(n_ctx: int, value: int | None, param: str) -> None:
    if value is not None and value >= n_ctx:
        raise InvalidRequest(f"'{param}' is {value} but the model's context holds {n_ctx} tokens in all; "
                             "ask for fewer", param=param)


def check_budget(n_ctx: int, prompt_tokens: int, max_tokens: int | None) -> None:
    if prompt_tokens >= n_ctx:
        raise ContextLengthExceeded(
            f"the prompt is {prompt_tokens} tokens but the model's context holds {n_ctx}; shorten the prompt",
            prompt_tokens=prompt_tokens, n_ctx=n_ctx)
    if max_tokens is not None and prompt_tokens + max_tokens > n_ctx:
        raise ContextLengthExceeded(
            f"the prompt is {prompt_tokens} tokens and max_tokens is {max_tokens}, together "
            f"{prompt_tokens + max_tokens}, but the model's context holds {n_ctx}; "
            f"lower max_tokens to at most {n_ctx - prompt_tokens}",
            prompt_tokens=prompt_tokens, n_ctx=n_ctx, param="max_tokens")


def completion_body(req: CompletionRequest) -> dict[str, Any]:
    """Checks of a legacy text completion request, and its engine body."""
    req.check_single_choice()
    if req.echo:
        raise InvalidRequest("'echo' is not supported", param="echo")
    if req.suffix:
        raise InvalidRequest("'suffix' is not supported", param="suffix")
    prompt: str | list[int]
    if isinstance(req.prompt, list) and req.prompt and isinstance(req.prompt[0], str):
        if len(req.prompt) != 1:
            raise InvalidRequest("'prompt': send one prompt per request", param="prompt")
        prompt = req.prompt[0]  # type: ignore[assignment]
    else:
        prompt = req.prompt  # type: ignore[assignment]
    if not prompt:
        raise InvalidRequest("'prompt' must not be empty", param="prompt")
    body: dict[str, Any] = {"prompt": prompt, **req.sampling()}
    if req.max_tokens is not None:
        body["max_tokens"] = req.max_tokens
    if req.logprobs is not None:
        body["logprobs"] = req.logprobs
    return body


@dataclass
class _Plan:
    """A checked request, before any engine is involved."""

    target: Target
    kind: Kind
    body: dict[str, Any]
    prepared: PreparedChat | None
    max_tokens_param: str
    request_messages: list[dict[str, Any]] | None = None  # as the client sent them

    @property
    def max_tokens(self) -> int | None:
        return self.body.get("max_tokens")


class ChatService:
    def __init__(self, registry: Any, tiers: dict[str, Any], accountant: Any = None, default_model: str = "lite",
                 tool_call_threshold: float = TOOL_CALL_THRESHOLD, encoder_source: Any = None,
                 attachments: Any = None):
        self.registry = registry
        self.attachments = attachments  # litegate.documents.attachments.Attachments: files in messages -> text
        self.tool_call_threshold = tool_call_threshold
        self.tool_match = TOOL_MATCH
        self.encoder_source = encoder_source  # the nano encoder's owner (matches requests to tools)
        self._deciders: dict[int, Any] = {}
        self.tiers = tiers  # every tier by name (remote ones are served by name)
        self.accountant = accountant
        self.default_model = default_model

    # -- lookup ---------------------------------------------------------------------------------

    def remote_names(self) -> list[str]:
        return [name for name, t in self.tiers.items() if getattr(t, "remote", False)]

    def target(self, name: str | None) -> Target:
        name = name or self.default_model
        tier = self.tiers.get(name)
        if tier is not None and getattr(tier, "remote", False):
            return Target(model=name, tier=name, price=tier.price, remote=tier)
        served = self.registry.lookup(name).name  # ModelNotFound (404) for anything else
        for t in self.tiers.values():
            if getattr(t, "served", None) == served:
                return Target(model=served, tier=t.name, price=t.price)
        return Target(model=served, tier="local", price=Price.local(LOCAL_USD_PER_HOUR))

    def _has_files(self, call: ChatCall) -> bool:
        from litegate.documents.attachments import MEDIA_PART_TYPES

        if call.kind != "chat" or call.documents is not None:
            return False
        for m in call.request.messages:  # type: ignore[union-attr]
            if isinstance(m.content, list) and any(p.type in MEDIA_PART_TYPES for p in m.content):
                if self.attachments is None:
                    raise InvalidRequest("files in messages need the document layer, which this service was built "
                                         "without", param="messages")
                return True
        return False

    def _sees_images(self, call: ChatCall) -> bool:
        """Whether the call's model reads images itself (a local model with a projector)."""
        target = self.target(call.request.model)
        return target.remote is None and self.registry.lookup(target.model).mmproj is not None

    def _plan(self, call: ChatCall, target: Target | None = None) -> _Plan:
        target = target or self.target(call.request.model)
        if call.kind == "completion":
            assert isinstance(call.request, CompletionRequest)
            if target.remote is not None:
                raise InvalidRequest(f"{target.model} is a remote chat model; use /v1/chat/completions",
                                     param="model")
            return _Plan(target, "completion", completion_body(call.request), None, "max_tokens")
        assert isinstance(call.request, ChatCompletionRequest)
        prepared = prepare_chat(call.request)
        param = "max_completion_tokens" if call.request.max_completion_tokens else "max_tokens"
        asked = [m.model_dump(exclude_none=True) for m in call.request.messages] if prepared.branches else None
        return _Plan(target, "chat", prepared.body, prepared, param, asked)

    def _prompt_checks(self, engine: Any, plan: _Plan) -> bool:
        """The checks that need no token count; True when the exact count is still needed."""
        check_max_tokens(engine.n_ctx, plan.max_tokens, plan.max_tokens_param)
        if plan.kind == "completion":
            prompt = plan.body["prompt"]
            if isinstance(prompt, list):
                check_budget(engine.n_ctx, len(prompt), plan.max_tokens)
                return False
            return True
        return not surely_fits(engine.n_ctx, plan.body["messages"], plan.max_tokens)

    def _decide(self, engine: Any, plan: _Plan) -> dict[str, Any] | None:
        """``tool_choice: "auto"``: decide between a call and a direct answer before generating,
        then generate under the chosen branch. Greedy decoding alone let the 0.5B model drift
        into prose for every request (0 of 18 due calls made), so the decision takes two
        signals: how close the request is to a tool's description (the nano encoder), and the
        probability the model gives each way the reply can start (one short constrained
        pass). Right after a tool result the model answers unless it is sure it needs another
        call. Returns what was decided, or None when there was nothing to decide."""
        prepared = plan.prepared
        if prepared is None or not prepared.branches:
            return None
        from litegate.chat.tools import ANSWER_PREFIX, CALL_PREFIX
        from litegate.tiers.scoring import LabelScorer

        scorer = self._deciders.get(id(engine))
        if scorer is None or scorer.engine is not engine:
            scorer = self._deciders[id(engine)] = LabelScorer(engine, [CALL_PREFIX, ANSWER_PREFIX])
        scores, _ = scorer.score(plan.body["messages"])
        p_call = float(scores[CALL_PREFIX])
        request = plan.request_messages or []
        after_result = bool(request) and request[-1].get("role") == "tool"
        match = self._tool_match(request, prepared.functions)
        if after_result:
            call = p_call >= TOOL_CALL_AFTER_RESULT
        else:
            call = p_call >= self.tool_call_threshold or (match is not None and match >= self.tool_match)
        prepared.choose("call" if call else "answer")
        plan.body = prepared.body
        return {"p_call": round(p_call, 4), "tool_match": None if match is None else round(match, 4),
                "after_result": after_result, "call": call}

    def _ground(self, plan: _Plan, result: dict[str, Any], decision: dict[str, Any] | None) -> bool:
        """After ``auto`` chose a call: drop the calls whose arguments were made up rather than
        taken from the conversation (chat/grounding.py). True when none is left, and the reply
        must be generated again as an answer."""
        if not decision or not decision["call"] or decision["after_result"]:
            return False
        from litegate.chat.grounding import check_calls, conversation_text

        choice = result["choices"][0]
        try:
            calls = json.loads(choice["message"].get("content") or "")["tool_calls"]
        except (ValueError, KeyError, TypeError):
            return False  # cut short by max_tokens: reported as it is
        prepared = plan.prepared
        checks = check_calls(calls, prepared.functions,
                             conversation_text(plan.body["messages"], leave_out=prepared.instruction))
        decision["grounding"] = [c.as_dict() for c in checks]
        kept = [c for c, check in zip(calls, checks) if check.kept]
        if kept:
            if len(kept) < len(calls):
                choice["message"]["content"] = json.dumps({"tool_calls": kept})
            return False
        decision["call"] = False
        prepared.choose("answer")
        plan.body = prepared.body
        return True

    def _tool_match(self, messages: list[dict[str, Any]], functions: list[Any]) -> float | None:
        """The best cosine between the last user message and each tool's name and description."""
        users = [m for m in messages if m.get("role") == "user" and isinstance(m.get("content"), str)]
        if self.encoder_source is None or not users or not functions:
            return None
        texts = [users[-1]["content"]] + [f"{f.name.replace('_', ' ')}: {f.description}" for f in functions]
        vectors = self.encoder_source.encoder.encode(texts)
        return float((vectors[1:] @ vectors[0]).max())

    def _count(self, engine: Any, plan: _Plan) -> int:
        if plan.kind == "completion":
            return engine.count_tokens(plan.body["prompt"])
        return engine.count_chat_tokens(plan.body["messages"])

    # -- async (HTTP front ends) ---------------------------------------------------------------

    async def _engine_for(self, plan: _Plan) -> Any:
        engine = (await self.registry.aengine(plan.target.model))[1]
        if self._prompt_checks(engine, plan):
            check_budget(engine.n_ctx, await engine.acall(self._count, engine, plan), plan.max_tokens)
        return engine

    async def run(self, call: ChatCall, stream: bool = False) -> ChatRun:
        """Check, budget and start a call. Streamed local calls come back as ``chunks``;
        everything else (tool calls, which are known only once the reply is complete, and
        remote tiers) as a finished ``result``."""
        started = time.perf_counter()
        if self._has_files(call):  # OCR and speech are CPU work: off the event loop
            call.documents = await asyncio.to_thread(self.attachments.resolve_messages, call.request.messages,
                                                     self._sees_images(call))
        plan = self._plan(call)
        fallback: tuple[str, str] | None = None
        while plan.target.remote is not None:  # fallback chains end: the config check refuses cycles
            try:
                return await self._remote(call, plan, started, fallback)
            except TierDown as e:
                if not plan.target.remote.config.fallback:
                    raise
                fallback = fallback or (plan.target.model, e.reason)
                plan = self._plan(call, self.target(plan.target.remote.config.fallback))
        engine = await self._engine_for(plan)
        run = ChatRun(model=plan.target.model, kind=plan.kind, prepared=plan.prepared)
        if fallback:
            run.fallback_from, run.fallback_reason = fallback
        if plan.prepared is not None and plan.prepared.branches:
            run.meta["tool_decision"] = await engine.acall(self._decide, engine, plan)
        if stream and not (plan.prepared is not None and plan.prepared.mode == "tools"):
            chunks = await engine.astream_started(plan.kind, plan.body)
            run.chunks = self._watch(chunks, call, plan, started)
            return run
        result = await engine.arun(plan.kind, plan.body)
        if self._ground(plan, result, run.meta.get("tool_decision")):
            result = _spent_too(await engine.arun(plan.kind, plan.body), result)
        run.result = self._finish(result, call, plan, started, run)
        return run

    async def _remote(self, call: ChatCall, plan: _Plan, started: float,
                      fallback: tuple[str, str] | None = None) -> ChatRun:
        tier = plan.target.remote
        body = {k: v for k, v in plan.body.items() if k != "grammar"}
        if plan.prepared is not None and plan.prepared.compiled is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "reply", "schema": plan.prepared.compiled.schema}}
        if hasattr(tier, "achat"):
            result = await tier.achat(body)
        else:
            result = await asyncio.to_thread(tier.chat, body)
        run = ChatRun(model=plan.target.model, kind=plan.kind, prepared=plan.prepared)
        if fallback:
            run.fallback_from, run.fallback_reason = fallback
        run.result = self._finish(result, call, plan, started, run)
        return run

    async def _watch(self, chunks: AsyncIterator[dict[str, Any]], call: ChatCall, plan: _Plan,
                     started: float) -> AsyncIterator[dict[str, Any]]:
        """Engine chunks with the served model's name; the JSON reply is checked when it ends
        and the call ledgered when its usage passes. Closing it cancels the generation."""
        text: list[str] = []
        check = plan.prepared is not None and plan.prepared.mode == "json"
        try:
            async for chunk in chunks:
                chunk["model"] = plan.target.model
                if check:
                    for c in chunk.get("choices", []):
                        text.append((c.get("delta") or {}).get("content") or "")
                        if c.get("finish_reason") == "stop":
                            plan.prepared.check_text("".join(text))
                if not chunk.get("choices") and "usage" in chunk:
                    latency_ms = round((time.perf_counter() - started) * 1000, 2)
                    chunk.setdefault("litegate", {})["latency_ms"] = latency_ms
                    self._record(chunk.get("id") or "", call, plan.target, chunk["usage"], latency_ms,
                                 chunk.get("timings"))
                yield chunk
        finally:
            await chunks.aclose()

    # -- remote relay (the OpenAI route passes a remote's bytes through) -----------------------

    def relay_tier(self, name: str | None) -> Any:
        """The remote tier that relays chat requests for ``name``, if any."""
        tier = self.tiers.get(name or self.default_model)
        return tier if tier is not None and hasattr(tier, "astream") else None

    async def relay(self, call: ChatCall, raw_body: dict[str, Any], stream: bool
                    ) -> dict[str, Any] | AsyncIterator[bytes] | ChatRun:
        """Pass an OpenAI-shaped body to the remote tier as is: a finished reply, the remote's
        SSE bytes, or — when the tier is down and has a fallback — a ChatRun on the fallback."""
        started = time.perf_counter()
        target = self.target(call.request.model)
        tier = target.remote
        body = {k: v for k, v in raw_body.items() if k != "model"}
        try:
            if stream:
                wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                body["stream_options"] = {"include_usage": True}  # for the ledger; dropped if unasked
                chunks = tier.astream(body)
                try:
                    first = await anext(chunks)
                except StopAsyncIteration:
                    raise TierDown(tier.name, "the remote stream ended at once") from None
                return self._relay_stream(first, chunks, wants_usage, call, target, started)
            result = await tier.achat(body)
        except RemoteRejected:
            raise
        except TierDown as e:
            if not tier.config.fallback:
                raise
            fallback_call = ChatCall(call.request.model_copy(update={"model": tier.config.fallback}),
                                     call.api, call.feature, call.api_key)
            run = await self.run(fallback_call, stream=False)
            run.fallback_from, run.fallback_reason = target.model, e.reason
            run.result.setdefault("litegate", {}).update(fallback_from=target.model, fallback_reason=e.reason)
            return run
        result["model"] = target.model
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        result.setdefault("litegate", {})["latency_ms"] = latency_ms
        self._record(result.get("id") or "", call, target, result.get("usage"), latency_ms)
        return result

    async def _relay_stream(self, first: bytes, rest: AsyncIterator[bytes], wants_usage: bool, call: ChatCall,
                            target: Target, started: float) -> AsyncIterator[bytes]:
        seen: dict[str, Any] = {}
        buffer = first
        try:
            async for piece in rest:
                buffer += piece
                *events, buffer = _SSE_EVENT_END.split(buffer)
                out = [e for e in events if _note_usage(e, seen) or wants_usage]
                if out:
                    yield b"\n\n".join(out) + b"\n\n"
            *events, buffer = _SSE_EVENT_END.split(buffer)
            out = [e for e in events if _note_usage(e, seen) or wants_usage]
            if out:
                yield b"\n\n".join(out) + b"\n\n"
            if buffer:
                yield buffer
        finally:  # ledgered even when the client hangs up as soon as it has read [DONE]
            self._record(seen.get("id") or "remote_" + secrets.token_hex(8), call, target, seen.get("usage"),
                         (time.perf_counter() - started) * 1000)

    # -- sync (Python API, CLI) ---------------------------------------------------------------

    def run_sync(self, call: ChatCall, on_chunk: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        """The same path, blocking. With ``on_chunk`` the reply is streamed (return True from
        it to cancel); the finished reply (or the usage chunk, when streamed) is returned."""
        started = time.perf_counter()
        if self._has_files(call):
            call.documents = self.attachments.resolve_messages(call.request.messages, self._sees_images(call))
        plan = self._plan(call)
        if plan.target.remote is not None:
            body = {k: v for k, v in plan.body.items() if k != "grammar"}
            schema = plan.prepared.compiled if plan.prepared is not None else None
            result = plan.target.remote.chat(body, schema=schema)
            return self._finish(result, call, plan, started, ChatRun(plan.target.model, plan.kind, plan.prepared))
        engine = self.registry.engine(plan.target.model)
        if self._prompt_checks(engine, plan):
            check_budget(engine.n_ctx, self._count(engine, plan), plan.max_tokens)
        run = ChatRun(plan.target.model, plan.kind, plan.prepared)
        if plan.prepared is not None and plan.prepared.branches:
            run.meta["tool_decision"] = self._decide(engine, plan)
        if on_chunk is None or (plan.prepared is not None and plan.prepared.mode == "tools"):
            result = engine.run(plan.kind, plan.body)
            if self._ground(plan, result, run.meta.get("tool_decision")):
                result = _spent_too(engine.run(plan.kind, plan.body), result)
            return self._finish(result, call, plan, started, run)
        last: dict[str, Any] = {}

        def relay(chunk: dict[str, Any]) -> bool:
            chunk["model"] = plan.target.model
            if not chunk.get("choices") and "usage" in chunk:
                last.update(chunk)
            return bool(on_chunk(chunk))

        engine.stream(plan.kind, plan.body, relay)
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        self._record(last.get("id") or "", call, plan.target, last.get("usage"), latency_ms, last.get("timings"))
        return last

    # -- finishing ------------------------------------------------------------------------------

    def _finish(self, result: dict[str, Any], call: ChatCall, plan: _Plan, started: float,
                run: ChatRun) -> dict[str, Any]:
        if plan.prepared is not None:
            result = plan.prepared.finish(result)
        result["model"] = plan.target.model
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        meta = result.setdefault("litegate", {})
        meta["latency_ms"] = latency_ms
        if run.meta.get("tool_decision") is not None:
            meta["tool_decision"] = run.meta["tool_decision"]
        if run.fallback_from:
            meta.update(fallback_from=run.fallback_from, fallback_reason=run.fallback_reason)
        if call.documents is not None and call.documents.documents:
            meta["documents"] = call.documents.summary()
        self._record(result.get("id") or "", call, plan.target, result.get("usage"), latency_ms,
                     result.get("timings"))
        return result

    def _record(self, call_id: str, call: ChatCall, target: Target, usage: dict[str, Any] | None,
                latency_ms: float, timings: dict[str, Any] | None = None) -> None:
        if self.accountant is None:
            return
        spent = Usage.of(usage, timings)
        cost = target.price.cost(spent, latency_ms / 1000.0)
        call_id = call_id or "chat_" + secrets.token_hex(12)
        if call.documents is not None and call.documents.documents:
            cost += call.documents.cost_usd
            self.accountant.documents(call_id, call.documents.usage())
        self.accountant.chat(call_id, call.api, target.tier, target.model,
                             usage, latency_ms, cost, feature=call.feature, api_key=call.api_key,
                             engine_ms=spent.engine_ms)


_SSE_EVENT_END = re.compile(rb"\r?\n\r?\n")


def _spent_too(result: dict[str, Any], dropped: dict[str, Any]) -> dict[str, Any]:
    """``result`` with the tokens and time of a generation that was thrown away added to its
    usage and timings, so the ledger prices both."""
    usage, before = result.get("usage"), dropped.get("usage") or {}
    if isinstance(usage, dict):
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            if isinstance(usage.get(key), int) and isinstance(before.get(key), int):
                usage[key] += before[key]
    timings, earlier = result.get("timings"), dropped.get("timings") or {}
    if isinstance(timings, dict):
        for key in ("prompt_ms", "predicted_ms"):
            if isinstance(timings.get(key), (int, float)) and isinstance(earlier.get(key), (int, float)):
                timings[key] += earlier[key]
    return result


def _note_usage(event: bytes, seen: dict[str, Any]) -> bool:
    """Remember a relayed SSE event's id and usage; False for the usage-only event (the
    relay drops it unless the client asked for usage)."""
    if not event.startswith(b"data: {"):
        return True
    try:
        chunk = json.loads(event[6:])
    except ValueError:
        return True
    seen.setdefault("id", chunk.get("id"))
    if chunk.get("usage"):
        seen["usage"] = chunk["usage"]
        return bool(chunk.get("choices"))
    return True
