"""Short accessors to the topic and beneficiary vocabularies (ids and labels).

The vocabulary itself lives in ``notifier/matching/data/topics.toml`` and is loaded by
:mod:`notifier.matching.vocabulary`; this module is the small surface other parts need (the bot's
keyboards, the digest, the CLI).
"""

from __future__ import annotations

from notifier.matching.vocabulary import default_vocabulary


def topic_ids() -> tuple[str, ...]:
    """Every topic id, in the vocabulary's order."""
    return tuple(default_vocabulary().topics)


def beneficiary_ids() -> tuple[str, ...]:
    return tuple(default_vocabulary().beneficiaries)


def topic_label(topic_id: str, lang: str = "it") -> str:
    """The label of a topic in ``lang`` (the id itself for an unknown topic)."""
    return default_vocabulary().topic_label(topic_id, lang)
