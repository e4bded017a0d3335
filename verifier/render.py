"""Renderings of check results: text for people, JSON, JUnit XML and SARIF for
machines (CI dashboards, code-scanning annotations)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from xml.etree import ElementTree as ET

from saga_models import Diagnostic

from ._result import CheckResult, Verdict
from ._sarif import SourceMap, sarif
from ._trace_text import counterexample_text

__all__ = ["SourceMap", "counterexample_text", "diagnostics_text", "junit",
           "sarif", "text", "to_json"]

_MARK = {Verdict.HOLDS: "ok", Verdict.VIOLATED: "VIOLATED", Verdict.UNKNOWN: "unknown"}


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
                # A reason of several lines (one per structure diagnostic,
                # each with its help line) keeps its lines, indented.
                out.extend(f"            {line}" for line in r.reason.splitlines())
            if r.counterexample is not None:
                out.append(f"    counterexample ({len(r.counterexample)} events, "
                           f"faults: {r.fault_model}):")
                out.append(counterexample_text(r.counterexample))
        if res.results:
            r0 = res.results[0]
            out.append(f"  faults: {r0.fault_model}; {r0.stats.states:,} states, "
                       f"{r0.stats.transitions:,} transitions, "
                       f"{r0.stats.seconds:.2f}s")
            if r0.stats.search_note:
                # A lossy search: what its verdicts may have missed.
                out.append(f"  storage: {r0.stats.search_note}")
    return "\n".join(out)


def diagnostics_text(diagnostics: Sequence[tuple[str, Diagnostic]]) -> str:
    """Diagnostics for people: one per line, each help line under its error."""
    return "\n".join(d.render() for _, d in diagnostics)


def _error_entry(path: str, diags: list[Diagnostic]) -> dict[str, object]:
    return {"definition": None, "kind": "error", "source": path,
            "verdict": "error", "results": [],
            "diagnostics": [d.to_json() for d in diags]}


def _by_file(
    diagnostics: Sequence[tuple[str, Diagnostic]],
) -> dict[str, list[Diagnostic]]:
    grouped: dict[str, list[Diagnostic]] = {}
    for path, d in diagnostics:
        grouped.setdefault(path, []).append(d)
    return grouped


def to_json(results: Sequence[CheckResult], *,
            diagnostics: Sequence[tuple[str, Diagnostic]] = ()) -> str:
    """A JSON list, one entry per definition, and one (``verdict: error``, with
    its ``diagnostics``) per input that could not be loaded or checked."""
    entries = [_error_entry(path, diags)
               for path, diags in _by_file(diagnostics).items()]
    return json.dumps(entries + [r.to_json() for r in results], indent=2)


def junit(results: Sequence[CheckResult], *,
          diagnostics: Sequence[tuple[str, Diagnostic]] = ()) -> str:
    """JUnit XML: one test suite per definition, one test case per property;
    an input that could not be loaded is a suite with one errored case per
    diagnostic."""
    suites = ET.Element("testsuites", name="sagaproof")
    for path, diags in _by_file(diagnostics).items():
        suite = ET.SubElement(suites, "testsuite", name=path,
                              tests=str(len(diags)), failures="0",
                              errors=str(len(diags)), file=path)
        for d in diags:
            case = ET.SubElement(suite, "testcase", classname=path, name=d.code,
                                 time="0.000")
            node = ET.SubElement(case, "error", message=d.message, type=d.code)
            node.text = d.render()
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
