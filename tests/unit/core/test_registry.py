"""The registry as a country's needs it: codes unique everywhere, names unique within their parent, load groups
that fit Airflow's fan-out limit — checked when the registry is loaded or checked, not at the cutoff."""

import os
import subprocess
import sys

import pytest

from closeout.core.registry import load_registry

pytestmark = pytest.mark.unit


def write(tmp_path, units: list[dict], name: str = "registry.yaml"):
    lines = [
        "region: {code: '100000', name: 测试国, slug: testland, city_level: {code: '100001', name: 国本级, slug: guo}}",
        "units:",
    ]
    for u in units:
        lines.append("  - {" + ", ".join(f"{k}: '{v}'" for k, v in u.items()) + "}")
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_name_shared_across_parents_names_no_unit_but_codes_still_do(tmp_path):
    registry = load_registry(
        write(
            tmp_path,
            [
                {"code": "320106", "name": "鼓楼区", "slug": "gulou-nanjing", "group": "32"},
                {"code": "350102", "name": "鼓楼区", "slug": "gulou-fuzhou", "group": "35"},
                {"code": "350103", "name": "台江区", "slug": "taijiang", "group": "35"},
            ],
        )
    )
    assert registry.resolve("鼓楼区") is None
    assert [u.code for u in registry.sharing("鼓楼区")] == ["320106", "350102"]
    assert registry.resolve("320106").slug == "gulou-nanjing" and registry.resolve("gulou-fuzhou").code == "350102"
    assert registry.resolve("台江区").code == "350103"


@pytest.mark.parametrize(
    "units, message",
    [
        (
            [{"code": "350102", "name": "鼓楼区", "slug": "a", "group": "35"},
             {"code": "350103", "name": "鼓楼区", "slug": "b", "group": "35"}],
            "name '鼓楼区' matches both",
        ),
        (
            [{"code": "350102", "name": "鼓楼区", "slug": "a", "group": "35"},
             {"code": "350102", "name": "台江区", "slug": "b", "group": "35"}],
            "code 350102 is used by both",
        ),
    ],
)  # fmt: skip
def test_a_name_twice_in_one_parent_or_a_code_twice_anywhere_is_refused(tmp_path, units, message):
    with pytest.raises(ValueError, match=message):
        load_registry(write(tmp_path, units))


def test_more_load_groups_than_airflow_can_fan_out_is_a_problem_with_its_fix(tmp_path):
    registry = load_registry(
        write(tmp_path, [{"code": f"35{n:04d}", "name": f"县{n}", "slug": f"x{n}"} for n in range(5)])
    )
    assert registry.problems(max_map_length=6) == []  # five units and the 市本级 line: six groups
    [problem] = registry.problems(max_map_length=5)
    assert "6 load groups" in problem and "max_map_length 5" in problem and "`group`" in problem


def test_the_registry_check_command_fails_before_the_day_does(tmp_path):
    path = write(tmp_path, [{"code": f"35{n:04d}", "name": f"县{n}", "slug": f"x{n}"} for n in range(5)])
    env = {"CLOSEOUT_REGISTRY": str(path), "HOME": str(tmp_path), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    check = [sys.executable, "-m", "closeout.orchestration.cli", "check-registry"]
    ok = subprocess.run(check, capture_output=True, text=True, env={**env, "AIRFLOW__CORE__MAX_MAP_LENGTH": "10"})
    assert ok.returncode == 0 and "5 units in 6 load groups: ok" in ok.stdout
    refused = subprocess.run(check, capture_output=True, text=True, env={**env, "AIRFLOW__CORE__MAX_MAP_LENGTH": "4"})
    assert refused.returncode == 1 and "max_map_length 4" in refused.stdout


def test_an_edited_registry_is_read_again_and_an_unchanged_one_is_not(tmp_path):
    path = write(tmp_path, [{"code": "350102", "name": "鼓楼区", "slug": "a"}])
    first = load_registry(path)
    assert load_registry(path) is first  # parsed once per process
    write(
        tmp_path, [{"code": "350102", "name": "鼓楼区", "slug": "a"}, {"code": "350103", "name": "台江区", "slug": "b"}]
    )
    assert [u.code for u in load_registry(path).units] == ["350102", "350103"]


def block_registry(tmp_path, count: int):
    """A registry in block style, `units` after a `groups` mapping, each unit with block-style aliases: more `- ` and
    `code:` lines than units, so only reading its structure counts the units right."""
    lines = ["region:", "  code: '100000'", "  name: 测试国", "  slug: testland", "  city_level:"]
    lines += ["    code: '100001'", "    name: 国本级", "    slug: guo", "groups:", "  '11': 一省", "units:"]
    for n in range(count):
        code = f"11{n:04d}"
        lines += [f"  - code: '{code}'", f"    name: 县{n}", f"    slug: county-{n}", "    group: '11'", "    aliases:"]
        lines += [f"      - 别名{n}甲", f"      - 别名{n}乙", f"    parent_code: '{code}'"]
    path = tmp_path / f"block-{count}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("count", [1, 199, 200, 201, 450])
def test_the_unit_count_is_read_from_the_structure_not_the_lines(tmp_path, count):
    from closeout.core.registry import lists_more_units_than

    path = block_registry(tmp_path, count)
    assert len(load_registry(path).units) == count
    for limit in (0, 199, 200):
        assert lists_more_units_than(path, limit) is (count > limit), limit


@pytest.mark.parametrize(
    "text, limit, more",
    [
        ("units: [a]\ndivisions:\n  x: [1, 2, 3]\nextra: [1, 2, 3, 4]\n", 1, False),  # lists after the units
        ("region:\n  units: [a, b, c]\nunits: [a]\n", 1, False),  # a `units` key deeper down is not the list
        ("units:\n  - code: a\n    units: [x, y, z]\n", 1, False),
        ("{region: {code: '1'}, units: [a, b, c]}\n", 2, True),  # flow style
        ("x: &a {code: a}\nunits: [*a, *a, *a]\n", 2, True),  # aliases as entries
        ("units: [a]\nunits: [b]\n", 1, False),  # a key given twice: the loader keeps the last
        ("units: {a: 1, b: 2, c: 3}\n", 1, False),
        ("units: abc\n", 1, False),
        ("units:\n", 0, False),
        ("", 0, False),
        ("? {units: [1, 2, 3]}\n: v\nunits: [a]\n", 1, False),  # a complex key is not `units`
    ],
)
def test_the_unit_count_follows_the_yaml_as_the_loader_reads_it(tmp_path, text, limit, more):
    from closeout.core.registry import lists_more_units_than

    path = tmp_path / "registry.yaml"
    path.write_text(text, encoding="utf-8")
    assert lists_more_units_than(path, limit) is more


def test_a_pick_list_is_offered_up_to_its_limit_and_a_larger_registry_is_not_parsed_for_it(tmp_path, monkeypatch):
    import closeout.core.registry as registry

    small = registry.pick_list(block_registry(tmp_path, registry.PICK_LIST_MAX - 1))
    assert len(small[0]) == registry.PICK_LIST_MAX and small[1]["110000"] == "县0（110000）"  # with the city level
    parsed = []
    monkeypatch.setattr(registry, "load_registry", lambda path: parsed.append(path))
    assert registry.pick_list(block_registry(tmp_path, registry.PICK_LIST_MAX + 1)) == ([], {})
    assert parsed == []  # decided from the count alone: a national registry is not parsed at every DAG parse
