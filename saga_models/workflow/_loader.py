"""Lowering a parsed workflow document into the frozen IR.

Every problem is collected as a located :class:`Diagnostic` (codes ``WF1xx``,
listed in ``docs/workflow_diagnostics.md``) and raised together, so one run
shows every mistake in the file.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from .._errors import Diagnostic, InvalidDefinition
from .._loader import parse_duration
from .._source import Document
from .._span import Span
from ._expr import Expr, ExprError, parse_expr
from ._ir import (
    Branch,
    Bus,
    Counter,
    Delivery,
    Invariant,
    Order,
    OutcomeSpec,
    Service,
    Transition,
    Workflow,
)
from ._schema import workflow_schema_diagnostics
from ._validate import workflow_diagnostics

_TOP = {"$schema", "workflow", "bus", "start", "services", "counters", "outcomes",
        "invariants", "description"}
_BUS = {"delivery", "order", "capacity"}
_SERVICE = {"initial", "final", "states", "transitions", "ignore", "dedup",
            "description"}
_TRANSITION = {"from", "on", "after", "to", "emit", "add", "choose", "guard",
               "when", "idempotent", "handler", "description"}
_BRANCH = {"to", "emit", "add", "description"}
_COUNTER = {"initial", "cap"}
_INVARIANT = {"name", "expr"}


def _bool_hint(value: Any) -> str:
    """YAML 1.1 reads ON, OFF, YES, NO, Y and N as booleans."""
    if isinstance(value, bool):
        return (" (YAML reads ON/OFF/YES/NO as true/false: quote the name, "
                "e.g. 'ON')")
    return ""


class _Lowering:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Diagnostic] = []

    # --- helpers -------------------------------------------------------------
    def err(self, code: str, message: str, pointer: str, help: str,
            *, key: bool = False) -> None:
        span = self.doc.key_span(pointer) if key else self.doc.span(pointer)
        self.problems.append(Diagnostic(code=code, message=message, span=span,
                                        help=help))

    def span(self, pointer: str) -> Span:
        return self.doc.span(pointer)

    def keys(self, raw: Mapping[str, Any], allowed: set[str], pointer: str,
             what: str) -> None:
        for k in raw:
            if k not in allowed:
                close = difflib.get_close_matches(str(k), sorted(allowed), n=1)
                self.err("WF101", f"unknown key {k!r} in {what}",
                         f"{pointer}/{k}",
                         f"did you mean {close[0]!r}?" if close
                         else f"allowed keys: {', '.join(sorted(allowed))}",
                         key=True)

    def mapping(self, value: Any, pointer: str, what: str) -> Mapping[str, Any]:
        if isinstance(value, Mapping):
            return value
        self.err("WF102", f"{what} must be a mapping, got {type(value).__name__}",
                 pointer, f"write {what} as 'key: value' lines")
        return {}

    def names(self, value: Any, pointer: str, what: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        self.err("WF102", f"{what} must be a name or a list of names, got "
                 f"{value!r}", pointer, f"write {what}: [a, b]")
        return ()

    def expr(self, text: Any, pointer: str) -> Expr | None:
        try:
            return parse_expr(str(text) if isinstance(text, (int, bool)) else text)
        except ExprError as exc:
            self.err(exc.code, str(exc), pointer,
                     "write e.g. \"charges < 2 and orders.state == 'PENDING'\"")
            return None

    def flag(self, raw: Mapping[str, Any], key: str, pointer: str) -> bool:
        value = raw.get(key, False)
        if not isinstance(value, bool):
            self.err("WF102", f"{key}={value!r} must be true or false",
                     f"{pointer}/{key}", f"write {key}: true")
            return False
        return value

    # --- lowering --------------------------------------------------------------
    def workflow(self) -> Workflow:
        data = self.doc.data
        self.keys(data, _TOP, "", "a workflow")
        name = data.get("workflow")
        if not isinstance(name, str) or not name:
            self.err("WF102", f"workflow={name!r} must be a non-empty name",
                     "/workflow", "write 'workflow: order_choreography'")
            name = str(name)
        bus = self.bus(data.get("bus"))
        start = self.names(data.get("start"), "/start", "start")
        services_raw = self.mapping(data.get("services") or {}, "/services",
                                    "services")
        services = tuple(self.service(str(n), s, f"/services/{n}")
                         for n, s in services_raw.items())
        counters = self.counters(data.get("counters"))
        outcomes = self.outcomes(data.get("outcomes"))
        invariants = self.invariants(data.get("invariants"))
        return Workflow(name=name, services=services, bus=bus, start=start,
                        counters=counters, outcomes=outcomes,
                        invariants=invariants, source_format=self.doc.fmt,
                        span=self.span(""))

    def bus(self, raw: Any) -> Bus:
        if raw is None:
            return Bus(span=self.span(""))
        raw = self.mapping(raw, "/bus", "bus")
        self.keys(raw, _BUS, "/bus", "bus")
        delivery, order = Delivery.EXACTLY_ONCE, Order.UNORDERED
        try:
            delivery = Delivery(raw.get("delivery", "exactly_once"))
        except ValueError:
            self.err("WF112", f"delivery={raw.get('delivery')!r} is not a delivery "
                     "contract", "/bus/delivery",
                     "write exactly_once or at_least_once")
        try:
            order = Order(raw.get("order", "unordered"))
        except ValueError:
            self.err("WF112", f"order={raw.get('order')!r} is not a delivery order",
                     "/bus/order", "write fifo or unordered")
        capacity = raw.get("capacity", 3)
        if (not isinstance(capacity, int) or isinstance(capacity, bool)
                or not 1 <= capacity <= 100):
            self.err("WF112", f"capacity={capacity!r} must be a whole number "
                     "from 1 to 100", "/bus/capacity", "write e.g. capacity: 3")
            capacity = 3
        return Bus(delivery=delivery, order=order, capacity=capacity,
                   span=self.span("/bus"))

    def service(self, name: str, raw: Any, ptr: str) -> Service:
        raw = self.mapping(raw, ptr, f"service {name!r}")
        self.keys(raw, _SERVICE, ptr, f"service {name!r}")
        initial = raw.get("initial")
        if not isinstance(initial, str):
            self.err("WF102", f"service {name!r} needs initial=<state>, got "
                     f"{initial!r}", ptr, "write 'initial: NEW'" + _bool_hint(initial))
            initial = "?"
        final = self.names(raw.get("final"), f"{ptr}/final", "final")
        declared = self.names(raw.get("states"), f"{ptr}/states", "states")
        ignore = self.names(raw.get("ignore"), f"{ptr}/ignore", "ignore")
        transitions: list[Transition] = []
        raw_ts = raw.get("transitions") or []
        if not isinstance(raw_ts, list):
            self.err("WF102", f"transitions of {name!r} must be a list",
                     f"{ptr}/transitions", "write '- {from: A, on: e, to: B}' "
                     "entries")
            raw_ts = []
        for i, t in enumerate(raw_ts):
            tr = self.transition(t, f"{ptr}/transitions/{i}")
            if tr is not None:
                transitions.append(tr)
        seen: dict[str, None] = {initial: None}
        for s in declared:
            seen.setdefault(s)
        for t in transitions:
            seen.setdefault(t.source)
            for b in t.branches:
                seen.setdefault(b.to)
        # Final states are not added: a final state no transition reaches is
        # reported as unknown (a typo), not silently made a new state.
        return Service(name=name, initial=initial, final=final,
                       states=tuple(seen) if not declared else
                       tuple(dict.fromkeys((initial, *declared))),
                       transitions=tuple(transitions), ignore=ignore,
                       dedup=self.flag(raw, "dedup", ptr), span=self.span(ptr))

    def transition(self, raw: Any, ptr: str) -> Transition | None:
        raw = self.mapping(raw, ptr, "a transition")
        if not raw:
            return None
        self.keys(raw, _TRANSITION, ptr, "a transition")
        source = raw.get("from")
        if not isinstance(source, str):
            self.err("WF102", f"a transition needs from=<state>, got {source!r}",
                     ptr, "write 'from: NEW'" + _bool_hint(source))
            return None
        on, after = raw.get("on"), raw.get("after")
        seconds: float | None = None
        if (on is None) == (after is None):
            self.err("WF102", "a transition needs exactly one of 'on: <event>' "
                     "and 'after: <duration>'", ptr,
                     "write 'on: order_placed' (an event) or 'after: 30s' "
                     "(a timer)")
            return None
        if on is not None and not isinstance(on, str):
            self.err("WF102", f"on={on!r} must be an event name", f"{ptr}/on",
                     "write 'on: order_placed'")
            return None
        if after is not None:
            try:
                seconds = parse_duration(after)
            except ValueError as exc:
                self.err("WF102", str(exc), f"{ptr}/after", "write e.g. after: 30s")
                return None
        guard_text = raw.get("guard", raw.get("when"))
        guard = self.expr(guard_text, f"{ptr}/guard") if guard_text is not None \
            else None
        if "choose" in raw:
            for k in ("to", "emit", "add"):
                if k in raw:
                    self.err("WF102", f"{k!r} beside 'choose': each choice has "
                             "its own", f"{ptr}/{k}", f"move {k!r} into the "
                             "choices under 'choose:'", key=True)
            raw_bs = raw["choose"]
            if not isinstance(raw_bs, list) or not raw_bs:
                self.err("WF102", "choose must be a non-empty list of outcomes",
                         f"{ptr}/choose", "write '- {to: A, emit: [e]}' entries")
                return None
            branches = []
            for j, b in enumerate(raw_bs):
                bptr = f"{ptr}/choose/{j}"
                bm = self.mapping(b, bptr, "a choice")
                self.keys(bm, _BRANCH, bptr, "a choice")
                branches.append(self.branch(bm, bptr, source))
            chosen = True
        else:
            branches = [self.branch(raw, ptr, source)]
            chosen = False
        handler = raw.get("handler")
        if handler is not None and not isinstance(handler, str):
            self.err("WF102", f"handler={handler!r} must be a name",
                     f"{ptr}/handler", "write 'handler: reserve'")
            handler = None
        return Transition(source=source, on=on, after=seconds, guard=guard,
                          branches=tuple(branches), choose=chosen,
                          idempotent=self.flag(raw, "idempotent", ptr),
                          handler=handler, span=self.span(ptr))

    def branch(self, raw: Mapping[str, Any], ptr: str, source: str) -> Branch:
        to = raw.get("to", source)
        if not isinstance(to, str):
            self.err("WF102", f"to={to!r} must be a state name", f"{ptr}/to",
                     "write 'to: APPROVED'" + _bool_hint(to))
            to = source
        emit = self.names(raw.get("emit"), f"{ptr}/emit", "emit")
        add: list[tuple[str, int]] = []
        raw_add = raw.get("add")
        if raw_add is not None:
            for k, v in self.mapping(raw_add, f"{ptr}/add", "add").items():
                if not isinstance(v, int) or isinstance(v, bool):
                    self.err("WF102", f"add {k}={v!r} must be a whole number",
                             f"{ptr}/add/{k}", f"write 'add: {{{k}: 1}}'")
                    continue
                add.append((str(k), v))
        return Branch(to=to, emit=emit, add=tuple(add), span=self.span(ptr))

    def counters(self, raw: Any) -> tuple[Counter, ...]:
        if raw is None:
            return ()
        out = []
        for name, spec in self.mapping(raw, "/counters", "counters").items():
            ptr = f"/counters/{name}"
            initial, cap = 0, 3
            if isinstance(spec, Mapping):
                self.keys(spec, _COUNTER, ptr, f"counter {name!r}")
                initial, cap = spec.get("initial", 0), spec.get("cap", 3)
            else:
                initial = spec
            ok = all(isinstance(v, int) and not isinstance(v, bool)
                     for v in (initial, cap))
            if not ok or not 1 <= cap <= 255 or not 0 <= initial <= cap:
                self.err("WF102", f"counter {name!r}: initial={initial!r}, "
                         f"cap={cap!r} must be whole numbers, 0 <= initial <= "
                         "cap <= 255", ptr, f"write '{name}: {{initial: 0, cap: 3}}'")
                initial, cap = 0, 3
            out.append(Counter(name=str(name), initial=initial, cap=cap,
                               span=self.span(ptr)))
        return tuple(out)

    def outcomes(self, raw: Any) -> tuple[OutcomeSpec, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.err("WF102", "outcomes must be a list of {service: state} "
                     "mappings", "/outcomes",
                     "write '- {orders: APPROVED, customers: RESERVED}'")
            return ()
        out = []
        for i, o in enumerate(raw):
            ptr = f"/outcomes/{i}"
            pairs = []
            for k, v in self.mapping(o, ptr, "an outcome").items():
                if not isinstance(v, str):
                    self.err("WF102", f"outcome {k}={v!r} must be a state name",
                             f"{ptr}/{k}", f"write '{k}: <STATE>'")
                    continue
                pairs.append((str(k), v))
            out.append(OutcomeSpec(states=tuple(pairs), span=self.span(ptr)))
        return tuple(out)

    def invariants(self, raw: Any) -> tuple[Invariant, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.err("WF102", "invariants must be a list of expressions",
                     "/invariants", "write '- charges <= 1'")
            return ()
        out = []
        for i, item in enumerate(raw):
            ptr = f"/invariants/{i}"
            if isinstance(item, Mapping):
                self.keys(item, _INVARIANT, ptr, "an invariant")
                text, name = item.get("expr"), item.get("name")
            else:
                text, name = item, None
            e = self.expr(text, ptr)
            if e is not None:
                out.append(Invariant(name=str(name or e.text), expr=e,
                                     span=self.span(ptr)))
        return tuple(out)


def load_workflow_document(doc: Document) -> Workflow:
    """Lower a parsed document (top-level ``workflow:`` key) into a
    :class:`Workflow`, or raise :class:`InvalidDefinition` with every problem."""
    if not isinstance(doc.data, Mapping):
        raise InvalidDefinition((Diagnostic(
            code="WF102", message="a workflow definition must be a mapping",
            span=doc.span(""), help="start the file with 'workflow: <name>'"),))
    low = _Lowering(doc)
    wf = low.workflow()
    problems: Iterable[Diagnostic] = low.problems
    if not problems and doc.fmt in {"yaml", "json"}:
        # Files only: builder data may hold tuples, which JSON Schema does not
        # take for arrays.
        problems = workflow_schema_diagnostics(doc)
    problems = problems or workflow_diagnostics(wf)
    problems = tuple(problems)
    if problems:
        raise InvalidDefinition(problems)
    return wf


def load_workflow_data(data: Mapping[str, Any], *, file: str = "<builder>",
                       fmt: str = "builder") -> Workflow:
    """Lower plain data (what the builder assembles) the same way as a file."""
    return load_workflow_document(Document(data=dict(data), file=file, fmt=fmt))
