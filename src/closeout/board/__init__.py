"""board — the 日清日结看板: read-only queries of the store, one per view (queries), the pages' data built from their
rows (views), and the FastAPI app the Airflow api-server mounts (web). No pandas, Great Expectations or task code here.

May import: core, store.
"""
