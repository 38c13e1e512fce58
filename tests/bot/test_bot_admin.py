"""Admin and staff commands: /crawl, /stato, /invita, /membri, /digest; refusals; the audit log."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crawler.config import SOURCE_NAMES
from notifier.bot import cancel_background
from notifier.bot.admin import summary_text
from notifier.bot.common import MAX_MESSAGE, CrawlSummary
from notifier.messages.formats import tg_len
from storage import members, outbox, planning, sources
from storage.audit import audit_log, chat_actor
from storage.invitations import list_invitations
from tests.bot.harness import ADMIN_CHAT, Harness

pytestmark = pytest.mark.integration

MEMBER = 7171
ADMIN_MEMBER = 7272
STAFF = 7373


def actions(bot: Harness) -> list[tuple[str, str, dict]]:
    return [(e.actor, e.action, e.detail) for e in reversed(audit_log(bot.db, limit=100))]


# --- /crawl ------------------------------------------------------------------------------------------


async def test_crawl_replies_now_and_with_the_summary_later(bot: Harness) -> None:
    bot.crawler.hold = True
    started = await bot.send(ADMIN_CHAT, "/crawl sedia")
    assert "Raccolta avviata: sedia" in started.text
    # The handler returned while the crawl runs: the bot keeps serving.
    busy = await bot.send(ADMIN_CHAT, "/crawl SEDIA")
    assert "già in corso" in busy.text
    assert bot.crawler.calls == [["sedia"]]

    before = len(bot.server.requests)
    bot.crawler.release.set()
    await bot.until(lambda: len(bot.server.sent_messages()) > 2)
    summary = bot.server.calls()[before:][-1]
    assert summary.chat_id == ADMIN_CHAT
    assert "Raccolta finita</b> — sedia" in summary.text
    assert (
        "sedia: <b>ok</b> — 3 nuovi, 1 modificati, 40 invariati, 0 errori, 12 richieste, 4 s" in summary.text
    )
    # An admin chat from the settings, bound to no member: named by a hash, not by its id.
    assert (chat_actor(ADMIN_CHAT), "crawl", {"sources": ["sedia"]}) in actions(bot)

    # Once finished, the same source can be crawled again.
    bot.crawler.hold = False
    await bot.send(ADMIN_CHAT, "/crawl sedia")
    await bot.until(lambda: len(bot.crawler.calls) == 2)


async def test_crawl_without_argument_crawls_every_source(bot: Harness) -> None:
    bot.add_member(ADMIN_MEMBER, role="admin", name="Admin")
    await bot.send(ADMIN_MEMBER, "/crawl")
    await bot.until(lambda: any("Raccolta finita" in r.text for r in bot.server.sent_messages()))
    assert bot.crawler.calls == [list(SOURCE_NAMES)]
    [summary] = [r.text for r in bot.server.sent_messages() if "Raccolta finita" in r.text]
    assert "feeds: <b>degraded</b> — 0 nuovi" in summary and "— yield 0 &lt; 5" in summary


async def test_crawl_of_an_unknown_source(bot: Harness) -> None:
    replies = await bot.send(ADMIN_CHAT, "/crawl <nowhere>")
    assert "Fonte sconosciuta: «&lt;nowhere&gt;»" in replies.text
    assert "lombardia, sedia, incentivi, feeds" in replies.text
    assert bot.crawler.calls == []


async def test_a_failed_crawl_is_reported_not_raised(bot: Harness, caplog: pytest.LogCaptureFixture) -> None:
    bot.crawler.fail = True
    await bot.send(ADMIN_CHAT, "/crawl lombardia")
    await bot.until(lambda: any("non è riuscita" in r.text for r in bot.server.sent_messages()))
    [failed] = [r for r in bot.server.sent_messages() if "non è riuscita" in r.text]
    assert "RuntimeError" in failed.text and "Traceback" not in failed.text
    assert "crawl of lombardia started from Telegram failed" in caplog.text


async def test_non_admin_trying_crawl(bot: Harness) -> None:
    bot.add_member(MEMBER)
    replies = await bot.send(MEMBER, "/crawl sedia")
    assert "riservato agli amministratori" in replies.text
    assert bot.crawler.calls == []
    [(actor, _action, detail)] = [a for a in actions(bot) if a[1] == "crawl"]
    member = bot.member(MEMBER)
    assert member is not None and actor == f"member:{member.id}"
    assert detail == {"refused": True, "args": ["sedia"]}


@pytest.mark.parametrize("command", ["/stato", "/invita", "/membri"])
async def test_other_admin_commands_refuse_members(bot: Harness, command: str) -> None:
    bot.add_member(MEMBER, role="staff")
    replies = await bot.send(MEMBER, command)
    assert "riservato agli amministratori" in replies.text
    assert any(a[2].get("refused") for a in actions(bot))


# --- /stato, /invita, /membri ----------------------------------------------------------------------------


async def test_stato(bot: Harness) -> None:
    now = bot.clock()
    run = sources.start_run(bot.db, "sedia", now=now - timedelta(hours=1))
    sources.finish_run(
        bot.db, run, now=now - timedelta(minutes=50), outcome="ok", seen=10, new=2, changed=0, unchanged=8,
        errors=0, requests=3, bytes=100, report={},
    )  # fmt: skip
    planning.record_digest(
        bot.db, made_at=now - timedelta(hours=1), period_start=now - timedelta(days=1),
        period_end=now - timedelta(hours=1), sent=True, summary={},
    )  # fmt: skip
    replies = await bot.send(ADMIN_CHAT, "/stato")
    text = replies.text
    assert "<b>Stato di Sentinella</b>" in text
    assert "✅ sedia: ok" in text and "10 bandi" in text
    assert "<b>Coda degli invii</b>: 0 in attesa" in text
    assert "<b>Ultimo riepilogo</b>: 2 settembre 2026, ore 10:00" not in text  # made at 08:00 Rome
    assert "<b>Ultimo riepilogo</b>: 2 settembre 2026, ore 08:00" in text
    assert "next crawl sedia: 2026-09-02 12:00" in text
    assert (chat_actor(ADMIN_CHAT), "status", {}) in actions(bot)
    assert outbox.backlog(bot.db)["pending"] == 0


async def test_stato_survives_a_broken_daemon_status(bot: Harness, status: dict) -> None:
    status["<b>x</b>"] = "y & z"
    text = (await bot.send(ADMIN_CHAT, "/stato")).text
    assert "&lt;b&gt;x&lt;/b&gt;: y &amp; z" in text


async def test_invita_makes_a_link_that_works(bot: Harness) -> None:
    replies = await bot.send(ADMIN_CHAT, "/invita staff")
    text = replies.text
    assert "Invito <b>staff</b> creato, valido fino al 9 settembre 2026" in text
    link = text.split("https://t.me/sentinella_test_bot?start=", 1)[1].split()[0]
    [entry] = [a for a in actions(bot) if a[1] == "invite"]
    assert entry[2]["role"] == "staff" and link not in str(entry)
    welcome = await bot.send(STAFF, f"/start {link}")
    assert "Benvenuto/a" in welcome.text
    member = bot.member(STAFF)
    assert member is not None and member.role == "staff"


async def test_invita_with_a_bad_role(bot: Harness) -> None:
    assert "Uso: /invita" in (await bot.send(ADMIN_CHAT, "/invita boss")).text
    assert "Uso: /invita" in (await bot.send(ADMIN_CHAT, "/invita staff admin")).text
    assert list_invitations(bot.db, now=bot.clock()) == []


async def test_membri(bot: Harness) -> None:
    assert "Nessun socio" in (await bot.send(ADMIN_CHAT, "/membri")).text
    bot.add_member(MEMBER, name="Laura <b>Bianchi</b>", paused=True)
    bot.add_member(None, name="Solo Email", email="solo@example.com", digest_email=True)
    text = (await bot.send(ADMIN_CHAT, "/membri")).text
    assert "<b>Soci</b> — 2" in text
    assert "Laura &lt;b&gt;Bianchi&lt;/b&gt; — member · in pausa" in text
    assert "Solo Email — member · senza Telegram, riepilogo" in text


async def test_membri_long_list_is_split(bot: Harness) -> None:
    for i in range(150):
        bot.add_member(10_000 + i, name=f"Membro numero {i} " + "x" * 40)
    replies = await bot.send(ADMIN_CHAT, "/membri")
    assert len(replies.texts) >= 2
    assert all(tg_len(text) <= MAX_MESSAGE for text in replies.texts)
    joined = "\n".join(replies.texts)
    assert "Membro numero 0 " in joined and "Membro numero 149 " in joined


# --- staff: /digest -----------------------------------------------------------------------------------------


async def test_digest_on_off(bot: Harness) -> None:
    staff_id = bot.add_member(STAFF, role="staff")
    usage = await bot.send(STAFF, "/digest")
    assert "Uso: /digest on" in usage.text and "spento" in usage.text
    assert "anche qui su Telegram" in (await bot.send(STAFF, "/digest on")).text
    assert members.get_member(bot.db, staff_id).digest_telegram  # type: ignore[union-attr]
    assert "attivo" in (await bot.send(STAFF, "/digest maybe")).text
    await bot.send(STAFF, "/digest off")
    assert not members.get_member(bot.db, staff_id).digest_telegram  # type: ignore[union-attr]
    assert [a[2] for a in actions(bot) if a[1] == "digest"] == [{"telegram": True}, {"telegram": False}]


async def test_digest_refuses_members_and_explains_to_admin_chats(bot: Harness) -> None:
    member_id = bot.add_member(MEMBER)
    assert "riservato allo staff" in (await bot.send(MEMBER, "/digest on")).text
    assert not members.get_member(bot.db, member_id).digest_telegram  # type: ignore[union-attr]
    assert "non è collegata a un socio" in (await bot.send(ADMIN_CHAT, "/digest on")).text


async def test_a_running_crawl_is_cancelled_at_shutdown(bot: Harness) -> None:
    bot.crawler.hold = True
    await bot.send(ADMIN_CHAT, "/crawl incentivi")
    await bot.until(lambda: bot.crawler.calls == [["incentivi"]])
    assert await cancel_background(bot.app) == 1
    # Nothing is left for app.stop() to wait for, and the source is free again.
    assert await cancel_background(bot.app) == 0
    bot.crawler.hold = False
    assert "Raccolta avviata" in (await bot.send(ADMIN_CHAT, "/crawl incentivi")).text


def test_summary_of_the_crawlers_own_type() -> None:
    from crawler.run import SourceSummary

    real: list[CrawlSummary] = [SourceSummary("sedia", "skipped", reason="another crawl of it was running")]
    text = summary_text(real, ["sedia"], "en")
    assert "sedia: <b>skipped</b> — 0 new" in text and "another crawl of it was running" in text
