"""The chat service: the one path under every chat-shaped front end.

OpenAI routes, Gemini routes, Ollama routes, the Python API and ``litegate generate`` all hand
it a validated request and get back a finished reply or a stream of chunks. In between, once:
model name -> tier (every model is reached through a tier: the local engine's or a remote's) ->
request checks -> context budget -> the tier -> reply checks (schema, tool calls) -> ledger row
priced by the tier that answered; a tier that is down hands over to its fallback
(``tiers.fallback``). Sync callers run the same async path on a portal loop. Front ends only
translate shapes.

Why one module (over 400 lines): the checks, the tool decision around a call and the relay
share the plan of one call; budgets (``chat.budget``) and the byte relay (``chat.relay``) are
already their own modules.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from litegate.chat import direction, fanout, pairing
from litegate.chat.budget import check_budget, check_max_tokens, completion_body, surely_fits
from litegate.chat.decision import RELEVANCE_LABELS, call_name_cover, decide, last_user_text, relevance
from litegate.chat.grounding import ask_for_missing, check_calls, conversation_text, kept_calls
from litegate.chat.portal import Portal
from litegate.chat.relay import relay_events
from litegate.chat.request import ChatCompletionRequest, CompletionRequest, PreparedChat, prepare_chat
from litegate.chat.tools import ANSWER_PREFIX, CALL_PREFIX, MAX_PARALLEL_CALLS
from litegate.documents.attachments import MEDIA_PART_TYPES, Attachments
from litegate.engine.llama import LlamaEngine
from litegate.engine.registry import ModelRegistry
from litegate.errors import InvalidRequest, TierDown
from litegate.ledger.accounting import Accountant
from litegate.ledger.pricing import Price, Usage
from litegate.nano.encoders import EncoderRegistry
from litegate.tiers.base import Tier
from litegate.tiers.fallback import FellBack, acall_with_fallback
from litegate.tiers.scoring import LabelScorer

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
    """Where a model name leads: the tier that serves it, under the name replies carry."""

    model: str  # the served name (a local model's) or the remote tier's name
    tier: Tier

    @property
    def price(self) -> Price:
        return self.tier.price

    @property
    def local(self) -> bool:
        """Runs on an engine in this process (context budgets and tool decisions apply)."""
        return "engine" in self.tier.capabilities


@dataclass(frozen=True)
class ModelEntry:
    """One model the chat APIs serve, as every API's model list shows it."""

    name: str
    remote: bool
    aliases: tuple[str, ...] = ()
    loaded: bool = False
    n_ctx: int | None = None  # known once a local model is loaded
    upstream_model: str | None = None  # a remote tier's model at its provider
    circuit: str | None = None  # a remote tier's breaker
    path: Path | None = None  # a local model's file, once resolved


