"""Every part of the served schema explains itself: each type, field, argument, input field and
enum value has a description, read back through introspection as GraphiQL and clients read it."""

from __future__ import annotations

from typing import Any

from graphql import get_introspection_query

from entrypoints.graphql.schema import build_schema


def _introspection() -> dict[str, Any]:
    schema = build_schema(max_depth=10, max_aliases=30, max_tokens=2000, introspection=True)
    result = schema.execute_sync(get_introspection_query(descriptions=True))
    assert result.errors is None, result.errors
    assert result.data is not None
    return result.data["__schema"]


def _undescribed(schema: dict[str, Any]) -> list[str]:
    """The schema coordinates (`Type.field(argument:)`) whose description is missing or blank."""
    missing: list[str] = []

    def check(coordinate: str, element: dict[str, Any]) -> None:
        if not (element.get("description") or "").strip():
            missing.append(coordinate)

    for kind in schema["types"]:
        name = kind["name"]
        if name.startswith("__"):  # GraphQL's own introspection types, described by graphql-core
            continue
        check(name, kind)
        for field in kind.get("fields") or []:
            check(f"{name}.{field['name']}", field)
            for argument in field["args"]:
                check(f"{name}.{field['name']}({argument['name']}:)", argument)
        for input_field in kind.get("inputFields") or []:
            check(f"{name}.{input_field['name']}", input_field)
        for value in kind.get("enumValues") or []:
            check(f"{name}.{value['name']}", value)
    for directive in schema["directives"]:
        check(f"@{directive['name']}", directive)
        for argument in directive["args"]:
            check(f"@{directive['name']}({argument['name']}:)", argument)
    return missing


def test_every_type_field_argument_and_enum_value_has_a_description() -> None:
    assert _undescribed(_introspection()) == []


def test_the_check_names_what_lacks_a_description() -> None:
    schema = {
        "types": [
            {
                "name": "Thing",
                "description": "A thing.",
                "fields": [
                    {"name": "size", "description": "", "args": [{"name": "unit"}]},
                ],
                "inputFields": None,
                "enumValues": None,
            },
            {"name": "Colour", "description": None, "enumValues": [{"name": "RED"}]},
        ],
        "directives": [],
    }

    assert _undescribed(schema) == ["Thing.size", "Thing.size(unit:)", "Colour", "Colour.RED"]
