"""A corpus of hostile county files: one entry per kind of file a county (or a broken tool) sends.

Each `Kind` builds the exact bytes of one file and says what the loader must do with it, following the
loader contract (issue 7) and docs/submission-format.md:

- accepted kinds give `stored`: the exact figures (value, and qualifier for soft approximations) that
  must end up in the store for the unit, plus any soft rules, unknown (不详) metrics and stored notes;
- refused kinds give `refused`: the rule of the refusal, and `keywords` the one-line message must
  contain (a tuple inside keywords means "one of these");
- `unmatched` kinds carry a file name that names no unit: the file is listed (unknown_unit) and kept in
  quarantine, the unit counts as missing.

The 柯城区 kinds replace sample/inbox/2022-03-19/330802.csv; the 开化县 kinds replace 开化县.xlsx. Figures are
the sample's own, so every same-day check passes unless a kind breaks one on purpose. Limits are set
small through CLOSEOUT_MAX_* (`env`) so the files stay small.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

DAY = "2022-03-19"
KECHENG, KAIHUA = "330802", "330824"
KECHENG_FILE, KAIHUA_FILE = "330802.csv", "开化县.xlsx"
UNIT_NAMES = {KECHENG: "柯城区", KAIHUA: "开化县"}

LABELS = {
    "sampling_points": "核酸采样点",
    "sampling_lanes": "采样通道",
    "sampled": "采样人次",
    "tested": "已出结果人次",
    "negative": "阴性",
    "positive": "阳性",
    "pending": "待出结果",
    "new_confirmed": "新增本土确诊",
    "new_asymptomatic": "新增无症状感染者",
    "asymptomatic_to_confirmed": "无症状转确诊",
    "close_contacts_new": "新增排查密接",
    "secondary_contacts_new": "新增排查次密接",
    "isolation_central": "集中隔离在隔",
    "isolation_new": "新增集中隔离",
    "isolation_released": "解除集中隔离",
    "isolation_transferred": "转运定点医院",
    "home_observation": "居家健康观察",
    "checkpoints": "防疫卡点",
    "cadres_deployed": "下沉干部",
    "volunteers": "志愿者",
    "temp_party_branches": "临时党支部",
    "needs_resolved": "解决群众需求",
    "counseling_sessions": "心理咨询",
    "donations_value_yuan": "捐款捐物折价",
    "donated_goods_kg": "捐赠物资",
}
METRICS = tuple(LABELS)

# sample/inbox/2022-03-19/330802.csv (柯城区) and 开化县.xlsx, figure for figure.
KECHENG_FIGURES = dict(
    zip(
        METRICS,
        (321, 470, 331207, 316489, 316479, 10, 70126, 4, 7, 1, 152, 395, 3215, 628, 104, 9, 3575, 58, 2520, 8795,
         25, 233, 108, 24300, 1610),
        strict=True,
    )
)  # fmt: skip
KECHENG_NOTES = {
    "isolation_released": "博悦大酒店隔离点部分人员解除集中隔离",
    "temp_party_branches": "隔离点临时党支部，290名党员亮身份",
}
KAIHUA_FIGURES = dict(
    zip(
        METRICS,
        (176, 230, 112648, 109373, 109373, 0, 23145, 0, 0, 0, 15, 39, 352, 32, 38, 0, 483, 49, 1150, 3375, 21, 62,
         27, 0, 0),
        strict=True,
    )
)  # fmt: skip
KAIHUA_NOTES = {
    "isolation_central": "其中江山东方文岚酒店隔离点327人",
    "temp_party_branches": "县域外隔离点“云上”临时党支部",
}
KECHENG_NARRATIVE = (
    "# 柯城：隔离点里的党支部把服务送到每一层\n王思 郑晨 吴晨\n"
    "3月19日，博悦大酒店集中隔离点有一批人员解除集中隔离。\n\n"
    "290名党员在隔离点亮明身份、带头示范。\n"
)
SECRET = "OUTSIDE-THE-INBOX-7f3a9c"  # content of a file outside the inbox: must appear nowhere


@dataclass(frozen=True)
class Kind:
    name: str
    group: str
    build: Callable[[], bytes]  # the file's exact bytes
    unit: str = KECHENG
    file_name: str = ""  # the name in the inbox; default: the unit's sample file name
    stored: dict | None = None  # accepted: {metric: value or (value, qualifier)} — every figure of the unit
    refused: str | None = None  # refused: the rule
    keywords: tuple = ()  # words the refusal's line must contain; a tuple entry means "any of these"
    soft: tuple[str, ...] = ()  # soft rules expected among the unit's findings
    unknown: tuple[str, ...] = ()  # metrics sent as 不详: kept apart (severity missing, rule value_unknown)
    notes: dict = field(default_factory=dict)  # metric -> the exact note the store must keep
    env: dict = field(default_factory=dict)  # extra CLOSEOUT_* settings (small limits)
    narrative: Callable[[], bytes] | None = None  # replaces the unit's .md
    narrative_text: tuple[str, ...] = ()  # text the stored narrative (headline/byline/body) must contain
    special: str = ""  # symlink_outside | symlink_inbox | fifo | unmatched
    max_memory_mb: int = 0  # if set: how much the process's peak memory may grow while the day loads

    @property
    def target(self) -> str:
        return self.file_name or (KAIHUA_FILE if self.unit == KAIHUA else KECHENG_FILE)

    @property
    def outcome(self) -> str:
        if self.special == "unmatched":
            return "unmatched (unit missing, file listed as unknown_unit)"
        if self.refused:
            return f"refused {self.refused}"
        changed = {k: v for k, v in self.stored.items() if base_figures(self.unit).get(k) != v}
        extra = f"; unknown {', '.join(self.unknown)}" if self.unknown else ""
        soft = f"; soft {', '.join(self.soft)}" if self.soft else ""
        return f"stored {changed or 'sample figures'}{extra}{soft}"


def base_figures(unit: str) -> dict:
    return dict(KAIHUA_FIGURES if unit == KAIHUA else KECHENG_FIGURES)


def figures(unit: str = KECHENG, drop: tuple[str, ...] = (), **changed) -> dict:
    result = base_figures(unit)
    result.update(changed)
    for metric in drop:
        result.pop(metric)
    return result


# ---------------------------------------------------------------------------------------------- CSV


def csv_line(cells) -> str:
    """One CSV record as Excel writes it: a cell is quoted only when it must be."""
    out = []
    for cell in cells:
        cell = str(cell)
        if any(ch in cell for ch in ',"\r\n'):
            cell = '"' + cell.replace('"', '""') + '"'
        out.append(cell)
    return ",".join(out)


def kecheng_rows(values: dict | None = None, notes: dict | None = None, labels: dict | None = None) -> list[list]:
    """The sample's rows (metric,value,unit_code,report_date,note); values/notes/labels override per metric,
    a value of None drops the row."""
    values = {**KECHENG_FIGURES, **(values or {})}
    notes = {**KECHENG_NOTES, **(notes or {})}
    labels = labels or {}
    return [[labels.get(m, m), values[m], KECHENG, DAY, notes.get(m, "")] for m in METRICS if values[m] is not None]


def csv_bytes(
    rows: list,
    header=("metric", "value", "unit_code", "report_date", "note"),
    *,
    encoding: str = "utf-8",
    eol: str = "\n",
    before: tuple[str, ...] = (),
) -> bytes:
    """Rows as CSV: a list entry is a record (quoted as needed), a str entry is a raw line written as is."""
    lines = list(before)
    if header:
        lines.append(csv_line(header))
    lines += [row if isinstance(row, str) else csv_line(row) for row in rows]
    return (eol.join(lines) + eol).encode(encoding)


def kecheng_csv(values: dict | None = None, notes: dict | None = None, labels: dict | None = None, **kw) -> bytes:
    return csv_bytes(kecheng_rows(values, notes, labels), **kw)


def with_parts(metric: str, parts: list[tuple[str, object]], header5: bool = True) -> bytes:
    """The sample with one metric sent as parts (分项 column); other metrics have an empty part."""
    rows = []
    for m in METRICS:
        if m == metric:
            rows += [[m, part, value, ""] for part, value in parts]
        else:
            rows.append([m, "", KECHENG_FIGURES[m], KECHENG_NOTES.get(m, "")])
    return csv_bytes(rows, header=("指标", "分项", "数值", "备注"))


SAMPLED_PARTS = [("双塔街道", 64723), ("府山街道", 55135), ("荷花街道", 91491), ("其他乡镇", 119858)]  # = 331207


# --------------------------------------------------------------------------------------------- XLSX


def kaihua_table(values: dict | None = None, notes: dict | None = None, labels: dict | None = None) -> list[list]:
    """开化县's rows (中文 labels, date cells) as the sample has them; None drops a row."""
    values = {**KAIHUA_FIGURES, **(values or {})}
    notes = {**KAIHUA_NOTES, **(notes or {})}
    labels = labels or {}
    day = datetime(2022, 3, 19)
    return [[labels.get(m, LABELS[m]), values[m], KAIHUA, day, notes.get(m)] for m in METRICS if values[m] is not None]


