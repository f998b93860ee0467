"""orchestration — what the DAG tasks and the operator's CLI call: the pipeline's steps, the few places that meet
Airflow (mail connection, alerts, retry policy, run notes), warm Celery workers and forked CPU work. The only
sub-package that imports Airflow, and only inside functions.

May import: every other sub-package.
"""
