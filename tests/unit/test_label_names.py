"""A label's name read as words is one more example of it: which names count, that they train the
head but are never scored in calibration nor kept as the user's examples, and that a name can
decide a text none of the examples is near."""

from __future__ import annotations

import pytest
from fakes import FakeEncoder

from litegate.nano.classifier import NanoClassifier, label_text

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("label, text", [
    ("card_lost", "card lost"), ("refundRequest", "refund request"), ("card+lost", "card lost"),
    ("PIN-change", "pin change"), ("top_up_2", "top up 2"), ("rollover_401k", "rollover 401k"),
    ("weather", "weather"), ("w2", None), ("A", None), ("L17", None), ("x_1", None), ("42", None), ("ok", None),
])
def test_which_label_names_read_as_words(label: str, text: str | None) -> None:
    assert label_text(label) == text


EXAMPLES = [{"text": t, "label": lab} for t, lab in (
    ("will it rain today", "weather"), ("is it sunny outside", "weather"), ("snow forecast", "weather"),
    ("play some jazz", "music"), ("put on a song", "music"), ("next track please", "music"),
    ("set an alarm for seven", "L17"), ("wake me at six", "L17"), ("alarm at noon", "L17"))]


def test_label_names_train_the_head_but_are_not_the_users_examples() -> None:
    named = NanoClassifier.train("t", EXAMPLES, FakeEncoder())
    plain = NanoClassifier.train("t", EXAMPLES, FakeEncoder(), label_names=False)
    assert named.info.label_names == 2 and plain.info.label_names == 0  # weather, music; not L17
    assert named.info.examples == plain.info.examples == len(EXAMPLES)
    assert named.examples == plain.examples
    assert named._train_matrix.shape == plain._train_matrix.shape  # typicality: the examples only
    assert named.info.cv_accuracy is not None  # out-of-fold calibration ran with the names beside
    # "music" appears in no example: only its name ties it to the label
    probs, _ = named.predict(["music music music"], FakeEncoder())
    plain_probs, _ = plain.predict(["music music music"], FakeEncoder())
    music = named.labels.index("music")
    assert probs[0].argmax() == music
    assert probs[0, music] > plain_probs[0, plain.labels.index("music")]
