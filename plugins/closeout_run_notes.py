"""Writes the report date on every closeout run as it starts (统计日期 2022-03-20), so ops find a day's runs by
the day they close out, whatever the run id says. A listener runs in the scheduler, the one place that may
write a run's note without credentials; tasks cannot."""

from __future__ import annotations

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin


class ReportDateNotes:
    @hookimpl
    def on_dag_run_running(self, dag_run, msg: str) -> None:
        from closeout.orchestration.airflow_glue import run_note, with_run_note

        note = run_note(dag_run.dag_id, dag_run.conf, dag_run.logical_date, dag_run.run_after)
        if note:
            dag_run.note = with_run_note(dag_run.note, note)


class CloseoutRunNotesPlugin(AirflowPlugin):
    name = "closeout_run_notes"
    listeners = [ReportDateNotes()]
