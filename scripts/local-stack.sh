#!/usr/bin/env bash
# `make airflow`: the whole stack on this machine for clicking through the UI — api-server, scheduler,
# dag-processor, triggerer, the LocalExecutor, the local SMTP sink and the sample inbox, on SQLite under
# data/local/. Times shown in Asia/Shanghai. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DATA="${CLOSEOUT_LOCAL_DATA:-$ROOT/data/local}"
PORT="${AIRFLOW_PORT:-8080}"
SMTP_PORT="${DEMO_SMTP_PORT:-8025}"
mkdir -p "$DATA/logs"

export AIRFLOW_HOME="$DATA/airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags" AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__DEFAULT_TIMEZONE=Asia/Shanghai AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True  # local only: no login, everyone is admin
export AIRFLOW__API__BASE_URL="http://localhost:$PORT" AIRFLOW__API__PORT="$PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://localhost:$PORT/execution/"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=30
export CLOSEOUT_INBOX="${CLOSEOUT_INBOX:-$ROOT/sample/inbox}" CLOSEOUT_DATA="$DATA"
export CLOSEOUT_RECIPIENTS="${CLOSEOUT_RECIPIENTS:-ops-duty@quzhou.closeout.invalid,city-office@quzhou.closeout.invalid}"
export CLOSEOUT_OPS_EMAIL="${CLOSEOUT_OPS_EMAIL:-ops-duty@quzhou.closeout.invalid}"
export CLOSEOUT_UI_BASE_URL="http://localhost:$PORT"
export AIRFLOW_CONN_SMTP_DEFAULT="smtp://127.0.0.1:$SMTP_PORT?disable_ssl=true&disable_tls=true&from_email=closeout%40quzhou.closeout.invalid"

AIRFLOW="$ROOT/.venv/bin/airflow"
"$AIRFLOW" db migrate > "$DATA/logs/db-migrate.log"
# The county loads' pool: without it every county task stays "scheduled" forever.
"$AIRFLOW" pools set closeout_unit_loads "${CLOSEOUT_LOAD_POOL_SLOTS:-4}" "县级数据入库 county loads" > /dev/null

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
"$ROOT/.venv/bin/python" -m closeout.mailsink --dir "$DATA/mail" --port "$SMTP_PORT" > "$DATA/logs/mailsink.log" 2>&1 &
pids+=($!)
for component in api-server scheduler dag-processor triggerer; do
  "$AIRFLOW" "$component" > "$DATA/logs/$component.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 90); do curl -fs "http://localhost:$PORT/api/v2/monitor/health" > /dev/null && break; sleep 2; done
cat <<MSG

  Airflow UI:  http://localhost:$PORT   (local: no login)
  Sample day:  DAG daily_closeout → Trigger → 统计日期 report date = 2022-03-19 (any day of the sample week 2022-03-13 … 2022-03-19)
  Mails:       $DATA/mail/*.eml      Logs: $DATA/logs/      Store: $DATA/closeout.db
  Status:      CLOSEOUT_DATA=$DATA .venv/bin/closeout status 2022-03-19

  Ctrl-C stops everything.
MSG
wait -n "${pids[@]}"
echo "a component stopped; see $DATA/logs/" >&2
exit 1
