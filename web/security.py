"""Sessions, CSRF, security headers, sign-in rate limits and calendar tokens.

Sessions are signed cookies (HMAC-SHA256 under ``[web] secret_key``) holding the member id, an
expiry, the language and the session's CSRF token; nothing else. The cookie is HttpOnly,
SameSite=Lax, and Secure when the app is served over TLS (``base_url`` is ``https://`` or the
request arrived as https through a trusted proxy). Every request re-reads the member, so a
member demoted, suspended or deleted loses the board at the next page, whatever their cookie
says. Known limit: a signed cookie cannot be revoked before it expires except by changing the
secret key; logging out deletes it from the browser that logs out.

CSRF: every form that changes something carries the session's token and the POST is refused
without it (a visitor without a session gets an anonymous session that holds only a token).
The one exception is the RFC 8058 one-click unsubscribe POST, which mail providers send without
cookies: its authority is the signed per-recipient token in the URL (``notifier.messages.unsubscribe``).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response

from notifier.messages.unsubscribe import b64url, unb64url

COOKIE = "sentinella_session"
#: No script at all: the board is plain HTML forms and one style sheet.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    # Sign-in, calendar and unsubscribe URLs carry tokens: never send them to another site.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


class Signer:
    """HMAC-SHA256 signatures of small JSON documents, one purpose per signer (a session cookie
    cannot be replayed as something else)."""

    def __init__(self, secret: str, purpose: str) -> None:
        self._key = hashlib.sha256(f"sentinella:{purpose}:".encode() + secret.encode("utf-8")).digest()

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()

    def dumps(self, value: dict[str, Any]) -> str:
        body = json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")
        return f"{b64url(body)}.{b64url(self._mac(body))}"

    def loads(self, text: str) -> dict[str, Any] | None:
        if len(text) > 4000 or text.count(".") != 1:
            return None
        head, mac = text.split(".")
        try:
            body, given = unb64url(head), unb64url(mac)
        except (ValueError, binascii.Error):
            return None
        if not hmac.compare_digest(given, self._mac(body)):
            return None
        try:
            value = json.loads(body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


@dataclass
class Session:
    """What the session cookie holds. ``member_id`` None: an anonymous session (CSRF only)."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    member_id: int | None = None
    expires: float = 0.0
    lang: str | None = None
    changed: bool = False
    #: Made for this request (no valid cookie came): written only if a page puts its token in a form.
    fresh: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"c": self.csrf, "m": self.member_id, "e": self.expires, "l": self.lang}

    @classmethod
    def from_dict(cls, data: dict[str, Any], now: float) -> Session | None:
        csrf, member, expires, lang = data.get("c"), data.get("m"), data.get("e"), data.get("l")
        if not isinstance(csrf, str) or not isinstance(expires, int | float) or expires < now:
            return None
        return cls(
            csrf=csrf,
            member_id=member if isinstance(member, int) else None,
            expires=float(expires),
            lang=lang if lang in ("it", "en") else None,
        )


class Sessions:
    """Reads and writes the session cookie."""

    def __init__(self, secret: str, *, lifetime_s: float, secure: bool) -> None:
        self.signer = Signer(secret, "session")
        self.lifetime_s = lifetime_s
        self.secure = secure

    def read(self, request: Request) -> Session:
        raw = request.cookies.get(COOKIE)
        data = self.signer.loads(raw) if raw else None
        session = Session.from_dict(data, time.time()) if data is not None else None
        if session is None:
            # Anonymous sessions live as long as signed-in ones: a form left open still posts.
            session = Session(expires=time.time() + self.lifetime_s, fresh=True)
        return session

    def sign_in(self, session: Session, member_id: int) -> None:
        # A new CSRF token too: nothing learnt before signing in is worth anything after.
        session.member_id = member_id
        session.csrf = secrets.token_urlsafe(24)
        session.expires = time.time() + self.lifetime_s
        session.changed = True

    def write(self, request: Request, response: Response, session: Session) -> None:
        secure = self.secure or request.url.scheme == "https"
        response.set_cookie(
            COOKIE,
            self.signer.dumps(session.as_dict()),
            max_age=max(1, int(session.expires - time.time())),
            path="/",
            httponly=True,
            secure=secure,
            samesite="lax",
        )

    def clear(self, request: Request, response: Response) -> None:
        secure = self.secure or request.url.scheme == "https"
        response.delete_cookie(COOKIE, path="/", httponly=True, secure=secure, samesite="lax")


def csrf_ok(session: Session, given: object) -> bool:
    return isinstance(given, str) and bool(given) and hmac.compare_digest(given, session.csrf)


class SessionMiddleware(BaseHTTPMiddleware):
    """Puts the session on ``request.state.session``, writes it back when it changed (unless the
    handler cleared it), and adds the security headers to every response."""

    def __init__(self, app: Any, sessions: Sessions) -> None:
        super().__init__(app)
        self.sessions = sessions

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        session = self.sessions.read(request)
        request.state.session = session
        request.state.clear_session = False
        response = await call_next(request)
        if request.state.clear_session:
            self.sessions.clear(request, response)
        elif session.changed:
            self.sessions.write(request, response, session)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if session.member_id is not None or request.url.path.startswith(("/accesso", "/disiscrizione")):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


class RateLimit:
    """At most ``limit`` events per key in a sliding ``window_s`` (in memory, per process)."""

    def __init__(self, limit: int, window_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        now = self.clock()
        seen = self._seen.setdefault(key, deque())
        while seen and seen[0] <= now - self.window_s:
            seen.popleft()
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        if len(self._seen) > 10_000:
            # Keys of clients long gone: forget those with nothing in the window.
            for stale in [k for k, v in self._seen.items() if not v or v[-1] <= now - self.window_s]:
                del self._seen[stale]
        return True


def calendar_token(secret: str, member_id: int, version: int) -> str:
    """A member's calendar feed token at ``version``: derived, so the bot can give the same link
    again; only its hash is stored (``storage.access``)."""
    mac = hmac.new(
        hashlib.sha256(b"sentinella:calendar:" + secret.encode("utf-8")).digest(),
        f"{member_id}:{version}".encode(),
        hashlib.sha256,
    ).digest()
    return b64url(mac[:24])
