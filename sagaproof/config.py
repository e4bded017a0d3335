"""``[tool.sagaproof]`` in pyproject.toml: a project's defaults for ``check``.

Command-line flags override the file; the file overrides the built-in defaults.
The file is the nearest ``pyproject.toml`` from the working directory upwards
(the first one found, as ruff and black do), or the one ``--config`` names.

>>> cfg = parse_config('[tool.sagaproof]\\nfaults = "fail,crash=2"\\n',
...                    file="pyproject.toml")
>>> cfg.values["faults"], cfg.diagnostics
('fail,crash=2', ())
"""

from __future__ import annotations

import difflib
import glob
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saga_models import Diagnostic, Span

FORMATS = ("text", "json", "junit", "sarif")
BACKENDS = ("explicit", "smt", "auto")


def _is_str(v: object) -> bool:
    return isinstance(v, str)


def _is_count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _is_str_list(v: object) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


KEYS: dict[str, tuple[Callable[[object], bool], str]] = {
    "paths": (_is_str_list, 'a list of files or globs, e.g. ["sagas/*.yaml"]'),
    "faults": (_is_str, 'a fault list such as "fail,timeout,crash=1" or "all"'),
    "format": (lambda v: v in FORMATS, "one of " + ", ".join(FORMATS)),
    "backend": (lambda v: v in BACKENDS, "one of " + ", ".join(BACKENDS)),
    "max-states": (_is_count, "a positive integer"),
    "max-memory": (_is_count, "a positive number of bytes"),
    "properties": (_is_str_list, 'a list of property names, e.g. ["termination"]'),
    "compensations": (_is_str, "the path of a compensation map (imported ASL)"),
    "bpmn-dialect": (lambda v: v in ("camunda7", "zeebe"),
                     'the BPMN engine: "camunda7" or "zeebe"'),
    "hash-compact": (lambda v: isinstance(v, bool),
                     "true or false (store 64-bit fingerprints, not states)"),
    "bitstate": (lambda v: _is_count(v) and 10 <= v <= 40,  # type: ignore[operator]
                 "a number of bits from 10 to 40 (an array of 2**bits bits)"),
    "workers": (lambda v: _is_count(v) and v <= 256,  # type: ignore[operator]
                "a number of threads from 1 to 256"),
}
"""Every key ``[tool.sagaproof]`` accepts, with its check and what to write."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The settings of one ``[tool.sagaproof]`` table."""

    file: str = ""
    """Where it was read from ("" when no file has the table)."""
    values: Mapping[str, Any] = field(default_factory=dict)
    """The valid settings, by key as written (``max-states``)."""
    diagnostics: tuple[Diagnostic, ...] = ()
    """SAGA013 (unknown key), SAGA014 (bad value), SAGA015 (bad TOML)."""


def _line_of(text: str, key: str) -> int:
    # tomllib keeps no positions; the key's line inside the table is enough
    # for a reader (and for SARIF).
    in_table = False
    for i, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            in_table = stripped.replace(" ", "") in {"[tool.sagaproof]"}
        elif in_table and re.match(rf'["\']?{re.escape(key)}["\']?\s*=', stripped):
            return i
    return 0


def parse_config(text: str, *, file: str) -> Config:
    """The ``[tool.sagaproof]`` table of a pyproject.toml text, checked."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return Config(file=file, diagnostics=(Diagnostic(
            code="SAGA015", message=f"invalid TOML: {exc}", span=Span(file=file),
            help="fix the syntax; pyproject.toml must be valid TOML"),))
    table = data.get("tool", {}).get("sagaproof")
    if table is None:
        return Config()
    if not isinstance(table, dict):
        return Config(file=file, diagnostics=(Diagnostic(
            code="SAGA014", message="tool.sagaproof is not a table",
            span=Span(file=file), help="write it as a [tool.sagaproof] table"),))
    values: dict[str, Any] = {}
    diags: list[Diagnostic] = []
    for key, value in table.items():
        span = Span(file=file, line=_line_of(text, key), column=1 if
                    _line_of(text, key) else 0, pointer=f"/tool/sagaproof/{key}")
        if key not in KEYS:
            near = difflib.get_close_matches(key, list(KEYS), n=1)
            diags.append(Diagnostic(
                code="SAGA013", message=f"unknown key {key!r} in [tool.sagaproof]",
                span=span, help=(f"did you mean {near[0]!r}?" if near else
                                 "known keys: " + ", ".join(KEYS))))
            continue
        ok, need = KEYS[key]
        if not ok(value):
            diags.append(Diagnostic(
                code="SAGA014", message=f"[tool.sagaproof] {key}={value!r} is not "
                f"{need}", span=span, help=f"write {need}"))
            continue
        values[key] = value
    return Config(file=file, values=values, diagnostics=tuple(diags))


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml in ``start`` or a parent directory."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_config(explicit: str | None = None, *, cwd: Path | None = None) -> Config:
    """The configuration in force: ``explicit`` if given, else the nearest
    pyproject.toml's ``[tool.sagaproof]`` (an empty one when there is none)."""
    path: Path | None
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            return Config(file=explicit, diagnostics=(Diagnostic(
                code="SAGA015", message=f"no such configuration file "
                f"config={explicit!r}", span=Span(file="<command line>"),
                help="pass the path of a pyproject.toml with a [tool.sagaproof] "
                "table"),))
    else:
        path = find_pyproject(cwd or Path.cwd())
        if path is None:
            return Config()
    return parse_config(path.read_text(encoding="utf-8"), file=str(path))


def expand_paths(patterns: list[str], *, base: Path) -> list[str]:
    """Configured paths, globs expanded relative to the configuration file's
    folder, in sorted order; a pattern that matches nothing is kept as written
    so that checking it reports the missing file (SAGA001)."""
    out: list[str] = []
    for pattern in patterns:
        full = pattern if Path(pattern).is_absolute() else str(base / pattern)
        matches = sorted(glob.glob(full, recursive=True)) or [full]
        # Relative to the working directory when inside it, so reports (and
        # SARIF URIs) name files the way the repository does.
        out.extend(_relative(m) for m in matches)
    return out


def _relative(path: str) -> str:
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return path
