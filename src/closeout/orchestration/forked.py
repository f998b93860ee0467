"""CPU work shared among forked processes, one per core: rendering a range's editions and building its days'
Data Docs (a year's re-close has 365 of each) is drawing and layout, which one process does on one core."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from closeout.store.context import Context

Item = TypeVar("Item")
Result = TypeVar("Result")

_ctx: Context | None = None  # the parent's context, in a child


def map_forked(ctx: Context, function: Callable[[Context, Item], Result], items: Sequence[Item]) -> list[Result]:
    """[function(ctx, item) for item in items], in order, by up to one forked child per core. `function` must be
    a module-level function (it is sent to the children by name). Each child opens its own database connections.
    In one process when there is one core or one item, or when this process may not have children (a daemon)."""
    workers = min(len(items), os.cpu_count() or 1)
    if workers < 2 or multiprocessing.current_process().daemon:
        return [function(ctx, item) for item in items]
    ctx.store.dispose()  # no pooled connection is shared with the children
    with ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("fork"), initializer=_adopt, initargs=(ctx,)
    ) as pool:
        return list(pool.map(_call, [function] * len(items), items))


def _adopt(ctx: Context) -> None:
    global _ctx
    _ctx = ctx


def _call(function, item):
    return function(_ctx, item)
