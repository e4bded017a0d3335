"""``sagaproof status SAGA_ID --timeline`` and ``--html FILE``: one
instance's attempts in time, read from the durable log."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from rt_helpers import Script, vrun

from runtime import (
    Engine,
    LogRecord,
    SagaInfo,
    SagaOutcome,
    SQLiteLog,
    VirtualClock,
)
from saga_models import RetryPolicy, Saga, SagaBuilder
from sagaproof.cli import main
from sagaproof.commands._timeline import render_text, timeline


def trip() -> Saga:
    return (SagaBuilder("trip")
            .step("hotel", participant="p", action="a", compensation="ua")
            .step("pay", participant="bank", action="pay",
                  retry=RetryPolicy(max_attempts=3, initial_interval=2.0,
                                    backoff=1.0))
            .build())


def _logged(db: Path, plan: dict[tuple[str, str], list[Any]]) -> str:
    """Run the saga into an SQLite log at ``db``; its saga id."""
    async def go(clock: VirtualClock) -> str:
        log = SQLiteLog(db)
        saga = trip()
        engine = Engine(saga, Script(plan).participants(saga), clock=clock, log=log)
        try:
            result = await engine.run({})
        finally:
            await engine.aclose()
            log.close()
        assert result.outcome is SagaOutcome.COMPENSATED
        return result.saga_id

    return vrun(go)


def _compensated(tmp_path: Path) -> tuple[Path, str]:
    db = tmp_path / "saga.db"
    return db, _logged(db, {("pay", "action"): ["fail@1", "fail@1", "fail@1"]})


class _Bars(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.bars: list[tuple[str, str]] = []
        self.titles: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "rect" and "bar" in (a.get("class") or ""):
            self.bars.append(((a.get("class") or "").split()[1],
                              a.get("data-outcome") or ""))
        self._in_title = tag == "title"

    def handle_data(self, data: str) -> None:
        if self._in_title and "attempt" in data:
            self.titles.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False


def test_the_text_timeline_of_a_compensated_saga(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, sid = _compensated(tmp_path)
    assert main(["status", "--db", str(db), sid, "--timeline"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{sid} (trip): COMPENSATED after 7.000 s"
    rows = [line.split()[:5] for line in out[2:]]
    assert rows == [
        ["+", "0.000s", "start"],
        ["+", "0.000s", "0.000s", "hotel", "action"],
        ["+", "0.000s", "1.000s", "pay", "action"],
        ["+", "3.000s", "1.000s", "pay", "action"],
        ["+", "6.000s", "1.000s", "pay", "action"],
        ["+", "7.000s", "0.000s", "hotel", "compensation"],
        ["+", "7.000s", "end", "COMPENSATED"],
    ]
    assert [line.split()[5:7] for line in out[3:9]][1:4] == [
        ["#1", "failed"], ["#2", "failed"], ["#3", "failed"]]
    assert "Boom" in out[4]
    # The bars sit where the attempts happened on the run's 7 s.
    assert out[5].split("[")[1].startswith(" " * 12 + "====")


def test_the_html_timeline_has_one_bar_per_attempt(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, sid = _compensated(tmp_path)
    page = tmp_path / "t.html"
    assert main(["status", "--db", str(db), sid, "--html", str(page)]) == 0
    assert f"written to {page}" in capsys.readouterr().out
    parser = _Bars()
    parser.feed(page.read_text())
    assert parser.bars == [("action", "ok"), ("action", "failed"),
                           ("action", "failed"), ("action", "failed"),
                           ("compensation", "ok")]
    assert any("pay action attempt 3: failed at +6.000s for 1.000s" in t
               for t in parser.titles), parser.titles
    assert "<script" not in page.read_text()  # a static page


def test_an_attempt_without_a_reply_stays_open() -> None:
    """A crash between a dispatch and its reply: the bar stays open until a
    reply with the same attempt number is logged after the recovery."""
    def rec(seq: int, kind: str, at: float, **kw: Any) -> LogRecord:
        return LogRecord(saga_id="s", seq=seq, kind=kind, at=at, **kw)

    info = SagaInfo(saga_id="s", name="n", definition_hash="h")
    records = [rec(0, "start", 100.0), rec(1, "dispatch", 100.0, step="a",
                                           attempt=1)]
    (bar,) = timeline(info, records).bars
    assert (bar.end, bar.outcome) == (None, None)
    assert "open    a     action #1       no reply" in render_text(
        timeline(info, records))
    records += [rec(2, "recover", 130.0),
                rec(3, "reply", 131.0, step="a", attempt=1, outcome="ok")]
    tl = timeline(info, records)
    (bar,) = tl.bars
    assert (bar.start, bar.end, bar.outcome) == (0.0, 31.0, "ok")
    assert [m.label for m in tl.marks] == ["start", "recover"]


def test_bad_requests_are_diagnostics(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, sid = _compensated(tmp_path)
    assert main(["status", "--db", str(db), "--timeline"]) == 2
    err = capsys.readouterr().err
    assert "<command line>: error SAGA030:" in err and "help:" in err
    assert main(["status", "--db", str(db), sid, "--html", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "error SAGA031: cannot write html=" in err and "help:" in err


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_the_html_timeline_renders_in_a_browser(tmp_path: Path) -> None:
    """Headless Chromium lays the page out (the DOM it renders has every
    bar) and paints it (the screenshot is not blank)."""
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing (scripts/install_system.sh installs "
                        "it)")
        pytest.skip("chromium is not installed")
    db, sid = _compensated(tmp_path)
    page = tmp_path / "t.html"
    assert main(["status", "--db", str(db), sid, "--html", str(page)]) == 0
    flags = ["--headless", "--no-sandbox", "--disable-gpu",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()],
                         check=True, capture_output=True, text=True, timeout=120)
    parser = _Bars()
    parser.feed(dom.stdout)
    assert len(parser.bars) == 5, dom.stdout[:2000]
    shot = tmp_path / "t.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}",
                    "--window-size=1100,500", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    from PIL import Image

    with Image.open(shot) as img:
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None
    # The failed attempts' red bars and the blue COMPENSATED badge are
    # painted, not only white and text.
    reds = sum(n for n, (r, g, b) in colours if r > 180 and g < 100 and b < 100)
    blues = sum(n for n, (r, g, b) in colours if b > 180 and r < 60 and g < 140)
    assert reds > 2000 and blues > 1000, (reds, blues)
