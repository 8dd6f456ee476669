"""Settings, all from the environment.

With nothing set the project runs embedded: SQLite in the working directory and Celery tasks run
eagerly in-process, so `make demo` works on a fresh machine. Set DATABASE_URL and
CELERY_BROKER_URL to run on PostgreSQL, Redis and real workers.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django_guid.integrations import CeleryIntegration

from .logconfig import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

# Typed values with defaults (django-environ). An empty variable counts as unset, as a compose
# file's `VAR=` or `${VAR:-}` means: django-environ would parse "" (DEBUG= as off, a number as
# an error), so it reads the environment less its empty variables.
env = environ.Env()
env.ENVIRON = {name: value for name, value in os.environ.items() if value != ""}

DEBUG = env.bool("DEBUG", default=True)

_INSECURE_DEFAULT_KEY = "django-insecure-embedded-demo-key-do-not-use-in-production"
# Read as it is, not through env.str: django-environ takes a value starting with "$" as the
# name of another variable, and a generated key may start with "$".
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = _INSECURE_DEFAULT_KEY

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", cast=str.strip, default=["127.0.0.1", "localhost", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", cast=str.strip, default=[])

INSTALLED_APPS = [
    # Django's admin with tracker.backoffice.site.BackofficeSite as its default site.
    "tracker.backoffice.apps.BackofficeAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_guid",
    "pgtrigger",
    "pghistory",
    "tracker.eventstore",
    "tracker.deals",
    "tracker.projections",
    "tracker.api",
    "tracker.backoffice",
]

MIDDLEWARE = [
    "django_guid.middleware.guid_middleware",
    "config.middleware.AccessLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "config.middleware.LazyMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Embedded default: a SQLite file beside the code. CONN_MAX_AGE keeps PostgreSQL connections
# across requests; health checks drop broken ones.
DATABASES = {
    "default": {
        **env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        "CONN_MAX_AGE": env.int("CONN_MAX_AGE", default=60),
        "CONN_HEALTH_CHECKS": True,
    }
}
# PostgreSQL through Django's backend with a health check that sends no `SELECT 1` when the
# connection's socket says nothing is wrong (config/postgresql/base.py).
POSTGRESQL_ENGINE = "config.postgresql"
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = POSTGRESQL_ENGINE
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].pop("CONN_MAX_AGE", None)
    # Concurrent writers on the embedded default: WAL lets readers run beside the one writer,
    # and IMMEDIATE transactions take the write lock at BEGIN, so a contended writer waits
    # (up to `timeout` seconds) instead of failing at once with "database is locked" when
    # a read inside its transaction must be upgraded to a write.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }

# A PostgreSQL hot standby of DATABASE_URL's server, for reads (README: "Reads from a
# replica"). It holds every database of its primary, so its URL may leave the name out: then
# it is DATABASE_URL's. Only the reads that name it with `using=` go there (tracker.api.replica);
# the router keeps every other query, and every write and migration, on the primary. A short
# connect timeout and REPLICA_RETRY_SECONDS of remembering it down make a stopped replica cheap.
REPLICA_READS = False
if env.str("DATABASE_REPLICA_URL", default=""):
    if DATABASES["default"]["ENGINE"] != POSTGRESQL_ENGINE:
        raise ImproperlyConfigured("DATABASE_REPLICA_URL needs DATABASE_URL on PostgreSQL.")
    _replica = env.db_url("DATABASE_REPLICA_URL")
    DATABASES["replica"] = {
        **_replica,
        "ENGINE": POSTGRESQL_ENGINE,
        "NAME": _replica["NAME"] or DATABASES["default"]["NAME"],
        "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
        "CONN_HEALTH_CHECKS": True,
        # libpq's, in whole seconds (2 at least).
        "OPTIONS": {
            **_replica.get("OPTIONS", {}),
            "connect_timeout": env.int("REPLICA_CONNECT_TIMEOUT", default=2),
        },
    }
    DATABASE_ROUTERS = ["config.routers.PrimaryRouter"]
    REPLICA_READS = True
REPLICA_RETRY_SECONDS = env.float("REPLICA_RETRY_SECONDS", default=5.0)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# In development static files come straight from the apps; in production from STATIC_ROOT,
# filled by collectstatic.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Celery: with no broker configured, tasks run eagerly in the calling process (embedded mode).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A publish to a broker that is down must not hang a request: the sweep heals the lost dispatch.
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 2}
CELERY_TASK_PUBLISH_RETRY = False
# How far past today an event's `occurred` may lie (clock skew, time zones), in days.
DEAL_FUTURE_TOLERANCE_DAYS = env.int("DEAL_FUTURE_TOLERANCE_DAYS", default=1)
# Events each process keeps of the deal streams it has read (about 1.4 KB each); 0: none.
DEAL_STREAM_CACHE_EVENTS = env.int("DEAL_STREAM_CACHE_EVENTS", default=50_000)
PROJECTION_SWEEP_SECONDS = env.float("PROJECTION_SWEEP_SECONDS", default=5.0)
LEDGER_DIGEST_SECONDS = env.float("LEDGER_DIGEST_SECONDS", default=900.0)
CELERY_BEAT_SCHEDULE = {
    # The sweep heals dispatches lost to a broker outage or a killed worker; it is cheap (one
    # indexed query), so it runs every few seconds.
    "sweep-projections": {
        "task": "tracker.projections.tasks.sweep_projections",
        "schedule": PROJECTION_SWEEP_SECONDS,
    },
    # A digest commits to every stream's head, so a later rewrite of history, even with the
    # hashes recomputed, no longer matches it.
    "take-ledger-digest": {
        "task": "tracker.projections.tasks.take_ledger_digest",
        "schedule": LEDGER_DIGEST_SECONDS,
    },
}

# Security headers: on by default, relaxed only for the embedded demo over plain HTTP.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Content-Security-Policy, Permissions-Policy and no-store on authenticated API answers are set
# by config.middleware.SecurityHeadersMiddleware. Scripts come only from this origin's files,
# never inline or from eval: the admin, the browsable API and Swagger UI (drf-spectacular-sidecar)
# need no more. Inline styles are allowed: Django's admin, the browsable API, Swagger UI's page
# and the admin's timeline all write some, hashes of third-party markup would break with each
# upgrade, and CSS cannot reach another origin here (img-src, font-src, connect-src).
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
# Swagger UI at /api/docs/ is drf-spectacular's split view, which serves its start-up script as a
# file, so that page needs no exception either.
# Browser features the product never uses, turned off for every page and anything it embeds.
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "hid",
        "idle-detection",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
}
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Readiness probes call /health/ over plain HTTP from inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_BODY_BYTES", default=1024 * 1024)

LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
LOGGING = logging_config(
    json_lines=LOG_FORMAT == "json", level=env.str("LOG_LEVEL", default="INFO")
)

# A request id on every request and log record (X-Request-ID, or a new one), carried into
# the Celery tasks a request dispatches.
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "VALIDATE_GUID": True,
    "INTEGRATIONS": [CeleryIntegration(use_django_logging=True, log_parent=False)],
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- API (owned by tracker.api) ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate challenge is what makes DRF answer an anonymous
        # request 401 rather than 403.
        "tracker.api.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tracker.api.permissions.CanRead"],
    # JSON only. DRF >= 3.17.2 parses JSON through request.body, so DATA_UPLOAD_MAX_MEMORY_SIZE
    # applies (413 through the problem handler); older versions read the raw stream unchecked.
    "DEFAULT_PARSER_CLASSES": ["tracker.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "tracker.api.renderers.FastJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "tracker.api.throttling.AnonRateThrottle",
        "tracker.api.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="300/min"),
        "user": env.str("API_THROTTLE_USER", default="3000/min"),
    },
    "EXCEPTION_HANDLER": "tracker.api.problems.problem_exception_handler",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "tracker.api.negotiation.FormatNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# API tokens are stored as digests only (django-rest-knox); 0 days means they never expire.
# How long a process keeps a checked token, its user and roles (tracker.api.token_cache): a
# revocation through the models is in force at once; one made in raw SQL once this has passed.
# 0 reads them from the database on every request.
API_TOKEN_CACHE_SECONDS = env.float("API_TOKEN_CACHE_SECONDS", default=30.0)
_TOKEN_TTL_DAYS = env.int("API_TOKEN_TTL_DAYS", default=90)
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=_TOKEN_TTL_DAYS) if _TOKEN_TTL_DAYS else None,
    "AUTO_REFRESH": False,
}
ADMIN_LOGIN_MAX_FAILURES = env.int("ADMIN_LOGIN_MAX_FAILURES", default=5)
ADMIN_LOGIN_WINDOW_SECONDS = env.int("ADMIN_LOGIN_WINDOW_SECONDS", default=900)

SPECTACULAR_SETTINGS = {
    "TITLE": "deal-tracker API",
    "DESCRIPTION": (
        "Event-sourced record of aerospace and defence partnerships. Errors are RFC 9457 "
        "problem details (application/problem+json) with a stable `code`. A method a path "
        "does not list is 405 `method_not_allowed`."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files come from the drf-spectacular-sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "HealthStateEnum": "tracker.api.serializers.HEALTH_STATES",
        "DealKindEnum": "tracker.deals.events.DEAL_KINDS",
        "WeaponStatusEnum": "tracker.deals.events.WEAPON_STATUSES",
        "OrganisationKindEnum": "tracker.deals.models.Organisation.Kind",
    },
}

# Throttle counters live in the cache: Redis when REDIS_URL (or CACHE_URL) is set, shared by
# every web process; local memory when embedded. Short timeouts: a Redis outage must not hang
# requests (the throttles then let requests through).
_CACHE_URL = env.str("CACHE_URL", default=env.str("REDIS_URL", default=""))
if _CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _CACHE_URL,
            "KEY_PREFIX": "dealtracker",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# --- end API ---

# --- Server-sent events of the feed (tracker.api.streaming) ---
# A comment line after this long without a message, so that proxies keep idle streams open.
EVENT_STREAM_HEARTBEAT_SECONDS = env.float("EVENT_STREAM_HEARTBEAT_SECONDS", default=15.0)
# Streams woken by LISTEN/NOTIFY also read this often, in case a notification was lost.
EVENT_STREAM_RECHECK_SECONDS = env.float("EVENT_STREAM_RECHECK_SECONDS", default=5.0)
# Streams with no notifications to wait on (SQLite, or a WSGI server) read this often.
EVENT_STREAM_POLL_SECONDS = env.float("EVENT_STREAM_POLL_SECONDS", default=0.5)
# The thread that sends a process's notifications of new events closes its connection after
# this long without one to send (tracker.eventstore.store._Announcer).
EVENT_NOTIFY_IDLE_SECONDS = env.float("EVENT_NOTIFY_IDLE_SECONDS", default=30.0)
# At most one such notification this often: appends in between are announced together.
EVENT_NOTIFY_INTERVAL_SECONDS = env.float("EVENT_NOTIFY_INTERVAL_SECONDS", default=0.01)
# Threads (each with one database connection) that run the reads of every stream of a process.
EVENT_STREAM_READERS = env.int("EVENT_STREAM_READERS", default=4)
