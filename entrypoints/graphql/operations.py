"""Which operation of a document a request runs, as GraphQL's GetOperation() says (ADR 0021).

Strawberry, when the request names no operation, runs the document's first named one, so
`query A { … } mutation B { … }` without `operationName` runs A. The specification makes that a
request error, and graphql-core raises it ("Must provide operation name if query contains
multiple operations.") when it is given no name; Strawberry passes it the first one's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import strawberry
from graphql import DocumentNode, OperationDefinitionNode
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

SEVERAL_OPERATIONS_UNNAMED = "Must provide operation name if query contains multiple operations."


def has_several_operations(document: DocumentNode) -> bool:
    operations = 0
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            operations += 1
            if operations > 1:
                return True
    return False


class RequestedOperation(ExecutionContext):
    """Strawberry's execution context with the operation name as the request gave it."""

    @property
    def operation_name(self) -> str | None:
        return self._provided_operation_name

    @property
    def operation_type(self) -> OperationType:
        # Asked before execution, to refuse a mutation sent by GET: an unnamed choice among
        # several operations is no mutation, it is the request error below. Strawberry turns
        # the RuntimeError into its CannotGetOperationTypeError, and the endpoint into a
        # GraphQL request error.
        document = self.graphql_document
        if (
            self._provided_operation_name is None
            and document is not None
            and has_several_operations(document)
        ):
            raise RuntimeError(SEVERAL_OPERATIONS_UNNAMED)
        return super().operation_type


class RequestedOperationSchema(strawberry.Schema):
    """strawberry.Schema, running the operation the request names, or its only one."""

    def _create_execution_context(
        self,
        query: str | None,
        allowed_operation_types: Iterable[OperationType],
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionContext:
        return RequestedOperation(
            query=query,
            schema=self,
            allowed_operations=allowed_operation_types,
            context=context_value,
            root_value=root_value,
            variables=variable_values,
            provided_operation_name=operation_name,
            operation_extensions=operation_extensions,
        )
