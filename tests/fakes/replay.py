"""The replay server, for tests: a re-export of :mod:`crawler.replay.server` (one implementation,
shipped with the package because ``sentinella demo`` serves the recordings with it)."""

from crawler.replay.server import (
    Handler,
    RecordedRequest,
    ReplayServer,
    Reply,
    Scripted,
    SediaSearch,
    multipart_parts,
    static,
)

__all__ = [
    "Handler",
    "RecordedRequest",
    "ReplayServer",
    "Reply",
    "Scripted",
    "SediaSearch",
    "multipart_parts",
    "static",
]
