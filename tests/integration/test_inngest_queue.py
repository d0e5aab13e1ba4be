"""The Inngest adapter against a loopback Event API: batching, the exact events, every failure
mode of send mapped to QueueUnavailable, and a resend after recovery deduplicated by event id."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from adapters.inngest.queue import InngestQueue, build_inngest_client
from application.ports.ingestion_queue import QueueUnavailable
from domain.ingestion import EVENT_NAME, IngestionRequest
from domain.values import CatalogId, Isrc, LibraryItemId
from tests.contracts.ingestion_queue import IngestionQueueContract, QueueRig
from tests.support.loopback_inngest import InngestMode, LoopbackInngest

# Short enough that the failure tests stay fast, long enough for a loaded CI machine.
REQUEST_TIMEOUT_S = 0.5
SEND_DEADLINE_S = 1.0
# "Raised within the deadline", with a margin generous enough not to flake.
WITHIN_DEADLINE_S = 3.0

LIBRARY_ITEM = LibraryItemId(uuid.UUID("6f1c2a52-8f4e-4b8e-9c55-0d3c1f2e8a10"))


@pytest.fixture
def inngest_api() -> Iterator[LoopbackInngest]:
    with LoopbackInngest() as api:
        yield api


def make_queue(
    api: LoopbackInngest, *, max_batch: int = 500, send_deadline_s: float = SEND_DEADLINE_S
) -> InngestQueue:
    client = build_inngest_client(
        is_production=False, event_api_base_url=api.url, request_timeout_s=REQUEST_TIMEOUT_S
    )
    return InngestQueue(client, max_batch=max_batch, send_deadline_s=send_deadline_s)


class TestInngestQueueContract(IngestionQueueContract):
    @pytest.fixture
    def rig(self, inngest_api: LoopbackInngest) -> QueueRig:
        return QueueRig(
            queue=make_queue(inngest_api, max_batch=50),
            delivered=lambda: [event.id for event in inngest_api.events],
            take_down=lambda: inngest_api.set_mode(InngestMode.DOWN),
            bring_up=lambda: inngest_api.set_mode(InngestMode.ACCEPT),
        )


def album_requests(count: int) -> list[IngestionRequest]:
    return [
        IngestionRequest(
            isrc=Isrc(f"USRC1{n:07d}"),
            track_id=CatalogId(str(1000 + n)),
            album_id=CatalogId("77646168") if n % 2 == 0 else None,
            library_item_id=LIBRARY_ITEM,
        )
        for n in range(count)
    ]


async def test_a_batch_of_120_requests_is_one_http_request_with_exactly_the_right_events(
    inngest_api: LoopbackInngest,
) -> None:
    requests = album_requests(120)

    await make_queue(inngest_api).send(requests)

    assert inngest_api.request_count == 1
    received = inngest_api.events
    assert [(event.name, event.id, dict(event.data)) for event in received] == [
        (
            EVENT_NAME,
            f"track-ingestion-requested:{request.isrc.value}",
            {
                "isrc": request.isrc.value,
                "trackId": request.track_id.value,
                "albumId": request.album_id.value if request.album_id else None,
                "libraryItemId": str(LIBRARY_ITEM),
            },
        )
        for request in requests
    ]
    assert received[1].data["albumId"] is None
    assert all(event.name == "track/ingestion.requested" for event in received)


async def test_more_requests_than_max_batch_go_out_in_requests_of_at_most_max_batch(
    inngest_api: LoopbackInngest,
) -> None:
    requests = album_requests(120)

    await make_queue(inngest_api, max_batch=50).send(requests)

    assert inngest_api.accepted_batch_sizes == [50, 50, 20]
    assert [event.id for event in inngest_api.events] == [r.idempotency_key for r in requests]


async def test_an_empty_batch_sends_nothing(inngest_api: LoopbackInngest) -> None:
    await make_queue(inngest_api).send([])

    assert inngest_api.request_count == 0


@pytest.mark.parametrize(
    ("mode", "html_status"),
    [
        pytest.param(InngestMode.DOWN, 502, id="connection refused"),
        pytest.param(InngestMode.SERVER_ERROR, 502, id="500 on every attempt"),
        pytest.param(InngestMode.SLOW, 502, id="slower than the deadline"),
        pytest.param(InngestMode.HTML_ERROR, 502, id="a proxy's 502 HTML page"),
        pytest.param(InngestMode.HTML_ERROR, 200, id="a 200 with an HTML body"),
        pytest.param(InngestMode.HTML_ERROR, 413, id="a 413 with an HTML body"),
        pytest.param(InngestMode.REJECT_PARTIAL, 502, id="a 400 partial success"),
        pytest.param(InngestMode.OK_WITH_ERROR, 502, id="a 200 reporting an error"),
        pytest.param(InngestMode.OK_MISSING_IDS, 502, id="a 200 acknowledging half"),
    ],
)
async def test_every_failure_of_the_event_api_is_queue_unavailable_within_the_deadline(
    inngest_api: LoopbackInngest, mode: InngestMode, html_status: int
) -> None:
    queue = make_queue(inngest_api)
    inngest_api.set_mode(mode, delay_s=5.0, html_status=html_status)

    started = time.monotonic()
    with pytest.raises(QueueUnavailable):
        await queue.send(album_requests(10))

    assert time.monotonic() - started < WITHIN_DEADLINE_S


async def test_a_proxy_error_page_is_queue_unavailable_once_the_sdk_stops_retrying(
    inngest_api: LoopbackInngest,
) -> None:
    # With room for the SDK's own retries (5 attempts, ~3.5 s of backoff), its final answer, a
    # non-JSON body, must still come out as QueueUnavailable and not as a JSONDecodeError.
    queue = make_queue(inngest_api, send_deadline_s=10.0)
    inngest_api.set_mode(InngestMode.HTML_ERROR, html_status=502)

    with pytest.raises(QueueUnavailable):
        await queue.send(album_requests(3))

    assert inngest_api.request_count == 5
    assert inngest_api.events == []


async def test_a_wrong_event_key_is_queue_unavailable() -> None:
    with LoopbackInngest(event_key="the-right-key") as api:
        client = build_inngest_client(
            event_key="a-wrong-key", is_production=False, event_api_base_url=api.url
        )

        with pytest.raises(QueueUnavailable):
            await InngestQueue(client).send(album_requests(2))

        assert api.events == []


async def test_a_resend_of_a_batch_the_server_took_but_never_acknowledged_dedupes_by_id(
    inngest_api: LoopbackInngest,
) -> None:
    queue = make_queue(inngest_api)
    requests = album_requests(120)
    # The server publishes the batch but answers after our deadline: we must report failure,
    # and the caller's resend must not schedule anything twice.
    inngest_api.set_mode(InngestMode.SLOW, delay_s=2.0)
    with pytest.raises(QueueUnavailable):
        await queue.send(requests)

    inngest_api.set_mode(InngestMode.ACCEPT)
    await queue.send(requests)

    # The server holds the batch more than once (the SDK's retries and ours), yet each id once.
    assert len(inngest_api.events) > len(requests)
    assert inngest_api.unique_ids == [request.idempotency_key for request in requests]


async def test_after_a_partial_success_the_resend_completes_the_batch_without_duplicates(
    inngest_api: LoopbackInngest,
) -> None:
    queue = make_queue(inngest_api)
    requests = album_requests(10)
    inngest_api.set_mode(InngestMode.REJECT_PARTIAL)
    with pytest.raises(QueueUnavailable):
        await queue.send(requests)

    inngest_api.set_mode(InngestMode.ACCEPT)
    await queue.send(requests)

    assert inngest_api.unique_ids == [request.idempotency_key for request in requests]


def test_production_mode_without_an_event_key_is_refused_at_startup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("INNGEST_EVENT_KEY", raising=False)
    client = build_inngest_client(is_production=True)

    with pytest.raises(ValueError, match="event key"):
        InngestQueue(client)


def test_a_max_batch_beyond_the_event_api_limit_is_refused() -> None:
    client = build_inngest_client(is_production=False)

    with pytest.raises(ValueError, match="max_batch"):
        InngestQueue(client, max_batch=5001)


@pytest.mark.parametrize(
    ("dev", "expected_production", "expected_origin"),
    [
        ("1", False, "http://127.0.0.1:8288/"),
        ("http://inngest.internal:8288", False, "http://inngest.internal:8288"),
        ("0", True, "https://inn.gs/"),
        ("false", True, "https://inn.gs/"),
    ],
)
def test_inngest_dev_chooses_the_mode_and_the_dev_server_origin(
    monkeypatch: pytest.MonkeyPatch, dev: str, expected_production: bool, expected_origin: str
) -> None:
    for variable in ("INNGEST_DEV", "INNGEST_BASE_URL", "INNGEST_EVENT_API_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)

    client = build_inngest_client(event_key="key", dev=dev)

    assert client.is_production is expected_production
    assert client.event_api_origin == expected_origin


def test_a_base_url_points_both_apis_at_a_self_hosted_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("INNGEST_DEV", "INNGEST_API_BASE_URL", "INNGEST_EVENT_API_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)

    client = build_inngest_client(
        event_key="key", is_production=True, base_url="http://inngest:8288"
    )

    assert (client.event_api_origin, client.api_origin) == (
        "http://inngest:8288",
        "http://inngest:8288",
    )
