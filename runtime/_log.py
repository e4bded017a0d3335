"""The durable log: protocol, records, and the in-memory implementation.

Every transition is appended as a :class:`LogRecord` keyed by (saga id,
sequence), with the step's name and index and the definition's content hash,
so replay can check it (house style 10, as DBOS's ``operation_outputs``).
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ._errors import CorruptLog, LeaseLost, UnknownSaga

RUNNING = "running"
"""Status of an instance that has not reached a terminal outcome."""

KINDS = frozenset({"start", "dispatch", "reply", "comp_dispatch", "comp_reply",
                   "recover", "resume", "end"})


@dataclass(frozen=True, slots=True, kw_only=True)
class LogRecord:
    """One logged transition (or the start/end marker of an instance)."""

    saga_id: str
    seq: int
    kind: str
    """``start``, ``dispatch``, ``reply``, ``comp_dispatch``, ``comp_reply``,
    ``recover``, ``resume`` or ``end``; the middle five are semantics events."""
    step: str | None = None
    step_index: int = -1
    outcome: str | None = None
    """``ok``, ``failed``, ``fatal``, ``unknown``; for ``end`` the phase name."""
    attempt: int = 0
    definition_hash: str = ""
    data: str | None = None
    """JSON: the input (start), the output (ok reply), the error text."""
    at: float = 0.0
    """Wall-clock seconds (from the injected clock)."""

    def to_json(self) -> dict[str, object]:
        """Plain data, e.g. for ``sagaproof conform``."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class SagaInfo:
    """The header row of one saga instance."""

    saga_id: str
    name: str
    definition_hash: str
    definition_path: str | None = None
    participants: str | None = None
    """The ``module:object`` spec the CLI bound, so ``recover`` can re-bind."""
    input: str = "null"
    status: str = RUNNING
    """``running`` or a terminal phase name (``COMPLETED`` ...)."""
    owner: str | None = None
    lease_until: float = 0.0
    next_seq: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0


class SagaLog(Protocol):
    """What the engine needs from a durable log."""

    def create(self, info: SagaInfo, first: LogRecord,
               more: Sequence[LogRecord] = ()) -> None:
        """Insert a new instance, its ``start`` record and ``more`` (the
        records that follow it, consecutive seqs from 1: the first commands'
        dispatches) atomically and durably, in one transaction."""
        ...

    def append(self, saga_id: str, records: Sequence[LogRecord], *, owner: str,
               status: str = RUNNING, now: float = 0.0, sync: bool = True) -> None:
        """Append ``records`` (consecutive seqs from the instance's next_seq)
        atomically and set its status; raise :class:`LeaseLost` if ``owner`` no
        longer owns it."""
        ...

    def records(self, saga_id: str) -> list[LogRecord]:
        """Every record of one instance, by seq."""
        ...

    def get(self, saga_id: str) -> SagaInfo:
        """The header of one instance; :class:`UnknownSaga` if absent."""
        ...

    def instances(self, *, status: str | None = None) -> list[SagaInfo]:
        """Headers of every instance (with the given status)."""
        ...

    def claim(self, saga_id: str, *, owner: str, lease_until: float, now: float,
              expect_status: str = RUNNING, new_status: str = RUNNING,
              force: bool = False) -> bool:
        """Take the lease if it is free, expired, ours, or ``force``."""
        ...

    def renew(self, owner: str, lease_until: float) -> None:
        """Extend every running lease ``owner`` holds."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...


Batch = tuple[str, Sequence[LogRecord], str]
"""(saga id, records, status) of one instance in a group commit."""

Create = tuple[SagaInfo, LogRecord, Sequence[LogRecord]]
"""(header, start record, the records after it) of a new instance in a group
commit: the arguments of :meth:`SagaLog.create`."""


def append_many(log: SagaLog, batches: Sequence[Batch], *, owner: str,
                now: float, sync: bool,
                creates: Sequence[Create] = ()) -> list[Exception | None]:
    """Create new instances and append several instances' records; one
    transaction (one fsync) when the log has ``append_many``, else one
    create or append each. Each instance's create or append succeeds or fails
    on its own (a duplicate id, fencing per instance): the result is None, or
    the error, per create and then per batch. ``creates`` force ``sync``:
    their first commands leave once this returns."""
    group = getattr(log, "append_many", None)
    if group is not None:
        out: list[Exception | None] = group(
            batches, owner=owner, now=now, sync=sync or bool(creates),
            creates=creates)
        return out
    errors: list[Exception | None] = []
    for info, first, more in creates:
        try:
            log.create(info, first, more)
            errors.append(None)
        except CorruptLog as exc:
            errors.append(exc)
    for saga_id, records, status in batches:
        try:
            log.append(saga_id, records, owner=owner, status=status, now=now,
                       sync=sync)
            errors.append(None)
        except (LeaseLost, CorruptLog, UnknownSaga) as exc:
            errors.append(exc)
    return errors


def check_consecutive(saga_id: str, first: LogRecord,
                      more: Sequence[LogRecord]) -> None:
    """Refuse a new instance whose records are not seqs 0, 1, 2, ... (a bug
    in the caller: the log would have a gap or a duplicate)."""
    for k, rec in enumerate((first, *more)):
        if rec.seq != k or rec.saga_id != saga_id:
            raise CorruptLog(
                f"saga_id={saga_id!r}: creating with record seq={rec.seq} "
                f"(saga_id={rec.saga_id!r}) at position {k}; expected seq={k}")


def new_worker_id() -> str:
    """``host:pid:random``; the pid lets a worker on the same host see that the
    previous owner died and take over without waiting for the lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def lease_is_free(info: SagaInfo, *, owner: str, now: float, force: bool) -> bool:
    """Whether ``owner`` may take the instance: nobody holds it, it already
    holds it, the lease ran out, or the holder's process is gone. One rule for
    every log backend, so none of them takes a live lease."""
    return (force or info.owner in (None, owner) or info.lease_until < now
            or owner_is_dead(info.owner))


