"""Writes small BPMN 2.0 processes (the golden files in ``bpmn/`` and the
generated processes of the SpiffWorkflow differential).

A process is a list of elements and sequence flows; each element is one line
of XML, so a diagnostic's line number is easy to check by eye.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/'
        'MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
        'id="defs" targetNamespace="http://sagaproof/test">\n')


@dataclass
class Process:
    """A mutable builder: add elements and flows, then :meth:`xml`."""

    pid: str = "p"
    lines: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    """errorRef id -> error code."""
    flows: int = 0

    def add(self, line: str) -> Process:
        self.lines.append("    " + line)
        return self

    def start(self, ident: str = "start") -> Process:
        return self.add(f'<bpmn:startEvent id="{ident}"/>')

    def end(self, ident: str = "end", name: str = "") -> Process:
        label = f' name="{name}"' if name else ""
        return self.add(f'<bpmn:endEvent id="{ident}"{label}/>')

    def task(self, ident: str, *, handler: bool = False,
             literal: bool = False) -> Process:
        extra = ' isForCompensation="true"' if handler else ""
        if literal:
            extra += ' camunda:expression="#{true}"'
        return self.add(f'<bpmn:serviceTask id="{ident}" name="{ident}"{extra}/>')

    def error(self, code: str) -> str:
        ref = f"Error_{code}"
        self.errors[ref] = code
        return ref

    def boundary_error(self, ident: str, on: str, code: str | None = None
                       ) -> Process:
        ref = f' errorRef="{self.error(code)}"' if code else ""
        return self.add(f'<bpmn:boundaryEvent id="{ident}" attachedToRef="{on}">'
                        f'<bpmn:errorEventDefinition{ref}/></bpmn:boundaryEvent>')

    def boundary_timer(self, ident: str, on: str) -> Process:
        return self.add(f'<bpmn:boundaryEvent id="{ident}" attachedToRef="{on}">'
                        '<bpmn:timerEventDefinition><bpmn:timeDuration>PT1M'
                        '</bpmn:timeDuration></bpmn:timerEventDefinition>'
                        '</bpmn:boundaryEvent>')

    def compensated_by(self, task: str, handler: str) -> Process:
        """A compensation boundary event on ``task``, associated with the
        ``isForCompensation`` task ``handler``."""
        self.task(handler, handler=True)
        self.add(f'<bpmn:boundaryEvent id="comp_{task}" attachedToRef="{task}">'
                 '<bpmn:compensateEventDefinition/></bpmn:boundaryEvent>')
        return self.add(f'<bpmn:association id="assoc_{task}" '
                        f'associationDirection="One" sourceRef="comp_{task}" '
                        f'targetRef="{handler}"/>')

    def throw_compensation(self, ident: str, *, ref: str | None = None,
                           end: bool = False) -> Process:
        kind = "endEvent" if end else "intermediateThrowEvent"
        attr = f' activityRef="{ref}"' if ref else ""
        return self.add(f'<bpmn:{kind} id="{ident}"><bpmn:compensateEventDefinition'
                        f'{attr}/></bpmn:{kind}>')

    def end_error(self, ident: str, code: str) -> Process:
        return self.add(f'<bpmn:endEvent id="{ident}"><bpmn:errorEventDefinition '
                        f'errorRef="{self.error(code)}"/></bpmn:endEvent>')

    def gateway(self, ident: str, kind: str = "exclusive") -> Process:
        return self.add(f'<bpmn:{kind}Gateway id="{ident}"/>')

    def flow(self, *chain: str) -> Process:
        for src, dst in itertools.pairwise(chain):
            self.flows += 1
            self.add(f'<bpmn:sequenceFlow id="{self.pid}_f{self.flows}" '
                     f'sourceRef="{src}" '
f'targetRef="{dst}"/>')
        return self

    def branch(self, gateway: str, target: str, condition: str) -> Process:
        """A conditional flow out of an exclusive gateway (a Python
        expression, as SpiffWorkflow evaluates it)."""
        self.flows += 1
        return self.add(f'<bpmn:sequenceFlow id="{self.pid}_f{self.flows}" '
                        f'sourceRef="{gateway}" targetRef="{target}">'
                        '<bpmn:conditionExpression>'
                        f'{condition}</bpmn:conditionExpression>'
                        '</bpmn:sequenceFlow>')

    def subprocess(self, ident: str, inner: Process, *,
                   transaction: bool = False) -> Process:
        """An embedded sub-process (or transaction) ``ident`` whose start
        event is ``{ident}_start``; ``inner`` holds its other elements."""
        tag = "transaction" if transaction else "subProcess"
        self.add(f'<bpmn:{tag} id="{ident}">')
        self.add(f'  <bpmn:startEvent id="{ident}_start"/>')
        self.lines.extend("  " + line for line in inner.lines)
        self.errors.update(inner.errors)
        return self.add(f"</bpmn:{tag}>")

    def cancel_end(self, ident: str) -> Process:
        return self.add(f'<bpmn:endEvent id="{ident}"><bpmn:cancelEventDefinition/>'
                        '</bpmn:endEvent>')

    def boundary_cancel(self, ident: str, on: str) -> Process:
        return self.add(f'<bpmn:boundaryEvent id="{ident}" attachedToRef="{on}">'
                        '<bpmn:cancelEventDefinition/></bpmn:boundaryEvent>')

    def event_subprocess(self, ident: str, code: str | None, inner: Process
                         ) -> Process:
        """An interrupting error event sub-process whose start event
        ``{ident}_start`` catches ``code`` (every error if None); ``inner``
        holds its other elements and flows."""
        ref = f' errorRef="{self.error(code)}"' if code else ""
        self.add(f'<bpmn:subProcess id="{ident}" triggeredByEvent="true">')
        self.add(f'  <bpmn:startEvent id="{ident}_start"><bpmn:errorEventDefinition'
                 f'{ref}/></bpmn:startEvent>')
        self.lines.extend("  " + line for line in inner.lines)
        self.errors.update(inner.errors)
        return self.add("</bpmn:subProcess>")

    def xml(self) -> str:
        errors = "".join(f'  <bpmn:error id="{ref}" errorCode="{code}"/>\n'
                         for ref, code in self.errors.items())
        return (HEAD + f'  <bpmn:process id="{self.pid}" isExecutable="true">\n'
                + "\n".join(self.lines) + "\n  </bpmn:process>\n" + errors
                + "</bpmn:definitions>\n")


def goldens() -> dict[str, Process]:
    """The hand-checked golden processes (``bpmn/<name>.bpmn``); the
    expected verdicts are in ``test_bpmn.py``, with how each was checked."""
    out: dict[str, Process] = {}

    def saga(name: str, *, refs: tuple[str | None, ...] = (None,),
             end: bool = False, middle: bool = False) -> Process:
        # A -> B [-> M] -> C -> ok; C's error -> compensation -> 'failed'.
        p = Process(pid=name).start().task("A").task("B").task("C")
        if middle:
            p.task("M")
        p.end("ok").compensated_by("A", "UndoA").compensated_by("B", "UndoB")
        p.boundary_error("C_failed", "C", "E")
        throws = [f"undo{i}" for i in range(len(refs))]
        for ident, ref in zip(throws, refs, strict=True):
            p.throw_compensation(ident, ref=ref, end=end and ident == throws[-1])
        p.flow("start", "A", "B", *(["M"] if middle else []), "C", "ok")
        if end:
            p.flow("C_failed", *throws)
        else:
            p.end("failed", "Trip canceled").flow("C_failed", *throws, "failed")
        return p

    out["reverse_order"] = saga("reverse_order")
    out["not_compensated"] = saga("not_compensated", middle=True)
    out["activity_ref_one"] = saga("activity_ref_one", refs=("B",))
    out["activity_ref_both"] = saga("activity_ref_both", refs=("B", "A"))
    out["compensation_end"] = saga("compensation_end", end=True)
    out["compensation_end_ref"] = saga("compensation_end_ref", refs=("A",),
                                       end=True)
    p = Process(pid="uncaught_error_end").start().task("A").gateway("g")
    p.end("ok").end_error("boom", "E").compensated_by("A", "UndoA")
    p.flow("start", "A", "g").branch("g", "ok", "x == 1")
    out["uncaught_error_end"] = p.branch("g", "boom", "x != 1")
    p = Process(pid="caught_error_end").start().task("A").gateway("g")
    p.end("ok").end_error("boom", "E").compensated_by("A", "UndoA")
    p.flow("start", "A", "g").branch("g", "ok", "x == 1")
    p.branch("g", "boom", "x != 1")
    inner = Process(pid="esp").throw_compensation("undo").end("failed")
    inner.flow("esp_start", "undo", "failed")
    out["caught_error_end"] = p.event_subprocess("esp", "E", inner)
    # C has a handler too; it fails (no effect) or completes before D fails.
    for name, after in (("only_completed", False), ("completed_then", True)):
        p = Process(pid=name).start().task("A").task("C")
        p.compensated_by("A", "UndoA").compensated_by("C", "UndoC")
        p.end("ok").end("failed").throw_compensation("undo")
        if after:
            p.task("D").boundary_error("D_failed", "D", "E")
            p.flow("start", "A", "C", "D", "ok").flow("D_failed", "undo", "failed")
        else:
            p.boundary_error("C_failed", "C", "E")
            p.flow("start", "A", "C", "ok").flow("C_failed", "undo", "failed")
        out[name] = p
    # C has a timer boundary into the compensation (and a handler of its
    # own): a late C may still have booked.
    p = saga("timer_interrupts")
    p.compensated_by("C", "UndoC").boundary_timer("C_late", "C")
    out["timer_interrupts"] = p.flow("C_late", "undo0")
    # A, then B and C in parallel; the error event sub-process catches E from
    # C (stopping B if it is still running) and compensates what completed.
    for name, b_handler in (("parallel_esp", True), ("parallel_no_handler",
                                                     False)):
        p = Process(pid=name).start().task("A").task("B").task("C")
        p.gateway("fork", "parallel").gateway("join", "parallel").end("ok")
        p.compensated_by("A", "UndoA").compensated_by("C", "UndoC")
        if b_handler:
            p.compensated_by("B", "UndoB")
        p.flow("start", "A", "fork", "B", "join", "ok").flow("fork", "C", "join")
        inner = Process(pid="esp").throw_compensation("undo").end("failed")
        inner.flow("esp_start", "undo", "failed")
        out[name] = p.event_subprocess("esp", "E", inner)
    # A transaction: B, then a gateway to its end or to a cancel end event;
    # cancelling compensates what completed inside, then leaves by the
    # cancel boundary event.
    for name, handler in (("transaction_cancel", True),
                          ("transaction_no_handler", False)):
        inner = Process(pid="tx").task("B").gateway("x").end("tx_done")
        inner.cancel_end("tx_cancel")
        if handler:
            inner.compensated_by("B", "UndoB")
        inner.flow("tx_start", "B", "x").branch("x", "tx_done", "v == 0")
        inner.branch("x", "tx_cancel", "v == 1")
        p = Process(pid=name).start().subprocess("tx", inner, transaction=True)
        p.end("ok").boundary_cancel("tx_cancelled", "tx").end("cancelled")
        out[name] = p.flow("start", "tx", "ok").flow("tx_cancelled", "cancelled")
    # A sub-process S holding B then C; E from C interrupts S (its boundary
    # event), or S completes and D throws E afterwards. A compensation thrown
    # at the process level reaches B only if S completed.
    for name, late in (("subprocess_interrupted", False),
                       ("subprocess_completed", True)):
        inner = Process(pid="s").task("B").task("C").end("s_end")
        inner.compensated_by("B", "UndoB").compensated_by("C", "UndoC")
        inner.flow("S_start", "B", "C", "s_end")
        p = Process(pid=name).start().subprocess("S", inner).end("ok")
        p.throw_compensation("undo").end("failed")
        if late:
            p.task("D").boundary_error("D_failed", "D", "E")
            p.flow("start", "S", "D", "ok").flow("D_failed", "undo", "failed")
        else:
            p.boundary_error("S_failed", "S", "E")
            p.flow("start", "S", "ok").flow("S_failed", "undo", "failed")
        out[name] = p
    return out


if __name__ == "__main__":
    # Rewrites the golden files: python tests/importers/bpmn_build.py
    from pathlib import Path

    here = Path(__file__).parent / "bpmn"
    here.mkdir(exist_ok=True)
    for name, proc in goldens().items():
        (here / f"{name}.bpmn").write_text(proc.xml())
