"""SARIF 2.1.0 for code scanning (GitHub, Azure DevOps, VS Code's SARIF viewer).

Each violated or unknown property is a result at the line of the step where it
shows (the last event of the counterexample, or the first of its cycle), with
the counterexample as a ``codeFlow`` whose locations are the steps' lines. Each
diagnostic (bad input, or a structure rule) is a result at its own line and
column, with its code as the rule. Lines come from the source spans the loader
keeps on every IR node (:class:`SourceMap`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from saga_models import (
    Diagnostic,
    Saga,
    Scenario,
    Severity,
    Span,
    structure_diagnostics,
)
from saga_models._span import UNKNOWN_SPAN

from ._result import CheckResult, Counterexample, PropertyResult, Verdict

DOCS_URI = "https://github.com/sagaproof/sagaproof/blob/main/docs/"
"""Where rule help lives (the repository's docs/ folder, rendered by GitHub)."""

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

_PROPERTY_HELP: dict[str, str] = {
    "compensation_completeness": "After an abort every step that took effect is "
    "compensated, dependents first, and nothing that never started is "
    "compensated. Fix: give the step a compensation that works without the "
    "action's reply, make the action idempotent, or mark it a pivot.",
    "termination": "Every fair execution reaches a terminal outcome (COMPLETED, "
    "COMPENSATED or STUCK). Fix: bound the retry, or make the retried call "
    "able to succeed (a compensation that needs a result it never got never "
    "succeeds).",
    "eventual_consistency": "Sagas: in every terminal state the participants "
    "agree with the outcome, no effect held twice, none left behind (fix: make "
    "the step idempotent, with a participant that deduplicates). Workflows: "
    "every quiescent state matches a declared outcome.",
    "structure": "Pivot rules, compensations present, retriable steps unbounded, "
    "no unreachable step.",
    "deadlock_freedom": "No quiescent state is neither final nor a declared "
    "outcome.",
    "no_unhandled_event": "Every event delivered to a service is handled or "
    "explicitly ignored in the state it arrives in.",
    "idempotency": "A duplicate delivery to a transition declared idempotent "
    "changes nothing.",
    "invariants": "Every declared invariant holds in every reachable state.",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceMap:
    """Where the named parts of one definition are written.

    Built from the IR's spans; the SARIF writer uses it to put a result and the
    steps of its counterexample on their lines.
    """

    root: Span = UNKNOWN_SPAN
    """The definition as a whole (its ``saga:``/``workflow:`` key)."""
    spans: Mapping[str, Span] = field(default_factory=dict)
    """A step's or a service's span by name."""
    handlers: Mapping[tuple[str, str], Span] = field(default_factory=dict)
    """A workflow transition's span by ``(service, event)`` (the first one)."""
    structure: tuple[Diagnostic, ...] = ()
    """The diagnostics behind the ``structure`` verdict, with their spans."""

    @classmethod
    def of(cls, definition: Any) -> SourceMap:
        """The map of a saga, a scenario or a workflow (an empty one for
        anything else)."""
        if isinstance(definition, Scenario):
            # A verdict is placed in the scenario file (a step's line is in
            # another file, its saga's); structure diagnostics keep their own
            # files and lines.
            maps = [cls.of(m.saga) for m in definition.members]
            return cls(root=definition.span,
                       structure=tuple(d for m in maps for d in m.structure))
        if isinstance(definition, Saga):
            # The same list the structure property reports (verifier._saga_ts).
            structural = tuple(
                d for d in (*structure_diagnostics(definition),
                            *definition.import_diagnostics)
                if d.severity is Severity.ERROR
            )
            return cls(root=definition.span,
                       spans={s.name: s.span for s in definition.steps},
                       structure=structural)
        services = getattr(definition, "services", None)
        if services is None:
            return cls()
        handlers: dict[tuple[str, str], Span] = {}
        for svc in services:
            for t in svc.transitions:
                if t.on is not None:
                    handlers.setdefault((svc.name, t.on), t.span)
        return cls(root=getattr(definition, "span", UNKNOWN_SPAN),
                   spans={s.name: s.span for s in services}, handlers=handlers)

    def event_span(self, event: Mapping[str, object] | None) -> Span | None:
        """The line an event of a counterexample belongs to, if known."""
        if not event:
            return None
        service, name = event.get("service"), event.get("event")
        if isinstance(service, str) and isinstance(name, str):
            found = self.handlers.get((service, name))
            if found is not None and found.line:
                return found
        for key in ("step", "service"):
            who = event.get(key)
            if isinstance(who, str):
                span = self.spans.get(who)
                if span is not None and span.line:
                    return span
        return None


def _uri(path: str) -> str:
    # GitHub resolves relative URIs against the checkout; an absolute path
    # becomes a file URI (a relative one would be wrong).
    p = PurePath(path)
    if p.is_absolute():
        return Path(path).as_uri()
    return p.as_posix()


def _location(file: str, span: Span | None, message: str = "") -> dict[str, Any]:
    region: dict[str, int] = {"startLine": max(1, span.line if span else 1)}
    if span is not None and span.line and span.column:
        region["startColumn"] = span.column
    loc: dict[str, Any] = {"physicalLocation": {
        "artifactLocation": {"uri": _uri(file)}, "region": region,
    }}
    if message:
        loc["message"] = {"text": message}
    return loc


def _help_uri(name: str) -> str:
    # The anchors of docs/properties.md (GitHub's heading slugs).
    return f"{DOCS_URI}properties.md#{name.replace('_', '-')}"


def _property_rule(name: str) -> dict[str, Any]:
    text = _PROPERTY_HELP.get(name, name.replace("_", " "))
    return {
        "id": name,
        "name": "".join(w.capitalize() for w in name.split("_")),
        "shortDescription": {"text": name.replace("_", " ")},
        "fullDescription": {"text": text},
        "help": {"text": text,
                 "markdown": f"**{name}**: {text} See [the properties]"
                 f"({_help_uri(name)})."},
        "helpUri": _help_uri(name),
        "defaultConfiguration": {"level": "error"},
    }


def _diagnostic_rule(d: Diagnostic) -> dict[str, Any]:
    table = ("workflow_diagnostics.md" if d.code.startswith("WF")
             else "diagnostics.md")
    help_text = d.help or "See the table of diagnostics."
    return {
        "id": d.code,
        "shortDescription": {"text": d.code},
        "help": {"text": help_text},
        "helpUri": f"{DOCS_URI}{table}",
        "defaultConfiguration": {"level": d.severity.value},
    }


def _diagnostic_result(d: Diagnostic, *, file: str,
                       prop: str | None = None) -> dict[str, Any]:
    text = f"{d.code}: {d.message}" + (f"\nhelp: {d.help}" if d.help else "")
    props: dict[str, object] = {"help": d.help}
    if d.span.pointer:
        props["pointer"] = d.span.pointer
    if prop is not None:
        props["property"] = prop
    return {
        "ruleId": d.code,
        "level": d.severity.value,
        "message": {"text": text},
        "locations": [_location(d.span.file if d.span.line else file, d.span)],
        "properties": props,
    }


def _code_flow(cex: Counterexample, smap: SourceMap, file: str) -> dict[str, Any]:
    locations = []
    for i, step in enumerate(cex.steps[1:], start=1):
        span = smap.event_span(step.event) or smap.root
        mark = ("  <- cycle starts here"
                if cex.loop_start is not None and i == cex.loop_start + 1 else "")
        locations.append({
            "location": _location(file, span, f"{i}. {step.action}{mark}"),
            "executionOrder": i,
        })
    return {"message": {"text": cex.violation or "counterexample"},
            "threadFlows": [{"locations": locations}]}


def _primary_span(cex: Counterexample | None, smap: SourceMap) -> Span:
    # Where a reader should look first: the step the cycle starts on, or the
    # last step that acted before the violation.
    if cex is None:
        return smap.root
    order = list(cex.steps[1:])
    if cex.loop_start is not None:
        order = order[cex.loop_start:] or order
    else:
        order.reverse()
    for step in order:
        span = smap.event_span(step.event)
        if span is not None:
            return span
    return smap.root


def _property_result(res: CheckResult, r: PropertyResult,
                     smap: SourceMap) -> dict[str, Any]:
    from ._trace_text import counterexample_text

    message = f"{res.kind} '{res.definition}': {r.property} {r.verdict.value}: "
    message += r.reason
    if r.counterexample is not None:
        message += "\n" + counterexample_text(r.counterexample)
    out: dict[str, Any] = {
        "ruleId": r.property,
        "level": "error" if r.verdict is Verdict.VIOLATED else "warning",
        "message": {"text": message},
        "locations": [_location(res.source, _primary_span(r.counterexample,
                                                          smap))],
        "properties": {"verdict": r.verdict.value, "faultModel": r.fault_model,
                       "definition": res.definition, "backend": r.backend},
    }
    if r.stats.search_note:
        # Hash compaction or bitstate: the estimate SPIN prints, kept beside
        # the verdict it qualifies.
        out["properties"]["storage"] = r.stats.search_note
        out["properties"]["omissionProbability"] = r.stats.omission_probability
    if r.counterexample is not None:
        out["codeFlows"] = [_code_flow(r.counterexample, smap, res.source)]
    return out


def sarif(
    results: Sequence[CheckResult],
    *,
    diagnostics: Sequence[tuple[str, Diagnostic]] = (),
    sources: Sequence[SourceMap] | None = None,
    tool_version: str = "",
) -> str:
    """SARIF 2.1.0: a result per violated or unknown property and per diagnostic.

    Args:
        results: The verdicts, one entry per definition.
        diagnostics: ``(path, diagnostic)`` for each file that could not be
            loaded; each is a result at its own location.
        sources: One :class:`SourceMap` per entry of ``results`` (same order),
            to put results on their lines; without it they go on line 1.
        tool_version: The version reported as the tool's.
    """
    rules: dict[str, dict[str, Any]] = {}
    findings: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for path, d in diagnostics:
        if path.startswith("<"):
            # A usage or configuration problem has no file to annotate: it
            # is a notification of the run, not a result (a result's
            # location must be a real artifact).
            notifications.append({
                "descriptor": {"id": d.code},
                "level": d.severity.value,
                "message": {"text": f"{d.code}: {d.message}"
                            + (f"\nhelp: {d.help}" if d.help else "")},
            })
            continue
        rules.setdefault(d.code, _diagnostic_rule(d))
        findings.append(_diagnostic_result(d, file=path))
    maps = list(sources) if sources is not None else [SourceMap()] * len(results)
    for res, smap in zip(results, maps, strict=True):
        for r in res.results:
            if r.verdict is Verdict.HOLDS:
                continue
            if r.property == "structure" and smap.structure:
                for d in smap.structure:
                    rules.setdefault(d.code, _diagnostic_rule(d))
                    findings.append(_diagnostic_result(d, file=res.source,
                                                       prop="structure"))
                continue
            rules.setdefault(r.property, _property_rule(r.property))
            findings.append(_property_result(res, r, smap))
    ids = list(rules)
    for f in findings:
        f["ruleIndex"] = ids.index(f["ruleId"])
    driver: dict[str, Any] = {
        "name": "sagaproof",
        "informationUri": DOCS_URI.removesuffix("blob/main/docs/"),
        "rules": list(rules.values()),
    }
    if tool_version:
        driver["version"] = tool_version
        driver["semanticVersion"] = tool_version
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": driver},
            "results": findings,
            "invocations": [{
                "executionSuccessful": not any(
                    n["level"] == "error" for n in notifications),
                "toolExecutionNotifications": notifications,
            }],
            "columnKind": "unicodeCodePoints",
        }],
    }
    return json.dumps(doc, indent=2)
