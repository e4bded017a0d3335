"""The semantics kernel: interpreted against compiled, and packed storage.

Run: ``python bench/kernel_bench.py`` (``--cases par3x3,par3x4`` to choose;
default ``par2x6,par3x3``). Every fault knob is on. Each case runs in a fresh
child process so its peak RSS is its own. Per case, CPU seconds (this machine
is shared: wall clock measures the neighbours) of:

* ``python``: the explicit checker's interpreted search (``engine="python"``:
  ``semantics.enabled``/``apply``, i.e. the kernel run interpreted on tuples,
  states as ``bytes`` in a dict), on the two safety properties of
  ``bench/spin_bench.py``; skipped above ``--python-max`` states;
* ``oracle``: the same search over the pre-kernel hand-written semantics
  (``tests/parity/reference_semantics.py``), to show what running the kernel
  interpreted costs the runtime; same cap;
* ``search``: the compiled search alone (``verifier._kernel_bfs.search``),
  states/s and the bytes its arrays hold per state;
* ``check``: the whole compiled check (``engine="kernel"``: search, then the
  property checks), and the child's peak RSS per state;
* ``hash`` / ``bitstate``: the whole check with hash compaction or bitstate
  (``--bitstate-bits``) storage (``verifier._kernel_compact``), its peak RSS
  per state and the estimated probability that a state was missed;
* ``live``: the whole compiled check of every property, termination
  included (the search keeps the edges; the fair-cycle search runs on them),
  to set against ``check`` (the liveness/safety ratio).

``--workers N`` runs the ``search``, ``check`` and ``live`` rows on N threads
(``verifier._kernel_parallel``); the table then also gives wall seconds (on
a shared machine, CPU seconds say what the work cost, wall seconds what
the threads bought). ``--modes`` picks modes (default
``python,oracle,search,check,live``); ``--max-states`` caps every
compiled row (a budget stop: the row measures that many states). RSS per
state counts everything the child holds (interpreter, numpy, numba and the
compiled code, about 155 MB) over the states; ``rss0`` is that fixed part,
measured before the search.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "parity"))

SAFETY = ("compensation_completeness", "eventual_consistency")


def _saga(name: str):  # type: ignore[no-untyped-def]
    from explicit_bench import chain, parallel

    if name.startswith("chain"):
        return chain(int(name[5:]))
    b, k = name[3:].split("x")
    return parallel(int(b), int(k))


def child(name: str, mode: str, python_max: int, max_states: int = 1 << 31,  # noqa: PLR0917
          bits: int = 30, workers: int = 1) -> dict[str, object]:
    """One measurement in this process."""
    from saga_models import FaultModel
    from verifier import SagaTransitionSystem
    from verifier import _kernel_bfs as kb
    from verifier._explicit import explore

    saga = _saga(name)
    faults = FaultModel()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out: dict[str, object] = {"case": name, "mode": mode}
    if mode in {"python", "oracle"}:
        ts = SagaTransitionSystem(saga, faults)
        if mode == "oracle":
            import reference_semantics as ref

            def successors(state):  # type: ignore[no-untyped-def]
                return [(e, ref.apply(saga, state, e))
                        for e in ref.enabled(saga, state, faults)]

            ts.successors = successors  # type: ignore[method-assign]
        t = time.process_time()
        r = explore(ts, properties=SAFETY, engine="python",
                    max_states=python_max)
        out["seconds"] = time.process_time() - t
        out["states"] = r[0].stats.states
        out["verdicts"] = [x.verdict.value for x in r]
    elif mode == "search":
        kb.compiled()
        from verifier import _kernel_parallel as kp

        def run(steps: int) -> Callable[..., int] | None:
            return kp.runner(workers, steps) if workers > 1 else None

        phases = {"_expand": 0.0, "_merge": 0.0}
        if workers > 1:
            # CPU seconds of each phase: the merge is the sequential part.
            g = kp._compiled()
            assert g is not None
            for fname in phases:
                def timed(*a: object, f: object = g[fname],
                          fname: str = fname) -> object:
                    t0 = time.process_time()
                    r = f(*a)  # type: ignore[operator]
                    phases[fname] += time.process_time() - t0
                    return r
                g[fname] = timed

        kb.search(_saga("chain4"), faults, graph=False, watch_kinds=0,
                  max_states=10, runner=run(4))  # loads the compiled code
        t = time.process_time()
        wall = time.perf_counter()
        s = kb.search(saga, faults, graph=False, watch_kinds=1 << 5,
                      max_states=max_states, runner=run(len(saga.steps)))
        out["seconds"] = time.process_time() - t
        out["wall"] = time.perf_counter() - wall
        if workers > 1:
            out["phases"] = {k: round(v, 2) for k, v in phases.items()}
        assert s is not None
        out["states"] = s.count
        out["words"] = s.pack.words
        out["array_bytes_per_state"] = s.bytes_used() / s.count
    else:
        from verifier._kernel_compact import Compaction

        store = {"check": None, "live": None,
                 "hash": Compaction(mode="hash-compact"),
                 "bitstate": Compaction(mode="bitstate", bits=bits)}[mode]
        # ``live`` checks every property (termination too), the others the
        # two safety properties.
        props = None if mode == "live" else SAFETY
        ts = SagaTransitionSystem(saga, faults)
        explore(SagaTransitionSystem(_saga("chain4"), faults),
                properties=props, engine="kernel")  # compiled-code load
        if store is not None:
            explore(SagaTransitionSystem(_saga("chain4"), faults),
                    properties=SAFETY, compaction=store)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        t = time.process_time()
        wall = time.perf_counter()
        r = explore(ts, properties=props, engine="kernel",
                    max_states=max_states, compaction=store, workers=workers)
        out["seconds"] = time.process_time() - t
        out["wall"] = time.perf_counter() - wall
        out["states"] = r[0].stats.states
        out["verdicts"] = [x.verdict.value for x in r]
        if store is not None:
            out["omission"] = r[0].stats.omission_probability
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out["rss0"] = rss0
    out["rss_bytes_per_state"] = rss / max(1, int(out["states"]))  # type: ignore[call-overload]
    return out


def main(argv: list[str] | None = None) -> int:
    """Print one table row per case and mode."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="par2x6,par3x3")
    ap.add_argument("--python-max", type=int, default=1_500_000)
    ap.add_argument("--modes", default="python,oracle,search,check,live")
    ap.add_argument("--max-states", type=int, default=1 << 31)
    ap.add_argument("--bitstate-bits", type=int, default=30)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--child", nargs=2, metavar=("CASE", "MODE"))
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child, args.python_max, args.max_states,
                               args.bitstate_bits, args.workers)))
        return 0
    print("| case | mode | workers | states | CPU s | wall s | states/s (CPU) | "
          "words | array B/state | RSS B/state (all) | P(missed) | verdicts |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name in args.cases.split(","):
        for mode in args.modes.split(","):
            proc = subprocess.run(
                [sys.executable, __file__, "--child", name, mode,
                 "--python-max", str(args.python_max),
                 "--max-states", str(args.max_states),
                 "--bitstate-bits", str(args.bitstate_bits),
                 "--workers", str(args.workers)],
                capture_output=True, text=True, check=False)
            if proc.returncode:
                print(f"| {name} | {mode} | failed: "
                      f"{proc.stderr.strip().splitlines()[-1:]} |")
                continue
            r = json.loads(proc.stdout)
            missed = r.get("omission")
            missed_text = "" if missed is None else f"{missed:.2g}"
            sec = float(r["seconds"])
            states = int(r["states"])
            wall = r.get("wall")
            wall_text = "" if wall is None else f"{float(wall):.2f}"
            print(f"| {name} | {mode} | {args.workers} | {states:,} | {sec:.2f} | "
                  f"{wall_text} | "
                  f"{states / sec if sec else 0:,.0f} | {r.get('words', '')} | "
                  f"{float(r.get('array_bytes_per_state', 0)):.1f} | "
                  f"{float(r['rss_bytes_per_state']):.1f} | "
                  f"{missed_text} | "
                  f"{','.join(r.get('verdicts', []))} |"
                  + (f" phases (CPU s): {r['phases']}" if "phases" in r else ""),
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
