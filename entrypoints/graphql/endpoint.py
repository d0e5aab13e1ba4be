"""The GraphQL endpoint: authentication happens here, before anything is parsed or executed.

Strawberry's plain ASGI view, mounted by the app, rather than its FastAPI router: the router
resolves FastAPI dependencies and builds a FastAPI request per call, which was an eighth of an
add's CPU (bench/) for nothing this endpoint uses.

GraphQL over HTTP as its specification says (ADR 0021): a client that accepts
`application/graphql-response+json` gets that media type, HTTP status codes for request errors
(400 without `data`, 401 without a valid token); a client of `application/json`, the legacy type,
keeps 200 and the errors in the body. Either way: 405 for a mutation sent by GET, 415 for a body
that is not JSON."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from entrypoints import graphiql
from entrypoints.graphql.context import RequestContext
from entrypoints.graphql.errors import unauthenticated

# The response media types, as sent in Content-Type.
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json; charset=utf-8"
LEGACY_JSON = "application/json"

_METHODS = frozenset({"GET", "POST"})
_ALLOW_METHODS = {"allow": "GET, POST"}
_ALLOW_POST_ONLY = {"allow": "POST"}


class Refusal(HTTPException):
    """A request refused before execution, with the headers its status calls for (Allow,
    WWW-Authenticate) and, for a graphql-response+json client, the GraphQL errors to send."""

    def __init__(
        self,
        status_code: int,
        reason: str,
        *,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[GraphQLError] = (),
    ) -> None:
        super().__init__(status_code, reason)
        self.headers = dict(headers or {})
        self.errors = tuple(errors)


@lru_cache(maxsize=256)
def response_media_type(accept: str | None) -> str:
    """The media type to answer with, from the request's Accept header.

    graphql-response+json when the client ranks it at least as high as application/json
    (a tie goes to it: a client that names it knows it); application/json otherwise,
    including without an Accept header (the specification's legacy default, which existing
    clients rely on) and when the header names nothing we serve (answered anyway rather than
    406, the option the specification leaves open). Cached: a client sends the same header on
    every request, and the cache is bounded."""
    if accept is None or "application/graphql-response+json" not in accept.lower():
        return LEGACY_JSON
    graphql_quality = 0.0
    json_quality: dict[str, float] = {}  # by media range: the most specific one decides
    for media_range in accept.split(","):
        media_type, _, parameters = media_range.partition(";")
        media_type = media_type.strip().lower()
        quality = _quality(parameters)
        if media_type == "application/graphql-response+json":
            graphql_quality = max(graphql_quality, quality)
        elif media_type in ("application/json", "application/*", "*/*"):
            json_quality[media_type] = max(json_quality.get(media_type, 0.0), quality)
    legacy_quality = next(
        (
            json_quality[kind]
            for kind in ("application/json", "application/*", "*/*")
            if kind in json_quality
        ),
        0.0,
    )
    if graphql_quality > 0 and graphql_quality >= legacy_quality:
        return GRAPHQL_RESPONSE_JSON
    return LEGACY_JSON


def _quality(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value.strip())
            except ValueError:
                return 0.0  # an unreadable weight accepts nothing rather than everything
            return quality if 0.0 <= quality <= 1.0 else 0.0
    return 1.0


def is_json_body(content_type: str | None) -> bool:
    """Whether a POST body is declared as JSON in UTF-8: the media type matched exactly and
    case-insensitively, its parameters tolerated except a charset other than UTF-8."""
    if content_type is None:
        return False
    media_type, _, parameters = content_type.partition(";")
    if media_type.strip().lower() != "application/json":
        return False
    for parameter in parameters.split(";") if parameters else ():
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower() in ("utf-8", "utf8")
    return True


def is_request_error(response: GraphQLHTTPResponse) -> bool:
    """A GraphQL request error: the document did not parse or validate, the operation could not
    be chosen, or the variables could not be coerced. Such errors have no `path` and leave no
    data; an error met while executing a field always has a path, even when it nulls `data`."""
    errors = response.get("errors")
    return (
        response.get("data") is None
        and bool(errors)
        and all(isinstance(error, dict) and "path" not in error for error in errors or ())
    )


class AuthenticatedGraphQL(GraphQL[RequestContext, None]):
    """Answers every operation of a caller without a valid token with one UNAUTHENTICATED error
    and no data, so an anonymous caller learns nothing, not even whether a query is valid: with
    graphql-response+json as a 401, with application/json as a 200 (what existing clients read)."""

    def __init__(
        self,
        schema: BaseSchema,
        *,
        context_getter: Callable[[HTTPConnection], Awaitable[RequestContext]],
        authenticate_connection: Callable[[RequestContext], bool] = lambda _context: False,
        **options: Any,
    ) -> None:
        super().__init__(schema, **options)
        self._context_getter = context_getter
        self._authenticate_connection = authenticate_connection

    async def on_ws_connect(self, context: RequestContext) -> UnsetType | dict[str, object] | None:
        # graphql-transport-ws: the token comes in `connection_init`, and a connection refused
        # is closed with 4403 Forbidden; a `subscribe` before the acknowledgement is closed
        # with 4401 by Strawberry itself, and a missing `connection_init` with 4408.
        if not self._authenticate_connection(context):
            raise ConnectionRejectionError()
        unset: UnsetType = UNSET
        return unset

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        response: Response
        try:
            if scope["method"] not in _METHODS:
                # Before the token is read: the method alone decides.
                raise Refusal(405, "GraphQL only supports GET and POST.", headers=_ALLOW_METHODS)
            response = await self.run(request)
        except HTTPException as refusal:
            response = self._refused(request, refusal)
        await response(scope, receive, send)

    async def render_graphql_ide(self, request: Request) -> Response:
        # Our own page, whose scripts the service serves (ADR 0032), not Strawberry's, which
        # loads them from a CDN.
        return HTMLResponse(graphiql.page())

    def _refused(self, request: Request, refusal: HTTPException) -> Response:
        headers = refusal.headers if isinstance(refusal, Refusal) else {}
        if response_media_type(request.headers.get("accept")) != GRAPHQL_RESPONSE_JSON:
            return PlainTextResponse(refusal.reason, refusal.status_code, headers)
        errors = refusal.errors if isinstance(refusal, Refusal) else ()
        body = {"errors": [error.formatted for error in errors] or [{"message": refusal.reason}]}
        return Response(
            self.encode_json(body), refusal.status_code, headers, media_type=GRAPHQL_RESPONSE_JSON
        )

    async def get_context(self, request: Any, response: Any) -> RequestContext:
        return await self._context_getter(request)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        # The response under construction carries the negotiated media type to
        # execute_operation (401 or not) and create_response (status and Content-Type).
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = response_media_type(request.headers.get("accept"))
        return sub_response

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

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:
        # Strawberry's own version accepts any content type that contains "application/json"
        # (`application/jsonx`), refuses `APPLICATION/JSON`, and parses the header with the
        # email package on every request. This service has neither file uploads nor streaming
        # transports, so a request is GET parameters or a JSON object, and nothing else.
        if request.method == "GET":
            data = self.parse_query_params(request.query_params)
            if data.get("operationName") == "":
                data["operationName"] = None  # the specification: empty means omitted
        elif is_json_body(request.content_type):
            data = self.parse_json(await request.get_body())
        else:
            raise Refusal(415, "Unsupported Media Type: send application/json (UTF-8).")
        if isinstance(data, list):
            raise HTTPException(400, "Batching is not enabled")
        query, variables = data.get("query"), data.get("variables")
        operation_name, extensions = data.get("operationName"), data.get("extensions")
        if not isinstance(query, str | None):
            raise HTTPException(400, "`query` must be a string or null, if provided.")
        if not isinstance(operation_name, str | None):
            raise HTTPException(400, "`operationName` must be a string or null, if provided.")
        if not isinstance(variables, dict | None):
            raise HTTPException(400, "`variables` must be an object or null, if provided.")
        if not isinstance(extensions, dict | None):
            raise HTTPException(400, "`extensions` must be an object or null, if provided.")
        return GraphQLRequestData(
            query=query, variables=variables, operation_name=operation_name, extensions=extensions
        )

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
            if sub_response.media_type == GRAPHQL_RESPONSE_JSON:
                # RFC 6750 §3.1: no error code when the request carried no credentials.
                challenge = (
                    "Bearer"
                    if request.headers.get("authorization") is None
                    else 'Bearer error="invalid_token"'
                )
                raise Refusal(
                    401, error.message, headers={"www-authenticate": challenge}, errors=[error]
                )
            return ExecutionResult(data=None, errors=[error])
        return await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )

    async def execute_single(
        self,
        request: Any,
        request_adapter: Any,
        sub_response: Any,
        context: RequestContext,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        try:
            return await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        except HTTPException as refusal:
            # Strawberry answers both of these with a plain 400, raised `from` its own error.
            cause = refusal.__cause__
            if (
                isinstance(cause, InvalidOperationTypeError)
                and cause.operation_type is OperationType.MUTATION
            ):
                # The specification: a mutation sent by GET is a 405.
                raise Refusal(405, refusal.reason, headers=_ALLOW_POST_ONLY) from cause
            if isinstance(cause, CannotGetOperationTypeError):
                # No operation of that name, or several and no name: a GraphQL request error,
                # a 200 for application/json clients and a 400 for the others.
                reason = refusal.reason
                if cause.operation_name is None and cause.__cause__ is not None:
                    reason = str(cause.__cause__)  # operations.py says which
                return ExecutionResult(data=None, errors=[GraphQLError(reason)])
            raise

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        # Unlike Strawberry's, copies no header or status from the sub response: nothing writes
        # to it (the context does not expose it); it only carries the negotiated media type.
        media_type = sub_response.media_type or LEGACY_JSON
        status = 200
        if (
            media_type == GRAPHQL_RESPONSE_JSON
            and isinstance(response_data, dict)
            and is_request_error(response_data)
        ):
            # graphql-response+json: a request error is a 400 with no `data` entry at all.
            del response_data["data"]
            status = 400
        return Response(self.encode_json(response_data), status, media_type=media_type)
