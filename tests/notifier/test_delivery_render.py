"""notifier.messages.alerts: escaping of scraped text, the 4096 cap, languages, countdowns, e-mail headers."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest

from notifier.config import EmailConfig
from notifier.messages.alerts import (
    TELEGRAM_LIMIT,
    Alert,
    clean_subject,
    parse_feedback,
    render_email,
    render_telegram,
    render_text,
)
from notifier.messages.digest import digest_email
from notifier.messages.formats import countdown, safe_url, source_label, tg_len
from notifier.planning.digest import Digest
from storage.outbox import Recipient
from storage.records import ROME, Precision
from tests.fakes.delivery_data import FakeCall

HOSTILE = (
    'Bando <b>grassetto</b> & </a><a href="javascript:alert(1)">x</a> *Markdown* _corsivo_ '
    "[link](http://e.vil)\nseconda riga\r\n&amp; fine"
)


def make_alert(
    now: datetime,
    *,
    lang: str = "it",
    reason: str = "new",
    payload: dict[str, Any] | None = None,
    **call: Any,
) -> Alert:
    recipient = Recipient(1, "Laura <Bianchi>", lang, 42, "laura@example.com", True, False, True)
    return Alert(
        outbox_id=99,
        reason=reason,
        channel="telegram",
        recipient=recipient,
        call=FakeCall(**call),
        payload=payload
        if payload is not None
        else {"reasons": ["packaging (titolo)", "airless (descrizione)"]},
        now=now,
        group_id=7,
    )


class TagCollector(HTMLParser):
    """Collects the tags and text of Telegram HTML, checking tags are balanced."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.stack: list[str] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text += data


def parse(markup: str) -> TagCollector:
    collector = TagCollector()
    collector.feed(markup)
    collector.close()
    assert collector.stack == []
    return collector


def test_new_alert_in_italian(now: datetime) -> None:
    message = render_telegram(make_alert(now))
    assert "<b>Nuovo bando</b>" in message.html
    assert "Pubblicato da: Regione Lombardia – Bandi e Servizi · Stato: aperto" in message.html
    assert "Scadenza: 7 settembre 2026, ore 12:00 (chiude tra 5 giorni)" in message.html
    assert "Dotazione: € 1.500.000" in message.html
    assert "Perché: packaging (titolo); airless (descrizione)" in message.html
    # One link: the button, not a second one in the text.
    assert "<a " not in message.html and "https://" not in message.html
    assert "https://" not in message.text
    buttons = message.keyboard.inline_keyboard
    assert [b.text for b in buttons[0]] == ["Mi interessa", "Non per noi"]
    assert [b.callback_data for b in buttons[0]] == ["fb:i:7", "fb:n:7"]
    assert (
        buttons[1][0].text == "Apri il bando"
        and buttons[1][0].url == "https://www.bandi.regione.lombardia.it/bando?id=1&lang=it"
    )


def test_new_alert_in_english(now: datetime) -> None:
    message = render_telegram(make_alert(now, lang="en"))
    assert "<b>New call</b>" in message.html
    assert "Deadline: 7 September 2026, 12:00 (closes in 5 days)" in message.html
    assert "Budget: €1,500,000" in message.html
    assert [b.text for row in message.keyboard.inline_keyboard for b in row] == [
        "Interested",
        "Not for us",
        "Open the call",
    ]


def test_hostile_title_renders_as_text(now: datetime) -> None:
    message = render_telegram(make_alert(now, title=HOSTILE, payload={"reasons": ["<i>x</i> & y"]}))
    parsed = parse(message.html)
    # Only our own markup: bold labels (the link is the button).
    assert set(parsed.tags) <= {"b"}
    folded = " ".join(HOSTILE.split())
    assert folded in parsed.text  # every character shown, newlines folded into spaces
    assert "<i>x</i> & y" in parsed.text
    assert folded in message.text  # the plain variant shows it unescaped
    assert "&amp;amp; fine" in message.html


