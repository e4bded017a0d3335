"""The precompiled schema validators (``saga_models._fastschema``).

A check takes their yes instead of asking jsonschema, so a yes must never be
wrong: on every shipped definition and on generated documents with random
damage (keys set to values of every JSON type, keys removed), whenever the fast
validator accepts a document jsonschema finds no error in it; and that
search finds a wrong yes of validators made to miss one keyword. They accept
the valid documents (else they would save nothing), the generated modules are
what fastjsonschema writes from the schemas today (not stale), and a schema
that draft 7 would read more leniently is not precompiled at all.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, event, find, given, settings
from hypothesis import strategies as st

from saga_models import _fastschema
from saga_models._scenario import scenario_schema
from saga_models._schema import saga_schema
from saga_models._source import read_document
from saga_models.strategies import saga_documents
from saga_models.workflow._schema import workflow_schema

ROOT = Path(__file__).parents[1]
SCHEMAS: dict[str, Callable[[], Any]] = {
    "saga": saga_schema, "workflow": workflow_schema, "scenario": scenario_schema,
}


def _kind(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    for kind in ("saga", "workflow", "scenario"):
        if kind in data:
            return kind
    return None


@cache
def _shipped() -> list[tuple[str, Any]]:
    out = []
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        data = read_document(path).data
        kind = _kind(data)
        if kind is not None:
            out.append((kind, data))
    return out


@cache
def _validator(kind: str) -> Any:
    schema = dict(SCHEMAS[kind]())
    return jsonschema.validators.validator_for(schema)(schema)


def _errors(kind: str, data: Any) -> list[str]:
    return [e.message for e in _validator(kind).iter_errors(data)]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.floats(-2, 2)
    | st.sampled_from(["", "x", "5s", "5s\n", "pivot", "forever", "fifo",
                       "at_least_once", "IDLE"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["name", "to", "on", "x", "retry"]), inner,
                      max_size=3),
    max_leaves=6)


def _mappings(x: Any, out: list[dict[str, Any]]) -> None:
    if isinstance(x, dict):
        out.append(x)
        for v in x.values():
            _mappings(v, out)
    elif isinstance(x, list):
        for v in x:
            _mappings(v, out)


@st.composite
def _damaged(draw: st.DrawFn, doc: Any) -> Any:
    """``doc`` with one to three random edits: a key of some mapping removed,
    set to a random value, or set to the empty value of its type (``""``,
    ``0``, ``[]``, ``{}``: the edge of ``minLength``, ``minimum``,
    ``minItems`` and ``minProperties``, which random values seldom hit)."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        maps: list[dict[str, Any]] = []
        _mappings(doc, maps)
        target = draw(st.sampled_from(maps))
        keys = sorted(target) or ["x"]
        key = draw(st.sampled_from([*keys, "unknown_key"]))
        edit = draw(st.integers(0, 4))
        if edit == 0 and key in target:
            del target[key]
        elif edit == 1 and target.get(key) is not None:
            target[key] = type(target[key])()
        else:
            target[key] = draw(_JSON)
    return doc


@pytest.mark.parametrize(("kind", "data"), _shipped())
def test_shipped_definitions_are_accepted_by_both(kind: str, data: Any) -> None:
    assert _errors(kind, data) == []
    assert _fastschema.is_valid(kind, data)


_SETTINGS: dict[str, Any] = {
    "max_examples": 300, "deadline": None, "derandomize": True,
    "database": None, "suppress_health_check": [HealthCheck.too_slow],
}


# A shipped definition or a generated saga, damaged; built on first use (it
# reads the examples).
_DAMAGED = st.deferred(lambda: st.one_of(
    st.sampled_from(_shipped()),
    saga_documents(max_steps=3).map(lambda d: ("saga", d)),
).flatmap(lambda kd: _damaged(kd[1]).map(lambda d: (kd[0], d))))

IsValid = Callable[[str, Any], bool]


def _wrong_yes(is_valid: IsValid, kind: str, doc: Any) -> bool:
    """``is_valid`` says yes to ``doc``, and jsonschema finds an error."""
    return is_valid(kind, doc) and _errors(kind, doc) != []


@given(case=_DAMAGED)
@settings(**_SETTINGS)
def test_a_fast_yes_is_never_wrong(case: tuple[str, Any]) -> None:
    kind, damaged = case
    event(f"fast validator: {'yes' if _fastschema.is_valid(kind, damaged) else 'no'}")
    assert not _wrong_yes(_fastschema.is_valid, kind, damaged), damaged


def _without(schema: Any, keyword: str) -> Any:
    """``schema`` with ``keyword`` dropped everywhere (no property of the
    shipped schemas is named like the keywords dropped here)."""
    if isinstance(schema, dict):
        return {k: _without(v, keyword) for k, v in schema.items() if k != keyword}
    if isinstance(schema, list):
        return [_without(v, keyword) for v in schema]
    return schema


@pytest.mark.parametrize("keyword", ["additionalProperties", "required",
                                     "minLength", "minimum", "type", "enum"])
def test_a_lenient_fast_validator_is_caught(keyword: str) -> None:
    """The other way round: fast validators that miss one keyword (as draft 7
    misses a keyword it does not know) say a wrong yes, and the search of
    ``test_a_fast_yes_is_never_wrong`` finds one."""
    import fastjsonschema

    lenient = {}
    for kind, read in SCHEMAS.items():
        schema = _without(dict(read()), keyword)
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"
        lenient[kind] = fastjsonschema.compile(schema)

    def is_valid(kind: str, doc: Any) -> bool:
        try:
            lenient[kind](doc)
        except Exception:
            return False
        return True

    kind, doc = find(_DAMAGED, lambda case: _wrong_yes(is_valid, *case),
                     settings=settings(**_SETTINGS))
    assert _errors(kind, doc)
    assert not _fastschema.is_valid(kind, doc)


def test_a_schema_draft7_reads_otherwise_is_not_precompiled() -> None:
    """``generate`` refuses a schema the draft-7 validator would read more
    leniently than jsonschema (its yes could be wrong), and takes the
    shipped ones."""
    for kind, read in SCHEMAS.items():
        assert _fastschema.draft7_problems(dict(read())) == [], kind
    seeded = {
        "$ref beside": {"$defs": {"n": {"type": "string"}},
                        "properties": {"a": {"$ref": "#/$defs/n",
                                             "minLength": 1}}},
        "unknown to draft 7": {"type": "object",
                               "unevaluatedProperties": False},
        "items as a list": {"items": [{"type": "string"}]},
        "a boolean in an enum": {"enum": ["x", True]},
        "a number as const": {"properties": {"a": {"const": 1}}},
    }
    for name, schema in seeded.items():
        assert len(_fastschema.draft7_problems(schema)) == 1, name


def test_a_damaged_document_is_refused_by_both() -> None:
    """The other way round: an edit the schema forbids is a no from both."""
    kind, doc = next((k, d) for k, d in _shipped() if k == "saga")
    bad = copy.deepcopy(doc)
    bad["steps"][0]["acton"] = "x"
    assert _errors(kind, bad)
    assert not _fastschema.is_valid(kind, bad)


@pytest.mark.parametrize("kind", _fastschema.KINDS)
def test_the_generated_validators_are_not_stale(kind: str) -> None:
    path = Path(_fastschema.__file__).with_name(f"_{kind}.py")
    assert path.read_text(encoding="utf-8") == _fastschema.generate(kind), (
        "run: python -m saga_models._fastschema")
