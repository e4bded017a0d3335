import os
import uuid
from collections.abc import Iterator

import pytest

from tests.services import start_server


def _start_redis() -> str | None:
    return start_server("Redis", "redis.sh", "SAGAPROOF_REDIS_URL")


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
