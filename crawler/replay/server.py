"""A replay server: real HTTP on loopback serving recorded (or synthetic) source responses.

Crawls point their base URLs at it (every URL a spider requests comes from the sources config),
so the real spiders, Scrapy's downloader, retries, robots.txt handling and conditional requests
all run, with no network. Used by ``sentinella demo``, the crawler tests, the daemon's smoke
test and the benchmarks (``crawler.replay.site`` installs a whole site of every source).

* :class:`ReplayServer` — a threading HTTP server on ``127.0.0.1:<free port>``; routes by method
  and path (query strings are given to the handler), records every request
  (:attr:`ReplayServer.requests`), answers 404 to anything unrouted (``/robots.txt`` included, which
  Scrapy reads as "everything allowed").
* :func:`static` — a fixed body with an ETag and Last-Modified, answering 304 to a matching
  conditional request.
* :class:`Scripted` — answers from a list in turn (e.g. a 500, then the body), for retries.
* :class:`SediaSearch` — the SEDIA search API rebuilt over recorded result rows: demands the
  multipart body with ``application/json`` file parts (HTTP 500 ``{"type":"throwable"}``
  otherwise, as the real API), answers the *unfiltered* recorded index page to a request whose
  body has no ``query`` part (the real API's silent failure), filters rows on ``type``, ``status``
  and ``identifier`` terms (``DATASOURCE`` is deliberately not filtered, so stale rows reach the
  spider as they do in the real recording), sorts by identifier, keeps only ``displayFields``
  when asked and pages with ``pageNumber``/``pageSize``.
* A route's :class:`Reply` may carry a ``delay`` (a slow or timing-out server).

Known limits: HTTP/1.1 with Content-Length bodies (what Scrapy sends); no TLS; no compression.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int = 0


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Seconds to wait before answering (a slow server; longer than the client's timeout = a timeout).
    delay: float = 0.0


Handler = Callable[[RecordedRequest], Reply]


def static(
    body: bytes,
    *,
    content_type: str = "application/json",
    etag: str | None = None,
    last_modified: datetime | None = None,
) -> Handler:
    """A fixed body; 304 when the request's If-None-Match / If-Modified-Since matches."""
    modified = format_datetime(last_modified.astimezone(UTC), usegmt=True) if last_modified else None

    def handle(request: RecordedRequest) -> Reply:
        headers = {"Content-Type": content_type}
        if etag:
            headers["ETag"] = etag
        if modified:
            headers["Last-Modified"] = modified
        inm = request.headers.get("if-none-match")
        ims = request.headers.get("if-modified-since")
        if (etag and inm == etag) or (not inm and modified and ims == modified):
            return Reply(304, b"", headers)
        return Reply(200, body, headers)

    return handle


class Scripted:
    """Answers with each reply in turn, then repeats the last one."""

    def __init__(self, replies: Sequence[Reply | Handler]) -> None:
        self._replies = list(replies)
        self._lock = threading.Lock()
        self.calls = 0

    def __call__(self, request: RecordedRequest) -> Reply:
        with self._lock:
            reply = self._replies[min(self.calls, len(self._replies) - 1)]
            self.calls += 1
        return reply(request) if callable(reply) else reply


