"""Every GraphQL operation measured (ADR 0032): its latency and whether it answered errors, by
operation and type. The operation is named by its root fields (`addAlbumToLibrary`,
`library+libraryItem`), never by the client's `operationName`: a label a client can choose would
let it grow the metrics without bound, and root fields exist only as the schema declares them."""

from __future__ import annotations

import time
from typing import Any, Protocol

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
    get_operation_ast,
)
from strawberry.types import ExecutionContext, ExecutionResult

# More distinct root fields than this in one operation read as one label.
MOST_NAMED_FIELDS = 3
INVALID = "invalid"  # a document that did not parse or validate: no field of it is trusted
INTROSPECTION = "introspection"
SEVERAL = "several"

_STARTED = "_libingest_started"


class OperationObserver(Protocol):
    """Told of every operation executed; never blocks, never raises."""

    def operation_ended(
        self, *, operation: str, operation_type: str, failed: bool, seconds: float
    ) -> None: ...


def operation_label(
    document: DocumentNode | None, operation_name: str | None, *, valid: bool
) -> tuple[str, str]:
    """(operation, type) for the metrics: the root fields, sorted and joined by `+`."""
    if document is None or not valid:
        return INVALID, "unknown"
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return INVALID, "unknown"
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    names = _root_fields(operation.selection_set, fragments, seen=set())
    fields = sorted(name for name in names if not name.startswith("__"))
    if not fields:
        label = INTROSPECTION if names else INVALID
    elif len(fields) > MOST_NAMED_FIELDS:
        label = SEVERAL
    else:
        label = "+".join(fields)
    return label, operation.operation.value


def _root_fields(
    selections: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode], seen: set[str]
) -> set[str]:
    names: set[str] = set()
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            names.add(selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            names |= _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name not in seen and name in fragments:  # validated: no cycles, but be sure
                seen.add(name)
                names |= _root_fields(fragments[name].selection_set, fragments, seen)
    return names


class MeasuredOperations(strawberry.Schema):
    """strawberry.Schema telling `operation_observer` of every operation it executes."""

    operation_observer: OperationObserver | None = None

    def _create_execution_context(self, *args: Any, **kwargs: Any) -> ExecutionContext:
        context = super()._create_execution_context(*args, **kwargs)
        setattr(context, _STARTED, time.perf_counter())
        return context

    async def _handle_execution_result(
        self, context: ExecutionContext, *args: Any, **kwargs: Any
    ) -> ExecutionResult:
        answer = await super()._handle_execution_result(context, *args, **kwargs)
        observer = self.operation_observer
        if observer is not None:
            started: float = getattr(context, _STARTED, time.perf_counter())
            # A request error (the document did not parse or validate) has errors and no data,
            # and none of its errors has a path; a field's error always has one.
            errors = answer.errors or []
            request_error = (
                bool(errors) and answer.data is None and all(e.path is None for e in errors)
            )
            operation, operation_type = operation_label(
                context.graphql_document, context.operation_name, valid=not request_error
            )
            observer.operation_ended(
                operation=operation,
                operation_type=operation_type,
                failed=bool(answer.errors),
                seconds=time.perf_counter() - started,
            )
        return answer
