"""Fixed-window rate limits on Redis, shared by every API process.

Used where a burst means abuse, not work: failed authentications per client
address, and bulk reads (lists, searches, exports) per user. When Redis
cannot be reached the limit is skipped and logged: the registry stays usable
on a crisis day, and the broker outage is visible elsewhere (``/readyz``).
"""
from __future__ import annotations

import logging
import math
import time

import redis

from registry.extensions import redis_client

log = logging.getLogger(__name__)


def hit(bucket: str, limit: int, window_s: int = 60) -> int | None:
    """Count one event in ``bucket``; the seconds to wait when it is over ``limit``, else None."""
    now = time.time()
    window = int(now // window_s)
    key = f"sagip:ratelimit:{bucket}:{window}"
    try:
        pipe = redis_client().pipeline()
        pipe.incr(key)
        pipe.expire(key, window_s + 1)
        count = pipe.execute()[0]
    except redis.RedisError as exc:
        log.warning("rate limit skipped, Redis unavailable: %s", type(exc).__name__)
        return None
    if count <= limit:
        return None
    return max(1, math.ceil((window + 1) * window_s - now))


def count(bucket: str, window_s: int = 60) -> int:
    """How many events ``bucket`` holds in the current window (0 when Redis cannot be reached)."""
    key = f"sagip:ratelimit:{bucket}:{int(time.time() // window_s)}"
    try:
        return int(redis_client().get(key) or 0)
    except redis.RedisError as exc:
        log.warning("rate limit skipped, Redis unavailable: %s", type(exc).__name__)
        return 0


def wait_s(window_s: int) -> int:
    """Seconds until the current window ends."""
    now = time.time()
    return max(1, math.ceil((int(now // window_s) + 1) * window_s - now))
