#!/usr/bin/env bash
# Runs the pgTAP tests of supabase/tests against a PostgreSQL server (15+), the way
# `supabase test db` runs them against a local Supabase stack:
#   1. creates a throwaway database (userdb_pgtap_<random>),
#   2. installs pgtap and loads src/devserver/sql/bootstrap.sql (the Supabase-like
#      auth schema, roles and grants) and supabase/migrations/*.sql in order,
#   3. runs pg_prove on supabase/tests/*.sql,
#   4. drops the database, and exits non-zero when anything failed.
#
# Connection: a superuser, given by DATABASE_URL (postgres://user:pass@host:port/db, any
# existing database to connect to first) or by the usual PG* variables / defaults
# (e.g. run as the postgres OS user: `su postgres -c scripts/pgtap.sh`).
#
# Needs psql, pg_prove and the pgtap extension (Debian: postgresql-15-pgtap).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
db="userdb_pgtap_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

# psql/pg_prove connection to a given database.
if [[ -n "${DATABASE_URL:-}" ]]; then
  base="${DATABASE_URL%%\?*}"
  query=""
  [[ "$DATABASE_URL" == *\?* ]] && query="?${DATABASE_URL#*\?}"
  admin_conn="$DATABASE_URL"
  test_conn="${base%/*}/${db}${query}"
else
  admin_conn="${PGDATABASE:-postgres}"
  test_conn="$db"
fi

psql_admin() { psql "$admin_conn" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_test() { psql "$test_conn" -X -q -v ON_ERROR_STOP=1 "$@"; }

cleanup() {
  psql_admin -c "drop database if exists ${db} with (force)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

psql_admin -c "create database ${db}"

fail() {
  echo "pgtap.sh: $*" >&2
  exit 1
}

psql_test -c "create extension pgtap" || fail "cannot create extension pgtap (Debian: postgresql-15-pgtap)"
files=("$root/src/devserver/sql/bootstrap.sql" "$root"/supabase/migrations/*.sql)
for f in "${files[@]}"; do
  # (the publication warns that wal_level is not logical: irrelevant here)
  PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=error" psql_test -f "$f" || fail "loading $f failed"
done

# psql (which pg_prove runs) takes a conninfo string or a URI as the database name.
pg_prove --dbname "$test_conn" "$root"/supabase/tests/*.sql
