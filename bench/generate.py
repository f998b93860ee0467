"""A deterministic (seeded) registry and N consecutive days of county files, at city, province or country scale.

Every file is what a careful county sends: the 25 reported metrics of include/catalogue/metrics.yaml (the kind C
cumulative is derived by the pipeline, so files leave it out), integers only, and figures that satisfy every rule
of include/rules/checks.yaml within the day and across days — stocks carry over (pending, isolation_central),
flows stay within a factor of two of their own recent mean (no `jump`) and never repeat the day before (no
`stale`). A clean day is the fast path the benchmark is about; a day full of findings would measure something else.

    python -m bench.generate --scale province --days 2 --out /tmp/bench-province

writes <out>/registry.yaml, <out>/inbox/<YYYY-MM-DD>/<code>.csv and <out>/expected.json (per-day totals).
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE_PATH = ROOT / "include" / "catalogue" / "metrics.yaml"
DEFAULT_SEED = 20220401
FIRST_DAY = date(2022, 4, 1)
CSV_HEADER = "metric,value,unit_code,report_date,note"

# Place-name syllables with distinct pinyin, so that most slugs are plain pinyin; a slug that still collides
# (吉南 jinan / 金安 jinan) gets the unit's code appended.
SYLLABLES = (
    "安an 宁ning 平ping 江jiang 山shan 河he 阳yang 东dong 西xi 南nan 北bei 兴xing 华hua 丰feng 永yong 昌chang "
    "清qing 泉quan 龙long 德de 福fu 寿shou 吉ji 武wu 文wen 石shi 田tian 水shui 林lin 岭ling 桥qiao 湖hu 海hai "
    "云yun 松song 柏bai 梅mei 莲lian 桃tao 金jin 银yin 玉yu 宝bao 丹dan 红hong 黄huang 康kang 乐le 顺shun 泰tai "
    "汉han 怀huai 广guang 会hui 定ding 靖jing 遂sui 延yan 固gu 崇chong 米mi 凉liang 沙sha 潭tan 沅yuan 汝ru "
    "邵shao 岳yue 嘉jia 蒙meng 浦pu 滨bin 碧bi 彭peng 盘pan 荣rong 仁ren 秀xiu 英ying 雅ya 宜yi 洛luo 渭wei "
    "都du 州zhou"
).split()
SUFFIXES = (("县", "xian"), ("县", "xian"), ("县", "xian"), ("区", "qu"), ("市", "shi"))
# Names a real country has more than once, in different parents (docs/scaling.md): such a name names no file,
# so these units are found by code only — the benchmark's files are all named by code anyway.
SHARED_NAMES = (("鼓楼区", "gulou"), ("新城区", "xincheng"), ("城关区", "chengguan"))
SHARED_STEMS = {name[:2] for name, _ in SHARED_NAMES}
# The 31 province-level divisions of the mainland (GB/T 2260), the country scale's load groups.
PROVINCES = {
    "11": "北京市", "12": "天津市", "13": "河北省", "14": "山西省", "15": "内蒙古自治区", "21": "辽宁省", "22": "吉林省",
    "23": "黑龙江省", "31": "上海市", "32": "江苏省", "33": "浙江省", "34": "安徽省", "35": "福建省", "36": "江西省",
    "37": "山东省", "41": "河南省", "42": "湖北省", "43": "湖南省", "44": "广东省", "45": "广西壮族自治区",
    "46": "海南省", "50": "重庆市", "51": "四川省", "52": "贵州省", "53": "云南省", "54": "西藏自治区", "61": "陕西省",
    "62": "甘肃省", "63": "青海省", "64": "宁夏回族自治区", "65": "新疆维吾尔自治区",
}  # fmt: skip
PROVINCE_CODES = list(PROVINCES)
COUNTIES_PER_PREFECTURE = 15  # county digits 02..16 under each prefecture


@dataclass(frozen=True)
class Scale:
    name: str
    units: int
    region: tuple[str, str, str]  # code, name, slug
    city_level: tuple[str, str, str]
    shared_names: dict[str, int]  # name → how many units (in different groups) carry it


SCALES = {
    "city": Scale("city", 6, ("350100", "基准市", "bench-city"), ("350101", "市本级", "shibenji"), {}),
    "province": Scale(
        "province", 90, ("350000", "基准省", "bench-province"), ("350001", "省本级", "shengbenji"), {"鼓楼区": 2}
    ),
    "country": Scale(
        "country",
        2850,
        ("100000", "全国", "bench-country"),
        ("100001", "国家本级", "guojiabenji"),
        {"鼓楼区": 4, "新城区": 3, "城关区": 3},
    ),
}


@dataclass
class Dataset:
    """What was generated: where it is, and every figure of every file (the truth the store is checked against)."""

    scale: str
    seed: int
    root: Path
    days: list[date]
    unit_codes: list[str]
    groups: int
    metrics: list[str]  # the reported metrics, catalogue order
    derived: dict[str, str]  # kind C metric → the flow it accumulates
    figures: dict[date, dict[str, dict[str, int]]] = field(default_factory=dict)

    @property
    def registry_path(self) -> Path:
        return self.root / "registry.yaml"

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    def files(self, day: date) -> list[Path]:
        return [self.inbox / day.isoformat() / f"{code}.csv" for code in self.unit_codes]

    def figure_count(self, day: date) -> int:
        return sum(len(metrics) for metrics in self.figures[day].values())

    def sums(self, day: date) -> dict[str, int]:
        """Per reported metric: the sum over all units that day."""
        totals = dict.fromkeys(self.metrics, 0)
        for metrics in self.figures[day].values():
            for metric, value in metrics.items():
                totals[metric] += value
        return totals

    def cumulative_sums(self, day: date) -> dict[str, int]:
        """Per kind C metric: what the pipeline must derive, summed over units (its flow summed up to `day`)."""
        return {metric: sum(self.sums(d)[flow] for d in self.days if d <= day) for metric, flow in self.derived.items()}


def reported_metrics(catalogue_path: Path = CATALOGUE_PATH) -> tuple[list[str], dict[str, str]]:
    """The metrics a county reports (every kind but C, catalogue order) and the C metrics with their flows."""
    metrics = yaml.safe_load(catalogue_path.read_text(encoding="utf-8"))["metrics"]
    reported = [m["key"] for m in metrics if m["kind"] != "C"]
    derived = {m["key"]: m["derived_from"] for m in metrics if m["kind"] == "C"}
    return reported, derived


def generate(scale: str, out: Path, days: int = 2, seed: int = DEFAULT_SEED, first_day: date = FIRST_DAY) -> Dataset:
    """Write the registry, the files of `days` consecutive days from `first_day` and expected.json under `out`."""
    spec, rng = SCALES[scale], _rng(scale, seed)
    out = Path(out)
    units = _units(spec, rng)
    metrics, derived = reported_metrics()
    dataset = Dataset(
        scale=scale,
        seed=seed,
        root=out,
        days=[first_day + timedelta(days=n) for n in range(days)],
        unit_codes=[u["code"] for u in units],
        groups=len({u["group"] for u in units}) + 1,  # the city level is a group of its own
        metrics=metrics,
        derived=derived,
    )
    out.mkdir(parents=True, exist_ok=True)
    _write_registry(dataset.registry_path, spec, units)
    counties = {u["code"]: CountyFigures(rng) for u in units}
    for day in dataset.days:
        folder = dataset.inbox / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        dataset.figures[day] = {}
        for code, county in counties.items():
            figures = county.next_day()
            missing = set(metrics) ^ set(figures)
            if missing:  # the catalogue changed: the generator must learn the new metric's rules first
                raise ValueError(f"generator and catalogue disagree on metrics: {sorted(missing)}")
            figures = {m: figures[m] for m in metrics}
            dataset.figures[day][code] = figures
            rows = [f"{m},{v},{code},{day.isoformat()}," for m, v in figures.items()]
            (folder / f"{code}.csv").write_text("\n".join([CSV_HEADER, *rows]) + "\n", encoding="utf-8")
    _write_expected(dataset)
    return dataset


def generate_registry(scale: str, path: Path, seed: int = DEFAULT_SEED) -> Path:
    """Only the registry of `generate(scale, …)`, the same units, at `path`."""
    spec = SCALES[scale]
    _write_registry(Path(path), spec, _units(spec, _rng(scale, seed)))
    return Path(path)


def _rng(scale: str, seed: int) -> random.Random:
    return random.Random(f"{seed}:{scale}")  # a str seed is hashed with SHA-512: the same on every machine


def _units(spec: Scale, rng: random.Random) -> list[dict]:
    """Codes, groups, names, slugs, aliases and contacts of every unit; the region and city level come from spec."""
    layout = _layout(spec, rng)
    stems = [a[0] + b[0] for a in SYLLABLES for b in SYLLABLES if a != b and a[0] + b[0] not in SHARED_STEMS]
    pinyin = {a[0] + b[0]: a[1:] + b[1:] for a in SYLLABLES for b in SYLLABLES}
    rng.shuffle(stems)
    shared = _shared_name_slots(spec, layout, rng)
    units, slugs = [], {spec.region[2], spec.city_level[2]}
    for (code, group), stem in zip(layout, stems, strict=False):
        if code in shared:
            name, slug_stem = shared[code]
            slug = f"{slug_stem}-{code}"  # the name is shared, the slug must not be
        else:
            suffix, suffix_pinyin = rng.choice(SUFFIXES)
            name, slug = stem + suffix, pinyin[stem] + suffix_pinyin
            slug = slug if slug not in slugs else f"{slug}-{code}"
        slugs.add(slug)
        units.append(
            {
                "code": code,
                "name": name,
                "slug": slug,
                "aliases": [name[:-1]],
                "group": group,
                "email": f"{slug}-report@bench.closeout.invalid",
            }
        )
    return units


def _layout(spec: Scale, rng: random.Random) -> list[tuple[str, str]]:
    """(code, group) of every unit in code order: a city's units each load alone (as Quzhou's do), a province's
    by prefecture (at most 11 groups), the country's by province (31 groups)."""
    if spec.name == "city":
        prefix = spec.region[0][:4]
        return [(code, code) for code in (f"{prefix}{n:02d}" for n in range(2, 2 + spec.units))]
    if spec.name == "province":
        province = spec.region[0][:2]
        layout = []
        for prefecture, count in enumerate(_split(spec.units, 11, rng), start=1):
            group = f"{province}{prefecture:02d}"
            layout += [(f"{group}{n:02d}", group) for n in range(2, 2 + count)]
        return layout
    layout = []
    for province, count in zip(PROVINCE_CODES, _split(spec.units, len(PROVINCE_CODES), rng), strict=True):
        for n in range(count):
            prefecture, county = divmod(n, COUNTIES_PER_PREFECTURE)
            layout.append((f"{province}{prefecture + 1:02d}{county + 2:02d}", f"{province}0000"))
    return layout


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """`total` units over `parts` parents, unevenly (as real parents are), each at least one."""
    weights = [rng.uniform(0.4, 1.6) for _ in range(parts)]
    counts = [max(1, int(total * w / sum(weights))) for w in weights]
    for n in range(total - sum(counts)):
        counts[n % parts] += 1
    while sum(counts) > total:
        counts[counts.index(max(counts))] -= 1
    return counts


