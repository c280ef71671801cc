"""Checks before work: a batch line over a limit, or not UTF-8, fails on its own (untouched,
into the error file) instead of failing the batch or being encoded first."""

from __future__ import annotations

import json
from typing import Any

import pytest

from litegate.errors import InvalidRequest
from litegate.jobs.batches import parse_gemini_lines, parse_openai_lines
from litegate.tasks.base import MAX_TEXT_CHARS
from litegate.tasks.runner import TaskRunner

pytestmark = pytest.mark.unit
TASK = "/v1/tasks/classify"


def line(cid: str, text: str) -> bytes:
    return json.dumps({"custom_id": cid, "method": "POST", "url": TASK,
                       "body": {"classifier": "intents", "text": text}}).encode()


def test_an_invalid_utf8_line_fails_alone() -> None:
    data = b"\n".join([line("a", "fine"), b'{"custom_id": "b", "body": "\xff\xfe"}', line("c", "also fine")])
    lines = parse_openai_lines(data, TASK, 1 << 20)
    assert [ln.error is None for ln in lines] == [True, False, True]
    assert lines[1].error["code"] == "invalid_utf8" and lines[1].custom_id == "b"
    gemini = parse_gemini_lines(b'{"request": {"contents": []}}\n\xff\n', 1 << 20)
    assert gemini[0].error is None and "request" in gemini[1].error["message"]
    with pytest.raises(InvalidRequest, match="not UTF-8"):  # a file with no readable line at all is refused
        parse_openai_lines(b"\xff\xfe\n\xfa", TASK, 1 << 20)


def test_lines_over_a_limit_go_to_the_error_file_untouched() -> None:
    huge = line("big", "x" * (2 << 20))  # over the line limit: never decoded or parsed
    long_text = line("long", "y" * (MAX_TEXT_CHARS + 1))  # under the line limit, over the task's text limit
    lines = parse_openai_lines(b"\n".join([huge, long_text, line("ok", "hello")]), TASK, 1 << 20)
    assert [ln.error and ln.error["code"] for ln in lines] == ["request_too_large", "text_too_long", None]
    assert lines[0].custom_id == "big" and lines[0].body is None and lines[1].body is None


class SpyNano:
    name = "nano"
    capabilities = ("classify",)

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def prefetch(self, requested: str | None, texts: list[str]) -> None:
        self.encoded += texts


def test_prefetch_encodes_only_requests_that_pass_their_checks() -> None:
    nano = SpyNano()
    runner = TaskRunner({"nano": nano}, ["nano"])
    bodies: list[Any] = [{"classifier": "intents", "text": "fine"},
                         {"classifier": "intents", "text": "z" * (MAX_TEXT_CHARS + 1)},
                         {"classifier": "intents", "text": "bad field", "nonsense": 1},
                         {"classifier": "intents", "text": "a bad tier", "tier": ""}]
    runner.prefetch("classify", bodies)
    assert nano.encoded == ["fine"]
