#!/bin/bash
# Entry point of the offline PostgreSQL stand-in, with the official image's variables:
# POSTGRES_USER (default postgres), POSTGRES_PASSWORD, POSTGRES_DB (default: the user), each
# also as *_FILE (Docker secrets); POSTGRES_INITDB_ARGS; POSTGRES_HOST_AUTH_METHOD.
#
# An empty $PGDATA is initialised (initdb, then the database created in single-user mode)
# without ever listening on TCP, so `pg_isready -h 127.0.0.1` passes only once the real server
# is up. The server then listens on every address of the container.
set -Eeuo pipefail

# file_env NAME [DEFAULT]: NAME from the environment, else the content of the file NAME_FILE.
file_env() {
    local name="$1" default="${2:-}"
    local file_name="${name}_FILE"
    if [ -n "${!name:-}" ] && [ -n "${!file_name:-}" ]; then
        echo "error: both $name and $file_name are set; set only one" >&2
        exit 1
    fi
    local value="$default"
    if [ -n "${!name:-}" ]; then
        value="${!name}"
    elif [ -n "${!file_name:-}" ]; then
        if [ ! -r "${!file_name}" ]; then
            echo "error: $file_name is ${!file_name} but that file cannot be read by uid $(id -u)" >&2
            exit 1
        fi
        value="$(< "${!file_name}")"
    fi
    export "$name=$value"
    unset "$file_name"
}

initialise() {
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    local auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    if [ -z "$POSTGRES_PASSWORD" ] && [ "$auth" != trust ]; then
        echo "error: the database is not initialised and no password is given: set" \
            "POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
        exit 1
    fi
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA"

    local pwfile
    pwfile="$(mktemp)"
    trap 'rm -f "$pwfile"' EXIT
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    local -a args=(--pgdata="$PGDATA" --username="$POSTGRES_USER" --auth-local=trust --auth-host="$auth")
    if [ -n "$POSTGRES_PASSWORD" ]; then
        args+=(--pwfile="$pwfile")
    fi
    # Word splitting of POSTGRES_INITDB_ARGS is what the official image does too.
    # shellcheck disable=SC2206
    args+=(${POSTGRES_INITDB_ARGS:-})
    initdb "${args[@]}"
    rm -f "$pwfile"
    trap - EXIT

    printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
    printf '\nhost all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        local quoted="${POSTGRES_DB//\"/\"\"}"
        echo "CREATE DATABASE \"$quoted\"" | postgres --single -D "$PGDATA" postgres > /dev/null
    fi
    echo "initialised $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
}

if [ "${1:0:1}" = "-" ]; then
    set -- postgres "$@"
fi
if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    initialise
fi
# The server needs none of these; they should not linger in its environment.
unset POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE
exec "$@"