def test_unsafe_links_are_dropped(now: datetime) -> None:
    for url in ("javascript:alert(1)", "ftp://x.it", "https://user@x.it/", "https://x.it/\x00", ""):
        message = render_telegram(make_alert(now, url=url))
        assert "<a " not in message.html
        assert len(message.keyboard.inline_keyboard) == 1
    assert safe_url("https://x.it/" + "a" * 3000) is None


def test_unsafe_url_characters_are_percent_encoded(now: datetime) -> None:
    cases = {
        "https://x.it/a b": "https://x.it/a%20b",
        'https://x.it/"onmouseover': "https://x.it/%22onmouseover",
        "https://x.it/bando?<id>=1&x=2": "https://x.it/bando?%3Cid%3E=1&x=2",
        "https://x.it/caffè": "https://x.it/caff%C3%A8",
        "https://x.it/a%20b": "https://x.it/a%20b",
    }
    for url, safe in cases.items():
        assert safe_url(url) == safe
        message = render_telegram(make_alert(now, url=url))
        assert message.keyboard.inline_keyboard[-1][0].url == safe
        assert "<a " not in message.html
        assert render_text(make_alert(now, url=url)).count(safe) == 1


@pytest.mark.parametrize("lang", ["it", "en"])
def test_long_messages_are_capped_without_breaking_markup(now: datetime, lang: str) -> None:
    title = "Titolo <lungo> & " * 800
    reasons = ["motivo & <ragione> " * 50 for _ in range(20)]
    message = render_telegram(make_alert(now, lang=lang, title=title, payload={"reasons": reasons}))
    assert tg_len(message.html) <= TELEGRAM_LIMIT
    assert tg_len(message.text) <= TELEGRAM_LIMIT
    parsed = parse(message.html)
    assert "…" in parsed.text
    assert message.keyboard.inline_keyboard[-1][0].text in ("Apri il bando", "Open the call")
    # Cutting happened before escaping: no dangling entity such as "&am" before the ellipsis.
    for chunk in message.html.split("…")[:-1]:
        tail = chunk[-6:]
        assert "&" not in tail or ";" in tail[tail.index("&") :]


def test_cap_counts_utf16_units(now: datetime) -> None:
    message = render_telegram(make_alert(now, title="🧴" * 5000))
    assert len(message.html) < TELEGRAM_LIMIT  # emoji count double
    assert tg_len(message.html) <= TELEGRAM_LIMIT


def test_countdowns(now: datetime) -> None:
    at = now.replace(hour=12, minute=0)
    assert countdown(at, now, "it", verb="closes", precision=Precision.DATETIME) == "chiude oggi alle 12:00"
    assert (
        countdown(at + timedelta(days=1), now, "it", verb="closes", precision=Precision.DATE)
        == "chiude domani"
    )
    assert (
        countdown(at + timedelta(days=5), now, "it", verb="closes", precision=None) == "chiude tra 5 giorni"
    )
    assert countdown(at + timedelta(days=3), now, "en", verb="opens", precision=None) == "opens in 3 days"
    assert countdown(now - timedelta(minutes=1), now, "it", verb="closes", precision=None) == "chiuso"


def test_date_only_deadline_and_sportello(now: datetime) -> None:
    closes = datetime(2026, 9, 30, tzinfo=ROME)
    dated = render_text(make_alert(now, closes=closes, closes_precision=Precision.DATE))
    assert "Scadenza: 30 settembre 2026 (chiude tra 28 giorni)" in dated
    sportello = render_text(make_alert(now, closes=None, sportello=True, opens=now + timedelta(days=2)))
    assert "A sportello: fino a esaurimento fondi" in sportello
    assert "(apre tra 2 giorni)" in sportello


