"""Deals waiting for their projection, kept in the broker's Redis so that dispatches coalesce
across every web process, not only within one.

Each committed append records its deal and version in one hash (a deal appended to twice is
one entry, at the higher version) and schedules a `project_pending` task only when none is
scheduled yet. That task projects the waiting deals in batches, and removes an entry only once
its projection has committed at or past the entry's version, so a worker that dies mid-batch
leaves the entries for the redelivered task; an append that lands meanwhile keeps its entry.
Redis is a hint, not the record: the event store is, and the sweep heals whatever a lost
Redis forgets.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from functools import cache
from typing import Any
from uuid import UUID

import redis
from django.conf import settings

from . import projector
from .projector import Left, Outcome, Projection

PENDING = "deal-tracker:projections:pending"
SCHEDULED = "deal-tracker:projections:scheduled"
SCHEDULED_TTL_MS = 5000
"""How long a scheduled task counts as coming: past it, the next append schedules another
(a task lost with its message delays the deals it would have taken by this much at most)."""

_MARK = """
for i = 2, #ARGV, 2 do
  local current = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if tonumber(ARGV[i + 1]) > current then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return 1 end
return 0
"""

_DONE = """
local removed = 0
for i = 1, #ARGV, 2 do
  local waiting = redis.call('HGET', KEYS[1], ARGV[i])
  if waiting and tonumber(waiting) <= tonumber(ARGV[i + 1]) then
    redis.call('HDEL', KEYS[1], ARGV[i])
    removed = removed + 1
  end
end
return removed
"""


def available() -> bool:
    """True when the broker is Redis, where the waiting deals can be kept."""
    return str(getattr(settings, "CELERY_BROKER_URL", "")).startswith(("redis://", "rediss://"))


def mark(versions: Mapping[str, int]) -> bool:
    """Record deals committed at these versions; True when a task must be scheduled."""
    args: list[Any] = [SCHEDULED_TTL_MS]
    for deal_id, version in versions.items():
        args += [deal_id, version]
    return bool(_scripts()[0](keys=[PENDING, SCHEDULED], args=args))


def unschedule() -> None:
    """Called as a task starts: an append from now on schedules the next task."""
    _client().delete(SCHEDULED)


def take(limit: int) -> list[UUID]:
    """Up to `limit` waiting deals, left in place until `done`."""
    return [UUID(field.decode()) for field in _client().hrandfield(PENDING, limit) or []]


def done(versions: Mapping[UUID, int]) -> int:
    """Forget the deals whose projection has committed at or past their waiting version."""
    if not versions:
        return 0
    args: list[Any] = []
    for deal_id, version in versions.items():
        args += [str(deal_id), version]
    return int(_scripts()[1](keys=[PENDING], args=args))


def project_waiting(budget_seconds: float) -> tuple[int, Left]:
    """Project the waiting deals a batch per transaction, settling each entry a projection
    reached; returns how many deals it projected and what it left."""
    deadline = time.monotonic() + budget_seconds
    projected = 0
    while deal_ids := take(projector.BATCH):
        results = projector.project_deals(deal_ids)
        batch = sum(r.outcome is Outcome.PROJECTED for r in results)
        projected += batch
        reached = {r.deal_id: _settled(r) for r in results if r.outcome is not Outcome.BUSY}
        if not done(reached) and not batch:
            return projected, Left.HELD
        if time.monotonic() > deadline:
            return projected, Left.TIME
    return projected, Left.NOTHING


def _settled(result: Projection) -> int:
    """The version up to which a deal's waiting entry is settled by this result."""
    if result.outcome is Outcome.FAILED or result.version == 0:
        # Logged and left to the sweep, or a deal with no stream (nothing will ever come):
        # an entry kept would only come back here.
        return 2**31 - 1
    return result.version


def waiting() -> int:
    return int(_client().hlen(PENDING))


@cache
def _client() -> redis.Redis:
    # redis-py's pool notices a fork and opens new connections in the child.
    return redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_connect_timeout=2, socket_timeout=5
    )


@cache
def _scripts() -> tuple[Any, Any]:
    client = _client()
    return client.register_script(_MARK), client.register_script(_DONE)
