"""A loopback Inngest Event API: a real HTTP server on 127.0.0.1 for tests and benchmarks.

It implements `POST /e/{event_key}` as the open-source Inngest server does (reference/inngest.md
§1.3-§1.4): a JSON array (or one object) of events in, `{"ids": [...], "status": 200}` out, one
internal id per event. It records every event it accepts, and deduplicates by event `id` the way
Inngest deduplicates function runs, so a test can tell "received twice" from "would run twice".

It can be switched at runtime to fail the ways a real deployment does: down (connection refused),
500, slow, an HTML error page from a proxy, a 400 partial success, or a 200 that reports an error.

`LoopbackHttpServer`, the restartable threaded server underneath, is generic and also serves the
loopback Qdrant.

    with LoopbackInngest() as inngest_api:
        client = build_inngest_client(is_production=False, event_api_base_url=inngest_api.url)
        ...
        inngest_api.set_mode(InngestMode.DOWN)
        assert inngest_api.unique_ids == [...]
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

# OSS Inngest: consts.MaxEvents.
MAX_EVENTS_PER_REQUEST = 5000
_HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class LoopbackRequest:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass(frozen=True, slots=True)
class LoopbackResponse:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    # Seconds to wait before answering; cut short when the server goes down or stops.
    delay_s: float = 0.0

    @classmethod
    def of_json(cls, status: int, document: object, **kwargs: Any) -> LoopbackResponse:
        return cls(status, json.dumps(document).encode(), **kwargs)


class LoopbackHttpServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 that can go down and come back on the same port.

    Going down closes the listening socket and every open connection, so clients see a refused
    connection (not a hang) until `come_up()`. Each request is answered by `handle`, which runs
    in the connection's thread.
    """

    def __init__(self, handle: Callable[[LoopbackRequest], LoopbackResponse]) -> None:
        self._handle = handle
        self._port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        # Set while down or stopped: wakes handlers that are sleeping to simulate slowness.
        self._interrupted = threading.Event()

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the loopback server has not been started")
        return self._port

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def come_up(self) -> None:
        if self._server is not None:
            return
        self._interrupted.clear()
        # The first start takes an ephemeral port; later ones reuse it, so clients configured
        # with the URL reconnect once the server is back (HTTPServer sets SO_REUSEADDR).
        server = ThreadingHTTPServer((_HOST, self._port), self._handler_class())
        server.daemon_threads = True
        server.block_on_close = False
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"loopback-http-{self._port}",
            daemon=True,
        )
        self._thread.start()

    def go_down(self) -> None:
        """Stop listening and drop every open connection: the port refuses connections."""
        server, self._server = self._server, None
        if server is None:
            return
        self._interrupted.set()
        server.shutdown()
        server.server_close()
        with self._connections_lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the peer
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    start = come_up
    stop = go_down

    def __enter__(self) -> LoopbackHttpServer:
        self.come_up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.go_down()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            # HTTP/1.1 keeps connections alive, as real servers do; every answer has a length.
            protocol_version = "HTTP/1.1"
            # The headers and the body leave in two writes: with Nagle's algorithm on, the body
            # waited for the client's delayed ACK of the headers, 40 ms on every answer, which
            # no real Event API or Qdrant adds (it showed up in bench/ as slow dispatches).
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                with owner._connections_lock:
                    owner._connections.add(self.connection)

            def finish(self) -> None:
                with owner._connections_lock:
                    owner._connections.discard(self.connection)
                with contextlib.suppress(OSError):  # the connection was dropped by go_down()
                    super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = LoopbackRequest(
                    method=self.command,
                    path=self.path,
                    headers={key.lower(): value for key, value in self.headers.items()},
                    body=body,
                )
                response = owner._handle(request)
                if response.delay_s > 0 and owner._interrupted.wait(response.delay_s):
                    self.close_connection = True
                    return  # went down while "slow": the client sees the connection drop
                try:
                    self.send_response(response.status)
                    self.send_header("Content-Type", response.content_type)
                    self.send_header("Content-Length", str(len(response.body)))
                    for name, value in response.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(response.body)
                except OSError:
                    self.close_connection = True  # the client gave up (its timeout)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        return _Handler


