"""The explicit checker's strongly connected components of a subgraph (the
fair-cycle search) come in the order networkx gives them, so replacing
networkx there (issue 16: start-up time) changed no lasso it picks."""

from __future__ import annotations

from array import array

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier._explicit import _sccs


def _csr(n: int, edges: list[tuple[int, int]]) -> tuple[array[int], array[int]]:
    start, dst = array("q", [0]), array("q")
    for v in range(n):
        dst.extend(w for u, w in edges if u == v)
        start.append(len(dst))
    return start, dst


def _ours(nodes: list[int], start: array[int], dst: array[int]) -> list[set[int]]:
    # What _fair_subcomponent does: number the nodes in the given order.
    index = {v: i for i, v in enumerate(nodes)}
    sub_start, sub_dst = array("q", [0]), array("q")
    for v in nodes:
        sub_dst.extend(index[dst[e]] for e in range(start[v], start[v + 1])
                       if dst[e] in index)
        sub_start.append(len(sub_dst))
    return [{nodes[i] for i in c} for c in _sccs(len(nodes), sub_start, sub_dst)]


def _networkx(nodes: list[int], start: array[int], dst: array[int]) -> list[set[int]]:
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    for v in nodes:
        for e in range(start[v], start[v + 1]):
            if dst[e] in graph:
                graph.add_edge(v, dst[e])
    return [set(c) for c in nx.strongly_connected_components(graph)
            if len(c) > 1 or graph.has_edge(next(iter(c)), next(iter(c)))]


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[int], array[int], array[int]]:
    n = draw(st.integers(1, 9))
    edges = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                          max_size=25))
    start, dst = _csr(n, edges)
    nodes = draw(st.permutations(range(n)))
    keep = draw(st.integers(1, n))
    return list(nodes[:keep]), start, dst


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_components_and_their_order_match_networkx(
        g: tuple[list[int], array[int], array[int]]) -> None:
    nodes, start, dst = g
    assert _ours(nodes, start, dst) == _networkx(nodes, start, dst)


def test_the_comparison_sees_a_different_order() -> None:
    # Two separate cycles: visiting the nodes the other way round yields them
    # the other way round, and the comparison tells the orders apart.
    start, dst = _csr(4, [(0, 1), (1, 0), (2, 3), (3, 2)])
    assert _ours([0, 1, 2, 3], start, dst) != _ours([2, 3, 0, 1], start, dst)
    assert _ours([2, 3, 0, 1], start, dst) == _networkx([2, 3, 0, 1], start, dst)
