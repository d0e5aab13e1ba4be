"""The GraphQL endpoint: authentication happens here, before anything is parsed or executed.

Strawberry's plain ASGI view, mounted by the app, rather than its FastAPI router: the router
resolves FastAPI dependencies and builds a FastAPI request per call, which was an eighth of an
add's CPU (bench/) for nothing this endpoint uses."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from graphql import GraphQLError
from starlette.requests import HTTPConnection
from strawberry.asgi import GraphQL
from strawberry.schema import BaseSchema
from strawberry.types import ExecutionResult

from entrypoints.graphql.context import RequestContext
from entrypoints.graphql.errors import unauthenticated


class AuthenticatedGraphQL(GraphQL[RequestContext, None]):
    """Answers every operation of a caller without a valid token with one UNAUTHENTICATED error
    and no data, so an anonymous caller learns nothing, not even whether a query is valid."""

    def __init__(
        self,
        schema: BaseSchema,
        *,
        context_getter: Callable[[HTTPConnection], Awaitable[RequestContext]],
        **options: Any,
    ) -> None:
        super().__init__(schema, **options)
        self._context_getter = context_getter

    async def get_context(self, request: Any, response: Any) -> RequestContext:
        return await self._context_getter(request)

    def decode_json(self, data: str | bytes) -> object:
        # Strawberry answers 400 only for a JSONDecodeError, and assumes the JSON is an object
        # or a list. Anything else the decoder refuses (nesting past the recursion limit, bytes
        # that are not UTF-8, an integer of more than 4300 digits) or a bare value (`null`, a
        # string) would escape as a 500; it is the client's error all the same.
        try:
            decoded = super().decode_json(data)
        except json.JSONDecodeError:
            raise
        except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
            raise json.JSONDecodeError(type(error).__name__, "", 0) from error
        if not isinstance(decoded, dict | list):
            raise json.JSONDecodeError("expected a JSON object or list", "", 0)
        return decoded

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
