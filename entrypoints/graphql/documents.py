"""Parsing and validation of operations, each done once per distinct document.

One extension instead of Strawberry's MaxTokensLimiter + AddValidationRules + ParserCache +
ValidationCache: Strawberry builds every extension afresh for each request and enters each
one's hooks, and for a small mutation those four cost more than the work they cache (bench/).
The behaviour is theirs: the token limit applies while parsing, the extra rules join the
schema's, and both results are kept in bounded LRU caches shared by all requests.

Before any rule walks a document, its cost once fragments are expanded (selections, depth,
aliases) is computed without expanding them (document_cost.py), and a document past the limits
is refused there: the depth and alias limits are counted through fragments, and nothing after
this check ever follows a spread more than once per fragment (ADR 0020). The one standard rule
whose work grows faster than the document, OverlappingFieldsCanBeMergedRule (it compares every
pair of fields sharing a response name), runs on a budget far below graphql-core's default."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache, partial
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OverlappingFieldsCanBeMergedRule,
    ValidationContext,
    parse,
    validate,
)
from graphql.validation import ASTValidationContext
from graphql.validation.validate import ValidationAbortedError
from graphql.validation.validation_context import NodeWithSelectionSet, VariableUsage
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from entrypoints.graphql.document_cost import DocumentLimits, cost_errors

# Distinct operation texts remembered; a client sends a handful. Bounded, so that unique
# texts sent on purpose cannot grow memory.
CACHED_DOCUMENTS = 256
# Errors reported for one document, by the cost check and by graphql-core's rules (whose
# default is 100): each error with a location scans the text up to it, and a document made of
# mistakes (990 unknown fields) took 51 ms to describe at 100, 13 ms at 20.
MAX_ERRORS = 20
# The rules Strawberry's own validation adds to the schema's (strawberry.schema.schema).
_STRAWBERRY_RULES: tuple[type[ASTValidationRule], ...] = (
    MaybeNullValidationRule,
    OneOfInputValidationRule,
)


def field_merging_on_a_budget(budget: int) -> type[ASTValidationRule]:
    """graphql-core's OverlappingFieldsCanBeMergedRule with `budget` units of work instead of its
    default 500,000 (a comparison of two fields costs 2), and a refusal that says why. A document
    repeating an object field 166 times in one selection set spent 150,000 units, about 0.4 s,
    under the token limit; an ordinary query with overlapping fragments spends under 100."""

    class FieldMergingOnABudget(OverlappingFieldsCanBeMergedRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            # graphql-core reads this once per validation (its documented knob is a module
            # global; this keeps the budget to this schema).
            self.rule_context.remaining_complexity_budget = budget

        def enter_selection_set(self, *args: Any) -> None:
            try:
                super().enter_selection_set(*args)
            except ValidationAbortedError:
                # Caught by `validate`, which reports it as the document's last error.
                raise ValidationAbortedError(
                    "Fields sharing a response name take more than "
                    f"{budget} units of work to compare. Validation aborted."
                ) from None

    return FieldMergingOnABudget


class VariableUsagesOnlyWhereWritten(ASTValidationRule):
    """Not a rule: it spares graphql-core's three variable rules (NoUndefinedVariables,
    NoUnusedVariables, VariablesInAllowedPosition) a walk of every definition that holds no
    variable. To find a definition's variables they walk it again with type information, nearly
    doubling validation (a chain of 60 fragments: 5.3 ms without them, 11.4 ms with). A variable
    is a `$` token, so a definition whose text holds no `$` has none, and its usages are empty
    without a walk: the rules' answers are unchanged. Listed first, so that its constructor
    runs before any other rule asks."""

    def __init__(self, context: ASTValidationContext) -> None:
        super().__init__(context)
        if not isinstance(context, ValidationContext) or context.document.loc is None:
            return
        body = context.document.loc.source.body
        walk = context.get_variable_usages

        def usages_where_written(node: NodeWithSelectionSet) -> list[VariableUsage]:
            location = node.loc
            if location is not None and body.find("$", location.start, location.end) == -1:
                return []
            return walk(node)

        # get_recursive_variable_usages, which the three rules call, looks it up on the context.
        context.get_variable_usages = usages_where_written  # type: ignore[method-assign]


class DocumentChecks:
    """The shared, cached parse and validate functions: made once per schema.

    The validation cache is keyed on the document's text. Any change to the text (renaming the
    operation, a space, a comment) misses it, and no key cheaper than validating could see
    through all of them: a normalised print of the document walks it as validation does. So a
    miss is made cheap instead: the cost check is linear in the document's size and refuses
    anything whose expansion is large before graphql-core's rules (linear themselves once
    nothing is expanded) walk it; under the token limit a miss costs a few milliseconds at
    worst (bench/validation_cost.py). The cache only spares honest clients repeated work."""

    def __init__(
        self,
        *,
        max_tokens: int,
        limits: DocumentLimits,
        field_merge_budget: int,
        hide_suggestions: bool = False,
    ) -> None:
        self.limits = limits
        self.hide_suggestions = hide_suggestions
        self._field_merging = field_merging_on_a_budget(field_merge_budget)
        self.parse = lru_cache(maxsize=CACHED_DOCUMENTS)(partial(parse, max_tokens=max_tokens))
        self.validate_text = lru_cache(maxsize=CACHED_DOCUMENTS)(self._validate_text)

    def _validate_text(
        self,
        schema: GraphQLSchema,
        text: str,
        rules: tuple[type[ASTValidationRule], ...],
    ) -> list[GraphQLError]:
        # Keyed on the text, whose hash Python keeps, rather than on the document: AST nodes
        # hash by value, walking the whole tree on every lookup. parse(text) is a cache hit.
        return self.validate(schema, self.parse(text), rules)

    def validate(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        rules: tuple[type[ASTValidationRule], ...],
    ) -> list[GraphQLError]:
        """The cost check, then the schema's rules if the document is within the limits."""
        refused = cost_errors(document, self.limits, max_errors=MAX_ERRORS)
        if refused:
            return refused
        bounded = tuple(
            self._field_merging if rule is OverlappingFieldsCanBeMergedRule else rule
            for rule in rules
        )
        return validate(
            schema,
            document,
            (VariableUsagesOnlyWhereWritten, *bounded, *_STRAWBERRY_RULES),
            max_errors=MAX_ERRORS,
            hide_suggestions=self.hide_suggestions,
        )


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
        # The schema's own rules (DisableIntrospection adds one in production).
        rules = context.validation_rules
        schema = context.schema._schema
        if context.query is not None:
            context.pre_execution_errors = self._checks.validate_text(schema, context.query, rules)
        else:
            context.pre_execution_errors = self._checks.validate(
                schema, context.graphql_document, rules
            )
        yield


class ExecutionWithoutSuggestions(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution with graphql-core's `hide_suggestions` on: a variable's value
    coerced at execution ("Did you mean the enum value 'ALBUM'?") names no part of the schema.
    Strawberry passes no such option to `execute`; the executor's constructor takes it."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        return super().build(*args, **(kwargs | {"hide_suggestions": True}))
