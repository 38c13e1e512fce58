"""Per-recipient unsubscribe tokens for e-mail (RFC 8058 one-click, RFC 2369 List-Unsubscribe).

A token names one member and what they stop receiving (``alerts`` or ``digest``) and carries an
HMAC-SHA256 of both under the web app's signing key, so nobody can make a token for someone
else, and the link in a message turns off exactly that recipient's mail of that kind. Tokens do
not expire: an unsubscribe link must keep working for as long as the message is kept. Rotating
the signing key (``[web] secret_key``) retires every link already sent (their GET page says so
and the mailto: address still works).

The web app (``web.app``) checks tokens with :func:`read_token`; the e-mail composer
(``notifier.messages.alerts.compose_email``) puts the links in each message with :func:`links`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

Scope = Literal["alerts", "digest"]
SCOPES: tuple[Scope, ...] = ("alerts", "digest")
#: The path of the unsubscribe endpoint under the web app's base URL.
PATH = "/disiscrizione/"
_DOMAIN = b"sentinella-unsubscribe:"


def b64url(data: bytes) -> str:
    """URL-safe base64 without padding (tokens in links)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """The bytes of :func:`b64url` text (ValueError or binascii.Error when it is not)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), _DOMAIN + body, hashlib.sha256).digest()[:18]


def make_token(secret: str, member_id: int, scope: Scope) -> str:
    """The token that unsubscribes ``member_id`` from ``scope``."""
    if scope not in SCOPES:
        raise ValueError(f"unknown unsubscribe scope {scope!r}")
    body = f"{member_id}.{scope}".encode("ascii")
    return f"{b64url(body)}.{b64url(_mac(secret, body))}"


def read_token(secret: str, token: str) -> tuple[int, Scope] | None:
    """The (member id, scope) a genuine token names; None for anything else."""
    if len(token) > 200 or token.count(".") != 1:
        return None
    head, mac = token.split(".")
    try:
        body, given = unb64url(head), unb64url(mac)
        member, scope = body.decode("ascii").split(".")
        member_id = int(member)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not hmac.compare_digest(given, _mac(secret, body)) or scope not in SCOPES:
        return None
    return member_id, scope


@dataclass(frozen=True, slots=True)
class Links:
    """One recipient's unsubscribe links: the https URL (one click) and the mailto fallback."""

    url: str
    mailto: str


def links(base_url: str, secret: str, member_id: int, scope: Scope, mailto_address: str) -> Links:
    token = make_token(secret, member_id, scope)
    return Links(
        url=base_url.rstrip("/") + PATH + token,
        mailto=f"mailto:{mailto_address}?subject={quote('unsubscribe ' + token)}",
    )
