"""The cost of a GraphQL document with its fragments expanded, computed without expanding them:
checked against a naive expansion, and against the Strawberry rules it replaces, on small random
documents."""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    build_schema,
    parse,
)
from graphql.utilities import TypeInfo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strawberry.extensions.max_aliases import count_fields_with_alias
from strawberry.extensions.query_depth_limiter import determine_depth

from entrypoints.graphql.document_cost import (
    NO_FIELD,
    Cost,
    DocumentLimits,
    cost_errors,
    measure,
    operation_costs,
)

FIELD_NAMES = ["a", "b", "__typename", "__schema"]
# Strawberry's depth rule needs a validation context; the costs never look at the schema.
_ANY_SCHEMA = build_schema("type Query { a: Int }")


# ---------------------------------------------------------------------------------------------
# Random documents, as text: fragments F0..Fn on one type, operations spreading them.


@dataclass(frozen=True)
class Spec:
    fragments: list[str]  # selection set texts, Fi at index i
    operations: list[str]


def _selection_sets(spreadable: list[str], *, unknown: bool) -> st.SearchStrategy[str]:
    names = [*spreadable, "Nope"] if unknown else spreadable

    def selection(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        field = st.builds(
            lambda alias, name, inner: f"{alias}{name}{inner}",
            st.sampled_from(["", "x: ", "y: "]),
            st.sampled_from(FIELD_NAMES),
            st.one_of(st.just(""), children),
        )
        inline = st.builds(lambda inner: f"... on Query{inner}", children)
        options = [field, inline]
        if names:
            options.append(st.sampled_from(names).map(lambda name: f"...{name}"))
        return st.one_of(*options)

    def selection_set(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.lists(selection(children), min_size=1, max_size=3).map(
            lambda items: " { " + " ".join(items) + " }"
        )

    leaf = st.sampled_from(FIELD_NAMES).map(lambda name: f" {{ {name} }}")
    return st.recursive(leaf, selection_set, max_leaves=8)


@st.composite
def acyclic_documents(draw: st.DrawFn, *, unknown: bool = True) -> str:
    """Fi spreads only fragments of a lower index, so the spread graph has no cycle."""
    count = draw(st.integers(0, 5))
    fragments = [
        draw(_selection_sets([f"F{j}" for j in range(i)], unknown=unknown)) for i in range(count)
    ]
    every = [f"F{i}" for i in range(count)]
    operations = draw(st.lists(_selection_sets(every, unknown=unknown), min_size=1, max_size=3))
    return _text(Spec(fragments, operations))


@st.composite
def any_documents(draw: st.DrawFn) -> str:
    """Any fragment may spread any other, itself included."""
    count = draw(st.integers(1, 4))
    every = [f"F{i}" for i in range(count)]
    fragments = [draw(_selection_sets(every, unknown=True)) for _ in range(count)]
    operations = draw(st.lists(_selection_sets(every, unknown=True), min_size=1, max_size=2))
    return _text(Spec(fragments, operations))


def _text(spec: Spec) -> str:
    operations = [f"query Q{i}{body}" for i, body in enumerate(spec.operations)]
    fragments = [f"fragment F{i} on Query{body}" for i, body in enumerate(spec.fragments)]
    return "\n".join(operations + fragments)


# ---------------------------------------------------------------------------------------------
# The reference: every spread replaced by its fragment, again and again.


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }


def _operations(document: DocumentNode) -> list[OperationDefinitionNode]:
    return [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]


def _naive(
    selection_set: SelectionSetNode,
    level: int | None,
    fragments: dict[str, FragmentDefinitionNode],
) -> Cost:
    selections, aliases, depth = 0, 0, NO_FIELD
    for selection in selection_set.selections:
        selections += 1
        inner: Cost | None = None
        if isinstance(selection, FieldNode):
            aliases += selection.alias is not None
            if level is not None:
                depth = max(depth, level)
            if selection.selection_set is not None:
                ends = level is None or selection.name.value.startswith("__")
                inner = _naive(selection.selection_set, None if ends else level + 1, fragments)
        elif isinstance(selection, InlineFragmentNode):
            inner = _naive(selection.selection_set, level, fragments)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments:
            inner = _naive(fragments[selection.name.value].selection_set, level, fragments)
        if inner is not None:
            selections += inner.selections
            aliases += inner.aliases
            depth = max(depth, inner.depth)
    return Cost(selections=selections, aliases=aliases, depth=depth)


def _spread_graph(document: DocumentNode) -> tuple[dict[str, set[str]], set[str]]:
    """Which fragments each fragment spreads, and the fragments the operations reach."""
    fragments = _fragments(document)

    def spreads(selection_set: SelectionSetNode) -> set[str]:
        found: set[str] = set()
        for selection in selection_set.selections:
            if isinstance(selection, FragmentSpreadNode):
                found.add(selection.name.value)
            elif selection.selection_set is not None:
                found |= spreads(selection.selection_set)
        return found & fragments.keys()

    edges = {name: spreads(fragment.selection_set) for name, fragment in fragments.items()}
    reachable = set().union(*(spreads(op.selection_set) for op in _operations(document)))
    frontier = set(reachable)
    while frontier:
        frontier = set().union(*(edges[name] for name in frontier)) - reachable
        reachable |= frontier
    return edges, reachable


def _reaches_a_cycle(document: DocumentNode) -> bool:
    edges, reachable = _spread_graph(document)

    def in_a_cycle(start: str) -> bool:
        seen, frontier = set(), set(edges[start])
        while frontier:
            if start in frontier:
                return True
            seen |= frontier
            frontier = set().union(*(edges[name] for name in frontier)) - seen
        return False

    return any(in_a_cycle(name) for name in reachable)


# ---------------------------------------------------------------------------------------------
# Properties

# Drawing a document parses it: on a busy shared machine that trips the too_slow health check,
# which says nothing about the properties.
DOCUMENT_PROPERTIES = settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])


