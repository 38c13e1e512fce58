"""The probe suite uses the bot tests' fixtures: the daemon's bot against the fake Bot API."""

from __future__ import annotations

from tests.bot.conftest import bot, clock, crawler, server, status

__all__ = ["bot", "clock", "crawler", "server", "status"]
