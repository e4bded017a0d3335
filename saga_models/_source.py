"""Parsing definition files into plain data with a location for every node.

YAML is read with PyYAML's safe composer (never ``yaml.load``), so no tag can
construct objects; JSON values come from :mod:`json` (strict, no ``NaN``) and their
positions from the same composer. Guards keep hostile input bounded: a size cap
checked before reading, a nesting cap, and a cap on alias expansion (the "billion
laughs" attack), with recursive aliases refused outright. Every problem is a
located :class:`Diagnostic`, raised as :class:`InvalidDefinition`; nothing here
lets a parser exception or a traceback through.

Mapping keys are always strings: a plain key is taken as written, so the YAML 1.1
surprise of ``on:`` or ``yes:`` becoming a boolean key cannot happen, and JSON and
YAML give the same data. YAML merge keys (``<<: *defaults``) are supported.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ._errors import Diagnostic, InvalidDefinition
from ._span import Span

MAX_BYTES = 1024 * 1024
"""Definitions are a few KB; a larger file is refused before it is read."""
MAX_DEPTH = 64
"""Nesting levels; a saga needs about six."""
MAX_NODES = 200_000
"""Nodes after alias expansion; bounds a file that expands exponentially."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})
# The C composer is about ten times faster and gives the same nodes and marks.
_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(slots=True)
class Document:
    """A parsed definition file: plain data plus where each node came from."""

    data: Any
    file: str
    fmt: str
    """``yaml`` or ``json``."""
    spans: dict[str, Span] = field(default_factory=dict)
    """Span of the value at each JSON pointer, and of the key at ``pointer#key``."""

    def span(self, pointer: str) -> Span:
        """The span at JSON pointer ``pointer``, or the nearest enclosing one.

        The returned span always carries ``pointer`` itself, so a diagnostic
        names the exact node even when only its parent has a position.
        """
        p = pointer
        while True:
            hit = self.spans.get(p)
            if hit is not None:
                if p == pointer:
                    return hit
                return Span(file=hit.file, line=hit.line, column=hit.column,
                            pointer=pointer)
            if not p:
                return Span(file=self.file, pointer=pointer)
            p = p.rsplit("/", 1)[0]

    def key_span(self, pointer: str) -> Span:
        """The span of the mapping key at ``pointer`` (for unknown-key errors)."""
        return self.spans.get(pointer + "#key") or self.span(pointer)


def _error(code: str, message: str, span: Span, help: str) -> InvalidDefinition:
    return InvalidDefinition((Diagnostic(code=code, message=message, span=span,
                                         help=help),))


def read_document(path: str | Path, *, fmt: str | None = None) -> Document:
    """Read and parse a definition file (format from the suffix unless given).

    Raises:
        InvalidDefinition: the file is missing, too large, not UTF-8, or not
            well-formed YAML/JSON (codes ``SAGA001`` to ``SAGA008``).
    """
    p = Path(path)
    name = str(path)
    try:
        if p.is_dir():
            raise _error("SAGA001", f"path={name!r} is a directory",
                         Span(file=name),
                         "pass the definition files inside it, e.g. 'dir/*.yaml'")
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise _error("SAGA002", f"file is {size:,} bytes, over the "
                         f"{MAX_BYTES:,}-byte limit for a definition",
                         Span(file=name), "a saga definition is a few KB; check "
                         "that this is the right file")
        with p.open("rb") as fh:
            # Read one byte past the cap: a file that grows (or a FIFO) after the
            # stat cannot make us read without bound.
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise _error("SAGA001", f"no such file path={name!r}", Span(file=name),
                     "check the path; run from the project root or pass an "
                     "absolute path") from None
    except OSError as exc:
        raise _error("SAGA001", f"cannot read path={name!r}: "
                     f"{exc.strerror or exc}", Span(file=name),
                     "check the path and its permissions") from None
    if len(raw) > MAX_BYTES:
        raise _error("SAGA002", f"file is over the {MAX_BYTES:,}-byte limit for "
                     "a definition", Span(file=name),
                     "a saga definition is a few KB; check that this is the "
                     "right file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _error("SAGA003", f"file is not UTF-8 text (byte {exc.start})",
                     Span(file=name), "save the file as UTF-8") from None
    if fmt is None:
        fmt = "json" if p.suffix.lower() == ".json" else "yaml"
    return parse_document(text, file=name, fmt=fmt)


