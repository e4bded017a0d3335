"""The runtime's errors: all under :class:`saga_models.SagaError`.

Errors a user can fix also subclass the builtin they resemble (house style 5).
"""

from __future__ import annotations

from saga_models import SagaError


class BindingError(SagaError, LookupError):
    """A participant action or compensation has no callable bound to it."""


class DefinitionMismatch(SagaError, ValueError):
    """A logged saga instance is pinned to a different definition hash."""


class LogError(SagaError):
    """The durable log cannot be used: missing, read-only, full, locked, or an
    I/O error. The message is one line, starts with its code (``[RT003]``) and
    says what to do; the CLI prints it and exits 2. Whatever failed was a whole
    transaction: the log is unchanged."""

    def __init__(self, code: str, message: str, *, fix: str) -> None:
        super().__init__(f"[{code}] {message}; {fix}")
        self.code = code


class NoSuchLog(LogError, FileNotFoundError):
    """``--db`` names no file, and the command only reads an existing log."""


class CorruptLog(SagaError, ValueError):
    """The durable log is unreadable, foreign, or breaks the semantics."""


class LeaseLost(SagaError, RuntimeError):
    """Another worker took over a saga instance this worker was driving."""


class UnknownSaga(SagaError, KeyError):
    """No saga instance with the given id is in the log."""


class NotResumable(SagaError, ValueError):
    """``resume`` was asked for an instance that is not ``STUCK``."""


class ParticipantContractError(SagaError, TypeError):
    """A participant returned something the runtime cannot record (not JSON)."""


class CircuitOpen(SagaError, RuntimeError):
    """The participant's circuit breaker is open; the call was not made."""
