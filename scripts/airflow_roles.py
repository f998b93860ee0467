"""Creates or updates closeout's two roles in the FAB auth manager; run by scripts/airflow-init.sh.

只读 Closeout Viewer: FAB's own read-only permission set (DAGs, runs, task instances, logs, XComs).
运维 Closeout Ops: the same, plus clearing and marking task instances, triggering runs and answering the
sign-off (审核签发): what an operator needs to re-run a county's load and release an edition.
Both also read the plugin list, which is how the UI finds the 日清日结看板 (close-out board) for its navigation.
Connections, variables, pools and users stay with Admin.
"""

from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

VIEWER_ROLE = "Closeout Viewer"
OPS_ROLE = "Closeout Ops"
BOARD_PERMISSIONS = [("can_read", "Plugins"), ("menu_access", "Plugins")]  # the board's entry in the UI's navigation
OPS_EXTRA_PERMISSIONS = [
    ("can_edit", "DAGs"),  # FAB checks DAG-level edit before any change to a DAG's runs or tasks
    ("can_edit", "Task Instances"),  # clear, mark success/failed
    ("can_create", "DAG Runs"),  # trigger a close-out for a date
    ("can_edit", "DAG Runs"),  # clear or mark a whole run
    ("can_edit", "HITL Detail"),  # 审核签发: approve or reject an edition (Viewer can only read it)
    ("menu_access", "HITL Detail"),  # the UI's "Required Actions" list
]

with get_application_builder() as appbuilder:
    security = appbuilder.sm
    viewer = list(security.VIEWER_PERMISSIONS) + BOARD_PERMISSIONS
    security.bulk_sync_roles(
        [{"role": VIEWER_ROLE, "perms": viewer}, {"role": OPS_ROLE, "perms": viewer + OPS_EXTRA_PERMISSIONS}]
    )
    for role in (VIEWER_ROLE, OPS_ROLE):
        print(f"role {role}: {len(security.find_role(role).permissions)} permissions")
