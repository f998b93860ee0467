"""Decoding one county file's bytes into cells, exactly, within the limits — or refusing it with a reason.

Only what the county wrote comes out: numbers in XLSX as Decimal from the stored text (never through a
float), formula cells without a saved result and error cells as markers, every sheet with its
visibility, and each cell with its real row number (the stored sheet dimension is not trusted, and a
stray cell far away costs nothing). The work is bounded: size, rows, columns, cells, uncompressed
size, shared strings, time and memory each stop the read with a rule of their own. A file that is not
whole — NUL padding at its end, left by a copy still being written — is refused before it is read, and
a file whose bytes are the other format (a CSV named .xlsx, a workbook named .csv) is named as such.
(Reading the bytes from the inbox is closeout.intake.files.)
"""

from __future__ import annotations

import csv
import io
import os
import time
import unicodedata
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from closeout.core.limits import Limits
from closeout.intake.files import FileRefused, FileStillChanging

# utf-8-sig reads UTF-8 with or without a BOM. GBK bytes (almost) never decode as UTF-8, while UTF-8
# bytes decode "successfully" as GBK into mojibake: so UTF-8 first, then GB18030 (a superset of GBK).
ENCODINGS = ("utf-8-sig", "gb18030")
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls / .et saved by old Excel or WPS
ZIP_MAGIC = b"PK\x03\x04"  # .xlsx (and every other zip)
ZIP_END = b"PK\x05\x06"  # the zip's end record: 22 bytes and its comment, the last thing in a whole zip
ZIP_PADDING_RUN = 32  # NUL bytes ending a zip without its end record: padding (a zip's own runs are shorter)
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # UTF-16 text ends in NUL bytes of its own (refused for its encoding)
PREVIEW_CHARS = 20  # of a cell too long to read, shown in its finding
CHECK_EVERY = 512  # cells between two looks at the clock and the memory


@dataclass(frozen=True)
class FormulaWithoutValue:
    """A formula cell with no saved result (no value, or an empty one): written by a script, or never recalculated."""

    coordinate: str
    formula: str = ""  # the formula as written (shown, bounded), "" for a shared formula's other cells
    empty_result: bool = False  # the saved result is there but empty (<v></v>, <v/>)

    def __str__(self) -> str:
        return f"（{self.coordinate} 的公式无计算结果）"


@dataclass(frozen=True)
class CellTooLong:
    """A CSV cell longer than max_cell_chars: not kept, refused where the row says which metric it is."""

    length: int
    preview: str  # its first characters
    has_line_break: bool  # (an unclosed quote swallows the rest of the file into one cell)

    def __str__(self) -> str:
        return f"（过长的单元格：{self.length} 字）"


@dataclass(frozen=True)
class CellError:
    """An Excel error value such as #REF! or #DIV/0!."""

    text: str
    coordinate: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Note:
    """Something the reader noticed that the loader must report (never a silence)."""

    severity: str
    rule: str
    message: str
    row: int | None = None
    value: str = ""


@dataclass
class Sheet:
    name: str
    visible: bool
    rows: list[tuple[int, list[object]]] = field(default_factory=list)  # (row number as the clerk sees it, cells)


@dataclass
class Workbook:
    sheets: list[Sheet]
    notes: list[Note] = field(default_factory=list)
    open_end: bool = False  # a CSV whose text does not end with a line break: its last row may be cut
    open_quote: bool = False  # … and ends inside a quoted cell


# --- budget ------------------------------------------------------------------------------------------------


