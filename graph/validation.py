"""Validation rules of our own, beside Strawberry's depth, alias and token limiters."""

from __future__ import annotations

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)


def max_mutation_fields_rule(max_fields: int) -> type[ValidationRule]:
    """A rule refusing a mutation that selects more than ``max_fields`` root fields.

    Each response key counts once (``a: login(...) b: login(...)`` is two calls), fields in
    fragments at the root included: each is a separate, possibly expensive call (a bcrypt
    verification, an email).
    """

    class MaxMutationFields(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> None:
            if node.operation != OperationType.MUTATION:
                return
            keys: set[str] = set()
            _collect_root_keys(self.context, node.selection_set, keys, set())
            count = len(keys)
            if count > max_fields:
                self.report_error(
                    GraphQLError(
                        f"A mutation may select at most {max_fields} root fields; "
                        f"this one selects {count}.",
                        node,
                    )
                )

    return MaxMutationFields


def _collect_root_keys(
    context: ValidationContext, selection_set: SelectionSetNode, keys: set[str], seen: set[str]
) -> None:
    # Fields with one response key merge into one call, so keys are what is counted.
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value != "__typename":  # costs nothing: not a call
                keys.add(selection.alias.value if selection.alias else selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            _collect_root_keys(context, selection.selection_set, keys, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = context.get_fragment(name)
            # Cycles are another rule's error; a fragment seen once has given its keys.
            if fragment is not None and name not in seen:
                seen.add(name)
                _collect_root_keys(context, fragment.selection_set, keys, seen)
