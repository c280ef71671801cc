"""Remote tiers: a second litegate process on loopback is both an OpenAI-compatible model
(``[[remote]]`` chat passthrough, and a ``[[tier]]`` of kind openai in task cascades) and a
Gemini tier (``kind = "gemini"``, reached through google-genai). Killing it mid-test
triggers fallback and the circuit breaker, for chat and for task cascades alike."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import openai
import pytest

from conftest import free_port, start_server, stop_server
from litegate.tiers import CircuitBreaker


def test_circuit_breaker_transitions() -> None:
    b = CircuitBreaker(failures=2, reset_s=0.2)
    assert b.state == "closed"
    b.failure()
    assert b.state == "closed" and b.allow()
    b.failure()
    assert b.state == "open" and not b.allow()
    time.sleep(0.25)
    assert b.state == "half-open" and b.allow()
    b.failure()  # the probe failed: open again
    assert b.state == "open"
    time.sleep(0.25)
    b.success()
    assert b.state == "closed"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, home: Path):
    remote_port = free_port()
    remote_home = tmp_path_factory.mktemp("remote-home")  # the joined models are shared (conftest)
    remote_proc, remote_base = start_server(remote_home, "--ctx", "2048", port=remote_port)
    config = tmp_path_factory.mktemp("cfg") / "litegate.toml"
    # an OpenAI-kind tier is a task tier and a chat model at once; the older [[remote]] table
    # still declares a chat model (as a tier outside the default cascade)
    remote = f'''name = "pro-remote"
base_url = "{remote_base}/v1"
model = "lite"
price_in_per_million = 1.0
price_out_per_million = 2.0
fallback = "lite"
max_retries = 1
timeout_s = 20
breaker_failures = 2
breaker_reset_s = 8
'''
    config.write_text(f'''
[[remote]]
{remote.replace('pro-remote', 'legacy-remote')}
[[tier]]
name = "nano"
kind = "nano"

[[tier]]
name = "lite"
kind = "local"
model = "lite"
usd_per_hour = 0.2

[[tier]]
kind = "openai"
{remote}
[[tier]]
name = "gemini-remote"
kind = "gemini"
base_url = "{remote_base}"
model = "lite"
api_key_env = "LITEGATE_TEST_GEMINI_KEY"
price_in_per_million = 0.5
price_out_per_million = 1.5
''')
    os.environ["LITEGATE_TEST_GEMINI_KEY"] = "test-key"  # the remote needs none; the tier reads it
    proc, base = start_server(home, "--ctx", "2048", "--config", str(config))
    state = {"remote_proc": remote_proc, "remote_port": remote_port, "remote_home": remote_home}
    yield base, state
    stop_server(proc)
    if state["remote_proc"].poll() is None:
        stop_server(state["remote_proc"])


def test_remote_tier_through_the_gateway(gateway, home: Path) -> None:
    base, _ = gateway
    client = openai.OpenAI(base_url=base + "/v1", api_key="k", max_retries=0)
    assert "pro-remote" in [m.id for m in client.models.list().data]
    r = client.chat.completions.create(model="pro-remote", messages=[{"role": "user", "content": "Say hi"}],
                                       max_tokens=5, temperature=0)
    assert r.model == "pro-remote" and r.choices[0].message.content
    assert r.usage.completion_tokens <= 5
    assert "fallback_from" not in (r.model_extra.get("litegate") or {})
    from test_ledger import ledger_row

    rec = ledger_row(home, r.id)
    row = (rec["tier"], rec["tokens_in"], rec["tokens_out"], rec["cost_usd"])
    assert row[0] == "pro-remote"
    assert row[3] == pytest.approx((row[1] * 1.0 + row[2] * 2.0) / 1e6)
    chunks = list(client.chat.completions.create(
        model="pro-remote", messages=[{"role": "user", "content": "Count to three"}], max_tokens=12,
        temperature=0, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert all(c.choices for c in chunks)  # usage was not asked for: the relay drops the usage event
    rec = ledger_row(home, chunks[0].id)  # streamed remote calls are ledgered with the remote's usage
    assert rec["tier"] == "pro-remote" and 0 < rec["tokens_out"] <= 12 and rec["tokens_in"] > 0
    assert rec["cost_usd"] == pytest.approx((rec["tokens_in"] * 1.0 + rec["tokens_out"] * 2.0) / 1e6)
    chunks = list(client.chat.completions.create(
        model="pro-remote", messages=[{"role": "user", "content": "Count to three"}], max_tokens=12,
        temperature=0, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == rec["tokens_out"]


def test_legacy_remote_table_still_serves_chat(gateway, home: Path) -> None:
    base, _ = gateway
    client = openai.OpenAI(base_url=base + "/v1", api_key="k", max_retries=0)
    r = client.chat.completions.create(model="legacy-remote", messages=[{"role": "user", "content": "Say hi"}],
                                       max_tokens=4, temperature=0)
    assert r.model == "legacy-remote" and r.choices[0].message.content
    from test_ledger import ledger_row

    assert ledger_row(home, r.id)["tier"] == "legacy-remote"  # priced under its own name, not "pro"
    tiers = {t["name"]: t for t in httpx.get(base + "/healthz").json()["tiers"]}
    assert tiers["legacy-remote"]["in_cascade"] is False and tiers["pro-remote"]["in_cascade"] is True


def test_remote_errors_pass_through(gateway) -> None:
    base, _ = gateway
    r = httpx.post(base + "/v1/chat/completions", json={"model": "pro-remote", "messages": [
        {"role": "user", "content": "x " * 3000}]}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"


LABELS = ["weather", "music", "banking"]
CASCADE_FEATURE = "tiers-test"


def remote_calls(state: dict) -> int:
    """Calls the remote litegate itself has ledgered (it is a real server with its own ledger)."""
    import sqlite3

    con = sqlite3.connect(state["remote_home"] / "ledger.db")
    try:
        return con.execute("select count(*) from calls").fetchone()[0]
    finally:
        con.close()


def test_openai_tier_scores_labels_like_the_local_tier(gateway, home: Path) -> None:
    base, state = gateway
    body = {"text": "Will it rain in Paris tomorrow afternoon?", "labels": LABELS}
    before = remote_calls(state)
    local = httpx.post(base + "/v1/tasks/classify", json={**body, "tier": "lite"}, timeout=60).json()
    remote = httpx.post(base + "/v1/tasks/classify", json={**body, "tier": "pro-remote"}, timeout=60).json()
    assert remote["tier"] == "pro-remote" and remote["model"] == "lite" and local["tier"] == "lite"
    # the same model behind both: pricing labels by token text (remote) and by token id
    # (local, grammar-constrained) must pick the same label
    assert remote["label"] == local["label"] == "weather"
    assert set(remote["scores"]) == set(LABELS) and sum(remote["scores"].values()) == pytest.approx(1, abs=1e-3)
    assert remote["confidence"] > 0.5
    # labels that share their first tokens: the text walk must follow the path past them
    shared = {"text": "I lost my card on the train yesterday", "labels": ["card_declined", "card_lost", "cash_back"]}
    pair = [httpx.post(base + "/v1/tasks/classify", json={**shared, "tier": t}, timeout=60).json()
            for t in ("lite", "pro-remote")]
    assert pair[0]["label"] == pair[1]["label"] == "card_lost", pair
    assert pair[1]["scores"]["card_lost"] > pair[1]["scores"]["cash_back"]
    from test_ledger import ledger_row

    rec = ledger_row(home, remote["id"])
    assert rec["tier"] == "pro-remote" and rec["tokens_in"] == remote["usage"]["prompt_tokens"] > 0
    assert rec["cost_usd"] == pytest.approx((rec["tokens_in"] * 1.0 + rec["tokens_out"] * 2.0) / 1e6, rel=1e-3)
    rec = ledger_row(home, local["id"])
    assert rec["tier"] == "lite" and rec["cost_usd"] == pytest.approx(local["cost_usd"], rel=1e-3)
    time.sleep(0.5)
    assert remote_calls(state) == before + 2  # real calls reached the remote, none for the local tier
    tiers = {t["name"]: t for t in httpx.get(base + "/healthz").json()["tiers"]}
    assert [n for n, t in tiers.items() if t["in_cascade"]] == ["nano", "lite", "pro-remote", "gemini-remote"]
    assert tiers["pro-remote"]["circuit"] == "closed"


def test_gemini_tier_through_google_genai(gateway, home: Path) -> None:
    base, _ = gateway
    out = httpx.post(base + "/v1/tasks/classify", json={"text": "Play some jazz by Miles Davis", "labels": LABELS,
                                                         "tier": "gemini-remote"}, timeout=60).json()
    assert out["tier"] == "gemini-remote" and out["label"] == "music", out
    assert sum(out["scores"].values()) == pytest.approx(1, abs=1e-3)
    ex = httpx.post(base + "/v1/tasks/extract", json={
        "text": "Invoice 4471 from Acme Corp, due 2026-03-01.", "fields": {"invoice_number": "the invoice number",
                                                                          "company": "who sent it"},
        "tier": "gemini-remote"}, timeout=60).json()
    assert ex["tier"] == "gemini-remote", ex
    assert set(ex["data"]) == {"invoice_number", "company"} and "Acme" in (ex["data"]["company"] or "")
    from test_ledger import ledger_row

    rec = ledger_row(home, ex["id"])
    assert rec["tier"] == "gemini-remote" and rec["tokens_out"] > 0
    assert rec["cost_usd"] == pytest.approx((rec["tokens_in"] * 0.5 + rec["tokens_out"] * 1.5) / 1e6, rel=1e-3)


def write_policy(home: Path, steps: list[dict]) -> None:
    from litegate.tasks.cascade import CascadePolicy, PolicyStore

    PolicyStore(home).save(CascadePolicy.from_dict({"task": "classify", "feature": CASCADE_FEATURE,
                                                    "steps": steps}))


def test_cascade_escalates_to_the_remote_pro_tier(gateway, home: Path) -> None:
    base, state = gateway
    # lite answers only when certain beyond certainty: every call escalates to the remote tier
    write_policy(home, [{"tier": "lite", "threshold": 1.01, "escalate": True},
                        {"tier": "pro-remote", "threshold": 0.0}])
    before = remote_calls(state)
    out = httpx.post(base + "/v1/tasks/classify", json={"text": "Transfer 50 euros to my savings account",
                                                         "labels": LABELS, "feature": CASCADE_FEATURE},
                     timeout=60).json()
    assert out["tier"] == "pro-remote" and out["escalated"] and out["escalated_from"] == "lite"
    assert out["outcome"] == "answered" and out["label"] == "banking"
    from test_ledger import ledger_row

    rec = ledger_row(home, out["id"])
    assert (rec["tier"], rec["escalated"], rec["escalated_from"], rec["feature"]) == \
        ("pro-remote", 1, "lite", CASCADE_FEATURE)
    # billed for both steps: lite's compute time plus the remote's tokens (the remote step
    # saw the same prompt as the lite step, so at least half of all prompt tokens are its)
    assert rec["cost_usd"] == pytest.approx(out["cost_usd"], rel=1e-3)
    assert rec["cost_usd"] > (out["usage"]["prompt_tokens"] / 2 * 1.0) / 1e6
    time.sleep(0.5)
    assert remote_calls(state) == before + 1
    # a last step still unsure ends at human review, not at an error
    write_policy(home, [{"tier": "lite", "threshold": 1.01, "escalate": True},
                        {"tier": "pro-remote", "threshold": 1.01}])
    out = httpx.post(base + "/v1/tasks/classify", json={"text": "Transfer 50 euros to my savings account",
                                                         "labels": LABELS, "feature": CASCADE_FEATURE},
                     timeout=60).json()
    assert out["outcome"] == "human_review" and out["tier"] == "pro-remote"
    write_policy(home, [{"tier": "lite", "threshold": 1.01, "escalate": True},
                        {"tier": "pro-remote", "threshold": 0.0}])


def circuits(base: str) -> set[str]:
    """The pro-remote breakers' states: the chat model's and the task tier's."""
    health = httpx.get(base + "/healthz").json()
    tier = next(t for t in health["tiers"] if t["name"] == "pro-remote")
    return {health["remotes"]["pro-remote"]["circuit"], tier["circuit"]}


