"""Lowering a workflow to the flat integer table of :mod:`saga_models._wf_kernel`.

Done once per workflow (``semantics.tables`` caches it). Guards are compiled
from the checked expression tree (:mod:`._expr`) to the kernel's stack bytecode:
the tree is the one both evaluators already walk, so the bytecode computes the
same value on every state (the parity tests check it against
:meth:`Expr.evaluate`).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence

from .. import _wf_kernel as K
from ._expr import Expr
from ._ir import Workflow

_CMP_OP = {ast.Eq: K.OP_EQ, ast.NotEq: K.OP_NE, ast.Lt: K.OP_LT,
           ast.LtE: K.OP_LE, ast.Gt: K.OP_GT, ast.GtE: K.OP_GE}
_BIN_OP = {ast.Add: K.OP_ADD, ast.Sub: K.OP_SUB, ast.Mult: K.OP_MUL}


class _GuardCompiler:
    """Emits bytecode (two ints per instruction) and tracks the stack depth."""

    def __init__(self, counters: dict[str, int], services: dict[str, int],
                 gid: Callable[[str], int]) -> None:
        self.counters = counters
        self.services = services
        self.gid = gid
        self.code: list[int] = []
        self.depth = 0

    def compile(self, expr: Expr) -> int:
        """Append ``expr``'s code; return where it starts."""
        start = len(self.code)
        self._emit(expr.tree, 0)
        self._op(K.OP_END)
        return start

    def _op(self, op: int, arg: int = 0) -> None:
        self.code += [op, arg]

    def _push(self, base: int) -> None:
        self.depth = max(self.depth, base + 1)

    def _emit(self, node: ast.expr, base: int) -> None:
        """Code that leaves ``node``'s value on top of ``base`` values."""
        if isinstance(node, ast.Constant):
            v = node.value
            assert isinstance(v, (int, str))  # the whitelist admits no other
            self._op(K.OP_PUSH, self.gid(v) if isinstance(v, str) else int(v))
            self._push(base)
        elif isinstance(node, ast.Name):
            if node.id in ("true", "True", "false", "False"):
                self._op(K.OP_PUSH, int(node.id in ("true", "True")))
            else:
                self._op(K.OP_CTR, self.counters[node.id])
            self._push(base)
        elif isinstance(node, ast.Attribute):
            assert isinstance(node.value, ast.Name)
            self._op(K.OP_SST, self.services[node.value.id])
            self._push(base)
        elif isinstance(node, ast.BoolOp):
            self._fold(node.values, base,
                       K.OP_AND if isinstance(node.op, ast.And) else K.OP_OR)
        elif isinstance(node, ast.UnaryOp):
            self._emit(node.operand, base)
            self._op(K.OP_NOT if isinstance(node.op, ast.Not) else K.OP_NEG)
        elif isinstance(node, ast.BinOp):
            self._emit(node.left, base)
            self._emit(node.right, base + 1)
            self._op(_BIN_OP[type(node.op)])
        elif isinstance(node, ast.Compare):
            # A chain is the conjunction of its links (the language has no
            # side effects, so evaluating a middle operand twice is the same).
            left = node.left
            links = list(zip(node.ops, node.comparators, strict=True))
            for n, (op, right) in enumerate(links):
                self._link(left, op, right, base + n)
                left = right
            if len(links) > 1:
                self._op(K.OP_AND, len(links))
        elif isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            args = list(node.args)
            if len(args) == 1 and isinstance(args[0], (ast.Tuple, ast.List)):
                args = list(args[0].elts)
            if node.func.id == "abs":
                self._emit(args[0], base)
                self._op(K.OP_ABS)
            else:
                self._fold(args, base,
                           K.OP_MIN if node.func.id == "min" else K.OP_MAX)
        else:  # pragma: no cover - the checked tree has no other node
            raise ValueError(f"cannot lower {type(node).__name__}")

    def _fold(self, nodes: Sequence[ast.expr], base: int, op: int) -> None:
        for n, sub in enumerate(nodes):
            self._emit(sub, base + n)
        self._op(op, len(nodes))
        self._push(base)

    def _link(self, left: ast.expr, op: ast.cmpop, right: ast.expr,
              base: int) -> None:
        if isinstance(op, (ast.In, ast.NotIn)):
            assert isinstance(right, (ast.Tuple, ast.List))
            for n, item in enumerate(right.elts):
                self._emit(left, base + n)
                self._emit(item, base + n + 1)
                self._op(K.OP_EQ)
            self._op(K.OP_OR, len(right.elts))
            self._push(base)
            if isinstance(op, ast.NotIn):
                self._op(K.OP_NOT)
            return
        self._emit(left, base)
        self._emit(right, base + 1)
        self._op(_CMP_OP[type(op)])