INSTRUCTIONS = "填表说明：每个指标一行，数值填阿拉伯数字整数；不清楚的填“不详”，不要填0。"


def xlsx_bytes(sheets: list[dict]) -> bytes:
    """A workbook written by openpyxl. Each sheet: title, rows, and optionally state, merged, start_row."""
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for spec in sheets:
        sheet = workbook.create_sheet(spec["title"])
        for row in spec.get("rows", []):
            sheet.append(row)
        for cells in spec.get("merged", ()):
            sheet.merge_cells(cells)
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, datetime):
                    cell.number_format = "yyyy-mm-dd"
        sheet.sheet_state = spec.get("state", "visible")
    workbook.active = next(i for i, s in enumerate(sheets) if s.get("state", "visible") == "visible")
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def kaihua_sheet(values=None, notes=None, labels=None, title="日报", extra_rows=(), **spec) -> dict:
    rows = [
        ["开化县疫情防控日报"],
        ["指标", "数值", "单位代码", "日期", "备注"],
        *kaihua_table(values, notes, labels),
        *extra_rows,
        [],
        [INSTRUCTIONS],
    ]
    return {"title": title, "rows": rows, "merged": ["A1:E1"], **spec}


def kaihua_xlsx(values=None, notes=None, labels=None, **spec) -> bytes:
    return xlsx_bytes([kaihua_sheet(values, notes, labels, **spec)])


def kaihua_row(metric: str) -> int:
    """The spreadsheet row of a metric in kaihua_sheet(): title, header, then the metrics in order."""
    return 3 + METRICS.index(metric)


