"""The bulletin's layout, read from include/catalogue/bulletin.yaml: its sections in order, its summary sentences
(Jinja text citing metrics by key) and the line under the summary for a unit that is missing or turned back."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2
import yaml
from jinja2 import meta

from closeout.catalogue import Catalogue
from closeout.numbers import render_value

log = logging.getLogger(__name__)
Figure = tuple[float, str]


class MetricAbsent(LookupError):
    """A sentence cites a metric the catalogue does not have: the sentence is left out, never a KeyError."""


@dataclass(frozen=True)
class Layout:
    sections: tuple[tuple[str, str], ...]  # (key, title) in order
    summary: tuple[jinja2.Template, ...]
    status_lines: dict[str, jinja2.Template]


# Sentences are plain text: the bulletin's HTML template escapes them (unit names included) when it shows them.
_SENTENCES = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
SENTENCE_NAMES = {"when", "area", "say", "amount", "has", "nonzero"}


def load_layout(path: Path, catalogue: Catalogue) -> Layout:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    sections = tuple((s["key"], s["title"]) for s in raw["sections"])
    known = [key for key, _ in sections]
    for metric in catalogue.metrics:
        if metric.section not in known:
            raise ValueError(
                f"{Path(path).name}: metric {metric.display} is in section {metric.section!r}, "
                f"not one of the layout's sections ({', '.join(known)})"
            )

    def compiled(text: str | list[str], where: str, names: set[str]) -> jinja2.Template:
        """The sentence, refused here (not at render time) if it uses a name the bulletin does not give it."""
        source = "".join(text) if isinstance(text, list) else text
        unknown = meta.find_undeclared_variables(_SENTENCES.parse(source)) - names
        if unknown:
            raise ValueError(
                f"{Path(path).name}: {where} uses {', '.join(sorted(unknown))}, not one of {sorted(names)}"
            )
        return _SENTENCES.from_string(source)

    return Layout(
        sections,
        tuple(compiled(s, f"summary sentence {n}", SENTENCE_NAMES) for n, s in enumerate(raw["summary"], start=1)),
        {status: compiled(line, f"status line {status}", {"unit"}) for status, line in raw["status_lines"].items()},
    )


@dataclass
class Phrases:
    """What a summary sentence can say about the day's totals, by the conventions of domain.md."""

    catalogue: Catalogue
    totals: dict[str, Figure | None]
    split: Callable[[str], list[tuple[str, Figure | None]]]  # a metric's figure per unit (or per group)
    excluding: str  # "不含开化县" when a total leaves units out, else ""
    unknown: dict[str, list[str]]  # metric: the units that reported it as 不详

    def _metric(self, key: str):
        if key not in self.catalogue.by_key:
            raise MetricAbsent(key)
        return self.catalogue.by_key[key]

    def has(self, key: str) -> bool:
        return key in self.catalogue.by_key and self.totals.get(key) is not None

    def nonzero(self, key: str) -> bool:
        return self.has(key) and self.totals[key][0] != 0

    def amount(self, key: str) -> str:
        metric, total = self._metric(key), self.totals.get(key)
        if total is None:
            return "不详" if self.unknown.get(key) else "—"
        return f"{render_value(*total)}{metric.unit}"

    def say(self, key: str, by_unit: bool = False, extra: str = "") -> str:
        """'新增本土确诊15例（不含开化县；衢江区11例、柯城区4例；其中…）', or for a zero flow '无新增本土确诊'."""
        metric, total, unknown = self._metric(key), self.totals.get(key), self.unknown.get(key, [])
        if total is None:
            phrase = metric.label + ("不详" if unknown else "—")
        elif total[0] == 0 and metric.kind == "F":
            phrase = f"无新增{metric.label.removeprefix('新增')}"
        else:
            phrase = f"{metric.label.removesuffix(metric.unit)}{render_value(*total)}{metric.unit}"
        # A total built without some units says so in the sentence itself, not only in a note below.
        clauses = [self.excluding] if by_unit and self.excluding else []
        clauses += [f"{'、'.join(unknown)}不详"] if unknown and total is not None else []
        if by_unit:
            parts = [
                f"{name}{render_value(*value)}{metric.unit}" for name, value in self.split(key) if value and value[0]
            ]
            clauses += ["、".join(parts)] if len(parts) > 1 else []
        clauses += [extra] if extra else []
        return phrase + (f"（{'；'.join(clauses)}）" if clauses else "")

    def sentences(self, layout: Layout, **names: str) -> list[str]:
        said, helpers = [], dict(say=self.say, amount=self.amount, has=self.has, nonzero=self.nonzero)
        for number, sentence in enumerate(layout.summary, start=1):
            try:
                said.append(sentence.render(**names, **helpers))
            except MetricAbsent as absent:
                log.warning(
                    "bulletin layout: summary sentence %d left out: metric %s is not in the catalogue", number, absent
                )
        return said
