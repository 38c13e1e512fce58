"""Fakes of the outside world for tests and benchmarks: servers on loopback and small stand-ins.

* :mod:`tests.fakes.telegram_server` — a fake Telegram Bot API (``FakeBotAPI``) reached through
  python-telegram-bot's ``base_url``: records requests, scripted failures, flood limits.
* :mod:`tests.fakes.delivery_data` — synthetic members, calls and outbox rows for delivery tests
  and ``benchmarks/delivery.py``.
"""