def test_change_alerts(now: datetime) -> None:
    moved = {
        "changes": [
            {"kind": "deadline", "old": "2026-09-07T12:00:00+02:00", "new": "2026-10-15T12:00:00+02:00"}
        ]
    }
    text = render_telegram(make_alert(now, reason="changed:5", payload=moved)).html
    assert "📅 <b>Scadenza spostata</b>" in text
    assert "7 settembre 2026, ore 12:00 → 15 ottobre 2026, ore 12:00" in text
    reopened = {"changes": {"status": {"old": "closed", "new": "open"}}, "event_kind": "reopened"}
    assert (
        "<b>Call reopened</b>"
        in render_telegram(make_alert(now, lang="en", reason="changed:6", payload=reopened)).html
    )
    early = {"changes": [{"kind": "closed_early", "old": "2026-09-30T00:00:00+02:00", "new": None}]}
    assert (
        "<b>Bando chiuso in anticipo</b>"
        in render_telegram(make_alert(now, reason="changed:7", payload=early)).html
    )
    hostile = {"changes": [{"kind": "budget", "old": "<b>1</b>", "new": "2000000"}]}
    parsed = parse(render_telegram(make_alert(now, reason="changed:8", payload=hostile)).html)
    assert set(parsed.tags) <= {"b", "a"}


def test_reminder_alerts(now: datetime) -> None:
    text = render_text(
        make_alert(now, reason="reminder-close-1d", payload={}, closes=now + timedelta(days=1))
    )
    assert text.startswith("⏰ Promemoria: scadenza vicina")
    assert "chiude domani" in text
    stage = {"deadline": "2026-09-04T17:00:00+02:00", "deadline_label": "Fase 1 <pre-registrazione>"}
    message = render_telegram(make_alert(now, lang="en", reason="reminder-close-7d", payload=stage))
    assert (
        "Next deadline: 4 September 2026, 17:00 (closes in 2 days) — Fase 1 &lt;pre-registrazione&gt;"
        in message.html
    )
    opening = render_text(
        make_alert(now, reason="reminder-open-24h", payload={}, opens=now + timedelta(hours=20))
    )
    assert opening.startswith("⏰ Promemoria: il bando apre a breve")


def test_feedback_callback_data() -> None:
    assert parse_feedback("fb:i:42") == ("interested", 42)
    assert parse_feedback("fb:n:7") == ("not_for_us", 7)
    for forged in (None, "", "fb:x:1", "fb:i:", "fb:i:1:2", "fb:i:-1", "fb:i:" + "9" * 30, "xx:i:1"):
        assert parse_feedback(forged) is None


def test_email_message(now: datetime) -> None:
    config = EmailConfig(
        host="127.0.0.1",
        from_address="avvisi@cluster.example",
        list_unsubscribe_mailto="unsubscribe@cluster.example",
        list_unsubscribe_url="https://cluster.example/unsubscribe",
    )
    message = render_email(make_alert(now, title=HOSTILE), config)
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    subject = str(parsed["Subject"])
    assert "\n" not in subject and "\r" not in subject
    assert subject.startswith("[Sentinella] Nuovo bando: Bando <b>grassetto</b>")
    assert len(subject) <= 150
    assert parsed["Message-ID"] == "<alert-99.sentinella@cluster.example>"
    assert parsed["List-Unsubscribe"] == (
        "<https://cluster.example/unsubscribe>, <mailto:unsubscribe@cluster.example?subject=unsubscribe>"
    )
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",))
    html_part = parsed.get_body(("html",))
    assert text is not None and html_part is not None
    assert " ".join(HOSTILE.split()) in text.get_content()
    body = html_part.get_content()
    assert "<b>grassetto</b>" not in body and "&lt;b&gt;grassetto&lt;/b&gt;" in body
    assert 'href="javascript' not in body
    assert "chiude tra 5 giorni" in body


