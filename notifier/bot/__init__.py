"""Sentinella's Telegram bot: member onboarding and commands, profile editing, staff and admin commands.

``build_application`` (in :mod:`notifier.bot.app`) wires every handler; the daemon injects what
the bot may not import itself (starting a crawl, its own status) through :class:`BotServices`.
"""

from notifier.bot.app import build_application, cancel_background, publish_commands
from notifier.bot.common import BotServices

__all__ = ["BotServices", "build_application", "cancel_background", "publish_commands"]
