"""The one place sagaproof configures z3: seeds, resource limits, labels.

Every solver the backend and the proofs use comes from :func:`new_solver`, so
runs are reproducible (fixed seeds, no wall-clock timeouts: a resource limit
``rlimit`` counts z3's own work, so the same query gives the same answer on a
slow CI machine) and every constraint can carry a label that an unsat core or a
counterexample to induction is reported in.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import z3

from .._budget import BudgetExhausted, Deadline, current_rss

SEED = 0
"""Seed for z3's SAT and SMT random choices (phase caching, restarts)."""

DEFAULT_RLIMIT = 50_000_000
"""Resource units per query: about 10 to 30 seconds of z3 work, machine-independent."""


@functools.cache
def _configure() -> None:
    """Global seeds, once per process (z3's global parameters)."""
    z3.set_param("smt.random_seed", SEED)
    z3.set_param("sat.random_seed", SEED)
    z3.set_param("smt.arith.random_initial_value", False)


_MB = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class SolverBudget:
    """The budgets every query of one check shares."""

    deadline: Deadline | None = None
    """Overall wall-clock deadline, or None."""
    max_memory: int | None = None
    """Bytes the check may add to the process (RSS growth, as the explicit
    checker counts it), or None."""
    rss0: int = 0
    """RSS when the check started."""

    def before_query(self) -> int | None:
        """Raise if a budget already ran out; else the query's timeout in ms."""
        if self.max_memory is not None and current_rss() - self.rss0 > self.max_memory:
            raise BudgetExhausted(
                f"memory budget reached: more than {self.max_memory:,} bytes "
                f"(--max-memory) between z3 queries"
            )
        if self.deadline is None:
            return None
        left = self.deadline.remaining()
        if left <= 0:
            raise BudgetExhausted(self.deadline.reason("between z3 queries"))
        return max(1, int(left * 1000))

    def after_unknown(self, why: str) -> None:
        """Raise if z3 gave up because of a budget (not for other reasons)."""
        if "memory" in why and self.max_memory is not None:
            raise BudgetExhausted(
                f"memory budget reached: z3 ran out of memory (--max-memory "
                f"{self.max_memory:,} bytes) in a query"
            )
        if self.deadline is not None and (
            self.deadline.expired() or "timeout" in why or "canceled" in why
        ):
            raise BudgetExhausted(self.deadline.reason("in a z3 query"))


_BUDGET: contextvars.ContextVar[SolverBudget | None] = contextvars.ContextVar(
    "sagaproof_z3_budget", default=None
)


@contextlib.contextmanager
def budget(
    *, deadline: Deadline | None = None, max_memory: int | None = None
) -> Iterator[SolverBudget]:
    """Every solver ``check`` inside the block honours these budgets.

    z3's memory limit is a process-wide parameter, so it is set for the block
    and cleared after it (z3 refuses all work while over it).
    """
    b = SolverBudget(deadline=deadline, max_memory=max_memory, rss0=current_rss())
    token = _BUDGET.set(b)
    if max_memory is not None:
        # The context must exist before the limit: z3 crashes (not raises) when
        # it cannot allocate its main context. Then its own allocations are
        # counted absolutely: allow what it holds now plus the budget.
        _configure()
        z3.main_ctx()
        held = int(z3.Z3_get_estimated_alloc_size())
        z3.set_param("memory_max_size", max(1, (held + max_memory) // _MB + 1))
    try:
        yield b
    finally:
        _BUDGET.reset(token)
        if max_memory is not None:
            z3.set_param("memory_max_size", 0)


def budget_reason(exc: Exception) -> str | None:
    """The unknown reason when ``exc`` is a budget running out, else None.

    z3 raises ``out of memory`` on any call once over ``memory_max_size``, not
    only on ``check``; that is the memory budget too.
    """
    if isinstance(exc, BudgetExhausted):
        return exc.reason
    if isinstance(exc, z3.Z3Exception) and "memory" in str(exc):
        return "memory budget reached: z3 ran out of memory (--max-memory)"
    return None


def depth_note(max_depth: int, max_states: int) -> str:
    """What an unknown verdict adds when ``--max-states`` cut the BMC depth."""
    if max_states < max_depth:
        return f"; BMC depth limited to {max_states} frames by --max-states"
    return ""


@dataclass(slots=True)
class Labelled:
    """A solver whose constraints are tracked by label.

    ``track`` adds a constraint under a label (its Boolean is passed as an
    assumption, so labels can be switched per query and appear in unsat cores).
    ``add`` adds an untracked definition (the transition relation's equations,
    which are definitions rather than claims).
    """

    solver: z3.Solver
    rlimit: int
    labels: dict[str, z3.BoolRef] = field(default_factory=dict)

    def add(self, *constraints: z3.BoolRef) -> None:
        """Add untracked constraints (definitions)."""
        self.solver.add(*constraints)

    def track(self, label: str, constraint: z3.BoolRef) -> z3.BoolRef:
        """Add ``constraint`` guarded by a fresh literal named ``label``."""
        lit = z3.Bool(f"@{label}#{len(self.labels)}")
        self.labels[str(lit)] = lit
        self.solver.add(z3.Implies(lit, constraint))
        return lit

    def check(self, assumptions: Iterable[z3.BoolRef] = ()) -> z3.CheckSatResult:
        """Check under ``assumptions`` (labels and extra literals).

        Raises:
            BudgetExhausted: inside :func:`budget`, a budget ran out.
        """
        b = _BUDGET.get()
        if b is None:
            return self.solver.check(*list(assumptions))
        ms = b.before_query()
        if ms is not None:
            self.solver.set("timeout", ms)
        try:
            res = self.solver.check(*list(assumptions))
        except z3.Z3Exception as exc:  # z3 raises, too, when over memory_max_size
            b.after_unknown(str(exc))
            raise
        if res == z3.unknown:
            b.after_unknown(self.reason_unknown())
        return res

    def core_labels(self) -> list[str]:
        """The labels of an unsat core, without the ``#n`` suffix."""
        return sorted(
            {str(c).lstrip("@").split("#")[0] for c in self.solver.unsat_core()}
        )

    def reason_unknown(self) -> str:
        """Why z3 gave up (``max. resource limit exceeded``, ``incomplete``...)."""
        return str(self.solver.reason_unknown())


def new_solver(*, rlimit: int = DEFAULT_RLIMIT, logic: str | None = None) -> Labelled:
    """A solver with fixed seeds and a resource limit.

    Args:
        rlimit: resource units for each ``check`` (z3's ``rlimit``).
        logic: an SMT-LIB logic such as ``QF_LIA``, or None to let z3 choose.
    """
    _configure()
    s = z3.SolverFor(logic) if logic else z3.Solver()
    s.set("random_seed", SEED)
    s.set("rlimit", rlimit)
    s.set("unsat_core", True)
    return Labelled(solver=s, rlimit=rlimit)


def model_int(model: z3.ModelRef, term: z3.ArithRef) -> int:
    """The value of an integer term in ``model`` (0 if z3 left it free)."""
    val = model.eval(term, model_completion=True)
    return int(val.as_long())
