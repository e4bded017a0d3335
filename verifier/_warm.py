"""Compile every numba kernel of the explicit checker into its on-disk cache.

``python -m verifier._warm`` runs one small search through each compiled
module (the saga search with its property pass and fair-cycle search, the
two-thread search, hash compaction and bitstate, the workflow search), so
that numba compiles each function once and stores it (see
:func:`verifier._kernel_bfs.compile_into`). On a machine whose cache is cold
(a fresh clone in CI), every pytest-xdist worker would otherwise compile the
same functions itself, at the same moment: ``scripts/test.sh`` runs this
once, beside mypy, before the test tiers. Numba keys a cached function by
its source file's path and modification time, so the code compiled here is
the code every later process of the same tree loads.

Nothing here decides anything: the searches' results are thrown away.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from saga_models import FaultModel, loads

SAGA = """\
saga: warm
steps:
  - {name: a, participant: p, action: x, compensation: u, timeout: 1s,
     compensation_needs_result: true, retry: {max_attempts: 2}}
  - {name: b, participant: q, action: y, compensation: v, idempotent: false}
  - {name: c, participant: r, action: z, compensation: w, timeout: 1s,
     retry: {max_attempts: 3}}
  - {name: e, participant: r, action: z, compensation: w, timeout: 1s,
     retry: {max_attempts: 2}}
  - {name: d, participant: s, action: t, kind: pivot}
"""
"""A small saga (1,537 states under the warm-up's faults) with timeouts,
retries, a non-idempotent step and a compensation that needs a reply that
may never come (a livelock): its search reaches the compiled functions of
every module, the fair-cycle search and the growth of the table of distinct
words included. Not every specialisation: a search past 65,535 distinct
words (32-bit indices) still compiles those on first use."""

WORKFLOW = """\
workflow: warm
bus: {delivery: at_least_once, order: unordered}
start: [go]
services:
  a:
    initial: IDLE
    final: [DONE]
    transitions:
      - from: IDLE
        on: go
        choose:
          - {to: DONE, emit: [ok], add: {n: 1}}
          - {to: DONE}
  b:
    initial: IDLE
    dedup: true
    transitions:
      - {from: IDLE, on: ok, to: SEEN}
counters: {n: {initial: 0, cap: 2}}
invariants: [n <= 1]
"""
"""A small event workflow, for the workflow search."""


def folders() -> dict[str, Path]:
    """Each compiled module's current cache folder, by its name there: the
    folders :func:`verifier._kernel_bfs.cache_dir` names from the sources
    each module compiles (so a folder left by older sources does not count).
    """
    from . import _kernel_bfs as kb
    from . import (
        _kernel_compact,
        _kernel_liveness,
        _kernel_parallel,
        _kernel_props,
        _wf_kernel_bfs,
    )

    out = {"saga": kb.saga_dir(), "wf": _wf_kernel_bfs.cache_folder()}
    for mod in (_kernel_props, _kernel_liveness, _kernel_parallel,
                _kernel_compact):
        source = str(mod.__file__)
        out[Path(source).stem.lstrip("_")] = kb.extension_dir(source)
    return out


def searches() -> tuple[tuple[str, Callable[[], object]], ...]:
    """Each search of the warm-up, by name (none runs until called)."""
    from ._explicit import explore
    from ._kernel_compact import Compaction
    from ._saga_ts import SagaTransitionSystem
    from ._workflow_ts import WorkflowTransitionSystem

    faults = FaultModel(crashes=1, duplicates=1)
    ts = SagaTransitionSystem(loads(SAGA), faults)
    wts = WorkflowTransitionSystem(loads(WORKFLOW), faults)
    return (
        # The search, the property pass, and (termination) the fair cycles.
        ("saga", lambda: explore(ts, engine="kernel")),
        ("two threads", lambda: explore(ts, engine="kernel", workers=2)),
        ("hash compaction", lambda: explore(
            ts, compaction=Compaction(mode="hash-compact"))),
        ("bitstate", lambda: explore(
            ts, compaction=Compaction(mode="bitstate", bits=20))),
        ("workflow", lambda: explore(wts, engine="kernel")),
    )


def missing() -> list[str]:
    """The compiled modules (:func:`folders`) whose cache folder holds no
    compiled function yet (numba's index files, ``*.nbi``)."""
    return [name for name, where in folders().items()
            if not any(where.rglob("*.nbi"))]


def main() -> int:
    """Run the warm-up, printing each search's CPU seconds; 1 when numba is
    not installed (nothing to warm) or a namespace is still empty."""
    try:
        import numba  # noqa: F401 - only whether it is there
    except ImportError:
        print("numba is not installed: nothing to compile")
        return 1
    total = time.process_time()
    for name, run in searches():
        started = time.process_time()
        run()
        print(f"  {name:16} {time.process_time() - started:6.1f} s CPU",
              flush=True)
    print(f"  {'total':16} {time.process_time() - total:6.1f} s CPU "
          f"(cache: {folders()['saga'].parent})")
    empty = missing()
    if empty:
        print(f"no compiled code cached for: {', '.join(empty)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
