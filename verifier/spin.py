"""Run SPIN on the Promela export of a saga: the independent cross-check.

:func:`spin_check` writes ``saga_models.exporters.to_promela`` to a work
directory, runs ``spin -o2 -a`` (``-o2`` keeps write-only variables such as
the abort trigger in the state vector: sagaproof's state tuple has them, and
SPIN would otherwise hide them and merge states sagaproof keeps apart),
compiles ``pan.c`` with ``-DSAFETY -DNOREDUCE`` (one process, so partial-order
reduction could not reduce anything anyway; the flag keeps the counts
comparable by construction) and runs ``pan -c0``, which
explores the whole state space and goes on past errors, so the stored-state
count is the full reachable count, like sagaproof's. pan prints each kind of
assertion message at least once (it suppresses only a repeat of the message it
printed last), and each assertion is tagged with its property's name, so the
set of violated properties is read off its output.

What is compared (docs/spin.md): ``compensation_completeness`` and
``eventual_consistency`` (safety), and ``deadlock``, the part of
``termination`` that is a safety property. Fair termination is not: SPIN has
weak fairness only.

A run that pan did not finish (search depth or memory too small, a compile
error) is ``unknown`` with the reason, never a pass.
"""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from saga_models import FaultModel, Saga
from saga_models.exporters import to_promela
from saga_models.semantics import ALL_FAULTS

from ._result import Verdict

SPIN_PROPERTIES = ("compensation_completeness", "eventual_consistency", "deadlock")
"""What the SPIN run decides, by the tag each assertion carries."""

