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

from closeout.core.catalogue import Catalogue
from closeout.core.numbers import figure_text

log = logging.getLogger(__name__)
Figure = tuple[float, str]


class MetricAbsent(LookupError):
    """A sentence cites a metric the catalogue does not have: the sentence is left out, never a KeyError."""


@dataclass(frozen=True)
class Layout:
    sections: tuple[tuple[str, str], ...]  # (key, title) in order
    summary: tuple[jinja2.Template, ...]
    status_lines: dict[str, jinja2.Template]
    words: dict  # every other word the bulletin prints, in its language (bulletin.yaml `words`)
    language: str = "zh"
    movers: tuple[str, ...] = ()  # a large bulletin's metrics whose top units by change it lists
    movers_count: int = 5


# Sentences are plain text: the bulletin's HTML template escapes them (unit names included) when it shows them.
_SENTENCES = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
SENTENCE_NAMES = {"when", "area", "say", "amount", "has", "nonzero"}


def load_layout(path: Path, catalogue: Catalogue, language: str = "zh") -> Layout:
    """The layout in `language`: zh reads `title`, `summary` and `status_lines`; en their `_en` twins."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    suffix = "" if language == "zh" else f"_{language}"
    sections = tuple((s["key"], s[f"title{suffix}"]) for s in raw["sections"])
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
        tuple(
            compiled(s, f"summary{suffix} sentence {n}", SENTENCE_NAMES)
            for n, s in enumerate(raw[f"summary{suffix}"], start=1)
        ),
        {
            status: compiled(line, f"status_lines{suffix} {status}", {"unit"})
            for status, line in raw[f"status_lines{suffix}"].items()
        },
        raw["words"][language],
        language,
        tuple(raw.get("movers", {}).get("metrics", ())),
        int(raw.get("movers", {}).get("count", 5)),
    )


@dataclass
class Phrases:
    """What a summary sentence can say about the day's totals, by the conventions of domain.md."""

    catalogue: Catalogue
    totals: dict[str, Figure | None]
    split: Callable[[str], list[tuple[str, Figure | None]]]  # a metric's figure per unit (or per group)
    excluding: str  # "不含开化县" when a total leaves units out, else ""
    unknown: dict[str, list[str]]  # metric: the units that reported it as 不详
    words: dict  # the layout's words in its language
    language: str = "zh"
    large_from: int = 0  # zh: from this value up a figure reads 117.41万

    def _figure(self, figure: Figure) -> str:
        return figure_text(*figure, language=self.language, large_from=self.large_from)

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
            return self.words["unknown"] if self.unknown.get(key) else "—"
        if self.language == "en":
            return f"{self._figure(total)} {metric.unit_en}".rstrip()
        return f"{self._figure(total)}{metric.unit}"

    def _english(self, metric, figure: Figure | None) -> str:
        """'15 new local confirmed cases', '1 new local confirmed case', a zero flow 'no new local confirmed cases'."""
        say = metric.say_en or f"{{n}} {metric.label_en or metric.key}"
        if figure is not None and figure[0] == 0 and metric.kind == "F":
            return metric.none_en or say.format(n="no", s="s", es="es", people="people")
        one = figure is not None and figure[0] == 1 and not figure[1]
        shown = "—" if figure is None else self._figure(figure)
        return say.format(n=shown, s="" if one else "s", es="" if one else "es", people="person" if one else "people")

    def say(self, key: str, by_unit: bool = False, extra: str = "") -> str:
        """'新增本土确诊15例（不含开化县；衢江区11例、柯城区4例；其中…）', or for a zero flow '无新增本土确诊'."""
        metric, total, unknown = self._metric(key), self.totals.get(key), self.unknown.get(key, [])
        words, english = self.words, self.language == "en"
        if english and total is None:
            phrase = f"{metric.label_en or metric.key}: {words['unknown'] if unknown else '—'}"
        elif english:
            phrase = self._english(metric, total)
        elif total is None:
            phrase = metric.label + (words["unknown"] if unknown else "—")
        elif total[0] == 0 and metric.kind == "F":
            phrase = f"无新增{metric.label.removeprefix('新增')}"
        else:
            phrase = f"{metric.label.removesuffix(metric.unit)}{self._figure(total)}{metric.unit}"
        # A total built without some units says so in the sentence itself, not only in a note below.
        separator = words["list_separator"]
        clauses = [self.excluding] if by_unit and self.excluding else []
        if unknown and total is not None:
            clauses.append(f"{separator.join(unknown)} {words['unknown']}" if english else f"{'、'.join(unknown)}不详")
        if by_unit:
            parts = [
                f"{name} {self._figure(value)}" if english else f"{name}{self._figure(value)}{metric.unit}"
                for name, value in self.split(key)
                if value and value[0]
            ]
            clauses += [separator.join(parts)] if len(parts) > 1 else []
        clauses += [extra] if extra else []
        if english:
            return phrase + (f" ({'; '.join(clauses)})" if clauses else "")
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
