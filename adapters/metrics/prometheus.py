"""Prometheus metrics: the scheduling counters and ledger rows by state."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

SCHEDULING_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800)


class PrometheusMetrics:
    """Implements SchedulingMetrics on its own registry (one per app, so tests don't collide)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
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
            "ISRC ledger rows by state (read at scrape time)",
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
        for state in ("requested", "dispatched", "indexed", "failed"):
            self.ledger_rows.labels(state=state).set(counts.get(state, 0))
