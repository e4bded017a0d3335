"""The YAML/JSON loader: every field lowered, located, and equal across formats."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import saga_models
from saga_models import (
    AfterExhausted,
    InvalidDefinition,
    Saga,
    SagaBuilder,
    StepKind,
    load,
    loads,
)
from saga_models._loader import parse_attempts, parse_duration
from saga_models._schema import saga_schema
from saga_models._source import parse_document

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "trip_booking.saga.yaml"

FULL_YAML = """\
saga: trip_booking
steps:
  - name: reserve_flight
    participant: flights
    action: reserve
    compensation: cancel
    retry: {max_attempts: 3, initial_interval: 1s, backoff: 2.0, max_interval: 30s,
            jitter: 0.1, retryable_errors: [Timeout], non_retryable_errors: [Fraud]}
    timeout: 10s
    total_timeout: 1m30s
    compensation_needs_result: true
    idempotency_key: "{saga_id}:{step}:{attempt_kind}"
    breaker: {failure_threshold: 3, recovery_timeout: 250ms}
  - name: lookup_price
    participant: pricing
    action: quote
    read_only: true
    depends_on: []
    cache_ttl: 2m
  - name: charge
    participant: payments
    kind: pivot
    idempotent: false
    depends_on: [reserve_flight, lookup_price]
  - name: confirm
    participant: flights
    action: confirm
    kind: retriable
    retry: {max_attempts: forever}
