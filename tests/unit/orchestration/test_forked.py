"""closeout.orchestration.forked: work shared among forked children, one per core, with the parent's context."""

import os
from types import SimpleNamespace

from closeout.orchestration.forked import map_forked


class FakeStore:
    def __init__(self):
        self.disposed = 0

    def dispose(self):
        self.disposed += 1


def square_with_pid(ctx, item):
    return item * ctx.factor, os.getpid()


def test_results_come_back_in_order_from_children_that_have_the_parents_context():
    ctx = SimpleNamespace(factor=3, store=FakeStore())
    results = map_forked(ctx, square_with_pid, list(range(20)))
    assert [value for value, _ in results] == [n * 3 for n in range(20)]
    pids = {pid for _, pid in results}
    if (os.cpu_count() or 1) >= 2:
        assert os.getpid() not in pids and ctx.store.disposed == 1  # children; no pooled connection shared
    else:
        assert pids == {os.getpid()}


def test_one_item_runs_in_this_process():
    ctx = SimpleNamespace(factor=2, store=FakeStore())
    assert map_forked(ctx, square_with_pid, [5]) == [(10, os.getpid())]
    assert ctx.store.disposed == 0
