"""Planning a day's loads: the registry's load groups, each one mapped task (or one batch of a re-close)."""

from __future__ import annotations

from closeout.store.context import Context


def plan_unit_groups(ctx: Context) -> list[dict]:
    """The registry's load groups, in code order; also makes sure the store's tables exist."""
    ctx.store.ensure_schema()
    return [{"key": g.key, "codes": list(g.codes), "label": g.label} for g in ctx.registry.groups()]