compensation_policy: {max_attempts: 5, then: escalate, initial_interval: 2s}
"""


def _builder_form() -> Saga:
    return (
        SagaBuilder("trip_booking")
        .step("reserve_flight", participant="flights", action="reserve",
              compensation="cancel",
              retry={"max_attempts": 3, "initial_interval": "1s", "backoff": 2,
                     "max_interval": 30, "jitter": 0.1,
                     "retryable_errors": ["Timeout"],
                     "non_retryable_errors": ["Fraud"]},
              timeout="10s", total_timeout=90, compensation_needs_result=True,
              idempotency_key="{saga_id}:{step}:{attempt_kind}",
              breaker={"failure_threshold": 3, "recovery_timeout": "250ms"})
        .step("lookup_price", participant="pricing", action="quote",
              read_only=True, depends_on=[], cache_ttl="2m")
        .step("charge", participant="payments", kind="pivot", idempotent=False,
              depends_on=["reserve_flight", "lookup_price"])
        .step("confirm", participant="flights", action="confirm",
              kind=StepKind.RETRIABLE, retry={"max_attempts": "forever"})
        .compensation_policy(max_attempts=5, then="escalate", initial_interval=2)
        .build()
    )


def test_every_field_is_lowered() -> None:
    saga = loads(FULL_YAML)
    flight, price, charge, confirm = saga.steps
    assert flight.retry.max_attempts == 3
    assert flight.retry.max_interval == 30.0
    assert flight.retry.jitter == 0.1
    assert flight.retry.retryable_errors == ("Timeout",)
    assert flight.retry.non_retryable_errors == ("Fraud",)
    assert flight.timeout == 10.0
    assert flight.total_timeout == 90.0
    assert flight.compensation_needs_result is True
    assert flight.idempotency_key == "{saga_id}:{step}:{attempt_kind}"
    assert flight.breaker is not None
    assert flight.breaker.failure_threshold == 3
    assert flight.breaker.recovery_timeout == 0.25
    assert price.cache_ttl == 120.0
    assert price.read_only is True
    assert price.depends_on == ()  # depends_on: [] starts a parallel root
    assert charge.kind is StepKind.PIVOT
    assert charge.action == "charge"  # action defaults to the step's name
    assert charge.idempotent is False
    assert charge.depends_on == ("reserve_flight", "lookup_price")
    assert confirm.depends_on == ("charge",)  # no depends_on: follows the previous
    assert confirm.retry.unbounded
    assert saga.compensation_policy.max_attempts == 5
    assert saga.compensation_policy.then is AfterExhausted.ESCALATE
    assert saga.compensation_policy.initial_interval == 2.0
    assert saga.source_format == "yaml"


def test_yaml_json_and_builder_give_equal_ir(tmp_path: Path) -> None:
    from_yaml = loads(FULL_YAML)
    as_json = json.dumps(parse_document(FULL_YAML).data, indent=1)
    path = tmp_path / "trip.json"
    path.write_text(as_json)
    from_json = load(path)
    from_builder = _builder_form()
    assert from_json.source_format == "json"
    assert from_builder.source_format == "builder"
    assert from_yaml.to_dict() == from_json.to_dict() == from_builder.to_dict()
    assert from_yaml.content_hash == from_json.content_hash == \
        from_builder.content_hash


def test_content_hash_sees_a_change_of_meaning() -> None:
    changed = loads(FULL_YAML.replace("max_attempts: 3", "max_attempts: 4"))
    assert changed.content_hash != loads(FULL_YAML).content_hash
    assert changed.to_dict() != loads(FULL_YAML).to_dict()


def test_spans_point_at_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "trip.saga.yaml"
    path.write_text(FULL_YAML)
    saga = load(path)
    assert saga.span.file == str(path)
    step = saga.step("reserve_flight")
    assert (step.span.file, step.span.line, step.span.column) == (str(path), 3, 5)
    assert step.span.pointer == "/steps/0"
    timeout = step.span_of("timeout")
    assert (timeout.line, timeout.column, timeout.pointer) == (
        9, 14, "/steps/0/timeout")
    inner = step.span_of("retry.max_attempts")
    assert (inner.line, inner.column, inner.pointer) == (
        7, 27, "/steps/0/retry/max_attempts")
    assert step.span_of("breaker.recovery_timeout").pointer == \
        "/steps/0/breaker/recovery_timeout"
    assert step.retry.span.pointer == "/steps/0/retry"
    assert step.breaker is not None and step.breaker.span.line == 13
    assert str(saga.step("charge").span_of("kind")) == f"{path}:22:11"
    # A field that is not written falls back to the step.
    assert saga.step("charge").span_of("timeout") == saga.step("charge").span
    assert saga.compensation_policy.span.pointer == "/compensation_policy"
    assert saga.compensation_policy.span.line == 30


def test_json_spans_are_located_even_with_tabs() -> None:
    text = '{\n\t"saga": "t",\n\t"steps": [\n\t\t{"name": "a", "participant": "p",' \
        ' "compensation": "u", "timeout": 1e1}\n\t]\n}\n'
    saga = loads(text, fmt="json", file="t.json")
    step = saga.steps[0]
    assert step.timeout == 10.0  # a JSON number, not YAML 1.1's string "1e1"
    line = text.splitlines()[3]
    assert str(step.span_of("timeout")) == f"t.json:4:{line.index('1e1') + 1}"


@pytest.mark.parametrize(("text", "seconds"), [
    ("10s", 10.0), ("250ms", 0.25), ("2m", 120.0), ("1h", 3600.0),
    ("1m30s", 90.0), ("1.5s", 1.5), (3, 3.0), (2.5, 2.5),
])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds
    saga = loads(f"saga: t\nsteps:\n  - {{name: a, participant: p, "
                 f"compensation: u, timeout: {text}}}\n")
    assert saga.steps[0].timeout == seconds


@pytest.mark.parametrize("bad", ["fast", "10", "10 sec", "", "-1s", True, None, [1]])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


def test_parse_attempts() -> None:
    assert parse_attempts("forever") is None
    assert parse_attempts("unbounded") is None
    assert parse_attempts(3.0) == 3
    with pytest.raises(ValueError, match="max_attempts"):
        parse_attempts(2.5)


def test_compensation_policy_forms() -> None:
    base = "saga: t\nsteps:\n  - {name: a, participant: p, compensation: u}\n"
    assert loads(base).compensation_policy.forever
    assert loads(base + "compensation_policy: {retry: forever}\n") \
        .compensation_policy.forever
    bounded = loads(base + "compensation_policy: {max_attempts: 5, then: escalate}\n")
    assert bounded.compensation_policy.max_attempts == 5


def test_compensation_chains_from_a_file() -> None:
    saga = loads(
        "saga: t\nsteps:\n  - {name: a, participant: p, compensation: u}\n"
        "  - {name: b, participant: p, compensation: u}\n"
        "compensation_chains:\n  - {trigger: b, steps: [a], unconditional: true}\n")
    (chain,) = saga.compensation_chains
    assert (chain.trigger, chain.steps, chain.unconditional) == ("b", ("a",), True)
    assert chain.span.pointer == "/compensation_chains/0"


def test_yaml_merge_keys_share_settings() -> None:
    saga = loads(
        "saga: t\nsteps:\n"
        "  - name: a\n    participant: p\n    compensation: u\n"
        "    retry: &r {max_attempts: 4, initial_interval: 2s}\n"
        "  - name: b\n    participant: p\n    compensation: u\n"
        "    retry:\n      <<: *r\n      max_attempts: 2\n")
    a, b = saga.steps
    assert (a.retry.max_attempts, a.retry.initial_interval) == (4, 2.0)
    assert (b.retry.max_attempts, b.retry.initial_interval) == (2, 2.0)


def test_yaml_1_1_boolean_words_stay_string_keys() -> None:
    doc = parse_document("on: 1\nyes: 2\n")
    assert doc.data == {"on": 1, "yes": 2}


def test_schema_is_valid_and_accepts_the_examples() -> None:
    schema = dict(saga_schema())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(parse_document(FULL_YAML).data)
    validator.validate(parse_document(EXAMPLE.read_text()).data)
    assert not validator.is_valid({"saga": "t", "steps": [], "stpes": []})


def test_every_problem_at_once() -> None:
    with pytest.raises(InvalidDefinition) as info:
        loads("saga: t\n"
              "steps:\n"
              "  - name: a\n"
              "    participant: p\n"
              "    timeout: fast\n"
              "    kind: maybe\n"
              "    retry: {max_attempts: -1}\n"
              "  - name: b\n"
              "    participant: p\n"
              "    depends_on: [zz]\n"
              "    retyr: {}\n"
              "  - name: a\n"
              "    participant: p\n", file="s.yaml")
    found = [(d.code, d.span.line) for d in info.value.diagnostics]
    assert found == [("SAGA126", 5), ("SAGA125", 6), ("SAGA127", 7),
                     ("SAGA102", 10), ("SAGA122", 11), ("SAGA101", 12)]
    text = str(info.value)
    assert "s.yaml:5:14: error SAGA126: step 'a': timeout='fast'" in text
    assert "did you mean 'retry'?" in text
    assert isinstance(info.value, ValueError)  # user-fixable: also a ValueError


def test_workflow_documents_go_to_the_workflow_loader(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from saga_models import workflow

    seen: list[object] = []

    def fake(doc: object) -> str:
        seen.append(doc)
        return "wf"

    monkeypatch.setattr(workflow, "load_workflow_document", fake)
    assert loads("workflow: w\n") == "wf"
    assert getattr(seen[0], "data", None) == {"workflow": "w"}


def test_importer_shapes_go_to_the_importers(monkeypatch: pytest.MonkeyPatch) -> None:
    from saga_models import importers

    monkeypatch.setattr(importers, "detect",
                        lambda data: "asl" if "StartAt" in data else None)
    monkeypatch.setattr(importers, "load_document", lambda doc: ("imported", doc.fmt))
    assert loads('{"StartAt": "A", "States": {}}', fmt="json") == ("imported", "json")
    with pytest.raises(InvalidDefinition, match="SAGA121"):
        loads("name: not a saga\n")


def test_public_api_is_unchanged() -> None:
    assert saga_models.load is load
    assert saga_models.loads is loads
