"""The metric catalogue and the check list, both read from data files in include/."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml

from closeout.core.expressions import Expression

KINDS = {"F": "流量", "S": "存量", "P": "时点数", "C": "累计"}


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    kind: str
    unit: str
    severity: str  # hard: exact integers only; soft: approximations kept with their qualifier
    section: str
    aliases: tuple[str, ...] = ()
    derived_from: str | None = None  # for kind C: the flow it accumulates
    required: bool = False  # every unit must report it each day (缺项 otherwise); default: hard and not derived
    label_en: str = ""  # the English bulletin's words (metrics.yaml `en`); a metric without them shows its key
    unit_en: str = ""
    say_en: str = ""  # "{n} new local confirmed case{s}"
    none_en: str = ""  # a zero flow: "no donations"; default "no …" from say_en

    @property
    def display(self) -> str:
        return f"{self.key}({self.label})"

    def heading(self, language: str) -> tuple[str, str]:
        """(label, unit) as a table heads its column."""
        if language == "en":
            return self.label_en or self.key, self.unit_en
        return self.label, self.unit


@dataclass(frozen=True)
class Check:
    name: str
    label: str
    severity: str
    stage: str
    expr: Expression
    needs: tuple[str, ...]
    message: str
    metric: str | None = None  # set for checks expanded from a per_kind rule

    @property
    def today_names(self) -> tuple[str, ...]:
        """Names among `needs` that are today's own figures (not history)."""
        return tuple(n for n in self.needs if not n.startswith(("prev_", "prev2_", "mean7_", "days7_")))


_PAREN = re.compile(r"[(（][^)）]*[)）]$")


def normalise_label(text: str) -> str:
    """NFKC, no spaces, lower case, and no trailing "(单位)" such as "采样人次（人次）"."""
    text = unicodedata.normalize("NFKC", str(text)).strip().lower()
    text = re.sub(r"\s+", "", text)
    return _PAREN.sub("", text)


class Catalogue:
    def __init__(self, metrics: list[Metric], unit_words: dict[str, dict[str, float]], checks: list[Check]):
        self.metrics = tuple(metrics)
        self.by_key = {m.key: m for m in metrics}
        self.unit_words = unit_words
        self.checks = tuple(checks)
        self._lookup: dict[str, Metric] = {}
        for metric in metrics:
            for name in (metric.key, metric.label, *metric.aliases):
                other = self._lookup.setdefault(normalise_label(name), metric)
                if other is not metric:
                    raise ValueError(f"catalogue: label {name!r} matches both {other.key} and {metric.key}")
        for check in checks:
            if check.severity not in ("hard", "soft") or check.stage not in ("validate", "reconcile"):
                raise ValueError(f"check {check.name}: bad severity {check.severity!r} or stage {check.stage!r}")
            if not check.expr.names <= set(check.needs):
                raise ValueError(
                    f"check {check.name}: expression uses {check.expr.names - set(check.needs)} not listed in needs"
                )

    def resolve(self, label: str) -> Metric | None:
        return self._lookup.get(normalise_label(label))

    def reported(self) -> tuple[Metric, ...]:
        """Metrics a unit sends; C metrics are derived by the city (a unit may still send one)."""
        return tuple(m for m in self.metrics if m.kind != "C")

    def unit_factor(self, metric: Metric, word: str) -> float | None:
        """The factor that turns a value in `word` into the metric's own unit, or None if it can't."""
        return self.unit_words.get(metric.unit, {metric.unit: 1}).get(word)

    def all_unit_words(self) -> set[str]:
        words = {m.unit for m in self.metrics}
        for table in self.unit_words.values():
            words.update(table)
        return words


def _expand_checks(raw_checks: list[dict], metrics: list[Metric]) -> list[Check]:
    checks = []
    for raw in raw_checks:
        base = dict(
            name=raw["name"], label=raw["label"], severity=raw["severity"], stage=raw["stage"], message=raw["message"]
        )
        if "per_kind" not in raw:
            checks.append(Check(**base, expr=Expression(raw["expr"]), needs=tuple(raw["needs"])))
            continue
        for metric in metrics:
            if metric.kind in raw["per_kind"]:
                checks.append(
                    Check(
                        **base,
                        expr=Expression(raw["expr"].replace("{m}", metric.key)),
                        needs=tuple(n.replace("{m}", metric.key) for n in raw["needs"]),
                        metric=metric.key,
                    )
                )
    return checks


def load_catalogue(metrics_path: Path, checks_path: Path) -> Catalogue:
    raw = yaml.safe_load(Path(metrics_path).read_text(encoding="utf-8"))
    metrics = [
        Metric(
            key=m["key"],
            label=m["label"],
            kind=m["kind"],
            unit=m["unit"],
            severity=m["severity"],
            section=m["section"],
            aliases=tuple(m.get("aliases", ())),
            derived_from=m.get("derived_from"),
            required=m.get("required", m["severity"] == "hard" and m["kind"] != "C"),
            label_en=m.get("en", {}).get("label", ""),
            unit_en=m.get("en", {}).get("unit", ""),
            say_en=m.get("en", {}).get("say", ""),
            none_en=m.get("en", {}).get("none", ""),
        )
        for m in raw["metrics"]
    ]
    for metric in metrics:
        if metric.kind not in KINDS or metric.severity not in ("hard", "soft"):
            raise ValueError(f"catalogue: {metric.key} has bad kind {metric.kind!r} or severity {metric.severity!r}")
    raw_checks = yaml.safe_load(Path(checks_path).read_text(encoding="utf-8"))["checks"]
    return Catalogue(metrics, raw.get("unit_words", {}), _expand_checks(raw_checks, metrics))
