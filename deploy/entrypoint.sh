#!/bin/sh
# Container entrypoint: bring the database schema up to date, then hand this process over to gunicorn.
# Settings (APP_CONFIG, SECRET_KEY, ENCRYPTION_KEYS, PUBLIC_BASE_URL, DATABASE_URL, ...) come from the environment.
set -eu

cd "$(dirname "$0")/.."

# init-db is `flask db upgrade`, plus adopting a database that the image's old command (create_all) made.
echo "entrypoint: running database migrations" >&2
if ! flask --app app init-db; then
    echo "entrypoint: database migrations failed, not starting gunicorn; check DATABASE_URL and that the database is up" >&2
    exit 1
fi

echo "entrypoint: starting gunicorn" >&2
exec gunicorn -c gunicorn.conf.py 'app:create_app()'
