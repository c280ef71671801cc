"""Checks before work: a batch line over a limit, or not UTF-8, fails on its own (untouched,
into the error file) instead of failing the batch or being encoded first."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from litegate.deploy.batch_files import task_lines
from litegate.errors import InvalidRequest
from litegate.jobs.batches import parse_gemini_lines, parse_openai_lines
from litegate.jobs.jsonl import READ_BYTES, certainly_longer, read_lines, string_spans
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


def test_the_reader_holds_one_line_and_skips_through_an_oversize_one() -> None:
    big = b'{"custom_id": "big", "body": {"text": "' + b"w" * (3 << 20) + b'"}}'
    data = b"\n".join([b'{"a": 1}\r', b"", b"   ", big, b'{"b": 2}']) + b"\n\n"
    lines = list(read_lines(io.BytesIO(data), 1 << 20))
    assert [(r.number, r.line_no) for r in lines] == [(1, 1), (2, 4), (3, 5)]
    assert bytes(lines[0].data) == b'{"a": 1}' and lines[2].data == bytearray(b'{"b": 2}')
    assert lines[1].data is None and lines[1].size == len(big) and lines[1].head.startswith(b'{"custom_id": "big"')
    # a line split across the reader's blocks is whole; no newline at the end is still a line
    tiny_blocks = list(read_lines(io.BytesIO(b'{"x": "' + b"y" * (READ_BYTES + 5) + b'"}\n{"z": 1}'), 4 << 20))
    assert [r.size for r in tiny_blocks] == [READ_BYTES + 5 + 9, 8]


def test_a_lines_fields_are_found_on_its_bytes() -> None:
    data = bytearray(json.dumps({"custom_id": "c\\1", "url": TASK, "other": {"text": "no"}, "list": [{"text": "no"}],
                                 "body": {"labels": ["a", "b"], "nested": {"text": "x"}, "text": 'say "hi"\\n'}})
                     .encode())
    spans = string_spans(data, ("custom_id",), ("url",), ("body", "text"), ("missing",))
    assert spans is not None and set(spans) == {("custom_id",), ("url",), ("body", "text")}
    assert json.loads(b'"' + data[slice(*spans[("body", "text")])] + b'"') == 'say "hi"\\n'
    assert data[slice(*spans[("url",)])] == TASK.encode()
    assert not certainly_longer((0, MAX_TEXT_CHARS * 12), MAX_TEXT_CHARS)
    assert certainly_longer((0, MAX_TEXT_CHARS * 12 + 1), MAX_TEXT_CHARS)


def test_a_text_over_the_limit_by_its_bytes_is_refused_undecoded() -> None:
    huge_text = line("huge", "w" * (3 << 20))  # under the line limit, over the text limit however it is escaped
    lines = parse_openai_lines(b"\n".join([huge_text, line("ok", "hello")]), TASK, 8 << 20)
    assert lines[0].error is not None and lines[0].error["code"] == "text_too_long"
    assert lines[0].custom_id == "huge" and lines[0].body is None and lines[1].error is None
    # a large line whose text is short (a big labels list) is parsed as usual
    labels = json.dumps({"custom_id": "labels", "method": "POST", "url": TASK,
                         "body": {"labels": ["l" * 100] * 20000, "text": "short"}}).encode()
    assert parse_openai_lines(labels, TASK, 8 << 20)[0].error is None
    # the same refusal without an endpoint (litegate batch run) and for {"text"} lines
    assert parse_openai_lines(huge_text, None, 8 << 20, ["classify"])[0].error["code"] == "text_too_long"
    task = task_lines(b'{"id": "t", "text": "' + b"w" * (3 << 20) + b'"}\n{"text": "fine"}', "classify", {}, 8 << 20)
    assert [ln.error is None for ln in task] == [False, True] and task[0].custom_id == "line-1"


def test_a_stored_input_is_counted_a_line_at_a_time(tmp_path) -> None:
    from sqlalchemy import create_engine

    from litegate.jobs.batches import count_lines
    from litegate.jobs.files import FileStore

    files = FileStore(create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"), tmp_path)
    openai = files.put(b"\n".join([line("a", "x"), line("b", "w" * (3 << 20)), b"", line("c", "y")]),
                       api="openai", purpose="batch", filename="in.jsonl")
    assert count_lines(files, openai.id, 8 << 20, TASK) == 3
    gemini = files.put(b'{"key": "k", "request": {"contents": []}}\n\xff\n\n', api="gemini", purpose="batch",
                       filename="in.jsonl")
    assert count_lines(files, gemini.id, 1 << 20, api="gemini") == 2
    unreadable = files.put(b"\xff\n\xfe\n", api="gemini", purpose="batch", filename="bad.jsonl")
    with pytest.raises(InvalidRequest, match="not UTF-8"):
        count_lines(files, unreadable.id, 1 << 20, api="gemini")
