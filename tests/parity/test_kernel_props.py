"""The compiled property checks agree with the properties' Python predicates.

``verifier._kernel_props`` mirrors the closures of ``SagaTransitionSystem``
(which stay the specification) in code numba compiles. For generated
definitions under generated fault models, these tests compare the two state
by state: on every reachable state (a breadth-first prefix for big models),
each state and terminal check, and on every compensation it may start, the
ordering check; then on arbitrary states within the packed fields' bounds
(reachable or not), where a violation of every check is common. A seeded bug
in the compiled checks' table must be reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _kernels import compiled_or_skip
from hypothesis import given, settings
from hypothesis import strategies as st
from test_kernel_parity import _SETTINGS, _faults, _sagas, _two_step

from saga_models import FaultModel, Saga, load
from saga_models import semantics as sem
from saga_models.semantics import EventKind
from tests.expectations import expectation
from verifier import SagaTransitionSystem, Verdict
from verifier._explicit import explore

np = pytest.importorskip("numpy")
kp = pytest.importorskip("verifier._kernel_props")
kb = pytest.importorskip("verifier._kernel_bfs")


def _compiled() -> dict[str, Any]:
    return compiled_or_skip(kp)


def _verdicts(g: dict[str, Any], ts: SagaTransitionSystem, state: tuple[int, ...],
              tabs: tuple[Any, ...]) -> tuple[tuple[bool, ...], tuple[bool, ...]]:
    """(compiled, Python) verdicts of the state checks and of the ordering
    check of every compensation step, in ``state``."""
    eff, has_comp, aptr, aidx = tabs
    n = len(ts.saga.steps)
    cc, _, ec, _ = ts.properties
    arr = np.array(state, np.int64)
    term = ts.is_terminal(state)
    fast = [bool(g["_compensated_unstarted"](arr, n))
            or (term and bool(g["_left_uncompensated"](arr, n, eff))),
            term and bool(g["_inconsistent"](arr, n, eff))]
    slow = [bool(cc.on_state(state))  # type: ignore[misc]
            or (term and bool(cc.on_terminal(state))),  # type: ignore[misc]
            term and bool(ec.on_terminal(state))]  # type: ignore[misc]
    for i in range(n):
        event = sem.Event(EventKind.COMP_DISPATCH, i)
        fast.append(bool(g["_out_of_order"](arr, i, has_comp, aptr, aidx)))
        slow.append(bool(cc.on_transition(state, event, state)))  # type: ignore[misc]
    return tuple(fast), tuple(slow)


def first_disagreement(saga: Saga, faults: FaultModel, *, limit: int,
                       tabs: tuple[Any, ...] | None = None) -> str | None:
    """Walk up to ``limit`` reachable states breadth-first, comparing the
    compiled and the Python checks on each; the first difference, or None.
    ``tabs`` replaces the compiled checks' table (the seeded-bug test)."""
    g = _compiled()
    ts = SagaTransitionSystem(saga, faults)
    tabs = kp.tables(saga) if tabs is None else tabs
    init = ts.initial()[0]
    seen = {init}
    queue = [init]
    for walked, state in enumerate(queue):
        if walked >= limit:
            break
        fast, slow = _verdicts(g, ts, state, tabs)
        if fast != slow:
            return f"at {state}: compiled {fast} != python {slow}"
        for _, nxt in ts.successors(state):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return None


