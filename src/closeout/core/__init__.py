"""core — the vocabulary every stage shares: settings, clock, registry, metric catalogue, number grammar, findings,
statuses and their Chinese labels.

Imports nothing of closeout outside core, and no pandas, Great Expectations or Airflow: the CLI, the board and the
DAG files import it at no cost.
"""
