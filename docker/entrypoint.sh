#!/bin/sh
# One image, several roles: web, stream, worker, beat, migrate (or any command).
set -eu

case "${1:-web}" in
web)
    exec gunicorn config.wsgi:application \
        --bind "0.0.0.0:${PORT:-8000}" \
        --workers "${WEB_CONCURRENCY:-2}" \
        --access-logfile - \
        --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}"
    ;;
stream)
    # The event streams (server-sent events): uvicorn, serving config.asgi. Each open stream
    # costs a coroutine; reads share EVENT_STREAM_READERS connections per process, plus one
    # LISTEN connection. Under ASGI each request runs in a thread of its own, so connections
    # are not kept past a request (CONN_MAX_AGE=0). The API stays on gunicorn (web).
    CONN_MAX_AGE=0 exec uvicorn config.asgi:application \
        --host 0.0.0.0 \
        --port "${STREAM_PORT:-8001}" \
        --workers "${STREAM_CONCURRENCY:-1}" \
        --timeout-graceful-shutdown 5 \
        --proxy-headers \
        --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}"
    ;;
worker)
    exec celery -A config worker --loglevel=INFO --concurrency "${WORKER_CONCURRENCY:-2}"
    ;;
beat)
    exec celery -A config beat --loglevel=INFO --schedule /tmp/celerybeat-schedule
    ;;
migrate)
    exec python manage.py migrate --no-input
    ;;
*)
    exec "$@"
    ;;
esac