def lower(wf: Workflow, *, slots: Sequence[tuple[int, int]], fifo: bool,
          at_least_once: bool) -> tuple[int, ...]:
    """The kernel's flat table of ``wf`` (layout: :mod:`saga_models._wf_kernel`).

    ``slots`` are the unordered bus's (service, event) slots, or the fifo
    bus's (sender, receiver) channels, in state order.
    """
    ns = len(wf.services)
    events = wf.events
    ne = len(events)
    ev = {e: i for i, e in enumerate(events)}
    counters = {c.name: i for i, c in reversed(list(enumerate(wf.counters)))}
    svc_ix = {s.name: i for i, s in enumerate(wf.services)}
    gids: dict[str, int] = {}

    def gid(name: str) -> int:
        return gids.setdefault(name, len(gids))

    guards = _GuardCompiler(counters, svc_ix, gid)
    slot_of = [-1] * ((ns + 1) * ns if fifo else ns * ne)
    for k, (x, y) in enumerate(slots):
        slot_of[x * ns + y if fifo else x * ne + y] = k
    sub_ptr, sub_idx = [0], []
    for e in events:
        sub_idx += [i for i, s in enumerate(wf.services) if e in s.events]
        sub_ptr.append(len(sub_idx))
    sbase, trbase = [0], [0]
    hptr, hidx, timer, gid_of_state = [0], [], [], []
    trs: list[int] = []
    rows: list[int] = []
    emits: list[int] = []
    adds: list[int] = []
    for i, s in enumerate(wf.services):
        idx = {name: k for k, name in enumerate(s.states)}
        first_tr = trbase[-1]
        for k, t in enumerate(s.transitions):
            pc = -1 if t.guard is None else guards.compile(t.guard)
            trs += [i, k, idx[t.source], -1 if t.on is None else ev[t.on], pc,
                    len(rows) // K.NBR, len(t.branches)]
            for b in t.branches:
                rows += [idx[b.to], len(emits), len(b.emit), len(adds) // 2,
                        len(b.add)]
                emits += [ev[e] for e in b.emit]
                for name, amount in b.add:
                    adds += [counters[name], amount]
        for name in s.states:
            gid_of_state.append(gid(name))
            fired = -1
            for k, t in enumerate(s.transitions):
                if t.source != name:
                    continue
                if t.on is None:
                    fired = first_tr + k  # the last timer on a state wins
                else:
                    hidx.append(first_tr + k)
            hptr.append(len(hidx))
            timer.append(fired)
        sbase.append(sbase[-1] + len(s.states))
        trbase.append(first_tr + len(s.transitions))
    ignore = [int(e in s.ignore) for s in wf.services for e in events]
    parts = [
        [x for p in slots for x in p], slot_of, sub_ptr, sub_idx, sbase, trbase,
        hptr, hidx, timer, trs, rows, emits, adds,
        [c.cap for c in wf.counters], [c.initial for c in wf.counters], ignore,
        [int(s.dedup) for s in wf.services], gid_of_state,
        [ev[e] for e in wf.start], [], guards.code,
    ]
    counter_base = K.HEADER + 2 * ns
    bus_base = counter_base + len(wf.counters)
    width = len(slots) * wf.bus.capacity if fifo else 2 * len(slots)
    head = [ns, ne, len(wf.counters), int(fifo), int(at_least_once),
            wf.bus.capacity, counter_base, bus_base, bus_base + width,
            len(slots), max(1, guards.depth)]
    assert len(head) == K.W_SLOTS
    offsets, at = [], K.G
    for p in parts:
        offsets.append(at)
        at += len(p)
    # W_NSTART holds a count, not an offset.
    offsets[K.W_NSTART - K.W_SLOTS] = len(wf.start)
    return tuple(head + offsets + [x for p in parts for x in p])
