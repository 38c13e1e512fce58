"""What an alert says (notifier.messages.alerts): snapshots and one test per point.

Snapshots: a new-call alert, a change alert and a reminder, in Italian and English, as plain
text (the console channel), Telegram HTML and e-mail HTML, stored under
``tests/data/notifier/snapshots/``. A deliberate change of wording or layout is recorded with

    SENTINELLA_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/notifier/test_alert_content.py

and the rewritten files are then read (``git diff``) before they are committed.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from notifier.config import EmailConfig, MatchingConfig, RemindersConfig
from notifier.messages.alerts import Alert, render_email, render_telegram, render_text
from notifier.messages.formats import sentences, shorten
from notifier.planning.alerts import call_context, plan_alerts
from notifier.planning.reminders import plan_reminders
from storage.calls import get_call, group_calls
from storage.db import Database
from storage.outbox import Recipient
from storage.records import ROME
from tests.fakes.browser import CHROMIUM, overflows
from tests.fakes.delivery_data import FakeCall
from tests.fakes.planning_data import (
    PACKAGING_URL,
    add_member,
    outbox_rows,
    packaging_call,
    set_feedback,
    store,
)

SNAPSHOTS = Path(__file__).resolve().parents[1] / "data" / "notifier" / "snapshots"
UPDATE = os.environ.get("SENTINELLA_UPDATE_SNAPSHOTS") == "1"

EMAIL = EmailConfig(
    host="127.0.0.1",
    from_address="avvisi@cluster.example",
    list_unsubscribe_url="https://cluster.example/unsubscribe",
)

CALL = FakeCall(
    id=11,
    group_id=7,
    source="incentivi",
    url="https://www.incentivi.gov.it/it/catalogo/packaging-sostenibile-2026",
    title=(
        "Bando Packaging sostenibile 2026: contributi a fondo perduto per imballaggi riciclabili, "
        "ricariche e materiali da fonti rinnovabili nelle filiere manifatturiere"
    ),
    status="forthcoming",
    opens=datetime(2026, 9, 15, 10, 0, tzinfo=ROME),
    closes=datetime(2026, 10, 30, 12, 0, tzinfo=ROME),
    granting_body="Ministero delle Imprese e del Made in Italy",
    beneficiaries=("Micro, piccole e medie imprese con sede operativa in Italia",),
    summary=(
        "La misura sostiene investimenti in imballaggi riciclabili e sistemi di ricarica. "
        "Copre fino al 50% delle spese ammissibili. Le domande si presentano sulla piattaforma "
        "del gestore dalle ore 10:00 del giorno di apertura."
    ),
    budget_total=Decimal("2000000"),
)

MATCHED = [
    {"kind": "topic", "term": "imballaggi riciclabili", "field": "title", "topic": "packaging"},
    {"kind": "topic", "term": "packaging", "field": "title", "topic": "packaging"},
    {
        "kind": "topic",
        "term": "materiali da fonti rinnovabili",
        "field": "title",
        "topic": "sostenibilita-circolare",
    },
    {"kind": "keyword", "term": "ricariche", "field": "title", "topic": None},
    {"kind": "topic", "term": "investimenti", "field": "summary", "topic": "investimenti-produttivi"},
]


def alert(now: datetime, *, lang: str, reason: str, payload: dict[str, Any], **call: Any) -> Alert:
    recipient = Recipient(1, "Laura Bianchi", lang, 42, "laura@example.com", True, False, True)
    values = {**CALL.__dict__, **call}
    return Alert(99, reason, "telegram", recipient, FakeCall(**values), payload, now, group_id=7)


def new_alert(now: datetime, lang: str) -> Alert:
    return alert(now, lang=lang, reason="new", payload={"reasons": ["(old form)"], "matched": MATCHED})


def change_alert(now: datetime, lang: str) -> Alert:
    moved = [{"kind": "deadline", "old": "2026-10-15T12:00:00+02:00", "new": "2026-10-30T12:00:00+01:00"}]
    return alert(
        now,
        lang=lang,
        reason="changed:5",
        payload={"changes": moved},
        status="open",
        opens=now - timedelta(days=1),
    )


def reminder_alert(now: datetime, lang: str) -> Alert:
    return alert(
        now,
        lang=lang,
        reason="reminder-close-7d:2026-09-09",
        payload={"reminder": "close"},
        status="open",
        opens=now - timedelta(days=1),
        closes=now + timedelta(days=7, hours=3),
    )


def email_html(item: Alert) -> str:
    message = email.message_from_bytes(render_email(item, EMAIL).as_bytes(), policy=email.policy.default)
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def email_text(item: Alert) -> str:
    message = email.message_from_bytes(render_email(item, EMAIL).as_bytes(), policy=email.policy.default)
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


KINDS = {"new": new_alert, "change": change_alert, "reminder": reminder_alert}
FORMATS = {
    "txt": render_text,
    "telegram.html": lambda a: render_telegram(a).html,
    "email.html": email_html,
}


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("lang", ["it", "en"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_snapshot(now: datetime, kind: str, lang: str, fmt: str) -> None:
    got = FORMATS[fmt](KINDS[kind](now, lang))
    path = SNAPSHOTS / f"alert-{kind}.{lang}.{fmt}"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got if got.endswith("\n") else got + "\n", encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}: run with SENTINELLA_UPDATE_SNAPSHOTS=1"
    assert got.rstrip("\n") == path.read_text(encoding="utf-8").rstrip("\n")


# --- one test per point -----------------------------------------------------------------------


def test_new_alert_says_what_to_act_on(now: datetime) -> None:
    text = render_text(new_alert(now, "it"))
    assert text.startswith("🆕 Nuovo bando\n")
    assert "Pubblicato da: Ministero delle Imprese e del Made in Italy · Stato: in apertura" in text
    assert "Chi può partecipare: Micro, piccole e medie imprese con sede operativa in Italia" in text
    # One or two sentences of summary, cut at a sentence's end.
    assert (
        "La misura sostiene investimenti in imballaggi riciclabili e sistemi di ricarica. "
        "Copre fino al 50% delle spese ammissibili.\n" in text
    )
    assert "Le domande si presentano" not in text
    assert "Apertura: 15 settembre 2026, ore 10:00 (apre tra 13 giorni)" in text
    assert "Scadenza: 30 ottobre 2026, ore 12:00 (chiude tra 58 giorni)" in text
    assert "Dotazione: € 2.000.000" in text


def test_title_is_cut_at_a_word_boundary(now: datetime) -> None:
    words = " ".join(f"parola{n}" for n in range(200))  # 1,389 characters; storage keeps 1,000
    stored = words[:1000]  # cut mid-word by the storage cap
    for item in (alert(now, lang="it", reason="new", payload={}, title=stored),):
        text = render_text(item)
        title = text.split("\n\n")[1].split("\n")[0]
        assert title.endswith("…") and len(title) <= 300
        assert stored.startswith(title[:-1]) and title[:-1].split()[-1] in words.split()
        telegram = render_telegram(item).html
        assert f"<b>{title}</b>" in telegram
    assert shorten("Bando per le imprese cosmetiche", 20) == "Bando per le…"


def test_a_long_message_is_cut_at_word_boundaries(now: datetime) -> None:
    item = alert(
        now,
        lang="it",
        reason="new",
        payload={"matched": MATCHED},
        title="Titolo lungo " * 70,
        summary="Parola " * 2000,
        beneficiaries=("Imprese artigiane " * 200,),
    )
    text = render_telegram(item, limit=900).text
    assert len(text) <= 900
    # Each cut ends a whole word ("…" alone: a field with no room left).
    cut = [piece.split()[-1] for piece in text.split("…")[:-1] if not piece[-1:].isspace()]
    assert cut and set(cut) <= {"Titolo", "lungo", "Parola", "Imprese", "artigiane"}, cut


def test_opening_date_only_while_it_lies_ahead(now: datetime) -> None:
    ahead = render_text(alert(now, lang="en", reason="new", payload={}, opens=now + timedelta(days=3)))
    assert "Opens: 5 September 2026, 09:00 (opens in 3 days)" in ahead
    for past in (now - timedelta(days=1), now):
        text = render_text(alert(now, lang="en", reason="new", payload={}, opens=past))
        assert "Opens" not in text and "Apertura" not in text


def test_one_link(now: datetime) -> None:
    item = new_alert(now, "it")
    url = CALL.url
    message = render_telegram(item)
    assert "<a " not in message.html and url not in message.html and url not in message.text
    buttons = [b for row in message.keyboard.inline_keyboard for b in row if b.url]
    assert [b.url for b in buttons] == [url]
    assert render_text(item).count(url) == 1  # the console has no button: the URL, once
    html_part = email_html(item)
    assert re.findall(r'href="([^"]+)"', html_part) == [url, "https://cluster.example/unsubscribe"]
    assert html_part.count(url) == 1
    assert email_text(item).count(url) == 1


def test_granting_body_instead_of_an_internal_label(now: datetime) -> None:
    imported = render_text(
        alert(
            now,
            lang="it",
            reason="new",
            payload={},
            source="manual",
            granting_body="Camera di Commercio di Milano Monza Brianza Lodi",
        )
    )
    assert "Pubblicato da: Camera di Commercio di Milano Monza Brianza Lodi" in imported
    assert "Inserito a mano" not in imported
    bare = render_text(
        alert(
            now,
            lang="en",
            reason="new",
            payload={},
            source="manual",
            granting_body="",
            url="https://www.cluster-cosmetico.example/bandi/1",
        )
    )
    assert "Published by: cluster-cosmetico.example" in bare and "Added by hand" not in bare
    portal = render_text(alert(now, lang="it", reason="new", payload={}, granting_body=""))
    assert "Pubblicato da: incentivi.gov.it" in portal
    # The group's granting body, when the call has none.
    group = {"group": {"granting_body": {"value": "Regione Lombardia", "source": "openinnovation"}}}
    filled = render_text(alert(now, lang="it", reason="new", payload=group, granting_body=""))
    assert "Pubblicato da: Regione Lombardia" in filled


def test_who_may_apply_from_eligibility(now: datetime) -> None:
    def line(lang: str, admits: list[str], sectors: tuple[str, ...] = ()) -> str:
        payload = {"applicants": {"admits": admits, "sectors": list(sectors)}}
        text = render_text(alert(now, lang=lang, reason="new", payload=payload, beneficiaries=()))
        found = [x for x in text.split("\n") if x.startswith(("Chi può partecipare", "Who may apply"))]
        return found[0] if found else ""

    assert line("it", ["micro", "pmi", "startup"]) == "Chi può partecipare: PMI"
    assert line("en", ["micro", "pmi", "startup"]) == "Who may apply: SME"
    assert (
        line("it", ["grande-impresa", "micro", "pmi", "startup"])
        == "Chi può partecipare: Imprese di ogni dimensione"
    )
    assert (
        line("en", ["ricerca", "micro", "pmi", "startup"])
        == "Who may apply: SME, Universities and research bodies"
    )
    assert line("it", ["micro", "pmi", "startup"], ("agricoltura",)) == (
        "Chi può partecipare: PMI (solo imprese agricole e agroalimentari)"
    )
    assert line("en", [], ("agricoltura",)) == "Who may apply: Only agricultural and agri-food firms"
    assert line("it", []) == ""


def test_at_most_three_plain_reasons(now: datetime) -> None:
    it = render_text(new_alert(now, "it"))
    why = next(x for x in it.split("\n") if x.startswith("Perché: "))
    # One reason per topic (the second "packaging" hit is left out), three at most.
    assert why == (
        "Perché: Packaging: «imballaggi riciclabili» nel titolo; "
        "Sostenibilità ed economia circolare: «materiali da fonti rinnovabili» nel titolo; "
        "la vostra parola chiave «ricariche» nel titolo"
    )
    legacy = render_text(
        alert(now, lang="it", reason="new", payload={"reasons": [f"r{n}" for n in range(6)]})
    )
    assert "Perché: r0; r1; r2\n" in legacy + "\n"


def test_change_alert_does_not_repeat_its_headline(now: datetime) -> None:
    for lang, headline, line in (
        ("it", "📅 Scadenza spostata", "15 ottobre 2026, ore 12:00 → 30 ottobre 2026, ore 12:00"),
        ("en", "📅 Deadline moved", "15 October 2026, 12:00 → 30 October 2026, 12:00"),
    ):
        text = render_text(change_alert(now, lang))
        assert text.startswith(f"{headline}\n{line}\n")
        assert text.count("Scadenza spostata") + text.count("Deadline moved") == 1
        assert "Perché" not in text and "Why" not in text
    reopened = {"changes": [{"kind": "reopened", "old": None, "new": "2026-10-15T12:00:00+02:00"}]}
    text = render_text(alert(now, lang="it", reason="changed:6", payload=reopened))
    assert text.startswith("🔓 Bando riaperto\nScade 15 ottobre 2026, ore 12:00\n")


def test_summary_sentences() -> None:
    text = "Il bando sostiene le PMI. Con D.G.R. n. 123 del 2025 la Regione stanzia fondi. Terza."
    assert (
        sentences(text, 300)
        == "Il bando sostiene le PMI. Con D.G.R. n. 123 del 2025 la Regione stanzia fondi."
    )
    assert sentences(text, 40) == "Il bando sostiene le PMI."
    assert sentences("una sola frase lunga senza punto finale " * 10, 50).endswith("…")


# --- the group's portals reach the alert (issue 13's open point) ------------------------------


class AnyMatcher:
    def __init__(self, profiles: Any, config: MatchingConfig) -> None:
        self.members = [m for m, _ in profiles]

    def match(self, call: Any, *, now: datetime) -> list[Any]:
        from notifier.matching.engine import Match, Reason

        reason = Reason("topic", "imballaggi", "title", "packaging")
        return [Match(m, 1.0, (reason,)) for m in self.members] if call.is_open(now) else []


def test_open_innovation_allocation_and_summary_reach_the_alert(db: Database, now: datetime) -> None:
    member = add_member(
        db, now=now, chat_id=101, profile={"keywords": ["packaging"], "channels": ["telegram"]}
    )
    lombardia = packaging_call(
        now=now,
        budget_total=None,
        summary="Misura ai sensi della l.r. 11/2014, art. 2, e della d.g.r. n. XII/1234.",
    )
    page = packaging_call(
        "bando:packaging-sostenibile",
        now=now,
        source="openinnovation",
        url="https://www.openinnovation.regione.lombardia.it/it/bandi-e-sperimentazioni/packaging-sostenibile",
        summary="Contributi alle PMI lombarde per imballaggi riciclabili. Destinatari: micro, piccole e medie imprese.",
        budget_total=Decimal("3500000"),
        links=(PACKAGING_URL,),
    )
    canonical, other = store(db, [lombardia, page], now=now)
    assert canonical.group_id == other.group_id

    plan_alerts(db, now=now, config=MatchingConfig(), matcher_factory=AnyMatcher)
    [row] = outbox_rows(db)
    assert row.call_id == canonical.id
    assert row.payload["group"]["budget_total"] == {"value": "3500000.00", "source": "openinnovation"}
    assert row.payload["matched"] == [
        {"kind": "topic", "term": "imballaggi", "field": "title", "topic": "packaging"}
    ]
    recipient = Recipient(member, "Laura", "it", 101, None, True, False, True)
    item = Alert(1, row.reason, "telegram", recipient, get_call(db, row.call_id), row.payload, now)
    text = render_text(item)
    assert "Dotazione: € 3.500.000 (secondo Open Innovation Lombardia)" in text
    # The page's plain-language summary, not the call's own legal wording.
    assert "Contributi alle PMI lombarde per imballaggi riciclabili." in text
    assert "l.r. 11/2014" not in text
    assert "Chi può partecipare: PMI" in text
    assert "Pubblicato da: Regione Lombardia" in text

    # Reminders carry the same group facts.
    assert canonical.group_id is not None
    set_feedback(db, member, canonical.group_id, "interested", now=now)
    later = datetime(2026, 10, 29, 13, 0, tzinfo=ROME)
    assert plan_reminders(db, now=later, config=RemindersConfig()) == 1
    [reminder] = [r for r in outbox_rows(db) if r.reason.startswith("reminder")]
    assert reminder.payload["group"]["budget_total"]["value"] == "3500000.00"
    item = Alert(
        2, reminder.reason, "telegram", recipient, get_call(db, reminder.call_id), reminder.payload, later
    )
    assert "Dotazione: € 3.500.000 (secondo Open Innovation Lombardia)" in render_text(item)


def test_call_context_prefers_the_calls_own_values(db: Database, now: datetime) -> None:
    # The call's own budget and granting body stand; only a plain-language summary is preferred.
    own = packaging_call(now=now)
    page = packaging_call(
        "bando:x",
        now=now,
        source="openinnovation",
        budget_total=Decimal("9"),
        url="https://www.openinnovation.regione.lombardia.it/it/bandi-e-sperimentazioni/x",
        links=(PACKAGING_URL,),
    )
    canonical, _ = store(db, [own, page], now=now)
    context = call_context(canonical, group_calls(db, canonical.group_id or 0))
    assert set(context["group"]) == {"summary"}
    assert context["group"]["summary"]["source"] == "openinnovation"
    assert context["group"]["summary"]["plain"]
    assert context["applicants"]["admits"] == ["micro", "pmi", "startup"]


# --- the e-mail fits a phone and a desktop ----------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium)")
def test_email_fits_375_and_1200_pixels(now: datetime, tmp_path: Path) -> None:
    long_title = "Bando<b>x</b> " + "Supercalifragilistichespiralidoso" * 8 + " con una parola lunga" * 20
    item = alert(now, lang="it", reason="new", payload={"matched": MATCHED}, title=long_title,
                 url="https://www.example.org/" + "a" * 400)  # fmt: skip
    pages = {}
    for name, html_text in (("new", email_html(item)), ("change", email_html(change_alert(now, "en")))):
        pages[name] = tmp_path / f"alert-{name}.html"
        pages[name].write_text(html_text, encoding="utf-8")
    overflow = overflows(pages, (375, 1200))
    assert overflow == {key: 0 for key in overflow} and len(overflow) == 4, overflow
