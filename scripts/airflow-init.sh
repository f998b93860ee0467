#!/usr/bin/env bash
# Prepares Airflow's metadata database for closeout: schema, the county-load pool, the two closeout roles
# and (when _AIRFLOW_WWW_USER_USERNAME is set) the first admin. Safe to re-run: every step is an upsert.
# Run by compose's airflow-init service and by the distributed test, so both deploy the same way.
set -euo pipefail

airflow db migrate

# The registry as the day will use it: codes unique, names unique within their parent, load groups within
# [core] max_map_length. A registry that would fail at the cutoff fails here, with the fix.
closeout check-registry

# County loads run in their own pool so a province's or country's fan-out can never take every worker
# slot: reconcile, bulletin and email always find room. The pool's size is CLOSEOUT_LOAD_POOL_SLOTS.
airflow pools set closeout_unit_loads "${CLOSEOUT_LOAD_POOL_SLOTS:-4}" \
  "县级数据入库 county loads (CLOSEOUT_LOAD_POOL_SLOTS)"

# The FAB auth manager's roles: 运维 Closeout Ops (view, clear and mark tasks, trigger runs) and
# 只读 Closeout Viewer (read-only). Airflow's default simple auth manager has no roles to create: users and
# their roles are then [core] simple_auth_manager_users (the local stack: make airflow).
auth_manager="$(airflow config get-value core auth_manager 2>/dev/null || true)"
if [[ "$auth_manager" != *FabAuthManager* ]]; then
  echo "auth manager ${auth_manager:-default}: no FAB roles to create (closeout roles need the FAB auth manager)"
  exit 0
fi
python "$(dirname "$0")/airflow_roles.py"

if [[ -n "${_AIRFLOW_WWW_USER_USERNAME:-}" ]]; then
  airflow users create --role Admin --username "$_AIRFLOW_WWW_USER_USERNAME" \
    --password "${_AIRFLOW_WWW_USER_PASSWORD:?set _AIRFLOW_WWW_USER_PASSWORD}" \
    --firstname "${_AIRFLOW_WWW_USER_FIRSTNAME:-Airflow}" --lastname "${_AIRFLOW_WWW_USER_LASTNAME:-Admin}" \
    --email "${_AIRFLOW_WWW_USER_EMAIL:-admin@closeout.invalid}"
fi
