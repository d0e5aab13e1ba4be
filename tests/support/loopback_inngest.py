"""A loopback Inngest Event API: a real HTTP server on 127.0.0.1 for tests and benchmarks.

It implements `POST /e/{event_key}` as the open-source Inngest server does (reference/inngest.md
§1.3-§1.4): a JSON array (or one object) of events in, `{"ids": [...], "status": 200}` out, one
internal id per event. It records every event it accepts, and deduplicates by event `id` the way
Inngest deduplicates function runs, so a test can tell "received twice" from "would run twice".

It can be switched at runtime to fail the ways a real deployment does: down (connection refused),
500, slow, an HTML error page from a proxy, a 400 partial success, or a 200 that reports an error.

The server machinery (start, stop, down and up again, faults) is LoopbackServer's
(tests/support/loopback_server.py), shared with the loopback TIDAL and Qdrant.

    with LoopbackInngest() as inngest_api:
        client = build_inngest_client(is_production=False, event_api_base_url=inngest_api.url)
        ...
        inngest_api.set_mode(InngestMode.DOWN)
        assert inngest_api.unique_ids == [...]
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from http import HTTPStatus
from typing import Any

from tests.support.loopback_server import (
    Fault,
    LoopbackRequest,
    LoopbackResponse,
    LoopbackServer,
)

# OSS Inngest: consts.MaxEvents.
MAX_EVENTS_PER_REQUEST = 5000


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
    # When this server received it (time.monotonic()): tells a re-send from its first send.
    received_at: float = field(default=0.0, compare=False)


class LoopbackInngest(LoopbackServer):
    """A loopback Inngest Event API. `url` is the Event API origin to give the SDK.

    `events` lists every event accepted, duplicates included; `unique_ids` lists the event ids
    that would trigger a function run (first occurrence of each id, in arrival order);
    `request_count` counts every `POST /e/...` that reached the server, whatever the mode.
    With `event_key` set, any other key gets 401 like a self-hosted server. It also takes syncs
    (`POST /fn/register`, the REST API's): `registrations` lists them, each answered 200.
    """

    def __init__(self, event_key: str | None = None) -> None:
        super().__init__()
        self._event_key = event_key
        self._lock = threading.Lock()
        self._mode = InngestMode.ACCEPT
        self._events: list[ReceivedEvent] = []
        self._unique: dict[str, ReceivedEvent] = {}
        self._batch_sizes: list[int] = []
        self._registrations: list[Registration] = []

    @property
    def url(self) -> str:
        return f"{self.origin}/"

    # -- switching ---------------------------------------------------------------------------

    @property
    def mode(self) -> InngestMode:
        return self._mode

    def set_mode(self, mode: InngestMode, *, delay_s: float = 2.0, html_status: int = 502) -> None:
        """Switch behaviour. DOWN stops listening; any other mode listens again on the same port."""
        with self._lock:
            self._mode = mode
        self.switches.latency = delay_s if mode is InngestMode.SLOW else 0.0
        self.switches.every_request = _FAULTS[mode](html_status) if mode in _FAULTS else None
        if mode is InngestMode.DOWN:
            self.go_down()
        else:
            self.come_up()

    def reset(self) -> None:
        """Forget everything received (as a fresh server would) and accept again."""
        with self._lock:
            self._events.clear()
            self._unique.clear()
            self._batch_sizes.clear()
            self._registrations.clear()
        self.forget_requests()
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
        return sum(1 for request in self.requests if _is_event_api(request))

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

    def faults_apply_to(self, request: LoopbackRequest) -> bool:
        return _is_event_api(request)

    def error(self, status: int, fault: Fault) -> LoopbackResponse:
        phrase = HTTPStatus(status).phrase.lower()
        return LoopbackResponse.of_json(status, {"ids": [], "status": status, "error": phrase})

    def answer(self, request: LoopbackRequest) -> LoopbackResponse:
        if request.method == "POST" and request.route == "/fn/register":
            return self._register(request)
        if not _is_event_api(request):
            return LoopbackResponse.of_json(404, {"status": 404, "error": "not found"})
        with self._lock:
            mode = self._mode

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
        return LoopbackResponse.of_json(200, {"ids": ids, "status": 200})

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


def _is_event_api(request: LoopbackRequest) -> bool:
    return request.method == "POST" and request.path.startswith("/e/")


def _html_page(status: int) -> Fault:
    title = f"{status} {HTTPStatus(status).phrase}"
    page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
    return Fault.malformed(page, status=status, content_type="text/html")


# The modes that are a fault of any API, as the shared machinery injects them (by HTML status).
_FAULTS: dict[InngestMode, Callable[[int], Fault]] = {
    InngestMode.SERVER_ERROR: lambda _: Fault.server_error(500),
    InngestMode.HTML_ERROR: _html_page,
}


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
                received_at=time.monotonic(),
            )
        )
    return events


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _internal_id() -> str:
    """A ULID-shaped internal event id: Inngest answers with these, never with the sent ids."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))
