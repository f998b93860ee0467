"""The county-facing contract: every metric, limit and refusal a clerk can meet, as the loader applies them.

docs/submission-format.md carries the generated parts between `<!-- generated: NAME -->` and
`<!-- /generated -->`; `closeout contract` rewrites them (`--check` only compares), and a test fails when they are stale.
The metrics come from the catalogue, the limits from closeout.core.limits, the value rules from
closeout.core.numbers, the row rules from closeout.checks.engine and the same-day checks from checks.yaml.
"""

from __future__ import annotations

import re

from closeout.checks.engine import ROW_RULES
from closeout.core.catalogue import KINDS, Catalogue
from closeout.core.limits import LIMITS, Limits
from closeout.core.numbers import RULE_TEXT

# Rules of reading a file (stage load) with what the clerk should do; value, row and limit rules come
# from their own modules. (rule, 拒收/提示, what it means and what to do)
FILE_RULES = (
    ("unsupported_format", "拒收", "不是 .csv 或 .xlsx（含改了扩展名的 .xls/.et）：另存为 .xlsx 或 CSV UTF-8 后重报"),
    ("unreadable_encoding", "拒收", "CSV 既非 UTF-8 也非 GBK/GB18030：用 Excel“另存为 CSV UTF-8”"),
    ("unreadable_file", "拒收", "文件不完整或已损坏（常见于上传、复制未完成）：重新保存、完整上传"),
    ("empty_file", "拒收", "文件为空或没有任何指标行：确认导出完整、有数据"),
    ("symlink_refused", "拒收", "收件目录里放的是链接（快捷方式）而不是文件：放入文件本身；链接不跟随、不读取"),
    ("not_a_regular_file", "拒收", "不是普通文件（目录、设备）：放入 .csv 或 .xlsx 文件"),
    ("missing_header", "拒收", "前 10 行内找不到同时含“指标”“数值”的表头"),
    (
        "unread_sheet",
        "拒收",
        "另一个工作表（包括隐藏的）也有表头和数据，或数据只在隐藏的工作表里：一个文件只留一张数据表",
    ),
    ("data_after_instructions", "拒收", "“填表说明/说明：/注：”行之后还有数据：说明放在表格最后或删去"),
    ("cells_beyond_header", "拒收", "有内容在表头以外或没有列名的列里，不会被读入：删去或放进“备注”"),
    ("unquoted_thousands_separator", "拒收", "CSV 里 6,720 没加引号，被拆成 6 和 720 两列：去掉逗号或整格加引号"),
    ("unclosed_quote", "拒收", "CSV 里的英文双引号没有闭合，之后的行都进了同一个格子：删去多余的引号"),
    (
        "formula_without_value",
        "拒收",
        "公式单元格没有保存计算结果，或保存的结果是空的（程序生成或未重算）：提示写明单元格、行和指标；"
        "在 Excel/WPS 中打开保存，或改为数值",
    ),
    ("formula_error", "拒收", "单元格是错误值（#REF!、#DIV/0! 等）：改正公式或填数值"),
    ("cell_far_outside", "拒收", "远在数据区以外的单元格有内容（如 XFD1048576）：删去该单元格"),
    ("too_many_problems", "拒收", "问题太多，只列出前 50 条：先改正列出的问题"),
    ("several_files", "拒收", "同一单位当天有多个数据文件：只保留一个"),
    ("missing_metric_name", "拒收", "有数值而指标名称为空"),
    ("unknown_metric", "拒收", "指标名称不在第3节目录中"),
    ("unknown_unit", "拒收", "归属单位不在名录中；或文件名对不上任何单位"),
    ("bad_date", "拒收", "“日期”列无法识别"),
    ("correction_without_note", "拒收", "日报发布后改数，备注列没有写原因"),
    ("completes_truncated_file", "拒收", "发布后补交的完整文件：先前那份在传输中被截断；在备注列写明原因后重报"),
    (
        "file_incomplete",
        "拒收",
        "文件末尾是 NUL 空字节填充，或 CSV 最后一行没有换行且比表头少格：文件还在写入或传输中断了；请重新发送完整的文件",
    ),
    ("csv_named_xlsx", "拒收", "这是 CSV 文本文件，扩展名却是 .xlsx：把扩展名改为 .csv 后重报"),
    ("xlsx_named_csv", "拒收", "这是 Excel 工作簿，扩展名却是 .csv：把扩展名改为 .xlsx 后重报"),
    (
        "scratch_sheet",
        "提示",
        "另一个工作表没有表头、但有像数据的行（草稿、计算过程）：未读入，只读了有表头的那张表；要报的数请放进数据表",
    ),
    (
        "cumulative_column_not_read",
        "提示",
        "表里有“累计”列：不读入，累计数由市里按“前一日累计 + 当日新增”推算；只读“数值/本日”列",
    ),
    ("old_mac_line_endings", "提示", "CSV 用旧式 Mac 换行符（只有 CR）：已照常读入，建议另存为 CSV UTF-8"),
    (
        "invisible_characters",
        "提示",
        "单元格或文字稿里有不可见字符、控制字符（如 NUL、零宽空格、方向控制符）：已删除后读入",
    ),
    ("value_blank", "缺数", "数值空着：按未报处理（必报指标空着即“缺项”）"),
    ("value_unknown", "缺数", "填了“不详”：按未知处理，不计为 0，不算缺项"),
    ("narrative_unreadable", "提示", "文字稿无法读取，本日不刊登：存为 UTF-8 或 GBK 文本"),
)

