"""docs/submission-format.md is generated from what the loader applies, and names every rule a file can meet."""

import re

import pytest

from closeout.checks.contract import generated_blocks, render_document
from closeout.core.catalogue import load_catalogue
from closeout.core.limits import LIMITS, Limits
from closeout.core.settings import PROJECT_ROOT, load_settings

pytestmark = pytest.mark.unit
DOC = PROJECT_ROOT / "docs" / "submission-format.md"
# Rules named where the loader reports a finding or refuses a file: finding("hard", "rule", …),
# FileRefused("rule", …), Note("soft", "rule", …), note("rule", …) and ValueProblem("rule").
EMITTED = re.compile(
    r"(?:finding|FileRefused|Note|note|ValueProblem)\(\s*(?:\"(?:hard|soft|missing)\",\s*)?\"(?!(?:hard|soft|missing)\")([a-z_]+)\""
)
READING_MODULES = (  # under src/closeout/
    "intake/files",
    "intake/spreadsheets",
    "intake/discovery",
    "intake/narrative",
    "intake/rows",
    "intake/headers",
    "intake/submission",
    "intake/archive",
    "close/load",
    "core/numbers",
    "checks/validate",
)


@pytest.fixture(scope="module")
def catalogue():
    settings = load_settings({})
    return load_catalogue(settings.catalogue_path, settings.checks_path)


def test_the_document_is_what_the_generator_writes(catalogue):
    text = DOC.read_text(encoding="utf-8")
    assert render_document(text, generated_blocks(catalogue, Limits())) == text, "run `closeout contract`"


def test_every_rule_a_file_can_meet_is_documented(catalogue):
    text = DOC.read_text(encoding="utf-8")
    emitted = set()
    for module in READING_MODULES:
        emitted |= set(EMITTED.findall((PROJECT_ROOT / "src" / "closeout" / f"{module}.py").read_text("utf-8")))
    emitted |= {limit.rule for limit in LIMITS}
    assert len(emitted) > 30  # the pattern still finds the rules
    undocumented = sorted(rule for rule in emitted if f"`{rule}`" not in text)
    assert undocumented == []


def test_every_metric_and_every_limit_default_is_in_the_document(catalogue):
    text = DOC.read_text(encoding="utf-8")
    for metric in catalogue.metrics:
        assert f"| `{metric.key}` | {metric.label} |" in text
    for limit in LIMITS:
        assert f"`{limit.env}`" in text and f"{limit.default:,}" in text


def test_a_changed_limit_changes_the_document(catalogue):
    text = DOC.read_text(encoding="utf-8")
    changed = render_document(text, generated_blocks(catalogue, Limits(max_rows=777)))
    assert "| 表格行数 | 777 行 |" in changed and changed != text