def patch_zip(data: bytes, edits: dict[str, Callable[[str], str]], add: dict[str, bytes] | None = None) -> bytes:
    """Rewrite members of a zip (xlsx) through text edits; `add` adds members."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename in edits:
                content = edits[info.filename](content.decode("utf-8")).encode("utf-8")
            target.writestr(info.filename, content)
        for name, content in (add or {}).items():
            target.writestr(name, content)
    return buffer.getvalue()


SHEET1 = "xl/worksheets/sheet1.xml"


def set_cell(ref: str, cell_xml: str) -> Callable[[str], str]:
    """Replace the <c r="ref"> element of a sheet with the given XML."""
    pattern = re.compile(rf'<c r="{ref}"(?:[^>]*/>|[^>]*>.*?</c>)', re.S)

    row = re.compile(rf'(<row r="{re.sub(r"[A-Z]+", "", ref)}"[^>]*>.*?)(</row>)', re.S)

    def edit(xml: str) -> str:
        new, count = pattern.subn(cell_xml, xml, count=1)
        if count == 0:  # an empty cell is not written: add it at the end of its row (the last column here)
            new, count = row.subn(lambda m: m[1] + cell_xml + m[2], xml, count=1)
        assert count == 1, f"cell {ref} not found"
        return new

    return edit


def kaihua_with_cell(metric: str, cell_xml: str) -> bytes:
    ref = f"B{kaihua_row(metric)}"
    return patch_zip(kaihua_xlsx(), {SHEET1: set_cell(ref, cell_xml.format(ref=ref))})


def add_shared_strings(data: bytes, strings: list[str], cells: dict[str, int]) -> bytes:
    """Add xl/sharedStrings.xml (with its content type and relationship) and point cells at entries."""
    from xml.sax.saxutils import escape

    items = "".join(f"<si><t>{escape(s)}</t></si>" for s in strings)
    sst = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        f'count="{len(strings)}" uniqueCount="{len(strings)}">{items}</sst>'
    )
    edits = {
        "[Content_Types].xml": lambda x: x.replace(
            "</Types>",
            '<Override PartName="/xl/sharedStrings.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
        ),
        "xl/_rels/workbook.xml.rels": lambda x: x.replace(
            "</Relationships>",
            '<Relationship Id="rIdSst" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
            'Target="sharedStrings.xml"/></Relationships>',
        ),
    }
    sheet_edits = [set_cell(ref, f'<c r="{ref}" t="s"><v>{index}</v></c>') for ref, index in cells.items()]

    def sheet(xml: str) -> str:
        for edit in sheet_edits:
            xml = edit(xml)
        return xml

    edits[SHEET1] = sheet
    return patch_zip(data, edits, add={"xl/sharedStrings.xml": sst.encode("utf-8")})


# ------------------------------------------------------------------------------------- the builders


def b_formula_without_value() -> bytes:  # a script wrote =SUM(...) and nothing ever calculated it
    return kaihua_with_cell("volunteers", '<c r="{ref}"><f>SUM(3000,375)</f></c>')


def b_formula_with_cached_value() -> bytes:
    return kaihua_with_cell("volunteers", '<c r="{ref}"><f>SUM(3000,375)</f><v>3375</v></c>')


def b_wrong_dimension() -> bytes:  # a reader trusting <dimension> would stop after row 3
    return patch_zip(
        kaihua_xlsx(), {SHEET1: lambda x: re.sub(r'<dimension ref="[^"]*"\s*/>', '<dimension ref="A1:B3"/>', x)}
    )


def b_hidden_first_sheet() -> bytes:  # last week's figures on a hidden first sheet, today's on the visible one
    old = kaihua_sheet(values={"volunteers": 3000, "sampled": 99999}, title="旧数据", state="hidden")
    return xlsx_bytes([old, kaihua_sheet()])


def b_data_only_on_hidden_sheet() -> bytes:
    cover = {"title": "封面", "rows": [["开化县疫情防控日报"], ["报送单位：开化县"]]}
    return xlsx_bytes([cover, kaihua_sheet(state="hidden")])


def b_csv_instructions_mid_data() -> bytes:
    rows = kecheng_rows()
    return csv_bytes([*rows[:12], "填表说明：每个指标一行，不清楚的填“不详”,,,,", *rows[12:]])


def b_unquoted_thousands() -> bytes:  # Excel-less export: 8,795 written without quotes
    rows = [r if r[0] != "volunteers" else f"volunteers,8,795,{KECHENG},{DAY}," for r in kecheng_rows()]
    return csv_bytes(rows)


def b_total_named(word: str) -> Callable[[], bytes]:
    return lambda: with_parts("sampled", [*SAMPLED_PARTS, (word, 331207)])


def b_parts_mixed_with_whole(whole: int) -> Callable[[], bytes]:
    return lambda: with_parts("sampled", [("", whole), *SAMPLED_PARTS])


def b_long_digits() -> bytes:
    return kecheng_csv({"sampled": "331207000000000000000000"})


def b_huge_xlsx_number() -> bytes:
    return kaihua_with_cell("volunteers", '<c r="{ref}" t="n"><v>1.2345678901234567E+19</v></c>')


def b_large_exact_integer() -> bytes:  # 123456789012: must not come back as 1.23457e+11
    return kaihua_with_cell("sampled", '<c r="{ref}" t="n"><v>123456789012</v></c>')


def b_missing(*metrics: str) -> Callable[[], bytes]:
    return lambda: kecheng_csv(dict.fromkeys(metrics))


def b_value(**values) -> Callable[[], bytes]:
    return lambda: kecheng_csv(values)


def b_float_noise() -> bytes:
    return kaihua_with_cell("volunteers", '<c r="{ref}" t="n"><v>3375.0000000000005</v></c>')


def b_cell_far_outside() -> bytes:
    stray = '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'
    return patch_zip(kaihua_xlsx(), {SHEET1: lambda x: x.replace("</sheetData>", stray)})


def b_truncated_xlsx() -> bytes:  # the upload stopped half way
    data = kaihua_xlsx()
    return data[: len(data) * 6 // 10]


def b_utf16() -> bytes:  # Notepad's "Unicode"
    return kecheng_csv().decode("utf-8").encode("utf-16")


def b_error_cell(error: str) -> Callable[[], bytes]:
    return lambda: kaihua_with_cell("volunteers", f'<c r="{{ref}}" t="e"><f>Sheet2!B5</f><v>{error}</v></c>')


def b_too_many_rows() -> bytes:  # 50 parts of one metric: 75 data rows
    return with_parts("needs_resolved", [(f"网格{i:02d}", 1) for i in range(50)])


def b_too_many_columns() -> bytes:  # eight named columns, limit six
    header = ("序号", "指标", "数值", "计量单位", "单位代码", "日期", "分项", "备注")
    rows = [
        [i + 1, m, KECHENG_FIGURES[m], "", KECHENG, DAY, "", KECHENG_NOTES.get(m, "")] for i, m in enumerate(METRICS)
    ]
    return csv_bytes(rows, header=header)


UNIT_OF = dict(
    zip(
        METRICS,
        "个 条 人次 人次 人次 人 人次 例 例 例 人 人 人 人 人 人 人 个 人 人 个 件 人次 元 公斤".split(),
        strict=True,
    )
)


def b_too_many_cells() -> bytes:  # every column filled: 160 non-empty cells (the other units' files have at most 109)
    header = ("序号", "指标", "数值", "计量单位", "单位代码", "日期", "备注")
    rows = [
        [i + 1, LABELS[m], KECHENG_FIGURES[m], UNIT_OF[m], KECHENG, DAY, KECHENG_NOTES.get(m, "")]
        for i, m in enumerate(METRICS)
    ]
    return csv_bytes(rows, header=header)


def to_shared_strings(data: bytes) -> bytes:
    """Every text cell as a shared string (t="s"), as Excel and WPS save them; openpyxl writes inline strings."""
    strings: list[str] = []

    def shared(match: re.Match) -> str:
        strings.append(match[3])  # already XML-escaped
        return f'<c {match[1]}t="s"{match[2]}><v>{len(strings) - 1}</v></c>'

    inline = re.compile(r'<c ([^>]*?)t="inlineStr"([^>]*)><is><t[^>]*>(.*?)</t></is></c>', re.S)
    sheet = inline.sub(shared, zipfile.ZipFile(io.BytesIO(data)).read(SHEET1).decode("utf-8"))
    data = add_shared_strings(patch_zip(data, {SHEET1: lambda _: sheet}), [], {})
    items = "".join(f"<si><t>{s}</t></si>" for s in strings)
    counts = f'count="{len(strings)}" uniqueCount="{len(strings)}">{items}'
    return patch_zip(data, {"xl/sharedStrings.xml": lambda x: x.replace('count="0" uniqueCount="0">', counts)})


def b_file_too_large() -> bytes:  # the sample padded with spacer rows past 8192 bytes (开化县.xlsx has 6366)
    return kecheng_csv() + b",,,,\n" * 1500


def b_uncompressed_too_large() -> bytes:  # 3 MB of whitespace in the sheet XML: ~3 KB zipped
    return patch_zip(kaihua_xlsx(), {SHEET1: lambda x: x.replace("<sheetData>", "<sheetData>" + " " * 3_000_000, 1)})


def b_many_shared_strings() -> bytes:
    strings = ["志愿者", *(f"未用字符串{i}" for i in range(500))]
    return add_shared_strings(kaihua_xlsx(), strings, {f"A{kaihua_row('volunteers')}": 0})


def b_huge_shared_string_note() -> bytes:  # one shared string of 200 000 characters, used as a note
    strings = [HUGE_SHARED_NOTE]
    return add_shared_strings(kaihua_xlsx(), strings, {f"E{kaihua_row('volunteers')}": 0})


def b_narrative(text: str, encoding: str = "utf-8") -> Callable[[], bytes]:
    return lambda: text.encode(encoding)


def b_gbk_chinese() -> bytes:
    return kecheng_csv(labels=LABELS, header=("指标", "数值", "单位代码", "日期", "备注"), encoding="gbk", eol="\r\n")


def b_fullwidth() -> bytes:
    return kecheng_csv({"sampled": "３３１，２０７", "volunteers": "８７９５", "checkpoints": "５８个"})


def b_wan_and_units() -> bytes:
    return kecheng_csv(
        {
            "sampled": "33.1207万",
            "isolation_new": "628人",
            "donations_value_yuan": "2.43万元",
            "donated_goods_kg": "3220斤",
        }
    )


def b_quoted_thousands() -> bytes:
    return kecheng_csv({"sampled": "331,207", "tested": "316,489", "negative": "316,479", "volunteers": "8,795"})


def b_title_rows_and_spacers() -> bytes:
    rows = kecheng_rows(labels=LABELS)
    rows = [*rows[:7], ",,,,", *rows[7:17], "", *rows[17:]]
    return csv_bytes(
        rows,
        header=("指标", "数值", "单位代码", "日期", "备注"),
        before=("柯城区疫情防控日报,,,,", "填报单位：柯城区（盖章）,,,,填报日期：2022年3月19日", ",,,,"),
        encoding="utf-8-sig",
    )


def b_synonyms_reordered() -> bytes:
    aliases = {"sampled": "核酸采样人次", "volunteers": "在岗志愿者", "checkpoints": "卡点数", "positive": "阳性人数"}
    rows = [[KECHENG_NOTES.get(m, ""), DAY, KECHENG_FIGURES[m], aliases.get(m, LABELS[m])] for m in METRICS]
    return csv_bytes(rows, header=("说明", "统计日期", "本日", "项目"))


def b_seq_column() -> bytes:
    rows = [[i + 1, LABELS[m], KECHENG_FIGURES[m], KECHENG_NOTES.get(m, "")] for i, m in enumerate(METRICS)]
    return csv_bytes(rows, header=("序号", "指标", "数值", "备注"), encoding="utf-8-sig")


MEASURED = {"donations_value_yuan": ("2.43", "万元"), "donated_goods_kg": ("3220", "斤"), "sampled": ("331207", "人次")}


def b_measure_column() -> bytes:
    rows = []
    for m in METRICS:
        value, word = MEASURED.get(m, (KECHENG_FIGURES[m], ""))
        rows.append([LABELS[m], value, word, KECHENG_NOTES.get(m, "")])
    return csv_bytes(rows, header=("指标", "数值", "计量单位", "备注"))


def b_merged_header() -> bytes:  # two header rows, 指标 merged down, 填报情况 merged across
    rows = [
        ["开化县疫情防控日报"],
        ["指标", "填报情况"],
        [None, "数值", "单位代码", "日期", "备注"],
        *kaihua_table(),
    ]
    return xlsx_bytes([{"title": "日报", "rows": rows, "merged": ["A1:E1", "A2:A3", "B2:E2"]}])


def b_numbers_as_text() -> bytes:
    return kaihua_xlsx(values={m: str(v) for m, v in KAIHUA_FIGURES.items()})


def b_serial_and_text_dates() -> bytes:
    table = kaihua_table()
    for i, row in enumerate(table):
        row[3] = (44639, "2022/3/19", "2022年3月19日", "44639")[i % 4]
    rows = [["开化县疫情防控日报"], ["指标", "数值", "单位代码", "日期", "备注"], *table]
    return xlsx_bytes([{"title": "日报", "rows": rows}])


# --- issue 24: files still being written, files a careful operator reads, refusals that say cause and place


def b_presized(data: bytes, written: float) -> bytes:
    """A copy tool (or SMB) sets the file's full size aside as NUL bytes and fills it in: read during a pause."""
    cut = int(len(data) * written)
    return data[:cut] + b"\x00" * (len(data) - cut)


