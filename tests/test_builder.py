"""The builder: same vocabulary and IR as the files, diagnostics at the call site."""

from __future__ import annotations

import inspect

import pytest

from saga_models import (
    CircuitBreaker,
    InvalidDefinition,
    RetryPolicy,
    Saga,
    SagaBuilder,
    StepKind,
    loads,
)


def _line() -> int:
    """The caller's line number."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno


def test_chain_and_parallel_roots() -> None:
    saga = (SagaBuilder("t")
            .step("a", participant="p", action="x", compensation="u")
            .step("b", participant="p", action="x", compensation="u")
            .step("c", participant="p", action="x", compensation="u",
                  depends_on=[])
            .build())
    assert [s.depends_on for s in saga.steps] == [(), ("a",), ()]


def test_diagnostics_point_at_the_users_call() -> None:
    builder = SagaBuilder("t")
    line = _line(); builder.step("a", participant="p", kind="pivto")  # noqa: E702
    with pytest.raises(InvalidDefinition) as info:
        builder.build()
    (d,) = info.value.diagnostics
    assert d.code == "SAGA125"
    assert d.help == "did you mean 'pivot'?"
    assert d.span.file == __file__
    assert d.span.line == line


def test_every_problem_at_once_each_at_its_call() -> None:
    builder = SagaBuilder("t")
    first = _line(); builder.step("a", participant="p", timeout="fast")  # noqa: E702
    second = _line(); builder.step("b", participant="", depends_on=["aa"],  # noqa: E702
                                   compensation="u", retry={"max_attemps": 3})
    with pytest.raises(InvalidDefinition) as info:
        builder.build()
    found = sorted((d.code, d.span.line) for d in info.value.diagnostics)
    assert found == sorted([
        ("SAGA126", first),   # timeout='fast'
        ("SAGA122", second),  # max_attemps, did you mean max_attempts
        ("SAGA102", second),  # unknown dependency 'aa'
        ("SAGA124", second),  # participant=''
    ])
    text = str(info.value)
    assert "did you mean 'max_attempts'?" in text
    assert "did you mean 'a'?" in text


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"retry": {"max_attempts": -1}}, "SAGA127"),
    ({"retry": RetryPolicy(jitter=2.0)}, "SAGA127"),
    ({"timeout": -1}, "SAGA127"),
    ({"breaker": {"failure_threshold": 0}}, "SAGA127"),
    ({"breaker": {"treshold": 3}}, "SAGA122"),
    ({"breaker": 3}, "SAGA120"),
    ({"retry": "3 times"}, "SAGA120"),
    ({"depends_on": "a"}, "SAGA124"),
    ({"idempotency_key": "{sagaid}"}, "SAGA129"),
])
def test_bad_values(kwargs: dict[str, object], code: str) -> None:
    builder = SagaBuilder("t").step("a", participant="p", compensation="u")
    builder.step("b", participant="p", compensation="u", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidDefinition) as info:
        builder.build()
    assert code in {d.code for d in info.value.diagnostics}


def test_bad_name_type_is_a_diagnostic_not_a_crash() -> None:
    with pytest.raises(InvalidDefinition, match="SAGA124"):
        SagaBuilder("t").step(1, participant="p", compensation="u").build()  # type: ignore[arg-type]


def test_compensation_policy_then_must_be_escalate() -> None:
    builder = SagaBuilder("t").step("a", participant="p", compensation="u")
    with pytest.raises(InvalidDefinition, match="SAGA125"):
        builder.compensation_policy(max_attempts=3, then="retry").build()


def test_ir_values_equal_the_file_form() -> None:
    built = (SagaBuilder("t")
             .step("a", participant="p", compensation="u", timeout=10,
                   retry=RetryPolicy(max_attempts=3, initial_interval=1,
                                     backoff=2, max_interval=30),
                   breaker=CircuitBreaker(failure_threshold=2, recovery_timeout=5))
             .step("b", participant="p", kind=StepKind.PIVOT)
             .compensation_policy(max_attempts="forever")
             .build())
    loaded = loads("saga: t\nsteps:\n"
                   "  - {name: a, participant: p, compensation: u, timeout: 10s,\n"
                   "     retry: {max_attempts: 3, initial_interval: 1s, backoff: 2,"
                   " max_interval: 30s},\n"
                   "     breaker: {failure_threshold: 2, recovery_timeout: 5s}}\n"
                   "  - {name: b, participant: p, kind: pivot}\n"
                   "compensation_policy: {retry: forever}\n")
    assert built.to_dict() == loaded.to_dict()
    assert built.content_hash == loaded.content_hash
    # Ints were normalised to floats, so the hash does not depend on spelling.
    assert isinstance(built.steps[0].retry.initial_interval, float)


def test_build_twice_gives_equal_values() -> None:
    builder = SagaBuilder("t").step("a", participant="p", compensation="u")
    assert builder.build() == builder.build()


def test_content_hash_is_kept_per_saga_and_fresh_after_replace() -> None:
    """Saga.content_hash is computed once per saga (conformance hashes one
    definition per log): every saga made by replace(), also one allocated
    where a freed one lived, gets its own hash, never a kept one."""
    import dataclasses
    import hashlib
    import json

    def fresh(saga: Saga) -> str:
        blob = json.dumps(saga.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    base = SagaBuilder("t").step("a", participant="p", compensation="u").build()
    seen = set()
    for i in range(100):
        # Made and dropped in turn: CPython hands out freed addresses again.
        saga = dataclasses.replace(base, name=f"t{i}")
        assert saga.content_hash == fresh(saga) == saga.content_hash
        seen.add(saga.content_hash)
    assert len(seen) == 100
    assert base.content_hash == fresh(base)
