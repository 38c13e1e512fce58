"""crawler.parsing: dates, times, deadlines, amounts and HTML text, on real and adversarial inputs."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.parsing import (
    find_deadline,
    html_lines,
    html_to_text,
    iter_amounts,
    iter_dates,
    parse_amount,
    parse_it_date,
    parse_it_datetime,
    parse_time,
)
from storage.records import ROME, Precision

UTC = ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("07/09/2026", date(2026, 9, 7)),
        ("07/09/2026 ,", date(2026, 9, 7)),  # the Bandi e Servizi form, comma included
        (" 07/09/2026 ,", date(2026, 9, 7)),
        ("7-9-2026", date(2026, 9, 7)),
        ("07.09.2026", date(2026, 9, 7)),
        ("7 settembre 2026", date(2026, 9, 7)),
        ("07 Settembre 2026", date(2026, 9, 7)),
        ("1° ottobre 2026", date(2026, 10, 1)),
        ("1º ottobre 2026", date(2026, 10, 1)),
        ("lunedì 7 set. 2026", date(2026, 9, 7)),
        ("31 dic 2026", date(2026, 12, 31)),
        ("15 October 2026", date(2026, 10, 15)),
        ("15th Oct 2026", date(2026, 10, 15)),
        ("October 15, 2026", date(2026, 10, 15)),
        ("Sept. 3 2026", date(2026, 9, 3)),
        ("2026-09-07", date(2026, 9, 7)),
        ("2026-09-07T00:00:00.000", date(2026, 9, 7)),
        ("Scade il: 07/09/2026 , ore 12:00", date(2026, 9, 7)),
        ("29/02/2028", date(2028, 2, 29)),
    ],
)
def test_parse_it_date_reads_every_form(text: str, expected: date) -> None:
    assert parse_it_date(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", None, "31/02/2026", "29/02/2027", "13 smarch 2026", "7 settembre", "07/09/26", "RLP12026052483",
     "€ 1.500.000,00", "2026", "32/01/2026"],
)  # fmt: skip
def test_parse_it_date_rejects_non_dates(text: str | None) -> None:
    assert parse_it_date(text) is None


def test_numeric_dates_are_day_first() -> None:
    assert parse_it_date("09/07/2026") == date(2026, 7, 9)


def test_iter_dates_reports_positions_in_order() -> None:
    text = "Domande dal 16/06/2026 al 7 settembre 2026"
    found = list(iter_dates(text))
    assert [m.value for m in found] == [date(2026, 6, 16), date(2026, 9, 7)]
    assert text[found[1].start : found[1].end] == "7 settembre 2026"


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2199, 12, 31)))
def test_any_date_round_trips_through_every_written_form(day: date) -> None:
    months_it = ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto",
                 "settembre", "ottobre", "novembre", "dicembre"]  # fmt: skip
    forms = [
        day.strftime("%d/%m/%Y"),
        f"{day.day}/{day.month}/{day.year} ,",
        day.isoformat(),
        f"{day.day} {months_it[day.month - 1]} {day.year}",
        f"{day.day} {day.strftime('%B')} {day.year}",
        f"{day.strftime('%B')} {day.day}, {day.year}",
    ]
    for form in forms:
        assert parse_it_date(form) == day, form


@pytest.mark.parametrize(
    ("text", "expected", "precision"),
    [
        ("14/05/2026 , ore 09:16", datetime(2026, 5, 14, 9, 16, tzinfo=ROME), Precision.DATETIME),
        ("16/06/2026 ,\n ore 10:00", datetime(2026, 6, 16, 10, 0, tzinfo=ROME), Precision.DATETIME),
        ("2026-09-07 12:00", datetime(2026, 9, 7, 12, 0, tzinfo=ROME), Precision.DATETIME),
        ("30/09/2026 alle ore 12.00", datetime(2026, 9, 30, 12, 0, tzinfo=ROME), Precision.DATETIME),
        ("entro le ore 12.00 del 30/09/2026", datetime(2026, 9, 30, 12, 0, tzinfo=ROME), Precision.DATETIME),
        ("30/09/2026 ore 24:00", datetime(2026, 9, 30, 23, 59, 59, tzinfo=ROME), Precision.DATETIME),
        ("15 October 2026, 5 pm", datetime(2026, 10, 15, 17, 0, tzinfo=ROME), Precision.DATETIME),
        ("15 October 2026 17:00:00 CET", datetime(2026, 10, 15, 17, 0, tzinfo=ROME), Precision.DATETIME),
        ("07/09/2026", datetime(2026, 9, 7, 0, 0, tzinfo=ROME), Precision.DATE),
        # numbers after a date that are not a time of day
        ("30/09/2026 2.500 euro", datetime(2026, 9, 30, tzinfo=ROME), Precision.DATE),
        ("30/09/2026 - 15 posti", datetime(2026, 9, 30, tzinfo=ROME), Precision.DATE),
        ("30/09/2026 ore 25:00", datetime(2026, 9, 30, tzinfo=ROME), Precision.DATE),
    ],
)
def test_parse_it_datetime(text: str, expected: datetime, precision: Precision) -> None:
    parsed = parse_it_datetime(text)
    assert parsed is not None
    assert parsed == (expected, precision)
    assert parsed[0].tzinfo is not None


def test_parse_it_datetime_is_aware_in_the_given_zone() -> None:
    parsed = parse_it_datetime("07/09/2026 ore 12:00", tz=UTC)
    assert parsed is not None
    assert parsed[0].utcoffset() == timedelta(0)
    # Rome is two hours ahead in September: same wall clock, a different instant.
    rome = parse_it_datetime("07/09/2026 ore 12:00")
    assert rome is not None and rome[0] - parsed[0] == timedelta(hours=-2)


def test_parse_time() -> None:
    assert parse_time(" , ore 09:16") == time(9, 16)
    assert parse_time(" ore 12") == time(12, 0)
    assert parse_time(" 12") is None
    assert parse_time("T08:30:00.000") == time(8, 30)


@pytest.mark.parametrize(
    ("text", "expected", "precision"),
    [
        ("Scadenza: 30 settembre 2026 ore 12:00", datetime(2026, 9, 30, 12, tzinfo=ROME), Precision.DATETIME),
        ("Deadline: 15 October 2026", datetime(2026, 10, 15, tzinfo=ROME), Precision.DATE),
        ("Closing date: 17 Sep 2026 17:00:00 Brussels time", datetime(2026, 9, 17, 17, tzinfo=ROME),
         Precision.DATETIME),
        ("Le domande vanno presentate entro il 30/10/2026.", datetime(2026, 10, 30, tzinfo=ROME),
         Precision.DATE),
        ("Domande dal 01/09/2026 ore 10:00 entro il 30/10/2026", datetime(2026, 10, 30, tzinfo=ROME),
         Precision.DATE),
        ("entro e non oltre le ore 12.00 del giorno 30 novembre 2026",
         datetime(2026, 11, 30, 12, tzinfo=ROME), Precision.DATETIME),
        ("Il bando scade il 07/09/2026 , ore 12:00", datetime(2026, 9, 7, 12, tzinfo=ROME),
         Precision.DATETIME),
        # the extension names the old date first
        ("Scadenza prorogata dal 30/09/2026 ore 12:00 al 15/10/2026", datetime(2026, 10, 15, tzinfo=ROME),
         Precision.DATE),
        ("Call opens 1 September 2026. The call closes on October 15, 2026 at 5 pm.",
         datetime(2026, 10, 15, 17, tzinfo=ROME), Precision.DATETIME),
        # "termine" is only a fallback: the strong keyword wins even when written later
        ("Termine lavori 31/12/2027; scadenza domande 30/11/2026", datetime(2026, 11, 30, tzinfo=ROME),
         Precision.DATE),
        ("Termine per la presentazione: 30/11/2026", datetime(2026, 11, 30, tzinfo=ROME), Precision.DATE),
    ],
)  # fmt: skip
def test_find_deadline(text: str, expected: datetime, precision: Precision) -> None:
    assert find_deadline(text, tz=ROME) == (expected, precision)


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "Pubblicato il 14/05/2026",  # a date, but no deadline keyword
        "Scadenza: da definire",
        "Scadenza: 30 settembre",  # no year: not guessed
        "entro 30 giorni dalla concessione",
        "Deadline: see the call text.\n" + "x" * 200 + " 15/10/2026",  # too far from the keyword
    ],
)
def test_find_deadline_none(text: str | None) -> None:
    assert find_deadline(text, tz=ROME) is None


@given(st.text(max_size=300))
def test_find_deadline_never_crashes_and_is_aware(text: str) -> None:
    found = find_deadline(text, tz=ROME)
    if found is not None:
        assert found[0].tzinfo is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("€ 1.500.000,00", Decimal("1500000")),
        ("1.500.000 euro", Decimal("1500000")),
        ("EUR 2 million", Decimal("2000000")),
        ("€2.5m", Decimal("2500000")),
        ("2 milioni di euro", Decimal("2000000")),
        ("6 mln", Decimal("6000000")),
        ("EUR 150,000.00", Decimal("150000")),
        ("1,5 milioni di euro", Decimal("1500000")),
        ("500 mila euro", Decimal("500000")),
        ("500mila euro", Decimal("500000")),
        ("€ 150.000", Decimal("150000")),
        ("€ 1.234,56", Decimal("1234.56")),
        ("EUR 1,234.56", Decimal("1234.56")),
        ("EUR 1 500 000", Decimal("1500000")),
        ("1'500'000 EUR", Decimal("1500000")),
        ("2 miliardi", Decimal("2000000000")),
        ("EUR 1.2 billion", Decimal("1200000000")),
        ("Euro 30.000,50", Decimal("30000.50")),
        ("€ 0,50", Decimal("0.50")),
        ("contributo del 50% fino a 100.000 euro", Decimal("100000")),
        ("Dotazione finanziaria: 6 milioni", Decimal("6000000")),
        ("1.500.000", Decimal("1500000")),  # a bare number on its own is taken as euros
        ("2.500.000,00 €", Decimal("2500000")),
    ],
)
def test_parse_amount(text: str, expected: Decimal) -> None:
    assert parse_amount(text) == expected


@pytest.mark.parametrize(
    "text",
    [None, "", "nessuna", "USD 2 million", "$ 1,500", "£2m", "CHF 10.000", "nel 2026", "il 50%",
     "RLP12026052483", "PR FESR 2021-2027"],
)  # fmt: skip
def test_parse_amount_none(text: str | None) -> None:
    assert parse_amount(text) is None


def test_the_documented_ambiguity_three_digits_after_one_mark_are_thousands() -> None:
    assert parse_amount("€ 1,500") == Decimal("1500")
    assert parse_amount("€ 1.500") == Decimal("1500")
    assert parse_amount("€ 0,500") == Decimal("0.500")
    assert parse_amount("€ 1,50") == Decimal("1.50")


def test_iter_amounts_reads_ranges() -> None:
    assert list(iter_amounts("contributo da € 10.000 a € 50.000 su 2 milioni di euro")) == [
        Decimal("10000"),
        Decimal("50000"),
        Decimal("2000000"),
    ]


@given(st.integers(min_value=0, max_value=10**11))
def test_amounts_in_cents_round_trip_in_italian_and_english_forms(cents: int) -> None:
    euros, rest = divmod(cents, 100)
    expected = Decimal(cents) / 100
    english = f"{euros:,}"
    italian = english.replace(",", ".")
    assert parse_amount(f"€ {italian},{rest:02d}") == expected
    assert parse_amount(f"EUR {english}.{rest:02d}") == expected
    assert parse_amount(f"{italian} euro") == Decimal(euros)
    assert parse_amount(f"EUR {english}") == Decimal(euros)


@given(st.integers(min_value=1, max_value=999), st.integers(min_value=0, max_value=9))
def test_scaled_amounts(units: int, tenth: int) -> None:
    expected = Decimal(units) * 1_000_000 + Decimal(tenth) * 100_000
    assert parse_amount(f"{units},{tenth} milioni di euro") == expected
    assert parse_amount(f"EUR {units}.{tenth} million") == expected
    assert parse_amount(f"€{units}.{tenth}m") == expected


@given(st.text(max_size=200))
def test_parse_amount_never_crashes_nor_returns_negative(text: str) -> None:
    value = parse_amount(text)
    assert value is None or value >= 0


# --- HTML ---------------------------------------------------------------------------------


def test_html_to_text_decodes_entities_and_turns_lists_into_lines() -> None:
    fragment = (
        "<p>possono partecipare le&nbsp;PMI dell&rsquo;allegato I del 17<br />\ngiugno 2014:</p>\n<ul>\n"
        " <li>con sede in&nbsp;Lombardia;</li>\n <li>attive, <b>iscritte</b> al Registro</li>\n</ul>"
        "<script>var x = '<p>no</p>';</script><p>Chi pu&ograve; partecipare &amp; come</p>"
    )
    assert html_to_text(fragment) == (
        "possono partecipare le PMI dell’allegato I del 17\n"
        "giugno 2014:\n"
        "- con sede in Lombardia;\n"
        "- attive, iscritte al Registro\n"
        "Chi può partecipare & come"
    )
    assert html_lines(fragment)[2] == "con sede in Lombardia;"


def test_html_to_text_survives_broken_markup() -> None:
    assert html_to_text("<div><p>aperto <b>senza chiusura") == "aperto senza chiusura"
    assert html_to_text("") == ""
    assert html_to_text(None) == ""
    assert html_to_text("testo semplice") == "testo semplice"
    assert html_lines("<li>- già un trattino</li>") == ["- già un trattino"]


@given(st.text(max_size=300))
def test_html_to_text_never_crashes(text: str) -> None:
    assert isinstance(html_to_text(text), str)


def test_time_followed_by_punctuation_is_kept() -> None:
    found = find_deadline("entro il 31 ottobre 2026 ore 17:00, nei limiti delle risorse", tz=ROME)
    assert found is not None
    assert found[0] == datetime(2026, 10, 31, 17, 0, tzinfo=ROME)
    assert found[1] == Precision.DATETIME
    found = find_deadline("Deadline: 15 October 2026 at 17:00. Apply online.", tz=ROME)
    assert found is not None and found[0].hour == 17