@DOCUMENT_PROPERTIES
@given(text=acyclic_documents())
def test_the_memoised_cost_equals_the_naive_expansion(text: str) -> None:
    document = parse(text)
    fragments = _fragments(document)

    costs = operation_costs(document)

    expected = [_naive(op.selection_set, 0, fragments) for op in _operations(document)]
    assert [cost for _operation, cost in costs] == expected


@DOCUMENT_PROPERTIES
@given(text=acyclic_documents(unknown=False), max_depth=st.integers(0, 4))
def test_the_limits_agree_with_the_strawberry_rules_they_replace(text: str, max_depth: int) -> None:
    # Strawberry's depth and alias counters, called directly on documents they can handle
    # (no unknown fragment, no cycle): they expand every spread, so they are the reference.
    document = parse(text)
    fragments = _fragments(document)
    reported: list[GraphQLError] = []
    context = ValidationContext(_ANY_SCHEMA, document, TypeInfo(_ANY_SCHEMA), reported.append)
    for operation in _operations(document):
        determine_depth(operation, fragments, 0, max_depth, context, "op", None)
    strawberry_aliases = sum(count_fields_with_alias(op, fragments) for op in _operations(document))

    errors = cost_errors(document, DocumentLimits(max_depth, 10**9, 10**9))
    costs = operation_costs(document)

    too_deep = [error for error in errors if "exceeds maximum operation depth" in error.message]
    assert bool(too_deep) == bool(reported)
    assert sum(cost.aliases for _operation, cost in costs) == strawberry_aliases


@DOCUMENT_PROPERTIES
@given(text=any_documents())
def test_a_cycle_an_operation_reaches_is_refused_and_nothing_else_is_taken_for_one(
    text: str,
) -> None:
    document = parse(text)

    errors = cost_errors(document, DocumentLimits(10**9, 10**9, 10**9))

    cycle_errors = [error for error in errors if "within itself" in error.message]
    assert bool(cycle_errors) == _reaches_a_cycle(document)


