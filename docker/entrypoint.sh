#!/bin/sh
# The app container's entry point: apply pending migrations, then run the command (gunicorn by
# default). Replicas starting together are safe: the migration environment takes a PostgreSQL
# advisory lock, so one applies each migration and the others find nothing left to do.
# MIGRATE_ON_START=0 skips the migrations (a one-off `flask` command, say).
set -eu
if [ "${MIGRATE_ON_START:-1}" = "1" ]; then
    flask --app application.wsgi:app db upgrade
fi
exec "$@"
