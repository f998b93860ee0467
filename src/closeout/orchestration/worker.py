"""Celery workers that start warm. Airflow runs each task in a process forked from a worker's pool process
(airflow.sdk.execution_time.supervisor), so whatever the worker imported before forking its pool, every task
has without importing it again. Imported here, once per worker: the package's loading path (pandas, SQLAlchemy,
the parsers) and Great Expectations, which alone is most of a fresh load group's fixed cost (bench/task_cost.py),
and what rendering and mailing an edition import when they first run (matplotlib, WeasyPrint, the CSS inliner).

Enabled by AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=closeout.orchestration.worker.CELERY_CONFIG (docker-compose.yaml sets it):
Airflow's Celery settings, unchanged, from a module whose import registers the warm-up with the worker.
"""

from __future__ import annotations

import gc
import logging

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import worker_init

CELERY_CONFIG = DEFAULT_CELERY_CONFIG
log = logging.getLogger(__name__)


@worker_init.connect
def warm_up(**_) -> None:
    """In the worker's main process, before the pool is forked (the scheduler imports this module too, but only a
    worker sends worker_init). Then frozen, as Airflow freezes what it preloads (celery_executor_utils): the
    collector in a pool process never touches these objects, so their pages stay shared instead of copied."""
    import_task_modules()
    gc.freeze()


def import_task_modules() -> None:
    """What the tasks import, loading first: a worker without the renderers' system libraries (Pango, the CJK
    fonts) still starts warm for loads, and says why it could not import the rest."""
    # Imported for the tasks the worker forks later, not used here.
    import closeout.close.load  # noqa: F401
    import closeout.close.reconcile  # noqa: F401
    from closeout.checks.engine import import_gx

    import_gx()
    try:
        import css_inline  # noqa: F401
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.figure  # noqa: F401
        import weasyprint  # noqa: F401

        import closeout.deliver.mailer  # noqa: F401
        import closeout.publish.editions  # noqa: F401
        from closeout.publish.charts import cjk_font

        cjk_font()  # matplotlib's font list, brought up to date once here rather than in every rendering task
    except Exception as exc:  # noqa: BLE001 — a cold render is slower, not wrong; the render task will say why
        log.warning("closeout worker warm-up: rendering's modules not preloaded (%s: %s)", type(exc).__name__, exc)
