"""Rate limits that read their rates when asked, cost one Redis round trip, and let requests
through if the cache is down.

DRF's throttles copy the rates when the class is defined, so a changed REST_FRAMEWORK setting
would not reach them. A cache (Redis) outage must not turn every request into an error: the
limit is then not enforced, and the outage is logged.

DRF keeps each client's history as a pickled list in the cache, read and written back on every
request: two round trips, a pickle each way, and two processes that read the same history at
once both count one request. On Redis the same sliding log is a sorted set that one Lua
script trims, counts and appends to, atomically, in one round trip. The rule is DRF's: at most
`num_requests` granted requests in any `duration` seconds (a refused request does not count),
and Retry-After is the time until the oldest of them leaves the window. Without Redis (the
embedded default, local memory) DRF's own code runs.

The script's command is written here and sent on a connection of the client's pool: redis-py's
path for a command (encoding each argument, a retry policy, and observability records kept
whether or not anything reads them) cost as much CPU as the round trip itself, 0.05 ms against
0.025 ms a request. A failed call is not retried: the request it throttles is let through.
"""

from __future__ import annotations

import itertools
import logging
import os
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.dispatch import receiver
from rest_framework import throttling
from rest_framework.request import Request
from rest_framework.settings import api_settings

logger = logging.getLogger(__name__)

# KEYS[1]: the sorted set of granted requests (member: unique id, score: time); KEYS[2], if
# given: the API token generation (token_cache.py), read in the same trip.
# ARGV: now, duration (seconds), num_requests, member, and with KEYS[2] the generation the
# caller expects. Returns {count, generation} when the request is granted (and added),
# {count, generation, oldest score} when it is refused: count is the number of granted
# requests in the window, generation KEYS[2]'s value ("" if none). With KEYS[2] holding another
# value than expected, {-1, generation}: nothing counted (the caller's token must be read again).
_SLIDING_LOG = """
local now = tonumber(ARGV[1])
local duration = tonumber(ARGV[2])
local generation = ''
if #KEYS > 1 then
    generation = redis.call('GET', KEYS[2]) or ''
    if generation ~= ARGV[5] then return {-1, generation} end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - duration)
local count = redis.call('ZCARD', KEYS[1])
if count >= tonumber(ARGV[3]) then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {count, generation, oldest[2]}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(duration * 1000))
return {count, generation}
"""

_client: redis.Redis | None = None
_script: Any = None
_members = itertools.count()
_EVALSHA, _EVAL = b"EVALSHA", b"EVAL"


def _redis_script() -> Any:
    """The registered script on a client kept for the process, or None without Redis."""
    global _client, _script
    if _script is None:
        backend = settings.CACHES["default"]
        if backend["BACKEND"] != "django.core.cache.backends.redis.RedisCache":
            return None
        location = backend["LOCATION"]
        url = location[0] if isinstance(location, list | tuple) else location.split(",")[0]
        # A client made once: django's RedisCache builds a new one for every command.
        _client = redis.Redis.from_url(url, **backend.get("OPTIONS", {}))
        _script = _client.register_script(_SLIDING_LOG)
    return _script


@receiver(setting_changed)
def _forget_client(*, setting: str, **kwargs: Any) -> None:
    global _client, _script
    if setting == "CACHES":
        _client = _script = None


class _OneTripMixin:
    scope: str
    rate: str | None
    num_requests: int
    duration: int
    timer: Any

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return self._allow(request, view)
        except Exception:
            logger.warning("Rate limit not applied: the cache is unavailable", exc_info=True)
            return True

    def _allow(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        script = _redis_script()
        if script is None:
            return super().allow_request(request, view)  # type: ignore[misc]
        key = self.get_cache_key(request, view)  # type: ignore[attr-defined]
        if key is None:
            return True
        # Counted already in the round trip that confirmed a kept token (count_with_generation).
        counted = getattr(request, "_counted_requests", {}).pop(key, None)
        if counted is None:
            self.now = self.timer()
            result = self._count(script, key)
        else:
            self.now, result = counted
        if len(result) == 2:
            return True
        self._window = (int(result[0]), float(result[2]))
        return False

    def _count(self, script: Any, key: str, generation: tuple[bytes, bytes] | None = None) -> Any:
        """Run the script; `generation`: (its key, the value expected there)."""
        member = f"{self.now!r}:{os.getpid()}:{next(_members)}"
        keys = [cache.make_key(f"throttle-log:{key}").encode()]
        args = [repr(self.now), str(self.duration), str(self.num_requests), member]
        if generation is not None:
            keys.append(generation[0])
            args.append(generation[1].decode())
        return _run(script, keys, *args)

    def wait(self) -> float | None:
        window = getattr(self, "_window", None)
        if window is None:
            return super().wait()  # type: ignore[misc]
        # DRF's rule, with the window's size and oldest entry from the script.
        count, oldest = window
        remaining = self.duration - (self.now - oldest)
        available = self.num_requests - count + 1
        if available <= 0:
            return None
        return remaining / float(available)


def _run(script: Any, keys: list[bytes], *args: str) -> Any:
    """The script's answer: EVALSHA, or EVAL when Redis has not cached it."""
    parts = [str(len(keys)).encode(), *keys, *(arg.encode() for arg in args)]
    try:
        return send(_EVALSHA, script.sha.encode(), *parts)
    except redis.exceptions.NoScriptError:
        # Redis restarted or its script cache was flushed; EVAL caches the script again.
        return send(_EVAL, _SLIDING_LOG.encode(), *parts)


def count_with_generation(
    request: Request, user_pk: Any, generation_key: bytes, expected: bytes
) -> bytes | None:
    """Read `generation_key` and, if it holds `expected`, count `request` in its user's rate limit:
    one round trip. Returns the generation read.

    For the token cache: a kept token is confirmed by the generation, and the request's own
    rate limit check then uses this count instead of a second trip. A confirmed request is
    counted before its permissions are checked; an unconfirmed one is not counted here. None
    (nothing read) where the view's rate limits are not exactly the project's user limit or the
    cache is not Redis; Redis errors are raised.
    """
    view = (getattr(request, "parser_context", None) or {}).get("view")
    if UserRateThrottle not in getattr(view, "throttle_classes", ()):
        return None
    throttle = UserRateThrottle()
    script = _redis_script()
    if throttle.rate is None or script is None:
        return None
    key = throttle.cache_format % {"scope": throttle.scope, "ident": user_pk}
    throttle.now = throttle.timer()
    result = throttle._count(script, key, (generation_key, expected))
    if result[0] != -1:
        counted = request.__dict__.setdefault("_counted_requests", {})
        counted[key] = (throttle.now, result)
    return result[1]


def redis_client() -> redis.Redis | None:
    """The Redis client this process keeps for the cache, or None when the cache is not Redis."""
    return _client if _redis_script() is not None else None


def send(*items: bytes) -> Any:
    """One command, written here, on a pooled connection of the process's client; its answer.

    Only with Redis as the cache (`redis_client()` not None). A connection that fails
    disconnects itself, and the pool reconnects it when it is next used.
    """
    assert _client is not None
    pool = _client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_packed_command([_command(*items)])
        return connection.read_response()
    finally:
        pool.release(connection)


def _command(*items: bytes) -> bytes:
    """A command in RESP, as redis-py's packer writes it."""
    return b"*%d\r\n" % len(items) + b"".join(
        b"$%d\r\n%s\r\n" % (len(item), item) for item in items
    )


class AnonRateThrottle(_OneTripMixin, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(_OneTripMixin, throttling.UserRateThrottle):
    pass