_ASSERT = re.compile(r"assertion violated \(*(\w+)(?:==0|!=0)")
_STORED = re.compile(r"^\s*(\d+) states, stored", re.M)
_TRANSITIONS = re.compile(r"^\s*(\d+) transitions", re.M)
_ELAPSED = re.compile(r"pan: elapsed time ([\d.e+]+) seconds")
_INCOMPLETE = (
    "max search depth too small",
    "out of memory",
    "aborting",
    "search not completed",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PanOptions:
    """How the verifier is compiled and run."""

    optimise: str = "-O1"
    """gcc's optimisation flag (``-O0`` compiles fastest, ``-O2`` searches
    fastest)."""
    hash_bits: int = 20
    """pan's ``-w``: the hash table has 2**hash_bits slots."""
    max_depth: int = 1_000_000
    """pan's ``-m``: the deepest DFS stack; a deeper search is ``unknown``."""
    timeout: float = 600.0
    """Seconds each tool may take."""


class SpinUnavailable(RuntimeError):
    """``spin`` or ``gcc`` is not on the PATH."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpinResult:
    """What one SPIN run found."""

    verdicts: dict[str, Verdict] = field(default_factory=dict)
    """One verdict per name in :data:`SPIN_PROPERTIES`."""
    states: int = 0
    """pan's ``states, stored``: reachable valuations, the initial one included."""
    transitions: int = 0
    """pan's ``transitions``: 1 + the enabled commands summed over states, plus
    one per deadlocked state (its ``timeout`` command)."""
    spin_seconds: float = 0.0
    """``spin -a`` (Promela to ``pan.c``)."""
    compile_seconds: float = 0.0
    """``gcc`` on ``pan.c``."""
    search_seconds: float = 0.0
    """``./pan``, wall clock."""
    spin_cpu: float = 0.0
    """CPU seconds (user + system) of ``spin -a``: steadier than wall clock on
    a shared machine."""
    compile_cpu: float = 0.0
    """CPU seconds of ``gcc``."""
    search_cpu: float = 0.0
    """CPU seconds of ``./pan``."""
    reason: str = ""
    """Why the verdicts are unknown, when they are."""
    output: str = ""
    """pan's output, for a report."""


def spin_available() -> bool:
    """Whether ``spin`` and ``gcc`` are installed."""
    return bool(shutil.which("spin") and shutil.which("gcc"))


def spin_check(
    saga: Saga,
    *,
    faults: FaultModel = ALL_FAULTS,
    workdir: Path | None = None,
    options: PanOptions = PanOptions(),
) -> SpinResult:
    """Export ``saga`` under ``faults``, check it with SPIN, read the verdicts.

    Args:
        saga: The definition (within the exportable subset).
        faults: The fault model, as for :func:`verifier.check`.
        workdir: Where to put the model and ``pan``; a temporary directory
            (removed afterwards) if None.
        options: How pan is compiled and run.

    Raises:
        SpinUnavailable: ``spin`` or ``gcc`` is missing.
        saga_models.exporters.ExportError: the saga is outside the subset.
    """
    return run_promela(to_promela(saga, faults=faults), workdir=workdir,
                       options=options)


def run_promela(
    model: str,
    *,
    workdir: Path | None = None,
    options: PanOptions = PanOptions(),
) -> SpinResult:
    """Check a Promela text written by ``to_promela`` (or a mutation of one).

    The options are those of :func:`spin_check`.

    Raises:
        SpinUnavailable: ``spin`` or ``gcc`` is missing.
    """
    if not spin_available():
        raise SpinUnavailable("spin and gcc must be installed (apt-get install "
                              "spin gcc, or scripts/install_system.sh)")
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        return _run(model, workdir, options)
    with tempfile.TemporaryDirectory(prefix="sagaproof-spin-") as tmp:
        return _run(model, Path(tmp), options)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Times:
    spin: float = 0.0
    gcc: float = 0.0
    pan: float = 0.0
    cpu: tuple[float, float, float] = (0.0, 0.0, 0.0)


def _unknown(reason: str, output: str = "", times: _Times = _Times()) -> SpinResult:
    return SpinResult(verdicts=dict.fromkeys(SPIN_PROPERTIES, Verdict.UNKNOWN),
                      reason=reason, output=output, spin_seconds=times.spin,
                      compile_seconds=times.gcc, search_seconds=times.pan,
                      spin_cpu=times.cpu[0], compile_cpu=times.cpu[1],
                      search_cpu=times.cpu[2])


def _run(model: str, work: Path, options: PanOptions) -> SpinResult:
    timeout = options.timeout
    (work / "model.pml").write_text(model, encoding="utf-8")
    steps = (
        ("spin", ["spin", "-o2", "-a", "model.pml"]),
        ("gcc", ["gcc", options.optimise, "-DSAFETY", "-DNOREDUCE", "-w", "-o", "pan",
                 "pan.c"]),
        ("pan", ["./pan", "-c0", f"-m{options.max_depth}",
                 f"-w{options.hash_bits}"]),
    )
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    out = ""
    for name, argv in steps:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        try:
            proc = subprocess.run(argv, cwd=work, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return _unknown(f"{name} took more than {timeout:g} s")
        seconds[name] = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu[name] = (after.ru_utime - before.ru_utime
                     + after.ru_stime - before.ru_stime)
        out = proc.stdout + proc.stderr
        if proc.returncode != 0:
            return _unknown(f"{name} failed (exit {proc.returncode}): "
                            f"{out.strip()[-400:]}", out)
    return parse_pan(out, _Times(spin=seconds["spin"], gcc=seconds["gcc"],
                                 pan=seconds["pan"],
                                 cpu=(cpu["spin"], cpu["gcc"], cpu["pan"])))


def parse_pan(output: str, times: _Times = _Times()) -> SpinResult:
    """Verdicts and counts from pan's output (``-c0`` run).

    >>> r = parse_pan("pan:1: assertion violated ((deadlock!=0)) (at depth 3)\\n"
    ...               "      7 states, stored\\n     9 transitions (= ...)\\n")
    >>> r.verdicts["deadlock"].value, r.verdicts["eventual_consistency"].value
    ('violated', 'holds')
    >>> r.states
    7
    """
    lowered = output.lower()
    for marker in _INCOMPLETE:
        if marker in lowered:
            return _unknown(f"pan did not finish: {marker}", output, times)
    stored = _STORED.search(output)
    trans = _TRANSITIONS.search(output)
    if stored is None or trans is None:
        return _unknown("pan printed no state count", output, times)
    violated = set(_ASSERT.findall(output))
    strange = violated - set(SPIN_PROPERTIES)
    if strange or ("error" in lowered and "errors: 0" not in lowered
                   and not violated):
        return _unknown(f"pan reported an error it was not asked to check: "
                        f"{sorted(strange) or output.strip()[-200:]}",
                        output, times)
    return SpinResult(
        verdicts={p: Verdict.VIOLATED if p in violated else Verdict.HOLDS
                  for p in SPIN_PROPERTIES},
        states=int(stored.group(1)),
        transitions=int(trans.group(1)),
        output=output,
        spin_seconds=times.spin,
        compile_seconds=times.gcc,
        search_seconds=times.pan,
        spin_cpu=times.cpu[0],
        compile_cpu=times.cpu[1],
        search_cpu=times.cpu[2],
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SpinComparison:
    """sagaproof's explicit checker and SPIN on the same definition."""

    explicit: dict[str, Verdict]
    """sagaproof's verdict for each name in :data:`SPIN_PROPERTIES`."""
    explicit_states: int
    explicit_transitions: int
    explicit_seconds: float
    spin: SpinResult

    @property
    def disagreements(self) -> tuple[str, ...]:
        """Every difference, in words; empty when the two agree exactly.

        An ``unknown`` on either side is a difference: it never passes.
        """
        out = [
            f"{p}: sagaproof {self.explicit[p].value}, SPIN "
            f"{self.spin.verdicts[p].value}"
            for p in SPIN_PROPERTIES
            if self.explicit[p] is not self.spin.verdicts[p]
            or self.explicit[p] is Verdict.UNKNOWN
        ]
        if self.spin.reason:
            out.append(f"SPIN: {self.spin.reason}")
        if self.spin.states != self.explicit_states:
            out.append(f"states: sagaproof {self.explicit_states}, SPIN "
                       f"{self.spin.states}")
        # pan counts one more transition (into the initial state) and one per
        # deadlocked state (its timeout command); see SpinResult.transitions.
        deadlocked = self.explicit["deadlock"] is Verdict.VIOLATED
        if not deadlocked and self.spin.transitions != self.explicit_transitions + 1:
            out.append(f"transitions: sagaproof {self.explicit_transitions} + 1, "
                       f"SPIN {self.spin.transitions}")
        return tuple(out)


def compare(
    saga: Saga,
    *,
    faults: FaultModel = ALL_FAULTS,
    max_states: int = 5_000_000,
    options: PanOptions = PanOptions(),
) -> SpinComparison:
    """Check ``saga`` with sagaproof's explicit checker and with SPIN.

    ``options`` go to :func:`spin_check`. The explicit side's
    ``termination`` is reduced to its safety part: ``deadlock`` is violated
    exactly when the checker found a deadlock (a livelock under strong
    fairness is not something a safety run of SPIN can see; docs/spin.md).
    """
    from ._explicit import explore
    from ._saga_ts import SagaTransitionSystem

    results = {r.property: r for r in explore(
        SagaTransitionSystem(saga, faults),
        properties=("compensation_completeness", "eventual_consistency",
                    "termination"),
        max_states=max_states,
    )}
    term = results["termination"]
    if term.verdict is Verdict.UNKNOWN:
        dead = Verdict.UNKNOWN
    elif term.verdict is Verdict.VIOLATED and term.reason.startswith("deadlock"):
        dead = Verdict.VIOLATED
    else:
        dead = Verdict.HOLDS
    explicit = {
        "compensation_completeness": results["compensation_completeness"].verdict,
        "eventual_consistency": results["eventual_consistency"].verdict,
        "deadlock": dead,
    }
    stats = term.stats
    return SpinComparison(
        explicit=explicit,
        explicit_states=stats.states,
        explicit_transitions=stats.transitions,
        explicit_seconds=stats.seconds,
        spin=spin_check(saga, faults=faults, options=options),
    )
