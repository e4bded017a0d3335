"""The z3 backend behind ``check(..., backend="smt" | "auto")``.

One result per property, in the same shapes as the explicit checker
(:class:`~verifier.PropertyResult`, counterexamples rendered from the same
``SagaTransitionSystem``), so callers and the CLI cannot tell the backends apart
except by ``backend`` and by unbounded verdicts on definitions too big to
enumerate.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import z3

from saga_models import FaultModel, Saga
from saga_models import semantics as sem
from saga_models.semantics import ST, Status

from .._budget import BudgetExhausted, Deadline
from .._explicit import DEFAULT_MAX_MEMORY, DEFAULT_MAX_STATES, Progress, explore
from .._result import Counterexample, PropertyResult, Stats, TraceStep, Verdict
from .._ts import Property, TransitionSystem
from ._encode import LOGIC, Encoding, Unsupported, encode
from ._engine import (
    StateBad,
    Trace,
    TransBad,
    bmc,
    completeness_state_bad,
    completeness_trans_bad,
    consistency_bad,
    deadlock_bad,
    fair_lasso,
    induction_by_cases,
    k_induction,
    no_deadlock,
    no_trans_bad,
    ranking_by_cases,
)
from ._invariant import (
    COARSE,
    EDGE,
    FINE,
    LocalInvariant,
    scaled_invariant,
    seed_states,
)
from ._z3 import DEFAULT_RLIMIT, budget, budget_reason, depth_note, new_solver

DEFAULT_MAX_DEPTH = 80
"""BMC bound: counterexamples longer than this are reported as unknown."""
MAX_K = 4
"""Largest k tried by k-induction after plain induction fails."""
AUTO_EXPLICIT_STATES = 200_000
"""``auto`` first explores explicitly up to this many states, then asks z3."""



_DEADLOCK = (
    "deadlock: the saga can make no further move and has not reached a terminal outcome"
)


class _Run:
    """One SMT check of one saga: shares the encoding and the lemmas."""

    def __init__(
        self,
        saga: Saga,
        ts: TransitionSystem,
        faults: FaultModel,
        max_depth: int,
        rlimit: int,
    ) -> None:
        self.saga = saga
        self.ts = ts
        self.faults = faults
        self.max_depth = max_depth
        self.rlimit = rlimit
        self.enc: Encoding = encode(saga, faults)
        self._invs: dict[tuple[int, ...], LocalInvariant | str] = {}
        self._inv: LocalInvariant | str | None = None
        # Large definitions try the cheaper phase-only projection first.
        self.levels = (FINE, EDGE) if self.enc.n <= 6 else (COARSE, FINE)

    def inv(self, level: tuple[int, ...] | None = None) -> LocalInvariant | str:
        level = level or self.levels[-1]
        if level not in self._invs:
            self._invs[level] = scaled_invariant(
                self.enc, rlimit=self.rlimit, header=level
            )
        self._inv = self._invs[level]
        return self._invs[level]

    # --- rendering ------------------------------------------------------------------
    def counterexample(self, tr: Trace, violation: str) -> Counterexample:
        ts = self.ts
        steps = [
            TraceStep(action="init", event=None, state=ts.state_json(tr.states[0]))
        ]
        for e, st in zip(tr.events, tr.states[1:], strict=True):
            steps.append(
                TraceStep(
                    action=ts.label_text(e),
                    event=ts.label_json(e),
                    state=ts.state_json(st),
                )
            )
        return Counterexample(
            steps=tuple(steps), loop_start=tr.loop_start, violation=violation
        )

    def _message(self, p: Property, tr: Trace) -> str:
        last = tr.states[-1]
        if p.on_state is not None and (msg := p.on_state(last)):
            return msg
        if (
            p.on_terminal is not None
            and sem.is_terminal(last)
            and (msg := p.on_terminal(last))
        ):
            return msg
        if (
            p.on_transition is not None
            and tr.events
            and (msg := p.on_transition(tr.states[-2], tr.events[-1], last))
        ):
            return msg
        return f"{p.name} violated"

    # --- properties --------------------------------------------------------------
    def safety(
        self, p: Property, state_bad: StateBad, trans_bad: TransBad = no_trans_bad
    ) -> tuple[Verdict, str, Trace | None, int]:
        cti = ""
        for level in self.levels:
            inv = self.inv(level)
            if not isinstance(inv, LocalInvariant):
                cti = inv
                continue
            ind = induction_by_cases(
                self.enc,
                inv,
                state_bad=state_bad,
                trans_bad=trans_bad,
                rlimit=self.rlimit,
            )
            if ind.proved:
                return (
                    Verdict.HOLDS,
                    f"proved for executions of every length by "
                    f"induction, strengthened by {inv.size()} step lemmas "
                    f"({ind.detail})",
                    None,
                    0,
                )
            cti = ind.detail or ind.unknown
        out = bmc(
            self.enc,
            state_bad=state_bad,
            trans_bad=trans_bad,
            max_depth=self.max_depth,
            rlimit=self.rlimit,
        )
        if out.trace is not None:
            return Verdict.VIOLATED, self._message(p, out.trace), out.trace, out.depth
        if out.complete:
            return (
                Verdict.HOLDS,
                f"bounded model checking is complete: no execution "
                f"is longer than {out.depth - 1} steps, none violates it",
                None,
                out.depth,
            )
        if out.unknown:
            return (
                Verdict.UNKNOWN,
                out.unknown + (f"; {cti}" if cti else ""),
                None,
                out.depth,
            )
        if isinstance(inv, LocalInvariant):
            ind = k_induction(
                self.enc,
                inv,
                state_bad=state_bad,
                trans_bad=trans_bad,
                max_k=min(MAX_K, self.max_depth),
                rlimit=self.rlimit,
            )
            if ind.proved:
                return (
                    Verdict.HOLDS,
                    f"proved by {ind.k}-induction strengthened by "
                    f"{inv.size()} step lemmas; no violation within "
                    f"{self.max_depth} steps",
                    None,
                    out.depth,
                )
            cti = ind.detail or ind.unknown or cti
        return (
            Verdict.UNKNOWN,
            f"no violation within {self.max_depth} steps (BMC "
            f"bound) and not proved by {MAX_K}-induction: {cti}",
            None,
            out.depth,
        )

    def termination(self) -> tuple[Verdict, str, Trace | None, int]:
        rank = None
        inv: LocalInvariant | str = ""
        free: bool | str = False
        for level in self.levels:
            inv = self.inv(level)
            if not isinstance(inv, LocalInvariant):
                continue
            # The last level's answer is reused below (the same z3 query).
            free = no_deadlock(self.enc, inv, rlimit=self.rlimit)
            if free is not True:
                continue
            rank = ranking_by_cases(self.enc, inv, rlimit=self.rlimit)
            if rank.proved:
                return (
                    Verdict.HOLDS,
                    f"no deadlock, and a ranking function checked "
                    f"by z3 ({rank.detail}); under {self.ts.fairness}",
                    None,
                    0,
                )
        if not isinstance(inv, LocalInvariant):
            return Verdict.UNKNOWN, inv, None, 0
        if free is not True:
            out = bmc(
                self.enc,
                state_bad=deadlock_bad,
                max_depth=self.max_depth,
                rlimit=self.rlimit,
            )
            if out.trace is not None:
                return Verdict.VIOLATED, _DEADLOCK, out.trace, out.depth
            if not out.complete:
                why = (
                    free
                    if isinstance(free, str)
                    else ("the step lemmas admit a deadlock state")
                )
                return (
                    Verdict.UNKNOWN,
                    f"no deadlock within {self.max_depth} steps, "
                    f"but none ruled out: {why}",
                    None,
                    out.depth,
                )
        if rank is None:
            rank = ranking_by_cases(self.enc, inv, rlimit=self.rlimit)
        fair = self.ts.fairness
        out = fair_lasso(self.enc, max_depth=self.max_depth, rlimit=self.rlimit)
        if out.trace is not None:
            msg = f"livelock: a cycle that never terminates, and is fair ({fair})"
            return Verdict.VIOLATED, msg, out.trace, out.depth
        if out.complete:
            return (
                Verdict.HOLDS,
                "bounded model checking is complete: every "
                f"execution ends within {out.depth - 1} steps",
                None,
                out.depth,
            )
        return (
            Verdict.UNKNOWN,
            f"no fair lasso within {self.max_depth} steps and "
            f"no ranking function found: {rank.detail or rank.unknown}"
            + (f"; {out.unknown}" if out.unknown else ""),
            None,
            out.depth,
        )

    def unreachable(self, p: Property) -> tuple[Verdict, str, Trace | None, int]:
        if p.static_violation:
            return Verdict.VIOLATED, p.static_violation, None, 0
        reached = [False] * self.enc.n
        for st in seed_states(self.enc, budget=2000, walks=8):
            for i in range(self.enc.n):
                if st[sem.HEADER + sem.WIDTH * i + ST] != Status.PENDING:
                    reached[i] = True
        missing = [i for i in range(self.enc.n) if not reached[i]]
        never: list[str] = []
        open_: list[str] = []
        if missing:
            inv = self.inv()
            for i in missing:
                name = self.saga.steps[i].name
                if isinstance(inv, LocalInvariant) and self._never(inv, i):
                    never.append(name)
                    continue
                out = bmc(
                    self.enc,
                    state_bad=lambda enc, s, i=i: (  # type: ignore[misc]
                        enc.at(s, i, ST) != Status.PENDING
                    ),
                    max_depth=self.max_depth,
                    rlimit=self.rlimit,
                )
                if out.trace is None:
                    (never if out.complete else open_).append(name)
        if never:
            return (
                Verdict.VIOLATED,
                "step(s) never reached in any execution: " + ", ".join(never),
                None,
                0,
            )
        if open_:
            return (
                Verdict.UNKNOWN,
                "could not decide whether step(s) are reachable: " + ", ".join(open_),
                None,
                0,
            )
        return (
            Verdict.HOLDS,
            "no structure rule broken; every step is reached by "
            "some execution of the shared semantics",
            None,
            0,
        )

    def _never(self, inv: LocalInvariant, i: int) -> bool:
        slv = new_solver(rlimit=self.rlimit, logic=LOGIC)
        s = self.enc.frame("u")
        slv.add(inv.holds(s), self.enc.at(s, i, ST) != Status.PENDING)
        return bool(slv.check() == z3.unsat)


def smt_check(
    saga: Saga,
    ts: TransitionSystem,
    *,
    properties: Sequence[str] | None,
    faults: FaultModel,
    max_depth: int = DEFAULT_MAX_DEPTH,
    rlimit: int = DEFAULT_RLIMIT,
    note: str = "",
) -> tuple[PropertyResult, ...]:
    """Every requested property of ``saga`` decided with z3.

    A budget running out (see :func:`~verifier.smt._z3.budget`) leaves the
    property being decided, and every later one, ``unknown`` with the budget
    named; ``note`` is appended to every other unknown reason.
    """
    props = [p for p in ts.properties if properties is None or p.name in properties]
    try:
        run = _Run(saga, ts, faults, max_depth, rlimit)
    except (Unsupported, BudgetExhausted, z3.Z3Exception) as exc:
        why = budget_reason(exc)
        if why is None and not isinstance(exc, Unsupported):
            raise
        return tuple(
            PropertyResult(
                property=p.name,
                verdict=Verdict.UNKNOWN,
                reason=why or str(exc),
                fault_model=ts.fault_model,
                backend="smt",
            )
            for p in props
        )
    results = []
    for p in props:
        started = time.perf_counter()
        try:
            verdict, reason, tr, depth = _decide(run, p)
        except (BudgetExhausted, z3.Z3Exception) as exc:
            why = budget_reason(exc)
            if why is None:
                raise
            verdict, reason, tr, depth = Verdict.UNKNOWN, why, None, 0
        else:
            if verdict is Verdict.UNKNOWN:
                reason += note
        inv = run._inv
        lemmas = inv.size() if isinstance(inv, LocalInvariant) else 0
        results.append(
            PropertyResult(
                property=p.name,
                verdict=verdict,
                reason=reason,
                fault_model=ts.fault_model,
                counterexample=run.counterexample(tr, reason)
                if tr is not None
                else None,
                stats=Stats(
                    states=lemmas, seconds=time.perf_counter() - started, depth=depth
                ),
                backend="smt",
            )
        )
    return tuple(results)


def _decide(run: _Run, p: Property) -> tuple[Verdict, str, Trace | None, int]:
    """One property's verdict, reason, trace and BMC depth."""
    if p.name == "compensation_completeness":
        return run.safety(p, completeness_state_bad, completeness_trans_bad)
    if p.name == "eventual_consistency":
        return run.safety(p, consistency_bad)
    if p.name == "termination":
        return run.termination()
    if p.name == "structure":
        return run.unreachable(p)
    return Verdict.UNKNOWN, f"property {p.name!r} is not encoded for z3", None, 0


