"""Pipeline files and the expression language: what parses, what is refused, and that every
refusal is one line naming the step and the key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from litegate.errors import ConfigError
from litegate.pipelines import load_pipeline, load_pipelines, parse_pipeline
from litegate.pipelines.expr import ExprError, Expression, as_number, render

pytestmark = pytest.mark.unit
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "intake.toml"

SCOPE = {"steps": {"extract": {"data": {"total": "$1,234.50", "vendor": "Acme", "date": None},
                               "confidence": 0.42},
                   "doc_type": {"label": "contract", "confidence": 0.9}, "skipped": None},
         "input": {"text": "Final notice: pay now", "metadata": {"source": "mail"}, "filename": "a.pdf"},
         "run": {"id": "prun_1"}}


@pytest.mark.parametrize("source, expected", [
    ("steps.doc_type.label == 'contract'", True),
    ("steps.doc_type.label == \"invoice\"", False),
    ("steps.doc_type.label in ['contract', 'lease']", True),
    ("steps.doc_type.label not in ['contract']", False),
    ("steps.extract.confidence < 0.5 and steps.doc_type.confidence >= 0.9", True),
    ("not (steps.extract.confidence < 0.5) or steps.extract.data.vendor != 'Acme'", False),
    ("steps.extract.data.total > 1000", True),  # "$1,234.50" compared as its number
    ("steps.extract.data.total > 2000", False),
    ("steps.extract.data.date == null", True),
    ("steps.extract.data.date > 3", False),  # null is never ordered: false, not an error
    ("steps.skipped.label == 'x'", False),  # a skipped step's output is null
    ("'notice' in input.text", True),
    ("input.metadata.source == 'mail' and input.filename == 'a.pdf'", True),
    ("steps.doc_type.label", True),  # a value alone is its truth
    ("steps.extract.data.vendor < 5", False),  # incomparable: false
    ("true and not false", True),
    ("first(steps.skipped.confidence, steps.extract.confidence) < 0.5", True),  # whichever step ran
    ("first(steps.skipped.label, steps.doc_type.label) == 'contract'", True),
    ("first(steps.skipped.label, steps.extract.data.date)", False),  # both null: null
    ("steps.skipped.confidence or steps.extract.confidence", True),  # or and and stay true or false
])
def test_expressions_evaluate_over_the_run(source: str, expected: bool) -> None:
    assert bool(Expression(source)(SCOPE)) is expected


@pytest.mark.parametrize("source, needle", [
    ("steps.a.label ==", "ends too early"),
    ("steps.a.label = 'x'", "cannot read"),
    ("__import__('os').system('x')", "cannot read"),
    ("contract == steps.a.label", "paths start with steps, input, run"),
    ("(steps.a.label == 'x'", "ends where ')' is expected"),
    ("steps.a.label == 'x' 'y'", "where it should end"),
    ("", "is empty"),
    ("steps.a.label == 'x' and", "ends too early"),
])
def test_expressions_that_do_not_parse_say_why(source: str, needle: str) -> None:
    with pytest.raises(ExprError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        Expression(source)


def test_first_is_the_first_value_that_is_not_null() -> None:
    scope = {"steps": {"invoice": None, "receipt": {"data": {"merchant_name": "Kiosk", "tip": 0, "note": ""},
                                                     "confidence": 0.0}}}
    assert Expression("first(steps.invoice.data.vendor, steps.receipt.data.merchant_name)")(scope) == "Kiosk"
    # a 0 or an empty string is a value: first keeps it where or would pass over it
    assert Expression("first(steps.receipt.data.tip, 5)")(scope) == 0
    assert Expression("first(steps.receipt.data.note, 'none')")(scope) == ""
    assert Expression("first(steps.invoice.confidence, steps.receipt.confidence)")(scope) == 0.0
    assert Expression("first(steps.invoice.confidence, steps.receipt.confidence) < 0.2")(scope) is True
    assert Expression("steps.invoice.confidence or steps.receipt.confidence")(scope) is False
    assert Expression("first(steps.invoice.x, null)")(scope) is None
    assert Expression("first(steps.invoice.x, 'a' in ['a'], 3)")(scope) is True  # each operand a full expression
    assert render("{{ first(steps.invoice.confidence, steps.receipt.confidence) }}", scope) == 0.0  # keeps its type
    assert Expression("first(steps.a.x, steps.b.y, input.text)").paths() == [("steps", "a", "x"), ("steps", "b", "y"),
                                                                            ("input", "text")]


@pytest.mark.parametrize("source, needle", [
    ("first()", "calls first() with nothing in it"),
    ("coalesce(steps.a.x, 1)", "calls coalesce(...); the only function is first(...)"),
    ("first(steps.a.x, 1", "ends where ')' is expected"),
    ("first(steps.a.x 1)", "expected ')', found '1'"),
    ("first == 1", "names 'first'; paths start with"),
])
def test_first_that_does_not_parse_says_why(source: str, needle: str) -> None:
    with pytest.raises(ExprError, match=re.escape(needle)):
        Expression(source)


def test_numbers_in_text_and_templates() -> None:
    assert as_number("$1,234.50") == 1234.5 and as_number("12 EUR") == 12 and as_number("abc") is None
    assert as_number(True) is None and as_number(3) == 3.0
    assert render("{{ steps.extract.data.total }}", SCOPE) == "$1,234.50"
    assert render("{{ steps.extract.confidence }}", SCOPE) == 0.42  # one hole keeps the type
    assert render("Vendor {{ steps.extract.data.vendor }} ({{ steps.extract.data.date }})", SCOPE) == "Vendor Acme ()"


def test_the_shipped_example_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTAKE_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("INTAKE_WEBHOOK_SECRET", "s3cret")
    p = load_pipeline(EXAMPLE)
    assert p.name == "intake"
    assert [s.kind for s in p.steps] == ["ingest", "classify", "extract", "extract", "extract", "classify", "review",
                                        "summarize", "write", "notify"]
    summary = p.step("summary")
    assert summary.tier == "lite" and summary.when is not None and summary.feature == "intake.summary"
    # the type first; then the prebuilt extractor of that type, on the text (and the files' lines) ingest read
    assert [p.step(f"extract_{k}").prepared.get("extractor") for k in ("invoice", "receipt", "contract")] == [
        "invoice", "receipt", None]
    assert all(p.step(f"extract_{k}").prepared["text"] == "{{ steps.ingest.text }}"
               for k in ("invoice", "receipt", "contract"))
    # one row whichever extract step ran
    scope = {"steps": {"doc_type": {"label": "receipt"}, "extract_invoice": None, "extract_contract": None,
                       "extract_receipt": {"data": {"merchant_name": "KIOSK 24", "date": "2024-05-02"},
                                           "typed": {"total": {"text": "£12.40", "value": "12.40"}},
                                           "confidence": 0.0}}}
    columns = {c.name: c.value(scope) for c in p.step("store").prepared.columns}
    assert {k: columns[k] for k in ("vendor", "number", "date", "total", "extract_confidence")} == {
        "vendor": "KIOSK 24", "number": None, "date": "2024-05-02", "total": "£12.40", "extract_confidence": 0.0}


def _pipeline(steps: str, head: str = "") -> dict:
    return tomllib.loads(head + steps)


OK_HEAD = '[[step]]\nname = "ingest"\nkind = "ingest"\n'


@pytest.mark.parametrize("steps, needle", [
    ('[[step]]\nname = "x"\nkind = "scan"\n', "p.toml: step 'x': kind: unknown step kind 'scan'; kinds: ingest,"),
    (OK_HEAD + '[[step]]\nname = "c"\nkind = "classify"\nlabels = ["a", "b"]\nwhen = "steps.later.label == \'a\'"\n'
     '[[step]]\nname = "later"\nkind = "classify"\nlabels = ["a", "b"]\n',
     "p.toml: step 'c': when: names steps.later, which comes later (step #3)"),
    (OK_HEAD + '[[step]]\nname = "c"\nkind = "classify"\nlabels = ["a", "b"]\nwhen = "steps.c.label == \'a\'"\n',
     "p.toml: step 'c': when: names steps.c, its own output (a cycle)"),
    (OK_HEAD + '[[step]]\nname = "w"\nkind = "write"\ntable = "t"\n'
               'columns = { a = "first(steps.ingest.text, steps.nope.x)" }\n',
     "p.toml: step 'w': columns.a: names steps.nope, but there is no such step"),
    (OK_HEAD + '[[step]]\nname = "c"\nkind = "classify"\nlabels = ["a", "b"]\nwhen = "steps.nope.label == \'a\'"\n',
     "p.toml: step 'c': when: names steps.nope, but there is no such step (earlier steps: ingest)"),
    (OK_HEAD + '[[step]]\nname = "c"\nkind = "classify"\nlabels = ["a", "b"]\nwhen = "steps.ingest.text =="\n',
     "p.toml: step 'c': when: does not parse: ends too early"),
    (OK_HEAD + '[[step]]\nname = "c"\nkind = "classify"\nlabelz = ["a", "b"]\n',
     "p.toml: step 'c': labelz: not a key of a classify step"),
    (OK_HEAD + '[[step]]\nname = "c"\nkind = "classify"\nlabels = "a"\n', "p.toml: step 'c': labels:"),
    (OK_HEAD + '[[step]]\nname = "ingest"\nkind = "ingest"\n', "step 'ingest': name: another step is already called"),
    (OK_HEAD + '[[step]]\nname = "w"\nkind = "write"\n', "step 'w': table: give either table"),
    (OK_HEAD + '[[step]]\nname = "w"\nkind = "write"\ntable = "t"\ncolumns = { run_id = "run.id" }\n',
     "step 'w': columns.run_id: a column name"),
    (OK_HEAD + '[[step]]\nname = "w"\nkind = "write"\ntable = "t"\ncolumns = { a = "steps.x.label" }\n',
     "step 'w': columns.a: names steps.x, but there is no such step"),
    (OK_HEAD + '[[step]]\nname = "w"\nkind = "write"\ntable = "t"\n'
               'columns = { a = { value = "run.id", type = "money" } }\n',
     "step 'w': columns.a.type: 'money' is not one of"),
    (OK_HEAD + '[[step]]\nname = "n"\nkind = "notify"\n', "step 'n': url: is required"),
    (OK_HEAD + '[[step]]\nname = "n"\nkind = "notify"\nurl = "ftp://x"\n', "step 'n': url: 'ftp://x' must be an http"),
    (OK_HEAD + '[[step]]\nname = "n"\nkind = "notify"\nurl = "http://x"\nsecret_env = "LITEGATE_TEST_UNSET_SECRET"\n',
     "step 'n': secret_env: the environment variable LITEGATE_TEST_UNSET_SECRET is not set"),
    (OK_HEAD + '[[step]]\nname = "n"\nkind = "notify"\nurl = "http://x"\nmax_attempts = 0\n',
     "step 'n': max_attempts: must be a whole number from 1 to 100"),
    (OK_HEAD + '[[step]]\nname = "s"\nkind = "summarize"\ntext = "{{ steps.zzz.text }}"\n',
     "step 's': text: names steps.zzz, but there is no such step"),
    (OK_HEAD + '[[step]]\nname = "s"\nkind = "summarize"\nreview_below = 2\n', "step 's': review_below: must be"),
    (OK_HEAD + '[[step]]\nname = "i2"\nkind = "ingest"\nocr = true\n', "step 'i2': ocr: not a key of a ingest step"),
    ('', "p.toml: needs at least one [[step]] table"),
    (OK_HEAD + 'colour = "red"\n', "step 'ingest': colour: not a key"),
])
def test_invalid_pipeline_files_are_one_line_naming_step_and_key(steps: str, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_pipeline(_pipeline(steps), "p.toml", default_name="p")
    assert needle in e.value.message and "\n" not in e.value.message, e.value.message


def test_unknown_pipeline_key_and_files_on_disk(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="p.toml: unknown key 'stepz'"):
        parse_pipeline({"stepz": []}, "p.toml")
    (tmp_path / "bad.toml").write_text("name = [")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load_pipelines(tmp_path, tmp_path)
    (tmp_path / "bad.toml").unlink()
    (tmp_path / "a.toml").write_text(OK_HEAD)
    (tmp_path / "b.toml").write_text('name = "a"\n' + OK_HEAD)
    with pytest.raises(ConfigError, match="pipeline name 'a' is also used"):
        load_pipelines(tmp_path, tmp_path)
    (tmp_path / "b.toml").unlink()
    assert list(load_pipelines(tmp_path, tmp_path)) == ["a"]  # the name is the file's stem
    assert load_pipelines(None, tmp_path / "home") == {}  # no folder: no pipelines
    with pytest.raises(ConfigError, match="does not exist"):
        load_pipelines(tmp_path / "missing.toml", tmp_path, explicit=True)
