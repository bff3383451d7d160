"""A copy of JSON-like data with each leaf transformed, without recursion.

Data from tools and from the sandbox may be nested far deeper than Python's
recursion limit allows, so the walk keeps its own stack.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

__all__ = ["map_leaves"]


def map_leaves(value: object, transform_leaf: Callable[[object], object]) -> object:
    """Return a copy of the dicts, lists and tuples in `value` with each leaf transformed.

    Leaves are dict keys and values and list and tuple items that are not themselves
    dicts, lists or tuples. They are visited in iteration order, keys before values.
    """
    if not isinstance(value, dict | list | tuple):
        return transform_leaf(value)

    # A frame is a container, the iterator over its children and the copied children so
    # far. A dict's children are its keys and values in turn.
    stack: list[tuple[object, Iterator[object], list[object]]] = []
    on_path: set[int] = set()
    _push_frame(stack, on_path, value)
    while True:
        source, children, built = stack[-1]
        for child in children:
            if isinstance(child, dict | list | tuple):
                _push_frame(stack, on_path, child)
                break
            built.append(transform_leaf(child))
        else:
            stack.pop()
            on_path.discard(id(source))
            rebuilt = _rebuild(source, built)
            if not stack:
                return rebuilt
            stack[-1][2].append(rebuilt)


def _push_frame(
    stack: list[tuple[object, Iterator[object], list[object]]],
    on_path: set[int],
    container: dict[object, object] | list[object] | tuple[object, ...],
) -> None:
    if id(container) in on_path:
        raise ValueError(
            f"cannot copy a {type(container).__name__} that contains itself. "
            "Pass data without reference cycles."
        )
    on_path.add(id(container))

    children: Iterator[object]
    if isinstance(container, dict):
        children = itertools.chain.from_iterable(container.items())
    else:
        children = iter(container)
    stack.append((container, children, []))


def _rebuild(source: object, built: list[object]) -> object:
    """Return a new container of the type of `source` holding the copied children."""
    if isinstance(source, dict):
        return dict(zip(built[::2], built[1::2], strict=True))
    if isinstance(source, tuple):
        return tuple(built)
    return built