class InngestMode(StrEnum):
    """How the loopback Event API answers."""

    ACCEPT = "accept"
    DOWN = "down"  # connection refused
    SERVER_ERROR = "server_error"  # 500 with Inngest's JSON error body
    SLOW = "slow"  # waits `delay_s`, then accepts as normal (the client may have given up)
    HTML_ERROR = "html_error"  # a proxy's HTML error page (502 unless told otherwise)
    REJECT_PARTIAL = "reject_partial"  # 400: the first half published, the rest not (OSS)
    OK_WITH_ERROR = "ok_with_error"  # 200 whose body carries an error and no ids
    OK_MISSING_IDS = "ok_missing_ids"  # 200, no error, but ids for only the first half


@dataclass(frozen=True, slots=True)
class Registration:
    """One `POST /fn/register` (an out-of-band sync): the app URL it registers, its functions'
    configs, and the bearer token it was sent with."""

    url: str
    functions: list[Mapping[str, Any]]
    authorization: str | None


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    name: str
    id: str
    data: Mapping[str, Any]
    ts: int | None


class LoopbackInngest:
    """A loopback Inngest Event API. `url` is the Event API origin to give the SDK.

    `events` lists every event accepted, duplicates included; `unique_ids` lists the event ids
    that would trigger a function run (first occurrence of each id, in arrival order);
    `request_count` counts every `POST /e/...` that reached the server, whatever the mode.
    With `event_key` set, any other key gets 401 like a self-hosted server. It also takes syncs
    (`POST /fn/register`, the REST API's): `registrations` lists them, each answered 200.
    """

    def __init__(self, event_key: str | None = None) -> None:
        self._event_key = event_key
        self._lock = threading.Lock()
        self._mode = InngestMode.ACCEPT
        self._delay_s = 0.0
        self._html_status = 502
        self._events: list[ReceivedEvent] = []
        self._unique: dict[str, ReceivedEvent] = {}
        self._batch_sizes: list[int] = []
        self._request_count = 0
        self._registrations: list[Registration] = []
        self._http = LoopbackHttpServer(self._answer)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LoopbackInngest:
        self._http.come_up()
        return self

    def stop(self) -> None:
        self._http.go_down()

    def __enter__(self) -> LoopbackInngest:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{_HOST}:{self._http.port}/"

    # -- switching ---------------------------------------------------------------------------

    @property
    def mode(self) -> InngestMode:
        return self._mode

    def set_mode(self, mode: InngestMode, *, delay_s: float = 2.0, html_status: int = 502) -> None:
        """Switch behaviour. DOWN stops listening; any other mode listens again on the same port."""
        with self._lock:
            self._mode = mode
            self._delay_s = delay_s
            self._html_status = html_status
        if mode is InngestMode.DOWN:
            self._http.go_down()
        else:
            self._http.come_up()

    def reset(self) -> None:
        """Forget everything received (as a fresh server would) and accept again."""
        with self._lock:
            self._events.clear()
            self._unique.clear()
            self._batch_sizes.clear()
            self._request_count = 0
            self._registrations.clear()
        self.set_mode(InngestMode.ACCEPT)

    # -- what was received -------------------------------------------------------------------

    @property
    def events(self) -> list[ReceivedEvent]:
        with self._lock:
            return list(self._events)

    @property
    def unique_events(self) -> list[ReceivedEvent]:
        with self._lock:
            return list(self._unique.values())

    @property
    def unique_ids(self) -> list[str]:
        with self._lock:
            return list(self._unique)

    @property
    def request_count(self) -> int:
        with self._lock:
            return self._request_count

    @property
    def registrations(self) -> list[Registration]:
        with self._lock:
            return list(self._registrations)

    @property
    def accepted_batch_sizes(self) -> list[int]:
        """The number of events published by each request that published any."""
        with self._lock:
            return list(self._batch_sizes)

    # -- the Event API -----------------------------------------------------------------------

    def _answer(self, request: LoopbackRequest) -> LoopbackResponse:
        if request.method == "POST" and request.path.split("?", 1)[0] == "/fn/register":
            return self._register(request)
        if request.method != "POST" or not request.path.startswith("/e/"):
            return LoopbackResponse.of_json(404, {"status": 404, "error": "not found"})
        with self._lock:
            self._request_count += 1
            mode, delay_s, html_status = self._mode, self._delay_s, self._html_status

        if mode is InngestMode.SERVER_ERROR:
            return LoopbackResponse.of_json(
                500, {"ids": [], "status": 500, "error": "internal server error"}
            )
        if mode is InngestMode.HTML_ERROR:
            title = f"{html_status} {HTTPStatus(html_status).phrase}"
            page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
            return LoopbackResponse(html_status, page.encode(), content_type="text/html")

        key = request.path.removeprefix("/e/").split("?", 1)[0]
        if self._event_key is not None and key != self._event_key:
            return LoopbackResponse.of_json(
                401, {"status": 401, "message": "", "error": "Event key not found"}
            )
        try:
            events = _parse_events(request.json())
        except ValueError as error:
            return LoopbackResponse.of_json(400, {"ids": [], "status": 400, "error": str(error)})

        if mode is InngestMode.REJECT_PARTIAL:
            published = events[: len(events) // 2]
            ids = self._publish(published) + [""] * (len(events) - len(published))
            return LoopbackResponse.of_json(
                400, {"ids": ids, "status": 400, "error": "failed to publish event"}
            )
        if mode is InngestMode.OK_WITH_ERROR:
            return LoopbackResponse.of_json(
                200, {"ids": [], "status": 200, "error": "events were not stored"}
            )
        if mode is InngestMode.OK_MISSING_IDS:
            ids = self._publish(events[: len(events) // 2])
            return LoopbackResponse.of_json(200, {"ids": ids, "status": 200})
        ids = self._publish(events)
        delay = delay_s if mode is InngestMode.SLOW else 0.0
        return LoopbackResponse.of_json(200, {"ids": ids, "status": 200}, delay_s=delay)

    def _register(self, request: LoopbackRequest) -> LoopbackResponse:
        document = request.json()
        if not isinstance(document, dict) or not isinstance(document.get("url"), str):
            return LoopbackResponse.of_json(400, {"error": "a sync needs a url"})
        registration = Registration(
            url=document["url"],
            functions=list(document.get("functions") or []),
            authorization=request.headers.get("authorization"),
        )
        with self._lock:
            self._registrations.append(registration)
        return LoopbackResponse.of_json(200, {"ok": True, "modified": True})

    def _publish(self, events: list[ReceivedEvent]) -> list[str]:
        internal_ids = [_internal_id() for _ in events]
        with self._lock:
            if events:
                self._batch_sizes.append(len(events))
            for event, internal_id in zip(events, internal_ids, strict=True):
                self._events.append(event)
                # Without an id, Inngest uses the internal one: such an event is always new.
                self._unique.setdefault(event.id or internal_id, event)
        return internal_ids


def _parse_events(document: Any) -> list[ReceivedEvent]:
    raw_events = document if isinstance(document, list) else [document]
    if len(raw_events) > MAX_EVENTS_PER_REQUEST:
        raise ValueError(f"Cannot have more than {MAX_EVENTS_PER_REQUEST} events in a batch")
    events: list[ReceivedEvent] = []
    for raw in raw_events:
        if not isinstance(raw, dict):
            raise ValueError("event must be an object")
        name = raw.get("name")
        if not isinstance(name, str) or not name or name.startswith("inngest/"):
            raise ValueError(f"invalid event name: {name!r}")
        data = raw.get("data") or {}
        if not isinstance(data, dict):
            raise ValueError("event data must be an object")
        ts = raw.get("ts")
        events.append(
            ReceivedEvent(
                name=name,
                id=str(raw.get("id") or ""),
                data=data,
                ts=ts if isinstance(ts, int) else None,
            )
        )
    return events


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _internal_id() -> str:
    """A ULID-shaped internal event id: Inngest answers with these, never with the sent ids."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))
