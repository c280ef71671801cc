"""A passage's plain view for the nano reader: its markdown markup left out, so the reader (tuned
on plain prose) reads a link's words, not ``[keys](keys.md)``, and a table row's cells, not its
pipes. Characters are only dropped or put in place one for one, so each character of the view
maps back to one of the passage's, and a span found in the view is quoted from the passage
verbatim. Prose without markup comes back unchanged.

What is left out: a link's or image's brackets and target (``[text](url)`` reads ``text``), the
backticks of code, ``**``/``__`` around words, ``#`` heading marks and ``-``/``*``/``+`` list
marks at a line's start, table separator rows; a table row's pipes read as spaces; HTML comments.
"""

from __future__ import annotations

import re

import numpy as np

_DROP = [
    re.compile(r"<!--.*?-->", re.S),  # HTML comments
    re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$", re.M),  # |---|:--:|
    re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+", re.M),  # heading marks
    re.compile(r"^[ \t]*[-*+][ \t]+", re.M),  # list marks
    re.compile(r"`+"),  # code spans' backticks
]
_LINK = re.compile(r"!?\[([^\[\]\n]*)\]\([^()\s]*(?:\([^()\s]*\)[^()\s]*)*(?:[ \t]+\"[^\"\n]*\")?\)")
_STRONG = re.compile(r"(\*\*|__)(?=\S)([^\n]*?\S)\1")
_TABLE_ROW = re.compile(r"^[ \t]*\|.*\|[ \t]*$", re.M)


def plain_view(text: str) -> tuple[str, np.ndarray]:
    """(the view, for each of its characters the index of the passage's character it is)."""
    keep = np.ones(len(text), bool)
    chars = list(text)
    for m in _LINK.finditer(text):  # keep the link's words, drop "[" or "![" and "](target)"
        keep[m.start():m.start(1)] = False
        keep[m.end(1):m.end()] = False
    for m in _STRONG.finditer(text):
        keep[m.start():m.start(2)] = False
        keep[m.end(2):m.end()] = False
    for pattern in _DROP:
        for m in pattern.finditer(text):
            keep[m.start():m.end()] = False
    for m in _TABLE_ROW.finditer(text):
        for i in range(m.start(), m.end()):
            if chars[i] == "|":
                chars[i] = " "
    where = np.flatnonzero(keep)
    if len(where) == len(text) and "|" not in text:
        return text, where
    return "".join(chars[i] for i in where), where
