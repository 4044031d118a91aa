#!/usr/bin/env bash
# Starts the local PostgreSQL cluster if it is installed and not running (tests use it over the socket).
set -euo pipefail
command -v pg_lsclusters >/dev/null || exit 0
if ! pg_lsclusters --no-header 2>/dev/null | grep -q online; then
    ver="$(ls /etc/postgresql | sort -V | tail -n1)"
    if ! pg_lsclusters --no-header | grep -q .; then
        pg_createcluster "$ver" main >/dev/null
    fi
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start
fi
