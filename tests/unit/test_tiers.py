"""Tier config checks, prices, and resilience (retries, breaker) for sync and async calls."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from litegate.configfile import load_config
from litegate.errors import ConfigError, InvalidRequest, RemoteRejected, TierDown
from litegate.tiers import TIER_KINDS, CircuitBreaker, Price, Resilience, TierConfig, Usage, parse_tiers


def _load(tmp_path: Path, text: str):
    path = tmp_path / "litegate.toml"
    path.write_text(text)
    return load_config(path)


@pytest.mark.parametrize("tables, message", [
    ('[[tier]]\nname = "a"\nkind = "cloud"\n', "'kind' must be one of"),
    ('[[tier]]\nname = "a"\nkind = "openai"\nmodel = "m"\n', "needs 'base_url'"),
    ('[[tier]]\nname = "a"\nkind = "local"\n', "needs 'model'"),
    ('[[tier]]\nname = "auto"\nkind = "nano"\n', "reserved"),
    ('[[tier]]\nname = "a b"\nkind = "nano"\n', "needs 'name'"),
    ('[[tier]]\nname = "a"\nkind = "nano"\n[[tier]]\nname = "a"\nkind = "nano"\n', "unique"),
    ('[[tier]]\nname = "a"\nkind = "gemini"\nmodel = "m"\nfallback = "b"\n', "not a tier"),
    ('[[tier]]\nname = "a"\nkind = "gemini"\nmodel = "m"\nconcurrency = 0\n', "positive integer"),
    ('[[tier]]\nname = "a"\nkind = "gemini"\nmodel = "m"\nmax_retries = true\n', "positive integer"),
    ('[[tier]]\nname = "a"\nkind = "gemini"\nmodel = "m"\nprice_in_per_million = -1\n', ">= 0"),
    ('[[tier]]\nname = "a"\nkind = "gemini"\nmodel = 5\n', "'model' must be a string"),
    ('[[tier]]\nname = "a"\nkind = "nano"\ncolour = "red"\n', "unknown keys"),
    ('[[tiers]]\nname = "a"\n', "unknown sections"),
    ('tier = 3\n', "array of tables"),
    ('[[tier]]\nname = "a"\nkind = "gemini"\nmodel = "m"\nfallback = "a"\n', "cycle: a -> a"),
    ('[[tier]]\nname = "a"\nkind = "gemini"\nmodel = "m"\nfallback = "b"\n'
     '[[tier]]\nname = "b"\nkind = "openai"\nmodel = "m"\nbase_url = "http://x/v1"\nfallback = "a"\n',
     "cycle: a -> b -> a"),
    ('[[remote]]\nname = "r"\nmodel = "m"\n', "needs 'base_url'"),
    ('[[api_key]]\nname = "k"\n', "needs key_env or key_sha256"),
    ('[[tier]\n', "not valid TOML"),
])
def test_bad_config_is_one_clear_error(tmp_path: Path, tables: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        _load(tmp_path, tables)
    assert isinstance(e.value, InvalidRequest) and "\n" not in e.value.message.strip()


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_remote_tables_become_openai_tiers_outside_the_cascade(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="litegate.config"):
        config = _load(tmp_path, '[[tier]]\nname = "lite"\nkind = "local"\nmodel = "lite"\n'
                                 '[[remote]]\nname = "big"\nbase_url = "http://x/v1"\nmodel = "gpt"\n'
                                 'price_in_per_million = 3.0\n')
    assert [(t.name, t.kind, t.cascade) for t in config.tiers] == [("lite", "local", True), ("big", "openai", False)]
    big = config.tiers[1]
    assert (big.fallback, big.concurrency, big.price_in_per_million) == ("lite", 16, 3.0)
    assert "deprecated" in caplog.text


def test_prices() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=500)
    assert Price(2.0, 8.0).cost(usage, 10.0) == pytest.approx((1000 * 2 + 500 * 8) / 1e6)
    assert Price(usd_per_hour=0.36).cost(usage, 10.0) == pytest.approx(0.001)


def test_each_tier_prices_itself() -> None:
    remote = TIER_KINDS["openai"](TierConfig("pro", "openai", model="m", base_url="http://x",
                                             price_in_per_million=1.0, price_out_per_million=2.0))
    nano = TIER_KINDS["nano"](TierConfig("nano", "nano"), type("D", (), {"classifiers": None})())
    usage = Usage(prompt_tokens=100, completion_tokens=10)
    assert remote.cost(usage, 3600) == pytest.approx(120 / 1e6)  # tokens, whatever the time
    assert nano.cost(usage, 3600) == pytest.approx(0.05)  # compute time, whatever the tokens


def test_kind_registry_drives_the_checks() -> None:
    class Needy(TIER_KINDS["nano"]):  # type: ignore[misc, valid-type]
        kind = "needy"
        requires = ("base_url",)

    kinds = dict(TIER_KINDS, needy=Needy)
    with pytest.raises(ConfigError, match="kind needy needs 'base_url'"):
        parse_tiers([{"name": "n", "kind": "needy"}], "cfg", kinds)
    assert parse_tiers([{"name": "n", "kind": "needy", "base_url": "u"}], "cfg", kinds)[0].kind == "needy"


class Flaky(Exception):
    pass


def classify(error: BaseException):
    if isinstance(error, Flaky):
        return "transient"
    if isinstance(error, KeyError):
        return RemoteRejected(400, {"error": {"message": "bad request"}})
    return None


def script(*outcomes):
    calls = []

    def fn():
        calls.append(1)
        o = outcomes[len(calls) - 1]
        if isinstance(o, BaseException):
            raise o
        return o
    return fn, calls


def test_transient_failures_are_retried_with_backoff() -> None:
    waits: list[float] = []
    r = Resilience("t", max_retries=2, sleep=waits.append)
    fn, calls = script(Flaky(), Flaky(), "ok")
    assert r.call(fn, classify) == "ok"
    assert len(calls) == 3 and len(waits) == 2 and 0 < waits[0] < waits[1] * 2
    assert r.breaker.state == "closed"


def test_exhausted_retries_are_tier_down_and_count_against_the_breaker() -> None:
    r = Resilience("t", max_retries=1, breaker_failures=2, sleep=lambda s: None)
    for _ in range(2):
        fn, calls = script(Flaky("boom"), Flaky("boom"))
        with pytest.raises(TierDown, match="failed after 2 attempts .*boom"):
            r.call(fn, classify)
    assert r.breaker.state == "open"
    fn, calls = script("never")
    with pytest.raises(TierDown, match="circuit open"):
        r.call(fn, classify)
    assert calls == []  # an open circuit does not call at all


def test_a_rejected_request_passes_through_and_keeps_the_breaker_closed() -> None:
    r = Resilience("t", max_retries=3, breaker_failures=1, sleep=lambda s: None)
    fn, calls = script(KeyError("x"))
    with pytest.raises(RemoteRejected, match="bad request"):
        r.call(fn, classify)
    assert len(calls) == 1 and r.breaker.state == "closed"


def test_unexpected_errors_are_not_swallowed() -> None:
    r = Resilience("t", sleep=lambda s: None)
    fn, _ = script(ZeroDivisionError())
    with pytest.raises(ZeroDivisionError):
        r.call(fn, classify)


def test_async_calls_share_the_policy() -> None:
    r = Resilience("t", max_retries=2, breaker_failures=1)
    outcomes = [Flaky(), "ok"]

    async def fn():
        o = outcomes.pop(0)
        if isinstance(o, BaseException):
            raise o
        return o

    assert asyncio.run(r.acall(fn, classify)) == "ok"

    async def down():
        raise Flaky()

    with pytest.raises(TierDown):
        asyncio.run(r.acall(down, classify))
    assert r.breaker.state == "open"


def test_breaker_half_open_probe() -> None:
    now = [0.0]
    b = CircuitBreaker(failures=2, reset_s=10.0, clock=lambda: now[0])
    b.failure()
    assert b.state == "closed"
    b.failure()
    assert b.state == "open" and not b.allow()
    now[0] = 10.0
    assert b.state == "half-open" and b.allow()
    b.failure()  # the probe failed: open again, from now
    assert b.state == "open"
    now[0] = 20.0
    b.success()
    assert b.state == "closed"
