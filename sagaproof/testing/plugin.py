"""pytest plugin: definitions as test items.

``pytest --sagaproof examples/`` collects every saga and workflow definition
(``*.yaml``, ``*.yml``, ``*.json``) in the paths pytest is given, as pytest
collects test modules: one item per property, failing with the counterexample
when it is violated or unknown, one item for a definition that does not load
(its diagnostics), and, for each saga a ``conftest.py`` binds (the
``pytest_sagaproof_binding`` hook), one item that runs the generated stateful
test of its participants, and for each event workflow whose handlers it binds
(``pytest_sagaproof_workflow_binding``) one item that runs the generated
stateful test of its handlers. Files that are not definitions are skipped.

``--sagaproof`` is a flag: without it the plugin collects nothing. When
pytest is given no paths, the definition paths listed under
``[tool.sagaproof] paths`` in ``pyproject.toml`` (or the ``sagaproof_paths``
ini option) are collected besides the project's test paths.

Registered under the ``pytest11`` entry point ``sagaproof``; without the
installed entry point use ``-p sagaproof.testing.plugin``. Coverage witnesses
of the generated tests are merged into ``.sagaproof/coverage.json``
(``sagaproof coverage DEFINITION`` reports what was never reached).

The plugin is loaded into every pytest run of a project that installs it, so
this module imports only pytest and the standard library; the definitions,
checkers and runtime are imported when the first definition is collected.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from saga_models import FaultModel, InvalidDefinition

_SUFFIXES = (".yaml", ".yml", ".json")
_NOT_A_DEFINITION = "SAGA121"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sagaproof", "verify saga and workflow definitions")
    group.addoption("--sagaproof", action="store_true", default=False,
                    help="collect the saga and workflow definitions in the "
                    "paths pytest is given (or [tool.sagaproof] paths)")
    group.addoption("--sagaproof-faults", default="all", metavar="KNOBS",
                    help="fault model: all, none, or e.g. fail,timeout,crash=1")
    group.addoption("--sagaproof-coverage", default=".sagaproof/coverage.json",
                    metavar="FILE", help="where coverage witnesses are merged")
    parser.addini("sagaproof_paths", type="paths", default=[],
                  help="definition files or folders collected with --sagaproof "
                  "when pytest is given no paths")


def _configured_paths(config: pytest.Config) -> list[str]:
    """``[tool.sagaproof] paths`` of the rootdir's pyproject.toml (paths or
    glob patterns), then the ``sagaproof_paths`` ini option, resolved against
    the rootdir."""
    out: list[str] = []
    pyproject = config.rootpath / "pyproject.toml"
    if pyproject.is_file():
        try:
            tool = tomllib.loads(pyproject.read_text()).get("tool", {})
        except tomllib.TOMLDecodeError:
            tool = {}  # pytest itself reports a broken pyproject.toml
        paths = tool.get("sagaproof", {}).get("paths", [])
        if isinstance(paths, str):
            paths = [paths]
        for p in paths:
            # The same key ``sagaproof check`` reads: paths or glob patterns.
            if any(c in str(p) for c in "*?["):
                out += [str(m) for m in sorted(config.rootpath.glob(str(p)))]
            else:
                out.append(str(config.rootpath / p))
    out += [str(p) for p in config.getini("sagaproof_paths")]
    return out


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sagaproof: an item generated from a saga or workflow "
        "definition")
    if (config.getoption("--sagaproof")
            and config.args_source is not pytest.Config.ArgsSource.ARGS):
        # No paths on the command line: the configured definition paths join
        # the test paths, as testpaths would.
        extra = [p for p in _configured_paths(config) if p not in config.args]
        config.args = [*config.args, *extra]


def pytest_collect_file(file_path: Path,
                        parent: pytest.Collector) -> DefinitionFile | None:
    # Called for every file of every run: the flag is checked first and
    # nothing is imported here.
    if file_path.suffix not in _SUFFIXES or not parent.config.getoption(
            "--sagaproof"):
        return None
    return DefinitionFile.from_parent(parent, path=file_path)


def pytest_sessionfinish(session: pytest.Session) -> None:
    import sys

    if f"{__package__}._machine" not in sys.modules:
        return  # no generated test ran: keep a plain run free of imports
    from ._coverage import CoverageStore
    from ._machine import collected

    found = list(collected().values())
    if not found:
        return
    store = CoverageStore(session.config.getoption("--sagaproof-coverage"))
    for definition, faults, reached in found:
        store.add(definition, reached, faults=faults)
    store.save()


def _is_scenario(definition: Any) -> bool:
    from saga_models._scenario import Scenario

    return isinstance(definition, Scenario)


class DefinitionFile(pytest.File):
    """One definition file: its properties and generated tests as items."""

    def collect(self) -> Iterator[pytest.Item]:
        from saga_models import FaultModel, InvalidDefinition, Saga, load

        try:
            definition = load(self.path, scenarios=True)
        except InvalidDefinition as exc:
            if any(d.code == _NOT_A_DEFINITION for d in exc.diagnostics):
                return  # some other YAML file in the folder
            yield LoadItem.from_parent(self, name="load", error=exc)
            return
        faults = FaultModel.parse(self.config.getoption("--sagaproof-faults"))
        self.definition: Any = definition
        self._result: Any = None
        from verifier import compile_model

        _, ts = compile_model(definition, faults)
        for prop in ts.properties:
            yield PropertyItem.from_parent(self, name=prop.name, prop=prop.name,
                                           faults=faults)
        if isinstance(definition, Saga):
            binding = self.config.hook.pytest_sagaproof_binding(
                saga=definition, path=self.path)
            if binding is not None:
                yield GeneratedItem.from_parent(self, name="participants",
                                                   binding=binding, faults=faults)
        elif not _is_scenario(definition):
            binding = self.config.hook.pytest_sagaproof_workflow_binding(
                workflow=definition, path=self.path)
            if binding is not None:
                yield GeneratedItem.from_parent(self, name="handlers",
                                               binding=binding, faults=faults)

    def result(self, faults: FaultModel) -> Any:
        """The check result of the whole definition (computed once)."""
        if self._result is None:
            from verifier import check

            self._result = check(self.definition, faults=faults,
                                 source=str(self.path))
        return self._result


class SagaproofFailure(Exception):
    """A generated item failed; the message is the whole failure text."""


class _Item(pytest.Item):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_marker("sagaproof")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, SagaproofFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"sagaproof: {self.path.name}::{self.name}"


class LoadItem(_Item):
    """A definition that does not load: fails with every diagnostic."""

    def __init__(self, *, error: InvalidDefinition, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise SagaproofFailure(self.error.render())


class PropertyItem(_Item):
    """One property of one definition; unknown fails too."""

    def __init__(self, *, prop: str, faults: FaultModel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prop = prop
        self.faults = faults

    def runtest(self) -> None:
        from verifier import Verdict
        from verifier.render import counterexample_text

        parent = self.parent
        assert isinstance(parent, DefinitionFile)
        r = parent.result(self.faults)[self.prop]
        if r.verdict is Verdict.HOLDS:
            return
        text = [f"{self.prop}: {r.verdict.value.upper()} (faults: {r.fault_model})",
                f"  {r.reason}"]
        if r.counterexample is not None:
            text.append(f"counterexample ({len(r.counterexample)} events):")
            text.append(counterexample_text(r.counterexample))
        raise SagaproofFailure("\n".join(text))


class GeneratedItem(_Item):
    """The generated stateful test of what a conftest bound: a saga's
    participants or a workflow's handlers."""

    def __init__(self, *, binding: Any, faults: FaultModel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.binding = binding
        self.faults = faults

    def runtest(self) -> None:
        from ._harness import ScheduleFailure
        from ._machine import check_participants

        parent = self.parent
        assert isinstance(parent, DefinitionFile)
        try:
            check_participants(parent.definition, self.binding,
                               faults=self.faults, definition_ref=str(self.path))
        except ScheduleFailure as exc:
            raise SagaproofFailure(str(exc)) from None
