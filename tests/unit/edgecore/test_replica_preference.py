"""Each node's order of replicas (rendezvous hashing): an even start, and a stopped replica's
nodes spread evenly over the others rather than all landing on its neighbour."""

from __future__ import annotations

from collections import Counter

from edgecore.hub import preference

NODES = [f"edge-{i}" for i in range(6000)]


def test_every_replica_is_in_every_order_once() -> None:
    for count in (1, 2, 3, 4, 7):
        for node in NODES[:50]:
            assert sorted(preference(node, count)) == list(range(count))


def test_nodes_start_evenly_spread() -> None:
    first = Counter(preference(node, 3)[0] for node in NODES)
    assert all(1800 <= n <= 2200 for n in first.values()), first


def test_a_stopped_replicas_nodes_spread_over_the_others() -> None:
    for count in (3, 4):
        moved = Counter(preference(n, count)[1] for n in NODES if preference(n, count)[0] == 0)
        share = sum(moved.values()) / (count - 1)
        assert set(moved) == set(range(1, count)), moved
        assert all(abs(n - share) < 0.15 * share for n in moved.values()), moved


def test_the_order_of_the_others_stays_when_a_replica_is_added() -> None:
    """A node whose first choice among three was not the new fourth keeps it: adding a
    replica moves only the nodes that prefer the new one (about a quarter)."""
    kept = sum(preference(n, 4)[0] == preference(n, 3)[0] for n in NODES
               if preference(n, 4)[0] != 3)  # fmt: skip
    moved = sum(preference(n, 4)[0] == 3 for n in NODES)
    assert kept == len(NODES) - moved and 1300 <= moved <= 1700
