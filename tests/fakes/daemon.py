"""What the daemon smoke test and ``benchmarks/daemon.py`` share: a mailbox for aiosmtpd, a free
loopback port, and the environment that points a ``sentinella run`` process at the local servers."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crawler.config import CrawlConfig, SourcesConfig


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Mailbox:
    """An aiosmtpd handler keeping every message (``envelope.rcpt_tos`` and the bytes)."""

    messages: list[tuple[list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[bytes]:
        return [body for rcpt, body in self.messages if address in rcpt]

    @property
    def count(self) -> int:
        return len(self.messages)


def daemon_env(
    *,
    db_url: str,
    now: datetime,
    site: SourcesConfig,
    crawl: CrawlConfig,
    token: str,
    bot_url: str,
    smtp_port: int,
    **extra: str,
) -> dict[str, str]:
    """This process's environment without our settings, plus settings for the local servers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINELLA_")}
    env.update(
        SENTINELLA_DATABASE_URL=db_url,
        SENTINELLA_NOW=now.isoformat(),
        SENTINELLA_LOG_LEVEL="INFO",
        SENTINELLA_SOURCES=json.dumps(site.model_dump(mode="json")),
        SENTINELLA_CRAWL=json.dumps(crawl.model_dump(mode="json")),
        SENTINELLA_TELEGRAM__TOKEN=token,
        SENTINELLA_TELEGRAM__BASE_URL=bot_url,
        SENTINELLA_EMAIL__HOST="127.0.0.1",
        SENTINELLA_EMAIL__PORT=str(smtp_port),
        SENTINELLA_EMAIL__SECURITY="none",
        SENTINELLA_EMAIL__FROM_ADDRESS="sentinella@example.org",
        **extra,
    )
    return env
