"""Edges the type checker pointed at: a JSONL line whose number is too long to read, and a nano
tier built without extractors, each answered with a clear error instead of a crash."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from litegate.errors import ExtractorNotFound, InvalidRequest
from litegate.evals.datasets import parse_jsonl
from litegate.tiers.base import TierConfig
from litegate.tiers.nano import NanoTier


def test_a_jsonl_line_with_a_number_too_long_to_read_is_a_clear_error() -> None:
    line = '{"text": "hi", "label": ' + "9" * 5000 + "}"
    with pytest.raises(InvalidRequest, match=r"data.jsonl:2: not valid JSON \(Exceeds the limit"):
        list(parse_jsonl(['{"text": "ok", "label": "a"}', line], where="data.jsonl"))


def test_a_nano_tier_without_extractors_says_the_extractor_is_not_found() -> None:
    deps = SimpleNamespace(classifiers=SimpleNamespace(encoder=None), settings=SimpleNamespace(coalesce=False))
    tier = NanoTier(TierConfig(name="nano", kind="nano"), deps)
    with pytest.raises(ExtractorNotFound, match="built without extractors"):
        tier.extractor("invoice")