def b_last_row_cut() -> bytes:  # the transfer stopped inside the last row: "donated_goods_kg,16" (of 1610)
    data = kecheng_csv()
    return data[: data.rindex(b"1610") + 2]


def b_scratch_second_sheet() -> bytes:  # a headerless scratch calculation beside the report
    scratch = {
        "title": "计算",
        "rows": [["采样人次", 50000, 62648, 112648], ["志愿者", 3000, 375, 3375], [None, None, None, "草稿"]],
    }
    return xlsx_bytes([kaihua_sheet(), scratch])


def cumulative(value: int) -> int:  # a running total beside today's figure (small ones read like a split 6,720)
    return value * 6 + 123


def b_today_and_cumulative_csv() -> bytes:
    rows = [[LABELS[m], KECHENG_FIGURES[m], cumulative(KECHENG_FIGURES[m]), KECHENG_NOTES.get(m, "")] for m in METRICS]
    return csv_bytes(rows, header=("指标", "本日", "累计", "备注"))


def b_today_and_cumulative_xlsx() -> bytes:
    table = [[LABELS[m], KAIHUA_FIGURES[m], cumulative(KAIHUA_FIGURES[m]), KAIHUA_NOTES.get(m)] for m in METRICS]
    rows = [["开化县疫情防控日报"], ["指标", "本日", "本轮累计", "备注"], *table]
    return xlsx_bytes([{"title": "日报", "rows": rows, "merged": ["A1:D1"]}])