def _any_states(saga: Saga, faults: FaultModel,
                count: int) -> st.SearchStrategy[list[tuple[int, ...]]]:
    """``count`` states whose every field is within its packed bounds (mostly
    unreachable: every check is violated somewhere among them), each field
    uniform over its bits.

    Drawn as one byte string, cut into each field's bytes and masked to its
    bits (``fmax`` is ``2**bits - 1``): one Hypothesis draw per state instead
    of one per field, which spent three quarters of the 1,000-definition
    test's time in Hypothesis's engine (bench/RESULTS.md, test time); the
    same states, bounds and count, and still shrunk by Hypothesis (towards
    zero fields)."""
    pack = kb.packing(saga, faults)
    assert pack is not None
    sizes = [(m.bit_length() + 7) // 8 for m in pack.fmax]
    assert all(m == (1 << m.bit_length()) - 1 for m in pack.fmax)
    width = sum(sizes)

    def cut(blob: bytes) -> tuple[int, ...]:
        out, at = [], 0
        for m, size in zip(pack.fmax, sizes, strict=True):
            out.append(int.from_bytes(blob[at:at + size], "little") & m)
            at += size
        return tuple(out)

    one = st.binary(min_size=width, max_size=width).map(cut)
    return st.lists(one, min_size=count, max_size=count)


def _generated_agree(saga: Saga, faults: FaultModel, data: st.DataObject, *,
                     reachable: int, arbitrary: int) -> None:
    """Every check compiled == Python on up to ``reachable`` reachable states,
    then on ``arbitrary`` drawn states within the packed fields' bounds."""
    assert first_disagreement(saga, faults, limit=reachable) is None, (
        saga.to_dict())
    g = _compiled()
    ts = SagaTransitionSystem(saga, faults)
    tabs = kp.tables(saga)
    for state in data.draw(_any_states(saga, faults, arbitrary)):
        fast, slow = _verdicts(g, ts, state, tabs)
        assert fast == slow, (state, saga.to_dict())


@given(saga=_sagas(max_steps=3), faults=_faults(), data=st.data())
@settings(max_examples=100, **_SETTINGS)
def test_kernel_props_parity_100_generated(saga: Saga, faults: FaultModel,
                                           data: st.DataObject) -> None:
    """100 generated definitions: every check on up to 300 reachable states,
    then on 20 arbitrary states, compiled == Python."""
    _generated_agree(saga, faults, data, reachable=300, arbitrary=20)


@pytest.mark.slow
@given(saga=_sagas(max_steps=4), faults=_faults(), data=st.data())
@settings(max_examples=1_000, **_SETTINGS)
def test_kernel_props_parity_1000_generated(saga: Saga, faults: FaultModel,
                                            data: st.DataObject) -> None:
    """1,000 generated definitions of up to four steps: every check on up to
    1,000 reachable states and 50 arbitrary ones."""
    _generated_agree(saga, faults, data, reachable=1_000, arbitrary=50)


@pytest.mark.parametrize("which", [0, 1, 2])
def test_seeded_bug_in_the_compiled_checks_table_is_caught(which: int) -> None:
    """One entry of the compiled checks' table changed (a judged effect, a
    compensation, an ordering constraint): the walk over reachable and
    arbitrary states reports it; with the true table it reports nothing."""
    saga = _two_step()  # charge after reserve: reserve is compensated last
    faults = FaultModel()
    assert first_disagreement(saga, faults, limit=5_000) is None
    eff, has_comp, aptr, aidx = (a.copy() for a in kp.tables(saga))
    if which == 0:
        eff[1] = 0  # charge's effect no longer judged
    elif which == 1:
        has_comp[1] = 0  # charge no longer has a compensation
    else:
        aptr[1:] = 0  # reserve no longer waits for charge's compensation
    tabs = (eff, has_comp, aptr, aidx)
    bad = first_disagreement(saga, faults, limit=5_000, tabs=tabs)
    if bad is None:  # the semantics never starts compensations out of order
        g = _compiled()
        ts = SagaTransitionSystem(saga, faults)
        pack = kb.packing(saga, faults)
        assert pack is not None
        rng = np.random.default_rng(7)
        for _ in range(5_000):
            state = tuple(int(rng.integers(0, m + 1)) for m in pack.fmax)
            fast, slow = _verdicts(g, ts, state, tabs)
            if fast != slow:
                bad = f"at {state}"
                break
    assert bad is not None


def test_compiled_pass_finds_the_first_violation_of_a_seeded_bug() -> None:
    """A definition with a real bug (a compensation that escalates after one
    failure): the compiled pass refutes it with the same shortest
    counterexample and message as the interpreted search, and the pass did
    run (the compiled-property path, not the Python fallback)."""
    import dataclasses

    saga = dataclasses.replace(
        _two_step(), compensation_policy=dataclasses.replace(
            _two_step().compensation_policy, max_attempts=1))
    ts = SagaTransitionSystem(saga, FaultModel())
    assert all(any(p is q for q in ts.compiled_properties) for p in ts.properties)
    slow = explore(ts, engine="python")
    fast = explore(ts, engine="kernel")
    violated = [r.property for r in fast if r.verdict.value == "violated"]
    assert "eventual_consistency" in violated
    for a, b in zip(slow, fast, strict=True):
        assert (a.verdict, a.reason, a.counterexample) == (
            b.verdict, b.reason, b.counterexample)


_QUALITY = sorted((Path(__file__).parent.parent / "quality" / "sagas").glob("*/*.yaml"))


@pytest.mark.parametrize("path", _QUALITY, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_quality_corpus_through_the_compiled_checks(path: Path) -> None:
    """Every seeded-bug and correct saga of ``tests/quality``: the compiled
    search with the compiled checks (safety and termination) gives the
    interpreted search's verdicts, reasons and counterexamples, so every
    seeded bug is still refuted with the same shortest trace."""
    _compiled()
    exp = expectation(path)
    saga = load(path)
    assert isinstance(saga, Saga)
    ts = SagaTransitionSystem(saga, FaultModel.parse(exp.faults))
    slow = explore(ts, engine="python")
    fast = explore(ts, engine="kernel")
    violated = {r.property for r in fast if r.verdict is Verdict.VIOLATED}
    assert exp.violated <= violated
    for a, b in zip(slow, fast, strict=True):
        assert (a.property, a.verdict, a.reason, a.counterexample) == (
            b.property, b.verdict, b.reason, b.counterexample)


def test_a_property_the_kernel_does_not_know_is_checked_in_python(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A property put in ``properties`` after the system was made (here: the
    same checks as new objects) is not the compiled pass's to judge: the
    compiled search then checks every property in Python, with the same
    results, and the compiled pass is not called."""
    import dataclasses

    saga = dataclasses.replace(
        _two_step(), compensation_policy=dataclasses.replace(
            _two_step().compensation_policy, max_attempts=1))
    ts = SagaTransitionSystem(saga, FaultModel())
    ts.properties = tuple(dataclasses.replace(p) for p in ts.properties)

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the compiled pass ran on a foreign property")

    slow = explore(ts, engine="python")
    monkeypatch.setattr(kp, "property_pass", refuse)
    fast = explore(ts, engine="kernel")
    assert any(r.verdict is Verdict.VIOLATED for r in fast)
    for a, b in zip(slow, fast, strict=True):
        assert (a.verdict, a.reason, a.counterexample) == (
            b.verdict, b.reason, b.counterexample)


def test_property_pass_on_32_bit_indices() -> None:
    """The search stores each word as a 16-bit index into its table of
    distinct words, widened to 32 bits past 65,535 of them: the compiled
    property pass reads both and finds the same first violations (on a
    seeded bug, so that there is something to find)."""
    import dataclasses

    saga = dataclasses.replace(
        _two_step(), compensation_policy=dataclasses.replace(
            _two_step().compensation_policy, max_attempts=1))
    found = kb.search(saga, FaultModel(), graph=False, watch_kinds=1 << 5,
                      max_states=1_000_000)
    assert found is not None
    assert found.states.dtype == np.uint16
    kw = {"completeness": True, "consistency": True, "reached": True,
          "transitions": True}
    narrow = kp.property_pass(saga, found, **kw)
    assert narrow is not None
    assert narrow.consistency_state >= 0
    found.states = found.states.astype(np.int32)
    assert kp.property_pass(saga, found, **kw) == narrow
    # Read without the table of distinct words, the indices are no states.
    found.cvals = np.arange(len(found.cvals), dtype=np.int64)
    assert kp.property_pass(saga, found, **kw) != narrow


@pytest.mark.parametrize("tampered", [False, True])
def test_transition_pass_finds_the_first_watched_violation(
        monkeypatch: pytest.MonkeyPatch, tampered: bool) -> None:
    """The compiled ordering check over the watched transitions (kept as
    source and event position only) answers what a plain walk over them
    answers, with each event and source derived again through
    ``watched_block``: nothing on the true table, and, with the order turned
    round (charge's compensation made to wait for reserve's, which the
    semantics starts after it when ship fails), the very first transition
    that breaks it."""
    from saga_models import SagaBuilder

    g = _compiled()
    saga = (SagaBuilder("three")
            .step("reserve", participant="stock", action="reserve",
                  compensation="release")
            .step("charge", participant="bank", action="charge",
                  compensation="refund")
            .step("ship", participant="post", action="ship",
                  compensation="recall")
            .build())
    eff, has_comp, aptr, aidx = kp.tables(saga)
    # Each step's compensation waits for those of every step after it.
    assert (aptr.tolist(), aidx.tolist()) == ([0, 2, 3, 3], [1, 2, 2])
    if tampered:
        aptr = np.array([0, 0, 1, 1], np.int64)
        aidx = np.array([0], np.int64)
        monkeypatch.setattr(kp, "tables", lambda _: (eff, has_comp, aptr, aidx))
    found = kb.search(saga, FaultModel(), graph=False, watch_kinds=1 << 5,
                      max_states=1_000_000)
    assert found is not None
    wsrc, _ = found.watched
    codes, _ = found.watched_block(0, len(wsrc))
    srcs = found.take(wsrc)
    expected = -1
    for q, (code, src) in enumerate(zip(codes, srcs, strict=True)):
        event = sem.decode_event(code)
        assert event.kind is EventKind.COMP_DISPATCH
        if g["_out_of_order"](np.array(src, np.int64), event.step, has_comp,
                              aptr, aidx):
            expected = q
            break
    firsts = kp.property_pass(saga, found, completeness=False,
                              consistency=False, reached=False,
                              transitions=True)
    assert firsts is not None
    assert firsts.out_of_order == expected
    assert (expected >= 0) is tampered