def check_backend(
    definition: Any,
    ts: TransitionSystem,
    *,
    properties: Sequence[str] | None = None,
    faults: FaultModel = FaultModel(),
    backend: str = "smt",
    max_states: int = DEFAULT_MAX_STATES,
    max_memory: int = DEFAULT_MAX_MEMORY,
    progress: Progress | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    rlimit: int = DEFAULT_RLIMIT,
    deadline: Deadline | None = None,
) -> tuple[PropertyResult, ...]:
    """The entry point ``verifier.check`` routes ``smt`` and ``auto`` to.

    ``auto`` explores explicitly first with a smaller budget (exact state counts
    and counterexamples, fast on small definitions) and asks z3 only for the
    properties the explicit search left unknown. Budgets: ``max_states`` also
    bounds the BMC depth (frames unrolled), ``max_memory`` the process's growth
    and z3's own allocations, ``deadline`` every phase and query.
    """
    with budget(deadline=deadline, max_memory=max_memory):
        return _check_backend(
            definition, ts, properties=properties, faults=faults, backend=backend,
            max_states=max_states, max_memory=max_memory, progress=progress,
            max_depth=max_depth, rlimit=rlimit, deadline=deadline,
        )


def _check_backend(
    definition: Any,
    ts: TransitionSystem,
    *,
    properties: Sequence[str] | None,
    faults: FaultModel,
    backend: str,
    max_states: int,
    max_memory: int,
    progress: Progress | None,
    max_depth: int,
    rlimit: int,
    deadline: Deadline | None,
) -> tuple[PropertyResult, ...]:
    note = depth_note(max_depth, max_states)
    depth = min(max_depth, max_states)
    from saga_models.importers.graph_semantics import ImportedMachine

    # The z3 check of this kind of definition; ``auto`` below is the same
    # for every kind.
    z3_check: Callable[[Sequence[str] | None], tuple[PropertyResult, ...]]
    if isinstance(definition, ImportedMachine):
        from .._imported_ts import ImportedTransitionSystem
        from ._imported import check_imported

        if not isinstance(ts, ImportedTransitionSystem) or ts.im is not definition:
            raise TypeError("an imported machine is checked on its own "
                            "ImportedTransitionSystem")
        imported_ts = ts

        def z3_check(props: Sequence[str] | None) -> tuple[PropertyResult, ...]:
            return check_imported(imported_ts, properties=props,
                                  max_depth=depth, rlimit=rlimit, note=note)
    elif not isinstance(definition, Saga):
        from ._workflow import check_workflow

        def z3_check(props: Sequence[str] | None) -> tuple[PropertyResult, ...]:
            return check_workflow(definition, ts, properties=props,
                                  max_depth=depth, rlimit=rlimit, note=note)
    else:
        def z3_check(props: Sequence[str] | None) -> tuple[PropertyResult, ...]:
            return smt_check(definition, ts, properties=props, faults=faults,
                             max_depth=depth, rlimit=rlimit, note=note)

    if backend != "auto":
        return z3_check(properties)
    # Explore explicitly first (exact and fast on small models) and ask z3
    # only for what that left unknown.
    first = explore(ts, properties=properties,
                    max_states=min(max_states, AUTO_EXPLICIT_STATES),
                    max_memory=max_memory, progress=progress, deadline=deadline)
    todo = [r.property for r in first if r.verdict is Verdict.UNKNOWN]
    if not todo:
        return first
    second = {r.property: r for r in z3_check(todo)}
    return tuple(
        dataclasses.replace(second[r.property], backend="smt", reason=(
            f"{second[r.property].reason} (auto: explicit search stopped: "
            f"{r.reason})")) if r.property in second else r
        for r in first)


