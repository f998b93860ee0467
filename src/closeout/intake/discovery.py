"""The day's inbox folder, listed: which file is whose figures, whose narrative, and which belong to no unit."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from closeout.core.registry import Registry

NARRATIVE_SUFFIX = ".md"


@dataclass
class DayInbox:
    report_date: date
    figure_files: dict[str, list[Path]] = field(default_factory=dict)
    narratives: dict[str, Path] = field(default_factory=dict)
    unmatched: list[Path] = field(default_factory=list)
    refused_folder: str = ""  # why the day's folder itself was not read (a link, or outside the inbox)


def discover(inbox: Path, report_date: date, registry: Registry) -> DayInbox:
    """The day's folder, listed without following anything: links are kept as links (refused when loaded)."""
    day = DayInbox(report_date)
    folder = inbox / report_date.isoformat()
    if folder.is_symlink() or not folder.is_dir() or not _inside(folder, inbox):
        if folder.is_symlink() or (folder.exists() and not _inside(folder, inbox)):
            day.refused_folder = f"收件日期目录 {folder.name} 是链接或指向收件目录以外，不读取"
        return day
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith((".", "~$")) or entry.is_dir(follow_symlinks=False):
                continue
            path = folder / entry.name
            unit = registry.resolve(path.stem)
            if unit is None:
                day.unmatched.append(path)
            elif path.suffix.lower() == NARRATIVE_SUFFIX:
                day.narratives[unit.code] = path
            else:  # an .xls or .et (or a link) under a unit's name is that unit's report, refused clearly
                day.figure_files.setdefault(unit.code, []).append(path)
    return day


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False