@dataclass
class ChatRun:
    """A started call: ``result`` (finished and ledgered) or ``chunks`` (engine chunks, ledgered
    when the usage chunk passes)."""

    model: str
    kind: Kind
    prepared: PreparedChat | None = None
    result: dict[str, Any] | None = None
    chunks: AsyncGenerator[dict[str, Any], None] | None = None
    fallback_from: str | None = None
    fallback_reason: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def fell_back(self, fell: FellBack | None) -> ChatRun:
        """Note that the call was answered by a fallback (in the reply's ``litegate`` too)."""
        if fell is not None:
            self.fallback_from, self.fallback_reason = fell.tier, fell.reason
            if self.result is not None:
                self.result.setdefault("litegate", {}).update(fallback_from=fell.tier, fallback_reason=fell.reason)
        return self


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
    def __init__(self, registry: ModelRegistry, tiers: Mapping[str, Tier], accountant: Accountant | None = None,
                 default_model: str = "lite", tool_call_threshold: float = TOOL_CALL_THRESHOLD,
                 encoders: EncoderRegistry | None = None, attachments: Attachments | None = None,
                 local_tier: Callable[[str], Tier] | None = None, tool_decision: Any = None):
        self.registry = registry
        self.attachments = attachments  # files in messages -> text
        self.tool_call_threshold = tool_call_threshold
        self.tool_match = TOOL_MATCH
        self.encoders = encoders  # the nano encoders, injected (the default one matches requests to tools)
        self._deciders: dict[int, LabelScorer] = {}
        self._relevance: dict[int, LabelScorer] = {}  # yes/no on whether a tool answers the request
        # the learned call decision (chat/decision.py); None: the fixed thresholds above
        self.tool_decision = tool_decision
        self.tiers = tiers  # every tier by name (remote ones are served by name)
        self.accountant = accountant
        self.default_model = default_model
        self._local_tier = local_tier  # makes a tier for a served model no configured tier runs
        self._adhoc: dict[str, Tier] = {}
        self.portal = Portal("litegate-chat")

    # -- lookup ---------------------------------------------------------------------------------

    def remote_names(self) -> list[str]:
        return [name for name, t in self.tiers.items() if t.remote]

    def models(self) -> list[ModelEntry]:
        """The one model list (remote tiers by name, then the served local models) that the
        OpenAI, Gemini and Ollama model routes render in their own shapes."""
        out = [ModelEntry(name, remote=True, upstream_model=t.config.model,
                          circuit=getattr(getattr(t, "breaker", None), "state", None))
               for name, t in self.tiers.items() if t.remote]
        for served in self.registry.served():
            engine = served.engine
            out.append(ModelEntry(served.name, remote=False, aliases=tuple(served.aliases), loaded=engine is not None,
                                  n_ctx=engine.n_ctx if engine is not None else None, path=served.path))
        return out

    def tier_for(self, name: str | None) -> Tier:
        """The tier a model name leads to: a chat tier by its name, else the tier that runs the
        served model of that name (ModelNotFound, a 404, for anything else)."""
        name = name or self.default_model
        tier = self.tiers.get(name)
        if tier is not None and tier.remote:
            return tier
        served = self.registry.lookup(name).name
        for t in self.tiers.values():
            if getattr(t, "served", None) == served:
                return t
        if served not in self._adhoc:
            if self._local_tier is None:
                raise InvalidRequest(f"no tier serves the model {served!r}", param="model")
            self._adhoc[served] = self._local_tier(served)
        return self._adhoc[served]

    def target(self, name: str | None) -> Target:
        tier = self.tier_for(name)
        return Target(model=getattr(tier, "served", tier.name), tier=tier)

    async def count(self, name: str | None, messages: list[dict[str, Any]]) -> tuple[str, int, int]:
        """(served name, context size, prompt tokens) of ``messages`` for a local model (the
        Gemini API's countTokens and cached contents); a remote model's tokenizer is not here."""
        tier = self.tier_for(name)
        if "engine" not in tier.capabilities:
            raise InvalidRequest(f"{tier.name} is a remote model; token counts are known for local models only",
                                 param="model")
        engine: LlamaEngine = await tier.aengine()  # type: ignore[attr-defined]
        tokens = await engine.acall(engine.count_chat_tokens, messages)
        return getattr(tier, "served", tier.name), engine.n_ctx, int(tokens)

    async def prefill(self, name: str | None, messages: list[dict[str, Any]]) -> None:
        """Compute a prompt prefix's KV state on a local model now (context caching), so the
        first request that shares it finds it cached."""
        tier = self.tier_for(name)
        if "engine" in tier.capabilities:
            await tier.arun("chat", {"messages": messages, "max_tokens": 1, "temperature": 0.0})  # type: ignore[attr-defined]

    def _has_files(self, call: ChatCall) -> bool:
        if call.kind != "chat" or call.documents is not None:
            return False
        assert isinstance(call.request, ChatCompletionRequest)
        for m in call.request.messages:
            if isinstance(m.content, list) and any(p.type in MEDIA_PART_TYPES for p in m.content):
                if self.attachments is None:
                    raise InvalidRequest("files in messages need the document layer, which this service was built "
                                         "without", param="messages")
                return True
        return False

    def _sees_images(self, call: ChatCall) -> bool:
        """Whether the call's model reads images itself (a local model with a projector)."""
        return bool(getattr(self.tier_for(call.request.model), "reads_images", False))

    def _plan(self, call: ChatCall, tier: Tier) -> _Plan:
        target = Target(model=getattr(tier, "served", tier.name), tier=tier)
        if call.kind == "completion":
            assert isinstance(call.request, CompletionRequest)
            if not target.local:
                raise InvalidRequest(f"{target.model} is a remote chat model; use /v1/chat/completions",
                                     param="model")
            return _Plan(target, "completion", completion_body(call.request), None, "max_tokens")
        assert isinstance(call.request, ChatCompletionRequest)
        prepared = prepare_chat(call.request)
        param = "max_completion_tokens" if call.request.max_completion_tokens else "max_tokens"
        asked = [m.model_dump(exclude_none=True) for m in call.request.messages] if prepared.branches else None
        return _Plan(target, "chat", prepared.body, prepared, param, asked)

    def _prompt_checks(self, engine: LlamaEngine, plan: _Plan) -> bool:
        """The checks that need no token count; True when the exact count is still needed."""
        check_max_tokens(engine.n_ctx, plan.max_tokens, plan.max_tokens_param)
        if plan.kind == "completion":
            prompt = plan.body["prompt"]
            if isinstance(prompt, list):
                check_budget(engine.n_ctx, len(prompt), plan.max_tokens)
                return False
            return True
        return not surely_fits(engine.n_ctx, plan.body["messages"], plan.max_tokens)

    def _decide(self, engine: LlamaEngine, plan: _Plan) -> dict[str, Any] | None:
        """``tool_choice: "auto"``: decide between a call and a direct answer before generating,
        then generate under the chosen branch. Greedy decoding alone let the 0.5B model drift
        into prose for every request (0 of 18 due calls made), so the decision takes two
        signals: how close the request is to a tool's description (the nano encoder), and the
        probability the model gives each way the reply can start (one short constrained
        pass), and, only where it can tip the learned decision, the model's yes/no on whether the
        best-matching tool can answer the request (a second one-token pass). Right after a tool
        result the model answers unless it is sure it needs another call. Returns what was
        decided, or None when there was nothing to decide."""
        prepared = plan.prepared
        if prepared is None or not prepared.branches:
            return None
        scorer = _scorer(self._deciders, engine, [CALL_PREFIX, ANSWER_PREFIX])
        scores, _ = scorer.score(plan.body["messages"])
        request = plan.request_messages or []
        after_result = bool(request) and request[-1].get("role") == "tool"
        encoder = self.encoders.default if self.encoders is not None else None
        info = decide(self.tool_decision, float(scores[CALL_PREFIX]), after_result, request, prepared.functions,
                      encoder, rule=(self.tool_call_threshold, self.tool_match),
                      relevant=lambda text, fn: relevance(_scorer(self._relevance, engine, RELEVANCE_LABELS), text,
                                                          fn))
        call = info["call"]
        prepared.choose("call" if call else "answer")
        plan.body = prepared.body
        return info

    def _ground(self, plan: _Plan, result: dict[str, Any], decision: dict[str, Any] | None) -> bool:
        """After ``auto`` chose a call: drop the calls whose arguments were made up rather than
        taken from the conversation (chat/grounding.py). True when none is left, and the reply
        must be generated again as an answer."""
        if not decision or not decision["call"] or decision["after_result"]:
            return False
        choice = result["choices"][0]
        try:
            calls = json.loads(choice["message"].get("content") or "")["tool_calls"]
        except (ValueError, KeyError, TypeError):
            return False  # cut short by max_tokens: reported as it is
        prepared = plan.prepared
        assert prepared is not None
        checks = check_calls(calls, prepared.functions,
                             conversation_text(plan.body["messages"], leave_out=prepared.instruction))
        decision["grounding"] = [c.as_dict() for c in checks]
        kept = kept_calls(calls, checks)
        made_up = sum(c.made_up for c in checks)
        if self.tool_decision is not None and self.tool_decision.declines_written(
                decision.get("p_due"), made_up, lambda: self._called_cover(plan, calls, decision)):
            kept, decision["declined_after_call"] = [], True  # a due call rarely made up values or misses the name
        if kept:
            if kept != calls:
                choice["message"]["content"] = json.dumps({"tool_calls": kept}, ensure_ascii=False)
            return False
        decision["call"] = False
        prepared.choose("answer")
        plan.body = prepared.body
        question = None if decision.get("declined_after_call") else ask_for_missing(calls, checks, prepared.functions)
        if question:  # values the user did not give are asked for, not invented
            choice["message"]["content"] = json.dumps({"content": question}, ensure_ascii=False)
            return False
        return True

    def _called_cover(self, plan: _Plan, calls: list[dict[str, Any]], decision: dict[str, Any]) -> float:
        """How well the request covers the name of the tool the first call chose (decision.py)."""
        request = last_user_text(plan.request_messages or [])
        fn = next((f for f in plan.prepared.functions if f.name == calls[0].get("name")), None) \
            if plan.prepared is not None and calls else None
        if self.encoders is None or fn is None or not request:
            return 1.0  # nothing to read: the cover does not count against the call
        decision["name_cover"] = round(call_name_cover(self.encoders.default, request, fn), 4)
        return float(decision["name_cover"])

    async def _fan_out(self, tier: Tier, plan: _Plan, result: dict[str, Any],
                       decision: dict[str, Any] | None) -> dict[str, Any]:
        """A reply of tool calls that leaves values the request states unused is generated again
        asking for more calls; the calls added are kept when they use those values
        (chat/fanout.py)."""
        prepared = plan.prepared
        request = last_user_text(plan.request_messages or [])
        if prepared is None or not prepared.parallel or prepared.call_schema is None or not request \
                or (decision is not None and decision["after_result"]):
            return result
        calls, original, rounds = _reply_calls(result), prepared.compiled, []
        for _ in range(fanout.MAX_ROUNDS):
            want = fanout.calls_wanted(request, prepared.functions, calls or [], MAX_PARALLEL_CALLS)
            if not want:
                break
            # exactly ``want``: asked only for "at least", the model went on repeating its calls
            # until the token budget cut the reply, and a cut reply held no calls at all
            prepared.at_least(want, at_most=want)
            plan.body = prepared.body
            again = await tier.arun(plan.kind, plan.body)  # type: ignore[attr-defined]
            written = _reply_calls(again)
            if written is None:  # cut short: the calls it completed still count
                written = fanout.complete_calls(again["choices"][0]["message"].get("content") or "") or []
            added = fanout.kept(calls or [], written, request, prepared.functions)
            rounds.append({"wanted": want, "written": len(written), "kept": len(added) - len(calls or [])})
            if len(added) <= len(calls or []):
                result = _spent_too(result, again)
                break
            again["choices"][0].update(message=dict(again["choices"][0]["message"], content=json.dumps(
                {"tool_calls": added}, ensure_ascii=False)), finish_reason="stop")
            result, calls = _spent_too(again, result), added
            if decision is not None:
                decision["fanned_out"] = len(added)
        if decision is not None and rounds:
            decision["fan_out_rounds"] = rounds
        if prepared.compiled is not original and original is not None:  # the reply is read by the usual grammar
            prepared.compiled = original
            plan.body = prepared.body = dict(prepared.body, grammar=original.grammar)
        return result

    def _count(self, engine: LlamaEngine, plan: _Plan) -> int:
        if plan.kind == "completion":
            return engine.count_tokens(plan.body["prompt"])
        return engine.count_chat_tokens(plan.body["messages"])

    # -- running ---------------------------------------------------------------------------------

    async def run(self, call: ChatCall, stream: bool = False) -> ChatRun:
        """Check, budget and start a call on the tier its model names, or on that tier's
        fallbacks while each is down. Streamed local calls come back as ``chunks``; everything
        else (tool calls, which are known only once the reply is complete, and remote tiers)
        as a finished ``result``."""
        started = time.perf_counter()
        first = self.tier_for(call.request.model)
        if self._has_files(call):  # OCR and speech are CPU work: off the event loop
            assert self.attachments is not None and isinstance(call.request, ChatCompletionRequest)
            call.documents = await asyncio.to_thread(self.attachments.resolve_messages, call.request.messages,
                                                     self._sees_images(call))
        run, fell = await acall_with_fallback(first, lambda tier: self._run_on(call, tier, stream, started),
                                              self.tier_for)
        return run.fell_back(fell)

    async def _run_on(self, call: ChatCall, tier: Tier, stream: bool, started: float) -> ChatRun:
        """One attempt on one tier."""
        plan = self._plan(call, tier)
        run = ChatRun(model=plan.target.model, kind=plan.kind, prepared=plan.prepared)
        if not plan.target.local:
            body = {k: v for k, v in plan.body.items() if k != "grammar"}
            schema = plan.prepared.compiled if plan.prepared is not None else None
            run.result = self._finish(await tier.achat(body, schema), call, plan, started, run)  # type: ignore[attr-defined]
            return run
        engine: LlamaEngine = await tier.aengine()  # type: ignore[attr-defined]
        if self._prompt_checks(engine, plan):
            check_budget(engine.n_ctx, await engine.acall(self._count, engine, plan), plan.max_tokens)
        if plan.prepared is not None and plan.prepared.branches:
            run.meta["tool_decision"] = await engine.acall(self._decide, engine, plan)
        if stream and not (plan.prepared is not None and plan.prepared.mode == "tools"):
            run.chunks = self._watch(await tier.astream(plan.kind, plan.body), call, plan, started)  # type: ignore[attr-defined]
            return run
        result = await tier.arun(plan.kind, plan.body)  # type: ignore[attr-defined]
        result = await self._fan_out(tier, plan, result, run.meta.get("tool_decision"))
        _put_in_place(result, plan, run.meta.get("tool_decision"))
        if self._ground(plan, result, run.meta.get("tool_decision")):
            result = _spent_too(await tier.arun(plan.kind, plan.body), result)  # type: ignore[attr-defined]
        run.result = self._finish(result, call, plan, started, run)
        return run

    async def _watch(self, chunks: AsyncGenerator[dict[str, Any], None], call: ChatCall, plan: _Plan,
                     started: float) -> AsyncGenerator[dict[str, Any], None]:
        """Engine chunks with the served model's name; the JSON reply is checked when it ends
        and the call ledgered when its usage passes. Closing it cancels the generation."""
        text: list[str] = []
        prepared = plan.prepared if plan.prepared is not None and plan.prepared.mode == "json" else None
        try:
            async for chunk in chunks:
                chunk["model"] = plan.target.model
                if prepared is not None:
                    for c in chunk.get("choices", []):
                        text.append((c.get("delta") or {}).get("content") or "")
                        if c.get("finish_reason") == "stop":
                            prepared.check_text("".join(text))
                if not chunk.get("choices") and "usage" in chunk:
                    latency_ms = round((time.perf_counter() - started) * 1000, 2)
                    chunk.setdefault("litegate", {})["latency_ms"] = latency_ms
                    self._record(chunk.get("id") or "", call, plan.target, chunk["usage"], latency_ms,
                                 chunk.get("timings"))
                yield chunk
        finally:
            await chunks.aclose()

    # -- remote relay (the OpenAI route passes a remote's bytes through) -----------------------

    def relay_tier(self, name: str | None) -> Tier | None:
        """The tier that relays chat requests for ``name`` as they are (capability ``relay``)."""
        tier = self.tiers.get(name or self.default_model)
        return tier if tier is not None and "relay" in tier.capabilities else None

    async def relay(self, call: ChatCall, raw_body: dict[str, Any], stream: bool
                    ) -> dict[str, Any] | AsyncIterator[bytes] | ChatRun:
        """Pass an OpenAI-shaped body to the remote tier as is: a finished reply, or the
        remote's SSE bytes; when the tier is down, a ChatRun on its fallback."""
        started = time.perf_counter()
        first = self.relay_tier(call.request.model)
        if first is None:
            raise InvalidRequest(f"{call.request.model!r} is not a relayed model", param="model")

        async def attempt(tier: Tier) -> dict[str, Any] | AsyncIterator[bytes] | ChatRun:
            if tier is first:
                return await self._relay_once(call, tier, raw_body, stream, started)
            return await self._run_on(call, tier, False, started)

        out, fell = await acall_with_fallback(first, attempt, self.tier_for)
        return out.fell_back(fell) if isinstance(out, ChatRun) else out

    async def _relay_once(self, call: ChatCall, tier: Any, raw_body: dict[str, Any], stream: bool,
                          started: float) -> dict[str, Any] | AsyncIterator[bytes]:
        target = Target(model=tier.name, tier=tier)
        body = {k: v for k, v in raw_body.items() if k != "model"}
        if stream:
            wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            body["stream_options"] = {"include_usage": True}  # for the ledger; dropped if unasked
            chunks = tier.arelay_stream(body)
            try:
                first = await anext(chunks)
            except StopAsyncIteration:
                raise TierDown(tier.name, "the remote stream ended at once") from None
            return self._relay_stream(first, chunks, wants_usage, call, target, started)
        result: dict[str, Any] = await tier.arelay(body)
        result["model"] = target.model
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        result.setdefault("litegate", {})["latency_ms"] = latency_ms
        cost = self._record(result.get("id") or "", call, target, result.get("usage"), latency_ms)
        if cost is not None:
            result["litegate"]["cost_usd"] = round(cost, 9)
        return result

    async def _relay_stream(self, first: bytes, rest: AsyncIterator[bytes], wants_usage: bool, call: ChatCall,
                            target: Target, started: float) -> AsyncIterator[bytes]:
        seen: dict[str, Any] = {}
        try:
            async for piece in relay_events(first, rest, wants_usage, seen):
                yield piece
        finally:  # ledgered even when the client hangs up as soon as it has read [DONE]
            self._record(seen.get("id") or "remote_" + secrets.token_hex(8), call, target, seen.get("usage"),
                         (time.perf_counter() - started) * 1000)

    # -- sync (Python API, CLI) ---------------------------------------------------------------

    def run_sync(self, call: ChatCall, on_chunk: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        """The same async path, blocking (on the portal's loop). With ``on_chunk`` the reply
        is streamed (return True from it to cancel); the finished reply (or the usage chunk,
        when streamed) is returned."""
        return self.portal.run(self._to_end(call, on_chunk))

    async def _to_end(self, call: ChatCall, on_chunk: Callable[[dict[str, Any]], bool] | None) -> dict[str, Any]:
        run = await self.run(call, stream=on_chunk is not None)
        if run.chunks is None:
            assert run.result is not None
            return run.result
        assert on_chunk is not None
        last: dict[str, Any] = {}
        try:
            async for chunk in run.chunks:
                if not chunk.get("choices") and "usage" in chunk:
                    last.update(chunk)
                if on_chunk(chunk):
                    break
        finally:
            await run.chunks.aclose()
        if run.fallback_from:
            last.setdefault("litegate", {}).update(fallback_from=run.fallback_from,
                                                   fallback_reason=run.fallback_reason)
        return last

    def close(self) -> None:
        """Close what sync calls opened on the portal's loop (remote sessions), then the loop."""
        for tier in self.tiers.values():
            if tier.remote:
                try:
                    self.portal.run(tier.aclose())
                except Exception:  # noqa: BLE001 - closing must not fail shutdown
                    pass
        self.portal.close()

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
        cost = self._record(result.get("id") or "", call, plan.target, result.get("usage"), latency_ms,
                            result.get("timings"))
        if cost is not None:
            meta["cost_usd"] = round(cost, 9)  # as a task response says it (the playground shows both)
        return result

    def _record(self, call_id: str, call: ChatCall, target: Target, usage: dict[str, Any] | None,
                latency_ms: float, timings: dict[str, Any] | None = None) -> float | None:
        if self.accountant is None:
            return None
        spent = Usage.of(usage, timings)
        cost = target.price.cost(spent, latency_ms / 1000.0)
        call_id = call_id or "chat_" + secrets.token_hex(12)
        if call.documents is not None and call.documents.documents:
            cost += call.documents.cost_usd
            self.accountant.documents(call_id, call.documents.usage())
        self.accountant.chat(call_id, call.api, target.tier.name, target.model,
                             usage, latency_ms, cost, feature=call.feature, api_key=call.api_key,
                             engine_ms=spent.engine_ms)
        return cost


def _reply_calls(result: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The tool calls of a raw constrained reply; None for an answer or a reply cut short."""
    try:
        calls = json.loads(result["choices"][0]["message"].get("content") or "")["tool_calls"]
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    return calls if isinstance(calls, list) else None


def _scorer(cache: dict[int, LabelScorer], engine: LlamaEngine, labels: list[str]) -> LabelScorer:
    """``cache``'s scorer of ``labels`` for ``engine``, made the first time it is asked for (and
    again for a new engine at a reused id)."""
    scorer = cache.get(id(engine))
    if scorer is None or scorer.engine is not engine:
        scorer = cache[id(engine)] = LabelScorer(engine, labels)
    return scorer


def _put_in_place(result: dict[str, Any], plan: _Plan, decision: dict[str, Any] | None) -> None:
    """Numeric arguments exchanged where the request names each for the other's parameter
    (chat/direction.py), and values a "respectively" request pairs put in their calls
    (chat/pairing.py)."""
    request, calls = last_user_text(plan.request_messages or []), _reply_calls(result)
    if not request or not calls or (decision is not None and decision["after_result"]):
        return
    fixed = pairing.pair_respectively([direction.put_right(c, request) for c in calls], request)
    if fixed != calls:
        result["choices"][0]["message"]["content"] = json.dumps({"tool_calls": fixed}, ensure_ascii=False)
        if decision is not None:
            decision["put_in_place"] = sum(a != b for a, b in zip(fixed, calls))


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
