"""Termination of event workflows by a ranking function that z3 synthesises
and checks.

A linear rank over features of a state (each bus slot's fresh and repeated
copies, or each fifo channel's copies of each event; the duplicate budget;
timers' fired flags; counters; one indicator per service state) is found by
counterexample-guided synthesis: z3 picks integer weights that decrease on
every sample transition, then looks for a transition from a state satisfying
the invariant (the range lemmas and Houdini's) on which the rank does not
decrease; that transition becomes a new sample, until none exists (proved) or
no weights fit the samples (no linear rank over these features: the caller
falls back to bounded search).

Every feature is bounded on invariant states, so a rank that drops by at least
one on every step cannot drop forever: every execution ends, whatever the
scheduler does (stronger than termination under fairness).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import z3

from saga_models.workflow.semantics import DUPS, HEADER

from ._workflow_encode import Frame, WorkflowEncoding
from ._z3 import new_solver

MAX_ROUNDS = 40
"""Synthesis rounds before giving up (each adds one sample transition)."""
WEIGHT_BOUND = 64
"""Weights are integers in [-WEIGHT_BOUND, WEIGHT_BOUND]."""

Feature = Callable[[Frame], z3.ArithRef]


@dataclass(frozen=True, slots=True)
class RankResult:
    """Whether a ranking function was found, and which."""

    proved: bool
    detail: str


def features(enc: WorkflowEncoding) -> list[tuple[str, Feature]]:
    """The integer features a rank is a weighted sum of."""
    t = enc.t
    b = t.bus_base
    out: list[tuple[str, Feature]] = [("duplicates left",
                                       lambda s: s[DUPS])]
    for i, svc in enumerate(t.services):
        pos = HEADER + 2 * i
        out.append((f"{svc} timer fired", lambda s, pos=pos: s[pos + 1]))  # type: ignore[misc]
        for q, qname in enumerate(t.state_names[i]):
            out.append((f"[{svc}={qname}]",
                        lambda s, pos=pos, q=q: z3.If(s[pos] == q, 1, 0)))  # type: ignore[misc]
    for ci, c in enumerate(t.counters):
        out.append((c, lambda s, j=t.counter_base + ci: s[j]))  # type: ignore[misc]
    if t.fifo:
        cap = t.capacity
        for ch, (snd, r) in enumerate(t.channels):
            base = b + ch * cap
            for e in enc._channel_events(snd, r):
                name = f"#{t.events[e]} on channel {ch}"
                out.append((name, lambda s, base=base, e=e: z3.Sum(*[  # type: ignore[misc]
                    z3.If(s[base + q] == 2 * e + 1, 1, 0) for q in range(cap)])))
                out.append((name + " (repeat)",
                            lambda s, base=base, e=e: z3.If(  # type: ignore[misc]
                                s[base] == 2 * e + 2, 1, 0)))
    else:
        for k, (si, ev) in enumerate(t.slots):
            name = f"#{t.events[ev]} for {t.services[si]}"
            out.append((name, lambda s, j=b + 2 * k: s[j]))  # type: ignore[misc]
            out.append((name + " (repeat)", lambda s, j=b + 2 * k + 1: s[j]))  # type: ignore[misc]
    return out


def synthesise(enc: WorkflowEncoding,
               invariant: Callable[[Frame], list[z3.BoolRef]], *,
               rlimit: int,
               samples: Sequence[tuple[tuple[int, ...], tuple[int, ...]]] = ()
               ) -> RankResult:
    """A linear rank that every step lowers, checked by z3 on every invariant
    state; or why none was found.

    ``samples`` are transitions of the shared semantics the rank must lower
    from the start (they save synthesis rounds; a reachable cycle among them
    ends the search at once).
    """
    feats = features(enc)
    weights = [z3.Int(f"w{m}") for m in range(len(feats))]
    synth = new_solver(rlimit=rlimit)
    synth.add(*[z3.And(w >= -WEIGHT_BOUND, w <= WEIGHT_BOUND) for w in weights])
    rows: set[tuple[int, ...]] = set()
    for a, b in samples:
        fa = _concrete(feats, a)
        fb = _concrete(feats, b)
        rows.add(tuple(x - y for x, y in zip(fa, fb, strict=True)))
    for d in rows:
        synth.add(_decreases(weights, d))
    check = new_solver(rlimit=rlimit)
    s, s2, c = enc.frame("r0"), enc.frame("r1"), z3.Int("rc")
    check.add(enc.transition(s, c, s2), *invariant(s))
    phi = [f(s) for _, f in feats]
    phi2 = [f(s2) for _, f in feats]
    for rounds in range(1, MAX_ROUNDS + 1):
        res = synth.check()
        if res == z3.unsat:
            return RankResult(False, "no linear ranking function over bus, "
                              "state and counter features decreases on every "
                              f"step (after {rounds - 1} sample transitions)")
        if res != z3.sat:
            return RankResult(False, f"z3 gave up synthesising a rank: "
                              f"{synth.reason_unknown()}")
        m = synth.solver.model()
        w = [m.eval(x, model_completion=True).as_long() for x in weights]
        rank = z3.Sum(*[wi * p for wi, p in zip(w, phi, strict=True) if wi])
        rank2 = z3.Sum(*[wi * p for wi, p in zip(w, phi2, strict=True) if wi])
        check.solver.push()
        check.add(rank - rank2 < 1)
        res = check.check()
        if res == z3.unsat:
            check.solver.pop()
            terms = " + ".join(f"{wi}*{name}" for wi, (name, _) in
                               zip(w, feats, strict=True) if wi)
            return RankResult(True, f"rank {terms or '0'} drops on every step "
                              f"(z3-checked on every invariant state, "
                              f"{rounds} synthesis rounds)")
        if res != z3.sat:
            why = check.reason_unknown()
            check.solver.pop()
            return RankResult(False, f"z3 gave up checking a rank: {why}")
        cm = check.solver.model()
        d = tuple(cm.eval(p - p2, model_completion=True).as_long()
                  for p, p2 in zip(phi, phi2, strict=True))
        check.solver.pop()
        synth.add(_decreases(weights, d))
    return RankResult(False, f"no ranking function within {MAX_ROUNDS} synthesis "
                      "rounds")


def _decreases(weights: list[z3.ArithRef], d: tuple[int, ...]) -> z3.BoolRef:
    """The weighted feature change ``d`` (before minus after) is at least 1."""
    if not any(d):
        return z3.BoolVal(False)
    return z3.Sum(*[w * x for w, x in zip(weights, d, strict=True) if x]) >= 1


def _concrete(feats: list[tuple[str, Feature]], st: tuple[int, ...]) -> list[int]:
    frame = [z3.IntVal(v) for v in st]
    return [z3.simplify(f(frame)).as_long() for _, f in feats]
