"""What the service logs of GraphQL errors: readable under attack (ADR 0022).

Strawberry logs every error of every request at ERROR, with the traceback of whatever a resolver
raised, even on purpose (a BAD_USER_INPUT carried a 1.2 KB traceback) and the whole offending
document in the message. Here a client's mistake or a refusal is one short line at INFO, a
dependency down one line at WARNING, and only a real fault (what the schema masks as
"Unexpected error.") is an ERROR with its traceback. Whatever the client wrote is cut to a
prefix and its length, so that the log grows by a bounded amount per request."""

from __future__ import annotations

from typing import Any

import strawberry
import structlog
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.types import ExecutionContext

from application.errors import DependencyUnavailable
from entrypoints.graphql.errors import answer_for

log = structlog.get_logger("libingest.graphql")

# How much of a client's text (document, error message) a log line keeps.
EXCERPT_CHARS = 200


def excerpt(text: str | None) -> str | None:
    """The start of `text`, marked with its full length when cut."""
    if text is None or len(text) <= EXCERPT_CHARS:
        return text
    return f"{text[:EXCERPT_CHARS]}… ({len(text)} chars)"


def error_code(error: GraphQLError) -> str:
    """The code a client sees, or what graphql-core's errors (which carry none) amount to."""
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    original = error.original_error
    if isinstance(original, GraphQLError) and original.extensions:
        inner = original.extensions.get("code")
        if isinstance(inner, str):
            return inner
    if original is not None and (answer := answer_for(type(original))) is not None:
        return answer.code
    if is_fault(error):
        # Masked for the client, who sees no code; the log names it for what it is.
        return "INTERNAL_SERVER_ERROR"
    if isinstance(error, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED"
    return "GRAPHQL_VALIDATION_FAILED"


def is_fault(error: GraphQLError) -> bool:
    """A real fault: something escaped a resolver that no table expects (it is masked)."""
    original = error.original_error
    return (
        original is not None
        and not isinstance(original, GraphQLError)
        and answer_for(type(original)) is None
    )


class ReadableErrorLog(strawberry.Schema):
    """strawberry.Schema whose error log is the one this module describes; combined with the
    schema's other behaviour in schema.py."""

    def process_errors(
        self,
        errors: list[GraphQLError],
        execution_context: ExecutionContext | None = None,
    ) -> None:
        document = execution_context.query if execution_context is not None else None
        operation = execution_context.operation_name if execution_context is not None else None
        for error in errors:
            fields: dict[str, Any] = {
                "code": error_code(error),
                "error": excerpt(error.message),
                "path": error.path,
                "operation": excerpt(operation),
                "document": excerpt(document),
            }
            if is_fault(error):
                log.error("graphql.unexpected_error", exc_info=error.original_error, **fields)
            elif isinstance(error.original_error, DependencyUnavailable):
                log.warning("graphql.dependency_unavailable", **fields)
            else:
                log.info("graphql.client_error", **fields)
