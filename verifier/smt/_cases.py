"""Case-split transition queries: one z3 query per step's events.

The monolithic transition relation (:meth:`Encoding.transition`) selects one of
about nine alternatives per step through a choice variable, and every field of
its post-state is an ``If`` over the alternatives that write it. A query over
it ("can some step's lemma break?") grows with the square of the number of
steps and stops closing at about fifty. Here the alternatives are grouped by
the step they name (plus crash and recovery): within a group the post-state
differs from the pre-state only in that step's fields, a few header fields and
the phase (:meth:`Encoding.posts` keeps every other term identical), so

* a step the group does not touch keeps its projection unless the phase moves;
* when the phase moves, the untouched steps' projections are the pre-state's
  fields under the new phase, the same terms for every group, so their
  "left the set" literals are built once and shared.

Each query is small and the answers compose: the union of the group queries
is exactly the monolithic one, so soundness is unchanged.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import z3

from saga_models.semantics import CS, HEADER, PHASE, ST, WIDTH, EventKind

from ._encode import Encoding, Frame
from ._z3 import Labelled


@dataclass(frozen=True, slots=True)
class Group:
    """The alternatives that name one step (or crash, or recovery)."""

    name: str
    """The step's name, ``crash`` or ``recover``."""
    step: int
    """The step's index, or -1."""
    alts: tuple[int, ...]
    """Indices into :attr:`Encoding.alternatives`."""
    choice: z3.BitVecRef
    """Which of :attr:`alts` is taken (its value is a global alternative index)."""
    post: Frame
    """The post-state, selected from the group's alternatives by :attr:`choice`."""
    written: frozenset[int]
    """Frame indices other than the phase that some alternative writes."""

    def pick(self, enc: Encoding, s: Frame) -> z3.BoolRef:
        """One of the group's alternatives is chosen and enabled in ``s``."""
        return z3.Or(*[z3.And(self.choice == a, enc.guard(s, a)) for a in self.alts])


@dataclass(slots=True)
class Shared:
    """One frame, its groups and their enabling terms, built once per encoding
    and used by every case-split query on it (the invariant's closure, each
    property's induction, the ranking check): z3 terms are not tied to a
    solver, and building them is a third of the time at 100 steps."""

    frame: Frame
    groups: list[Group]
    picks: list[z3.BoolRef]
    combined_gives_up: bool = False
    """Set when z3 gave up on an all-cases query: later ones go per case."""
    _keep: object = field(default=None, repr=False)


_SHARED: OrderedDict[int, Shared] = OrderedDict()


def shared(enc: Encoding) -> Shared:
    """The :class:`Shared` terms of ``enc`` (a few encodings are kept)."""
    hit = _SHARED.get(id(enc))
    if hit is not None and hit._keep is enc:
        return hit
    s = enc.frame("s")
    gs = groups(enc, s, "t")
    out = Shared(frame=s, groups=gs, picks=[g.pick(enc, s) for g in gs], _keep=enc)
    _SHARED[id(enc)] = out
    while len(_SHARED) > 4:
        _SHARED.popitem(last=False)
    return out


def groups(enc: Encoding, s: Frame, tag: str) -> list[Group]:
    """The alternatives of ``enc`` grouped by the step they name, with their
    post-states from ``s``."""
    posts = enc.posts(s)
    by: dict[tuple[str, int], list[int]] = {}
    for a, e in enumerate(enc.alternatives):
        if e.kind is EventKind.CRASH:
            key = ("crash", -1)
        elif e.kind is EventKind.RECOVER:
            key = ("recover", -1)
        else:
            key = (enc.saga.steps[e.step].name, e.step)
        by.setdefault(key, []).append(a)
    out = []
    for (name, step), alts in by.items():
        c = enc.choice(f"{tag}.{name}.event")
        post: Frame = []
        written: set[int] = set()
        for idx in range(enc.width):
            vals = [posts[a][idx] for a in alts]
            if all(v is s[idx] for v in vals):
                post.append(s[idx])
                continue
            if idx != PHASE:
                written.add(idx)
            term = vals[-1]
            for a, v in zip(reversed(alts[:-1]), reversed(vals[:-1]), strict=True):
                term = z3.If(c == a, v, term)
            post.append(term)
        out.append(
            Group(
                name=name,
                step=step,
                alts=tuple(alts),
                choice=c,
                post=post,
                written=frozenset(written),
            )
        )
    return out


def projection_indices(enc: Encoding, i: int, header: tuple[int, ...]) -> list[int]:
    """Frame indices step ``i``'s lemma projection reads (see ``_invariant``);
    negative header markers stand for the dependencies' status fields."""
    out = [h for h in header if h >= 0]
    b = HEADER + WIDTH * i
    out += range(b, b + WIDTH)
    if any(h < 0 for h in header):
        for d in enc.saga.deps(i):
            out += [HEADER + WIDTH * d + ST, HEADER + WIDTH * d + CS]
    return out


def touched(
    enc: Encoding, g: Group, header: tuple[int, ...]
) -> tuple[list[int], list[int]]:
    """Steps whose projection the group can change other than through the
    phase, and the rest."""
    hit: list[int] = []
    rest: list[int] = []
    for j in range(enc.n):
        idx = projection_indices(enc, j, header)
        (hit if any(k in g.written for k in idx if k != PHASE) else rest).append(j)
    return hit, rest


COMBINED_SHARE = 8
"""The all-cases-at-once query gets ``rlimit // COMBINED_SHARE``: it usually
settles everything in one call, and when it does not, little is lost before
the per-case queries take over."""


def refute(
    slv: Labelled,
    base: list[z3.BoolRef],
    cases: list[z3.BoolRef],
    *,
    tag: str,
    memo: Shared | None = None,
) -> tuple[str, int, z3.ModelRef | None]:
    """Show every case unsatisfiable under ``base``, or find one that is not.

    ``cases`` are literals the caller has made imply their formulas. First one
    query over their disjunction (cheap when the answer is unsat, as it is for a
    proof); if z3 gives up on it, one query per case.

    Returns:
        ``("unsat", -1, None)``, ``("sat", k, model)`` with case ``k`` true
        in ``model``, or ``("unknown", -1, None)`` with z3's reason in
        ``slv.reason_unknown()``.
    """
    if not cases:
        return "unsat", -1, None
    if memo is not None and memo.combined_gives_up:
        return _one_by_one(slv, base, cases)
    any_ = z3.Bool(f"{tag}.any#{len(slv.labels)}")
    slv.labels[str(any_)] = any_
    slv.add(z3.Implies(any_, z3.Or(*cases)))
    slv.solver.set("rlimit", max(1, slv.rlimit // COMBINED_SHARE))
    try:
        res = slv.check([*base, any_])
    finally:
        slv.solver.set("rlimit", slv.rlimit)
    if res == z3.unsat:
        return "unsat", -1, None
    if res == z3.sat:
        m = slv.solver.model()
        for k, lit in enumerate(cases):
            if z3.is_true(m.eval(lit, model_completion=True)):
                return "sat", k, m
    elif memo is not None:
        memo.combined_gives_up = True
    return _one_by_one(slv, base, cases)


def _one_by_one(
    slv: Labelled, base: list[z3.BoolRef], cases: list[z3.BoolRef]
) -> tuple[str, int, z3.ModelRef | None]:
    for k, lit in enumerate(cases):
        res = slv.check([*base, lit])
        if res == z3.sat:
            return "sat", k, slv.solver.model()
        if res != z3.unsat:
            return "unknown", -1, None
    return "unsat", -1, None