def owner_is_dead(owner: str | None) -> bool:
    """True when ``owner`` ran on this host and its process no longer exists."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class MemoryLog:
    """The same protocol in memory, for tests (not durable)."""

    def __init__(self) -> None:
        self._info: dict[str, SagaInfo] = {}
        self._records: dict[str, list[LogRecord]] = {}

    def create(self, info: SagaInfo, first: LogRecord,
               more: Sequence[LogRecord] = ()) -> None:
        if info.saga_id in self._info:
            raise CorruptLog(f"saga_id={info.saga_id!r} already exists in the log")
        check_consecutive(info.saga_id, first, more)
        self._info[info.saga_id] = dataclasses.replace(info, next_seq=1 + len(more))
        self._records[info.saga_id] = [first, *more]

    def append(self, saga_id: str, records: Sequence[LogRecord], *, owner: str,
               status: str = RUNNING, now: float = 0.0, sync: bool = True) -> None:
        info = self.get(saga_id)
        if info.owner != owner:
            raise LeaseLost(
                f"saga_id={saga_id!r} is now owned by {info.owner!r}, not {owner!r}"
            )
        for k, rec in enumerate(records):
            if rec.seq != info.next_seq + k:
                raise CorruptLog(
                    f"saga_id={saga_id!r}: record seq={rec.seq} but the log expects "
                    f"seq={info.next_seq + k}"
                )
        self._records[saga_id].extend(records)
        self._info[saga_id] = dataclasses.replace(
            info, next_seq=info.next_seq + len(records), status=status,
            updated_at=now)

    def records(self, saga_id: str) -> list[LogRecord]:
        self.get(saga_id)
        return list(self._records[saga_id])

    def get(self, saga_id: str) -> SagaInfo:
        try:
            return self._info[saga_id]
        except KeyError:
            raise UnknownSaga(f"no saga_id={saga_id!r} in the log") from None

    def instances(self, *, status: str | None = None) -> list[SagaInfo]:
        return [i for i in self._info.values() if status is None or i.status == status]

    def claim(self, saga_id: str, *, owner: str, lease_until: float, now: float,
              expect_status: str = RUNNING, new_status: str = RUNNING,
              force: bool = False) -> bool:
        info = self.get(saga_id)
        if info.status != expect_status:
            return False
        if not lease_is_free(info, owner=owner, now=now, force=force):
            return False
        self._info[saga_id] = dataclasses.replace(
            info, owner=owner, lease_until=lease_until, status=new_status)
        return True

    def claimable(self, *, owner: str, lease_until: float, now: float,
                  limit: int = 16) -> list[SagaInfo]:
        """Lease up to ``limit`` free running instances to ``owner``."""
        out: list[SagaInfo] = []
        for sid, info in sorted(self._info.items(),
                                key=lambda kv: (kv[1].created_at, kv[0])):
            if len(out) >= limit:
                break
            if info.status == RUNNING and (info.owner is None
                                           or info.lease_until < now):
                self._info[sid] = dataclasses.replace(info, owner=owner,
                                                      lease_until=lease_until)
                out.append(self._info[sid])
        return out

    def renew(self, owner: str, lease_until: float) -> None:
        for sid, info in self._info.items():
            if info.owner == owner and info.status == RUNNING:
                self._info[sid] = dataclasses.replace(info, lease_until=lease_until)

    def close(self) -> None:
        pass