@DOCUMENT_PROPERTIES
@given(text=acyclic_documents())
def test_the_fragments_reported_unused_are_exactly_those_no_operation_reaches(text: str) -> None:
    document = parse(text)
    _edges, reachable = _spread_graph(document)

    unused = [fragment.name.value for fragment in measure(document).unused_fragments]
    errors = cost_errors(document, DocumentLimits(10**9, 10**9, 10**9), max_errors=10)

    assert unused == sorted(_fragments(document).keys() - reachable, key=lambda n: int(n[1:]))
    assert [error.message for error in errors] == [
        f"Fragment '{name}' is never used." for name in unused
    ]


# ---------------------------------------------------------------------------------------------
# Examples


def _doubling(levels: int) -> str:
    fragments = ["fragment F0 on Query { __typename }"] + [
        f"fragment F{n} on Query {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, levels + 1)
    ]
    return f"query P {{ ...F{levels} }} " + " ".join(fragments)


def test_fragments_that_double_each_other_are_counted_without_being_expanded() -> None:
    # 300 levels: 2**300 selections, far more than anything could expand.
    [(_operation, cost)] = operation_costs(parse(_doubling(300)))

    # F0 is one selection; Fn is its two spreads and twice F(n-1); P spreads F300 once.
    assert cost.selections == 1 + 2 * (2**300 - 1) + 2**300
    assert cost.depth == 0
    assert cost.aliases == 0


def test_a_chain_of_fragments_longer_than_the_recursion_limit_is_walked() -> None:
    chain = " ".join(f"fragment F{n} on Query {{ ...F{n + 1} }}" for n in range(5000))
    document = parse(f"{{ ...F0 }} {chain} fragment F5000 on Query {{ __typename }}")

    [(_operation, cost)] = operation_costs(document)

    assert cost.selections == 5002


def test_depth_and_aliases_hidden_in_fragments_are_counted_where_they_are_spread() -> None:
    document = parse(
        "query Deep { library { edges { ...Node } } a: library { totalCount } }"
        " fragment Node on LibraryItemEdge { node { ingestion { b: state } } }"
    )

    [(_operation, cost)] = operation_costs(document)

    # library(0) edges(1) node(2) ingestion(3) state(4); the aliases a and b.
    assert cost == Cost(selections=8, aliases=2, depth=4)


def test_a_cycle_is_refused_with_graphql_cores_words() -> None:
    document = parse(
        "{ ...A } fragment A on Query { ...B } fragment B on Query { ...C }"
        " fragment C on Query { ...A }"
    )

    errors = cost_errors(document, DocumentLimits(10, 30, 1000))

    assert [error.message for error in errors] == [
        "Cannot spread fragment 'A' within itself via 'B', 'C'."
    ]


def test_an_unknown_fragment_costs_only_its_spread_and_is_left_to_the_schema_rules() -> None:
    document = parse("{ ...Nope a { ...Nope } }")

    assert cost_errors(document, DocumentLimits(10, 30, 1000)) == []
    assert operation_costs(document)[0][1] == Cost(selections=3, aliases=0, depth=0)


def test_each_limit_past_its_value_is_one_error_naming_it() -> None:
    document = parse(
        "query Deep { a { b { ...F } } } query Wide { x: a y: a z: a } fragment F on T { c { d } }"
    )

    errors = cost_errors(document, DocumentLimits(max_depth=2, max_aliases=2, max_selections=7))

    assert [error.message for error in errors] == [
        "'Deep' exceeds maximum operation depth of 2",
        "3 aliases found. Allowed: 2",
        "8 selections found once fragments are expanded. Allowed: 7",
    ]
    assert cost_errors(document, DocumentLimits(3, 3, 8)) == []


def test_past_the_error_limit_the_errors_stop_with_graphql_cores_words() -> None:
    unused = " ".join(f"fragment U{n} on Query {{ a }}" for n in range(30))
    document = parse(f"{{ a }} {unused}")

    errors = cost_errors(document, DocumentLimits(10, 30, 1000), max_errors=20)

    assert [error.message for error in errors] == [
        *(f"Fragment 'U{n}' is never used." for n in range(20)),
        "Too many validation errors, error limit reached. Validation aborted.",
    ]
