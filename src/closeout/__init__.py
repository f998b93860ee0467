"""closeout — 当天工作日清日结: collect, validate, reconcile and publish the daily report of every unit.

The package imports no Airflow in its core; the DAG in ``dags/`` only wires calls into
:mod:`closeout.orchestration.pipeline`. Importing this package is cheap (no pandas, no GX) so DAG parsing stays fast.
"""
