"""Django's PostgreSQL backend with a health check that costs no round trip when all is well.

With CONN_HEALTH_CHECKS, Django checks a persistent connection at the first query of each
request by sending `SELECT 1`: a round trip on every request (measured here: 2-4 % of the
API's requests per second). An idle connection the server has closed or is closing (a restart,
an administrator's `pg_terminate_backend`, an idle timeout) has something to read: the server's
FATAL message, or the end of the stream. So when nothing is waiting on the socket, the
connection is taken as usable without asking, and only when something is (or the socket cannot
be polled) is Django's `SELECT 1` sent. A connection lost with no word from the server (a host
gone silent) fails its next query, as it would have failed Django's check.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        pgconn = connection.pgconn
        if (
            pgconn.status != pq.ConnStatus.OK
            or pgconn.transaction_status != pq.TransactionStatus.IDLE
        ):
            return super().is_usable()
        try:
            # poll(), not select(): select refuses descriptors past 1023, which a process
            # serving many streams reaches.
            poller = select.poll()
            poller.register(pgconn.socket, select.POLLIN)
            waiting = poller.poll(0)
        except (OSError, ValueError):
            return super().is_usable()
        # Something arrived unasked (a notice, a notification, or the server hanging up):
        # only a round trip can tell which.
        return super().is_usable() if waiting else True
