"""The links the bot hands out: one-time sign-in links (``/web``) and calendar feeds (``/calendario``).

The daemon gives a :class:`WebAccess` to the bot (``notifier.bot.common.BotServices.web``), so
the bot never imports this package. Every absolute URL is made from ``[web] base_url``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage import access
from storage.db import Database
from web.config import WebConfig
from web.security import calendar_token


@dataclass(frozen=True, slots=True)
class SigninLink:
    url: str
    expires_at: datetime


class WebAccess:
    def __init__(self, db: Database, config: WebConfig, clock: Callable[[], datetime]) -> None:
        if config.secret_key is None:
            raise ValueError("the web app needs web.secret_key")
        self.db = db
        self.config = config
        self.clock = clock
        self._secret = config.secret_key.get_secret_value()

    def signin_link(self, member_id: int) -> SigninLink | None:
        """A new one-time link; None past ``[web] links_per_hour`` (counted in the database, so
        a restart does not reset the allowance)."""
        now = self.clock()
        if (
            access.links_made_since(self.db, member_id, now - timedelta(hours=1))
            >= self.config.links_per_hour
        ):
            return None
        ttl = timedelta(minutes=self.config.link_ttl_minutes)
        token = access.create_signin_link(self.db, member_id, now=now, ttl=ttl)
        return SigninLink(self.config.url(f"/accesso/{token}"), now + ttl)

    def calendar_link(self, member_id: int, *, rotate: bool = False) -> str:
        """The member's calendar feed URL: the current one, or a new one (the old stops working)."""
        version = access.calendar_version(self.db, member_id)
        if version is None or rotate:
            version = (version or 0) + 1
            token = calendar_token(self._secret, member_id, version)
            access.set_calendar_token(self.db, member_id, version=version, token=token, now=self.clock())
        else:
            token = calendar_token(self._secret, member_id, version)
        return self.config.url(f"/calendario/{token}.ics")
