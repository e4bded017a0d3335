"""States and time with and without partial-order reduction (and symmetry).

For each model in examples/isolation/ and K = 2..4 instances, and for the
scenarios below (different sagas on partly disjoint resources), the safety
properties (every one but termination, which always runs unreduced) are
checked five ways: unreduced, ``por-local`` (the reduction without
independence over disjoint resources: every effect and every phase change
seen by all, :meth:`Composition.instance_footprint`), ``por``, ``symmetry``,
``symmetry+por``. With ``por`` the time includes recomputing each
counterexample by the bounded unreduced search. The verdicts of all must
agree (the script says so).

Run: ``python bench/por_bench.py --faults fail --max-k 4``
(seconds are CPU time of this process, so other load on a shared machine does
not count; a run that exceeds ``--max-states`` shows ``>N``).

``--branches`` measures the reduction between the branches of one instance
instead: examples/order_saga.yaml (two parallel pairs of steps) and
generated wide DAGs (``W`` parallel compensatable steps, then a pivot), one
saga (K = 1) and two instances, under several fault models, unreduced and
with ``por``: ``python bench/por_bench.py --branches``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from saga_models import FaultModel, Saga, SagaBuilder, load, loads  # noqa: E402
from saga_models.instances import Composition  # noqa: E402
from verifier import Verdict  # noqa: E402
from verifier._explicit import explore  # noqa: E402
from verifier._multi_ts import MultiSagaTransitionSystem  # noqa: E402
from verifier._por import (  # noqa: E402
    ReducedSagaTransitionSystem,
    explore_shortest,
)
from verifier._saga_ts import SagaTransitionSystem  # noqa: E402

MODES = (("unreduced", False, False), ("por-local", False, True),
         ("por", False, True), ("symmetry", True, False),
         ("symmetry+por", True, True))


def _saga(name: str, steps: list[tuple[str, str, str, str | None]],
          resources: dict[str, int], invariant: str | None = None) -> Saga:
    """A chain of steps ``(name, kind, action update, guard)``; each
    compensatable step undoes its update."""
    b = SagaBuilder(name)
    for res, value in resources.items():
        b.resource(res, initial=value)
    prev: list[str] = []
    for step, kind, update, guard in steps:
        effect: dict[str, object] | None = None
        undo: dict[str, object] | None = None
        if update:
            res, _, delta = update.partition(" ")
            effect = {"update": {res: f"{res} {delta}"}}
            if guard:
                effect["guard"] = guard
            back = delta.replace("+", "#").replace("-", "+").replace("#", "-")
            undo = {"update": {res: f"{res} {back}"}}
        comp = kind == "compensatable"
        b.step(step, participant=name, action=step, kind=kind,
               compensation=f"undo_{step}" if comp else None,
               retry=({"max_attempts": "forever"} if kind == "retriable"
                      else None),
               depends_on=prev, effect=effect,
               compensation_effect=undo if comp else None)
        prev = [step]
    if invariant:
        b.invariant("credit_never_negative", invariant)
    return b.build()


def shop() -> tuple[Saga, Saga, Saga]:
    """Three sagas that meet only on ``credit``: an order takes stock and
    credit, a top-up adds points and credit, a restock moves parts into
    bins (no credit at all)."""
    res = {"stock": 1, "credit": 1, "points": 0, "parts": 1, "bins": 0}
    order = _saga("order", [
        ("reserve_stock", "compensatable", "stock - 1", "stock >= 1"),
        ("charge", "compensatable", "credit - 1", "credit >= 1"),
        ("pack", "compensatable", "", None),
        ("ship", "pivot", "", None)], res, "credit >= 0")
    topup = _saga("topup", [
        ("add_points", "compensatable", "points + 1", None),
        ("grant", "compensatable", "credit + 1", None),
        ("notify", "pivot", "", None)], res, "credit >= 0")
    restock = _saga("restock", [
        ("order_parts", "compensatable", "parts + 1", None),
        ("fill", "compensatable", "bins + 1", None),
        ("log", "pivot", "", None)], res)
    return order, topup, restock


def per_instance_orders() -> Saga:
    """examples/isolation/order_lost_update with its order row keyed by
    instance (``key: instance``): each instance has its own row."""
    path = ROOT / "examples" / "isolation" / "order_lost_update.saga.yaml"
    row = "order: {kind: record, fields: {total: 0}}"
    text = path.read_text()
    assert row in text
    saga = loads(text.replace(row, row.replace("record,",
                                               "record, key: instance,")))
    assert isinstance(saga, Saga)
    return saga


def scenarios() -> list[tuple[str, list[Saga]]]:
    """The compositions of different sagas the bench runs."""
    order, topup, restock = shop()
    rows = per_instance_orders()
    return [("order_lost_update, rows per instance", [rows] * 2),
            ("order_lost_update, rows per instance", [rows] * 3),
            ("shop: order+topup", [order, topup]),
            ("shop: order+restock", [order, restock]),
            ("shop: order+topup+restock", [order, topup, restock]),
            ("shop: 2 orders+topup+restock", [order, order, topup, restock])]


def run(sagas: list[Saga], faults: FaultModel, max_states: int
        ) -> list[tuple[str, int, float, dict[str, Verdict]]]:
    """One row: (mode, states, seconds, verdicts) per mode."""
    out = []
    for mode, symmetry, por in MODES:
        footprint = (Composition.instance_footprint if mode == "por-local"
                     else None)
        ts = MultiSagaTransitionSystem(sagas, faults, symmetry=symmetry,
                                       por=por, footprint=footprint)
        names = [p.name for p in ts.properties if not p.liveness]
        started = time.process_time()
        if por:
            plain = MultiSagaTransitionSystem(sagas, faults,
                                              symmetry=symmetry)
            res = explore_shortest(ts, plain, properties=names,
                                   max_states=max_states)
        else:
            res = explore(ts, properties=names, max_states=max_states)
        seconds = time.process_time() - started
        out.append((mode, res[0].stats.states, seconds,
                    {r.property: r.verdict for r in res}))
    return out


def wide_dag(width: int) -> Saga:
    """``width`` compensatable steps in parallel (each retried once, one
    with a timeout), then a pivot that depends on all of them."""
    b = SagaBuilder(f"wide{width}")
    for j in range(width):
        b.step(f"b{j}", participant=f"p{j}", action="do", compensation="undo",
               depends_on=[], retry={"max_attempts": 2},
               timeout=5.0 if j == 0 else None)
    b.step("commit", participant="c", action="commit", kind="pivot",
           depends_on=[f"b{j}" for j in range(width)])
    return b.build()


BRANCH_FAULTS = ("none", "timeout,late", "comp_fail",
                 "fail,timeout,comp_fail,late,duplicate", "all")


def branches(max_states: int) -> None:
    """The reduction between branches: states and CPU seconds unreduced and
    with ``por``, safety properties, K = 1 and 2."""
    order = load(ROOT / "examples" / "order_saga.yaml")
    assert isinstance(order, Saga)
    models = [("order_saga", order), ("wide DAG, 3 branches", wide_dag(3)),
              ("wide DAG, 5 branches", wide_dag(5))]
    print("| model | K | faults | unreduced states (s) | por states (s) "
          "| verdicts agree |")
    print("|---|---|---|---|---|---|")
    for name, saga in models:
        for k in (1, 2):
            # Two instances under the wider fault models exceed any budget
            # worth waiting for: the crash-free narrow ones only.
            for text in BRANCH_FAULTS if k == 1 else BRANCH_FAULTS[:3]:
                faults = FaultModel.parse(text)
                cells = []
                verdicts = []
                for por in (False, True):
                    started = time.process_time()
                    if k == 1:
                        plain: Any = SagaTransitionSystem(saga, faults)
                        ts: Any = (ReducedSagaTransitionSystem(saga, faults)
                                   if por else plain)
                    else:
                        plain = MultiSagaTransitionSystem([saga] * k, faults)
                        ts = (MultiSagaTransitionSystem([saga] * k, faults,
                                                        por=True)
                              if por else plain)
                    names = [p.name for p in ts.properties if not p.liveness]
                    res = (explore_shortest(ts, plain, properties=names,
                                            max_states=max_states)
                           if por else explore(ts, properties=names,
                                               max_states=max_states,
                                               engine="python"))
                    seconds = time.process_time() - started
                    over = any(r.verdict is Verdict.UNKNOWN for r in res)
                    cells.append(f"{'>' if over else ''}"
                                 f"{res[0].stats.states:,} ({seconds:.2f})")
                    verdicts.append({r.property: r.verdict for r in res})
                both = [p for p in verdicts[0]
                        if Verdict.UNKNOWN not in (verdicts[0][p],
                                                   verdicts[1][p])]
                agree = ("-" if not both else "yes" if all(
                    verdicts[0][p] is verdicts[1][p] for p in both) else "NO")
                print(f"| {name} | {k} | {faults.describe()} | "
                      + " | ".join(cells) + f" | {agree} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faults", default="fail")
    ap.add_argument("--max-k", type=int, default=4)
    ap.add_argument("--max-states", type=int, default=2_000_000)
    ap.add_argument("--only", default="", help="substring of the model names")
    ap.add_argument("--branches", action="store_true",
                    help="the reduction between the branches of one instance")
    args = ap.parse_args()
    if args.branches:
        branches(args.max_states)
        return
    faults = FaultModel.parse(args.faults)
    print(f"faults: {faults.describe()}")
    print("| model | K | " + " | ".join(f"{m} states (s)" for m, _, _ in MODES)
          + " | verdicts agree |")
    print("|---|---|" + "---|" * (len(MODES) + 1))
    rows: list[tuple[str, list[Saga]]] = []
    for path in sorted((ROOT / "examples" / "isolation").glob("*.saga.yaml")):
        saga = load(path)
        assert isinstance(saga, Saga)
        rows += [(path.name.split(".")[0], [saga] * k)
                 for k in range(2, args.max_k + 1)]
    rows += scenarios()
    for name, sagas in rows:
        if args.only not in name:
            continue
        row = run(sagas, faults, args.max_states)
        cells = []
        for _, states, seconds, verdicts in row:
            over = Verdict.UNKNOWN in verdicts.values()
            cells.append(f"{'>' if over else ''}{states:,} ({seconds:.2f})")
        decided = [v for *_, v in row if Verdict.UNKNOWN not in v.values()]
        agree = all(v == decided[0] for v in decided) if decided else None
        print(f"| {name} | {len(sagas)} | " + " | ".join(cells)
              + f" | {'yes' if agree else 'NO' if agree is False else '-'} |",
              flush=True)


if __name__ == "__main__":
    main()