# What happens past a limit, when the table's "超过上限" does not say it all.
LIMIT_THEN = {
    "note_too_long": "：该行照常读入，备注截到上限、以“…”结尾；完整情况请写在文字稿 .md 中",
    "cell_too_long": "：提示中写明是哪一行、哪一列（如“备注”）、哪个指标；请精简该单元格后重报",
}

BLOCK = re.compile(r"(<!-- generated: (\w+) -->\n)(.*?)(<!-- /generated -->)", re.DOTALL)


def _metrics_table(catalogue: Catalogue) -> str:
    lines = [
        "| # | key | 中文 | 类型 kind | 单位 unit | 硬/软 | 必报 required | 也接受的写法 aliases |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for number, m in enumerate(catalogue.metrics, start=1):
        kind = f"{m.kind} {KINDS[m.kind]}"
        severity = "硬 hard" if m.severity == "hard" else "软 soft"
        required = "必报" if m.required else ("市里推算 derived" if m.kind == "C" else "选报 optional")
        lines.append(
            f"| {number} | `{m.key}` | {m.label} | {kind} | {m.unit} | {severity} | {required} | {'、'.join(m.aliases)} |"
        )
    required = [m for m in catalogue.metrics if m.required]
    lines.append("")
    lines.append(
        f"每天必须报送上表中标为“必报”的 {len(required)} 项；缺少任何一项（或数值空着）整份文件按“缺项”拒收"
        "（`missing_metrics`），提示中列出缺了哪些。没有发生的填 `0`，不清楚的填 `不详`（不算缺项，也不计为 0）。"
    )
    lines.append(
        f"Every unit sends the {len(required)} metrics marked 必报 each day; a missing or blank one rejects the file "
        "(`missing_metrics`, naming them). `0` when nothing happened, `不详` when unknown (not missing, not 0)."
    )
    return "\n".join(lines)


def _limits_table(limits: Limits) -> str:
    lines = ["| 限制 limit | 上限 default | 设置 setting | 超出时 rule |", "|---|---|---|---|"]
    for limit in LIMITS:
        value = getattr(limits, limit.name)
        lines.append(f"| {limit.what} | {value:,} {limit.unit} | `{limit.env}` | `{limit.rule}` |")
    return "\n".join(lines)


def _refusals_table() -> str:
    lines = ["| rule | 结果 | 什么情况、怎么办 / what it means, what to do |", "|---|---|---|"]
    rows = [(rule, verdict, text) for rule, verdict, text in FILE_RULES]
    rows += [(rule, "拒收", text) for rule, text in RULE_TEXT.items()]
    rows += [(rule, "拒收", text) for rule, text in ROW_RULES.items()]
    rows += [
        (
            limit.rule,
            "拒收" if limit.refuses else "提示",
            f"{limit.what}超过上限（见上表）{LIMIT_THEN.get(limit.rule, '')}",
        )
        for limit in LIMITS
    ]
    seen = set()
    for rule, verdict, text in rows:
        if rule in seen:
            continue
        seen.add(rule)
        lines.append(f"| `{rule}` | {verdict} | {text} |")
    return "\n".join(lines)


def _checks_list(catalogue: Catalogue) -> str:
    lines = []
    for severity, title in (
        ("hard", "硬性规则（不通过则拒收或当天“未结清”）/ hard"),
        ("soft", "提示性规则（照常发布，在数据说明中列出）/ soft"),
    ):
        lines.append(f"{title}：")
        lines.append("")
        names = []
        for check in catalogue.checks:
            if check.severity == severity and check.name not in names:
                names.append(check.name)
                lines.append(
                    f"- {check.label}（`{check.name}`，{'同一文件内' if check.stage == 'validate' else '与前几日核对'}）"
                )
        lines.append("")
    return "\n".join(lines).rstrip()


def generated_blocks(catalogue: Catalogue, limits: Limits) -> dict[str, str]:
    return {
        "metrics": _metrics_table(catalogue),
        "limits": _limits_table(limits),
        "refusals": _refusals_table(),
        "checks": _checks_list(catalogue),
    }


def render_document(text: str, blocks: dict[str, str]) -> str:
    def fill(match: re.Match) -> str:
        name = match.group(2)
        if name not in blocks:
            raise KeyError(f"unknown generated block {name!r}")
        return f"{match.group(1)}{blocks[name]}\n{match.group(4)}"

    return BLOCK.sub(fill, text)
