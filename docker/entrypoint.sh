#!/bin/sh
# One image, several roles: web, worker, beat, migrate (or any command).
set -eu

case "${1:-web}" in
web)
    exec gunicorn config.wsgi:application \
        --bind "0.0.0.0:${PORT:-8000}" \
        --workers "${WEB_CONCURRENCY:-2}" \
        --access-logfile - \
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
