"""Generated examples as a fixed list, so a slow suite runs as many tests.

A Hypothesis test is one pytest item: on two pytest-xdist workers, one long
``@given`` test holds a worker while the other idles. :func:`drawn` lets
Hypothesis generate the examples once (generation is cheap; checking them is
not) and a suite parametrises one test per example, or per slice of examples,
so that ``--dist worksteal`` balances them. The examples are the ones
Hypothesis would generate for a test with these settings: the same strategy,
the same count, no shrinking (the suites run the generate phase only), and
the same in every worker process because the seed is fixed.
"""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st


@functools.cache
def drawn(strategy: st.SearchStrategy[Any], count: int, *,
          seed_value: int) -> tuple[Any, ...]:
    """``count`` distinct examples of ``strategy`` from seed ``seed_value``,
    generated once per process (the cache key is the strategy object, so a
    suite passes the same module-level strategy every time).

    >>> xs = drawn(st.integers(0, 1000), 5, seed_value=1)
    >>> len(xs), xs == drawn(st.integers(0, 1000), 5, seed_value=1)
    (5, True)
    """
    out: list[Any] = []

    @seed(seed_value)
    @settings(max_examples=count, phases=(Phase.generate,), database=None,
              deadline=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example: Any) -> None:
        out.append(example)

    collect()
    # Hypothesis runs each distinct example once; fewer means the strategy
    # cannot make ``count`` different ones, and the suite would check less
    # than it says.
    assert len(out) == count, f"{strategy!r} gave {len(out)} of {count}"
    return tuple(out)


def shard(examples: tuple[Any, ...], k: int, shards: int) -> tuple[Any, ...]:
    """Slice ``k`` of ``shards`` (every ``shards``-th example from ``k``), so
    that the slices together are every example once and each gets a mix of
    early (small) and late examples.

    >>> shard((0, 1, 2, 3, 4), 1, 2)
    (1, 3)
    """
    return examples[k::shards]
