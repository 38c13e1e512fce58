"""The topics of a call, for the board's topic filter: the one place the web app asks matching.

Topics are what the matcher finds in a call's text (``Matcher.facts``), the same evidence alerts
are built on. Computing them costs about a millisecond a call, so they are cached per call and
content hash (a changed call is looked at again); the first topic-filtered page after a start
pays for the calls it walks through, later ones are fast.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from threading import Lock

from notifier.config import MatchingConfig
from notifier.matching.engine import Matcher
from notifier.matching.topics import topic_ids, topic_label
from storage.calls import CallView

#: Calls whose topics are remembered (about 100 bytes each).
CACHE_SIZE = 100_000


class TopicIndex:
    def __init__(self, matching: MatchingConfig, clock: Callable[[], datetime]) -> None:
        self._matcher = Matcher([], config=matching)
        self._clock = clock
        self._cache: dict[tuple[int, str], frozenset[str]] = {}
        self._lock = Lock()

    def topics(self, call: CallView) -> frozenset[str]:
        key = (call.id, call.content_hash)
        found = self._cache.get(key)
        if found is None:
            found = frozenset(self._matcher.facts(call, now=self._clock()).topics)
            with self._lock:
                if len(self._cache) >= CACHE_SIZE:
                    self._cache.clear()
                self._cache[key] = found
        return found

    @staticmethod
    def choices(lang: str) -> list[tuple[str, str]]:
        """(id, label) of every topic, by label."""
        return sorted(((t, topic_label(t, lang)) for t in topic_ids()), key=lambda p: p[1].casefold())

    @staticmethod
    def label(topic: str, lang: str) -> str:
        return topic_label(topic, lang)
