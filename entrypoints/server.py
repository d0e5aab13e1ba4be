"""The HTTP server's configuration, in one place for `libingest serve` and the tests that run the
service over real HTTP: what the server itself bounds must be the same in both.

The request head (request line and headers) is bounded here, while it is read, because nothing
later can: uvicorn's httptools protocol has no limit of its own and hands the application a
header only once all of it is in memory (a 16 MB `Authorization` header cost 48 MB of peak
memory before a line of ours ran). h11 has a limit but parses in Python, a cost on every request
of the add's hot path; httptools is kept, with the byte count below (ADR 0022)."""

from __future__ import annotations

import errno
import socket
import sys
from typing import Any

import httpx
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# A JWT is under 4 KiB (adapters/auth/jwt_tokens.py); h11's and Node's default is 16 KiB.
DEFAULT_MAX_HEADER_BYTES = 16 * 1024
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024  # GRAPHQL_MAX_BODY_BYTES's default

# After a refusal, the rest of what the client sends is read and dropped for this long before the
# connection closes: closing with unread bytes makes the kernel answer with a reset, and a client
# still writing its head would then lose the 431 too (nginx's "lingering close").
_LINGER_SECONDS = 2.0
_TOO_LARGE_BODY = b"request line and headers are too large"
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\n"
    b"connection: close\r\n"
    b"\r\n%s" % (len(_TOO_LARGE_BODY), _TOO_LARGE_BODY)
)


class HeadBoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing with 431 (and closing the connection) a request
    whose line and headers pass `config.h11_max_incomplete_event_size` bytes: uvicorn's own
    setting for h11, honoured here too.

    Two checks, as a head may arrive in many reads or in one: the bytes read while a head is
    incomplete are counted as they arrive, so that memory stays within the limit plus one read
    whatever the client sends; a head that arrived whole is measured once parsed, before the
    application sees it. Whatever follows a refusal is dropped unparsed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = self.config.h11_max_incomplete_event_size
        self._max_head_bytes = DEFAULT_MAX_HEADER_BYTES if limit is None else limit
        self._reading_head = True
        self._head_bytes = 0
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._reading_head and self._head_bytes > self._max_head_bytes and not self._refused:
            self._refuse_head()

    def on_headers_complete(self) -> None:
        self._reading_head = False
        if self._refused:
            return
        head_bytes = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if head_bytes > self._max_head_bytes:
            self._refuse_head()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()
        # The next request on this connection (keep-alive) starts its head afresh.
        self._reading_head = True
        self._head_bytes = 0

    def _refuse_head(self) -> None:
        self.logger.info("Request head over %d bytes refused.", self._max_head_bytes)
        self._refused = True
        self.transport.write(_TOO_LARGE)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(_LINGER_SECONDS, self.transport.close)


def server_config(
    app: Any,
    *,
    host: str,
    port: int,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=HeadBoundedHttpToolsProtocol,
        h11_max_incomplete_event_size=max_header_bytes,
        # A WebSocket message is a GraphQL request like a POST body (ADR 0031): the same bound,
        # not uvicorn's 16 MiB. Past it the socket is closed with 1009.
        ws_max_size=max_message_bytes,
        log_config=None,  # our structlog configuration stays in charge
        timeout_graceful_shutdown=10,
    )


class PortInUse(Exception):
    """Something already listens where `libingest serve` would: said in one line, before
    anything starts (the app's start would otherwise fail first, on the data directory's
    Qdrant lock, with a traceback)."""

    def __init__(self, host: str, port: int, *, libingest: bool) -> None:
        if libingest:
            message = (
                f"already running on port {port} (http://{host}:{port}/healthz answers); "
                "stop that one first, or serve on another --port"
            )
        else:
            message = f"port {port} on {host} is taken by another program; choose another --port"
        super().__init__(message)
        self.port = port


def refuse_a_taken_port(host: str, port: int) -> None:
    """Raises PortInUse when `host:port` cannot be bound because something listens there."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: a port left in TIME_WAIT by a stopped server is free to take.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise PortInUse(host, port, libingest=_answers_as_libingest(host, port)) from None


def _answers_as_libingest(host: str, port: int) -> bool:
    try:
        answer = httpx.get(f"http://{host}:{port}/healthz", timeout=1.0)
        return answer.status_code == 200 and answer.json() == {"status": "ok"}
    except (httpx.HTTPError, ValueError):
        return False


def serve(
    app: Any,
    *,
    host: str,
    port: int,
    max_header_bytes: int,
    max_message_bytes: int,
    metrics_port: int | None,
) -> None:
    """Runs the server until it is stopped: on `port`, and on `metrics_port` too when set (the
    same application; it answers /metrics only there, ADR 0022)."""
    config = server_config(
        app,
        host=host,
        port=port,
        max_header_bytes=max_header_bytes,
        max_message_bytes=max_message_bytes,
    )
    sockets: list[socket.socket] | None = None
    if metrics_port is not None:
        sockets = [config.bind_socket(), socket.create_server((host, metrics_port))]
    uvicorn.Server(config).run(sockets=sockets)


def serve_workers(*, workers: int, host: str, port: int, max_header_bytes: int) -> None:
    """Runs `workers` processes of the application on one listening socket, bound here and
    inherited by each (uvicorn's supervisor: the kernel hands each connection to one of them, a
    worker that dies is replaced, SIGTERM stops them all gracefully). Each worker builds its own
    application through `worker_app`, with its own pools, and migrates under the advisory lock
    before serving, as a single process does."""
    from uvicorn.supervisors import Multiprocess

    config = server_config(
        "entrypoints.server:worker_app", host=host, port=port, max_header_bytes=max_header_bytes
    )
    config.factory = True
    config.workers = workers
    Multiprocess(config, sockets=[config.bind_socket()]).run()


def worker_app() -> Any:
    """One worker's application, in a process spawned afresh: the logging and the settings are
    read again from the same environment the `libingest serve` command was given."""
    from entrypoints.app import create_app
    from entrypoints.logging import configure_logging, logs_as_json
    from entrypoints.settings import Settings

    settings = Settings()
    configure_logging(
        level=settings.libingest_log_level,
        json=logs_as_json(settings.libingest_log_format, sys.stdout, sys.stderr),
    )
    return create_app()