class ReplayServer:
    """Real HTTP on loopback; use as a context manager."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = RecordedRequest(
                    method=self.command,
                    path=split.path,
                    query=parse_qs(split.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                handler = server.routes.get((self.command, split.path))
                reply = (
                    handler(request) if handler else Reply(404, b"not found", {"Content-Type": "text/plain"})
                )
                with server._lock:
                    server.requests.append(
                        RecordedRequest(
                            request.method, request.path, request.query, request.headers, body, reply.status
                        )
                    )
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    payload = b"" if reply.status == 304 or self.command == "HEAD" else reply.body
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if payload:
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): nothing to answer

            do_GET = do_POST = do_PUT = do_HEAD = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def route(self, method: str, path: str, handler: Handler | Reply) -> None:
        if isinstance(handler, Reply):
            reply = handler

            def fixed(_request: RecordedRequest) -> Reply:
                return reply

            handler = fixed
        self.routes[(method.upper(), path)] = handler

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


# --- SEDIA ----------------------------------------------------------------------------------------


def multipart_parts(content_type: str, body: bytes) -> list[tuple[str, str, bytes]]:
    """(name, part content type, payload) of each part of a multipart/form-data body."""
    if not content_type.lower().startswith("multipart/form-data"):
        return []
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        return []
    parts: list[tuple[str, str, bytes]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        payload = part.get_payload(decode=True)
        parts.append((str(name), part.get_content_type(), payload if isinstance(payload, bytes) else b""))
    return parts


def _terms(query: Any) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    must = query.get("bool", {}).get("must", []) if isinstance(query, dict) else []
    for clause in must:
        terms = clause.get("terms") if isinstance(clause, dict) else None
        if isinstance(terms, dict):
            for key, values in terms.items():
                out[key] = {str(v) for v in values}
    return out


class SediaSearch:
    """The SEDIA search endpoint over recorded rows (see the module docstring)."""

    FILTERED = ("type", "status", "identifier")

    def __init__(
        self,
        rows: Iterable[dict[str, Any]],
        *,
        envelope: Mapping[str, Any] | None = None,
        unfiltered: bytes = b'{"totalResults": 0, "results": []}',
    ) -> None:
        self.rows = list(rows)
        self.envelope = dict(envelope or {"apiVersion": "2.151", "terms": "***"})
        self.unfiltered = unfiltered
        self.light_requests = 0
        self.full_requests = 0

    def __call__(self, request: RecordedRequest) -> Reply:
        if request.method != "POST":
            return Reply(405, b'{"type":"throwable"}', {"Content-Type": "application/json"})
        if request.query.get("apiKey") != ["SEDIA"]:
            return Reply(500, b'{"type":"throwable"}', {"Content-Type": "application/json"})
        parts = multipart_parts(request.headers.get("content-type", ""), request.body)
        if any(ctype != "application/json" for _name, ctype, _payload in parts):
            return Reply(500, b'{"type":"throwable"}', {"Content-Type": "application/json"})
        named = {name: json.loads(payload) for name, _ctype, payload in parts}
        if "query" not in named:
            return Reply(200, self.unfiltered, {"Content-Type": "application/json"})
        terms = _terms(named["query"])
        rows = [r for r in self.rows if self._matches(r, terms)]
        sort = named.get("sort") or {}
        if sort.get("field") == "identifier":
            rows.sort(
                key=lambda r: (r.get("metadata", {}).get("identifier") or [""])[0],
                reverse=str(sort.get("order", "ASC")).upper() == "DESC",
            )
        display = named.get("displayFields")
        if display is not None:
            self.light_requests += 1
            rows = [
                {**r, "metadata": {k: v for k, v in (r.get("metadata") or {}).items() if k in display}}
                for r in rows
            ]
        else:
            self.full_requests += 1
        size = int((request.query.get("pageSize") or ["50"])[0])
        number = int((request.query.get("pageNumber") or ["1"])[0])
        page = rows[(number - 1) * size : number * size]
        payload = {
            **self.envelope,
            "totalResults": len(rows),
            "pageNumber": number,
            "pageSize": size,
            "sort": f"{sort.get('field')}:{sort.get('order')}" if sort else "relevance",
            "results": page,
        }
        return Reply(200, json.dumps(payload).encode("utf-8"), {"Content-Type": "application/json"})

    def _matches(self, row: Mapping[str, Any], terms: Mapping[str, set[str]]) -> bool:
        metadata = row.get("metadata") or {}
        for key in self.FILTERED:
            wanted = terms.get(key)
            if wanted is None:
                continue
            values = metadata.get(key) or []
            if not wanted.intersection(str(v) for v in values):
                return False
        return True
