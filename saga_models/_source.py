"""Parsing definition files into plain data with a location for every node.

YAML is read with PyYAML's safe composer (never ``yaml.load``), so no tag can
construct objects; JSON is checked with :mod:`json` for strictness and composed
with the same composer for positions. Guards keep hostile input bounded: a size
cap, a nesting cap, and a cap on alias expansion (the "billion laughs" attack),
with recursive aliases refused outright. Every problem is a located
:class:`Diagnostic`, raised as :class:`InvalidDefinition`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ._errors import Diagnostic, InvalidDefinition
from ._span import Span

MAX_BYTES = 5 * 1024 * 1024
"""Definitions are small; a larger file is refused before it is parsed."""
MAX_DEPTH = 64
MAX_NODES = 200_000
"""Nodes after alias expansion; bounds a file that expands exponentially."""


@dataclass(slots=True)
class Document:
    """A parsed definition file: plain data plus where each node came from."""

    data: Any
    file: str
    fmt: str
    """``yaml`` or ``json``."""
    spans: dict[str, Span] = field(default_factory=dict)

    def span(self, pointer: str) -> Span:
        """The span at JSON pointer ``pointer``, or the nearest enclosing one."""
        p = pointer
        while True:
            hit = self.spans.get(p)
            if hit is not None:
                return hit
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
    """Read and parse a definition file (format from the suffix unless given)."""
    p = Path(path)
    name = str(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise _error("SAGA001", f"no such file path={name!r}", Span(file=name),
                     "check the path; run from the project root or pass an "
                     "absolute path") from None
    except OSError as exc:
        raise _error("SAGA001", f"cannot read path={name!r}: {exc.strerror}",
                     Span(file=name), "check the path and its permissions") from None
    if p.is_dir():
        raise _error("SAGA001", f"path={name!r} is a directory", Span(file=name),
                     "pass the definition files inside it, e.g. 'dir/*.yaml'")
    if size > MAX_BYTES:
        raise _error("SAGA002", f"file is {size:,} bytes, over the "
                     f"{MAX_BYTES:,}-byte limit for a definition", Span(file=name),
                     "a saga definition is a few KB; check that this is the "
                     "right file")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _error("SAGA003", f"file is not UTF-8 text (byte {exc.start})",
                     Span(file=name), "save the file as UTF-8") from None
    if fmt is None:
        fmt = "json" if p.suffix.lower() == ".json" else "yaml"
    return parse_document(text, file=name, fmt=fmt)


def parse_document(text: str, *, file: str = "<memory>", fmt: str = "yaml") -> Document:
    """Parse ``text`` as YAML or JSON into a :class:`Document`."""
    if len(text.encode()) > MAX_BYTES:
        raise _error("SAGA002", f"definition is over the {MAX_BYTES:,}-byte limit",
                     Span(file=file), "a saga definition is a few KB")
    if fmt == "json":
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise _error("SAGA004", f"invalid JSON: {exc.msg}",
                         Span(file=file, line=exc.lineno, column=exc.colno),
                         "fix the JSON syntax at this position") from None
        except RecursionError:
            raise _error("SAGA005", f"nesting deeper than {MAX_DEPTH} levels",
                         Span(file=file), "flatten the document") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        span = Span(file=file, line=mark.line + 1 if mark else 0,
                    column=mark.column + 1 if mark else 0)
        what = "JSON" if fmt == "json" else "YAML"
        raise _error("SAGA004", f"invalid {what}: {exc.problem or exc}", span,
                     "fix the syntax at this position") from None
    except yaml.YAMLError as exc:
        raise _error("SAGA004", f"invalid YAML: {exc}", Span(file=file),
                     "fix the syntax") from None
    except RecursionError:
        raise _error("SAGA005", f"nesting deeper than {MAX_DEPTH} levels",
                     Span(file=file), "flatten the document") from None
    if node is None:
        raise _error("SAGA006", "the file is empty", Span(file=file),
                     "write a definition, e.g. 'saga: name' and 'steps:'")
    doc = Document(data=None, file=file, fmt=fmt)
    doc.data = _Walker(doc).walk(node, "", 0, ())
    return doc


class _Walker:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.count = 0

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
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.walk(key_node, pointer + "/~key", depth + 1, inner)
                if isinstance(key, (dict, list)):
                    raise _error("SAGA004", "a mapping key must be a scalar",
                                 self._span(key_node, pointer),
                                 "use a plain string as the key")
                child = f"{pointer}/{_escape(str(key))}"
                if key in out:
                    raise _error("SAGA007", f"duplicate key {key!r}",
                                 self._span(key_node, child),
                                 "remove one of the two entries")
                self.doc.spans[child + "#key"] = self._span(key_node, child)
                out[key] = self.walk(value_node, child, depth + 1, inner)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [
                self.walk(v, f"{pointer}/{i}", depth + 1, inner)
                for i, v in enumerate(node.value)
            ]
        assert isinstance(node, yaml.ScalarNode)
        constructor = yaml.SafeLoader.__new__(yaml.SafeLoader)
        yaml.constructor.SafeConstructor.__init__(constructor)
        return constructor.construct_object(node, deep=True)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def as_mapping(doc: Document, value: Any, pointer: str, what: str) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else a located error naming ``what``."""
    if not isinstance(value, Mapping):
        raise _error("SAGA120", f"{what} must be a mapping, got "
                     f"{type(value).__name__}", doc.span(pointer),
                     f"write {what} as 'key: value' lines")
    return value
