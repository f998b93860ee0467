#!/bin/bash
# PostgreSQL's first start (docker-entrypoint-initdb.d): the reporting store gets its own database and role,
# apart from Airflow's metadata database, so each can be backed up, restored and granted on its own.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v store_password="$CLOSEOUT_DB_PASSWORD" <<'SQL'
CREATE ROLE closeout LOGIN PASSWORD :'store_password';
CREATE DATABASE closeout OWNER closeout;
SQL
