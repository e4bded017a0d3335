"""The model against a small, independent interpreter of what the engines do.

The reference interpreter walks the ASL/Seata definition itself (not the IR):
every Task may succeed or fail, a failure goes to the first Catch (declaration
order) that matches, a Choice may take any branch; Seata's CompensationTrigger
compensates the executed states in reverse and stops at the first failing
compensation. Its reachable outcomes (the set of forward effects left in place
when the execution ends) must equal the model's, over every alternative saga.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from saga_models import FaultModel
from saga_models import semantics as sem
from saga_models.importers import load_all, mapping

# ../shared/corpus from the repository root; CI always has it, so there a
# missing corpus fails the tests instead of skipping them.
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
_ABSENT = not CORPUS.exists() and not os.environ.get("CI")
_WHERE = "corpus not present: put it at ../shared/corpus beside the repository"
pytestmark = pytest.mark.skipif(_ABSENT, reason=_WHERE)


def _asl_catch(state: dict, error: str = "custom.Error") -> str | None:  # type: ignore[type-arg]
    """The first Catch (declaration order) whose ErrorEquals matches ``error``
    (States.TaskFailed matches everything but States.Timeout)."""
    for c in state.get("Catch", []):
        if any(e in {error, "States.ALL"} or (
                e == "States.TaskFailed" and error != "States.Timeout")
               for e in c["ErrorEquals"]):
            return str(c["Next"])
    return None


def _asl_errors(state: dict) -> list[str]:  # type: ignore[type-arg]
    """Errors the Task can raise: its code's (custom) error, a timeout when it
    declares one, the Lambda service errors for a Lambda Task."""
    errors = ["custom.Error"]
    errors += [e for c in state.get("Catch", []) for e in c["ErrorEquals"]
               if not e.startswith("States.")]
    if "TimeoutSeconds" in state or "HeartbeatSeconds" in state:
        errors.append("States.Timeout")
    if ":lambda:" in str(state.get("Resource", "")):
        errors.append("Lambda.ServiceException")
    return errors


def asl_outcomes(machine: dict, comp_of: dict[str, list[str]],  # type: ignore[type-arg]
                 forward: set[str], comp_fail: bool) -> set[frozenset[str]]:
    states = machine["States"]
    out: set[frozenset[str]] = set()

    def run(name: str | None, effects: frozenset[str], seen: tuple[str, ...]) -> None:
        if name is None:
            out.add(effects)
            return
        if (name, effects) in seen:
            return
        seen = (*seen, (name, effects))  # type: ignore[arg-type]
        st = states[name]
        t = st["Type"]
        if t in ("Succeed", "Fail"):
            out.add(effects)
        elif t in ("Pass", "Wait"):
            run(st.get("Next"), effects, seen)
        elif t == "Choice":
            for target in [c["Next"] for c in st["Choices"]] + (
                    [st["Default"]] if "Default" in st else []):
                run(target, effects, seen)
        elif t == "Task":
            undone = set(comp_of.get(name, ()))
            ok = effects | {name} if name in forward else effects - undone
            run(st.get("Next"), ok, seen)
            may_fail = name in forward or comp_fail or not undone
            if may_fail:
                for error in _asl_errors(st) if name in forward else [
                        "custom.Error"]:
                    target = _asl_catch(st, error)
                    if target is None:
                        out.add(effects)
                    else:
                        run(target, effects, seen)
        else:
            raise AssertionError(t)

    run(machine["StartAt"], frozenset(), ())
    return out


def seata_outcomes(machine: dict, comp_fail: bool) -> set[frozenset[str]]:  # type: ignore[type-arg]
    states = machine["States"]
    comps = {s.get("CompensateState") for s in states.values()}
    out: set[frozenset[str]] = set()

    def run(name: str | None, done: tuple[str, ...]) -> None:
        if name is None:
            out.add(frozenset(done))
            return
        st = states[name]
        t = st["Type"]
        if t in ("Succeed", "Fail"):
            out.add(frozenset(done))
        elif t == "Choice":
            for target in [c["Next"] for c in st["Choices"]] + (
                    [st["Default"]] if "Default" in st else []):
                run(target, done)
        elif t == "CompensationTrigger":
            left = list(done)
            # reverse order, stop at the first failing compensation
            for executed in reversed(done):
                if states[executed].get("CompensateState") not in states:
                    continue
                if comp_fail:
                    out.add(frozenset(left))
                left.remove(executed)
            run(st.get("Next"), tuple(left))
        elif t == "ServiceTask" and name not in comps:
            run(st.get("Next"), (*done, name))
            catches = st.get("Catch", [])
            target = next((c["Next"] for c in catches), None)
            if target is None:
                out.add(frozenset(done))
            else:
                run(target, done)
            if catches and not any(
                    e in ("java.lang.Throwable", "java.lang.Exception")
                    for c in catches for e in c.get("Exceptions", [])):
                out.add(frozenset(done))  # an exception no entry names
        else:
            raise AssertionError(t)

    run(machine["StartState"], ())
    return out


def model_outcomes(path: Path, faults: FaultModel) -> set[frozenset[str]]:
    out: set[frozenset[str]] = set()
    for saga in load_all(path):
        start = sem.initial_state(saga)
        seen = {start}
        todo = [start]
        while todo:
            s = todo.pop()
            if sem.is_terminal(s):
                out.add(frozenset(saga.steps[i].name for i in range(len(saga))
                                  if sem.field(s, i, sem.EF) > 0))
                continue
            for e in sem.enabled(saga, s, faults):
                n = sem.apply(saga, s, e)
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
    return out


def _faults(comp_fail: bool) -> FaultModel:
    return FaultModel(fail=True, timeout=False, comp_fail=comp_fail, crashes=0,
                      duplicates=0)


ASL = ["trip-booking-bernd.asl.json", "retry-with-exponential-backoff.asl.json",
       "common-error-handling-option1.asl.json",
       "selective-checkpointing-parent.asl.json", "aws-travel-saga.asl.json"]


FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("comp_fail", [False, True])
@pytest.mark.parametrize("name", [*ASL, "travel-timeout-uncaught.asl.json"])
def test_asl_model_matches_reference(name: str, comp_fail: bool) -> None:
    path = CORPUS / "asl" / name if name in ASL else FIXTURES / name
    machine = json.loads(path.read_text())
    cmap = mapping(path)
    comp_of: dict[str, list[str]] = {}
    for e in cmap.entries:
        if e.compensation:
            comp_of.setdefault(e.compensation, []).append(e.forward)
    forward = {e.forward for e in cmap.entries}
    assert asl_outcomes(machine, comp_of, forward, comp_fail) == \
        model_outcomes(path, _faults(comp_fail))


SEATA = ["simple_statelang_with_compensation.json",
         "reduce_inventory_and_balance.json", "simple_statelang_with_catches.json"]


@pytest.mark.parametrize("comp_fail", [False, True])
@pytest.mark.parametrize("name", SEATA)
def test_seata_model_matches_reference(name: str, comp_fail: bool) -> None:
    path = CORPUS / "seata" / name
    machine = json.loads(path.read_text())
    assert seata_outcomes(machine, comp_fail) == model_outcomes(
        path, _faults(comp_fail))


def test_reference_can_disagree_with_a_miswired_model(tmp_path: Path) -> None:
    """The comparison has teeth: a chain in the wrong place changes outcomes."""
    machine = json.loads((CORPUS / "asl/trip-booking-bernd.asl.json").read_text())
    # Book car's Catch skips its rollback: the hotel stays booked.
    machine["States"]["TaskBookCar"]["Catch"][0]["Next"] = "Fail"
    p = tmp_path / "m.asl.json"
    p.write_text(json.dumps(machine))
    cmap = mapping(p)
    comp_of = {e.compensation: [e.forward] for e in cmap.entries if e.compensation}
    ref = asl_outcomes(machine, comp_of, {e.forward for e in cmap.entries}, False)
    assert frozenset({"TaskBookHotel"}) in ref
    assert ref == model_outcomes(p, _faults(False))
    original = model_outcomes(CORPUS / "asl/trip-booking-bernd.asl.json",
                              _faults(False))
    assert ref != original


