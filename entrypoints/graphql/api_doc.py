"""docs/api.md, written from the served schema: the API's contract as its descriptions state it,
so the document cannot drift from the code (a test compares them; ADR 0032).

`libingest api-doc` prints it; `make api-doc` rewrites docs/api.md."""

from __future__ import annotations

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    ast_from_value,
    print_ast,
    print_schema,
)
from graphql.pyutils import Undefined

from entrypoints.graphql.errors import ERRORS
from entrypoints.graphql.schema import build_schema

_INTRODUCTION = """\
# The GraphQL API

<!-- Generated from the schema by `libingest api-doc` (`make api-doc`); do not edit by hand:
     tests/unit/test_api_doc.py fails when this file and the schema differ. -->

libingest answers GraphQL at `/graphql` (POST a JSON body `{"query": ..., "variables": ...}`;
queries may also come by GET). In development, a browser that opens `/graphql` gets GraphiQL,
served by the service itself.

**Authentication.** Every operation needs `Authorization: Bearer <JWT>` (HS256; `sub` is the
user id, `exp` required). `libingest token USER_ID` prints one for local use. Without a valid
token, every operation answers one error with `extensions.code = "UNAUTHENTICATED"` and no data
(a 401 for a client that accepts `application/graphql-response+json`). A user sees and changes
only their own library: another user's item id answers exactly as an unknown id does.

**Subscriptions** run over a WebSocket on `/graphql` with the `graphql-transport-ws` protocol
(any graphql-ws client). The token goes in `connection_init`'s payload as
`{"authorization": "Bearer <JWT>"}`; without a valid one the socket is closed with 4403. Only
subscriptions run there: queries and mutations stay on HTTP (ADR 0031).

**Errors.** A caller's mistake in a mutation's input answers a member of the mutation's result
union that implements `UserError`: select it, or the answer is an empty object. Elsewhere, and
for what no union member describes, a GraphQL error carries `extensions.code`:

| code | when |
|---|---|
"""

_CODE_MEANINGS = {
    "BAD_USER_INPUT": "the input is wrong (the message says how); nothing was changed",
    "NOT_FOUND": "no such item in the user's library (a lookup field answers null instead)",
    "RATE_LIMITED": "over the per-user add rate; retry after `extensions.retryAfterSeconds`",
    "TOO_MANY_PENDING": "too many of the user's items wait to be scheduled (`extensions.limit`)",
    "TOO_MANY_SUBSCRIPTIONS": "the user holds too many progress subscriptions (`extensions.limit`)",
    "BAD_REQUEST": "a query or mutation sent over the WebSocket, which runs subscriptions only",
    "SERVICE_UNAVAILABLE": "a dependency (database, search index, ...) is down; retry shortly",
}


def _signature(name: str, field: GraphQLField) -> str:
    arguments = ", ".join(_argument(arg_name, arg) for arg_name, arg in field.args.items())
    return f"{name}({arguments}): {field.type}" if arguments else f"{name}: {field.type}"


def _argument(name: str, argument: GraphQLArgument) -> str:
    default = _default(argument)
    return f"{name}: {argument.type}" if default is None else f"{name}: {argument.type} = {default}"


def _default(argument: GraphQLArgument) -> str | None:
    """The argument's default in GraphQL's syntax, as print_schema writes it; None without."""
    if argument.default_value is not Undefined:
        literal = ast_from_value(argument.default_value, argument.type)
        return None if literal is None else print_ast(literal)
    if argument.ast_node is not None and argument.ast_node.default_value is not None:
        return print_ast(argument.ast_node.default_value)
    return None


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _fields_table(fields: dict[str, GraphQLField]) -> list[str]:
    lines = ["| field | type | description |", "|---|---|---|"]
    for name, field in fields.items():
        lines.append(f"| `{name}` | `{field.type}` | {_one_line(field.description)} |")
    return lines


def _root_section(title: str, root: GraphQLObjectType | None) -> list[str]:
    if root is None:
        return []
    lines = [f"## {title}", "", _one_line(root.description), ""]
    for name, field in root.fields.items():
        lines += [f"### `{_signature(name, field)}`", "", _one_line(field.description), ""]
        for arg_name, argument in field.args.items():
            lines.append(f"- `{_argument(arg_name, argument)}`: {_one_line(argument.description)}")
        if field.args:
            lines.append("")
    return lines


def _type_section(named: GraphQLNamedType) -> list[str]:
    lines = [f"### {named.name}", "", _one_line(named.description), ""]
    if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
        interfaces = [i.name for i in named.interfaces]
        if interfaces:
            lines += [f"Implements {', '.join(f'`{i}`' for i in interfaces)}.", ""]
        lines += [*_fields_table(named.fields), ""]
    elif isinstance(named, GraphQLUnionType):
        members = " \\| ".join(f"`{member.name}`" for member in named.types)
        lines += [f"One of {members}.", ""]
    elif isinstance(named, GraphQLEnumType):
        lines += ["| value | meaning |", "|---|---|"]
        lines += [f"| `{n}` | {_one_line(v.description)} |" for n, v in named.values.items()]
        lines.append("")
    elif isinstance(named, GraphQLInputObjectType):
        lines += ["| field | type | description |", "|---|---|---|"]
        lines += [
            f"| `{n}` | `{f.type}` | {_one_line(f.description)} |" for n, f in named.fields.items()
        ]
        lines.append("")
    return lines


def render(schema: GraphQLSchema | None = None) -> str:
    """docs/api.md for `schema` (the served schema when None)."""
    if schema is None:
        served = build_schema(max_depth=10, max_aliases=30, max_tokens=2000, introspection=True)
        schema = served._schema
    lines = [_INTRODUCTION.rstrip("\n")]
    codes = ["UNAUTHENTICATED", *sorted({answer.code for answer in ERRORS.values()})]
    meanings = _CODE_MEANINGS | {"UNAUTHENTICATED": "no valid token (see above)"}
    lines += [f"| `{code}` | {meanings.get(code, '')} |" for code in codes]
    lines.append("")
    lines += _root_section("Queries", schema.query_type)
    lines += _root_section("Mutations", schema.mutation_type)
    lines += _root_section("Subscriptions", schema.subscription_type)
    roots = {
        root.name
        for root in (schema.query_type, schema.mutation_type, schema.subscription_type)
        if root is not None
    }
    lines += ["## Types", ""]
    for name in sorted(schema.type_map):
        named = schema.type_map[name]
        if name.startswith("__") or name in roots:
            continue
        if isinstance(named, GraphQLScalarType) and name in _BUILT_IN_SCALARS:
            continue
        lines += _type_section(named)
    lines += ["## The schema in SDL", "", "```graphql", print_schema(schema), "```", ""]
    return "\n".join(lines)


_BUILT_IN_SCALARS = frozenset({"String", "Int", "Float", "Boolean", "ID"})


if __name__ == "__main__":
    print(render(), end="")