def parse_document(text: str, *, file: str = "<memory>", fmt: str = "yaml") -> Document:
    """Parse ``text`` as YAML or JSON into a :class:`Document`.

    >>> doc = parse_document("saga: t\\nsteps:\\n  - name: a\\n")
    >>> doc.data["steps"][0]["name"], str(doc.span("/steps/0/name"))
    ('a', '<memory>:3:11')

    Raises:
        InvalidDefinition: the text is too large, malformed, too deeply nested,
            expands too far through aliases, or is empty.
    """
    if fmt not in ("yaml", "json"):
        raise ValueError(f"unknown fmt={fmt!r}; use 'yaml' or 'json'")
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise _error("SAGA002", f"definition is over the {MAX_BYTES:,}-byte limit",
                     Span(file=file), "a saga definition is a few KB")
    if fmt == "json":
        return _parse_json(text, file)
    node = _compose(text, file, "YAML")
    if node is None:
        raise _error("SAGA006", "the file is empty", Span(file=file),
                     "write a definition, e.g. 'saga: name' and 'steps:'")
    doc = Document(data=None, file=file, fmt=fmt)
    doc.data = _Walker(doc).walk(node, "", 0, ())
    return doc


def _parse_json(text: str, file: str) -> Document:
    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    if not text.strip():
        raise _error("SAGA006", "the file is empty", Span(file=file),
                     'write a definition, e.g. {"saga": "name", "steps": []}')
    try:
        data = json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise _error("SAGA004", f"invalid JSON: {exc.msg}",
                     Span(file=file, line=exc.lineno, column=exc.colno),
                     "fix the JSON syntax at this position") from None
    except ValueError as exc:
        raise _error("SAGA004", f"invalid JSON: {exc}", Span(file=file),
                     "write a finite number, or a string") from None
    except RecursionError:
        raise _error("SAGA005", f"nesting deeper than {MAX_DEPTH} levels",
                     Span(file=file), "flatten the document") from None
    # json gives the exact values; the composer gives positions. Tabs are legal
    # JSON whitespace but not YAML, and (valid JSON having none inside strings)
    # replacing them by spaces keeps every column where it was.
    doc = Document(data=None, file=file, fmt="json")
    node = _compose(text.replace("\t", " "), file, "JSON")
    if node is not None:
        _Walker(doc).walk(node, "", 0, ())
    else:  # pragma: no cover - json accepted it, so it is not empty
        _check_depth(data, file)
    doc.data = data
    return doc


def _check_depth(data: Any, file: str) -> None:
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _error("SAGA005", f"nesting deeper than {MAX_DEPTH} levels",
                         Span(file=file), "flatten the document")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def _compose(text: str, file: str, what: str) -> yaml.Node | None:
    try:
        node: yaml.Node | None = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        span = Span(file=file, line=mark.line + 1 if mark else 0,
                    column=mark.column + 1 if mark else 0)
        if "nesting depth" in str(exc.problem):  # libyaml's own depth guard
            raise _error("SAGA005", f"nesting deeper than {MAX_DEPTH} levels",
                         span, "flatten the document") from None
        raise _error("SAGA004", f"invalid {what}: {exc.problem or exc}", span,
                     "fix the syntax at this position") from None
    except yaml.reader.ReaderError as exc:
        # A control character: the reader gives an offset, not a mark.
        before = text[: exc.position]
        span = Span(file=file, line=before.count("\n") + 1,
                    column=exc.position - (before.rfind("\n") + 1) + 1)
        ch = exc.character
        point = ch if isinstance(ch, int) else ord(ch)
        raise _error("SAGA004", f"invalid {what}: control character "
                     f"U+{point:04X} is not allowed", span,
                     "remove the character, or write it as an escape in a "
                     'double-quoted string ("\\x01")') from None
    except yaml.YAMLError as exc:
        raise _error("SAGA004", f"invalid {what}: {exc}", Span(file=file),
                     "fix the syntax") from None
    except RecursionError:
        raise _error("SAGA005", f"nesting deeper than {MAX_DEPTH} levels",
                     Span(file=file), "flatten the document") from None
    return node