@pytest.mark.parametrize(
    ("source", "it", "en"),
    [
        ("lombardia", "Regione Lombardia – Bandi e Servizi", "Regione Lombardia – Bandi e Servizi"),
        ("sedia", "EU Funding & Tenders Portal", "EU Funding & Tenders Portal"),
        ("incentivi", "incentivi.gov.it", "incentivi.gov.it"),
        ("feeds", "Feed RSS (MIMIT, agenzie UE)", "RSS feeds (MIMIT, EU agencies)"),
        ("manual", "Inserito a mano", "Added by hand"),
        ("nuova-fonte", "nuova-fonte", "nuova-fonte"),
    ],
)
def test_sources_have_human_labels(now: datetime, source: str, it: str, en: str) -> None:
    assert source_label(source, "it") == it and source_label(source, "en") == en
    if source in ("manual", "nuova-fonte"):
        # No portal: an alert shows the link's host, never the internal label.
        it = en = "bandi.regione.lombardia.it"
    assert f"Pubblicato da: {it} · " in render_text(make_alert(now, source=source))
    assert f"Published by: {en} · " in render_text(make_alert(now, lang="en", source=source))


def _empty_digest(now: datetime) -> Digest:
    return Digest(
        made_at=now,
        period_start=now - timedelta(days=1),
        period_end=now,
        closing=(),
        themes=(),
        changes=(),
        notices=(),
        partner_searches=(),
        health=(),
    )


@pytest.mark.parametrize(
    ("settings", "unsubscribe", "one_click"),
    [
        ({}, "<mailto:avvisi@cluster.example?subject=unsubscribe>", False),
        (
            {"list_unsubscribe_mailto": "stop@cluster.example"},
            "<mailto:stop@cluster.example?subject=unsubscribe>",
            False,
        ),
        (
            {"list_unsubscribe_url": "https://cluster.example/stop?m=1"},
            "<https://cluster.example/stop?m=1>",
            True,
        ),
        ({"list_unsubscribe_url": "http://cluster.example/stop"}, "<http://cluster.example/stop>", False),
        (
            {
                "list_unsubscribe_url": "https://cluster.example/stop",
                "list_unsubscribe_mailto": "stop@cluster.example",
            },
            "<https://cluster.example/stop>, <mailto:stop@cluster.example?subject=unsubscribe>",
            True,
        ),
    ],
)
def test_every_email_says_how_to_unsubscribe(
    now: datetime, settings: dict[str, str], unsubscribe: str, one_click: bool
) -> None:
    # Alerts and digests alike: the configured address or URL, else a mailto to the sender;
    # one-click (RFC 8058) only with an https URL.
    config = EmailConfig.model_validate(
        {"host": "127.0.0.1", "from_address": "avvisi@cluster.example", **settings}
    )
    alert = render_email(make_alert(now), config)
    digest = digest_email(_empty_digest(now), to="staff@cluster.example", email=config)
    for message in (alert, digest):
        parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        assert parsed["List-Unsubscribe"] == unsubscribe
        assert parsed.get_all("List-Unsubscribe", []) == [unsubscribe]
        post = parsed.get_all("List-Unsubscribe-Post", [])
        assert post == (["List-Unsubscribe=One-Click"] if one_click else [])
    footer = alert.get_body(("plain",))
    assert footer is not None
    first = unsubscribe.split(",")[0].strip("<>")
    assert first in footer.get_content()


def test_subject_cannot_inject_headers() -> None:
    assert clean_subject("Oggetto\r\nBcc: victim@example.com") == "Oggetto Bcc: victim@example.com"
    assert len(clean_subject("x" * 1000)) == 150


@pytest.mark.parametrize("lang", ["it", "en"])
def test_every_email_says_its_language(now: datetime, lang: str) -> None:
    # Content-Language survives the parts being set (set_content() clears Content-* headers).
    config = EmailConfig(host="127.0.0.1", from_address="avvisi@cluster.example")
    alert = render_email(make_alert(now, lang=lang), config)
    digest = digest_email(_empty_digest(now), to="staff@cluster.example", email=config, language=lang)
    for message in (alert, digest):
        parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        assert parsed.get_all("Content-Language") == [lang]
