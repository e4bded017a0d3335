"""Hypothesis profiles: ``dev`` (default) and ``ci`` (set by CI=true)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# The parity suites' shared helpers assert too: rewrite them like tests, so
# that a failure shows the values compared.
pytest.register_assert_rewrite("_kernels")

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile(
    "ci", max_examples=120, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


LONG_POLES: tuple[tuple[str, str, int], ...] = (
    # (file, test, seconds on one core: the last CI run's slowest tests, or
    # the CPU measured per shard where a suite is split), longest first.
    ("parity/test_smt_scale_parity.py",
     "test_backends_never_contradict_on_long_chains", 120),
    ("smt/test_workflow_smt.py", "test_parity_on_generated_workflows_slow", 92),
    ("runtime/slow/test_kill.py",
     "test_sigkill_at_random_points_loses_nothing_and_repeats_nothing", 92),
    ("isolation/test_por_parity.py",
     "test_por_parity_disjoint_resources_300_cases", 88),
    ("isolation/test_branch_por_parity.py",
     "test_branch_por_parity_two_instances_60_cases", 64),
    ("parity/test_spin.py", "test_spin_parity_200_generated", 60),
    ("parity/test_wf_kernel_parity.py", "test_wf_kernel_parity_1000_generated",
     57),
    ("isolation/test_branch_por_parity.py",
     "test_branch_por_with_symmetry_parity_two_instances_60_cases", 53),
    ("runtime/test_timeout_parity.py", "test_backends_agree_on_generated_sagas",
     52),
    ("testing/test_plugin.py",
     "test_buggy_participants_fail_with_the_shrunk_schedule", 51),
    ("smt/test_smt.py", "test_hundred_step_chain_all_faults_unbounded", 47),
    # Its largest shard; the four are 98 s.
    ("isolation/test_por_parity.py", "test_reductions_parity_300_cases", 47),
    ("parity/test_smt_scale_parity.py",
     "test_large_path_refutes_a_seeded_double_effect", 44),
    ("runtime/slow/test_conformance_many.py",
     "test_thousands_of_faulty_executions_conform", 39),
    ("isolation/test_sagabench.py", "test_config_a_reaches_the_published_count",
     34),
    ("parity/test_smt_parity.py", "test_backends_agree", 20),
)
"""The slow tier's longest tests, started first: pytest-xdist's worksteal
hands a worker that runs dry half of the other's queue, which balances short
tests well but cannot split a long one that starts last."""
_RANK = {f"tests/{f}::{t}": i for i, (f, t, _) in enumerate(LONG_POLES)}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return _RANK.get(item.nodeid.split("[", 1)[0], len(_RANK))

    # A stable sort: every other test keeps its place, and every worker
    # computes the same order (xdist requires it).
    items.sort(key=rank)
