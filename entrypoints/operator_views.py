"""What `libingest status` and `libingest reschedule` show an operator: the backlog at a glance,
and a progress bar while requests are put back. Rendered with rich: colours and a live bar at a
terminal, plain lines when the output goes to a file or a pipe."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.postgres.backlog import Backlog
from domain.ingestion import LedgerState


def ago(moment: datetime, now: datetime) -> str:
    """`12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`."""
    seconds = max((now - moment).total_seconds(), 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def _about(state: str, backlog: Backlog) -> str:
    return "~" if state in backlog.estimated else ""


def show_status(console: Console, backlog: Backlog, *, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    jobs = backlog.jobs_by_status
    ages = ", ".join(f"{age}: {count}" for age, count in backlog.pending_by_age.items())
    oldest = f"; oldest added {ago(backlog.oldest_pending, now)}" if backlog.oldest_pending else ""
    failed_jobs = jobs.get("failed", 0)
    console.print("[bold]Scheduling jobs[/bold] (one per library item)")
    console.print(
        f"  pending [bold]{jobs.get('pending', 0)}[/bold] (by age {ages}{oldest})   "
        f"done {_about('done', backlog)}{jobs.get('done', 0)}   "
        + (f"[red]failed {failed_jobs}[/red]" if failed_jobs else "failed 0")
    )
    ledger = backlog.ledger_by_state
    console.print("[bold]Tracks[/bold] (the ISRC ledger)")
    states = (f"{state} {_about(state, backlog)}{ledger.get(state, 0)}" for state in LedgerState)
    console.print("  " + "   ".join(states))
    if backlog.estimated:
        console.print(
            "  (~ estimated from PostgreSQL's row statistics: counting them one by one would read"
            " the whole table)"
        )
    console.print("[bold]TIDAL pace[/bold] (shared by every process)")
    pace = backlog.pace
    if pace is None:
        console.print("  no call paced yet (the offline sample catalogue needs none)")
    else:
        blocked = (
            f"[yellow]blocked by a 429 until {pace.blocked_until:%H:%M:%S} UTC[/yellow]"
            if pace.blocked_until is not None and pace.blocked_until > now
            else "not blocked"
        )
        console.print(
            f"  {pace.tokens:.1f} of {pace.capacity:.0f} requests free now, refilled at "
            f"{pace.requests_per_second:g}/s; {blocked}"
        )
    console.print("[bold]Recent failures[/bold]")
    if not backlog.recent_failures:
        console.print("  none")
        return
    table = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
    table.add_column("what")
    table.add_column("when")
    table.add_column("reason", overflow="fold")
    for failure in backlog.recent_failures:
        table.add_row(failure.what, ago(failure.at, now), failure.reason)
    console.print(table)
    console.print("  `libingest reschedule` puts failed requests and items back.")


@contextmanager
def reschedule_progress(console: Console, total: int) -> Iterator[Callable[[int], None]]:
    """Yields the callback for Reschedule's running total: a live bar at a terminal, one line
    per batch otherwise. `total` is what was waiting when it began (rows failing meanwhile may
    take the count past it)."""
    if not console.is_terminal:

        def line(done: int) -> None:
            share = f" ({100 * done // total}%)" if total else ""
            console.print(f"rescheduled {done} of {total} requests{share}")

        yield line
        return
    with Progress(
        TextColumn("rescheduling requests"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("reschedule", total=max(total, 1))

        def advance(done: int) -> None:
            progress.update(task, completed=done, total=max(total, done, 1))

        yield advance
