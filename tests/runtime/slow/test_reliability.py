"""Crash scenarios beyond random SIGKILLs (test_kill.py keeps those): kills
during compensation and during recovery, two recoverers at once, a worker
SIGSTOPped past its lease. Each must lose nothing, re-run no completed step,
leave no saga unfinished, and leave logs that conform; each must also have
really exercised its scenario (the figure that says so is not zero). Sizes
are small (about a minute each); bench/reliability.py runs them large."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reliability as r


def _check(fig: r.Figures) -> None:
    print(r.HEADER)
    print(fig.row())
    assert fig.ok(), fig
    assert fig.sagas > 0 and fig.recovered > 0, fig


@pytest.mark.slow
def test_kills_during_compensation(tmp_path: Path) -> None:
    fig = r.random_kills(tmp_path, kills=12, total=300, mode="compensate")
    _check(fig)
    assert fig.kills_in_compensation > 0, fig


@pytest.mark.slow
def test_kills_during_recover(tmp_path: Path) -> None:
    fig = r.recover_kills(tmp_path, kills=12, total=300)
    _check(fig)


@pytest.mark.slow
def test_two_concurrent_recovers(tmp_path: Path) -> None:
    fig = r.concurrent_recover(tmp_path, kills=4, total=300)
    _check(fig)
    assert fig.double_claims == 0


@pytest.mark.slow
def test_sigstop_past_the_lease(tmp_path: Path) -> None:
    fig = r.sigstop_past_lease(tmp_path, rounds=2, total=300)
    _check(fig)
    assert fig.taken_over > 0, fig
