"""The dependency graph's pure functions (``jobs.engine.resolver``): no database, plain dicts.

A graph maps each node to the nodes it depends on; a node that appears only as a
dependency is a leaf.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import pairwise

import pytest

from jobs.engine.resolver import find_cycle, ready_ids, topological_order

Graph = dict[str, list[str]]


def assert_is_cycle_of(cycle: list[str], graph: Mapping[str, Iterable[str]]) -> None:
    """``cycle`` is ``[a, ..., a]`` and each consecutive pair is an edge of ``graph``."""
    assert len(cycle) >= 2
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1, f"a node repeats inside {cycle}"
    for node, dep in pairwise(cycle):
        assert dep in set(graph.get(node, ())), f"{node} -> {dep} is not an edge"


def assert_topological(order: list[str], graph: Mapping[str, Iterable[str]]) -> None:
    """Every node of the graph appears once, after everything it depends on."""
    assert len(order) == len(set(order)), "a node appears twice"
    assert set(graph) <= set(order)
    position = {node: i for i, node in enumerate(order)}
    for node, deps in graph.items():
        for dep in deps:
            if dep in position:
                assert position[dep] < position[node], f"{dep} must come before {node}"


ACYCLIC: list[tuple[str, Graph]] = [
    ("empty", {}),
    ("single node", {"a": []}),
    ("chain", {"a": ["b"], "b": ["c"], "c": []}),
    ("diamond", {"d": ["b", "c"], "b": ["a"], "c": ["a"], "a": []}),
    ("disconnected components", {"a": ["b"], "b": [], "x": ["y"], "y": [], "z": []}),
    ("dependency missing from the graph is a leaf", {"a": ["ghost"], "b": ["a", "ghost"]}),
    ("shared dependency reached twice", {"a": ["c"], "b": ["c"], "c": [], "d": ["a", "b"]}),
]

CYCLIC: list[tuple[str, Graph]] = [
    ("self-loop", {"a": ["a"]}),
    ("2-cycle", {"a": ["b"], "b": ["a"]}),
    ("long cycle", {f"n{i}": [f"n{(i + 1) % 50}"] for i in range(50)}),
    (
        "cycle not reachable from the first node",
        {"a": ["b"], "b": [], "x": ["y"], "y": ["z"], "z": ["x"]},
    ),
    ("cycle behind an acyclic prefix", {"a": ["b"], "b": ["c"], "c": ["d"], "d": ["b"]}),
    ("cycle in a second component", {"p": [], "q": ["p"], "m": ["n"], "n": ["m", "p"]}),
]


@pytest.mark.parametrize(("name", "graph"), ACYCLIC, ids=[n for n, _ in ACYCLIC])
def test_it_finds_no_cycle_in_an_acyclic_graph(name: str, graph: Graph) -> None:
    assert find_cycle(graph) is None


@pytest.mark.parametrize(("name", "graph"), CYCLIC, ids=[n for n, _ in CYCLIC])
def test_it_returns_a_real_cycle_of_the_graph(name: str, graph: Graph) -> None:
    cycle = find_cycle(graph)
    assert cycle is not None
    assert_is_cycle_of(cycle, graph)


def test_the_self_loop_cycle_is_the_node_twice() -> None:
    assert find_cycle({"a": ["a"]}) == ["a", "a"]


def test_the_long_cycle_is_returned_whole() -> None:
    graph = {f"n{i}": [f"n{(i + 1) % 50}"] for i in range(50)}
    cycle = find_cycle(graph)
    assert cycle is not None
    assert set(cycle) == set(graph)


@pytest.mark.parametrize(("name", "graph"), ACYCLIC, ids=[n for n, _ in ACYCLIC])
def test_topological_order_puts_dependencies_first(name: str, graph: Graph) -> None:
    assert_topological(topological_order(graph), graph)


@pytest.mark.parametrize(("name", "graph"), CYCLIC, ids=[n for n, _ in CYCLIC])
def test_topological_order_refuses_a_cycle(name: str, graph: Graph) -> None:
    with pytest.raises(ValueError, match="cycle"):
        topological_order(graph)


def test_topological_order_of_the_empty_graph_is_empty() -> None:
    assert topological_order({}) == []


def test_a_100000_node_chain_needs_no_recursion() -> None:
    size = 100_000
    graph = {i: [i + 1] for i in range(size)}
    graph[size] = []
    assert find_cycle(graph) is None
    order = topological_order(graph)
    assert order == list(range(size, -1, -1))


def test_a_100000_node_chain_closed_into_a_loop_is_one_cycle() -> None:
    size = 100_000
    graph = {i: [(i + 1) % size] for i in range(size)}
    cycle = find_cycle(graph)
    assert cycle is not None
    assert len(cycle) == size + 1
    assert_is_cycle_of(
        [str(n) for n in cycle], {str(k): [str(d) for d in v] for k, v in graph.items()}
    )


READY: list[tuple[str, Graph, set[str], set[str]]] = [
    ("empty", {}, set(), set()),
    ("roots are ready", {"a": [], "b": ["a"]}, set(), {"a"}),
    ("a completed parent frees its child", {"a": [], "b": ["a"]}, {"a"}, {"b"}),
    ("completed nodes are not ready", {"a": [], "b": []}, {"a", "b"}, set()),
    (
        "diamond waits for both parents",
        {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]},
        {"a", "b"},
        {"c"},
    ),
    (
        "diamond ready when both done",
        {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]},
        {"a", "b", "c"},
        {"d"},
    ),
    ("missing dependency not completed blocks", {"a": ["ghost"]}, set(), set()),
    ("missing dependency completed frees", {"a": ["ghost"]}, {"ghost"}, {"a"}),
    ("disconnected components", {"a": [], "x": ["y"], "y": []}, {"y"}, {"a", "x"}),
    ("a cycle is never ready", {"a": ["b"], "b": ["a"], "c": []}, set(), {"c"}),
]


@pytest.mark.parametrize(
    ("name", "graph", "completed", "expected"), READY, ids=[r[0] for r in READY]
)
def test_ready_ids_are_the_unfinished_nodes_whose_dependencies_all_completed(
    name: str, graph: Graph, completed: set[str], expected: set[str]
) -> None:
    assert ready_ids(graph, completed) == expected
