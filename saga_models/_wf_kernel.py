"""The event-workflow step semantics as a kernel over integer tables.

This is the core of :mod:`saga_models.workflow.semantics`, as
:mod:`saga_models._kernel` is the core of the saga semantics: :func:`enabled_codes`
and :func:`step_into` (with :func:`handle_codes`, :func:`timer_codes` and
:func:`effect_into`, which the runtime asks for one delivery at a time) are the
one definition of what a workflow may do next and what a step does. They are
written in the subset of Python that numba compiles (flat integer tables,
integer step codes, no objects), so the very same functions run interpreted in
the runtime and the conformance check (``semantics.enabled``/``apply``/
``react``/``effect`` call them on tuples and lists) and compiled in the
explicit checker's fast path (``verifier._wf_kernel_bfs``). Nothing here
imports numba or numpy.

A definition is lowered once (``saga_models.workflow._lower``) into one flat
table of ints: a header (``W_*``: sizes, then offsets of the parts), the bus
slots or channels and the matrix that finds them, the subscribers of each
event, per service state its handler transitions (in file order) and its timer,
per transition a row (``TR_*``), per outcome a row (``BR_*``), the emitted
events and counter additions, the ``ignore`` matrix, the de-duplicating
inboxes, the ``start`` events, and the guards compiled to a small stack
bytecode (``OP_*``, two ints per instruction) over counters and service states
(a state is read as a global string id, so ``a.state == b.state`` compares
names, as the expression language does).

A step is one int (:func:`encode`); the state layout is the one
``semantics.py`` documents.
"""

# Chained ``==`` rather than ``in (...)``: the compiled form stays plain integer
# compares, and the interpreted form does not build a tuple per test.
# ruff: noqa: SIM109, PLR1714, PLR0917

from __future__ import annotations

from collections.abc import MutableSequence, Sequence

# --- state layout (semantics.py documents it) ----------------------------------
OVERFLOW, DUPS = 0, 1
HEADER = 2

# --- step kinds (semantics.StepKind in this order) ---------------------------------
K_DELIVER, K_IGNORE, K_DROP, K_UNHANDLED, K_TIMER = 0, 1, 2, 3, 4

# --- a step code: bit fields ----------------------------------------------------------
B_DUP, B_KEEP, B_BRANCH, B_EVENT, B_AT, B_TRANS, B_SERVICE, B_SENDER = (
    3, 4, 5, 13, 21, 29, 42, 52)
MAX_SERVICES = 1_000
"""Services a step code has room for (10 bits, and the sender's 11)."""
MAX_TRANSITIONS = 8_000
"""Transitions of one service a step code has room for (13 bits)."""
MAX_BRANCHES = 256
"""Outcomes of one ``choose`` a step code has room for (8 bits)."""

# --- table layout ----------------------------------------------------------------
(W_NS, W_NE, W_NCTR, W_FIFO, W_ALO, W_CAP, W_CBASE, W_BBASE, W_WIDTH, W_NSLOT,
 W_STACK) = range(11)
(W_SLOTS, W_SLOT_OF, W_SUB_PTR, W_SUB_IDX, W_SBASE, W_TRBASE, W_HPTR, W_HIDX,
 W_TIMER, W_TR, W_BR, W_EMIT, W_ADD, W_CCAP, W_CINIT, W_IGN, W_DEDUP, W_GID,
 W_START, W_NSTART, W_CODE) = range(11, 32)
G = 32
TR_SVC, TR_LOCAL, TR_SRC, TR_EVENT, TR_GUARD, TR_BR0, TR_NBR = range(7)
NTR = 7
BR_TO, BR_EMIT0, BR_NEMIT, BR_ADD0, BR_NADD = range(5)
NBR = 5

# --- guard bytecode ---------------------------------------------------------------
(OP_END, OP_PUSH, OP_CTR, OP_SST, OP_ADD, OP_SUB, OP_MUL, OP_NEG, OP_NOT, OP_EQ,
 OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_AND, OP_OR, OP_MIN, OP_MAX,
 OP_ABS) = range(20)


def encode(
    kind: int, service: int, event: int, transition: int, branch: int,
    duplicate: int, keep: int, sender: int, at: int,
) -> int:
    """One step as an int (fields ``B_*``); -1 (none) is stored as 0."""
    return (kind | (duplicate << B_DUP) | (keep << B_KEEP) | (branch << B_BRANCH)
            | ((event + 1) << B_EVENT) | (at << B_AT)
            | ((transition + 1) << B_TRANS) | (service << B_SERVICE)
            | ((sender + 1) << B_SENDER))


