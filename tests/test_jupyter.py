"""Jupyter drawings when Graphviz is missing, partly installed or broken:
a drawing and one line saying why, never a traceback in the notebook."""

from __future__ import annotations

import html
import shutil
import sys
import types
from typing import Any

import pytest

from saga_models import SagaBuilder
from sagaproof.jupyter import Graph

SAGA = (SagaBuilder("t").step("a", participant="p", action="x",
                              compensation="undo").build())


def _dot_on_path(monkeypatch: pytest.MonkeyPatch, present: bool) -> None:
    monkeypatch.setattr(shutil, "which",
                        lambda name: "/usr/bin/dot" if present else None)


def _fake_graphviz(monkeypatch: pytest.MonkeyPatch, pipe: Any) -> None:
    """A stand-in graphviz package whose ``pipe`` is ``pipe``."""
    mod = types.ModuleType("graphviz")

    class ExecutableNotFound(RuntimeError):
        pass

    class CalledProcessError(RuntimeError):
        pass

    class Digraph:
        def __init__(self, **kwargs: Any) -> None:
            pass

        def node(self, *args: Any, **kwargs: Any) -> None:
            pass

        def edge(self, *args: Any, **kwargs: Any) -> None:
            pass

        def pipe(self, **kwargs: Any) -> str:
            return str(pipe())

    mod.ExecutableNotFound = ExecutableNotFound  # type: ignore[attr-defined]
    mod.CalledProcessError = CalledProcessError  # type: ignore[attr-defined]
    mod.Digraph = Digraph  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "graphviz", mod)


def test_dot_without_the_python_package_falls_back_and_says_why(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _dot_on_path(monkeypatch, True)
    monkeypatch.setitem(sys.modules, "graphviz", None)  # import fails
    svg = Graph(SAGA)._repr_svg_()
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<circle" in svg  # the pure-Python drawing
    assert svg.count("class='note'") == 1
    assert "graphviz Python package is not (pip install graphviz)" in svg
    with pytest.raises(RuntimeError, match="pip install graphviz"):
        Graph(SAGA, engine="graphviz").svg()


def test_the_package_without_dot_is_the_quiet_bare_case(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The notebooks extra installs the package; a runner without Graphviz's
    program draws with the pure-Python layout and says nothing."""
    _dot_on_path(monkeypatch, False)
    _fake_graphviz(monkeypatch, lambda: "<svg>from graphviz</svg>")
    svg = Graph(SAGA).svg()
    assert "from graphviz" not in svg
    assert "<circle" in svg and "class='note'" not in svg
    with pytest.raises(RuntimeError, match="'dot' program"):
        Graph(SAGA, engine="graphviz").svg()


def test_a_failing_dot_falls_back_and_says_why(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> str:
        raise OSError("dot: cannot load plugins\nmore detail")

    _dot_on_path(monkeypatch, True)
    _fake_graphviz(monkeypatch, broken)
    svg = html.unescape(Graph(SAGA).svg())
    assert "'dot' failed (dot: cannot load plugins)" in svg
    assert "more detail" not in svg


def test_a_whole_graphviz_draws_and_none_is_silent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _dot_on_path(monkeypatch, True)
    _fake_graphviz(monkeypatch, lambda: "<svg>from graphviz</svg>")
    assert Graph(SAGA).svg() == "<svg>from graphviz</svg>"
    # Neither installed: the designed default of a bare runner, no note.
    _dot_on_path(monkeypatch, False)
    monkeypatch.setitem(sys.modules, "graphviz", None)
    svg = Graph(SAGA).svg()
    assert "<circle" in svg and "class='note'" not in svg
