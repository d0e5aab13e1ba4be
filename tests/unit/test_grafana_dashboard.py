"""docs/grafana-dashboard.json queries only metrics the service exports, by labels they have: a
renamed metric or label fails here, not on an operator's empty panel."""

from __future__ import annotations

import json
import re
from pathlib import Path

from adapters.metrics.prometheus import PrometheusMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
# Labels Prometheus adds to every scraped series, and the histogram bucket's.
SCRAPE_LABELS = {"job", "instance", "le"}
METRIC = re.compile(r"\b((?:libingest|process|python)_[A-Za-z0-9_]+)(\{[^}]*\})?")
MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
BY_LABELS = re.compile(r"\bby\s*\(([^)]*)\)")


def _exported() -> dict[str, set[str]]:
    """Every sample name the service exports, with its label names, after one call of each
    reporting method (a labelled metric exports nothing until a label set is used)."""
    metrics = PrometheusMetrics()
    metrics.job_claimed()
    metrics.job_finished(seconds_since_enqueued=1.0)
    metrics.job_failed(permanent=True)
    metrics.index_failed_open()
    metrics.events_dispatched(1)
    metrics.dispatch_failed()
    metrics.operation_ended(
        operation="library", operation_type="query", failed=False, seconds=0.001
    )
    metrics.track_embedded()
    metrics.track_indexed()
    metrics.track_failed()
    metrics.step_took("embed", 0.001)
    metrics.pace_slot_taken(waited_seconds=0.1)
    metrics.catalog_rate_limited()
    metrics.set_backlog(
        jobs_by_status={"pending": 1},
        pending_by_age={"0-1m": 1},
        ledger_by_state={"indexed": 1},
        pace_tokens=1.0,
    )
    exported: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            exported.setdefault(sample.name, set()).update(sample.labels)
    return exported


def _queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert queries
    return queries


def _problems(queries: list[str], exported: dict[str, set[str]]) -> list[str]:
    problems = []
    for query in queries:
        names = []
        for name, matchers in METRIC.findall(query):
            names.append(name)
            if name not in exported:
                problems.append(f"{name}: not exported")
                continue
            for label in MATCHER_LABEL.findall(matchers or ""):
                if label not in exported[name] | SCRAPE_LABELS:
                    problems.append(f"{name}: no label {label!r}")
        if not names:
            problems.append(f"names no metric: {query}")
        labels = {label.strip() for group in BY_LABELS.findall(query) for label in group.split(",")}
        known = set().union(*(exported.get(name, set()) for name in names)) | SCRAPE_LABELS
        problems += [f"{query}: grouped by unknown label {label!r}" for label in labels - known]
    return problems


def test_every_dashboard_query_names_exported_metrics_and_labels() -> None:
    assert _problems(_queries(), _exported()) == []


def test_the_dashboard_covers_every_part_of_the_service() -> None:
    queried = " ".join(_queries())

    for family in (
        "libingest_graphql_operations_total",
        "libingest_graphql_operation_seconds_bucket",
        "libingest_worker_tracks_indexed_total",
        "libingest_worker_step_seconds_bucket",
        "libingest_scheduling_jobs_pending",
        "libingest_ledger_rows",
        "libingest_tidal_pace_slots_total",
        "libingest_tidal_rate_limited_total",
        "process_cpu_seconds_total",
    ):
        assert family in queried, family


def test_the_check_finds_a_misspelt_metric_and_an_unknown_label() -> None:
    exported = {"libingest_ledger_rows": {"state"}}
    queries = [
        'max by (state) (libingest_ledger_row{state="indexed"})',
        'max by (status) (libingest_ledger_rows{kind="album"})',
    ]

    assert _problems(queries, exported) == [
        "libingest_ledger_row: not exported",
        'max by (state) (libingest_ledger_row{state="indexed"}): grouped by unknown label '
        "'state'",
        "libingest_ledger_rows: no label 'kind'",
        'max by (status) (libingest_ledger_rows{kind="album"}): grouped by unknown label '
        "'status'",
    ]
