"""Work paused in another thread, on its own connection, for tests of races."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from django.db import connections, transaction


@contextmanager
def paused_in_thread(
    work: Callable[[Callable[[], None]], None], *, timeout: float = 30
) -> Iterator[None]:
    """Run `work(pause)` in another thread; the block runs once it first calls `pause`, which
    holds it until the block ends (later calls return at once). The work must then finish
    without error, whatever the block raised."""
    paused, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def pause() -> None:
        paused.set()
        if not release.wait(timeout):
            raise TimeoutError("the test never let the paused work go on")

    def run() -> None:
        try:
            work(pause)
        except BaseException as failure:  # reported by the test's thread below
            failures.append(failure)
            paused.set()
        finally:
            connections.close_all()

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert paused.wait(timeout), "the work never paused"
        assert failures == []
        yield
    finally:
        release.set()
        worker.join(timeout)
    assert not worker.is_alive(), "the paused work never ended"
    assert failures == []


def held_open(work: Callable[[], None], *, timeout: float = 30) -> AbstractContextManager[None]:
    """Run `work` in a transaction of another thread and keep it open, uncommitted, for the
    block; it commits as the block ends."""

    def in_a_transaction(pause: Callable[[], None]) -> None:
        with transaction.atomic():
            work()
            pause()

    return paused_in_thread(in_a_transaction, timeout=timeout)
