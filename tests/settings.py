"""Test settings: the project's settings plus a second, SQLite database for backend contracts."""

from config.settings import *  # noqa: F403
from config.settings import DATABASES

DATABASES["sqlite"] = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tasks run in-process unless a test sends them to the real worker it starts
# (tests/projections/conftest.py); the suite does not depend on a worker being there.
CELERY_TASK_ALWAYS_EAGER = True

# The replica `make test` starts (DATABASE_REPLICA_URL), a hot standby of the primary.
# - Its test database is the primary's, replicated: pytest-django asks Django to create one for
#   each alias a test names (`django_db(databases=[...])`), which a read-only standby refuses,
#   so its backend (tests.standby) only waits for the primary's to arrive. `TEST: {"MIRROR":
#   "default"}` would skip the creation too, but Django then gives the alias the primary's
#   settings, host and port included: every "replica" read would be the primary's.
# - Flushing it between transactional tests is a no-op: the router allows no table on it.
# - The suite reads from the primary, as each test's writes are in a transaction the replica
#   never sees; tests/api/test_replica.py turns replica reads on.
if "replica" in DATABASES:
    DATABASES["replica"]["ENGINE"] = "tests.standby"
REPLICA_READS = False

# The thread that sends notifications of new events gives its connection back at once, so that
# none is left open on the test database when the suite drops it.
EVENT_NOTIFY_IDLE_SECONDS = 0.0
