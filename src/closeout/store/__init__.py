"""store — the reporting store (SQLAlchemy 2 Core running the named SQL of include/sql/) and the Context that opens
it beside the settings, registry and catalogue, once per task.

May import: core.
"""