def test_killed_remote_falls_back_and_opens_the_breaker(gateway, home: Path) -> None:
    base, state = gateway
    stop_server(state["remote_proc"])
    # a task cascade whose remote step is down falls back to the remote tier's fallback
    out = httpx.post(base + "/v1/tasks/classify", json={"text": "Is it sunny in Rome?", "labels": LABELS,
                                                         "feature": CASCADE_FEATURE}, timeout=60).json()
    assert out["tier"] == "lite" and out["fallback_from"] == "pro-remote", out
    assert out["escalated_from"] == "lite" and out["label"] == "weather"
    from test_ledger import ledger_row

    assert ledger_row(home, out["id"])["tier"] == "lite"
    body = {"model": "pro-remote", "messages": [{"role": "user", "content": "Say ok"}], "max_tokens": 3}
    for _ in range(2):
        r = httpx.post(base + "/v1/chat/completions", json=body, timeout=60)
        assert r.status_code == 200, r.text
        assert r.headers["x-litegate-fallback-from"] == "pro-remote"
        assert r.json()["litegate"]["fallback_from"] == "pro-remote" and r.json()["model"] == "lite"
    assert httpx.get(base + "/healthz").json()["remotes"]["pro-remote"]["circuit"] == "open"
    out = httpx.post(base + "/v1/tasks/classify", json={"text": "Is it sunny in Rome?", "labels": LABELS,
                                                         "tier": "pro-remote"}, timeout=60).json()
    assert out["fallback_from"] == "pro-remote"
    tiers = {t["name"]: t for t in httpx.get(base + "/healthz").json()["tiers"]}
    assert tiers["pro-remote"]["circuit"] == "open"  # two failed task calls opened the tier's breaker
    # an open circuit is not tried at all (the reason says so), let alone retried
    out = httpx.post(base + "/v1/tasks/classify", json={"text": "Is it sunny in Rome?", "labels": LABELS,
                                                         "tier": "pro-remote"}, timeout=60).json()
    assert out["tier"] == "lite" and "circuit open" in out["fallback_reason"]
    r = httpx.post(base + "/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 200 and r.json()["litegate"]["fallback_from"] == "pro-remote"
    assert "circuit open" in r.json()["litegate"]["fallback_reason"]
    # bring the remote back: after the reset window (8 s from each breaker's opening, partly
    # spent restarting the remote) a half-open probe closes the circuit
    proc, _ = start_server(state["remote_home"], "--ctx", "2048", port=state["remote_port"])
    state["remote_proc"] = proc
    deadline = time.monotonic() + 30
    while "open" in circuits(base) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert circuits(base) == {"half-open"}
    r = httpx.post(base + "/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 200 and "fallback_from" not in r.json().get("litegate", {})
    assert httpx.get(base + "/healthz").json()["remotes"]["pro-remote"]["circuit"] == "closed"
    out = httpx.post(base + "/v1/tasks/classify", json={"text": "Is it sunny in Rome?", "labels": LABELS,
                                                         "tier": "pro-remote"}, timeout=60).json()
    assert out["tier"] == "pro-remote" and "fallback_from" not in out


def test_bad_config_is_a_one_line_error(tmp_path: Path, home: Path) -> None:
    import os
    import subprocess

    from conftest import litegate_cmd

    bad = tmp_path / "bad.toml"
    bad.write_text('[[remote]]\nname = "x"\nbase_url = "http://127.0.0.1:1/v1"\nmodel = "m"\ncolour = "red"\n')
    r = subprocess.run(litegate_cmd("serve", "--config", str(bad), "--port", str(free_port())),
                       env=dict(os.environ, LITEGATE_HOME=str(home)), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "unknown keys" in r.stderr and "colour" in r.stderr


@pytest.mark.parametrize("tables, message", [
    ('[[tier]]\nname = "a"\nkind = "cloud"\n', "'kind' must be one of"),
    ('[[tier]]\nname = "a"\nkind = "openai"\nmodel = "m"\n', "needs 'base_url'"),
    ('[[tier]]\nname = "a"\nkind = "local"\n', "needs 'model'"),
    ('[[tier]]\nname = "auto"\nkind = "nano"\n', "reserved"),
    ('[[tier]]\nname = "a"\nkind = "nano"\n[[tier]]\nname = "a"\nkind = "nano"\n', "unique"),
    ('[[tier]]\nname = "a"\nkind = "gemini"\nmodel = "m"\nfallback = "b"\n', "not a tier"),
    ('[[tier]]\nname = "a"\nkind = "gemini"\nmodel = "m"\nconcurrency = 0\n', "positive integer"),
    ('[[tier]]\nname = "a"\nkind = "gemini"\nmodel = "m"\nprice_in_per_million = -1\n', ">= 0"),
    ('[[tiers]]\nname = "a"\n', "unknown sections"),
    ('[[tier]]\nname = "a"\nkind = "gemini"\nmodel = "m"\nfallback = "a"\n', "cycle: a -> a"),
    ('[[tier]]\nname = "a"\nkind = "gemini"\nmodel = "m"\nfallback = "b"\n'
     '[[tier]]\nname = "b"\nkind = "openai"\nmodel = "m"\nbase_url = "http://x/v1"\nfallback = "a"\n',
     "cycle: a -> b -> a"),
])
def test_bad_tier_config(tmp_path: Path, tables: str, message: str) -> None:
    from litegate.configfile import load_config
    from litegate.errors import InvalidRequest

    path = tmp_path / "c.toml"
    path.write_text(tables)
    with pytest.raises(InvalidRequest, match=message):
        load_config(path)


def test_gemini_tier_without_its_key_is_unavailable(tmp_path: Path) -> None:
    from litegate.errors import TierDown
    from litegate.tiers import GeminiTier, TierConfig

    tier = GeminiTier(TierConfig("g", "gemini", model="m", api_key_env="LITEGATE_TEST_UNSET_KEY"))
    with pytest.raises(TierDown, match="LITEGATE_TEST_UNSET_KEY"):
        tier.call({"messages": [{"role": "user", "content": "hi"}]})
