"""Prometheus metrics for the whole service (ADR 0032 names them): GraphQL operations, the
scheduling relay, the worker, the TIDAL pace, the backlog (read from PostgreSQL at scrape time)
and the process itself (prometheus_client's own collectors)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from domain.ingestion import LedgerState
from domain.library import SchedulingStatus

SCHEDULING_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800)
# A GraphQL operation: an add is about a millisecond, a page of the library a few.
OPERATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
# A worker step: embedding is sub-millisecond, a catalogue fetch may wait for the pace.
STEP_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30)
PACE_WAIT_BUCKETS = (0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60)
# An admission that waited less than this took a free slot: it is not counted as a wait.
PACE_WAIT_THRESHOLD_SECONDS = 0.005


class PrometheusMetrics:
    """Implements the metrics ports (SchedulingMetrics, IngestionMetrics, CatalogPaceMetrics)
    and the GraphQL endpoint's observer, on its own registry (one per app, so tests don't
    collide), with the process collectors registered on it too."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        # The process's CPU, memory, file descriptors, GC and Python version, as
        # prometheus_client's default registry would export them.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._graphql_metrics()
        self._worker_metrics()
        self._pace_metrics()
        self._backlog_metrics()
        self.jobs_claimed = Counter(
            "libingest_scheduling_jobs_claimed", "Scheduling jobs claimed", registry=self.registry
        )
        self.jobs_finished = Counter(
            "libingest_scheduling_jobs_finished",
            "Scheduling jobs finished",
            registry=self.registry,
        )
        self.jobs_failed = Counter(
            "libingest_scheduling_jobs_failed",
            "Scheduling job attempts that failed",
            ["permanent"],
            registry=self.registry,
        )
        self.scheduling_latency = Histogram(
            "libingest_scheduling_latency_seconds",
            "From the add's commit to the job's last dispatch",
            buckets=SCHEDULING_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.index_fail_opens = Counter(
            "libingest_index_fail_opens",
            "Index lookups that failed and were treated as not indexed",
            registry=self.registry,
        )
        self.events_sent = Counter(
            "libingest_ingestion_events_dispatched",
            "Ingestion events accepted by the queue",
            registry=self.registry,
        )
        self.dispatch_failures = Counter(
            "libingest_dispatch_failures", "Batches the queue refused", registry=self.registry
        )
        self.ledger_rows = Gauge(
            "libingest_ledger_rows",
            "ISRC ledger rows by state (read at scrape time; on a large ledger, indexed"
            " is PostgreSQL's row estimate less the other states)",
            ["state"],
            registry=self.registry,
        )

    def job_claimed(self) -> None:
        self.jobs_claimed.inc()

    def job_finished(self, *, seconds_since_enqueued: float) -> None:
        self.jobs_finished.inc()
        self.scheduling_latency.observe(max(seconds_since_enqueued, 0.0))

    def job_failed(self, *, permanent: bool) -> None:
        self.jobs_failed.labels(permanent=str(permanent).lower()).inc()

    def index_failed_open(self) -> None:
        self.index_fail_opens.inc()

    def events_dispatched(self, count: int) -> None:
        self.events_sent.inc(count)

    def dispatch_failed(self) -> None:
        self.dispatch_failures.inc()

    def set_ledger_rows(self, counts: dict[str, int]) -> None:
        for state in LedgerState:
            self.ledger_rows.labels(state=state).set(counts.get(state, 0))

    # GraphQL operations -------------------------------------------------------------------

    def _graphql_metrics(self) -> None:
        self.graphql_operations = Counter(
            "libingest_graphql_operations",
            "GraphQL operations answered, by operation (its root fields), type and outcome",
            ["operation", "type", "outcome"],
            registry=self.registry,
        )
        self.graphql_latency = Histogram(
            "libingest_graphql_operation_seconds",
            "Time to execute a GraphQL operation, by operation (its root fields) and type",
            ["operation", "type"],
            buckets=OPERATION_BUCKETS,
            registry=self.registry,
        )
        self._operation_children: dict[tuple[str, str, bool], tuple[Counter, Histogram]] = {}

    def operation_ended(
        self, *, operation: str, operation_type: str, failed: bool, seconds: float
    ) -> None:
        # On every request's path: the labelled children are looked up once per label set
        # (a bounded set: root fields come from validated documents) and kept.
        key = (operation, operation_type, failed)
        children = self._operation_children.get(key)
        if children is None:
            outcome = "error" if failed else "ok"
            children = (
                self.graphql_operations.labels(operation, operation_type, outcome),
                self.graphql_latency.labels(operation, operation_type),
            )
            self._operation_children[key] = children
        count, latency = children
        count.inc()
        latency.observe(seconds)

    # The worker ---------------------------------------------------------------------------

    def _worker_metrics(self) -> None:
        self.tracks_embedded = Counter(
            "libingest_worker_tracks_embedded", "Tracks embedded", registry=self.registry
        )
        self.tracks_indexed = Counter(
            "libingest_worker_tracks_indexed",
            "Tracks put into the index and marked indexed",
            registry=self.registry,
        )
        self.tracks_failed = Counter(
            "libingest_worker_tracks_failed",
            "Tracks marked failed (gone from the catalogue, or given up)",
            registry=self.registry,
        )
        self.worker_steps = Histogram(
            "libingest_worker_step_seconds",
            "Time of one worker step (fetch, embed, upsert, mark) for one track",
            ["step"],
            buckets=STEP_BUCKETS,
            registry=self.registry,
        )

    def track_embedded(self) -> None:
        self.tracks_embedded.inc()

    def track_indexed(self) -> None:
        self.tracks_indexed.inc()

    def track_failed(self) -> None:
        self.tracks_failed.inc()

    def step_took(self, step: str, seconds: float) -> None:
        self.worker_steps.labels(step).observe(max(seconds, 0.0))

    # The TIDAL pace -----------------------------------------------------------------------

    def _pace_metrics(self) -> None:
        self.pace_slots = Counter(
            "libingest_tidal_pace_slots",
            "Requests to TIDAL admitted by the shared pace",
            registry=self.registry,
        )
        self.pace_waits = Counter(
            "libingest_tidal_pace_waits",
            "Admissions that had to wait for a slot",
            registry=self.registry,
        )
        self.pace_wait_seconds = Histogram(
            "libingest_tidal_pace_wait_seconds",
            "Time a request to TIDAL waited for its slot",
            buckets=PACE_WAIT_BUCKETS,
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "libingest_tidal_rate_limited",
            "TIDAL answers 429 Too Many Requests",
            registry=self.registry,
        )
        self.pace_tokens = Gauge(
            "libingest_tidal_pace_tokens",
            "Requests the shared pace can admit now (read at scrape time)",
            registry=self.registry,
        )

    def pace_slot_taken(self, *, waited_seconds: float) -> None:
        self.pace_slots.inc()
        self.pace_wait_seconds.observe(max(waited_seconds, 0.0))
        if waited_seconds >= PACE_WAIT_THRESHOLD_SECONDS:
            self.pace_waits.inc()

    def catalog_rate_limited(self) -> None:
        self.rate_limited.inc()

    # The backlog, read at scrape time -----------------------------------------------------

    def _backlog_metrics(self) -> None:
        self.jobs_by_status = Gauge(
            "libingest_scheduling_jobs",
            "Scheduling jobs by status (read at scrape time; on a large table, done is"
            " PostgreSQL's row estimate less the other statuses)",
            ["status"],
            registry=self.registry,
        )
        self.pending_jobs_by_age = Gauge(
            "libingest_scheduling_jobs_pending",
            "Pending scheduling jobs by how long ago they were added (read at scrape time)",
            ["age"],
            registry=self.registry,
        )

    def set_backlog(
        self,
        *,
        jobs_by_status: Mapping[str, int],
        pending_by_age: Mapping[str, int],
        ledger_by_state: Mapping[str, int],
        pace_tokens: float | None,
    ) -> None:
        for status in SchedulingStatus:
            self.jobs_by_status.labels(status).set(jobs_by_status.get(status, 0))
        for age, count in pending_by_age.items():
            self.pending_jobs_by_age.labels(age).set(count)
        self.set_ledger_rows(dict(ledger_by_state))
        if pace_tokens is not None:
            self.pace_tokens.set(pace_tokens)
