"""The version file countermeasure: it removes lost updates, for every number
of sagas, when the version is read with the value.

Claim (Garcia-Molina and Salem; Richardson's "version file"): a step that
writes a record from a value read earlier, and checks that the record's
version has not moved since (failing otherwise), makes no lost update.

Refuted as stated: the check protects only what was read together with the
version. A saga that reads the value in one step and the version in a later
one passes its check after another saga wrote in between, and overwrites that
write (a run of the composition of the shared semantics, two instances, found
by the explicit checker).

Corrected and proved for any number ``K`` of instances, any write function and
any other writers: when every write of the record (an instance's checked
write, any other saga's write, any compensation) moves its version on, and a
writer reads the value and the version in one effect, then

    for every instance i that has read: ver[i] <= V, and ver[i] = V implies
    seen[i] = T

is inductive (z3, quantified over the instances), so a write whose check
passes is computed from the record's current value: no lost update.
"""

from __future__ import annotations

import z3

from ._induction import inductive
from ._result import ProofResult, Status

CLAIM = ("a step that writes a record from a value it read and checks that "
         "the record's version has not moved makes no lost update (the "
         "version file countermeasure)")

VERSION_READ_LATE = """\
saga: version_read_late
instances: 2
resources: {order: {kind: record, fields: {total: 0}}}
steps:
  - name: load
    participant: orders
    compensation: forget
    effect: {read: {seen: order.total}}
  - name: peek
    participant: orders
    compensation: forget_peek
    effect: {read: {v: order.version}}
  - name: add_item
    participant: orders
    compensation: remove_item
    effect: {update: {order.total: "seen + 1"}, version_check: {order: v}}
    compensation_effect: {update: {order.total: "order.total - 1"}}
  - {name: charge, participant: payments, kind: pivot}
"""


def late_version_counterexample() -> list[str]:
    """A run of two instances (shared semantics, explicit checker) where a
    version read after the value lets a lost update through; the trace."""
    from saga_models import loads
    from verifier import Verdict, check

    res = check(loads(VERSION_READ_LATE), faults="fail",
                properties=["version_check:add_item"])
    (r,) = res.results
    if r.verdict is not Verdict.VIOLATED or r.counterexample is None:
        return []
    return [r.reason] + [f"{s.action} {s.state.get('resources')}"
                         for s in r.counterexample.steps[1:]]


def _version_file(*, together: bool) -> list[str]:
    """Inductiveness of the invariant over a symbolic number ``K`` of
    instances; ``together=False`` reads the version in a separate step."""
    ints = z3.IntSort()
    seen, seen2 = z3.Array("seen", ints, ints), z3.Array("seen2", ints, ints)
    ver, ver2 = z3.Array("ver", ints, ints), z3.Array("ver2", ints, ints)
    has = z3.Array("has", ints, z3.BoolSort())
    has2 = z3.Array("has2", ints, z3.BoolSort())
    kk, t, t2, v, v2, i, j, new = z3.Ints("K T T2 V V2 i j new")
    write = z3.Function("write", ints, ints)  # any write from the value read

    def same_locals() -> z3.BoolRef:
        return z3.And(seen2 == seen, ver2 == ver, has2 == has)

    if together:
        read = z3.And(t2 == t, v2 == v, seen2 == z3.Store(seen, i, t),
                      ver2 == z3.Store(ver, i, v), has2 == z3.Store(has, i, True))
        steps = [read]
    else:
        # The value, then (another step, any time later) the version.
        read_value = z3.And(t2 == t, v2 == v, seen2 == z3.Store(seen, i, t),
                            ver2 == ver, has2 == z3.Store(has, i, True))
        read_version = z3.And(t2 == t, v2 == v, seen2 == seen, has2 == has,
                              ver2 == z3.Store(ver, i, v))
        steps = [read_value, read_version]
    checked_write = z3.And(has[i], ver[i] == v, t2 == write(seen[i]),
                           v2 == v + 1, seen2 == seen, ver2 == ver,
                           has2 == z3.Store(has, i, False))
    # Any other write of the record (another saga, a compensation): any new
    # value, and the version moves on.
    other_write = z3.And(t2 == new, v2 == v + 1, same_locals())
    trans = z3.And(i >= 0, i < kk, z3.Or(*steps, checked_write, other_write))

    def inv_of(sn: z3.ArrayRef, vr: z3.ArrayRef, hs: z3.ArrayRef,
               tt: z3.ArithRef, vv: z3.ArithRef) -> z3.BoolRef:
        return z3.ForAll([j], z3.Implies(
            z3.And(j >= 0, j < kk, hs[j]),
            z3.And(vr[j] <= vv, z3.Implies(vr[j] == vv, sn[j] == tt))))

    inv = inv_of(seen, ver, has, t, v)
    if not together:
        # The version a step has not read yet is any earlier one.
        inv = z3.And(inv, z3.ForAll([j], z3.Implies(
            z3.And(j >= 0, j < kk), ver[j] <= v)))
        inv_next = z3.And(inv_of(seen2, ver2, has2, t2, v2), z3.ForAll(
            [j], z3.Implies(z3.And(j >= 0, j < kk), ver2[j] <= v2)))
    else:
        inv_next = inv_of(seen2, ver2, has2, t2, v2)
    no_lost_update = z3.ForAll([j], z3.Implies(
        z3.And(j >= 0, j < kk, has[j], ver[j] == v), seen[j] == t))
    return inductive(
        init=z3.And(v == 0, has == z3.K(ints, z3.BoolVal(False)),
                    ver == z3.K(ints, z3.IntVal(-1))),
        trans=trans, inv=inv, inv_next=inv_next, goal=no_lost_update,
        axioms=[kk >= 1])


def run() -> ProofResult:
    """Refute the claim with the late-version run; prove it corrected (value
    and version read together) for every K."""
    cex = late_version_counterexample()
    proved = _version_file(together=True)
    refuted = _version_file(together=False)
    if not cex or proved or not any("consecution" in p for p in refuted):
        return ProofResult(
            name="version_file", claim=CLAIM, status=Status.UNKNOWN,
            statement="", assumptions=(),
            detail="; ".join(proved) or "the late-version run was not found")
    return ProofResult(
        name="version_file",
        claim=CLAIM,
        status=Status.REFUTED_AND_CORRECTED,
        statement=(
            "for any number K >= 1 of instances, any write function and any "
            "other writes of the record: if every write moves the record's "
            "version on and a writer reads the value and the version in one "
            "effect, then every write whose version check passes is computed "
            "from the record's current value (no lost update)"),
        assumptions=(
            "every write of the record, compensations included, moves its "
            "version on (the model bumps it with every write)",
            "the value and the version are read in one effect (one step)",
            "the check and the write are one effect at the participant "
            "(atomic, as the model applies an effect)",
        ),
        counterexample=cex,
        witness=("inductive invariant: forall i read: ver[i] <= V and "
                 "(ver[i] = V -> seen[i] = T); with the version read in a "
                 "later step consecution fails: " + "; ".join(refuted)[:300]),
    )
