"""bench/nano_augment.py: how a tier's written requests are read and filtered."""

from __future__ import annotations

import numpy as np
import pytest
from bench_scripts import load

pytestmark = pytest.mark.unit
augment = load("nano_augment")


def test_written_lines_take_list_marks_off_and_drop_repeats() -> None:
    reply = ('Sure! Here are new requests:\n- wake me at 7\n2) "Set an alarm for noon"\n* wake me at 7\n'
             '- Turn the alarm on\n-\n- ' + "x" * 240)
    have = {"turn the alarm on"}
    assert augment.written_lines(reply, have) == ["Sure! Here are new requests:", "wake me at 7",
                                                  "Set an alarm for noon"]
    assert "wake me at 7" in have  # later draws do not repeat it


class Vectors:
    """An encoder over fixed vectors (the unit layer's stand-in for a real one)."""

    def __init__(self, table: dict[str, list[float]]):
        self.table = table

    def encode(self, texts: list[str], **_: object) -> np.ndarray:
        return np.array([self.table[t] for t in texts], dtype=np.float32)


def test_centroid_filter_keeps_requests_nearest_their_own_label() -> None:
    draw = [{"text": "a1", "label": "a"}, {"text": "a2", "label": "a"},
            {"text": "b1", "label": "b"}, {"text": "b2", "label": "b"}]
    written = [{"text": "wa", "label": "a"}, {"text": "wb_like_a", "label": "b"}, {"text": "wb", "label": "b"}]
    enc = Vectors({"a1": [1, 0.1], "a2": [1, -0.1], "b1": [0.1, 1], "b2": [-0.1, 1],
                   "wa": [0.9, 0.2], "wb_like_a": [1, 0], "wb": [0, 1]})
    kept = augment.filtered("centroid", draw, written, enc, clf=None)
    assert [it["text"] for it in kept] == ["wa", "wb"]
    assert augment.filtered("all", draw, written, enc, clf=None) == written
