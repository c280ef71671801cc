"""Fakes for the fast layer, in the spirit of httpx's MockTransport: the real runtime, chat
service, runner and tiers, with the engine, the encoder and remote providers replaced by
small objects whose answers a test scripts. They plug in where the real ones do
(``runtime.build(registry=..., encoder_factory=...)``, a tier kind), so the code path is the
one production runs."""

from __future__ import annotations

import asyncio
import itertools
import json
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from litegate.config import Settings
from litegate.configfile import Config
from litegate.engine.registry import ServedModel
from litegate.errors import ModelNotFound
from litegate.tiers import TierConfig
from litegate.tiers.remote import RemoteTier

Reply = Callable[[dict[str, Any]], str]
_IDS = itertools.count(1)
OPEN_RUNTIMES: list[Any] = []  # every fake reply has its own id, as the ledger's key


def completion(text: str, prompt_tokens: int = 10, completion_tokens: int | None = None,
               finish: str = "stop", logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
    if logprobs is not None:
        choice["logprobs"] = {"content": logprobs}
    n = completion_tokens if completion_tokens is not None else max(1, len(text.split()))
    return {"id": f"chatcmpl-fake-{next(_IDS)}", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [choice],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": n, "total_tokens": prompt_tokens + n}}


class FakeEngine:
    """An engine whose replies come from ``reply(body)``; tokens are whitespace words."""

    def __init__(self, reply: Reply | None = None, n_ctx: int = 512, name: str = "fake.gguf"):
        self.reply = reply or (lambda body: "hello there")
        self.n_ctx = n_ctx
        self.path = Path(name)
        self.bodies: list[dict[str, Any]] = []
        self.counted = 0
        self.active_requests = 0
        self.timings: dict[str, Any] | None = None  # llama.cpp's per-call timings, when a test sets them

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        return [sum(map(ord, w)) for w in text.split()] or [0]

    def count_tokens(self, text: str) -> int:
        self.counted += 1
        return len(text.split())

    def count_chat_tokens(self, messages: list[dict[str, Any]], extra: Any = None) -> int:
        self.counted += 1
        return sum(len(str(m.get("content") or "").split()) + 4 for m in messages)

    def _result(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        self.bodies.append(body)
        text = self.reply(body)
        finish, logprobs = "stop", None
        if isinstance(text, tuple):  # (text, finish_reason)
            text, finish = text
        if isinstance(text, list):  # [(token text, logprob), ...]
            logprobs = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in text]
            text = "".join(t for t, _ in text)
        prompt = self.count_chat_tokens(body["messages"]) if kind == "chat" else len(str(body["prompt"]).split())
        self.counted -= 1
        out = completion(text, prompt_tokens=prompt, finish=finish, logprobs=logprobs)
        if self.timings is not None:
            out["timings"] = dict(self.timings)
        if kind == "completion":
            out["choices"][0] = {"index": 0, "text": text, "finish_reason": "stop"}
        return out

    def run(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._result(kind, body)

    def _chunks(self, kind: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        result = self._result(kind, body)
        text = result["choices"][0].get("message", {}).get("content") or result["choices"][0].get("text", "")
        words = text.split(" ")
        chunks = []
        for i, w in enumerate(words):
            piece = w if i == 0 else " " + w
            delta = {"content": piece} if kind == "chat" else None
            choice = {"index": 0, "finish_reason": "stop" if i == len(words) - 1 else None}
            choice.update({"delta": delta} if delta else {"text": piece})
            chunks.append({"id": result["id"], "object": "chat.completion.chunk", "choices": [choice]})
        chunks.append({"id": result["id"], "object": "chat.completion.chunk", "choices": [],
                       "usage": result["usage"]})
        return chunks

    def stream(self, kind: str, body: dict[str, Any], on_chunk: Callable[[dict[str, Any]], bool]) -> None:
        for chunk in self._chunks(kind, body):
            if on_chunk(chunk):
                return

    async def arun(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.run(kind, body)

    async def astream_started(self, kind: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        chunks = self._chunks(kind, body)

        async def gen() -> AsyncIterator[dict[str, Any]]:
            for c in chunks:
                await asyncio.sleep(0)
                yield c
        return gen()

    async def acall(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    def close(self) -> None:
        pass


class FakeRegistry:
    """Model names -> FakeEngines (the ModelRegistry interface the runtime uses)."""

    def __init__(self, engines: dict[str, FakeEngine] | None = None):
        self.engines = engines if engines is not None else {"lite": FakeEngine()}
        self.closed = False

    def add(self, spec: str) -> str:
        self.engines.setdefault(spec, FakeEngine(name=spec))
        return spec

    def names(self) -> list[str]:
        return list(self.engines)

    def served(self) -> list[ServedModel]:
        return [ServedModel(n, n, engine=e) for n, e in self.engines.items()]  # type: ignore[arg-type]

    def lookup(self, name: str) -> ServedModel:
        if name not in self.engines:
            raise ModelNotFound(f"the model {name!r} does not exist on this server; available: "
                                f"{', '.join(self.engines)}")
        return ServedModel(name, name)

    def engine(self, name: str) -> FakeEngine:
        self.lookup(name)
        return self.engines[name]

    async def aengine(self, name: str) -> tuple[str, FakeEngine]:
        return name, self.engine(name)

    def loaded(self) -> dict[str, FakeEngine]:
        return dict(self.engines)

    def close(self) -> None:
        self.closed = True


class FakeEncoder:
    """Bag-of-letters vectors: similar texts get similar vectors, instantly."""

    name = "fake-encoder"
    dim = 64

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        out = np.zeros((len(texts), 64), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, zlib.crc32(w.encode()) % 64] += 1.0  # (str hash() changes between runs)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)

    def features(self, texts: list[str], layers: list[int] | tuple[int, ...] | None = None,
                 batch_size: int = 64) -> np.ndarray:
        """``encode``'s vectors read "at" each layer: the words' buckets shifted by the layer,
        joined and scaled back to unit length as the real encoders join them."""
        if not layers:
            return self.encode(texts)
        base = self.encode(texts)
        return np.concatenate([np.roll(base, k, axis=1) for k in layers], axis=1) / np.sqrt(len(layers))

    def encode_tokens(self, texts: list[str], layer: int | None = None,
                      window: int = 510) -> list[tuple[np.ndarray, np.ndarray]]:
        """Word pieces = words; each vector mixes the word's own bucket with its neighbours'."""
        import re

        out = []
        for text in texts:
            spans = [(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]", text)]
            vecs = np.zeros((len(spans), 64), np.float32)
            for i, (a, b) in enumerate(spans):
                word = text[a:b].lower()
                vecs[i, (sum(map(ord, word)) * 7) % 64] += 1.0
                vecs[i, 1 if word.isdigit() else 2] += 1.0
                for d in (-1, 1):
                    if 0 <= i + d < len(spans):
                        vecs[i, (sum(map(ord, text[spans[i + d][0]:spans[i + d][1]].lower())) * 13) % 64] += 0.3
            out.append((np.array(spans, dtype=np.int64).reshape(-1, 2), vecs))
        return out

    def count_tokens(self, texts: list[str]) -> int:
        return sum(len(t.split()) for t in texts)


@dataclass
class ScriptedProvider:
    """What a remote tier sends and gets back: ``handler(body, schema)`` returns an OpenAI chat
    completion dict or raises (``ProviderError(status)`` for an HTTP status)."""

    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    calls: list[dict[str, Any]] = field(default_factory=list)


class ProviderError(Exception):
    def __init__(self, status: int):
        super().__init__(f"HTTP {status}")
        self.status = status


class ScriptedTier(RemoteTier):
    """A remote tier kind for tests: the provider is a Python function; the retries, breaker,
    schema check and label maths are RemoteTier's own."""

    kind = "scripted"
    requires = ("model",)
    providers: dict[str, ScriptedProvider] = {}

    def _request(self, body: dict[str, Any], schema: Any) -> dict[str, Any]:
        provider = self.providers[self.name]
        provider.calls.append(body)
        return provider.handler(body, schema)

    def classify(self, error: BaseException) -> Any:
        from litegate.errors import RemoteRejected

        if isinstance(error, ProviderError):
            return "transient" if error.status in (429, 500, 502, 503) else RemoteRejected(error.status, {})
        return None


def runtime(tmp_path: Path, tiers: list[TierConfig] | None = None, engines: dict[str, FakeEngine] | None = None,
            record: bool = True, **settings: Any) -> Any:
    """A real Runtime (ledger on SQLite in tmp_path) over fake engines and a fake encoder."""
    from litegate.runtime import build

    s = Settings(home=tmp_path, **settings)
    rt = build(s, Config(tiers=tiers or []), registry=FakeRegistry(engines), encoder_factory=FakeEncoder,
               record=record)
    OPEN_RUNTIMES.append(rt)  # closed after the test even when it fails before its own close (tests/conftest.py)
    return rt


def json_reply(value: Any) -> Reply:
    return lambda body: json.dumps(value)
