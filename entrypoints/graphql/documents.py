"""Parsing and validation of operations, each done once per distinct document.

One extension instead of Strawberry's MaxTokensLimiter + AddValidationRules + ParserCache +
ValidationCache: Strawberry builds every extension afresh for each request and enters each
one's hooks, and for a small mutation those four cost more than the work they cache (bench/).
The behaviour is theirs: the token limit applies while parsing, the extra rules join the
schema's, and both results are kept in bounded LRU caches shared by all requests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache, partial

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

# Distinct operation texts remembered; a client sends a handful. Bounded, so that unique
# texts sent on purpose cannot grow memory.
CACHED_DOCUMENTS = 256


class DocumentChecks:
    """The shared, cached parse and validate functions: made once per schema."""

    def __init__(self, *, rules: Sequence[type[ASTValidationRule]], max_tokens: int) -> None:
        self.rules = tuple(rules)
        self.parse = lru_cache(maxsize=CACHED_DOCUMENTS)(partial(parse, max_tokens=max_tokens))
        self.validate = lru_cache(maxsize=CACHED_DOCUMENTS)(self._validate)

    @staticmethod
    def _validate(
        schema: GraphQLSchema,
        document: DocumentNode,
        rules: tuple[type[ASTValidationRule], ...],
    ) -> list[GraphQLError]:
        return validate_document(schema, document, rules)


class CheckedDocuments(SchemaExtension):
    def __init__(self, *, checks: DocumentChecks) -> None:
        self._checks = checks

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None:
            # A syntax error (or too many tokens) raises here, as parse itself would; lru_cache
            # does not keep failures, so a bad text is parsed again each time it is sent.
            context.graphql_document = self._checks.parse(context.query)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        assert context.graphql_document is not None
        # The schema's own rules (DisableIntrospection adds one in production) and ours.
        rules = context.validation_rules + self._checks.rules
        context.pre_execution_errors = self._checks.validate(
            context.schema._schema, context.graphql_document, rules
        )
        yield
