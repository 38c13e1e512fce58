"""The BURL extractor on its synthetic answer (no real one was ever recorded) and on shapes it must
refuse: every refusal names the assumption it broke."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from crawler.extract import ShapeError
from crawler.extract.burl import (
    ASSUMPTIONS,
    act_from_record,
    act_of,
    act_record,
    decrees,
    new_deadline,
    quoted_title,
    read_json,
    read_search,
)
from storage.records import ROME, Precision
from tests.crawler.expected_cases import BURL, Golden, golden_params

NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)


@pytest.mark.parametrize("case", golden_params("burl"))
def test_regeneration_produces_what_the_tests_check(case: Golden) -> None:
    assert case.produce() == case.expected()


def test_nul_escapes_are_removed_and_dates_of_every_allowed_form_read() -> None:
    page = read_search((BURL / "search_page_synthetic.json").read_bytes(), "u", NOW)
    assert page.total == 5
    titles = [h.title for h in page.hits]
    assert all("\x00" not in t for t in titles)
    assert [h.published.date().isoformat() if h.published else None for h in page.hits] == [
        "2026-09-01",
        "2026-09-01",
        "2026-04-01",
        "2026-08-28",
        "2026-08-26",
    ]


def test_nuls_go_but_an_escaped_backslash_stays_text() -> None:
    # A literal backslash before "u0000" is text, not a NUL escape: it must not become "\b".
    body = b'{"a": "x\\u0000y", "b": "p\\\\u0000q", "c": ["\x00z"]}'
    assert read_json(body) == {"a": "xy", "b": "p\\u0000q", "c": ["z"]}


@pytest.mark.parametrize(
    ("body", "assumption"),
    [
        (b"<html>maintenance</html>", "body"),
        (b"[]", "body"),
        ((BURL / "search_unknown_shape_synthetic.json").read_bytes(), "total"),
        (b'{"conteggioTotale": 2, "lista": {"a": 1}}', "list"),
        (b'{"conteggioTotale": 1, "lista": [{"id": 3, "oggetto": "x"}]}', "id"),
        (
            b'{"conteggioTotale": 1, "lista": [{"idBurl": 3, "titolo": "x", "dataPubblicazione": "ieri"}]}',
            "published",
        ),
    ],
)
def test_answers_that_break_an_assumption_are_refused_naming_it(body: bytes, assumption: str) -> None:
    with pytest.raises(ShapeError) as raised:
        read_search(body, "u", NOW)
    assert ASSUMPTIONS[assumption] in str(raised.value)


def test_an_empty_answer_is_valid() -> None:
    assert read_search(b'{"conteggioTotale": 0}', "u", NOW).hits == ()
    assert read_search(b'{"conteggioTotale": "0", "lista": []}', "u", NOW).total == 0


def test_one_unreadable_hit_is_noted_and_the_others_kept() -> None:
    body = json.dumps(
        {
            "conteggioTotale": 2,
            "lista": [
                {"titolo": "senza id"},
                {"idBurl": 7, "titolo": "Proroga del bando", "dataPubblicazione": 1788220800000},
            ],
        }
    ).encode()
    errors: list[str] = []
    page = read_search(body, "u", NOW, errors=errors)
    assert [h.id_burl for h in page.hits] == ["7"]
    assert len(errors) == 1 and "no idBurl or titolo" in errors[0]


@pytest.mark.parametrize(
    ("title", "deadline"),
    [
        (
            "Proroga al 30 gennaio 2027 del termine del bando «X Y» di cui al d.d.u.o. n. 1234 del 12 marzo 2026",
            (2027, 1, 30, 0, 0, "date"),
        ),
        (
            "Proroga dei termini del bando «X Y»: domande entro le ore 16:00 del 15/12/2026",
            (2026, 12, 15, 16, 0, "datetime"),
        ),
        ("Proroga dei termini del bando «X Y» fino al 31 ottobre 2026", (2026, 10, 31, 0, 0, "date")),
        ("Proroga dei termini del bando di cui al decreto n. 1234 del 12 marzo 2026", None),
        ("Approvazione della graduatoria del bando al 30 gennaio 2027", None),
    ],
)
def test_only_the_date_a_proroga_introduces_is_its_new_deadline(title: str, deadline: tuple | None) -> None:
    act = act_of(
        read_search(
            json.dumps(
                {
                    "conteggioTotale": 1,
                    "lista": [{"idBurl": 1, "titolo": title, "dataPubblicazione": "2026-09-01"}],
                }
            ).encode(),
            "u",
            NOW,
        ).hits[0],
        url="u",
    )
    if deadline is None:
        assert act.new_deadline is None
    else:
        *parts, precision = deadline
        assert act.new_deadline == datetime(*parts, tzinfo=ROME)
        assert act.new_deadline_precision == Precision(precision)


def test_references_read_from_a_title() -> None:
    title = "Rettifica del d.d.s. 12 marzo 2026 n. 3456 e del decreto n. 9876 del 3/6/2026 «Voucher digitale 2026»"
    assert decrees(title) == ("9876/2026", "3456/2026")
    assert quoted_title(title) == "Voucher digitale 2026"
    assert new_deadline("Riapertura dei termini al 1 dicembre 2026", "riapertura") is not None


def test_the_notice_record_gives_back_its_act() -> None:
    page = read_search((BURL / "search_page_synthetic.json").read_bytes(), "u", NOW)
    for hit in page.hits:
        act = act_of(hit, url=f"https://burl.example/download?id={hit.id_burl}")
        record = act_record(hit, act)
        assert record.kind == "notice" and record.status.value == "unknown"
        assert act_from_record(record) == act
