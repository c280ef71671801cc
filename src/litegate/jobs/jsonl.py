"""Batch input files read one line at a time: a bounded reader that never holds the file, and
a scan that measures a line's fields on its bytes, so an oversize line is refused untouched.

A line over the line limit is skipped through (its first bytes are kept to name it); a line
under the limit but too large to be a task request is measured here without being decoded:
its ``text`` alone is over the task's limit (``MAX_TEXT_CHARS``) whatever its escapes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

READ_BYTES = 1 << 20
HEAD_BYTES = 4096  # what is kept of an oversize line: enough to find its custom_id
MAX_SCAN_TOKENS = 200_000  # a line of many small values is parsed normally: it has no giant string
# JSON's longest spelling of one character: an escaped surrogate pair, "\ud83d\ude00"
MAX_BYTES_PER_CHAR = 12

# a JSON token: a whole string (escapes included), a structural character, or a bare scalar
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]:,]|[^\s"{}\[\]:,]+', re.DOTALL)


@dataclass
class RawLine:
    """One non-blank line of a file: ``data`` is its bytes, or None when it was over the limit
    (then only ``head``, its first bytes, was kept)."""

    number: int  # 1-based, among the non-blank lines
    line_no: int  # 1-based, among all lines of the file
    size: int
    data: bytearray | None
    head: bytes


def read_lines(source: BinaryIO, max_line_bytes: int) -> Iterator[RawLine]:
    """The non-blank lines of ``source``, a block at a time; at most one line of at most
    ``max_line_bytes`` is held (an oversize line is read through, not kept)."""
    line, size, head, number, line_no = bytearray(), 0, b"", 0, 0
    while block := source.read(READ_BYTES):
        view, start = memoryview(block), 0
        while start < len(block):
            newline = block.find(b"\n", start)
            end = len(block) if newline < 0 else newline
            size += end - start
            if size <= max_line_bytes:
                line += view[start:end]
            elif not head:
                head = bytes(line[:HEAD_BYTES]) + bytes(view[start:start + max(0, HEAD_BYTES - len(line))])
                line = bytearray()  # the line is over the limit: what was read of it is dropped
            start = end + 1
            if newline >= 0:
                line_no += 1
                if _has_content(line, size):
                    number += 1
                    raw = _raw(number, line_no, line, size, head, max_line_bytes)
                    line = bytearray()  # the caller may drop the line's bytes while it holds the line
                    yield raw
                line, size, head = bytearray(), 0, b""
    if _has_content(line, size):
        yield _raw(number + 1, line_no + 1, line, size, head, max_line_bytes)


def _has_content(line: bytearray, size: int) -> bool:
    return size > len(line) or bool(line.strip())


def _raw(number: int, line_no: int, line: bytearray, size: int, head: bytes, max_line_bytes: int) -> RawLine:
    if size > max_line_bytes:
        return RawLine(number, line_no, size, None, head)
    if line.endswith(b"\r"):
        del line[-1:]
        size -= 1
    return RawLine(number, line_no, size, line, bytes(line[:HEAD_BYTES]))


def string_spans(data: bytes | bytearray, *paths: tuple[str, ...]) -> dict[tuple[str, ...], tuple[int, int]] | None:
    """Where the string values at ``paths`` (keys from the top object: ``("body", "text")``)
    lie in a JSON line, as byte ranges inside the quotes, found without decoding the line.
    None when the line has too many values to scan (parse it normally); a path that is absent
    or not a string is left out."""
    wanted = {tuple(k.encode() for k in p): p for p in paths}
    found: dict[tuple[str, ...], tuple[int, int]] = {}
    keys: list[bytes | None] = []  # the key each open container was opened under (None: root, array items)
    objects: list[bool] = []  # whether each open container is an object
    key: bytes | None = None
    expect_key = False
    for count, m in enumerate(_TOKEN.finditer(data)):
        if count > MAX_SCAN_TOKENS:
            return None
        first = data[m.start()]
        if first in b"{[":
            keys.append(key)
            objects.append(first == ord("{"))
            key, expect_key = None, first == ord("{")
        elif first in b"}]":
            if keys:
                keys.pop()
                objects.pop()
            key, expect_key = None, False
        elif first == ord(","):
            key, expect_key = None, bool(objects and objects[-1])
        elif first == ord('"'):
            if expect_key:
                key = bytes(data[m.start() + 1:m.end() - 1]) if m.end() - m.start() <= 256 else b"\0"
                expect_key = False
            elif objects and objects[-1]:
                path = (*(k for k in keys[1:]), key)
                if None not in path and path in wanted:
                    found[wanted[path]] = (m.start() + 1, m.end() - 1)  # type: ignore[index]
                    if len(found) == len(wanted):
                        break
    return found


def certainly_longer(span: tuple[int, int], chars: int) -> bool:
    """Whether a JSON string of these bytes holds more than ``chars`` characters, however it
    is escaped (known without decoding it)."""
    return span[1] - span[0] > chars * MAX_BYTES_PER_CHAR