def max_codes(tab: Sequence[int]) -> int:
    """An upper bound on the steps enabled in one state (the size of the buffer
    :func:`enabled_codes` writes into)."""
    widest = 1
    for x in range((tab[W_BR] - tab[W_TR]) // NTR):
        widest = max(widest, tab[tab[W_TR] + x * NTR + TR_NBR])
    return 2 * widest * (2 * tab[W_NSLOT] + tab[W_NS]) + 1


# --- guards -------------------------------------------------------------------------
def guard_holds(s: Sequence[int], tab: Sequence[int], pc: int,
                stack: MutableSequence[int]) -> bool:
    """Run the guard whose bytecode starts at ``tab[pc]`` on state ``s``."""
    sp = 0
    cb = tab[W_CBASE]
    while True:
        op = tab[pc]
        arg = tab[pc + 1]
        pc += 2
        if op == OP_END:
            return stack[sp - 1] != 0
        if op == OP_PUSH:
            stack[sp] = arg
            sp += 1
        elif op == OP_CTR:
            stack[sp] = s[cb + arg]
            sp += 1
        elif op == OP_SST:
            stack[sp] = tab[tab[W_GID] + tab[tab[W_SBASE] + arg]
                            + s[HEADER + 2 * arg]]
            sp += 1
        elif op == OP_NEG:
            stack[sp - 1] = -stack[sp - 1]
        elif op == OP_NOT:
            stack[sp - 1] = 1 if stack[sp - 1] == 0 else 0
        elif op == OP_ABS:
            stack[sp - 1] = abs(stack[sp - 1])
        elif arg == 0 and (op == OP_AND or op == OP_OR):
            # An empty 'or' (``x in ()``) is false; an empty 'and' true.
            stack[sp] = 1 if op == OP_AND else 0
            sp += 1
        elif op == OP_AND or op == OP_OR or op == OP_MIN or op == OP_MAX:
            # ``arg`` operands on top of the stack, folded into one.
            acc = stack[sp - arg]
            if op == OP_AND or op == OP_OR:
                acc = 1 if acc != 0 else 0
            for x in range(sp - arg + 1, sp):
                v = stack[x]
                if op == OP_AND:
                    acc = 1 if acc != 0 and v != 0 else 0
                elif op == OP_OR:
                    acc = 1 if acc != 0 or v != 0 else 0
                elif op == OP_MIN:
                    acc = min(acc, v)
                else:
                    acc = max(acc, v)
            sp -= arg
            stack[sp] = acc
            sp += 1
        else:
            b = stack[sp - 1]
            a = stack[sp - 2]
            sp -= 1
            if op == OP_ADD:
                r = a + b
            elif op == OP_SUB:
                r = a - b
            elif op == OP_MUL:
                r = a * b
            elif op == OP_EQ:
                r = 1 if a == b else 0
            elif op == OP_NE:
                r = 1 if a != b else 0
            elif op == OP_LT:
                r = 1 if a < b else 0
            elif op == OP_LE:
                r = 1 if a <= b else 0
            elif op == OP_GT:
                r = 1 if a > b else 0
            else:
                r = 1 if a >= b else 0
            stack[sp - 1] = r


def _passes(s: Sequence[int], tab: Sequence[int], tr: int,
            stack: MutableSequence[int]) -> bool:
    pc = tab[tab[W_TR] + tr * NTR + TR_GUARD]
    return pc < 0 or guard_holds(s, tab, tab[W_CODE] + pc, stack)


# --- the bus --------------------------------------------------------------------------
def _send(d: MutableSequence[int], tab: Sequence[int], sender: int,
          event: int) -> None:
    """Put ``event`` from ``sender`` on the bus for every subscriber (or mark
    the overflow when a slot or channel is full)."""
    ns = tab[W_NS]
    cap = tab[W_CAP]
    bb = tab[W_BBASE]
    p = tab[W_SUB_PTR] + event
    for x in range(tab[p], tab[p + 1]):
        r = tab[tab[W_SUB_IDX] + x]
        if tab[W_FIFO] != 0:
            base = bb + tab[tab[W_SLOT_OF] + sender * ns + r] * cap
            placed = False
            for q in range(cap):
                if d[base + q] == 0:
                    d[base + q] = 2 * event + 1
                    placed = True
                    break
            if not placed:
                d[OVERFLOW] = 1
        else:
            k = bb + 2 * tab[tab[W_SLOT_OF] + r * tab[W_NE] + event]
            if d[k] + d[k + 1] >= cap:
                d[OVERFLOW] = 1
            else:
                d[k] += 1


def initial_into(d: MutableSequence[int], tab: Sequence[int],
                 duplicates: int) -> None:
    """Write the initial state into ``d`` (``width`` zeros): every service in
    its initial state (index 0), counters at their initial values, the
    duplicate budget, the ``start`` events on the bus from ``env``."""
    d[DUPS] = min(duplicates, 255) if tab[W_ALO] != 0 else 0
    for c in range(tab[W_NCTR]):
        d[tab[W_CBASE] + c] = tab[tab[W_CINIT] + c]
    for x in range(tab[W_NSTART]):
        _send(d, tab, tab[W_NS], tab[tab[W_START] + x])


# --- the successor relation --------------------------------------------------------
def handle_codes(
    s: Sequence[int], tab: Sequence[int], service: int, event: int,
    duplicate: int, sender: int, keepable: int, out: MutableSequence[int],
    k: int, stack: MutableSequence[int],
) -> int:
    """How ``service`` reacts to ``event`` in ``s``: the codes of its steps
    (several for a ``choose``), each followed by its not-acknowledged twin when
    ``keepable``; written into ``out`` from ``k``; returns the new count."""
    here = s[HEADER + 2 * service]
    # Which step it is, and how many outcomes (several for a ``choose``): a
    # drop by the inbox, else the first transition (in file order) whose guard
    # holds, else an ignored or unhandled event. One loop below writes them.
    kind = K_UNHANDLED
    local = -1
    outcomes = 1
    if duplicate != 0 and tab[tab[W_DEDUP] + service] != 0:
        kind = K_DROP
    else:
        p = tab[W_HPTR] + tab[tab[W_SBASE] + service] + here
        for x in range(tab[p], tab[p + 1]):
            tr = tab[tab[W_HIDX] + x]
            row = tab[W_TR] + tr * NTR
            if tab[row + TR_EVENT] == event and _passes(s, tab, tr, stack):
                kind = K_DELIVER
                local = tab[row + TR_LOCAL]
                outcomes = tab[row + TR_NBR]
                break
        if kind == K_UNHANDLED and tab[tab[W_IGN] + service * tab[W_NE]
                                       + event] != 0:
            kind = K_IGNORE
    for b in range(outcomes):
        code = encode(kind, service, event, local, b, duplicate, 0, sender, here)
        out[k] = code
        k += 1
        if keepable != 0:
            out[k] = code | (1 << B_KEEP)
            k += 1
    return k


def timer_codes(s: Sequence[int], tab: Sequence[int], out: MutableSequence[int],
                k: int, stack: MutableSequence[int]) -> int:
    """The timer steps enabled in ``s`` (whatever is on the bus): a timer fires
    at any time while its service stays in the timer's state, once per entry."""
    for i in range(tab[W_NS]):
        base = HEADER + 2 * i
        here = s[base]
        tr = tab[tab[W_TIMER] + tab[tab[W_SBASE] + i] + here]
        if s[base + 1] != 0 or tr < 0 or not _passes(s, tab, tr, stack):
            continue
        row = tab[W_TR] + tr * NTR
        for b in range(tab[row + TR_NBR]):
            out[k] = encode(K_TIMER, i, -1, tab[row + TR_LOCAL], b, 0, 0, -1, here)
            k += 1
    return k


def enabled_codes(s: Sequence[int], tab: Sequence[int], reduce: int,
                  out: MutableSequence[int], stack: MutableSequence[int]) -> int:
    """Write the codes of every step enabled in ``s`` into ``out``; return how
    many. Deliveries first (fifo: by channel; unordered: by slot, fresh copies
    before seen ones), then timers by service: the explicit checker's shortest
    counterexamples depend on this order.

    With ``reduce``, copies are never kept for redelivery to a de-duplicating
    inbox (it would drop them, so they change nothing but the bus): a
    de-duplication reduction that preserves every property's verdict.
    """
    if s[OVERFLOW] != 0:
        return 0
    k = 0
    can_keep = s[DUPS] > 0
    bb = tab[W_BBASE]
    dedup = tab[W_DEDUP]
    for c in range(tab[W_NSLOT]):
        svc = tab[tab[W_SLOTS] + 2 * c + 1] if tab[W_FIFO] != 0 else (
            tab[tab[W_SLOTS] + 2 * c])
        keepable = 1 if can_keep and not (reduce != 0
                                          and tab[dedup + svc] != 0) else 0
        if tab[W_FIFO] != 0:
            code = s[bb + c * tab[W_CAP]]
            if code != 0:
                k = handle_codes(s, tab, svc, (code - 1) // 2, (code - 1) % 2,
                                 tab[tab[W_SLOTS] + 2 * c], keepable, out, k,
                                 stack)
        else:
            e = tab[tab[W_SLOTS] + 2 * c + 1]
            if s[bb + 2 * c] != 0:
                k = handle_codes(s, tab, svc, e, 0, -1, keepable, out, k, stack)
            if s[bb + 2 * c + 1] != 0:
                k = handle_codes(s, tab, svc, e, 1, -1, keepable, out, k, stack)
    return timer_codes(s, tab, out, k, stack)


def effect_into(d: MutableSequence[int], tab: Sequence[int], code: int,
                send: int) -> int:
    """What a handled step (a delivery or a timer) does to its service, the
    counters and (with ``send``) the bus, in place; other steps change
    nothing here. Returns 1 when the step cannot happen in ``d`` (its service
    is not in the transition's state, or its timer has fired already)."""
    kind = code & 7
    if kind != K_DELIVER and kind != K_TIMER:
        return 0
    svc = (code >> B_SERVICE) & 1023
    tr = tab[tab[W_TRBASE] + svc] + ((code >> B_TRANS) & 8191) - 1
    row = tab[W_TR] + tr * NTR
    base = HEADER + 2 * svc
    here = d[base]
    if tab[row + TR_SRC] != here or (kind == K_TIMER and d[base + 1] != 0):
        return 1
    br = tab[W_BR] + (tab[row + TR_BR0] + ((code >> B_BRANCH) & 255)) * NBR
    to = tab[br + BR_TO]
    if to != here:
        d[base] = to
        d[base + 1] = 0  # entering a state re-arms its timer
    if kind == K_TIMER:
        d[base + 1] = 1 if to == here else 0
    cb = tab[W_CBASE]
    for x in range(tab[br + BR_NADD]):
        a = tab[W_ADD] + 2 * (tab[br + BR_ADD0] + x)
        c = tab[a]
        v = d[cb + c] + tab[a + 1]
        d[cb + c] = max(0, min(tab[tab[W_CCAP] + c], v))
    if send != 0:
        for x in range(tab[br + BR_NEMIT]):
            _send(d, tab, svc, tab[tab[W_EMIT] + tab[br + BR_EMIT0] + x])
    return 0


def step_into(d: MutableSequence[int], tab: Sequence[int], code: int) -> int:
    """Apply the step ``code`` to the state ``d`` in place: take the event off
    the bus (or keep it for redelivery), then the step's effect, sending what
    it emits. Returns 0, or 1 when the step is not enabled (``d`` is then
    partly written: discard it)."""
    kind = code & 7
    if kind != K_TIMER:
        dup = (code >> B_DUP) & 1
        keep = (code >> B_KEEP) & 1
        svc = (code >> B_SERVICE) & 1023
        event = ((code >> B_EVENT) & 255) - 1
        if keep != 0:
            if d[DUPS] <= 0:
                return 1
            d[DUPS] -= 1
        bb = tab[W_BBASE]
        if tab[W_FIFO] != 0:
            sender = ((code >> B_SENDER) & 2047) - 1
            if sender < 0:
                return 1
            ch = tab[tab[W_SLOT_OF] + sender * tab[W_NS] + svc]
            cap = tab[W_CAP]
            base = bb + ch * cap
            if ch < 0 or d[base] != 2 * event + 1 + dup:
                return 1
            if keep != 0:
                d[base] = 2 * event + 2  # same head, now marked seen
            else:
                for q in range(cap - 1):
                    d[base + q] = d[base + q + 1]
                d[base + cap - 1] = 0
        else:
            slot = tab[tab[W_SLOT_OF] + svc * tab[W_NE] + event]
            k = bb + 2 * slot
            if slot < 0 or d[k + dup] <= 0:
                return 1
            d[k + dup] -= 1
            if keep != 0:
                d[k + 1] += 1
    return effect_into(d, tab, code, 1)
