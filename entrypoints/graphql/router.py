"""The GraphQL endpoint: authentication happens here, before anything is parsed or executed."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.fastapi import GraphQLRouter
from strawberry.types import ExecutionResult

from entrypoints.graphql.context import RequestContext
from entrypoints.graphql.errors import unauthenticated


class AuthenticatedGraphQLRouter(GraphQLRouter[RequestContext, None]):
    """Answers every operation of a caller without a valid token with one UNAUTHENTICATED error
    and no data, so an anonymous caller learns nothing, not even whether a query is valid."""

    async def execute_operation(
        self,
        request: Any,
        request_adapter: Any,
        request_data: Any,
        context: RequestContext,
        root_value: Any,
        sub_response: Any,
    ) -> Any:
        if context.viewer is None:
            error: GraphQLError = unauthenticated(context.auth_failure or "no token")
            return ExecutionResult(data=None, errors=[error])
        return await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )
