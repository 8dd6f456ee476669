"""A transaction held open in another thread, on its own connection, for tests of races."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connections, transaction


@contextmanager
def held_open(work: Callable[[], None], *, timeout: float = 30) -> Iterator[None]:
    """Run `work` in a transaction of another thread and keep it open, uncommitted, for the
    block; it commits as the block ends, whatever the block raised."""
    written, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with transaction.atomic():
                work()
                written.set()
                if not release.wait(timeout):
                    raise TimeoutError("the test never let the transaction commit")
        except BaseException as failure:  # reported by the test's thread below
            failures.append(failure)
            written.set()
        finally:
            connections.close_all()

    holder = threading.Thread(target=run)
    holder.start()
    try:
        assert written.wait(timeout), "the held transaction never wrote"
        assert failures == []
        yield
    finally:
        release.set()
        holder.join(timeout)
    assert not holder.is_alive(), "the held transaction never ended"
    assert failures == []
