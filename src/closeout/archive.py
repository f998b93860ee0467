"""Every file is copied unchanged, with its SHA-256 and arrival time, before anything reads it."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from closeout.store import now_local


@dataclass(frozen=True)
class ArchivedFile:
    source: Path
    path: Path
    sha256: str
    received_at: str


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_once(source: Path, target: Path) -> None:
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        shutil.copy2(source, partial)
        partial.replace(target)  # atomic: a crash never leaves a half-copied archive file


def archive_file(source: Path, archive_dir: Path, report_date: date, unit_code: str) -> ArchivedFile:
    """Idempotent: the same content archived twice keeps its first arrival time and one copy."""
    sha = sha256_of(source)
    target = archive_dir / report_date.isoformat() / unit_code / f"{sha[:16]}-{source.name}"
    manifest = target.with_name(target.name + ".json")
    _copy_once(source, target)
    if manifest.exists():
        received_at = json.loads(manifest.read_text(encoding="utf-8"))["received_at"]
    else:
        received_at = now_local()
        manifest.write_text(
            json.dumps(
                {"sha256": sha, "received_at": received_at, "source_name": source.name}, ensure_ascii=False, indent=1
            ),
            encoding="utf-8",
        )
    return ArchivedFile(source, target, sha, received_at)


def quarantine_file(
    archived: ArchivedFile, quarantine_dir: Path, report_date: date, unit_code: str, reasons: list[str]
) -> Path:
    """A rejected file is kept beside its reasons; the inbox and archive copies stay too."""
    target = quarantine_dir / report_date.isoformat() / unit_code / archived.path.name
    _copy_once(archived.path, target)
    target.with_name(target.name + ".reasons.txt").write_text("\n".join(reasons) + "\n", encoding="utf-8")
    return target
