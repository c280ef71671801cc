"""More edges the type checker pointed at: a vector store search whose ranking options or
query are not what they should be, a nano tier built without encoders and a tokenizer
without its special tokens, each answered with a clear error instead of a crash."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from fakes import FakeEngine, runtime

from litegate.errors import ModelFileError, TierUnavailable
from litegate.nano.encoder import TransformerEncoder
from litegate.tiers.base import TierConfig
from litegate.tiers.nano import NanoTier


@pytest.fixture()
def rt(tmp_path: Path):
    r = runtime(tmp_path, engines={"lite": FakeEngine(lambda body: "{}", n_ctx=4096)})
    yield r
    r.close()


def test_a_vector_store_search_with_bad_ranking_options_or_query_is_a_400(client) -> None:
    store = client.post("/v1/vector_stores", json={"name": "docs"}).json()["id"]
    added = client.post("/v1/collections/docs/files", json={"text": "Standard shipping takes 3 to 5 business days."})
    assert added.status_code == 201, added.text
    search = f"/v1/vector_stores/{store}/search"
    for options in ({"score_threshold": "high"}, "fast", [0.5], {"score_threshold": True}):
        r = client.post(search, json={"query": "shipping", "ranking_options": options})
        assert r.status_code == 400, (options, r.text)
        assert r.json()["error"]["param"] == "ranking_options.score_threshold"
    for query in (42, None, {"q": "shipping"}):
        r = client.post(search, json={"query": query})
        assert r.status_code == 400 and r.json()["error"]["param"] == "query", (query, r.text)
    r = client.post(search, json={"query": ["shipping", "days"], "ranking_options": {"score_threshold": 0.0}})
    assert r.status_code == 200 and r.json()["data"], r.text
    r = client.post(search, json={"query": "shipping", "ranking_options": {"score_threshold": 1.5}})
    assert r.status_code == 200 and r.json()["data"] == []


def test_a_nano_tier_without_encoders_says_so() -> None:
    deps = SimpleNamespace(classifiers=SimpleNamespace(), settings=SimpleNamespace(coalesce=False))
    tier = NanoTier(TierConfig(name="nano", kind="nano"), deps)
    for use in (lambda: tier.model, lambda: tier.encoder, lambda: tier.embed(["hello"])):
        with pytest.raises(TierUnavailable, match="nano tier was built without sentence encoders"):
            use()


def test_a_tokenizer_without_the_special_tokens_is_a_model_file_error() -> None:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    tokenizer = Tokenizer(WordLevel({"[UNK]": 0, "hello": 1, "world": 2}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    encoder = TransformerEncoder()
    encoder.layers, encoder._tokenizer, encoder._untruncated = 1, tokenizer, tokenizer
    with pytest.raises(ModelFileError, match=r"has no \[CLS\] or \[SEP\] token"):
        encoder.encode_tokens(["hello world"])


def test_count_tokens_with_a_request_that_is_not_an_object_is_a_400(tmp_path) -> None:
    from fakes import runtime
    from fastapi.testclient import TestClient

    from litegate.server import create_app

    rt = runtime(tmp_path)
    with TestClient(create_app(rt, close_runtime=False)) as client:
        r = client.post("/v1beta/models/lite:countTokens", json={"generateContentRequest": 5})
        assert r.status_code == 400 and "generateContentRequest" in r.json()["error"]["message"]
        assert client.post("/v1beta/models/nope:countTokens", json={"generateContentRequest": 5}).status_code == 404
