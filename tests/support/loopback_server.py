"""What every loopback server shares: a real HTTP server on 127.0.0.1 for tests and benchmarks.

`LoopbackServer` starts on a free port, stops, goes down and comes back on the same port,
records every request, and injects the faults every API can suffer: latency, an error status,
a body that is not the API's, a hang. A subclass speaks one API (TIDAL, Inngest, Qdrant) by
implementing `answer`, and says how that API writes an error in `error`.

    class LoopbackEcho(LoopbackServer):
        def answer(self, request: LoopbackRequest) -> LoopbackResponse:
            return LoopbackResponse.of_json(200, {"path": request.route})

    with LoopbackEcho() as echo:
        echo.switches.latency = 0.05
        echo.switches.faults.append(Fault.server_error(503))  # the next request only
        ...  # point a client at echo.origin
        assert len(echo.requests) == 2

`LoopbackHttpServer`, the restartable threaded server underneath, answers with a callable.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs

HOST = "127.0.0.1"


@dataclass(frozen=True)
class LoopbackRequest:
    method: str
    path: str  # as sent: the route and the query string
    headers: Mapping[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    @property
    def route(self) -> str:
        """The path without its query string."""
        return self.path.split("?", 1)[0]

    @property
    def query_string(self) -> str:
        return self.path.partition("?")[2]

    @cached_property
    def query(self) -> dict[str, list[str]]:
        """Every value of every query parameter, in order."""
        return parse_qs(self.query_string, keep_blank_values=True)

    def param(self, name: str, default: str | None = None) -> str | None:
        """The last value of a query parameter, as frameworks read a repeated one."""
        values = self.query.get(name)
        return values[-1] if values else default


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


@dataclass(frozen=True, slots=True)
class Fault:
    """What one answer does instead of answering normally: an error `status` (in the API's own
    error document, with `retry_after` as the Retry-After header), a `body` that is not the
    API's (under `status`, else 200), or a `hang` until the client gives up."""

    status: int | None = None
    retry_after: str | None = None
    hang: bool = False
    body: str | None = None
    content_type: str | None = None  # of `body`; the server's own type when None

    @classmethod
    def server_error(cls, status: int = 503) -> Fault:
        return cls(status=status)

    @classmethod
    def rate_limited(cls, retry_after: str | None = None) -> Fault:
        """429, with `Retry-After` in seconds ("1") or as an HTTP date, or without it."""
        return cls(status=429, retry_after=retry_after)

    @classmethod
    def timeout(cls) -> Fault:
        """Hold the answer until the client gives up (or `hang_seconds` pass)."""
        return cls(hang=True)

    @classmethod
    def malformed(
        cls,
        body: str = "<html>gateway says hello</html>",
        *,
        status: int = 200,
        content_type: str | None = None,
    ) -> Fault:
        """A body that is not the API's document, as a proxy or a gateway sends."""
        return cls(status=status, body=body, content_type=content_type)


@dataclass
class FaultSwitches:
    """Latency and faults, changeable while the server runs (from any thread)."""

    latency: float = 0.0  # seconds added to every answer
    faults: deque[Fault] = field(default_factory=deque)  # one-shot, taken by requests in order
    every_request: Fault | None = None  # applied to every request (e.g. 5xx forever)
    hang_seconds: float = 30.0


class LoopbackServer:
    """Base of the loopback servers. `origin` is its URL; `requests` lists what it received.

    Each request is recorded, then `admit` may answer it at once (a rate limit, say); then a
    fault from `switches` replaces the answer, for the requests `faults_apply_to`; otherwise
    `answer` gives it. `switches.latency` delays every answer but an admission's refusal."""

    content_type = "application/json"

    def __init__(self, switches: FaultSwitches | None = None) -> None:
        self.switches = switches if switches is not None else FaultSwitches()
        self._received_lock = threading.Lock()
        self._received: list[LoopbackRequest] = []
        self._http = LoopbackHttpServer(self._serve)

    # -- the API, for subclasses ----------------------------------------------------------------

    def answer(self, request: LoopbackRequest) -> LoopbackResponse:
        raise NotImplementedError

    def error(self, status: int, fault: Fault) -> LoopbackResponse:
        """The API's answer with an error `status` (and the fault's Retry-After)."""
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        phrase = HTTPStatus(status).phrase
        return LoopbackResponse.of_json(status, {"error": phrase}, headers=headers)

    def admit(self, request: LoopbackRequest) -> LoopbackResponse | None:
        """Runs first for every request; a response is answered at once, without latency."""
        return None

    def faults_apply_to(self, request: LoopbackRequest) -> bool:
        return True

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Self:
        self._http.come_up()
        return self

    def stop(self) -> None:
        self._http.go_down()

    def go_down(self) -> None:
        """Refuse connections and drop the open ones, until `come_up`."""
        self._http.go_down()

    def come_up(self) -> None:
        """Listen again, on the same port."""
        self._http.come_up()

    @property
    def is_up(self) -> bool:
        return self._http.is_up

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self._http.port}"

    # -- what was received ----------------------------------------------------------------------

    @property
    def requests(self) -> list[LoopbackRequest]:
        with self._received_lock:
            return list(self._received)

    def forget_requests(self) -> None:
        with self._received_lock:
            self._received.clear()

    # -- serving --------------------------------------------------------------------------------

    def _serve(self, request: LoopbackRequest) -> LoopbackResponse:
        with self._received_lock:
            self._received.append(request)
        refused = self.admit(request)
        if refused is not None:
            return refused
        fault = self._take_fault() if self.faults_apply_to(request) else None
        response = self.answer(request) if fault is None else self._fault(fault)
        latency = self.switches.latency
        return replace(response, delay_s=response.delay_s + latency) if latency > 0 else response

    def _take_fault(self) -> Fault | None:
        switches = self.switches
        with self._received_lock:
            fault = switches.faults.popleft() if switches.faults else None
        return fault or switches.every_request

    def _fault(self, fault: Fault) -> LoopbackResponse:
        if fault.hang:
            return replace(
                self.error(HTTPStatus.GATEWAY_TIMEOUT, fault), delay_s=self.switches.hang_seconds
            )
        if fault.body is not None:
            return LoopbackResponse(
                fault.status or 200,
                fault.body.encode(),
                content_type=fault.content_type or self.content_type,
            )
        return self.error(fault.status or HTTPStatus.INTERNAL_SERVER_ERROR, fault)


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
        server = ThreadingHTTPServer((HOST, self._port), self._handler_class())
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
            # no real API adds (it showed up in bench/ as slow dispatches).
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
