"""A harness that talks to the bot like Telegram would, offline (fixtures in ``conftest.py``).

The application is the one the daemon runs (``build_application``), pointed at the fake Bot API
server on loopback (``tests/fakes/telegram_server.py``): every reply, edit and button answer is a
real HTTP request the server records. Updates are synthetic: :meth:`Harness.send` and
:meth:`Harness.press` build the JSON Telegram would deliver, hand it to
``Application.process_update`` and return the requests the bot made in response.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import SecretStr
from telegram import Update
from telegram.ext import Application

from notifier.config import TelegramConfig
from storage import members
from storage.db import Database
from storage.invitations import create_invitation
from tests.fakes.telegram_server import FakeBotAPI, RecordedRequest

ADMIN_CHAT = 9001
BOT_ID = 123456
#: Message dates in synthetic updates (the bot never reads them).
EPOCH = 1_788_332_400


class Clock:
    """A pinned clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class FakeSummary:
    name: str
    outcome: str = "ok"
    new: int = 3
    changed: int = 1
    unchanged: int = 40
    errors: int = 0
    requests: int = 12
    bytes: int = 1000
    seconds: float = 4.2
    notify: str | None = None
    reason: str = ""


@dataclass
class FakeCrawler:
    """``BotServices.start_crawl``: records the sources; waits for ``release`` when ``hold`` is set."""

    calls: list[list[str]] = field(default_factory=list)
    hold: bool = False
    fail: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, sources: list[str]) -> list[FakeSummary]:
        self.calls.append(list(sources))
        if self.hold:
            await self.release.wait()
        if self.fail:
            raise RuntimeError("the child process died")
        return [
            FakeSummary(name)
            if name != "feeds"
            else FakeSummary(name, "degraded", 0, 0, 0, reason="yield 0 < 5")
            for name in sources
        ]


@dataclass
class Replies:
    """What the bot did in answer to one update."""

    requests: list[RecordedRequest]

    def of(self, method: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method]

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.requests if r.method in ("sendMessage", "editMessageText")]

    @property
    def text(self) -> str:
        return "\n---\n".join(self.texts)

    @property
    def answers(self) -> list[RecordedRequest]:
        return self.of("answerCallbackQuery")

    @property
    def last_keyboard(self) -> dict[str, Any] | None:
        for r in reversed(self.requests):
            markup = r.params.get("reply_markup")
            if isinstance(markup, dict):
                return markup
        return None

    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback data or url) of the last keyboard, row by row."""
        markup = self.last_keyboard or {"inline_keyboard": []}
        return [
            (b["text"], b.get("callback_data") or b.get("url", ""))
            for row in markup["inline_keyboard"]
            for b in row
        ]


class Harness:
    def __init__(
        self, app: Application, server: FakeBotAPI, db: Database, clock: Clock, crawler: FakeCrawler
    ) -> None:
        self.app = app
        self.server = server
        self.db = db
        self.clock = clock
        self.crawler = crawler
        self._ids = itertools.count(1)

    def _user(self, chat_id: int, language_code: str | None, first_name: str) -> dict[str, Any]:
        user: dict[str, Any] = {"id": chat_id, "is_bot": False, "first_name": first_name}
        if language_code:
            user["language_code"] = language_code
        return user

    async def _process(self, data: dict[str, Any]) -> Replies:
        before = len(self.server.requests)
        update = Update.de_json(data, self.app.bot)
        await self.app.process_update(update)
        return Replies(self.server.calls()[before:])

    @staticmethod
    def _chat(chat_id: int, chat_type: str, first_name: str) -> dict[str, Any]:
        if chat_type == "private":
            return {"id": chat_id, "type": "private", "first_name": first_name}
        return {"id": chat_id, "type": chat_type, "title": "Cluster cosmetica (gruppo)"}

    async def send(
        self,
        chat_id: int,
        text: str,
        *,
        language_code: str | None = "it",
        first_name: str = "Laura",
        chat_type: str = "private",
        user_id: int | None = None,
    ) -> Replies:
        """A text message (a command when it starts with ``/``) from a private chat, or from
        user ``user_id`` in a ``group`` / ``supergroup`` chat ``chat_id``."""
        message: dict[str, Any] = {
            "message_id": next(self._ids),
            "date": EPOCH,
            "chat": self._chat(chat_id, chat_type, first_name),
            "from": self._user(user_id or chat_id, language_code, first_name),
            "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return await self._process({"update_id": next(self._ids), "message": message})

    async def press(
        self,
        chat_id: int,
        data: str,
        *,
        keyboard: dict[str, Any] | None = None,
        text: str = "…",
        language_code: str | None = "it",
        chat_type: str = "private",
        user_id: int | None = None,
    ) -> Replies:
        """A tap on an inline button of a bot message carrying ``keyboard`` (in a private chat,
        or by user ``user_id`` in a group chat ``chat_id``)."""
        message: dict[str, Any] = {
            "message_id": next(self._ids),
            "date": EPOCH,
            "chat": self._chat(chat_id, chat_type, "Laura"),
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Sentinella"},
            "text": text,
        }
        if keyboard is not None:
            message["reply_markup"] = keyboard
        query = {
            "id": str(next(self._ids)),
            "from": self._user(user_id or chat_id, language_code, "Laura"),
            "chat_instance": "1",
            "message": message,
            "data": data,
        }
        return await self._process({"update_id": next(self._ids), "callback_query": query})

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Let the event loop run (the bot's own tasks) until ``predicate`` holds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise AssertionError("timed out waiting for the bot")
            await asyncio.sleep(0.01)

    def member(self, chat_id: int) -> members.MemberView | None:
        return members.find_member(self.db, chat_id=chat_id)

    def add_member(
        self, chat_id: int | None, *, role: str = "member", name: str = "Laura Bianchi", **fields: Any
    ) -> int:
        view = members.upsert_member(
            self.db,
            now=self.clock(),
            name=name,
            role=role,
            telegram_chat_id=chat_id,
            email=fields.pop("email", None),
            language=fields.pop("language", "it"),
        )
        if fields:
            members.update_member(self.db, view.id, now=self.clock(), **fields)
        return view.id

    def invitation(self, role: str = "member", ttl: timedelta = timedelta(days=7)) -> str:
        return create_invitation(self.db, role=role, now=self.clock(), ttl=ttl, created_by="test")


def make_config(server: FakeBotAPI, **overrides: Any) -> TelegramConfig:
    values: dict[str, Any] = {
        "token": SecretStr(server.token),
        "base_url": server.base_url,
        "admin_chat_ids": [ADMIN_CHAT],
        "max_retries": 2,
        "read_timeout": 5,
    }
    values.update(overrides)
    return TelegramConfig(**values)


def keyboard_of(request: RecordedRequest) -> dict[str, Any]:
    markup = request.params.get("reply_markup")
    assert isinstance(markup, dict), request
    return markup


def labels(markup: dict[str, Any] | None) -> dict[str, str]:
    """callback data → label."""
    assert markup is not None, "no keyboard"
    return {
        b["callback_data"]: b["text"]
        for row in markup["inline_keyboard"]
        for b in row
        if "callback_data" in b
    }
