"""How much work one county file may cause: every limit with its setting, default and refusal.

A small file must not cost the worker gigabytes or minutes, and the store grows by what the county
meant to report, not by what was packed into a file. Each limit is refused with a rule of its own;
docs/submission-format.md lists them from this table (`closeout contract`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Limit:
    name: str  # the Limits field
    env: str  # the setting that changes it
    default: int
    rule: str  # the finding's rule when a file exceeds it
    what: str  # 中文, for the clerk: what is limited
    unit: str  # 中文 unit of the number
    refuses: bool = (
        True  # exceeding it refuses the file (拒收); False: read within the limit with a soft finding (提示)
    )


LIMITS = (
    Limit("max_file_bytes", "CLOSEOUT_MAX_FILE_BYTES", 5 * 1024 * 1024, "file_too_large", "文件大小", "字节"),
    Limit("max_rows", "CLOSEOUT_MAX_ROWS", 2000, "too_many_rows", "表格行数", "行"),
    Limit("max_columns", "CLOSEOUT_MAX_COLUMNS", 50, "too_many_columns", "表格列数", "列"),
    Limit("max_cells", "CLOSEOUT_MAX_CELLS", 20000, "too_many_cells", "非空单元格数", "个"),
    Limit("max_note_chars", "CLOSEOUT_MAX_NOTE_CHARS", 200, "note_too_long", "一条备注的长度", "字", refuses=False),
    Limit("max_cell_chars", "CLOSEOUT_MAX_CELL_CHARS", 100000, "cell_too_long", "CSV 一个单元格的长度", "字"),
    Limit(
        "max_xlsx_uncompressed_bytes",
        "CLOSEOUT_MAX_XLSX_UNCOMPRESSED_BYTES",
        50 * 1024 * 1024,
        "xlsx_uncompressed_too_large",
        "xlsx 解压后的大小",
        "字节",
    ),
    Limit(
        "max_shared_strings", "CLOSEOUT_MAX_SHARED_STRINGS", 50000, "too_many_shared_strings", "xlsx 共享字符串数", "个"
    ),
    Limit("max_parse_seconds", "CLOSEOUT_MAX_PARSE_SECONDS", 20, "parse_timeout", "读一个文件的时间", "秒"),
    Limit("max_parse_memory_mb", "CLOSEOUT_MAX_PARSE_MEMORY_MB", 512, "parse_memory", "读一个文件所需内存", "MB"),
    Limit("max_value", "CLOSEOUT_MAX_VALUE", 10**12, "value_too_large", "一个数值的大小", ""),
    Limit(
        "max_narrative_chars",
        "CLOSEOUT_MAX_NARRATIVE_CHARS",
        5000,
        "narrative_too_long",
        "文字稿长度",
        "字",
        refuses=False,
    ),
)


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 5 * 1024 * 1024
    max_rows: int = 2000
    max_columns: int = 50
    max_cells: int = 20000
    max_note_chars: int = 200  # a longer note is kept cut to this length, with a soft finding
    max_cell_chars: int = 100000  # a longer CSV cell refuses the file (a note past max_note_chars is still read)
    max_xlsx_uncompressed_bytes: int = 50 * 1024 * 1024
    max_shared_strings: int = 50000
    max_parse_seconds: int = 20
    max_parse_memory_mb: int = 512
    max_value: int = 10**12
    max_narrative_chars: int = 5000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Limits:
        env = os.environ if env is None else env
        values = {}
        for limit in LIMITS:
            raw = env.get(limit.env, "").strip()
            if not raw:
                continue
            if not raw.isdigit() or int(raw) <= 0:
                raise ValueError(f"{limit.env} must be a positive whole number, got {raw!r}")
            values[limit.name] = int(raw)
        return cls(**values)


def _check_table() -> None:
    """The table and the dataclass must list the same limits with the same defaults."""
    declared = {f.name: f.default for f in fields(Limits)}
    listed = {limit.name: limit.default for limit in LIMITS}
    if declared != listed:
        raise RuntimeError(f"closeout.core.limits: LIMITS and Limits disagree: {declared} vs {listed}")


_check_table()
