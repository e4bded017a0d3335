"""The one place sagaproof configures z3: seeds, resource limits, labels.

Every solver the backend and the proofs use comes from :func:`new_solver`, so
runs are reproducible (fixed seeds, no wall-clock timeouts: a resource limit
``rlimit`` counts z3's own work, so the same query gives the same answer on a
slow CI machine) and every constraint can carry a label that an unsat core or a
counterexample to induction is reported in.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field

import z3

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
        """Check under ``assumptions`` (labels and extra literals)."""
        return self.solver.check(*list(assumptions))

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
