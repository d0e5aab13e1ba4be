"""A loopback Qdrant: a real HTTP server on 127.0.0.1 speaking just enough of Qdrant's REST API.

Enough for qdrant-client's `retrieve` (`POST /collections/{name}/points`) and
`collection_exists` (`GET /collections/{name}/exists`), answered from an in-memory set of point
ids, in the shapes of qdrant_client/http/models (`Record`, `CollectionExistence`) wrapped in
Qdrant's `{"result", "status", "time"}` envelope. It can be switched to every failure an adapter
must survive (reference/qdrant.md §3.1): refused connections, a reply slower than the deadline,
500, 429 with Retry-After, a non-JSON 200 body, and a missing collection.

    with LoopbackQdrant(collection="tracks", point_ids={...}) as qdrant:
        index = QdrantTrackIndex(url=qdrant.url, vector_size=8)
        qdrant.set_mode(QdrantMode.RATE_LIMITED)

The server machinery (start, stop, down and up again, faults) is LoopbackServer's
(tests/support/loopback_server.py), shared with the loopback TIDAL and Inngest.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from enum import StrEnum
from http import HTTPStatus
from typing import Any

from tests.support.loopback_server import (
    Fault,
    LoopbackRequest,
    LoopbackResponse,
    LoopbackServer,
)


class QdrantMode(StrEnum):
    """How the loopback Qdrant answers."""

    NORMAL = "normal"
    DOWN = "down"  # connection refused
    SLOW = "slow"  # waits `delay_s`, then answers normally
    SERVER_ERROR = "server_error"  # 500
    RATE_LIMITED = "rate_limited"  # 429 with Retry-After
    NON_JSON = "non_json"  # 200 with an HTML body, as a misconfigured proxy answers
    MISSING_COLLECTION = "missing_collection"  # the collection does not exist (404)


class LoopbackQdrant(LoopbackServer):
    """A loopback Qdrant holding one collection with the point ids given (any UUID form).

    `retrieve_requests` lists the ids of every retrieve that reached the server, one list per
    request; `request_count` counts every request, whatever the mode.
    """

    def __init__(self, collection: str = "tracks", point_ids: Iterable[str] = ()) -> None:
        super().__init__()
        self.collection = collection
        self._lock = threading.Lock()
        self._point_ids = {_canonical(point_id) for point_id in point_ids}
        self._mode = QdrantMode.NORMAL
        self._retrieve_requests: list[list[str]] = []

    @property
    def url(self) -> str:
        return self.origin

    def set_mode(self, mode: QdrantMode, *, delay_s: float = 2.0) -> None:
        """Switch behaviour. DOWN stops listening; any other mode listens again on the same port."""
        with self._lock:
            self._mode = mode
        self.switches.latency = delay_s if mode is QdrantMode.SLOW else 0.0
        self.switches.every_request = _FAULTS.get(mode)
        if mode is QdrantMode.DOWN:
            self.go_down()
        else:
            self.come_up()

    def add_points(self, point_ids: Iterable[str]) -> None:
        with self._lock:
            self._point_ids.update(_canonical(point_id) for point_id in point_ids)

    @property
    def retrieve_requests(self) -> list[list[str]]:
        with self._lock:
            return [list(ids) for ids in self._retrieve_requests]

    @property
    def request_count(self) -> int:
        return len(self.requests)

    # -- the REST API ------------------------------------------------------------------------

    def error(self, status: int, fault: Fault) -> LoopbackResponse:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        return _error(status, _MESSAGES.get(status, HTTPStatus(status).phrase), headers=headers)

    def answer(self, request: LoopbackRequest) -> LoopbackResponse:
        with self._lock:
            mode = self._mode
        path = request.route.rstrip("/")
        parts = path.strip("/").split("/")
        if path == "":
            return LoopbackResponse.of_json(
                200, {"title": "qdrant - vector search engine", "version": "1.15.0"}
            )
        if len(parts) < 2 or parts[0] != "collections":
            return _error(404, f"Not found: {path}")
        exists = parts[1] == self.collection and mode is not QdrantMode.MISSING_COLLECTION
        if parts[2:] == ["exists"] and request.method == "GET":
            return _ok({"exists": exists})
        if not exists:
            return _error(404, f"Not found: Collection `{parts[1]}` doesn't exist!")
        if parts[2:] == ["points"] and request.method == "POST":
            return self._retrieve(request)
        return _error(404, f"Not found: {request.method} {path} is not served by the loopback")

    def _retrieve(self, request: LoopbackRequest) -> LoopbackResponse:
        try:
            body = request.json()
            requested = [str(point_id) for point_id in body["ids"]]
        except (ValueError, KeyError, TypeError):
            return _error(400, "Format error in JSON body")
        with self._lock:
            self._retrieve_requests.append(requested)
            present = [
                point_id for point_id in requested if _canonical(point_id) in self._point_ids
            ]
        # Record: id, and payload/vector only when asked for (we never hold any).
        records = [{"id": point_id, "payload": None, "vector": None} for point_id in present]
        return _ok(records)


# The modes that are a fault of any API, as the shared machinery injects them.
_FAULTS = {
    QdrantMode.SERVER_ERROR: Fault.server_error(500),
    QdrantMode.RATE_LIMITED: Fault.rate_limited(retry_after="1"),
    QdrantMode.NON_JSON: Fault.malformed(
        "<html><body><h1>Welcome to nginx!</h1></body></html>", content_type="text/html"
    ),
}
_MESSAGES = {
    500: "Service internal error: the loopback was told to fail",
    429: "Too many requests",
}


def _ok(result: Any) -> LoopbackResponse:
    return LoopbackResponse.of_json(200, {"result": result, "status": "ok", "time": 0.0001})


def _error(status: int, message: str, **kwargs: Any) -> LoopbackResponse:
    return LoopbackResponse.of_json(status, {"status": {"error": message}, "time": 0.0}, **kwargs)


def _canonical(point_id: str) -> str:
    try:
        return str(uuid.UUID(point_id))
    except ValueError:
        return point_id
