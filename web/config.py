"""The ``[web]`` settings section: the staff board, calendars, feeds and unsubscribe pages."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class WebConfig(BaseModel):
    """How the web app is served and what it lets people do.

    ``base_url`` is the address people reach, as the browser sees it (``https://…`` behind a
    TLS reverse proxy): every absolute link (sign-in links, calendar and feed URLs, unsubscribe
    links in e-mail) is made from it. ``secret_key`` signs session cookies, calendar tokens and
    unsubscribe tokens: changing it signs everyone out and retires every such link.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    base_url: str = "http://127.0.0.1:8080"
    secret_key: SecretStr | None = None
    #: Addresses of reverse proxies whose X-Forwarded-Proto / X-Forwarded-For are believed.
    forwarded_allow_ips: str = "127.0.0.1"
    #: How long a sign-in link sent by the bot's /web stays valid, and how many one member may
    #: ask for in an hour.
    link_ttl_minutes: int = Field(default=15, ge=1, le=24 * 60)
    links_per_hour: int = Field(default=5, ge=1, le=100)
    #: How long a session lasts after signing in.
    session_hours: int = Field(default=12, ge=1, le=24 * 30)
    #: Calls per page of the board.
    page_size: int = Field(default=50, ge=10, le=500)
    #: The public iCal, RSS and Atom feeds of open calls (for the cluster's website).
    public_feeds: bool = True
    #: Calendar events of calls whose deadline passed longer ago than this are left out.
    calendar_past_days: int = Field(default=60, ge=0, le=3650)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not re.fullmatch(r"https?://[^\s/<>\"?#]+(/[^\s<>\"?#]*)?", value):
            raise ValueError("must be an http(s) URL without query, e.g. https://bandi.example.org")
        return value

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError(
                "must be at least 32 characters (e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return value

    @model_validator(mode="after")
    def _key_when_enabled(self) -> WebConfig:
        if self.enabled and self.secret_key is None:
            raise ValueError("the web app needs web.secret_key (32 characters or more)")
        return self

    @property
    def secure(self) -> bool:
        """Served over TLS (as people reach it): cookies get the Secure flag."""
        return self.base_url.startswith("https://")

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (which starts with ``/``)."""
        return self.base_url + path