def _shared_name_slots(spec: Scale, layout: list[tuple[str, str]], rng: random.Random) -> dict[str, tuple[str, str]]:
    """code → (shared name, slug stem): each shared name goes to units in different groups, never twice in one."""
    first_of_group: dict[str, list[str]] = {}
    for code, group in layout:
        first_of_group.setdefault(group, []).append(code)
    slots: dict[str, tuple[str, str]] = {}
    for name, slug_stem in SHARED_NAMES:
        count = spec.shared_names.get(name, 0)
        for group in rng.sample(sorted(first_of_group), count):
            free = [c for c in first_of_group[group] if c not in slots]
            slots[rng.choice(free)] = (name, slug_stem)
    return slots


def _write_registry(path: Path, spec: Scale, units: list[dict]) -> None:
    region_code, region_name, region_slug = spec.region
    city_code, city_name, city_slug = spec.city_level
    registry = {
        "region": {
            "code": region_code,
            "name": region_name,
            "slug": region_slug,
            "city_level": {"code": city_code, "name": city_name, "slug": city_slug},
        },
        "groups": _group_names(spec, units),
        "units": units,
    }
    header = f"# Generated by bench/generate.py ({spec.name} scale, {len(units)} units): synthetic, not real places.\n"
    path.write_text(header + yaml.safe_dump(registry, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _group_names(spec: Scale, units: list[dict]) -> dict[str, str]:
    """What the bulletin calls each load group: the country's provinces by name, a province's prefectures by
    number; a city's units are groups of one, named as the unit."""
    if spec.name == "city":
        return {}
    groups = dict.fromkeys(u["group"] for u in units)
    if spec.name == "country":
        return {group: PROVINCES[group[:2]] for group in groups}
    return {group: f"第{n}地区" for n, group in enumerate(groups, start=1)}


def _write_expected(dataset: Dataset) -> None:
    expected = {
        "scale": dataset.scale,
        "seed": dataset.seed,
        "units": len(dataset.unit_codes),
        "groups": dataset.groups,
        "days": {
            day.isoformat(): {
                "figures": dataset.figure_count(day),
                "sums": dataset.sums(day),
                "derived_sums": dataset.cumulative_sums(day),
            }
            for day in dataset.days
        },
    }
    (dataset.root / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1), encoding="utf-8")


class CountyFigures:
    """One county's figures day after day: a size of its own, stocks carried over, flows that never repeat."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        size = rng.uniform(0.2, 2.0)  # a small rural county to a big city district
        self.base = {
            "sampling_points": max(2, round(150 * size)),
            "checkpoints": max(1, round(50 * size)),
            "cadres_deployed": max(1, round(1500 * size)),
            "volunteers": max(1, round(5000 * size)),
            "temp_party_branches": max(1, round(15 * size)),
            "sampled": round(200_000 * size),
            "close_contacts_new": max(2, round(150 * size)),
            "secondary_contacts_new": max(2, round(400 * size)),
            "isolation_new": max(20, round(300 * size)),
            "needs_resolved": max(2, round(120 * size)),
            "counseling_sessions": max(2, round(40 * size)),
            "donations_value_yuan": max(100, round(15_000 * size)),
            "donated_goods_kg": max(10, round(1_000 * size)),
            "new_asymptomatic": max(2, round(5 * size)),
            "positive": max(2, round(6 * size)),
            # at least 3 every day, so that asymptomatic_to_confirmed (1 or 2) never exceeds it
            "new_confirmed": max(4, round(6 * size)),
            "asymptomatic_to_confirmed": 1,
            "isolation_transferred": max(2, round(4 * size)),
        }
        self.lane_share = rng.uniform(0.2, 0.6)
        # yesterday's stocks: the first file's balances are not checked (no closed day before it)
        self.pending = round(self.base["sampled"] * rng.uniform(0.15, 0.25))
        self.isolation_central = round(self.base["isolation_new"] * rng.uniform(8, 9.5))
        self.home_observation = round(self.base["isolation_new"] * rng.uniform(5, 15))
        self.previous: dict[str, int] = {}

    def _flow(self, key: str) -> int:
        """Within ±20 % of the county's own level (so never 6× its weekly mean), and never yesterday's value (so
        never three equal days in a row)."""
        value = max(1, round(self.base[key] * self.rng.uniform(0.8, 1.2)))
        return value + 1 if value == self.previous.get(key) else value

    def _point(self, key: str) -> int:
        return max(1, round(self.base[key] * self.rng.uniform(0.97, 1.03)))

    def next_day(self) -> dict[str, int]:
        rng, day = self.rng, {}
        day["sampling_points"] = self._point("sampling_points")
        day["sampling_lanes"] = day["sampling_points"] + round(day["sampling_points"] * self.lane_share)
        day["sampled"] = self._flow("sampled")
        day["positive"] = self._flow("positive")
        available = self.pending + day["sampled"]  # what can have a result today: pending stays ≥ 0
        for _ in range(100):  # tested and negative (= tested − positive) must both differ from yesterday's
            day["tested"] = min(available, round(day["sampled"] * rng.uniform(0.93, 1.05)))
            day["negative"] = day["tested"] - day["positive"]
            if all(day[k] != self.previous.get(k) for k in ("tested", "negative")):
                break
        else:
            raise RuntimeError(f"no result count differs from yesterday's: {day}")
        day["pending"] = self.pending + day["sampled"] - day["tested"]
        day["new_confirmed"] = self._flow("new_confirmed")
        day["new_asymptomatic"] = self._flow("new_asymptomatic")
        day["asymptomatic_to_confirmed"] = self._flow("asymptomatic_to_confirmed")
        day["close_contacts_new"] = self._flow("close_contacts_new")
        day["secondary_contacts_new"] = self._flow("secondary_contacts_new")
        day["isolation_new"] = self._flow("isolation_new")
        day["isolation_transferred"] = self._flow("isolation_transferred")
        released = max(1, round(self.isolation_central * rng.uniform(0.08, 0.14)))  # keeps the stock level
        day["isolation_released"] = released + 1 if released == self.previous.get("isolation_released") else released
        day["isolation_central"] = (
            self.isolation_central + day["isolation_new"] - day["isolation_released"] - day["isolation_transferred"]
        )
        day["home_observation"] = max(0, round(self.home_observation * rng.uniform(0.95, 1.05)))
        for key in ("checkpoints", "cadres_deployed", "volunteers", "temp_party_branches"):
            day[key] = self._point(key)
        for key in ("needs_resolved", "counseling_sessions", "donations_value_yuan", "donated_goods_kg"):
            day[key] = self._flow(key)
        self.pending, self.isolation_central = day["pending"], day["isolation_central"]
        self.home_observation = day["home_observation"]
        self.previous = day
        return day


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--first-day", type=date.fromisoformat, default=FIRST_DAY)
    args = parser.parse_args()
    dataset = generate(args.scale, args.out, args.days, args.seed, args.first_day)
    print(
        f"{args.scale}: {len(dataset.unit_codes)} units in {dataset.groups} load groups, "
        f"{len(dataset.days)} days from {dataset.days[0]} → {dataset.root}"
    )


if __name__ == "__main__":
    main()
