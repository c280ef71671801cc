"""Smaller inputs that used to crash or mislead: each answers with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from litegate.chat.gemini_shapes import to_chat_request
from litegate.config import Settings
from litegate.configfile import load_config
from litegate.errors import ConfigError, InvalidRequest
from litegate.pipelines import load_pipeline
from litegate.pipelines.expr import parse

pytestmark = pytest.mark.unit


def test_a_deeply_nested_when_is_a_one_line_error(tmp_path: Path) -> None:
    deep = "(" * 600 + "true" + ")" * 600
    with pytest.raises(ConfigError, match="nested 600 brackets deep") as e:
        parse(deep)
    assert "\n" not in str(e.value)
    source = tmp_path / "deep.toml"
    source.write_text(f'name = "deep"\n[[step]]\nname = "ingest"\nkind = "ingest"\nwhen = "{deep}"\n')
    with pytest.raises(ConfigError, match="nested"):
        load_pipeline(source)
    assert parse("(" * 10 + "1 < 2" + ")" * 10) is not None  # ordinary nesting still reads
    assert parse("'((((' == steps.a.text") is not None  # brackets inside a string are text


def test_an_empty_config_variable_means_no_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITEGATE_CONFIG", "")
    config = load_config(Settings().config)
    assert config.api_keys == [] and config.tiers == [] and config.source is None
    with pytest.raises(ConfigError):
        load_config("/nonexistent/litegate.toml")  # a path that names nothing is still an error


def test_gemini_inline_data_that_is_not_base64_says_so() -> None:
    part = {"inlineData": {"mimeType": "image/png", "data": "!!!"}}
    with pytest.raises(InvalidRequest, match="not base64"):
        to_chat_request({"contents": [{"role": "user", "parts": [part]}]})
    good = {"inlineData": {"mimeType": "text/plain", "data": "aGVsbG8="}}
    to_chat_request({"contents": [{"role": "user", "parts": [good]}]})
