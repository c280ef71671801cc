"""The nano extractor's typed recognizers and its span stage (candidate spans scored per field with
weights every field shares), and versions trained before the stage: fake encoder, in seconds."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import pytest
from fakes import FakeEncoder
from test_extractor import examples as payments

from litegate.nano.extractor import WORD, NanoExtractor
from litegate.nano.spans import candidates, name_kinds

pytestmark = pytest.mark.unit


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
