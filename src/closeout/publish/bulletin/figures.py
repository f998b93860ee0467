"""The bulletin's building blocks: a unit's line (its name and status for the day), and a figure — (value,
qualifier): 600余 is (600, "余") — summed over units, shown as text, and its change on the previous day; the
region's totals. The lowest module of the bulletin: the others build on it."""

from __future__ import annotations

from dataclasses import dataclass, field

from closeout.core.catalogue import Metric
from closeout.core.numbers import figure_text
from closeout.core.vocabulary import UnitStatus

Figure = tuple[float, str]
# A day's figures by unit code and metric key, as closeout.close.reconcile reads them.
DayCells = dict[str, dict[str, Figure]]


@dataclass
class Line:
    code: str
    name: str
    status: str  # a UnitStatus; "" for the region's total
    is_total: bool = False
    status_words: dict[str, str] = field(default_factory=UnitStatus.labels, repr=False)

    @property
    def status_label(self) -> str:
        return self.status_words.get(self.status, self.status)


def sum_figures(cells: list[Figure | None]) -> Figure | None:
    """The sum of the figures present (None when none is); its qualifier is theirs when they share one."""
    present = [c for c in cells if c is not None]
    if not present:
        return None
    qualifiers = {q for _, q in present if q}
    # "600余" plus exact figures stays "N余"; approximations of different kinds ("近" and "余") make "约"
    return sum(v for v, _ in present), (qualifiers.pop() if len(qualifiers) == 1 else "约" if qualifiers else "")


def figure_shown(cell: Figure | None, language: str = "zh") -> str:
    """A figure as the bulletin prints it; "—" when there is none."""
    return "—" if cell is None else figure_text(*cell, language=language)


def revision_figure(value: float | None, qualifier: str, language: str = "zh") -> str:
    """The old or new figure of a revision row (value and qualifier in columns of their own); "—" when none."""
    return "—" if value is None else figure_text(value, qualifier, language)


@dataclass(frozen=True)
class Change:
    """The change on the previous day over the units that have the figure on both days."""

    delta: float | None
    partial: bool  # the two days' totals cover different units

    def text(self, words: dict, language: str = "zh") -> str:
        if self.delta is None:
            return "—"
        size = figure_text(abs(self.delta), language=language)
        shown = words["flat"] if self.delta == 0 else ("+" if self.delta > 0 else "−") + size
        return shown + ("※" if self.partial else "")


def change_between(key: str, codes: list[str], today: DayCells, yesterday: DayCells) -> Change:
    """The change of a metric's total over `codes`, like with like: the units with the figure on both days."""
    now = {c for c in codes if key in today.get(c, {})}
    before = {c for c in codes if key in yesterday.get(c, {})}
    both = now & before
    if not both:
        return Change(None, False)
    delta = sum(today[c][key][0] for c in both) - sum(yesterday[c][key][0] for c in both)
    return Change(delta, now != before)


@dataclass(frozen=True)
class Totals:
    """The region's figure per metric key: the day's, the previous day's, and the change on it."""

    today: dict[str, Figure | None]
    previous: dict[str, Figure | None]
    changes: dict[str, Change]

    @property
    def partial(self) -> bool:
        """Some change compares different units on the two days (the notes then say how to read it)."""
        return any(change.partial for change in self.changes.values())


def region_totals(metrics: list[Metric], codes: list[str], today: DayCells, yesterday: DayCells) -> Totals:
    """Every metric summed over all the units, on the day and the day before, and its change."""
    return Totals(
        {m.key: sum_figures([today.get(code, {}).get(m.key) for code in codes]) for m in metrics},
        {m.key: sum_figures([yesterday.get(code, {}).get(m.key) for code in codes]) for m in metrics},
        {m.key: change_between(m.key, codes, today, yesterday) for m in metrics},
    )
