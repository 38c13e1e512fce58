"""A fake Telegram Bot API server on loopback, for tests, benchmarks and the daemon smoke test.

python-telegram-bot reaches it through ``base_url`` (``Bot(token, base_url=server.base_url)``),
so the real library code runs, HTTP included. The server runs its own asyncio loop in a daemon
thread, so it serves synchronous tests, async tests and child processes alike.

What it does:

* records every request (:attr:`FakeBotAPI.requests`: method, decoded parameters, when it
  arrived, the status answered) — a request is recorded when it *arrives*, before any scripted
  delay, because a real Bot API has delivered a message once it has read the request;
* answers ``getMe``, ``sendMessage`` (a real-looking ``Message``), ``editMessageText``,
  ``getUpdates`` (updates queued with :meth:`FakeBotAPI.push_update`, long polling included) and
  ``true`` to any other method;
* scripted answers: :meth:`FakeBotAPI.script` queues :class:`Answer` objects for a method
  (optionally for one chat) — 429 with ``retry_after``, 403, a 400 "can't parse entities", 500,
  slowness (``Answer.ok(delay=2)``) — consumed one per matching request; ``default_delay``
  slows every send;
* optional flood limits (:class:`FloodLimits`): at most ``overall_per_second`` sends in any
  sliding second, one per ``per_chat_interval`` seconds to a chat, and at most
  ``group_per_minute`` in any sliding minute to a group (a negative chat id); a send over a
  limit is answered 429 with ``retry_after`` and counted in :attr:`FakeBotAPI.flood_429s`;
* two long ``getUpdates`` at once (two bot processes polling) conflict as on Telegram: the second
  is answered 409 and counted in :attr:`FakeBotAPI.poll_conflicts`; a short one (``timeout`` 0)
  is answered.

Usage::

    with FakeBotAPI() as server:
        config = TelegramConfig(token=server.token, base_url=server.base_url)
        ...
        assert server.sent_messages()[0].params["chat_id"] == 42

Known limits: HTTP/1.1 with Content-Length bodies only (what httpx sends); no file uploads;
one token; webhooks are not simulated.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import email.parser
import email.policy
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

DEFAULT_TOKEN = "123456:TEST-token-not-secret"
#: Methods that post a message to a chat (flood limits and ``default_delay`` apply to these).
SEND_METHODS = frozenset({"sendMessage", "sendDocument", "sendPhoto", "copyMessage", "forwardMessage"})


@dataclass(frozen=True, slots=True)
class Answer:
    """One scripted answer: HTTP status, the JSON body, and a delay before answering."""

    status: int = 200
    body: dict[str, Any] | None = None
    delay: float = 0.0

    @staticmethod
    def ok(result: Any = None, *, delay: float = 0.0) -> Answer:
        """Success; ``result`` None means the normal result of the method."""
        return Answer(200, None if result is None else {"ok": True, "result": result}, delay)

    @staticmethod
    def error(status: int, description: str, *, delay: float = 0.0, **parameters: Any) -> Answer:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return Answer(status, body, delay)

    @staticmethod
    def retry_after(seconds: int, *, delay: float = 0.0) -> Answer:
        return Answer.error(
            429, f"Too Many Requests: retry after {seconds}", retry_after=seconds, delay=delay
        )

    @staticmethod
    def forbidden(description: str = "Forbidden: bot was blocked by the user") -> Answer:
        return Answer.error(403, description)

    @staticmethod
    def parse_error() -> Answer:
        return Answer.error(
            400, 'Bad Request: can\'t parse entities: unsupported start tag "x" at byte offset 7'
        )

    @staticmethod
    def bad_request(description: str = "Bad Request: message text is empty") -> Answer:
        return Answer.error(400, description)

    @staticmethod
    def server_error(status: int = 500) -> Answer:
        return Answer.error(status, "Internal Server Error")


@dataclass(frozen=True, slots=True)
class FloodLimits:
    overall_per_second: int = 30
    per_chat_interval: float = 1.0
    group_per_minute: int = 20


@dataclass(slots=True)
class RecordedRequest:
    method: str
    params: dict[str, Any]
    #: ``time.monotonic()`` when the request arrived.
    at: float
    status: int = 0
    answered_at: float | None = None

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    @property
    def text(self) -> str:
        return str(self.params.get("text", ""))


@dataclass(slots=True)
class _Rule:
    method: str
    chat_id: int | None
    answers: deque[Answer] = field(default_factory=deque)


def _decode_value(value: str) -> Any:
    # python-telegram-bot JSON-encodes every non-string parameter.
    try:
        return json.loads(value)
    except ValueError:
        return value


def _parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    if content_type.startswith("application/json"):
        data = json.loads(body)
        return dict(data) if isinstance(data, dict) else {}
    if content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.default).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        out: dict[str, Any] = {}
        assert isinstance(message, email.message.EmailMessage)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name:
                payload = part.get_payload(decode=True)
                raw = payload if isinstance(payload, bytes) else b""
                out[str(name)] = _decode_value(raw.decode("utf-8", "replace"))
        return out
    return {k: _decode_value(v) for k, v in parse_qsl(body.decode("utf-8"), keep_blank_values=True)}


class FakeBotAPI:
    """The server. Start with ``with FakeBotAPI() as server`` or :meth:`start` / :meth:`stop`."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        limits: FloodLimits | None = None,
        default_delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        max_poll: float = 1.0,
    ) -> None:
        self.token = token
        self.limits = limits
        self.default_delay = default_delay
        self.host = host
        self.port = port
        #: Longest a ``getUpdates`` waits for an update, whatever its ``timeout`` asks.
        self.max_poll = max_poll
        self.requests: list[RecordedRequest] = []
        self.flood_429s = 0
        self.poll_conflicts = 0
        self._polls_in_flight = 0
        self._group_windows: dict[int, deque[float]] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._rules: list[_Rule] = []
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._next_message_id = 1
        self._window: deque[float] = deque()
        self._last_by_chat: dict[int, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._update_event: asyncio.Event | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/bot"

    def start(self) -> FakeBotAPI:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._update_event = asyncio.Event()
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._handle, self.host, self.port)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                self._server.close()
                loop.run_until_complete(self._server.wait_closed())
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-bot-api", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None
            self._thread = None

    def __enter__(self) -> FakeBotAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting ----------------------------------------------------------------------------

    def script(self, method: str, *answers: Answer, chat_id: int | None = None) -> None:
        """Answer the next requests of ``method`` (to ``chat_id`` only, if given) with ``answers``."""
        with self._lock:
            self._rules.append(_Rule(method, chat_id, deque(answers)))

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an update for ``getUpdates`` (``update_id`` is assigned); return its id."""
        with self._lock:
            update = dict(update)
            update["update_id"] = self._next_update_id
            self._next_update_id += 1
            self._updates.append(update)
        if self._loop is not None and self._update_event is not None:
            self._loop.call_soon_threadsafe(self._update_event.set)
        return int(update["update_id"])

    # --- reading what happened ------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if method is None or r.method == method]

    def sent_messages(self) -> list[RecordedRequest]:
        """``sendMessage`` requests answered 200 (what a chat really received)."""
        return [r for r in self.calls("sendMessage") if r.status == 200]

    def in_flight(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.answered_at is None]

    def wait_for(self, predicate: Callable[[FakeBotAPI], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate(self)`` holds (checked at every request) or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._changed:
                self._changed.wait(min(remaining, 0.05))
        return True

    # --- serving ------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                _verb, path, _version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(length) if length else b""
                respond = self._respond(path, headers.get("content-type", ""), body)
                if path.split("?", 1)[0].endswith("/getUpdates"):
                    answer = await self._unless_gone(reader, respond)
                    if answer is None:
                        break
                    status, payload = answer
                else:
                    status, payload = await respond
                data = json.dumps(payload).encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _unless_gone(
        self, reader: asyncio.StreamReader, respond: Coroutine[Any, Any, tuple[int, dict[str, Any]]]
    ) -> tuple[int, dict[str, Any]] | None:
        """Answer a long poll, unless the client closes the connection first (a bot that stopped
        polling): then the poll ends at once, as on Telegram, and None is returned. A client
        sends nothing else while it waits for the answer (HTTP/1.1, no pipelining)."""
        answer = asyncio.ensure_future(respond)
        gone = asyncio.ensure_future(reader.read(1))
        await asyncio.wait({answer, gone}, return_when=asyncio.FIRST_COMPLETED)
        if answer.done():
            gone.cancel()
            # Wait for the read to let go of the stream before the next request is read.
            with contextlib.suppress(asyncio.CancelledError):
                await gone
            return answer.result()
        answer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await answer
        return None

    async def _respond(self, path: str, content_type: str, body: bytes) -> tuple[int, dict[str, Any]]:
        prefix = f"/bot{self.token}/"
        if not path.startswith(prefix):
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        method = path[len(prefix) :].split("?", 1)[0]
        try:
            params = _parse_body(content_type, body)
        except ValueError:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: unreadable body"}
        record = RecordedRequest(method, params, time.monotonic())
        polling = False
        with self._changed:
            self.requests.append(record)
            answer = self._scripted(method, record.chat_id)
            if answer is None and method in SEND_METHODS:
                answer = self._flood_check(record)
            if answer is None and method == "getUpdates":
                # Two long polls conflict; a short one (timeout 0, what python-telegram-bot sends
                # once when it stops polling) does not: on Telegram the newer request wins.
                if self._polls_in_flight and float(params.get("timeout") or 0) > 0:
                    self.poll_conflicts += 1
                    answer = Answer.error(
                        409,
                        "Conflict: terminated by other getUpdates request; "
                        "make sure that only one bot instance is running",
                    )
                else:
                    self._polls_in_flight += 1
                    polling = True
            self._changed.notify_all()
        try:
            return await self._answer(record, method, params, answer)
        finally:
            if polling:
                with self._lock:
                    self._polls_in_flight -= 1

    async def _answer(
        self, record: RecordedRequest, method: str, params: dict[str, Any], answer: Answer | None
    ) -> tuple[int, dict[str, Any]]:
        delay = answer.delay if answer is not None else (self.default_delay if method in SEND_METHODS else 0)
        if delay:
            await asyncio.sleep(delay)
        if answer is not None and answer.body is not None:
            status, payload = answer.status, answer.body
        else:
            status, payload = 200, {"ok": True, "result": await self._result(method, params)}
        with self._changed:
            record.status = status
            record.answered_at = time.monotonic()
            self._changed.notify_all()
        return status, payload

    def _scripted(self, method: str, chat_id: int | None) -> Answer | None:
        for rule in self._rules:
            if rule.method == method and rule.answers and (rule.chat_id is None or rule.chat_id == chat_id):
                return rule.answers.popleft()
        return None

    def _flood_check(self, record: RecordedRequest) -> Answer | None:
        limits = self.limits
        if limits is None:
            return None
        now = record.at
        while self._window and self._window[0] <= now - 1.0:
            self._window.popleft()
        chat = record.chat_id
        last = self._last_by_chat.get(chat) if chat is not None else None
        group = self._group_windows.setdefault(chat, deque()) if chat is not None and chat < 0 else None
        while group and group[0] <= now - 60.0:
            group.popleft()
        if group is not None and len(group) >= limits.group_per_minute:
            self.flood_429s += 1
            return Answer.retry_after(max(1, int(group[0] + 60.0 - now) + 1))
        if len(self._window) >= limits.overall_per_second or (
            last is not None and now - last < limits.per_chat_interval
        ):
            self.flood_429s += 1
            return Answer.retry_after(1)
        # Count it now, so concurrent requests see it; a failure later does not give it back
        # (the real server counted it too).
        self._window.append(now)
        if chat is not None:
            self._last_by_chat[chat] = now
        if group is not None:
            group.append(now)
        return None

    async def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {
                "id": int(self.token.split(":", 1)[0]),
                "is_bot": True,
                "first_name": "Sentinella (test)",
                "username": "sentinella_test_bot",
                "can_join_groups": False,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        if method in ("sendMessage", "editMessageText"):
            return self._message(params)
        if method == "getUpdates":
            return await self._get_updates(params)
        return True

    def _message(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            message_id = params.get("message_id") or self._next_message_id
            self._next_message_id += 1
        chat_id = int(params.get("chat_id") or 0)
        message: dict[str, Any] = {
            "message_id": int(message_id),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
            "from": {
                "id": int(self.token.split(":", 1)[0]),
                "is_bot": True,
                "first_name": "Sentinella (test)",
            },
            "text": str(params.get("text", "")),
        }
        if isinstance(params.get("reply_markup"), dict):
            message["reply_markup"] = params["reply_markup"]
        return message

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        wait = min(float(params.get("timeout") or 0), self.max_poll)
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                if offset:
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                ready = list(self._updates)
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0 or self._update_event is None:
                return ready
            self._update_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._update_event.wait(), remaining)
