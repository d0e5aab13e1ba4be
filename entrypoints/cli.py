"""The `libingest` command: the service and the tools to run it. Exit codes: 0 ok, 2 bad usage
or input, 69 a dependency unavailable (sysexits' EX_UNAVAILABLE: the database, the search index,
...; run it again once it is back), 1 anything unexpected."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from application.errors import DependencyUnavailable
from domain.errors import DomainError
from entrypoints.logging import configure_logging, logs_as_json
from entrypoints.server import PortInUse
from entrypoints.settings import Settings

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = os.EX_UNAVAILABLE  # 69

# The CLI's one table from expected errors to exit codes (ADR 0025), keyed on the two families:
# the caller's mistakes (and a configuration value that does not parse), and a dependency down.
# Either prints its message as one line; anything else is unexpected: a traceback and exit 1.
EXIT_CODES: dict[type[BaseException], int] = {
    DomainError: EXIT_USAGE,
    PortInUse: EXIT_USAGE,  # `serve` where a server already listens
    ValueError: EXIT_USAGE,
    DependencyUnavailable: EXIT_UNAVAILABLE,
}


def exit_code_for(error: BaseException) -> int | None:
    """The table's exit code for `error`, by its nearest listed class; None when unexpected."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return None


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand, each with a one-line help that `libingest --help` lists."""
    parser = argparse.ArgumentParser(prog="libingest", description=__doc__)
    commands = parser.add_subparsers(
        dest="command", required=True, title="commands", metavar="COMMAND"
    )
    serve = commands.add_parser("serve", help="run the API (and its background work)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="API processes sharing the port (above 1: needs DATABASE_URL and QDRANT_URL)",
    )
    commands.add_parser("migrate", help="apply the database migrations")
    commands.add_parser("relay", help="run only the scheduling relay (no API)")
    reschedule = commands.add_parser(
        "reschedule",
        help="dispatch failed ingestion requests, and schedule failed items, again",
    )
    reschedule.add_argument(
        "--all",
        action="store_true",
        help="also every dispatched request that is not indexed yet",
    )
    resync = commands.add_parser(
        "resync",
        help="read playlists again and schedule the tracks added since (every one, or ITEM_IDs)",
    )
    resync.add_argument(
        "item_ids", nargs="*", metavar="ITEM_ID", help="library item ids of playlists"
    )
    token = commands.add_parser("token", help="print a token for USER_ID (local use)")
    token.add_argument("user_id")
    commands.add_parser(
        "api-doc", help="print the GraphQL API's reference (docs/api.md) from the schema"
    )
    status = commands.add_parser(
        "status", help="jobs, backlog, TIDAL pace and recent failures at a glance"
    )
    status.add_argument(
        "--failures", type=int, default=10, help="how many recent failures to list (10)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    try:
        settings = Settings()
        configure_logging(
            level=settings.libingest_log_level,
            json=logs_as_json(settings.libingest_log_format, sys.stdout, sys.stderr),
        )
        if args.command == "serve":
            return _serve(args.host, args.port, settings, workers=args.workers)
        if args.command == "migrate":
            return asyncio.run(_migrate())
        if args.command == "token":
            return _token(args.user_id)
        if args.command == "api-doc":
            return _api_doc()
        if args.command == "status":
            return asyncio.run(_status(failures=args.failures))
        if args.command == "relay":
            return asyncio.run(_relay())
        if args.command == "reschedule":
            return asyncio.run(_reschedule(include_unindexed=args.all))
        if args.command == "resync":
            return asyncio.run(_resync(tuple(args.item_ids)))
    except Exception as error:
        code = exit_code_for(error)
        if code is None:
            raise
        print(f"libingest: {error}", file=sys.stderr)
        return code
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {raw}")
    return value


def _serve(host: str, port: int, settings: Settings, *, workers: int) -> int:
    from entrypoints.app import create_app
    from entrypoints.server import refuse_a_taken_port, serve, serve_workers

    if workers > 1:
        refuse_workers_without_servers(settings)
    refuse_a_taken_port(host, port)
    if settings.metrics_port is not None:
        refuse_a_taken_port(host, settings.metrics_port)
    if workers > 1:
        serve_workers(
            workers=workers,
            host=host,
            port=port,
            max_header_bytes=settings.http_max_header_bytes,
        )
        return EXIT_OK
    serve(
        create_app(),
        host=host,
        port=port,
        max_header_bytes=settings.http_max_header_bytes,
        max_message_bytes=settings.graphql_max_body_bytes,
        metrics_port=settings.metrics_port,
    )
    return EXIT_OK


def refuse_workers_without_servers(settings: Settings) -> None:
    """Several API processes need what each can share: a PostgreSQL server and a Qdrant server.
    The embedded PostgreSQL and Qdrant's local mode belong to one process, and /metrics on a
    port of its own would answer for whichever worker took the connection."""
    missing = [
        name
        for name, value in (
            ("DATABASE_URL", settings.database_url),
            ("QDRANT_URL", settings.qdrant_url),
        )
        if not value
    ]
    if missing:
        raise ValueError(
            f"--workers above 1 needs {' and '.join(missing)}: the embedded PostgreSQL and"
            " Qdrant's local mode belong to one process"
        )
    if settings.metrics_port is not None:
        raise ValueError(
            "--workers above 1 cannot serve METRICS_PORT (each worker has its own counters):"
            " run one `libingest serve` per port instead"
        )


async def _migrate() -> int:
    from adapters.postgres.migrate import current_revision, upgrade_to_head
    from entrypoints.container import Container

    container = Container()
    try:
        # Only the database: the search index's local mode admits one process at a time.
        engine = await container.engine.init()  # type: ignore[misc]
        await upgrade_to_head(engine)
        print(f"database at revision {await current_revision(engine)}")
    finally:
        await container.shutdown_resources()  # type: ignore[misc]
    return EXIT_OK


async def _relay() -> int:
    """The relay alone, for deployments that scale it apart from the API: the same start and
    stop as `serve`'s (container.running), without the API. Stops on SIGINT or SIGTERM, handing
    its leases back."""
    import signal

    from entrypoints.container import Container, running

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running(Container(), migrate=True, relay=True):
        print("libingest relay: running; stop it with Ctrl-C or SIGTERM", file=sys.stderr)
        await stop.wait()
    return EXIT_OK


async def _reschedule(*, include_unindexed: bool) -> int:
    from rich.console import Console

    from adapters.postgres.backlog import read_backlog
    from application.use_cases.reschedule import RescheduleCommand
    from domain.ingestion import RESCHEDULE_FAILED, RESCHEDULE_UNINDEXED
    from entrypoints.container import Container, resolved
    from entrypoints.operator_views import reschedule_progress

    container = Container()
    try:
        engine = await container.engine.init()  # type: ignore[misc]
        reschedule = await resolved(container.reschedule())
        # What waits to be put back now: the ledger rows in the states the command moves.
        moved = RESCHEDULE_UNINDEXED if include_unindexed else RESCHEDULE_FAILED
        ledger = (await read_backlog(engine)).ledger_by_state
        total = sum(ledger.get(state, 0) for state in moved.sources)
        with reschedule_progress(Console(stderr=True), total) as show:
            done = await reschedule(RescheduleCommand(include_unindexed=include_unindexed), show)
        print(
            f"{done.requests} requests put back to 'requested' and {done.jobs} failed items"
            " to be scheduled again; a running relay does both"
        )
    finally:
        await container.shutdown_resources()  # type: ignore[misc]
    return EXIT_OK


async def _resync(item_ids: tuple[str, ...]) -> int:
    from application.use_cases.resync import ResyncCommand
    from entrypoints.container import Container, resolved

    container = Container()
    try:
        await container.engine.init()  # type: ignore[misc]
        resync = await resolved(container.resync())
        outcome = await resync(ResyncCommand(item_ids))
        print(f"{outcome.resynced} playlists put back to be read again; a running relay does it")
        if outcome.still_pending:
            print(f"{outcome.still_pending} still being scheduled, left as they are")
    finally:
        await container.shutdown_resources()  # type: ignore[misc]
    return EXIT_OK


async def _status(*, failures: int) -> int:
    from rich.console import Console

    from adapters.postgres.backlog import read_backlog
    from entrypoints.container import Container
    from entrypoints.operator_views import show_status

    container = Container()
    try:
        engine = await container.engine.init()  # type: ignore[misc]
        backlog = await read_backlog(engine, failures=max(failures, 0))
    finally:
        await container.shutdown_resources()  # type: ignore[misc]
    show_status(Console(), backlog)
    return EXIT_OK


def _api_doc() -> int:
    from entrypoints.graphql.api_doc import render

    sys.stdout.write(render())
    return EXIT_OK


def _token(user_id: str) -> int:
    from entrypoints.container import Container

    authenticator = Container().authenticator()
    print(authenticator.issue(user_id))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
