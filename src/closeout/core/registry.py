"""The registry of reporting units: who reports, under which code, in which load group."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

# One address: no whitespace or control characters (a CR/LF would inject headers), one @, a dot in the domain.
EMAIL_ADDRESS = re.compile(r"[^\s@<>(),;:\"\[\]\\]+@[^\s@<>(),;:\"\[\]\\.]+(\.[^\s@<>(),;:\"\[\]\\.]+)+")


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    slug: str
    aliases: tuple[str, ...] = ()
    group: str = ""
    email: str | None = None  # the unit's contact(s) for receipts and reminders; several comma-separated
    required: bool = True  # a required unit that sends nothing by the cutoff is 缺报
    parent: str = ""  # the code of the division above it (a prefecture, a province) when the registry has levels
    name_en: str = ""  # the English bulletin's name; "" shows the Chinese name

    @property
    def contacts(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in (self.email or "").split(",") if a.strip())

    def contact_problems(self) -> list[str]:
        """One line per contact no mail can be addressed to (a line break smuggles headers in, a space or a
        missing @ is no address): a receipt to this unit cannot be sent until the registry is fixed."""
        return [
            f"registry: {self.label} contact {address!r} is not an e-mail address (联系人邮箱地址无效)"
            for address in self.contacts
            if not EMAIL_ADDRESS.fullmatch(address)
        ]

    @property
    def label(self) -> str:
        return f"{self.name}({self.code})"


@dataclass(frozen=True)
class Division:
    """A level above the reporting units (a province, a prefecture): it reports nothing itself, it sums."""

    code: str
    name: str
    parent: str = ""  # "" or the region's code: the level just below the region
    name_en: str = ""


@dataclass(frozen=True)
class UnitGroup:
    key: str
    codes: tuple[str, ...]
    label: str  # Chinese names, shown as the mapped task's label in the Airflow grid


def normalise_name(text: str) -> str:
    return unicodedata.normalize("NFKC", str(text)).strip().lower().replace(" ", "")


class Registry:
    def __init__(
        self,
        region_code: str,
        region_name: str,
        region_slug: str,
        city_level: Unit,
        units: list[Unit],
        group_names: dict[str, str] | None = None,
        divisions: list[Division] | None = None,
        region_name_en: str = "",
    ):
        self.region_code = region_code
        self.region_name_en = region_name_en
        self.divisions = {d.code: d for d in divisions or ()}
        # A parent that names no division would quietly make its units a row of their own: refused instead.
        known = {*self.divisions, region_code, ""}
        for child in (*units, *self.divisions.values()):
            if child.parent not in known:
                raise ValueError(
                    f"registry: {child.name}({child.code}) has parent {child.parent!r}, not one of `divisions`"
                )
        self.region_name = region_name
        self.region_slug = region_slug
        self.city_level = city_level
        self.units = tuple(sorted(units, key=lambda u: u.code))
        self.group_names = dict(group_names or {})
        self._by_code: dict[str, Unit] = {}
        for unit in self.all_units:
            other = self._by_code.setdefault(unit.code, unit)
            if other is not unit:
                raise ValueError(f"registry: code {unit.code} is used by both {other.label} and {unit.label}")
        # Names need be unique only within their parent (a country has several 鼓楼区): a name shared across
        # parents is no longer a way to name a file (the code always is); within one parent it is an error.
        self._lookup: dict[str, Unit] = {}
        self._shared: dict[str, list[Unit]] = {}
        for unit in self.all_units:
            for name in (unit.code, unit.slug, unit.name, *unit.aliases):
                key = normalise_name(name)
                if key in self._shared:
                    self._shared[key].append(unit)
                    continue
                other = self._lookup.setdefault(key, unit)
                if other is unit:
                    continue
                if other.group == unit.group or key in (normalise_name(other.code), normalise_name(unit.code)):
                    raise ValueError(f"registry: name {name!r} matches both {other.label} and {unit.label}")
                self._shared[key] = [self._lookup.pop(key), unit]

    def ancestors(self, code: str) -> list[Division]:
        """The divisions above a unit or division, nearest first, up to (not including) the region."""
        found, seen = [], {code}
        parent = self._by_code[code].parent if code in self._by_code else self.divisions[code].parent
        while parent in self.divisions and parent not in seen:
            seen.add(parent)
            found.append(self.divisions[parent])
            parent = self.divisions[parent].parent
        return found

    def top_division(self, code: str) -> Division | None:
        """The division just below the region that holds the unit: what a large bulletin shows a row for."""
        above = self.ancestors(code)
        return above[-1] if above else None

    @property
    def all_units(self) -> tuple[Unit, ...]:
        """Counties in code order, then the explicit 市本级 line."""
        return (*self.units, self.city_level)

    def get(self, code: str) -> Unit:
        return self._by_code[code]

    def resolve(self, text: str) -> Unit | None:
        """Match a code, slug, name or alias; also "衢州衢江"-style names with the region prefixed."""
        key = normalise_name(text)
        if key in self._lookup:
            return self._lookup[key]
        region = normalise_name(self.region_name)
        for prefix in (region, region.removesuffix("市")):
            if prefix and key.startswith(prefix) and key[len(prefix) :] in self._lookup:
                return self._lookup[key[len(prefix) :]]
        return None

    def sharing(self, text: str) -> list[Unit]:
        """The units that share this name across parents (so it names none of them); [] otherwise."""
        return list(self._shared.get(normalise_name(text), []))

    def contact_problems(self) -> list[str]:
        """Every unit's contacts that no mail can go to (the day still runs: only those units' mail waits)."""
        return [line for unit in self.all_units for line in unit.contact_problems()]

    def problems(self, max_map_length: int) -> list[str]:
        """What would fail on the day, found when the registry is checked (init, CI, `closeout check-registry`)."""
        groups = self.groups()
        if len(groups) > max_map_length:
            return [
                f"registry: {len(groups)} load groups, more than Airflow's max_map_length {max_map_length}: give "
                "units a `group` (e.g. their province) so that there are at most that many, or raise "
                "[core] max_map_length (docs/scaling.md)"
            ]
        return []

    def group_name(self, key: str) -> str:
        """What the bulletin calls a group: its name in the registry's `groups`, else the name of the unit whose
        code it is (a unit alone in its group), else the key."""
        if key in self.group_names:
            return self.group_names[key]
        return self._by_code[key].name if key in self._by_code else key

    def groups(self) -> list[UnitGroup]:
        """Load groups in code order of their first unit; each group is one mapped task."""
        grouped: dict[str, list[Unit]] = {}
        for unit in self.all_units:
            grouped.setdefault(unit.group or unit.code, []).append(unit)
        return [
            UnitGroup(key=key, codes=tuple(u.code for u in members), label="、".join(u.name for u in members))
            for key, members in grouped.items()
        ]


def load_registry(path: Path) -> Registry:
    """The registry at `path`, parsed once per process while the file is unchanged (a national registry takes
    the pure-Python YAML loader over a second; every task and group used to parse it again)."""
    stat = Path(path).stat()
    return _parsed_registry(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _parsed_registry(path: str, mtime_ns: int, size: int) -> Registry:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when the wheel has it: several times faster
    raw = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 (a safe loader)
    region = raw["region"]
    city = region["city_level"]
    city_level = Unit(
        code=str(city["code"]),
        name=city["name"],
        slug=city["slug"],
        aliases=tuple(city.get("aliases", ())),
        group=str(city.get("group", city["code"])),
        required=False,
        name_en=city.get("name_en", ""),
    )
    units = [
        Unit(
            code=str(u["code"]),
            name=u["name"],
            slug=u["slug"],
            aliases=tuple(u.get("aliases", ())),
            group=str(u.get("group", u["code"])),
            email=", ".join(u["email"]) if isinstance(u.get("email"), list) else u.get("email"),
            required=bool(u.get("required", True)),
            parent=str(u.get("parent", "")),
            name_en=u.get("name_en", ""),
        )
        for u in raw["units"]
    ]
    group_names = {str(key): name for key, name in (raw.get("groups") or {}).items()}
    divisions = [
        Division(str(code), d["name"], str(d.get("parent", "")), d.get("name_en", ""))
        for code, d in (raw.get("divisions") or {}).items()
    ]
    return Registry(
        str(region["code"]),
        region["name"],
        region["slug"],
        city_level,
        units,
        group_names,
        divisions,
        region.get("name_en", ""),
    )


PICK_LIST_MAX = 200  # above this a pick list is no help: the form takes a code or name as text


def pick_list(path: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """Unit codes and their Chinese names for a trigger form's pick list (DAG parse time: one small YAML read).

    Empty when the registry is too large for a list or cannot be read (the form then takes text)."""
    from closeout.core.settings import load_settings

    try:
        path = path or load_settings().registry_path
        if lists_more_units_than(path, PICK_LIST_MAX):  # a province or country: no list, and no parse at DAG parse
            return [], {}
        registry = load_registry(path)
    except (OSError, ValueError, KeyError, yaml.YAMLError):
        return [], {}
    units = [u for u in registry.all_units if u.code != registry.region_code]
    if len(units) > PICK_LIST_MAX:  # the city level comes on top of the listed units
        return [], {}
    return [u.code for u in units], {u.code: f"{u.name}（{u.code}）" for u in units}


def lists_more_units_than(path: Path, limit: int) -> bool:
    """Whether the registry's `units` list has more than `limit` entries, read as YAML events only as far as the
    entry after the limit: a national registry is not parsed whole where only its size matters."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    depth, key, expect_key, in_units, units = 0, None, True, False, 0
    with open(path, encoding="utf-8") as stream:
        for event in yaml.parse(stream, Loader=loader):
            if isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
                in_units = in_units and depth > 1
                continue
            if not isinstance(event, yaml.NodeEvent):
                continue  # stream and document start and end
            if depth == 1:  # the top-level mapping: keys and their values alternate
                if expect_key:
                    key = event.value if isinstance(event, yaml.ScalarEvent) else None
                else:
                    in_units = key == "units" and isinstance(event, yaml.SequenceStartEvent)
                    units = 0 if in_units else units  # a key given twice: its lists are not added up
                expect_key = not expect_key
            elif depth == 2 and in_units:
                units += 1
                if units > limit:
                    return True
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
    return False
