"""One llama.cpp model in-process, through xllamacpp's embedded C++ server.

xllamacpp runs llama.cpp's own server loop (continuous batching over ``parallel`` slots,
prompt cache, grammar-constrained sampling) on a native thread; its handlers release the
GIL, so Python threads submit requests concurrently and the C++ loop batches them.
Streaming handlers call back once per chunk; returning True from the callback cancels
the generation, which is how a client that hangs up stops burning CPU.

The same C++ server also listens on a private loopback port, guarded by a random API key,
for the few routes the handlers do not expose (tokenize, chat-template token counts).

Why one module (over 400 lines): one engine's sync calls, streams and asyncio bridges share its
threads, admission and deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import secrets
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from litegate.compute import DEFAULT_POLL
from litegate.errors import (
    ContextLengthExceeded,
    DeadlineExceeded,
    EngineError,
    InvalidRequest,
    ModelFileError,
    Overloaded,
)

Kind = Literal["chat", "completion"]
_END = object()
_admission = threading.local()  # set while a thread runs an admitted request
# "batch" while a batch line runs (litegate.server.internal): admitted only into a free slot
PRIORITY: contextvars.ContextVar[str] = contextvars.ContextVar("litegate_priority", default="interactive")


@dataclass(frozen=True)
class EngineOptions:
    threads: int
    ctx: int
    parallel: int
    verbosity: int = 0
    # speculative decoding: "none", "draft" (a smaller model of the same tokenizer proposes
    # tokens, path in ``draft``) or "ngram" (tokens are proposed from n-grams already in the
    # prompt and output: free when the output copies the input, as extraction does)
    speculative: str = "none"
    draft: Path | None = None
    draft_max: int = 16  # most tokens proposed per step
    draft_p_min: float = 0.75  # the draft stops proposing when its own token is less likely
    ngram_n: int = 5  # n-gram mode: the lookup key length in tokens
    queue: int = 32  # requests that may wait for a slot; beyond parallel + queue, new ones get a 503
    deadline_s: float = 300.0  # a streamed generation running longer than this (from its first chunk) is stopped
    prompt_cache_mb: int = 512  # llama.cpp's host-RAM cache of prompt states (its own default is 8 GiB)
    mmproj: Path | None = None  # a multimodal projector GGUF for this model (images in chat messages)
    poll: int = DEFAULT_POLL  # busy-wait between computations, 0-100 (litegate.compute: why 0)


def _raise_for_engine_error(body: dict[str, Any]) -> None:
    err = body.get("error")
    if not err:
        return
    if isinstance(err, str):
        raise EngineError(err)
    message = str(err.get("message", "engine error"))
    if err.get("type") == "exceed_context_size_error":
        n_prompt, n_ctx = err.get("n_prompt_tokens"), err.get("n_ctx")
        raise ContextLengthExceeded(
            f"the prompt is {n_prompt} tokens but the model's context holds {n_ctx}; "
            "shorten the prompt",
            prompt_tokens=n_prompt,
            n_ctx=n_ctx,
        )
    if int(err.get("code", 500)) == 400:
        raise InvalidRequest(message)
    raise EngineError(message)


def assemble_chat(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """A streamed chat reply as the non-streamed response body (one choice)."""
    text: list[str] = []
    reasoning: list[str] = []
    finish = None
    head: dict[str, Any] = {}
    tail: dict[str, Any] = {}
    for chunk in chunks:
        if not head:
            head = {k: chunk[k] for k in ("id", "created", "model", "system_fingerprint") if k in chunk}
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text.append(delta.get("content") or "")
            reasoning.append(delta.get("reasoning_content") or "")
            finish = choice.get("finish_reason") or finish
        for key in ("usage", "timings"):
            if chunk.get(key) is not None:
                tail[key] = chunk[key]
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text)}
    if any(reasoning):
        message["reasoning_content"] = "".join(reasoning)
    return {"choices": [{"finish_reason": finish, "index": 0, "message": message}], **head,
            "object": "chat.completion", **tail}


def _speculation(params: Any, options: EngineOptions) -> None:
    import xllamacpp

    kinds = xllamacpp.common_speculative_type
    spec = params.speculative
    if options.speculative == "draft":
        if options.draft is None:
            raise InvalidRequest("speculative decoding with a draft model needs the draft model's path")
        spec.types = [kinds.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE]
        spec.draft.mparams.path = str(options.draft)
        spec.draft.n_max = options.draft_max
        spec.draft.n_min = 0
        spec.draft.p_min = options.draft_p_min
        spec.draft.cpuparams.n_threads = options.threads
        spec.draft.cpuparams_batch.n_threads = options.threads
        spec.draft.cpuparams.poll = spec.draft.cpuparams_batch.poll = options.poll
    elif options.speculative == "ngram":
        spec.types = [kinds.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE]
        spec.ngram_simple.size_n = options.ngram_n
        spec.ngram_simple.size_m = options.draft_max
    elif options.speculative != "none":
        raise InvalidRequest(f"unknown speculative decoding mode {options.speculative!r}; use none, draft or ngram")


class LlamaEngine:
    """A loaded GGUF model. Thread-safe; create one per model and close it when done."""

    def __init__(self, path: Path, options: EngineOptions):
        import xllamacpp  # deferred: importing it loads the native library

        self.path = Path(path)
        self.options = options
        self._api_key = secrets.token_urlsafe(24)
        params = xllamacpp.CommonParams()
        params.model.path = str(self.path)
        params.n_ctx = options.ctx
        params.n_parallel = options.parallel
        # One KV pool shared by all slots: a single long request may use the whole
        # context, and idle slots cost nothing.
        params.kv_unified = True
        # llama.cpp keeps finished prompts' states in host RAM for reuse, by default up to 8 GiB
        # per model (16 GiB with lite and pro on a 24 GiB machine): bounded here.
        params.cache_ram_mib = options.prompt_cache_mb
        params.cpuparams.n_threads = options.threads
        params.cpuparams_batch.n_threads = options.threads
        params.cpuparams.poll = params.cpuparams_batch.poll = options.poll
        params.port = 0  # the private listener takes any free port
        params.hostnames = ["127.0.0.1"]
        params.api_keys = [self._api_key]
        params.verbosity = options.verbosity
        params.endpoint_metrics = True
        if options.mmproj is not None:
            params.mmproj.path = str(options.mmproj)
        _speculation(params, options)
        try:
            self._server = xllamacpp.Server(params)
        except RuntimeError as e:
            raise ModelFileError(f"llama.cpp could not load {self.path}: {e}") from e
        self._http = httpx.Client(
            base_url=self._server.listening_address,
            headers={"Authorization": f"Bearer {self._api_key}"},
            timeout=60.0,
        )
        meta = self._http.get("/v1/models").json()["data"][0].get("meta", {})
        self.n_ctx: int = int(meta.get("n_ctx", options.ctx))
        self.n_ctx_train: int = int(meta.get("n_ctx_train", 0))
        self.n_params: int = int(meta.get("n_params", 0))
        self.size_bytes: int = int(meta.get("size", 0))
        # Each in-flight request holds a thread while the C++ loop serves it; the pool is
        # larger than the slot count so that queued requests wait in llama.cpp, not here.
        self._executor = ThreadPoolExecutor(
            max_workers=max(8, options.parallel * 8), thread_name_prefix=f"engine-{self.path.stem[:16]}"
        )
        self._active = 0
        self._admitted = 0  # requests accepted and not finished: generating, or waiting for a slot
        self._active_lock = threading.Lock()
        self._closed = False

    # -- introspection -------------------------------------------------------------------

    @property
    def active_requests(self) -> int:
        """Requests currently inside the engine (generating or queued for a slot)."""
        return self._active

    @property
    def listening_address(self) -> str:
        """The private llama.cpp HTTP listener (API key protected); used by benchmarks."""
        return str(self._server.listening_address)

    @property
    def api_key(self) -> str:
        return self._api_key

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        r = self._http.post("/tokenize", json={"content": text, "add_special": special, "parse_special": special})
        r.raise_for_status()
        return list(r.json()["tokens"])

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def count_chat_tokens(self, messages: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> int:
        """Prompt tokens of a chat request after the model's chat template is applied."""
        r = self._http.post("/v1/chat/completions/input_tokens", json={"messages": messages, **(extra or {})})
        body = r.json()
        _raise_for_engine_error(body)
        return int(body["input_tokens"])

    def metrics(self) -> str:
        return str(self._server.handle_metrics())

    # -- blocking calls ------------------------------------------------------------------

    def _track(self, delta: int) -> None:
        with self._active_lock:
            self._active += delta

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        """Admission control for one request: refused with Overloaded (503, Retry-After) when
        the slots and the waiting line are full, so a burst gets a fast answer instead of a
        minute in line. Re-entrant within a thread (an async call's executor thread)."""
        if getattr(_admission, "inside", False):
            yield
            return
        batch = PRIORITY.get() == "batch"
        # batch work takes only a free slot, leaving one for interactive requests when there are two or more
        limit = max(1, self.options.parallel - 1) if batch else self.options.parallel + self.options.queue
        with self._active_lock:
            if self._admitted >= limit:
                if batch:
                    raise Overloaded(f"{self.path.stem}: no free slot for batch work", retry_after=0.2)
                raise Overloaded(f"{self.path.stem} is busy: {self.options.parallel} requests generating and "
                                 f"{self.options.queue} waiting (LITEGATE_QUEUE); retry shortly",
                                 retry_after=2.0)
            self._admitted += 1
        _admission.inside = True
        try:
            yield
        finally:
            _admission.inside = False
            with self._active_lock:
                self._admitted -= 1

    def run(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        """One non-streamed request; returns the OpenAI-shaped response body."""
        with self.admitted():
            return self._run(kind, body)

    def _run(self, kind: Kind, body: dict[str, Any], counted: bool = True) -> dict[str, Any]:
        """``counted``: a user's request (active_requests, /healthz); the warm-up is not one."""
        self._check_open()
        step = 1 if counted else 0
        self._track(step)
        try:
            if kind == "chat":
                result = self._server.handle_chat_completions(dict(body, stream=False))
            else:
                result = self._server.handle_completions(dict(body, stream=False))
        finally:
            self._track(-step)
        if not isinstance(result, dict):
            raise EngineError(f"engine returned {type(result).__name__}, expected a JSON object")
        _raise_for_engine_error(result)
        return result

    def stream(self, kind: Kind, body: dict[str, Any], on_chunk: Callable[[dict[str, Any]], bool]) -> None:
        """One streamed request; ``on_chunk`` gets each chunk and returns True to cancel."""
        with self.admitted():
            self._stream(kind, body, on_chunk)

    def _stream(self, kind: Kind, body: dict[str, Any], on_chunk: Callable[[dict[str, Any]], bool]) -> None:
        self._check_open()
        error: dict[str, Any] = {}
        first: list[float] = []  # when the first chunk came: the deadline counts from there, not from the queue
        timed_out = threading.Event()

        def callback(chunk: dict[str, Any]) -> bool:
            if isinstance(chunk, dict) and "error" in chunk:
                error.update(chunk)
                return True
            now = time.monotonic()
            if not first:
                first.append(now)
            elif now - first[0] > self.options.deadline_s:
                timed_out.set()  # a runaway request (a costly grammar, say) must not hold a slot forever
                return True
            return bool(on_chunk(chunk))

        body = dict(body, stream=True, stream_options={"include_usage": True})
        self._track(1)
        try:
            if kind == "chat":
                self._server.handle_chat_completions(body, callback)
            else:
                self._server.handle_completions(body, callback)
        finally:
            self._track(-1)
        if error:
            _raise_for_engine_error(error)
        if timed_out.is_set():
            raise DeadlineExceeded(f"the generation ran past the {self.options.deadline_s:g} s decode deadline and "
                                   "was stopped (LITEGATE_DECODE_DEADLINE_S); ask for fewer tokens or a simpler "
                                   "schema")

    # -- asyncio bridges -----------------------------------------------------------------

    async def arun(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        """One non-streamed request from async code. A plain chat request is streamed inside
        and assembled, so that cancelling the awaiting task (its client went away) stops the
        generation at the next token; the others (logprobs, several choices, completions) run
        whole."""
        if kind != "chat" or body.get("logprobs") or body.get("top_logprobs") or (body.get("n") or 1) != 1 \
                or body.get("tools"):
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, contextvars.copy_context().run, self.run, kind, body)
        chunks = [chunk async for chunk in self.astream(kind, body)]
        return assemble_chat(chunks)

    async def astream(self, kind: Kind, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """Async iterator over chunks. Leaving the loop early (or being cancelled because
        the client went away) cancels the generation at the next token."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def on_chunk(chunk: dict[str, Any]) -> bool:
            if cancelled.is_set():
                return True
            loop.call_soon_threadsafe(queue.put_nowait, chunk)
            return False

        future = loop.run_in_executor(self._executor, contextvars.copy_context().run, self.stream, kind, body, on_chunk)
        future.add_done_callback(lambda _f: queue.put_nowait(_END))
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                yield item
            await future  # re-raises an engine error
        finally:
            cancelled.set()

    async def astream_started(self, kind: Kind, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """Like ``astream``, but waits for the first chunk before returning, so that an
        engine error (a prompt too long, say) raises here and can still become an HTTP
        status instead of a broken 200 stream. Closing the iterator cancels the generation."""
        chunks = self.astream(kind, body)
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = None
        except BaseException:
            await chunks.aclose()
            raise

        async def started() -> AsyncGenerator[dict[str, Any], None]:
            try:
                if first is not None:
                    yield first
                async for chunk in chunks:
                    yield chunk
            finally:
                await chunks.aclose()

        return started()

    async def acall(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking helper (tokenize, count) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, contextvars.copy_context().run, fn,
                                                                *args)

    def warm_up(self) -> None:
        """Run one tiny grammar-constrained request: llguidance builds its token index for
        this vocabulary on first use (seconds for a 150k vocabulary), so pay it up front."""
        try:
            self._run("chat", {"messages": [{"role": "user", "content": "{}"}], "max_tokens": 1,  # not admitted
                              "grammar": '%llguidance {}\nstart: %json {"type": "object"}'}, counted=False)
        except Exception:  # noqa: BLE001 - a failed warm-up only means a slower first request
            pass

    # -- lifecycle -----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise EngineError("the engine is closed")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._http.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        server, self._server = self._server, None
        del server  # the C++ destructor stops the loop thread and frees the model

    def __enter__(self) -> LlamaEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
