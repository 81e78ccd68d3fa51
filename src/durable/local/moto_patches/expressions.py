"""Patches 7, 8 and 12: DynamoDB's expression parsing done once per text, walked cheaply.

7. Update expressions parsed once per text. moto parses an `UpdateExpression` twice per
   `UpdateItem` (the handler, then the backend), and the expressions the run store sends
   repeat with new values only (`SET #1 = :5, ...`). `UpdateExpressionParser.make` keeps
   the trees it built, by expression text (a bounded cache; a text that does not parse is
   not kept, so it raises the same error every time). Sharing a tree is safe: the handler
   only reads it (`find_clauses`), and the backend's validator works on a deep copy of it
   (`Validator.__init__`), where the values, the item and the names are put in; the
   cached tree itself never sees them. So two requests with one expression and different
   value maps update their items exactly as moto does without the cache.

8. The update validator's tree walks without per-node overhead. Each of its ten passes
   (`DepthFirstTraverser.traverse`) asked the pass for its node-type table twice per node
   of the tree, building a new dict each time; here it is built once per pass. The walk
   itself is moto's: depth first, children before their parent, the same hooks in the
   same order, a processed node put in its parent's place.

12. Condition expressions lexed once per text. moto splits a `ConditionExpression` into
    tokens with a dozen regular expressions per token on every conditional write, and the
    run store's conditions repeat (`attribute_not_exists (#0) AND ...`) with new values
    only. The tokens depend on the text alone (names and values are looked up in the next
    pass, `_parse_paths`), are immutable tuples, and no later pass changes them, so the
    token list is kept by text (bounded) and each parse gets a fresh deque of it. A text
    that does not lex raises as before and is not kept.
"""

from __future__ import annotations

import functools
from typing import Any

from durable.local.moto_patches.originals import original, patch

_lexed_conditions: dict[str, tuple[Any, ...]] = {}
LEXED_CONDITIONS_KEPT = 512


def install() -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser  # type: ignore[attr-defined]  # moto exports it untyped
    from moto.dynamodb.parsing.expressions import (  # type: ignore[attr-defined]  # moto exports it untyped
        UpdateExpressionParser,
    )

    patch(UpdateExpressionParser, "make", classmethod(_parsed_update_expression))
    patch(DepthFirstTraverser, "traverse", _traverse)
    patch(ConditionExpressionParser, "_lex_condition_expression", _lexed_condition)


def forget() -> None:
    """Drop the parsed and lexed expressions kept so far."""
    _update_expressions.cache_clear()
    _lexed_conditions.clear()


# -- 7. update expressions parsed once per text ------------------------------------------


@functools.lru_cache(maxsize=512)
def _update_expressions(expression: str) -> Any:
    from moto.dynamodb.parsing.expressions import (  # type: ignore[attr-defined]  # moto exports it untyped
        UpdateExpressionParser,
    )

    make = original(UpdateExpressionParser, "make")
    return make.__func__(UpdateExpressionParser, expression)


def _parsed_update_expression(cls: Any, expression: str) -> Any:
    """`UpdateExpressionParser.make`, kept by text (see patch 7: callers never change it)."""
    from moto.dynamodb.parsing.expressions import (  # type: ignore[attr-defined]  # moto exports it untyped
        UpdateExpressionParser,
    )

    if cls is not UpdateExpressionParser:  # a subclass: as moto does
        return original(UpdateExpressionParser, "make").__func__(cls, expression)
    return _update_expressions(expression)


# -- 8. the validator's walks --------------------------------------------------------------


def _traverse(self: Any, node: Any) -> Any:
    """moto's `DepthFirstTraverser.traverse_node_recursively`, its node-type table built once."""
    from moto.dynamodb.parsing.ast_nodes import Node  # type: ignore[attr-defined]  # moto exports it untyped

    processors = list(self._processing_map().items())
    handled = tuple(kind for kind, _ in processors)
    before_child = self.pre_processing_of_child

    def walk(node: Any, child_id: int = -1) -> Any:
        if isinstance(node, Node):
            parent_node = node.parent
            if node.children is not None:
                for index, child in enumerate(node.children):
                    before_child(node, index)
                    walk(child, index)
            if isinstance(node, handled):
                for kind, process in processors:  # the first that matches, as `process`
                    if isinstance(node, kind):
                        node = process(node)
                        break
                node.parent = parent_node
                if parent_node:
                    parent_node.children[child_id] = node
        return node

    return walk(node)


# -- 12. condition expressions lexed once per text ---------------------------------------


def _lexed_condition(self: Any) -> Any:
    from collections import deque

    from moto.dynamodb.comparisons import ConditionExpressionParser

    text = self.condition_expression
    tokens = _lexed_conditions.get(text)
    if tokens is None:
        lex = original(ConditionExpressionParser, "_lex_condition_expression")
        tokens = tuple(lex(self))  # raises, and keeps nothing, when the text does not lex
        if len(_lexed_conditions) >= LEXED_CONDITIONS_KEPT:
            _lexed_conditions.clear()
        _lexed_conditions[text] = tokens
    return deque(tokens)
