"""Renderings of check results: text for people, JSON, JUnit XML and SARIF for
machines (CI dashboards, code-scanning annotations)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from xml.etree import ElementTree as ET

from ._result import CheckResult, Counterexample, PropertyResult, Verdict

_MARK = {Verdict.HOLDS: "ok", Verdict.VIOLATED: "VIOLATED", Verdict.UNKNOWN: "unknown"}


def counterexample_text(cex: Counterexample) -> str:
    """A counterexample as numbered saga events, with the final outcome.

    The effect column shows what the participants hold at each point (the world
    the orchestrator cannot see), so a reader sees where an effect is lost or
    doubled.
    """
    lines = []
    for i, step in enumerate(cex.steps):
        if i == 0:
            continue
        marker = ""
        if cex.loop_start is not None and i == cex.loop_start + 1:
            marker = "  <- cycle starts here"
        lines.append(f"  {i:>3}. {step.action}{_resources(step.state)}{marker}")
    last = cex.steps[-1].state
    outcomes = _instance_outcomes(last)
    if outcomes:
        lines.append(f"       => {outcomes}")
    phase = last.get("phase")
    if phase is not None:
        effects = _effects(last)
        lines.append(f"       => saga {phase}" + (f"; effects held: {effects}"
                                                   if effects else ""))
    if cex.loop_start is not None:
        lines.append(f"       (steps {cex.loop_start + 1}..{len(cex.steps) - 1} "
                     "repeat forever)")
    return "\n".join(lines)


def _resources(state: dict[str, object]) -> str:
    """Resource values after a line of a many-instance trace, padded into a
    column so a reader sees which instance changed what."""
    res = state.get("resources")
    if not isinstance(res, dict) or not res:
        return ""
    return "   [" + " ".join(f"{k}={v}" for k, v in res.items()) + "]"


def _instance_outcomes(state: dict[str, object]) -> str:
    insts = state.get("instances")
    if not isinstance(insts, list):
        return ""
    return ", ".join(f"instance {d['instance']} {d['phase']}" for d in insts
                     if isinstance(d, dict))


def _effects(state: dict[str, object]) -> str:
    steps = state.get("steps")
    if not isinstance(steps, dict):
        return ""
    held = [name if info["effect"] == 1 else f"{name} (x{info['effect']})"
            for name, info in steps.items()
            if isinstance(info, dict) and info.get("effect")]
    return ", ".join(held) or "none"


def text(results: Sequence[CheckResult], *, verbose: bool = False) -> str:
    """The human report."""
    out = []
    for res in results:
        out.append(f"{res.source}: {res.kind} {res.definition!r}: "
                   f"{res.verdict.value.upper()}")
        for r in res.results:
            out.append(f"  {_MARK[r.verdict]:<9} {r.property}"
                       + (f"  ({r.stats.states:,} states, "
                          f"{r.stats.seconds:.2f}s)" if verbose else ""))
            if r.verdict is not Verdict.HOLDS:
                out.append(f"            {r.reason}")
            if r.counterexample is not None:
                out.append(f"    counterexample ({len(r.counterexample)} events, "
                           f"faults: {r.fault_model}):")
                out.append(counterexample_text(r.counterexample))
        if res.results:
            r0 = res.results[0]
            out.append(f"  faults: {r0.fault_model}; {r0.stats.states:,} states, "
                       f"{r0.stats.transitions:,} transitions, "
                       f"{r0.stats.seconds:.2f}s")
    return "\n".join(out)


def to_json(results: Sequence[CheckResult]) -> str:
    """A JSON list, one entry per definition."""
    return json.dumps([r.to_json() for r in results], indent=2)


def junit(results: Sequence[CheckResult]) -> str:
    """JUnit XML: one test suite per definition, one test case per property."""
    suites = ET.Element("testsuites", name="sagaproof")
    for res in results:
        failures = sum(r.verdict is Verdict.VIOLATED for r in res.results)
        errors = sum(r.verdict is Verdict.UNKNOWN for r in res.results)
        suite = ET.SubElement(suites, "testsuite", name=res.definition,
                              tests=str(len(res.results)), failures=str(failures),
                              errors=str(errors), file=res.source)
        for r in res.results:
            case = ET.SubElement(suite, "testcase", classname=res.definition,
                                 name=r.property, time=f"{r.stats.seconds:.3f}")
            if r.verdict is Verdict.VIOLATED:
                node = ET.SubElement(case, "failure", message=r.reason,
                                     type="violated")
                node.text = (counterexample_text(r.counterexample)
                             if r.counterexample else r.reason)
            elif r.verdict is Verdict.UNKNOWN:
                ET.SubElement(case, "error", message=r.reason, type="unknown")
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


def sarif(results: Sequence[CheckResult]) -> str:
    """SARIF 2.1.0, for code-scanning annotations on the definition file."""
    rules: dict[str, dict[str, object]] = {}
    findings = []
    for res in results:
        for r in res.results:
            if r.verdict is Verdict.HOLDS:
                continue
            rules.setdefault(r.property, {
                "id": r.property,
                "shortDescription": {"text": r.property.replace("_", " ")},
            })
            findings.append(_sarif_result(res, r))
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "sagaproof", "rules": list(rules.values())}},
            "results": findings,
        }],
    }
    return json.dumps(doc, indent=2)


def _sarif_result(res: CheckResult, r: PropertyResult) -> dict[str, object]:
    message = r.reason
    if r.counterexample is not None:
        message += "\n" + counterexample_text(r.counterexample)
    return {
        "ruleId": r.property,
        "level": "error" if r.verdict is Verdict.VIOLATED else "warning",
        "message": {"text": message},
        "locations": [{
            "physicalLocation": {
                "artifactLocation": {"uri": res.source},
                "region": {"startLine": 1},
            }
        }],
        "properties": {"verdict": r.verdict.value, "faultModel": r.fault_model},
    }
