"""What the worst GraphQL documents under the limits cost to check (issue 11), in process:

    .venv/bin/python -m bench.validation_cost [--repeats 20]

Each document is parsed (token limit) and validated exactly as a cache miss in
entrypoints/graphql/documents.py does it (the cost check, then the schema's rules), with the
service's default limits; median and max over the repeats, in milliseconds. For comparison,
"before" is the same validation with Strawberry's depth and alias rules in place of the cost
check, as the service ran until issue 11; for the doubling documents it is measured only where
it ends in seconds (it doubles with each level). Prints a markdown table."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version

from graphql import (
    ASTValidationRule,
    DocumentNode,
    get_introspection_query,
    parse,
    specified_rules,
)
from graphql.language import Lexer, Source, TokenKind
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule
from strawberry.schema.schema import validate_document

from entrypoints.graphql.document_cost import DocumentLimits
from entrypoints.graphql.documents import DocumentChecks
from entrypoints.graphql.schema import build_schema
from entrypoints.settings import Settings

# The doubling documents whose "before" is measured: 2**16 spreads take about half a second.
BEFORE_MAX_LEVELS = 16


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    doubling_levels: int | None = None


def _doubling(levels: int) -> Case:
    fragments = ["fragment F0 on Query { __typename }"] + [
        f"fragment F{n} on Query {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, levels + 1)
    ]
    text = f"query P {{ ...F{levels} }} " + " ".join(fragments)
    return Case(f"doubling fragments, {levels} levels", text, doubling_levels=levels)


def _largest(family: Callable[[int], Case], max_tokens: int, cap: int = 999) -> Case:
    """The family's member with the most repeats (at most `cap`) that stays within the limit."""
    low, high = 1, cap
    while low < high:
        middle = (low + high + 1) // 2
        if tokens(family(middle).text) <= max_tokens:
            low = middle
        else:
            high = middle - 1
    return family(low)


def _cases(max_tokens: int, max_body_bytes: int) -> list[Case]:
    """Each family of expensive documents at its largest under `max_tokens` (and the parser's
    200 levels of nesting), so that the table follows the limit it is run with."""
    add = (
        "mutation Add($id: ID!) { addTrackToLibrary(trackId: $id) { __typename "
        "... on AddToLibrarySuccess { alreadyInLibrary item { id catalogId kind addedAt "
        "ingestion { state tracksTotal } } } ... on InvalidCatalogId { message catalogId } } }"
    )
    introspection = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
        experimental_directive_deprecation=True,
        one_of=True,
    )
    item = "library { edges { node { id ingestion { state } } } }"
    # The same using a variable: graphql-core's variable rules walk each definition holding one.
    item_with_variable = "library(after: $a) { edges { node { id ingestion { state } } } }"
    object_field = "library { totalCount pageInfo { hasNextPage } }"
    families: list[tuple[Callable[[int], Case], int]] = [
        (_doubling, 190),
        (
            lambda n: Case(
                f"widest: {n} fields in one selection set",
                "{ " + " ".join(["__typename"] * n) + " }",
            ),
            1999,
        ),
        (
            lambda n: Case(
                f"the same object field {n} times (fields to merge)",
                "{ " + " ".join([object_field] * n) + " }",
            ),
            999,
        ),
        (
            lambda n: Case(
                f"the same nested field {n} times (fields to merge, deeper)",
                "{ " + " ".join([item] * n) + " }",
            ),
            999,
        ),
        (
            lambda n: Case(
                f"{n} fragments selecting the same field (fields to merge across fragments)",
                "{ "
                + " ".join(f"...S{i}" for i in range(n))
                + " } "
                + " ".join(
                    f"fragment S{i} on Query {{ library {{ totalCount }} }}" for i in range(n)
                ),
            ),
            999,
        ),
        (
            lambda n: Case(
                f"one field {n} times with different arguments (conflicts)",
                "{ " + " ".join(f"library(first: {i}) {{ totalCount }}" for i in range(n)) + " }",
            ),
            999,
        ),
        (
            # The parser refuses nesting past 200 selection sets.
            lambda n: Case(
                f"deep: {n} nested inline fragments around the deepest field",
                "{ " + "... on Query { " * n + item + " }" * n + " }",
            ),
            190,
        ),
        (
            lambda n: Case(
                f"deep: {n} nested inline fragments, a variable at the bottom",
                "query Q($a: String) { "
                + "... on Query { " * n
                + item_with_variable
                + " }" * n
                + " }",
            ),
            190,
        ),
        (
            lambda n: Case(
                f"deep: a chain of {n} fragments",
                "{ ...C0 } "
                + " ".join(f"fragment C{i} on Query {{ ...C{i + 1} }}" for i in range(n))
                + f" fragment C{n} on Query {{ {item} }}",
            ),
            190,
        ),
        (
            lambda n: Case(
                f"deep: a chain of {n} fragments, a variable in the last",
                "query Q($a: String) { ...C0 } "
                + " ".join(f"fragment C{i} on Query {{ ...C{i + 1} }}" for i in range(n))
                + f" fragment C{n} on Query {{ {item_with_variable} }}",
            ),
            190,
        ),
        (
            lambda n: Case(
                f"deep: a chain of {n} fragments, a variable in each",
                "query Q($a: String) { ...C0 } "
                + " ".join(
                    f"fragment C{i} on Query {{ ...C{i + 1} library(after: $a) {{ totalCount }} }}"
                    for i in range(n)
                )
                + f" fragment C{n} on Query {{ __typename }}",
            ),
            190,
        ),
        (
            lambda n: Case(
                f"{n} fragments, none used",
                "{ __typename } "
                + " ".join(f"fragment U{i} on Query {{ __typename }}" for i in range(n)),
            ),
            999,
        ),
        (
            lambda n: Case(
                f"{n} unknown fields (a document of mistakes)",
                "{ " + " ".join(f"librar{i}" for i in range(n)) + " }",
            ),
            990,
        ),
        (
            lambda n: Case(
                f"{n} variables, none used",
                "query V(" + " ".join(f"$v{i}: Int" for i in range(n)) + ") { __typename }",
            ),
            999,
        ),
    ]
    return [
        Case("a normal add (addTrackToLibrary)", add),
        Case("the introspection query, every option (graphql-core)", introspection),
        *(_doubling(levels) for levels in (10, 14, 16)),
        *(_largest(family, max_tokens, cap) for family, cap in families),
        Case(
            "the same object field 20 times (fields to merge)",
            "{ " + " ".join([object_field] * 20) + " }",
        ),
        _largest_string(max_body_bytes),
    ]


