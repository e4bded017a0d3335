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

    Replies become deliveries with the matching outcome (an unknown reply that
    took effect becomes :attr:`Outcome.UNKNOWN_AFTER_EFFECT`, an ok reply
    after a duplicate :attr:`Outcome.DUPLICATE`), crashes become
    :class:`Crash`; the orchestrator's own sends need no decision.
    """
    ops: list[Op] = [Start()]
    duplicated: set[str] = set()
    for st in cex.steps[1:]:
        e = st.event or {}
        kind, step = e.get("kind"), str(e.get("step"))
        outcome, delta = e.get("outcome"), int(str(e.get("effect_delta") or 0))
        if kind == "duplicate":
            duplicated.add(step)
        elif kind == "crash":
            ops.append(Crash())
        elif kind == "reply":
            if outcome == "ok":
                out = Outcome.DUPLICATE if step in duplicated else Outcome.OK
            elif outcome == "unknown":
                out = Outcome.UNKNOWN_AFTER_EFFECT if delta else Outcome.UNKNOWN
            else:
                out = Outcome.FAIL
            duplicated.discard(step)
            ops.append(Deliver(saga=0, step=step, outcome=out))
        elif kind == "comp_reply":
            ops.append(Deliver(saga=0, step=step, kind="compensation",
                               outcome=Outcome.OK if outcome == "ok"
                               else Outcome.FAIL))
    return FaultSchedule(ops=tuple(ops))
