"""Fixtures of the notifier tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.telegram_server import FakeBotAPI


@pytest.fixture
def server() -> Iterator[FakeBotAPI]:
    """A fake Bot API server on loopback, no flood limits."""
    with FakeBotAPI() as fake:
        yield fake
