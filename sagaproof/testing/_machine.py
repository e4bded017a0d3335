"""Generated Hypothesis stateful tests of a user's participants.

:func:`saga_state_machine` turns a saga and a :class:`Binding` into a
``RuleBasedStateMachine`` whose rules are the faults of DESIGN.md (answer the
next call with an outcome, crash and recover, duplicate a delivery, let time
pass) and whose invariants are the verifier's properties, evaluated on what
the runtime logged and on what the participants recorded. Hypothesis shrinks a
failing run to a short schedule; the failure text prints it as a story, as a
runnable script and as a model trace.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis import target
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from saga_models import FaultModel, Saga
from saga_models import semantics as sem

from ._bridge import off_running_loop
from ._harness import Binding, Harness, ScheduleFailure, ScheduleReport
from ._schedule import Outcome

F = TypeVar("F", bound=Callable[..., Any])

_COLLECTED: dict[str, tuple[Saga, FaultModel, set[str]]] = {}


def collected() -> dict[str, tuple[Saga, FaultModel, set[str]]]:
    """Coverage witnesses gathered by generated tests in this process, by
    definition content hash (the pytest plugin saves them)."""
    return _COLLECTED


def _guarded(fn: F) -> F:
    """Mark the machine failed when a rule raises, so teardown does not
    settle on top of the failure and replace its message."""

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except BaseException:
            self.failed = True
            raise

    return wrapper  # type: ignore[return-value]


def saga_state_machine(
    saga: Saga,
    binding: Binding,
    *,
    faults: FaultModel = sem.ALL_FAULTS,
    max_sagas: int = 2,
    definition_ref: str = "",
) -> type[RuleBasedStateMachine]:
    """A Hypothesis state machine that tests ``binding``'s participants.

    Args:
        saga: The definition the participants implement.
        binding: The participants (a factory) and how to observe them.
        faults: Which faults the rules inject (the same knobs as ``check``).
        max_sagas: Most instances started in one test case (two let one
            instance's compensation interfere with the other's effects).
        definition_ref: Path of the definition, printed in replay scripts.
    """
    outcomes = list(Outcome)

    class SagaParticipantsMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.failed = False
            self.harness = Harness(saga, binding, faults=faults,
                                   definition_ref=definition_ref)

        @initialize()
        @_guarded
        def start_first_saga(self) -> None:
            self.harness.start()

        @precondition(lambda self: len(self.harness.saga_ids) < max_sagas)
        @rule()
        @_guarded
        def start_saga(self) -> None:
            self.harness.start()

        @precondition(lambda self: bool(self.harness.pending))
        @rule(pick=st.integers(0, 7), outcome=st.sampled_from(outcomes))
        @_guarded
        def deliver(self, pick: int, outcome: Outcome) -> None:
            h = self.harness
            call = h.pending[pick % len(h.pending)]
            if not h.allowed(call, outcome):
                outcome = Outcome.OK  # outside the fault model: plain delivery
            h.deliver(call, outcome)

        @precondition(lambda self: self.harness.crashes < faults.crashes)
        @rule()
        @_guarded
        def crash_and_recover(self) -> None:
            self.harness.crash()

        @precondition(lambda self: self.harness.has_timer())
        @rule()
        @_guarded
        def advance_clock(self) -> None:
            self.harness.advance()

        @precondition(lambda self: not self.harness.pending)
        @rule()
        @_guarded
        def run_without_faults(self) -> None:
            # Enabled whenever ``deliver`` is not, so some rule always is.
            self.harness.settle(record=True)

        @invariant()
        @_guarded
        def properties_hold(self) -> None:
            _raise(self.harness.report())

        def teardown(self) -> None:
            h = self.harness
            try:
                if not self.failed:
                    h.settle()
                    report = h.report(final=True)
                    entry = _COLLECTED.setdefault(
                        saga.content_hash, (saga, faults, set()))
                    reached = h.reached()
                    entry[2].update(reached)
                    # Steer generation towards schedules that reach more of
                    # the definition (targeted property-based testing).
                    target(float(len(reached)), label="coverage witnesses")
                    _raise(report)
            finally:
                h.close()

    SagaParticipantsMachine.__name__ = f"{_ident(saga.name)}ParticipantsMachine"
    SagaParticipantsMachine.__qualname__ = SagaParticipantsMachine.__name__
    return SagaParticipantsMachine


def _raise(report: ScheduleReport) -> None:
    # One raise site for invariants and teardown: Hypothesis tells distinct
    # bugs apart by where they are raised, and these are one kind of failure.
    if not report.ok:
        raise ScheduleFailure(report.text())


def _ident(name: str) -> str:
    return "".join(part.capitalize() for part in
                   "".join(c if c.isalnum() else "_" for c in name).split("_"))


@off_running_loop
def check_participants(
    saga: Saga,
    binding: Binding,
    *,
    faults: FaultModel = sem.ALL_FAULTS,
    max_sagas: int = 2,
    definition_ref: str = "",
    settings: Settings | None = None,
) -> None:
    """Run the generated stateful test now; raise the shrunk failure.

    >>> from saga_models import SagaBuilder
    >>> saga = (SagaBuilder("pay").step("charge", participant="bank",
    ...         action="charge", compensation="refund").build())
    >>> ledger: dict[str, int] = {}
    >>> def bank() -> dict[str, object]:
    ...     ledger.clear()
    ...     return {"bank": {
    ...         "charge": lambda ctx: ledger.__setitem__(ctx.saga_id, 1),
    ...         "refund": lambda ctx: ledger.pop(ctx.saga_id, None)}}
    >>> check_participants(saga, Binding(participants=bank,
    ...     effects=lambda world, sid: {"charge": ledger.get(sid, 0)}),
    ...     settings=Settings(max_examples=5, database=None))
    """
    machine = saga_state_machine(saga, binding, faults=faults, max_sagas=max_sagas,
                                 definition_ref=definition_ref)
    run_state_machine_as_test(machine, settings=settings)
