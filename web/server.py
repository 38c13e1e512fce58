"""Serving the web app with uvicorn: alone (``sentinella web``) or inside the daemon's event loop.

Behind a TLS reverse proxy, uvicorn believes ``X-Forwarded-Proto``/``X-Forwarded-For`` only from
``[web] forwarded_allow_ips``, so a request that reached the proxy over https is seen as https
(and gets Secure cookies) and rate limits count the real client address.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn

from web.config import WebConfig


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its host (the daemon stops it with :meth:`stop`)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def stop(self) -> None:
        self.should_exit = True


def server_config(
    app: Any, config: WebConfig, *, host: str | None = None, port: int | None = None
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host or config.host,
        port=config.port if port is None else port,
        proxy_headers=True,
        forwarded_allow_ips=config.forwarded_allow_ips,
        # The application has no startup work; the daemon owns the database and the clock.
        lifespan="off",
        # Request lines carry calendar, sign-in and unsubscribe tokens: never logged.
        access_log=False,
        server_header=False,
        log_level="warning",
    )