def b_kaihua_csv() -> bytes:  # 开化县's figures as CSV text
    rows = [[LABELS[m], KAIHUA_FIGURES[m], KAIHUA, DAY, KAIHUA_NOTES.get(m, "")] for m in METRICS]
    return csv_bytes(rows, header=("指标", "数值", "单位代码", "日期", "备注"), encoding="utf-8-sig")


def b_formula_in_metric_column() -> bytes:  # the metric's name pulled from another sheet, never calculated
    ref = f"A{kaihua_row('volunteers')}"
    return patch_zip(kaihua_xlsx(), {SHEET1: set_cell(ref, f'<c r="{ref}" t="str"><f>名录!A5</f></c>')})


def b_symlink_target() -> bytes:  # what the link points at: a valid report, so following it would load it
    return csv_bytes(
        [r if r[0] != "volunteers" else ["volunteers", 4242, KECHENG, DAY, SECRET] for r in kecheng_rows()]
    )


# ---------------------------------------------------------------------------------------- the kinds

LONG_NOTE = "隔离点" * 67  # 201 characters
NUL_NOTE = "博悦大酒店\x00隔离点部分人员解除集中隔离"
HTML_NOTE = "<script>alert('kc')</script><img src=x onerror=alert(1)>"
FORMULA_NOTE = '=HYPERLINK("http://evil.invalid/x","点击查看")'
SMALL_ROWS = {"CLOSEOUT_MAX_ROWS": "40"}
NOTE_100KB = "博悦大酒店隔离点部分人员解除集中隔离，" * 1800  # 34,200 characters, 102,600 bytes
NOTE_1MB = "博悦大酒店隔离点部分人员解除集中隔离，" * 18000  # 342,000 characters, 1,026,000 bytes
HUGE_SHARED_NOTE = "备注" * 100_000


