"""Ready-made participants that record their effects, and counterexample
replay: a model counterexample becomes a fault schedule for the runtime."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from runtime import StepContext
from saga_models import Saga
from verifier import Counterexample

from ._harness import Binding
from ._schedule import Crash, Deliver, FaultSchedule, Op, Outcome, Start


class RecordingParticipants:
    """In-memory participants for every operation of ``saga``.

    An action takes effect once per idempotency key when its step is declared
    idempotent, and once per delivery otherwise (so a duplicate of a
    non-idempotent step takes effect twice, as the model says); a
    compensation undoes one application and is safe when there is none.
    """

    def __init__(self, saga: Saga) -> None:
        self.saga = saga
        self.applied: Counter[tuple[str, str]] = Counter()
        """Applications minus undos, by (saga id, step)."""
        self._keys: set[str] = set()

    def __getattr__(self, participant: str) -> Mapping[str, Any]:
        if participant.startswith("_"):
            raise AttributeError(participant)
        ops: dict[str, Any] = {}
        for step in self.saga.steps:
            if step.participant != participant:
                continue
            ops[step.action] = self._act
            if step.compensation:
                ops[step.compensation] = self._undo
        return ops

    def _act(self, ctx: StepContext) -> dict[str, str]:
        step = self.saga.step(ctx.step)
        if step.idempotent and ctx.idempotency_key in self._keys:
            return {"ref": ctx.idempotency_key}
        self._keys.add(ctx.idempotency_key)
        self.applied[(ctx.saga_id, ctx.step)] += 1
        return {"ref": ctx.idempotency_key}

    def _undo(self, ctx: StepContext) -> None:
        if self.applied[(ctx.saga_id, ctx.step)] > 0:
            self.applied[(ctx.saga_id, ctx.step)] -= 1

    def effects(self, saga_id: str) -> dict[str, int]:
        """Each step's effect count for one instance."""
        return {s.name: self.applied[(saga_id, s.name)] for s in self.saga.steps}


def recording_binding(saga: Saga) -> Binding:
    """A :class:`Binding` of :class:`RecordingParticipants` for ``saga``."""
    return Binding(participants=lambda: RecordingParticipants(saga),
                   effects=lambda world, sid: world.effects(sid))


def schedule_from_counterexample(cex: Counterexample) -> FaultSchedule:
    """The fault schedule that makes the runtime follow ``cex`` (one instance).

    Replies become deliveries whose outcome reproduces the reply's effect
    count exactly: an unknown reply that took effect becomes
    :attr:`Outcome.UNKNOWN_AFTER_EFFECT`, an ok reply that took effect twice
    after a duplicate :attr:`Outcome.DUPLICATE`. A crash while a step is in
    flight whose reply then shows one effect more than the re-sent command
    can explain (``charge: ok (took effect twice)`` after a recovery) becomes
    :attr:`Outcome.CRASH_AFTER_EFFECT` on that step: the participant acts,
    the orchestrator dies before logging it, recovery re-sends. Other crashes
    become :class:`Crash`; the orchestrator's own sends need no decision.

    One crash can stand for the first effect of one in-flight step only; a
    counterexample in which one crash leaves two steps each applied twice is
    replayed with the first of them exact and the other with one effect.
    """
    ops: list[Op] = [Start()]
    duplicated: set[str] = set()
    in_flight: set[str] = set()
    # A Crash op still free to become CRASH_AFTER_EFFECT of one step that was
    # in flight when it happened: op index -> those steps.
    crashes: dict[int, set[str]] = {}
    for st in cex.steps[1:]:
        e = st.event or {}
        kind, step = e.get("kind"), str(e.get("step"))
        outcome, delta = e.get("outcome"), int(str(e.get("effect_delta") or 0))
        if kind == "dispatch":
            in_flight.add(step)
        elif kind == "duplicate":
            duplicated.add(step)
        elif kind == "crash":
            crashes[len(ops)] = set(in_flight)
            ops.append(Crash())
        elif kind == "reply":
            in_flight.discard(step)
            # Most effects the final delivery alone can have.
            cap = {"ok": 2 if step in duplicated else 1, "unknown": 1}.get(
                str(outcome), 0)
            if delta > cap:
                at = next((i for i, steps in sorted(crashes.items())
                           if step in steps), None)
                if at is not None:
                    del crashes[at]
                    ops[at] = Deliver(saga=0, step=step,
                                      outcome=Outcome.CRASH_AFTER_EFFECT)
                    delta -= 1
            for steps in crashes.values():
                steps.discard(step)
            if outcome == "ok":
                out = Outcome.DUPLICATE if delta >= 2 else Outcome.OK
            elif outcome == "unknown":
                out = Outcome.UNKNOWN_AFTER_EFFECT if delta else Outcome.UNKNOWN
            else:
                out = Outcome.FAIL
            duplicated.discard(step)
            ops.append(Deliver(saga=0, step=step, outcome=out))
        elif kind == "comp_reply":
            comp = {"ok": Outcome.OK, "unknown": Outcome.UNKNOWN}.get(
                str(outcome), Outcome.FAIL)
            ops.append(Deliver(saga=0, step=step, kind="compensation",
                               outcome=comp))
    return FaultSchedule(ops=tuple(ops))
