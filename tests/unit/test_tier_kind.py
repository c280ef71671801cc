"""Adding a tier kind is one module plus one registry line. This is the whole of a small kind
(it answers chat by echoing the last user message, priced per token); the test then declares
it in a config file and uses it from the task API and the chat API like any built-in kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakes import runtime

from litegate.chat import ChatCall, ChatCompletionRequest
from litegate.configfile import load_config
from litegate.tiers import TIER_KINDS, BaseTier


class EchoTier(BaseTier):
    kind = "echo"
    capabilities = frozenset({"chat"})
    requires = ("model",)
    remote = True  # priced per token, and served on the chat API under its name

    def chat(self, body: dict[str, Any], schema: Any = None) -> dict[str, Any]:
        text = body["messages"][-1]["content"]
        n = len(text.split())
        return {"id": "echo-1", "object": "chat.completion", "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": f"- {text}"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": n, "completion_tokens": n + 1, "total_tokens": 2 * n + 1}}


@pytest.fixture()
def echo_kind(monkeypatch):
    monkeypatch.setitem(TIER_KINDS, "echo", EchoTier)  # the one registry line


def test_a_new_kind_from_config_runs_tasks_and_chat(tmp_path: Path, echo_kind) -> None:
    path = tmp_path / "litegate.toml"
    path.write_text('[[tier]]\nname = "parrot"\nkind = "echo"\nmodel = "v1"\nprice_out_per_million = 5.0\n')
    rt = runtime(tmp_path, tiers=load_config(path).tiers)
    out = rt.tasks.run("summarize", {"text": "the sky is blue"})
    assert (out["tier"], out["summary"], out["bullets"]) == ("parrot", "- the sky is blue", ["the sky is blue"])
    assert out["cost_usd"] == pytest.approx(5 * 5.0 / 1e6)
    # a task the kind has no capability for is refused by name, not attempted
    with pytest.raises(Exception, match="no configured tier can run classify"):
        rt.tasks.run("classify", {"text": "x", "labels": ["a", "b"]})
    reply = rt.chat.run_sync(ChatCall(ChatCompletionRequest(model="parrot",
                                                            messages=[{"role": "user", "content": "hi"}])))
    assert reply["choices"][0]["message"]["content"] == "- hi" and reply["model"] == "parrot"
    rt.accountant.flush()
    assert {(r["task"], r["tier"]) for r in rt.accountant.ledger.rows()} == {("summarize", "parrot"),
                                                                             ("chat", "parrot")}
    rt.close()


def test_the_kind_checks_its_own_required_keys(tmp_path: Path, echo_kind) -> None:
    path = tmp_path / "litegate.toml"
    path.write_text('[[tier]]\nname = "parrot"\nkind = "echo"\n')
    with pytest.raises(Exception, match="kind echo needs 'model'"):
        load_config(path)