class Budget:
    """Time and memory spent reading one file, looked at every CHECK_EVERY cells."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.deadline = time.monotonic() + limits.max_parse_seconds
        self.baseline = _rss_bytes()
        self.cells = 0  # non-empty cells seen, all sheets together
        self.ticks = 0

    def tick(self) -> None:
        self.ticks += 1
        if self.ticks % CHECK_EVERY == 0:
            self.check()

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise FileRefused(
                "parse_timeout",
                f"读取本文件超过 {self.limits.max_parse_seconds} 秒仍未完成：文件过于复杂，请只保留日报表、另存后重报",
            )
        if _rss_bytes() - self.baseline > self.limits.max_parse_memory_mb * 1024 * 1024:
            raise FileRefused(
                "parse_memory",
                f"读取本文件所需内存超过 {self.limits.max_parse_memory_mb} MB：请删去多余内容、另存后重报",
            )

    def count_cell(self, row: int, coordinate: str) -> None:
        self.cells += 1
        if self.cells > self.limits.max_cells:
            raise FileRefused(
                "too_many_cells",
                f"非空单元格超过 {self.limits.max_cells} 个（到 {coordinate} 为止）：日报只需一张表，请删去多余内容后重报",
                row=row,
            )
        self.tick()


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


# --- CSV ---------------------------------------------------------------------------------------------------


def decode_bytes(data: bytes) -> tuple[str, str]:
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise UnicodeDecodeError("gb18030", data, 0, len(data), "not UTF-8 or GB18030")


def read_csv(data: bytes, limits: Limits) -> Workbook:
    budget = Budget(limits)
    if data.startswith(ZIP_MAGIC):
        if b"[Content_Types].xml" in data or b"xl/" in data:
            raise FileRefused(
                "xlsx_named_csv",
                "这是 Excel 工作簿（.xlsx），扩展名却是 .csv，不能按 CSV 读：把扩展名改为 .xlsx 后重报",
            )
        raise FileRefused("unsupported_format", "这是压缩文件（zip），不是 CSV：请放入 .csv 或 .xlsx 文件本身后重报")
    try:
        text, _ = decode_bytes(data)
    except UnicodeDecodeError:
        raise FileRefused(
            "unreadable_encoding", "文件编码既非 UTF-8 也非 GBK/GB18030，无法读取：请用 Excel“另存为 CSV UTF-8”后重报"
        ) from None
    notes = []
    if "\r" in text and "\n" not in text:
        notes.append(
            Note(
                "soft",
                "old_mac_line_endings",
                "文件用旧式 Mac 换行符（只有 CR），已逐行读入；建议用 Excel 或 WPS 另存为 CSV UTF-8",
            )
        )
    sheet = Sheet("CSV", True)
    # A cell is bounded by max_cell_chars (refused with its row and column), not by the csv module's 128 KiB:
    # no cell of a file within the size limit is longer than the file. (Process-wide, and only ever raised.)
    csv.field_size_limit(max(csv.field_size_limit(), limits.max_file_bytes))
    reader = csv.reader(io.StringIO(text, newline=None))
    line = 0
    try:
        for line, cells in enumerate(reader, start=1):
            if line > limits.max_rows:
                raise FileRefused(
                    "too_many_rows", f"超过 {limits.max_rows} 行：日报一行一个指标，请删去多余的行后重报", row=line
                )
            if len(cells) > limits.max_columns:
                raise FileRefused(
                    "too_many_columns",
                    f"这一行有 {len(cells)} 列，超过上限 {limits.max_columns} 列：请检查是否有多余的逗号",
                    row=line,
                )
            row: list[object] = list(cells)
            for position, cell in enumerate(cells):
                if cell.strip():
                    budget.count_cell(line, f"第{line}行第{position + 1}列")
                if len(cell) > limits.max_cell_chars:  # never kept: its row's finding says where and what it is
                    row[position] = CellTooLong(len(cell), cell.strip()[:PREVIEW_CHARS], "\n" in cell)
            sheet.rows.append((line, row))
    except csv.Error as exc:
        raise FileRefused(
            "unreadable_file",
            f"第{line + 1}行附近 CSV 格式无法解析（{exc}）：请用 Excel 另存为 CSV 后重报",
            row=line + 1,
        ) from None
    open_quote = text.count('"') % 2 == 1
    if open_quote and sheet.rows and any(_has_line_break(c) for c in sheet.rows[-1][1]):
        raise FileRefused(
            "unclosed_quote",
            "引号没有闭合：从这一行起的内容都被读进了同一个格子；请删去多余的英文双引号后重报",
            row=sheet.rows[-1][0],
        )
    open_end = not text.endswith(("\n", "\r"))
    return Workbook([sheet], notes, open_end=open_end, open_quote=open_end and open_quote)


def _has_line_break(cell: object) -> bool:
    return cell.has_line_break if isinstance(cell, CellTooLong) else "\n" in str(cell)


def _looks_like_csv(data: bytes) -> bool:
    """Text with commas and line breaks, and (almost) no control characters: a CSV, whatever its name says."""
    try:
        text, _ = decode_bytes(data)
    except UnicodeDecodeError:
        return False
    if "," not in text or not ("\n" in text or "\r" in text):
        return False
    sample = text[:65536]
    controls = sum(1 for ch in sample if ch not in "\t\r\n" and unicodedata.category(ch) == "Cc")
    return controls * 100 <= len(sample)


def nul_padding(data: bytes) -> int:
    """How many NUL bytes end the file beyond its content: the space a copy tool (or SMB) sets aside and then
    fills in, left when the file is read before it is whole. Text never ends in NUL. A whole zip (xlsx) ends with
    its end record, whose last field (the comment's length) is itself two NUL bytes; a zip cut short may end in a
    few NUL bytes of its own headers (it is refused as unreadable): only a longer run is padding there."""
    padding = len(data) - len(data.rstrip(b"\x00"))
    if not padding or data.startswith(UTF16_BOMS):
        return 0
    if not data.startswith(ZIP_MAGIC):
        return padding
    end = data.rfind(ZIP_END, max(0, len(data) - padding - 22 - 65535))
    if end >= 0 and end + 22 <= len(data):
        whole = end + 22 + int.from_bytes(data[end + 20 : end + 22], "little")
        if whole >= len(data):
            return 0
        if not data[whole:].strip(b"\x00"):
            return len(data) - whole
    return padding if padding >= ZIP_PADDING_RUN else 0


# --- XLSX --------------------------------------------------------------------------------------------------


def read_xlsx(data: bytes, limits: Limits) -> Workbook:
    budget = Budget(limits)
    if not data.startswith(ZIP_MAGIC) and _looks_like_csv(data):
        raise FileRefused(
            "csv_named_xlsx",
            "这是 CSV 文本文件，扩展名却是 .xlsx，不能按 Excel 工作簿读：把扩展名改为 .csv 后重报",
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise FileRefused(
            "unreadable_file",
            "文件不完整或已损坏，无法作为 .xlsx 打开（可能上传或复制未完成）：请重新保存并完整上传后重报",
        ) from None
    unpacked = sum(m.file_size for m in members)
    if unpacked > limits.max_xlsx_uncompressed_bytes:
        raise FileRefused(
            "xlsx_uncompressed_too_large",
            f"这个 .xlsx 解压后有 {unpacked} 字节，超过上限 {limits.max_xlsx_uncompressed_bytes} 字节：请只保留日报表、另存后重报",
        )
    _count_shared_strings(archive, limits, budget)
    try:
        return _read_sheets(data, limits, budget)
    except (FileRefused, FileStillChanging):
        raise
    except MemoryError:
        raise FileRefused(
            "parse_memory", f"读取本文件所需内存超过 {limits.max_parse_memory_mb} MB：请删去多余内容、另存后重报"
        ) from None
    except Exception as exc:  # a damaged workbook must not stop the other units
        raise FileRefused(
            "unreadable_file",
            f"文件无法作为 .xlsx 读取（{type(exc).__name__}）：请用 Excel 或 WPS 打开、另存为 .xlsx 后重报",
        ) from None


def _count_shared_strings(archive: zipfile.ZipFile, limits: Limits, budget: Budget) -> None:
    from xml.etree.ElementTree import iterparse

    names = [n for n in archive.namelist() if n.lower().endswith("sharedstrings.xml")]
    for name in names:
        count = 0
        try:
            with archive.open(name) as handle:
                for _, element in iterparse(handle):
                    if element.tag.endswith("}si") or element.tag == "si":
                        count += 1
                        element.clear()
                        budget.tick()
                        if count > limits.max_shared_strings:
                            raise FileRefused(
                                "too_many_shared_strings",
                                f"工作簿里的文字串超过 {limits.max_shared_strings} 个：日报只需一张表，请删去多余内容后重报",
                            )
        except FileRefused:
            raise
        except Exception:
            raise FileRefused(
                "unreadable_file", "文件不完整或已损坏（共享字符串表无法读取）：请重新保存并完整上传后重报"
            ) from None


def _read_sheets(data: bytes, limits: Limits, budget: Budget) -> Workbook:
    import openpyxl
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet._reader import FORMULA_TAG, VALUE_TAG, WorkSheetParser

    class ExactParser(WorkSheetParser):
        """openpyxl's streaming parser, keeping numbers as the stored text and flagging formulas without results."""

        def parse_cell(self, element):
            raw = element.findtext(VALUE_TAG, None)
            formula = element.find(FORMULA_TAG)
            if formula is not None and (raw is None or not raw.strip()):
                # No saved result, or an empty one (<v></v>, <v/>): never read as a blank cell. Only a text
                # formula (t="str") may have an empty result: that is how Excel saves a formula giving "".
                if raw is None or element.get("t") != "str":
                    cached = element.find(VALUE_TAG)
                    if cached is not None:
                        element.remove(cached)
                    cell = super().parse_cell(element)
                    cell["value"] = FormulaWithoutValue(
                        _coordinate(cell), _shown_formula(formula.text), empty_result=raw is not None
                    )
                    return cell
            cell = super().parse_cell(element)
            if cell["data_type"] == "n" and raw not in (None, ""):
                try:
                    cell["value"] = Decimal(raw.strip())
                except InvalidOperation:
                    cell["value"] = raw
            elif cell["data_type"] == "e":
                cell["value"] = CellError(str(cell["value"]), _coordinate(cell))
            return cell

    def _coordinate(cell) -> str:
        return f"{get_column_letter(min(cell['column'], 18278))}{cell['row']}"

    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    sheets = []
    try:
        for ws in workbook.worksheets:
            sheet = Sheet(str(ws.title), ws.sheet_state == "visible")
            parser = ExactParser(
                ws._get_source(),
                ws._shared_strings,  # the list openpyxl read for this workbook (read-only mode keeps it per sheet)
                data_only=True,
                epoch=workbook.epoch,
                date_formats=workbook._date_formats,
                timedelta_formats=workbook._timedelta_formats,
            )
            by_row: dict[int, dict[int, object]] = {}
            for _, cells in parser.parse():
                budget.tick()
                for cell in cells:
                    value = cell["value"]
                    if value is None or (isinstance(value, str) and not value.strip()):
                        continue  # formatting-only cells: Excel writes them across whole columns
                    row, column = cell["row"], cell["column"]
                    if row > limits.max_rows or column > limits.max_columns:
                        raise FileRefused(
                            "cell_far_outside",
                            f"工作表“{sheet.name}”的 {_coordinate(cell)} 单元格有内容，远在数据区以外"
                            f"（最多 {limits.max_rows} 行、{limits.max_columns} 列）：请删去该单元格后重报",
                            row=row,
                            value=str(value)[:40],
                        )
                    budget.count_cell(row, _coordinate(cell))
                    by_row.setdefault(row, {})[column] = value
            for row in sorted(by_row):
                cells = by_row[row]
                width = max(cells)
                sheet.rows.append((row, [cells.get(c) for c in range(1, width + 1)]))
            sheets.append(sheet)
    finally:
        workbook.close()
    return Workbook(sheets)


def _shown_formula(text: str | None) -> str:
    """A formula as shown in a finding: one line, bounded."""
    shown = " ".join((text or "").split())
    shown = "".join("?" if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in shown)
    return shown if len(shown) <= 40 else shown[:39] + "…"


def read_workbook(data: bytes, suffix: str, limits: Limits) -> Workbook:
    """Every sheet of the file (a CSV is one sheet); FileRefused when it cannot be read within the limits."""
    if data.startswith(OLE_MAGIC):
        raise FileRefused(
            "unsupported_format",
            f"这是旧版 Excel（.xls）或 WPS（.et）文件，只是扩展名写成了 {suffix}：请另存为 .xlsx 或 CSV UTF-8 后重报",
        )
    padding = nul_padding(data)
    if padding:
        raise FileRefused(
            "file_incomplete",
            f"文件末尾是 {padding} 个 NUL 空字节（复制工具、共享文件夹预先占好、还没写满的空间）：文件还在写入，"
            "或者传输中断了，没有读入；请等文件完整后重新发送整个文件",
        )
    if not data.strip(b" \t\r\n\x00\xef\xbb\xbf"):
        raise FileRefused(
            "empty_file",
            "文件是空的（0字节或只有空白）：可能导出或上传未完成，请打开确认有数据后重报",
        )
    try:
        if suffix == ".xlsx":
            return read_xlsx(data, limits)
        return read_csv(data, limits)
    except MemoryError:
        raise FileRefused(
            "parse_memory", f"读取本文件所需内存超过 {limits.max_parse_memory_mb} MB：请删去多余内容、另存后重报"
        ) from None
