"""Where one API request's time goes: cProfile in-process, beside the bare view.

Sends REQUESTS requests to each endpoint of bench/api.py (and to the baseline view) through
Django's test client, with the bench's settings (`bench.settings`, DEBUG off, Redis cache,
PostgreSQL), and prints per endpoint the wall time per request without the profiler and the
cumulative time per request of the parts of the serving path under cProfile. cProfile inflates
Python-heavy parts (roughly 1.5-2x); compare the parts with each other, not with the wall time.

Run: `scripts/with-services.sh .venv/bin/python -m bench.api_profile`; PROFILE_ONLY=get_deal
(names joined by commas) profiles some endpoints; PROFILE_TOP=tottime (or cumulative) also
prints the top functions.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.common import setup_django

REQUESTS = int(os.environ.get("PROFILE_REQUESTS", "400"))

# (label, file suffix, function name): cumulative time of every function matching both.
PARTS = [
    ("whole request (handler)", "django/core/handlers/base.py", "get_response"),
    ("django-guid", "django_guid/middleware.py", "process_incoming_request"),
    ("django-guid", "django_guid/middleware.py", "process_outgoing_request"),
    ("access log record", "logging/__init__.py", "info"),
    ("security headers", "config/middleware.py", "_carried_credentials"),
    ("security headers", "django/utils/cache.py", "patch_cache_control"),
    ("session middleware", "sessions/middleware.py", "process_response"),
    ("CSRF middleware", "middleware/csrf.py", "process_view"),
    ("DRF dispatch (view)", "rest_framework/views.py", "dispatch"),
    ("authentication (knox)", "tracker/api/auth.py", "authenticate_credentials"),
    ("  token SHA-512", "knox/crypto.py", "hash_token"),
    ("permission (role query)", "rest_framework/views.py", "check_permissions"),
    ("throttles (Redis)", "rest_framework/views.py", "check_throttles"),
    ("content negotiation", "rest_framework/views.py", "perform_content_negotiation"),
    ("parse body", "tracker/api/parsers.py", "parse"),
    ("input serializer", "rest_framework/serializers.py", "is_valid"),
    ("view handler", "tracker/api/deal_views.py", "get"),
    ("view handler", "tracker/api/deal_views.py", "post"),
    ("  record_event (service)", "tracker/deals/services.py", "record_event"),
    ("    append", "tracker/eventstore/store.py", "append"),
    ("  replay.state", "tracker/deals/replay.py", "state"),
    ("  output serializer", "rest_framework/serializers.py", "data"),
    ("render (response.rendered_content)", "rest_framework/response.py", "rendered_content"),
    ("on-commit callbacks", "django/db/backends/base/base.py", "run_and_clear_commit_hooks"),
    ("SQL execute (all)", "django/db/backends/utils.py", "_execute"),
    ("Redis commands (all)", "redis/client.py", "execute_command"),
    ("logging (all)", "logging/__init__.py", "_log"),
]


def main() -> None:
    os.environ["API_THROTTLE_USER"] = os.environ["API_THROTTLE_ANON"] = "100000000/min"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    setup_django()
    from django.test import Client

    from bench.api import _prepare
    from tracker.deals.management.commands.seed_demo import deal_id

    token, writers = _prepare()
    deal = str(deal_id(2))
    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_ACCEPT="application/json")
    anonymous = Client(HTTP_ACCEPT="application/json")
    versions = {"v": 1}

    def note() -> Any:
        body = {
            "type": "NoteAdded",
            "data": {"text": f"bench note {uuid.uuid4()}"},
            "occurred": {"date": "2025-06-01", "precision": "month"},
            "source": {"title": "bench", "publisher": "unknown"},
            "expected_version": versions["v"],
        }
        response = client.post(
            f"/api/v1/deals/{writers[0]}/events/", json.dumps(body), "application/json"
        )
        versions["v"] = response.json()["version"]
        return response

    endpoints: dict[str, Callable[[], Any]] = {
        "baseline": lambda: anonymous.get("/bench/baseline/"),
        "get_deal": lambda: client.get(f"/api/v1/deals/{deal}/"),
        "get_deals_list": lambda: client.get("/api/v1/deals/"),
        "get_deal_state": lambda: client.get(f"/api/v1/deals/{deal}/state/?as_of=2025-06-15"),
        "post_deal_event": note,
    }
    report: dict[str, Any] = {}
    only = os.environ.get("PROFILE_ONLY")
    for name, send in endpoints.items():
        if only and name not in only.split(","):
            continue
        for _ in range(50):
            response = send()
            assert response.status_code < 300, (name, response.status_code, response.content)
        started = time.perf_counter()
        for _ in range(REQUESTS):
            send()
        wall_ms = (time.perf_counter() - started) / REQUESTS * 1000
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(REQUESTS):
            send()
        profiler.disable()
        stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        parts = {}
        for label, suffix, function in PARTS:
            total = sum(
                cumulative
                for (filename, _, func), (_, _, _, cumulative, _) in stats.items()
                if func == function and filename.endswith(suffix)
            )
            if total:
                parts[label] = parts.get(label, 0) + round(total / REQUESTS * 1000, 3)
        report[name] = {"wall_ms": round(wall_ms, 3), "profiled_ms": parts}
        if os.environ.get("PROFILE_TOP"):
            pstats.Stats(profiler).sort_stats(os.environ["PROFILE_TOP"]).print_stats(40)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
