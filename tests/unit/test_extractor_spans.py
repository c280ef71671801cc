"""The nano extractor's typed recognizers and its span stage (candidate spans scored per field with
weights every field shares), and versions trained before the stage: fake encoder, in seconds."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
import pytest
from bench_scripts import load
from fakes import FakeEncoder
from test_extractor import examples as payments

from litegate.nano import span_scorer
from litegate.nano.extractor import WORD, NanoExtractor
from litegate.nano.span_scorer import SpanDoc, spans_of
from litegate.nano.spans import candidates, name_kinds

pytestmark = pytest.mark.unit
# bench/span_features.py keeps the pair features as computed one field at a time (its peer)
_peer = load("span_features")


def read(text: str) -> dict[str, set[str]]:
    found = list(WORD.finditer(text))
    return {text[found[c.start].start():found[c.end - 1].end()]: set(c.kinds)
            for c in candidates([m.group() for m in found])}


def test_dates_times_durations_amounts_and_their_roles_are_read() -> None:
    got = read("show me from the 16th to the 22nd of Apr")
    assert got["16th"] == {"date", "from"} and got["22nd of Apr"] == {"date", "to"}
    got = read("between May 22 and May 29th")
    assert got["May 22"] >= {"date", "from"} and got["May 29th"] >= {"date", "to"}
    assert read("block it for the last 3 hours")["last 3 hours"] >= {"time", "period"}
    assert "period" not in read("I lost it 9 days ago")["9 days ago"]  # a point in time, not a span of it
    assert read("meet me at 25 to 7 p.m. then")["25 to 7 p.m."] >= {"time"}
    assert read("can i transfer 700£ to Ann")["700£"] >= {"money", "amount"}
    assert read("a payment of $2000 please")["$2000"] >= {"money"}
    assert read("create 6 new standing orders")["6"] == {"number"}
    assert read("what is my balance") == {}


def test_a_field_name_and_description_speak_the_same_kinds() -> None:
    assert name_kinds("date_from", "the start date of a period") == ({"date", "from"}, {"date", "from", "period"})
    assert name_kinds("check_in", "") == (set(), set())


PEOPLE = ["Ann Lee", "Bob Stone", "Cara Diaz", "Dan Ross", "Eve Park", "Finn Hale", "Gus Moore", "Hana Kim"]


def bookings(n: int = 48, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    days = ["Monday", "Tuesday", "Friday", "Sunday", "May 3rd", "the 14th", "June 9", "Jan 21st"]
    out = []
    for _ in range(n):
        a, b, who = rng.choice(days), rng.choice(days), rng.choice(PEOPLE)
        form = rng.randrange(3)
        if form == 0:
            out.append({"text": f"book {who} from {a} until {b}", "data": {"guest": who, "date_from": a,
                                                                           "date_to": b}})
        elif form == 1:
            out.append({"text": f"I arrive on {a}", "data": {"date": a}})
        else:
            out.append({"text": f"is there a room for {who}", "data": {"guest": who}})
    return out


@pytest.fixture(scope="module")
def booked() -> NanoExtractor:
    return NanoExtractor.train("book", bookings(), FakeEncoder(),
                               fields={"guest": "who stays", "date": "", "date_from": "", "date_to": ""})


def test_the_span_stage_is_the_default_and_tells_the_ends_of_a_period_apart(booked: NanoExtractor) -> None:
    assert booked.info.decoder == "spans" and booked.span_stage is not None
    measured = booked.info.decoder_oof_f1 or {}
    assert booked.info.oof_f1 == measured["spans"] > measured["crf"]  # kept because it measured better
    [out] = booked.predict(["book Ivo Marsh from Wednesday until July 2nd"], FakeEncoder())
    assert out["data"] == {"guest": "Ivo Marsh", "date": None, "date_from": "Wednesday", "date_to": "July 2nd"}
    assert all(0.0 <= c <= 1.0 for c in out["field_confidence"].values())
    [none] = booked.predict(["what is my balance"], FakeEncoder())
    assert none["data"] == {"guest": None, "date": None, "date_from": None, "date_to": None}


def staged(text: str, features: int, values: list[set[str]] | None = None) -> dict[str, str]:
    found = list(WORD.finditer(text))
    offsets = np.array([(m.start(), m.end()) for m in found])
    doc = SpanDoc(text, offsets, np.zeros((len(found), 4)), np.zeros((len(found), 1)), ["O"] * len(found))
    return {doc.span_text(c.start, c.end): c.source for c in spans_of(doc, {"O": 0}, [], features, values)}


def test_names_after_a_preposition_and_known_values_are_candidates_in_any_case() -> None:
    text = "any payments to elia greek restaurant between May 22 and May 29th?"
    got = staged(text, 2)
    assert {"elia", "elia greek", "elia greek restaurant"} <= {k for k, v in got.items() if v == "phrase"}
    assert "May 22" in got and "payments" not in got and "between" not in got
    assert staged("how much did I spend on my delivery?", 2)["delivery"] == "phrase"  # past "my"
    assert "my" not in staged("send it to my mum", 2)
    assert staged("pay hat and tun now", 2, [{"hat and tun"}])["hat and tun"] == "known"
    assert "elia" not in staged(text, 1)  # the first stage's candidates are as they were


def test_the_stage_records_what_it_reads_and_stages_saved_before_read_as_the_first(booked: NanoExtractor) -> None:
    stage = booked.span_stage
    assert stage is not None and stage.features == span_scorer.FEATURES == 3
    state = dict(stage.__dict__)
    del state["features"]  # as pickled before the stage had versions
    old = span_scorer.SpanStage.__new__(span_scorer.SpanStage)
    old.__setstate__(state)
    assert old.features == 1


def test_the_value_taggers_reading_of_a_spans_edges() -> None:
    # P(O), P(B), P(I) of five words: a value over words 1-2 that goes on into word 3
    values = np.array([[1, 0, 0], [0.1, 0.8, 0.1], [0.2, 0.1, 0.7], [0.4, 0, 0.6], [1, 0, 0]], float)
    assert span_scorer._value_edges(values, 1, 3) == pytest.approx([0.8, 0.1, 0.7, 0.6])
    assert span_scorer._value_edges(values, 4, 5) == pytest.approx([0.0, 0.0, 1.0, 0.0])  # one word, at the end
    assert span_scorer._value_edges(None, 1, 3) == [0.0] * 4  # an extractor without the tagger


def test_a_second_version_stage_still_fits_and_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(span_scorer, "FEATURES", 2)
    second = NanoExtractor.train("book", bookings(), FakeEncoder(),
                                 fields={"guest": "who stays", "date": "", "date_from": "", "date_to": ""})
    assert second.span_stage is not None and second.span_stage.features == 2
    [out] = second.predict(["book Ivo Marsh from Wednesday until July 2nd"], FakeEncoder())
    assert out["data"]["date_to"] == "July 2nd"


def test_the_first_stage_still_fits_and_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(span_scorer, "FEATURES", 1)
    monkeypatch.setattr(span_scorer, "SCORER", "logistic")
    first = NanoExtractor.train("book", bookings(), FakeEncoder(),
                                fields={"guest": "who stays", "date": "", "date_from": "", "date_to": ""})
    assert first.span_stage is not None and first.span_stage.features == 1
    [out] = first.predict(["book Ivo Marsh from Wednesday until July 2nd"], FakeEncoder())
    assert out["data"]["date_to"] == "July 2nd"


def test_versions_before_the_stage_load_and_answer_as_before(booked: NanoExtractor, tmp_path: Path) -> None:
    plain = NanoExtractor.train("book", bookings(), FakeEncoder(), spans=False,
                                fields={"guest": "", "date": "", "date_from": "", "date_to": ""})
    assert plain.info.decoder == "crf" and plain.span_stage is None
    plain.save(tmp_path / "v1")
    state = pickle.loads((tmp_path / "v1" / "model.pkl").read_bytes())
    del state["span_stage"]  # as written before the stage existed
    (tmp_path / "v1" / "model.pkl").write_bytes(pickle.dumps(state))
    loaded = NanoExtractor.load(tmp_path / "v1")
    assert loaded.span_stage is None
    text = ["book Ivo Marsh from Wednesday until July 2nd"]
    assert loaded.predict(text, FakeEncoder()) == plain.predict(text, FakeEncoder())
    booked.save(tmp_path / "v2")
    again = NanoExtractor.load(tmp_path / "v2")
    assert again.span_stage is not None and again.predict(text, FakeEncoder()) == booked.predict(text, FakeEncoder())


def test_too_few_examples_for_the_stage_fall_back_to_the_crf() -> None:
    small = NanoExtractor.train("book", bookings(6), FakeEncoder())
    assert small.info.decoder == "crf" and small.span_stage is None


def test_where_the_stage_measures_no_better_the_crf_path_is_kept() -> None:
    # amounts and names in three fixed phrasings: the CRF's path is already right out of fold
    plain = NanoExtractor.train("pay", payments(), FakeEncoder(), fields={"amount": "money", "person": "who"})
    measured = plain.info.decoder_oof_f1 or {}
    assert plain.info.decoder == "crf" and plain.span_stage is None and measured["spans"] <= measured["crf"]


def test_pair_features_for_every_field_at_once_equal_the_per_field_reference(booked: NanoExtractor) -> None:
    from litegate.nano.extractor import _prepare, _span_doc

    stage = booked.span_stage
    assert stage is not None
    texts = ["book Ivo Marsh from Wednesday until July 2nd", "I arrive on May 3rd", "what is my balance",
             "is there a room for Ann Lee"]
    checked = 0
    for doc in (_span_doc(d, booked.tagger) for d in _prepare(texts, FakeEncoder())):
        for features in (1, 2):
            cands = spans_of(doc, stage.tag_index, stage.fields, features, stage.stats.values)
            if not cands:  # the stage scores nothing then
                continue
            checked += 1
            got = span_scorer.pair_features(doc, cands, stage.stats, stage.tag_index, features)
            want = _peer.per_field(doc, cands, stage.stats, stage.tag_index, features)
            assert got.shape == want.shape and np.allclose(got, want, atol=1e-6)
        now, before = stage.spans(doc), _peer.before_spans(stage, doc)  # one calibration call, or one per field
        assert {k: v[0] for k, v in now.items()} == {k: v[0] for k, v in before.items()}
        assert all(abs(now[k][1] - before[k][1]) < 1e-4 for k in now)
    assert checked >= 6