def _largest_string(max_body_bytes: int) -> Case:
    """The longest string argument whose request body fits the body limit: the parser's cost
    is in the text's length, not its tokens."""
    shell = '{ searchTracks(query: "%s") { isrc } }'
    room = max_body_bytes - len(json.dumps({"query": shell % ""}).encode())
    return Case(f"largest body: a {room / 1000:.1f} KB string argument", shell % ("x" * room))


def tokens(text: str) -> int:
    lexer = Lexer(Source(text))
    count = 0
    while lexer.advance().kind != TokenKind.EOF:
        count += 1
    return count


def _timed(run: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times), result


def _outcome(errors: object) -> str:
    assert isinstance(errors, list)
    if not errors:
        return "accepted"
    first = str(errors[0].message)
    return "refused: " + (first if len(first) <= 60 else first[:57] + "...")


def measure(repeats: int) -> str:
    settings = Settings()
    schema = build_schema(
        max_depth=settings.graphql_max_depth,
        max_aliases=settings.graphql_max_aliases,
        max_tokens=settings.graphql_max_tokens,
        introspection=True,
        max_selections=settings.graphql_max_selections,
    )._schema
    limits = DocumentLimits(
        max_depth=settings.graphql_max_depth,
        max_aliases=settings.graphql_max_aliases,
        max_selections=settings.graphql_max_selections,
    )
    checks = DocumentChecks(
        max_tokens=settings.graphql_max_tokens,
        limits=limits,
        field_merge_budget=settings.graphql_field_merge_budget,
    )
    # The schema's rules as a request carries them (Strawberry's default, development).
    rules: tuple[type[ASTValidationRule], ...] = tuple(specified_rules)
    before_rules = (
        *rules,
        max_depth_rule(settings.graphql_max_depth, None),
        max_aliases_rule(settings.graphql_max_aliases),
    )
    lines = [
        f"Python {platform.python_version()}, graphql-core {version('graphql-core')}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start.",
        "",
        f"Limits: {settings.graphql_max_tokens} tokens, "
        f"{settings.graphql_max_body_bytes} bytes of body, depth {settings.graphql_max_depth}, "
        f"{settings.graphql_max_aliases} aliases, {settings.graphql_max_selections} selections, "
        f"a field merge budget of {settings.graphql_field_merge_budget}. "
        f"Milliseconds, median / max of {repeats}.",
        "",
        "| document | bytes | tokens | outcome | parse | validate (cost check + rules) "
        "| before: Strawberry's rules |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for case in _cases(settings.graphql_max_tokens, settings.graphql_max_body_bytes):
        body = len(json.dumps({"query": case.text}).encode())
        assert body <= settings.graphql_max_body_bytes, case.name
        assert tokens(case.text) <= settings.graphql_max_tokens, case.name
        parse_median, parse_max, document = _timed(
            lambda case=case: parse(case.text, max_tokens=settings.graphql_max_tokens), repeats
        )
        assert isinstance(document, DocumentNode)
        median, worst, errors = _timed(
            lambda document=document: checks.validate(schema, document, rules), repeats
        )
        before = f"not run (2^{case.doubling_levels} spreads)"
        if case.doubling_levels is None or case.doubling_levels <= BEFORE_MAX_LEVELS:
            before_median, before_max, _ = _timed(
                lambda document=document: validate_document(schema, document, before_rules),
                repeats if case.doubling_levels is None else 3,
            )
            before = f"{before_median:.2f} / {before_max:.2f}"
        lines.append(
            f"| {case.name} | {len(case.text.encode())} | {tokens(case.text)} "
            f"| {_outcome(errors)} | {parse_median:.2f} / {parse_max:.2f} "
            f"| {median:.2f} / {worst:.2f} | {before} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=20)
    arguments = parser.parse_args()
    print(measure(arguments.repeats))


if __name__ == "__main__":
    main()