def cut_note(note: str, limit: int = 200) -> str:
    """A note past the limit as it is kept: cut to the limit, ending in …"""
    return note[: limit - 1] + "…"


KINDS: tuple[Kind, ...] = (
    # --- silent_wrong: files a naive reader loads with wrong figures, silently
    Kind("xlsx_formula_without_value", "silent_wrong", b_formula_without_value, KAIHUA,
         refused="formula_without_value", keywords=("公式", "B22")),
    Kind("xlsx_wrong_dimension", "silent_wrong", b_wrong_dimension, KAIHUA, stored=figures(KAIHUA)),
    Kind("xlsx_hidden_first_sheet", "silent_wrong", b_hidden_first_sheet, KAIHUA,
         refused="unread_sheet", keywords=("隐藏", "旧数据")),
    Kind("xlsx_data_only_on_hidden_sheet", "silent_wrong", b_data_only_on_hidden_sheet, KAIHUA,
         refused="unread_sheet", keywords=("隐藏",)),
    Kind("csv_instructions_row_mid_data", "silent_wrong", b_csv_instructions_mid_data,
         refused="data_after_instructions", keywords=("说明",)),
    Kind("csv_unquoted_thousands_separator", "silent_wrong", b_unquoted_thousands,
         refused="unquoted_thousands_separator", keywords=("千分位", "引号")),
    Kind("total_row_named_zongji", "silent_wrong", b_total_named("总计"), stored=figures()),
    Kind("total_row_named_quanxian", "silent_wrong", b_total_named("全县"), stored=figures()),
    Kind("total_row_named_heji_shu", "silent_wrong", b_total_named("合计数"), stored=figures()),
    Kind("parts_mixed_with_a_whole", "silent_wrong", b_parts_mixed_with_whole(331207), stored=figures()),
    Kind("parts_mixed_with_a_wrong_whole", "silent_wrong", b_parts_mixed_with_whole(340000),
         refused="subtotal_mismatch", keywords=("分项",)),
    Kind("very_long_digit_string", "silent_wrong", b_long_digits,
         refused="value_too_large", keywords=("331207000000000000000000",)),
    Kind("xlsx_huge_number", "silent_wrong", b_huge_xlsx_number, KAIHUA, refused="value_too_large"),
    Kind("xlsx_large_exact_integer", "silent_wrong", b_large_exact_integer, KAIHUA,
         stored=figures(KAIHUA, sampled=123456789012)),
    # --- completeness: missing is not zero, unknown is not missing
    Kind("missing_several_metrics", "completeness", b_missing("volunteers", "checkpoints", "home_observation"),
         refused="missing_metrics", keywords=("志愿者", "防疫卡点", "居家健康观察")),
    Kind("blank_value", "completeness", b_value(volunteers=""), refused="missing_metrics", keywords=("志愿者",)),
    Kind("unknown_kept_apart", "completeness", b_value(volunteers="不详"),
         stored=figures(drop=("volunteers",)), unknown=("volunteers",)),
    # --- messages: each refusal one clear line
    Kind("empty_file", "messages", lambda: b"", refused="empty_file"),
    Kind("bom_and_whitespace_only", "messages", lambda: b"\xef\xbb\xbf  \r\n\r\n", refused="empty_file"),
    Kind("old_mac_cr_line_endings", "messages", lambda: kecheng_csv(eol="\r"),
         stored=figures(), soft=("old_mac_line_endings",)),
    Kind("xlsx_float_noise", "messages", b_float_noise, KAIHUA,
         refused="float_noise", keywords=("3375.0000000000005",)),
    Kind("xlsx_cell_far_outside", "messages", b_cell_far_outside, KAIHUA,
         refused="cell_far_outside", keywords=("XFD1048576",), max_memory_mb=200),
    Kind("note_too_long", "messages", lambda: kecheng_csv(notes={"volunteers": LONG_NOTE}),
         stored=figures(), soft=("note_too_long",), notes={"volunteers": cut_note(LONG_NOTE)}),
    Kind("xlsx_truncated", "messages", b_truncated_xlsx, KAIHUA,
         refused="unreadable_file", keywords=(("不完整", "损坏"),)),
    Kind("utf16_csv", "messages", b_utf16, refused="unreadable_encoding", keywords=("编码",)),
    Kind("xlsx_error_cell_ref", "messages", b_error_cell("#REF!"), KAIHUA,
         refused="formula_error", keywords=("#REF!",)),
    # --- inbox: what sits in the day's folder
    Kind("symlink_outside_inbox", "inbox", b_symlink_target, refused="symlink_refused",
         keywords=("链接",), special="symlink_outside"),
    Kind("symlink_to_other_inbox_file", "inbox", lambda: b"", refused="symlink_refused",
         keywords=("链接",), special="symlink_inbox"),
    Kind("fifo_named_like_report", "inbox", lambda: b"", refused="not_a_regular_file", special="fifo"),
    Kind("name_with_spaces", "inbox", kecheng_csv, file_name=" 柯城区 .csv", stored=figures()),
    Kind("name_with_newline", "inbox", kecheng_csv, file_name="柯城\n区.csv", special="unmatched"),
    Kind("name_with_html", "inbox", kecheng_csv, file_name="<img src=x onerror=alert(1)>.csv", special="unmatched"),
    Kind("name_with_dotdot", "inbox", kecheng_csv, file_name="330802..csv", special="unmatched"),
    # --- limits: set small so the files stay small
    Kind("file_too_large", "limits", b_file_too_large, refused="file_too_large",
         env={"CLOSEOUT_MAX_FILE_BYTES": "8192"}, keywords=("8192",)),
    Kind("too_many_rows", "limits", b_too_many_rows, refused="too_many_rows", env=SMALL_ROWS, keywords=("40",)),
    Kind("too_many_columns", "limits", b_too_many_columns, refused="too_many_columns",
         env={"CLOSEOUT_MAX_COLUMNS": "6"}, keywords=("6",)),
    Kind("too_many_cells", "limits", b_too_many_cells, refused="too_many_cells",
         env={"CLOSEOUT_MAX_CELLS": "120"}, keywords=("120",)),
    Kind("note_too_long_small_limit", "limits", lambda: kecheng_csv(notes={"volunteers": "志愿者" * 15}),
         stored=figures(), soft=("note_too_long",), notes={"volunteers": cut_note("志愿者" * 15, 40)},
         env={"CLOSEOUT_MAX_NOTE_CHARS": "40"}),
    Kind("xlsx_uncompressed_too_large", "limits", b_uncompressed_too_large, KAIHUA,
         refused="xlsx_uncompressed_too_large", env={"CLOSEOUT_MAX_XLSX_UNCOMPRESSED_BYTES": "1000000"}, max_memory_mb=200),
    Kind("xlsx_too_many_shared_strings", "limits", b_many_shared_strings, KAIHUA,
         refused="too_many_shared_strings", env={"CLOSEOUT_MAX_SHARED_STRINGS": "100"}),
    Kind("xlsx_huge_shared_string_note", "limits", b_huge_shared_string_note, KAIHUA,
         stored=figures(KAIHUA), soft=("note_too_long",), notes={"volunteers": cut_note(HUGE_SHARED_NOTE)},
         max_memory_mb=200),
    # --- characters: removed with a soft finding, never stored or published
    Kind("nul_in_note", "characters", lambda: kecheng_csv(notes={"isolation_released": NUL_NOTE}),
         stored=figures(), soft=("invisible_characters",), notes={"isolation_released": NUL_NOTE.replace("\x00", "")}),
    Kind("nul_in_narrative", "characters", kecheng_csv, soft=("invisible_characters",), stored=figures(),
         narrative=b_narrative(KECHENG_NARRATIVE.replace("博悦大酒店", "博悦\x00大酒店")),
         narrative_text=("博悦大酒店集中隔离点",)),
    Kind("zero_width_space_in_label", "characters", lambda: kecheng_csv(labels={"volunteers": "志\u200b愿者"}),
         stored=figures(), soft=("invisible_characters",)),
    Kind("bidi_override_in_note", "characters",
         lambda: kecheng_csv(notes={"temp_party_branches": "\u202e隔离点临时党支部\u202c"}),
         stored=figures(), soft=("invisible_characters",), notes={"temp_party_branches": "隔离点临时党支部"}),
    Kind("c1_control_in_note", "characters",
         lambda: kecheng_csv(notes={"isolation_released": "博悦大酒店\x9b隔离点\x85部分人员"}),
         stored=figures(), soft=("invisible_characters",), notes={"isolation_released": "博悦大酒店隔离点部分人员"}),
    # --- inert outputs: county text is data, never markup or a formula
    Kind("note_with_script_and_img", "inert", lambda: kecheng_csv(notes={"volunteers": HTML_NOTE}),
         stored=figures(), notes={"volunteers": HTML_NOTE}),
    Kind("note_with_hyperlink_formula", "inert", lambda: kecheng_csv(notes={"volunteers": FORMULA_NOTE}),
         stored=figures(), notes={"volunteers": FORMULA_NOTE}),
    Kind("narrative_with_script_img_formula", "inert", kecheng_csv, stored=figures(),
         narrative=b_narrative(
             "# <script>alert('headline')</script>柯城\n=HYPERLINK(\"http://evil.invalid\",\"作者\")\n"
             "<img src=x onerror=alert(2)>正文第一段\n@SUM(1+1)\n"
         ),
         narrative_text=("<img src=x onerror=alert(2)>正文第一段",)),
    Kind("label_with_html", "inert", lambda: kecheng_csv(labels={"volunteers": "<b onmouseover=alert(3)>志愿者</b>"}),
         refused="unknown_metric", keywords=("<b",)),
    Kind("value_is_a_formula", "inert", b_value(volunteers="=8000+795"), refused="not_a_number"),
    # --- good mess: realistic files that must load exactly
    Kind("sample_as_is", "good_mess", kecheng_csv, stored=figures(), notes=KECHENG_NOTES),
    Kind("gbk_with_chinese_labels", "good_mess", b_gbk_chinese, stored=figures(), notes=KECHENG_NOTES),
    Kind("utf8_with_bom", "good_mess", lambda: kecheng_csv(labels=LABELS, encoding="utf-8-sig"), stored=figures()),
    Kind("fullwidth_digits", "good_mess", b_fullwidth, stored=figures()),
    Kind("wan_and_unit_words", "good_mess", b_wan_and_units, stored=figures()),
    Kind("quoted_thousands_separators", "good_mess", b_quoted_thousands, stored=figures()),
    Kind("title_rows_and_spacers", "good_mess", b_title_rows_and_spacers, stored=figures()),
    Kind("header_synonyms_reordered", "good_mess", b_synonyms_reordered, stored=figures(), notes=KECHENG_NOTES),
    Kind("seq_column", "good_mess", b_seq_column, stored=figures()),
    Kind("measure_column", "good_mess", b_measure_column, stored=figures()),
    Kind("parts_with_correct_heji", "good_mess", b_total_named("合计"), stored=figures()),
    Kind("soft_600yu", "good_mess", b_value(donated_goods_kg="600余"), stored=figures(donated_goods_kg=(600, "余"))),
    Kind("soft_5wan_duo_jin", "good_mess", b_value(donated_goods_kg="5万多斤"),
         stored=figures(donated_goods_kg=(25000, "多"))),
    Kind("xlsx_shared_strings_as_excel_saves", "good_mess", lambda: to_shared_strings(kaihua_xlsx()), KAIHUA,
         stored=figures(KAIHUA), notes=KAIHUA_NOTES),
    Kind("xlsx_merged_header", "good_mess", b_merged_header, KAIHUA, stored=figures(KAIHUA)),
    Kind("xlsx_numbers_stored_as_text", "good_mess", b_numbers_as_text, KAIHUA, stored=figures(KAIHUA)),
    Kind("xlsx_serial_and_text_dates", "good_mess", b_serial_and_text_dates, KAIHUA, stored=figures(KAIHUA)),
    Kind("xlsx_formula_with_cached_value", "good_mess", b_formula_with_cached_value, KAIHUA, stored=figures(KAIHUA)),
    # --- incomplete: a file read while still being written is refused whole, never published blank
    Kind("csv_presized_nul_padding", "incomplete", lambda: b_presized(kecheng_csv(), 0.6),
         refused="file_incomplete", keywords=("NUL", "写入", "重新发送")),
    Kind("csv_complete_then_nul_padding", "incomplete", lambda: kecheng_csv() + b"\x00" * 512,
         refused="file_incomplete", keywords=("NUL",)),
    Kind("xlsx_presized_nul_padding", "incomplete", lambda: b_presized(kaihua_xlsx(), 0.7), KAIHUA,
         refused="file_incomplete", keywords=("NUL", "写入")),
    Kind("xlsx_complete_then_nul_padding", "incomplete", lambda: kaihua_xlsx() + b"\x00" * 4096, KAIHUA,
         refused="file_incomplete", keywords=("NUL",)),
    Kind("csv_last_row_cut", "incomplete", b_last_row_cut,
         refused="file_incomplete", keywords=("第26行", "截断", "重新发送")),
    # --- read as a careful operator would: a scratch sheet, a 累计 column, a long note
    Kind("xlsx_scratch_second_sheet", "good_mess", b_scratch_second_sheet, KAIHUA,
         stored=figures(KAIHUA), soft=("scratch_sheet",)),
    Kind("csv_today_and_cumulative_columns", "good_mess", b_today_and_cumulative_csv,
         stored=figures(), soft=("cumulative_column_not_read",), notes=KECHENG_NOTES),
    Kind("xlsx_today_and_cumulative_columns", "good_mess", b_today_and_cumulative_xlsx, KAIHUA,
         stored=figures(KAIHUA), soft=("cumulative_column_not_read",), notes=KAIHUA_NOTES),
    Kind("csv_note_100kb", "good_mess", lambda: kecheng_csv(notes={"isolation_released": NOTE_100KB}),
         stored=figures(), soft=("note_too_long",), notes={"isolation_released": cut_note(NOTE_100KB)}),
    # --- refusals that say the cause and the place
    Kind("csv_named_xlsx", "messages", b_kaihua_csv, KAIHUA,
         refused="csv_named_xlsx", keywords=("CSV", ".csv")),
    Kind("xlsx_named_csv", "messages", kaihua_xlsx,
         refused="xlsx_named_csv", keywords=("Excel", ".xlsx")),
    Kind("xlsx_formula_empty_cached_value", "messages",
         lambda: kaihua_with_cell("volunteers", '<c r="{ref}"><f>SUM(3000,375)</f><v></v></c>'), KAIHUA,
         refused="formula_without_value", keywords=("公式", "B22", "第22行", "志愿者")),
    Kind("xlsx_formula_self_closing_cached_value", "messages",
         lambda: kaihua_with_cell("sampled", '<c r="{ref}" t="n"><f>SUM(50000,62648)</f><v/></c>'), KAIHUA,
         refused="formula_without_value", keywords=("公式", "B5", "第5行", "采样人次")),
    Kind("xlsx_formula_in_metric_column", "messages", b_formula_in_metric_column, KAIHUA,
         refused="formula_without_value", keywords=("公式", "A22", "第22行", "指标名称")),
    Kind("csv_note_1mb", "messages", lambda: kecheng_csv(notes={"volunteers": NOTE_1MB}),
         refused="cell_too_long", keywords=("第21行", "备注", "志愿者", "太长")),
)  # fmt: skip

BY_NAME = {k.name: k for k in KINDS}
assert len(BY_NAME) == len(KINDS), "kind names must be unique"
for _kind in KINDS:
    assert (_kind.stored is None) != (_kind.refused is None) or _kind.special == "unmatched", _kind.name