def find_counterexample(
    saga: Saga,
    prop: str,
    *,
    faults: FaultModel = FaultModel(),
    max_depth: int = DEFAULT_MAX_DEPTH,
    rlimit: int = DEFAULT_RLIMIT,
) -> Counterexample | None:
    """A shortest counterexample to ``prop`` by BMC alone (no proof attempt), or
    None if there is none within ``max_depth`` steps. For the proofs, which
    refute claims with concrete runs of the shared semantics."""
    from .._saga_ts import SagaTransitionSystem

    ts = SagaTransitionSystem(saga, faults)
    p = next(p for p in ts.properties if p.name == prop)
    run = _Run(saga, ts, faults, max_depth, rlimit)
    bads: dict[str, tuple[StateBad, TransBad]] = {
        "compensation_completeness": (completeness_state_bad, completeness_trans_bad),
        "eventual_consistency": (consistency_bad, no_trans_bad),
        "termination": (deadlock_bad, no_trans_bad),
    }
    state_bad, trans_bad = bads[prop]
    out = bmc(
        run.enc,
        state_bad=state_bad,
        trans_bad=trans_bad,
        max_depth=max_depth,
        rlimit=rlimit,
    )
    if out.trace is None:
        return None
    return run.counterexample(out.trace, run._message(p, out.trace))


def reach(
    saga: Saga,
    goal: Callable[[Encoding, Any], Any],
    *,
    faults: FaultModel = FaultModel(),
    max_depth: int = DEFAULT_MAX_DEPTH,
    rlimit: int = DEFAULT_RLIMIT,
    message: str = "",
) -> Counterexample | None:
    """A shortest run of ``saga`` to a state satisfying ``goal`` (a z3 predicate
    over an encoded frame), or None within ``max_depth`` steps."""
    from .._saga_ts import SagaTransitionSystem

    ts = SagaTransitionSystem(saga, faults)
    run = _Run(saga, ts, faults, max_depth, rlimit)
    out = bmc(run.enc, state_bad=goal, max_depth=max_depth, rlimit=rlimit)
    if out.trace is None:
        return None
    return run.counterexample(out.trace, message)