class _Walker:
    """Turns a node graph into plain data, recording a span per JSON pointer."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.count = 0
        self.constructor = yaml.constructor.SafeConstructor()

    def _span(self, node: yaml.Node, pointer: str) -> Span:
        m = node.start_mark
        return Span(file=self.doc.file, line=m.line + 1, column=m.column + 1,
                    pointer=pointer)

    def walk(self, node: yaml.Node, pointer: str, depth: int,
             path: tuple[int, ...]) -> Any:
        self.count += 1
        span = self._span(node, pointer)
        if self.count > MAX_NODES:
            raise _error("SAGA005", f"document expands to more than {MAX_NODES:,} "
                         "nodes (anchors and aliases?)", span,
                         "write the definition out without nested aliases")
        if depth > MAX_DEPTH:
            raise _error("SAGA005", f"nesting deeper than {MAX_DEPTH} levels", span,
                         "flatten the document")
        if id(node) in path:
            raise _error("SAGA005", "recursive alias: a node contains itself", span,
                         "remove the alias that refers to its own ancestor")
        self.doc.spans.setdefault(pointer, span)
        inner = (*path, id(node))
        if node.tag not in _PLAIN_TAGS and not isinstance(node, yaml.ScalarNode):
            # Scalars are checked by the safe constructor below; a collection's
            # tag would otherwise be silently dropped.
            raise _error("SAGA008", f"tag {node.tag} is not allowed", span,
                         "only plain YAML values are allowed: strings, numbers, "
                         "booleans, lists and mappings; remove the tag")
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key, key_node, value_node in self._pairs(node, pointer, inner):
                child = f"{pointer}/{escape(key)}"
                self.doc.spans[child + "#key"] = self._span(key_node, child)
                out[key] = self.walk(value_node, child, depth + 1, inner)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [
                self.walk(v, f"{pointer}/{i}", depth + 1, inner)
                for i, v in enumerate(node.value)
            ]
        assert isinstance(node, yaml.ScalarNode)
        try:
            return self.constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise _error("SAGA008", f"cannot read value {node.value!r} "
                         f"(tag {node.tag}): {problem}", span,
                         "only plain YAML values are allowed: strings, numbers, "
                         "booleans, lists and mappings; quote the value") from None

    def _pairs(self, node: yaml.MappingNode, pointer: str,
               path: tuple[int, ...]) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """Key/value pairs with merge keys flattened; explicit keys win."""
        explicit: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        merged: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = (value_node.value
                           if isinstance(value_node, yaml.SequenceNode)
                           else [value_node])
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        raise _error("SAGA004", "a merge key '<<' must refer to "
                                     "a mapping", self._span(value_node, pointer),
                                     "write '<<: *anchor' where the anchor is a "
                                     "mapping")
                    if id(source) in path or id(source) == id(node):
                        raise _error("SAGA005", "recursive alias: a node merges "
                                     "itself", self._span(value_node, pointer),
                                     "remove the alias that refers to its own "
                                     "ancestor")
                    self.count += len(source.value)
                    for k, kn, vn in self._pairs(source, pointer,
                                                 (*path, id(source))):
                        # Earlier sources override later ones (YAML merge spec).
                        merged.setdefault(k, (kn, vn))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise _error("SAGA004", "a mapping key must be a plain string",
                             self._span(key_node, pointer),
                             "use a plain string as the key")
            key = str(key_node.value)
            if key in explicit:
                child = f"{pointer}/{escape(key)}"
                first = self._span(explicit[key][0], child)
                raise _error("SAGA007", f"duplicate key {key!r} (first at "
                             f"line {first.line})", self._span(key_node, child),
                             "remove one of the two entries")
            explicit[key] = (key_node, value_node)
        return [(k, kn, vn) for k, (kn, vn) in {**merged, **explicit}.items()]


def escape(key: str) -> str:
    """Escape one JSON-pointer reference token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def pointer_of(path: tuple[str | int, ...] | list[str | int]) -> str:
    """The JSON pointer of a path of keys and indices.

    >>> pointer_of(("steps", 0, "retry"))
    '/steps/0/retry'
    """
    return "".join(f"/{escape(str(p))}" for p in path)


def as_mapping(doc: Document, value: Any, pointer: str, what: str) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else a located error naming ``what``."""
    if not isinstance(value, Mapping):
        raise _error("SAGA120", f"{what} must be a mapping, got "
                     f"{type(value).__name__}", doc.span(pointer),
                     f"write {what} as 'key: value' lines")
    return value


def is_finite_number(value: Any) -> bool:
    """True for an int or float that is not a bool, NaN or infinite."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))
