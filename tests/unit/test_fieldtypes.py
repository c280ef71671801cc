"""Typed fields: values as printed read into normalized ones, and the detectors that find them."""

from __future__ import annotations

from datetime import date

import pytest

from litegate.documents import fieldtypes

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("printed, iso", [
    ("02.03.2020", "2020-03-02"), ("25/12/2018 8:13:39 PM", "2018-12-25"), ("Dec 25, 2018", "2018-12-25"),
    ("2020-04-18", "2020-04-18"), ("12-DEC-19", "2019-12-12"), ("3. März 2021", "2021-03-03"),
    ("Datum: 16.05.20 09:47", "2020-05-16"), ("13/01/2024", "2024-01-13"), ("01/13/2024", "2024-01-13"),
])
def test_dates_are_read_into_iso_8601(printed: str, iso: str) -> None:
    typed = fieldtypes.normalize("date", printed)
    assert typed is not None and typed.value == iso


@pytest.mark.parametrize("printed", ["20.05. 14:57", "20.05.14:57", "Datum 20.05. 14:57 Uhr", "05/20 09:12",
                                     "Terminal 20.05. 9:05"])
def test_a_day_and_month_without_a_year_followed_by_a_time_is_no_date(printed: str) -> None:
    # the hour after a yearless day.month is not a two-digit year (20.05. 14:57 is not 20 May 2014)
    assert fieldtypes.find_dates(printed) == []


@pytest.mark.parametrize("printed, iso", [
    ("20.05.14 14:57", "2014-05-20"), ("20.05.2014 14:57", "2014-05-20"),
    ("18.05.202016:07", "2020-05-18"), ("2020-05-20 14:57", "2020-05-20"), ("1.2.21", "2021-02-01"),
])
def test_a_year_before_a_time_is_still_a_year(printed: str, iso: str) -> None:
    [(_, _, typed)] = fieldtypes.find_dates(printed)
    assert typed.value == iso


def test_a_date_that_reads_both_ways_is_day_first_and_says_so() -> None:
    parsed = fieldtypes.parse_date("04/05/2023")
    assert parsed is not None and parsed.value == date(2023, 5, 4) and parsed.ambiguous
    assert not fieldtypes.parse_date("13/05/2023").ambiguous
    assert fieldtypes.normalize("date", "no date here 31/02/2023") is None


@pytest.mark.parametrize("printed, amount, currency", [
    ("SUMME EUR 24,23", 24.23, "EUR"), ("Total: RM 60.30", 60.30, "MYR"), ("Rp 28.000", 28000.0, "IDR"),
    ("1.234,56 €", 1234.56, "EUR"), ("$3.99", 3.99, "USD"), ("TOTAL 31.00", 31.0, None),
    ("1,234,567.89 USD", 1234567.89, "USD"), ("CHF 1'250.50", 1250.50, "CHF"), ("-1,50", -1.5, None),
])
def test_money_keeps_the_amount_and_its_currency(printed: str, amount: float, currency: str | None) -> None:
    typed = fieldtypes.normalize("money", printed)
    assert typed is not None
    assert typed.amount == pytest.approx(amount) and typed.currency == currency
    assert typed.as_json()["value"] == f"{amount:.2f}"


def test_money_is_not_a_barcode_or_a_date() -> None:
    assert fieldtypes.find_money("0221756797398") == []
    assert fieldtypes.parse_money("no amount", "EUR") is None
    assert fieldtypes.parse_money("12,50", default_currency="EUR").currency == "EUR"


def test_times_phones_emails_ids_and_addresses() -> None:
    assert [t.value for _, _, t in fieldtypes.find_times("25/12/2018 8:13:39 PM, closes 22:00")] == \
        ["20:13:39", "22:00"]
    assert fieldtypes.find_times("price 12.50") == []
    assert fieldtypes.normalize("phone", "Tel. 0421 / 123456").value == "0421123456"
    assert fieldtypes.normalize("phone", "+49 (30) 123-4567").value == "+49301234567"
    assert fieldtypes.normalize("email", "Mail: Info@Example.COM").value == "info@example.com"
    assert fieldtypes.normalize("id", " INV - 2093 ").value == "INV-2093"
    address = fieldtypes.normalize("address", "Pohlweg 110\n  33100   Paderborn\n")
    assert address.value == "Pohlweg 110, 33100 Paderborn" and address.text == "Pohlweg 110\n  33100   Paderborn"
    assert fieldtypes.normalize("number", "Qty: 1.250") is not None
    with pytest.raises(ValueError):
        fieldtypes.normalize("colour", "red")


def test_the_currency_of_a_document_is_the_one_it_names_most() -> None:
    assert fieldtypes.currency_of("Total RM 12.00\nCash RM 20.00\nUSD rate") == "MYR"
    assert fieldtypes.currency_of("Summe 12,00\nno sign") is None


def test_a_word_that_is_no_month_does_not_hide_the_date_after_it() -> None:
    # "3 CLOSED 23" reads like day, month, year until CLOSED is found to be no month
    found = fieldtypes.find_dates("--3 CLOSED 23 Nov 17 12:19:48-")
    assert [(t.value, t.text) for _, _, t in found] == [("2017-11-23", "23 Nov 17")]
    found = fieldtypes.find_dates("Paid 3 Items 12 Dec 2023")
    assert [t.value for _, _, t in found] == ["2023-12-12"]
