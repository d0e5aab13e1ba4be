"""What a GraphQL document costs once its fragments are expanded, computed without expanding them.

A rule that follows every fragment spread afresh is exponential in the document's size: each of
`fragment F1 on Query { ...F0 ...F0 }` ... `fragment F19 on Query { ...F18 ...F18 }` doubles the
work, and 788 bytes kept Strawberry's depth and alias rules busy for 3 s (issue 11). Here each
definition is read once into a summary (what it selects itself, and which fragments it spreads at
which field level), and each fragment's expanded cost is computed once, from the costs of the
fragments it spreads, in the order of the spread graph. The work is linear in the document's
size however large the expansion is (ADR 0020)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

# Field levels as Strawberry's QueryDepthLimiter counts them: the operation's own fields are at
# level 0. A branch that has no field at all (an empty or unknown fragment) is deepest at -1.
NO_FIELD = -1


@dataclass(frozen=True, slots=True)
class Cost:
    """A selection set's cost once every spread in it is replaced by its fragment's selections."""

    selections: int  # selection nodes: fields, inline fragments and spreads
    aliases: int  # aliased fields
    depth: int  # the deepest field level, NO_FIELD when there is no field


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    max_depth: int  # per operation
    max_aliases: int  # in the whole document, as Strawberry's MaxAliasesLimiter counts them
    max_selections: int  # in the whole document, every operation expanded


class FragmentCycle(Exception):
    """A fragment that, through its spreads, spreads itself: its expansion has no end."""

    def __init__(self, cycle: list[str]) -> None:
        # graphql-core's NoFragmentCyclesRule words it the same way.
        via = ", ".join(f"'{name}'" for name in cycle[1:])
        super().__init__(
            f"Cannot spread fragment '{cycle[0]}' within itself" + (f" via {via}." if via else ".")
        )
        self.cycle = cycle


@dataclass(slots=True)
class _Summary:
    """One definition read once: its own selections, and the spreads it makes at which level
    (None under an introspection field, whose branch the depth does not count)."""

    selections: int = 0
    aliases: int = 0
    depth: int = NO_FIELD
    spreads: list[tuple[str, int | None]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DocumentCost:
    # A list, not a dict: AST nodes hash by value, walking their whole subtree.
    operations: list[tuple[OperationDefinitionNode, Cost]]
    unused_fragments: list[FragmentDefinitionNode]  # spread by no operation, even indirectly


def measure(document: DocumentNode) -> DocumentCost:
    """Each operation's expanded cost, and the fragments no operation reaches. A spread of an
    unknown fragment counts as the spread alone: graphql-core's KnownFragmentNamesRule reports
    it. Raises FragmentCycle for a cycle that an operation reaches (unreachable cycles are
    NoFragmentCyclesRule's to report)."""
    fragments: dict[str, _Summary] = {}
    definitions: list[FragmentDefinitionNode] = []
    operations: list[tuple[OperationDefinitionNode, _Summary]] = []
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            # A repeated name: the last one wins, as in the executor; UniqueFragmentNamesRule
            # refuses the document anyway.
            fragments[definition.name.value] = _summarise(definition.selection_set, 0)
            definitions.append(definition)
        elif isinstance(definition, OperationDefinitionNode):
            operations.append((definition, _summarise(definition.selection_set, 0)))
    roots = (name for _operation, summary in operations for name, _level in summary.spreads)
    costs = _fragment_costs(roots, fragments)
    return DocumentCost(
        operations=[(operation, _expanded(summary, costs)) for operation, summary in operations],
        unused_fragments=[each for each in definitions if each.name.value not in costs],
    )


def operation_costs(document: DocumentNode) -> list[tuple[OperationDefinitionNode, Cost]]:
    return measure(document).operations


def cost_errors(
    document: DocumentNode, limits: DocumentLimits, *, max_errors: int = 100
) -> list[GraphQLError]:
    """The errors of a document past the limits, or with fragments no operation uses; empty
    when there are none. At most `max_errors`, then graphql-core's own "Too many validation
    errors" (an error with a node costs a scan of the text up to it, for its location)."""
    try:
        measured = measure(document)
    except FragmentCycle as cycle:
        return [GraphQLError(str(cycle))]
    errors = list(islice(_errors(measured, limits), max_errors + 1))
    if len(errors) > max_errors:
        errors[max_errors:] = [GraphQLError(TOO_MANY_ERRORS)]
    return errors


# graphql-core's words (graphql.validation.validate) when it stops at its own max_errors.
TOO_MANY_ERRORS = "Too many validation errors, error limit reached. Validation aborted."


def _errors(measured: DocumentCost, limits: DocumentLimits) -> Iterator[GraphQLError]:
    costs = measured.operations
    for operation, cost in costs:
        if cost.depth > limits.max_depth:
            # Strawberry's QueryDepthLimiter's words, which clients may already match.
            yield GraphQLError(
                f"'{_name(operation)}' exceeds maximum operation depth of {limits.max_depth}",
                operation,
            )
    aliases = sum(cost.aliases for _operation, cost in costs)
    if aliases > limits.max_aliases:
        yield GraphQLError(f"{aliases} aliases found. Allowed: {limits.max_aliases}")
    selections = sum(cost.selections for _operation, cost in costs)
    if selections > limits.max_selections:
        yield GraphQLError(
            f"{selections} selections found once fragments are expanded. "
            f"Allowed: {limits.max_selections}"
        )
    # graphql-core's NoUnusedFragmentsRule refuses these too, in its words, but only once every
    # rule has walked them: definitions nobody spreads are the cheapest way to fill the token
    # limit with work (285 of them cost 70 ms of validation, bench/validation_cost.py).
    for fragment in measured.unused_fragments:
        yield GraphQLError(f"Fragment '{fragment.name.value}' is never used.", fragment)


def _name(operation: OperationDefinitionNode) -> str:
    return operation.name.value if operation.name else "anonymous"


def _summarise(selection_set: SelectionSetNode, level: int | None) -> _Summary:
    summary = _Summary()
    _read(selection_set, level, summary)
    return summary


def _read(selection_set: SelectionSetNode, level: int | None, summary: _Summary) -> None:
    # Recursion within one definition is bounded by the parser (MAX_NESTING_DEPTH, 200 levels);
    # across fragments, _fragment_costs walks without recursion.
    for selection in selection_set.selections:
        summary.selections += 1
        if isinstance(selection, FieldNode):
            if selection.alias is not None:
                summary.aliases += 1
            if level is not None:
                summary.depth = max(summary.depth, level)
            if selection.selection_set is not None:
                # Strawberry's depth limiter ends the branch at an introspection field.
                inner = None if level is None or selection.name.value.startswith("__") else level
                _read(selection.selection_set, None if inner is None else inner + 1, summary)
        elif isinstance(selection, InlineFragmentNode):
            _read(selection.selection_set, level, summary)
        elif isinstance(selection, FragmentSpreadNode):
            summary.spreads.append((selection.name.value, level))


def _fragment_costs(roots: Iterable[str], fragments: dict[str, _Summary]) -> dict[str, Cost]:
    """The expanded cost of every fragment reachable from `roots`, each computed once, after the
    fragments it spreads (a depth-first walk with its own stack: a chain of fragments may be
    longer than Python's recursion allows)."""
    costs: dict[str, Cost] = {}
    for root in roots:
        if root in costs or root not in fragments:
            continue
        path: list[tuple[str, Iterator[tuple[str, int | None]]]] = [
            (root, iter(fragments[root].spreads))
        ]
        on_path = {root}
        while path:
            name, spreads = path[-1]
            for target, _level in spreads:
                if target in on_path:
                    names = [entry[0] for entry in path]
                    raise FragmentCycle(names[names.index(target) :])
                if target in fragments and target not in costs:
                    path.append((target, iter(fragments[target].spreads)))
                    on_path.add(target)
                    break
            else:
                path.pop()
                on_path.discard(name)
                costs[name] = _expanded(fragments[name], costs)
    return costs


def _expanded(summary: _Summary, costs: dict[str, Cost]) -> Cost:
    """A definition's cost with each spread's fragment cost added (known fragments only)."""
    selections, aliases, depth = summary.selections, summary.aliases, summary.depth
    for name, level in summary.spreads:
        spread = costs.get(name)
        if spread is None:
            continue
        selections += spread.selections
        aliases += spread.aliases
        if level is not None and spread.depth != NO_FIELD:
            depth = max(depth, level + spread.depth)
    return Cost(selections=selections, aliases=aliases, depth=depth)
