import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]


def _start_redis() -> str | None:
    """The server's URL: $SAGAPROOF_REDIS_URL, or a local one started by the
    project's own script. None when it cannot start (skip), except in CI."""
    url = os.environ.get("SAGAPROOF_REDIS_URL")
    if url:
        return url
    try:
        out = subprocess.run(["bash", str(_ROOT / "scripts" / "redis.sh"), "start"],
                             check=False, capture_output=True, text=True,
                             timeout=180)
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = str(exc)
    else:
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().splitlines()[-1]
        reason = out.stderr.strip()
    if os.environ.get("CI"):
        pytest.fail(f"Redis could not start in CI: {reason}")
    return None


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A running Redis server (skipped locally when none can start)."""
    if not os.environ.get("CI"):
        pytest.importorskip("redis")  # in CI a missing client is a failure
    url = _start_redis()
    if url is None:
        pytest.skip("Redis is not available: bash scripts/redis.sh start")
    return url


@pytest.fixture
def stream_prefix(redis_url: str) -> Iterator[str]:
    """Stream keys of this test only (tests share the server); deleted after."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()
