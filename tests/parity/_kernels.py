"""Helpers the compiled-kernel parity tests share.

Each compiled module (``verifier._kernel_bfs``, ``_kernel_props``,
``_wf_kernel_bfs``, ``_kernel_liveness``) exposes ``compiled()``: its numba
functions, or None without numba. The successor walk of a packed state is the
same for the saga kernel and the workflow kernel, only the decoding differs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from verifier._explicit import explore
from verifier._ts import TransitionSystem


def compiled_or_skip(module: Any) -> dict[str, Any]:
    """``module.compiled()``, or skip the test when numba is not installed."""
    g: dict[str, Any] | None = module.compiled()
    if g is None:
        pytest.skip("numba is not installed")
    return g


def compiled_successors(g: dict[str, Any], arr: Any, ctab: Any,
                        codes: list[int], *, decode: Callable[[int], Any],
                        what: str) -> list[tuple[Any, tuple[int, ...]]] | str:
    """The compiled kernel's (decoded event, next state) for each of
    ``codes`` enabled in the packed state ``arr``, or the first code its own
    ``step_into`` rejects, as a message (``what``: event or step)."""
    out = []
    for code in codes:
        d = arr.copy()
        if g["step_into"](d, ctab, code):
            return (f"compiled kernel rejects its own {what} {code} at "
                    f"{tuple(arr.tolist())}")
        out.append((decode(code), tuple(d.tolist())))
    return out


def engines_agree(ts: TransitionSystem, *, max_states: int) -> None:
    """The compiled search and the interpreted one give the same verdicts,
    reasons, counterexamples and counts on ``ts`` (budget stops included)."""
    slow = explore(ts, engine="python", max_states=max_states)
    fast = explore(ts, engine="kernel", max_states=max_states)
    assert {r.stats.engine for r in slow} == {"python"}
    assert {r.stats.engine for r in fast} == {"kernel"}
    for a, b in zip(slow, fast, strict=True):
        assert (a.property, a.verdict, a.reason) == (b.property, b.verdict, b.reason)
        assert a.counterexample == b.counterexample, a.property
        assert (a.stats.states, a.stats.transitions, a.stats.depth) == (
            b.stats.states, b.stats.transitions, b.stats.depth)
