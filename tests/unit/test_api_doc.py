"""docs/api.md is the served schema's reference, generated from it (ADR 0032): this fails when a
change to the schema was not followed by `make api-doc`."""

from __future__ import annotations

from pathlib import Path

from graphql import build_schema as build_sdl

from entrypoints.graphql.api_doc import render

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_docs_api_md_is_what_the_schema_generates() -> None:
    assert API_DOC.read_text(encoding="utf-8") == render(), (
        "docs/api.md is stale: run `make api-doc` and commit the result"
    )


def test_the_reference_names_every_field_and_its_description() -> None:
    schema = build_sdl(
        '"The root." type Query { "How many." count(limit: Int = 3): Int! }'
        ' "Kinds." enum Kind { "One kind." ONE }'
    )

    page = render(schema)

    assert "### `count(limit: Int = 3): Int!`" in page
    assert "How many." in page
    assert "| `ONE` | One kind. |" in page
