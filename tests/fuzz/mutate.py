"""A structure-aware mutation fuzzer for definition files.

Seeds are the shipped examples, the seeded-bug and correct definitions of
``tests/quality`` and ``../shared/corpus`` (sagas, workflows,
ASL JSON and YAML, Seata JSON and YAML). A mutant is a seed's parsed document
with one to three structural edits (a wrong type at a JSON pointer, a deleted
key, a duplicated or emptied list, a swapped subtree, a huge or tiny number,
a unicode or NUL string) or, on the serialized text, a truncation, a byte flip
or a duplicated line. Everything is drawn from one ``random.Random(seed)``, so
a failing input is reproduced by its number alone, and CI runs the same inputs
every time.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .oracle import ROOT

CORPUS = ROOT.parent / "shared" / "corpus"
_SUFFIXES = (".yaml", ".yml", ".json")

WRONG_VALUES: tuple[Any, ...] = (
    5, -1, 0, 10**12, 10**400, -(10**30), 1.5, 1e308, float("inf"), True, None,
    "", "x", "forever", "1e400s", "a" * 300, "\u202e\u00e9\U0001f600", "\x00",
    "${placeholder}", [], [1], ["x", 5], {}, {"a": 1}, {"Type": "Task"},
    [{"ErrorEquals": 5}], "'a' * 100000000 != 'b'", "charged in 5", "min()",
)
"""Values dropped in where another belongs: every JSON type, the edges of the
numbers, the shapes the importers and the guard language expect elsewhere."""


def seeds() -> list[Path]:
    """Every definition file the fuzzer starts from, sorted (deterministic)."""
    roots = [ROOT / "examples", ROOT / "tests" / "quality", CORPUS]
    out = []
    for root in roots:
        if root.is_dir():
            out += [p for p in root.rglob("*") if p.suffix in _SUFFIXES
                    and p.is_file() and ".map." not in p.name]
    return sorted(out)


def _pointers(node: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _pointers(v, (*here, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _pointers(v, (*here, i))


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def _set(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    _get(root, path[:-1])[path[-1]] = value
    return root


def _mutate_tree(rng: random.Random, data: Any) -> Any:
    paths = list(_pointers(data))
    path = rng.choice(paths)
    target = _get(data, path)
    op = rng.randrange(8)
    if op <= 2:  # a wrong type (most productive: the first class)
        return _set(data, path, copy.deepcopy(rng.choice(WRONG_VALUES)))
    if op == 3 and path:  # delete the key or element
        parent = _get(data, path[:-1])
        del parent[path[-1]]
        return data
    if op == 4 and isinstance(target, list) and target:  # duplicate entries
        target.extend(copy.deepcopy(target[: rng.randint(1, len(target))]))
        return data
    if op == 5 and isinstance(target, dict) and target:  # key renamed / cased
        k = rng.choice(list(target))
        target[rng.choice([str(k).lower(), str(k).upper(), f"{k}x", 5])] = \
            target.pop(k)
        return data
    if op == 6:  # another subtree of the same document in its place
        other = _get(data, rng.choice(paths))
        return _set(data, path, copy.deepcopy(other))
    if isinstance(target, (int, float)) and not isinstance(target, bool):
        return _set(data, path, rng.choice([0, -1, 255, 256, 10**9, 2**63]))
    if isinstance(target, str):
        return _set(data, path, target * rng.randint(2, 50) if len(target) < 20
                    else target[: rng.randrange(len(target))])
    return _set(data, path, None)


def _mutate_text(rng: random.Random, raw: bytes) -> bytes:
    op = rng.randrange(4)
    if not raw:
        return b"\xff"
    i = rng.randrange(len(raw))
    if op == 0:  # truncation
        return raw[:i]
    if op == 1:  # byte flips
        b = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            j = rng.randrange(len(b))
            b[j] ^= 1 << rng.randrange(8)
        return bytes(b)
    if op == 2:  # duplicate a line (duplicate keys in YAML, broken JSON)
        lines = raw.splitlines(keepends=True)
        k = rng.randrange(len(lines))
        return b"".join(lines[: k + 1] + lines[k:])
    insert = rng.choice(["\u202e", "\x00", "\ufeff", "é", "&a", "*a", "!!python/x",
                         "{", "]", "\t", "<<: *a"]).encode()
    return raw[:i] + insert + raw[i:]


@dataclass(frozen=True, slots=True)
class Mutant:
    """One generated input: its number, the seed it came from, its bytes."""

    number: int
    seed: Path
    suffix: str
    content: bytes


def _dump(data: Any, suffix: str) -> bytes:
    if suffix == ".json":
        return json.dumps(data, indent=1, allow_nan=True).encode()
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


def mutants(count: int, *, start: int = 0) -> Iterator[Mutant]:
    """``count`` mutants, numbered from ``start``; mutant ``n`` is the same on
    every machine."""
    files = seeds()
    parsed: dict[Path, Any] = {}
    for n in range(start, start + count):
        rng = random.Random(n)
        seed = files[n % len(files)]
        suffix = ".json" if seed.suffix == ".json" else ".yaml"
        raw = seed.read_bytes()
        if rng.random() < 0.2:
            yield Mutant(n, seed, suffix, _mutate_text(rng, raw))
            continue
        if seed not in parsed:
            parsed[seed] = (json.loads(raw) if suffix == ".json"
                            else yaml.safe_load(raw))
        data = copy.deepcopy(parsed[seed])
        for _ in range(rng.randint(1, 3)):
            data = _mutate_tree(rng, data)
        try:
            content = _dump(data, suffix)
        except (TypeError, ValueError, OverflowError, yaml.YAMLError):
            content = _mutate_text(rng, raw)  # an unrepresentable tree
        yield Mutant(n, seed, suffix, content)
