"""Servers the suites need (PostgreSQL, Redis), started by the project's own
scripts: one way to start them and one rule for when they cannot start."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[1]


def start_server(name: str, script: str, env_url: str) -> str | None:
    """The server's URL: ``$env_url``, or a local one started by
    ``scripts/<script> start`` (which prints the URL last). None when it cannot
    start (the caller skips), except in CI, where that is a failure."""
    url = os.environ.get(env_url)
    if url:
        return url
    try:
        out = subprocess.run(["bash", str(_ROOT / "scripts" / script), "start"],
                             check=False, capture_output=True, text=True,
                             timeout=180)
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = str(exc)
    else:
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().splitlines()[-1]
        reason = out.stderr.strip()
    if os.environ.get("CI"):
        pytest.fail(f"{name} could not start in CI: {reason}")
    return None
