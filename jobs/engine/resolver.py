"""The dependency graph as plain data: ``{node: set of nodes it depends on}``. No database."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

N = TypeVar("N", bound=Hashable)
Graph = Mapping[N, Iterable[N]]


def find_cycle(graph: Mapping[N, Iterable[N]]) -> list[N] | None:
    """A cycle as a list of nodes ``[a, b, ..., a]``, or None when the graph is acyclic.

    Iterative depth-first search, so a 100,000-node chain does not hit the recursion limit.
    Nodes that appear only as dependencies are leaves.
    """
    white, grey, black = 0, 1, 2
    colour: dict[N, int] = {}
    for root in graph:
        if colour.get(root, white) != white:
            continue
        stack: list[tuple[N, list[N]]] = [(root, list(graph.get(root, ())))]
        path: list[N] = [root]
        colour[root] = grey
        while stack:
            node, pending = stack[-1]
            if not pending:
                colour[node] = black
                stack.pop()
                path.pop()
                continue
            child = pending.pop()
            state = colour.get(child, white)
            if state == grey:
                return [*path[path.index(child) :], child]
            if state == white:
                colour[child] = grey
                path.append(child)
                stack.append((child, list(graph.get(child, ()))))
    return None


def topological_order(graph: Mapping[N, Iterable[N]]) -> list[N]:
    """Nodes ordered so that every node comes after all it depends on. Raises on a cycle."""
    cycle = find_cycle(graph)
    if cycle is not None:
        raise ValueError(f"cycle: {' -> '.join(map(str, cycle))}")
    order: list[N] = []
    seen: set[N] = set()
    for root in graph:
        if root in seen:
            continue
        stack: list[tuple[N, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if node in seen:
                continue
            seen.add(node)
            stack.append((node, True))
            stack.extend((dep, False) for dep in graph.get(node, ()) if dep not in seen)
    return order


def ready_ids(graph: Mapping[N, Iterable[N]], completed: set[N]) -> set[N]:
    """Nodes not yet completed whose dependencies have all completed."""
    return {
        node
        for node, deps in graph.items()
        if node not in completed and all(dep in completed for dep in deps)
    }
