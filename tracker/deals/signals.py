"""Signals the deal services send, so that other apps can react without being imported here.

`events_recorded` is sent right after `append()` stored new events (not when an idempotency key
replays an earlier append): inside the caller's transaction when there is one, else just after
the append committed by itself. Keyword arguments: `deal_id` (UUID), `version` (the stream's
new version) and `events` (the stored `RecordedEvent`s). A receiver that starts work elsewhere
(a Celery task) must defer it with `transaction.on_commit`, so nothing runs for a write that
rolls back. It is sent with `send_robust`: a receiver that raises is logged, and the write is
answered as stored.
"""

from __future__ import annotations

from django.dispatch import Signal

events_recorded = Signal()
