"""A prebuilt extractor extended with a user's examples (``litegate train NAME --base receipt``):
it learns what the user's documents do differently, keeps the rest, is listed, versioned, and
answers extract requests by its name; bad input is a one-line error."""

from __future__ import annotations

import json
import random
from pathlib import Path

import fakes
import pytest
from typer.testing import CliRunner

from litegate.cli import app
from litegate.documents import prebuilt
from litegate.documents.prebuilt import extend

pytestmark = pytest.mark.unit

NAMES = ["Kiosk Morgenrot", "Bistro Wende", "Laden Eichhorn", "Hofladen Grün", "Feinkost Adler", "Weinhaus Kern",
         "Blumen Sommer", "Buchladen Lenz"]


def _eu(amount: float) -> str:
    return f"{amount:.2f}".replace(".", ",")


def user_receipt(rng: random.Random) -> dict:
    """A kind of receipt the shipped weights misread: a slogan above the shop's name, the total
    labeled by a word no keyword list holds, and a larger deposit voucher after it."""
    name, total = rng.choice(NAMES), rng.randint(100, 9999) / 100
    lines = [rng.choice(["SCHÖN, DASS SIE DA SIND", "IHR EINKAUF HEUTE", "TAGESANGEBOT KAFFEE", "FRISCH FÜR SIE"]),
             name, f"{rng.choice(['Haupt', 'Linden', 'Kirch'])}str. {rng.randint(1, 99)}",
             f"{rng.randint(10000, 99999)} {rng.choice(['Bonn', 'Kiel', 'Trier'])}"]
    lines += [f"{rng.choice(['Kaffee', 'Brot', 'Wein', 'Tulpen'])} {_eu(rng.randint(100, 2000) / 100)}"
              for _ in range(rng.randint(1, 5))]
    lines += [f"Endpreis {_eu(total)}", f"Pfandbon {_eu(total + rng.randint(100, 900) / 100)}",
              f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.2021 {rng.randint(8, 20)}:{rng.randint(10, 59)}"]
    return {"text": "\n".join(lines), "data": {"merchant_name": name, "total": _eu(total)}}


def _right(scorers: dict | None, docs: list[dict], field: str) -> float:
    got = [prebuilt.extract("receipt", d["text"], scorers=scorers)["fields"][field] for d in docs]
    want = [d["data"][field] for d in docs]
    if field == "total":
        return sum(g["amount"] == float(w.replace(",", ".")) for g, w in zip(got, want)) / len(docs)
    return sum(g["value"] == w for g, w in zip(got, want)) / len(docs)


def test_a_few_examples_teach_the_extractor_the_users_documents() -> None:
    rng = random.Random(1)
    train, held_out = [user_receipt(rng) for _ in range(12)], [user_receipt(rng) for _ in range(30)]
    ext = extend.train("my-receipts", "receipt", train)
    assert _right(None, held_out, "total") < 0.7  # the shipped weights often take the voucher
    assert _right(ext.scorers, held_out, "total") >= 0.9
    assert _right(ext.scorers, held_out, "merchant_name") >= _right(None, held_out, "merchant_name")
    assert _right(ext.scorers, held_out, "merchant_name") >= 0.9
    assert ext.info.right_after["total"] > ext.info.right_before["total"]
    # what the examples do not label is left as shipped
    assert ext.scorers["tip"].weights == prebuilt._weights("receipt")["scorers"]["tip"].weights


def test_extended_weights_stay_near_the_shipped_ones_on_documents_they_already_read() -> None:
    from test_prebuilt import RECEIPT_EN  # an ordinary receipt the shipped weights read right

    ext = extend.train("mine", "receipt", [user_receipt(random.Random(2)) for _ in range(12)])
    data = prebuilt.extract("receipt", RECEIPT_EN, scorers=ext.scorers)["data"]
    assert data["merchant_name"] == "SUNRISE MART SDN BHD" and data["total"] == "16.43"
    assert data["date"] == "2018-12-25" and data["tax"] == "0.93"


@pytest.fixture()
def home(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("LITEGATE_HOME", str(tmp_path))
    monkeypatch.delenv("LITEGATE_CONFIG", raising=False)
    return tmp_path


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def test_litegate_train_base_extends_lists_and_answers_by_its_name(home: Path) -> None:
    rng = random.Random(3)
    data = _write(home / "mine.jsonl", [user_receipt(rng) for _ in range(12)])
    r = CliRunner().invoke(app, ["train", "my-receipts", "--base", "receipt", "--data", str(data)])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["base"] == "receipt" and info["version"] == 1 and info["examples"] == 12
    assert "extends receipt" in r.output and "total" in r.output
    listed = CliRunner().invoke(app, ["extractors"]).stdout
    assert "my-receipts\tv1 (extends receipt)" in listed and listed.startswith("receipt\tprebuilt")
    again = CliRunner().invoke(app, ["train", "my-receipts", "--base", "receipt", "--data", str(data)])
    assert json.loads(again.stdout.strip().splitlines()[-1])["version"] == 2

    rt = fakes.runtime(home)
    doc = user_receipt(rng)
    out = rt.tasks.run("extract", {"text": doc["text"], "extractor": "my-receipts", "tier": "nano"})
    assert out["data"]["total"] == f"{float(doc['data']['total'].replace(',', '.')):.2f}"
    assert out["data"]["merchant_name"] == doc["data"]["merchant_name"] and out["model"] == "prebuilt:my-receipts"
    shipped = rt.tasks.run("extract", {"text": doc["text"], "extractor": "receipt", "tier": "nano"})
    # the shipped one is unchanged: its own answer and confidences, not the extended one's
    assert shipped["model"] == "prebuilt:receipt"
    assert (shipped["data"], shipped["field_confidence"]) != (out["data"], out["field_confidence"])


def test_train_base_refuses_bad_input_in_one_line(home: Path) -> None:
    good = _write(home / "good.jsonl", [user_receipt(random.Random(4))])
    r = CliRunner().invoke(app, ["train", "mine", "--base", "menu", "--data", str(good)])
    assert r.exit_code == 1 and "--base must be a prebuilt extractor (receipt, invoice)" in r.output
    r = CliRunner().invoke(app, ["train", "receipt", "--base", "receipt", "--data", str(good)])
    assert r.exit_code == 1 and "a prebuilt extractor's own name" in r.output
    bad = _write(home / "bad.jsonl", [user_receipt(random.Random(4)), {"text": "x", "data": {"colour": "red"}}])
    r = CliRunner().invoke(app, ["train", "mine", "--base", "receipt", "--data", str(bad)])
    assert r.exit_code == 1 and f"{bad}:2" in r.output and "'colour' is not a field of receipt" in r.output
    assert not (home / "prebuilts" / "mine").exists()  # nothing stored on a refusal
