"""Every file is kept unchanged, with its SHA-256 and arrival time, before anything reads it.

What is kept is exactly what is then judged: the bytes are read once (never through a link, never past
the size limit) and both the archive copy and the parser get those bytes. A link is kept as a record
of where it pointed, never followed; an oversized file is copied without being read into memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from closeout.core.clock import now_local
from closeout.core.limits import Limits
from closeout.core.textclean import printable_name
from closeout.intake.files import FileRefused, read_inbox_file

NAME_BYTES = 150  # of the county's file name kept in the archive's: room for the hash and our suffixes


@dataclass(frozen=True)
class ArchivedFile:
    source: Path
    path: Path
    sha256: str
    received_at: str
    data: bytes | None = None  # the bytes to judge; None when the file was refused unread
    refusal: FileRefused | None = None  # why it was refused before reading

    @property
    def name(self) -> str:
        return self.source.name


def take_file(source: Path, archive_dir: Path, report_date: date, unit_code: str, limits: Limits) -> ArchivedFile:
    """Read an inbox file once and archive exactly those bytes (idempotent: the same content keeps one copy
    and its first arrival time). A file refused before reading is archived as far as it safely can be."""
    folder = archive_dir / report_date.isoformat() / unit_code
    try:
        data = read_inbox_file(source, limits)
    except FileRefused as refusal:
        if refusal.rule == "file_too_large":
            sha, path = _copy_stream(source, folder)
        else:  # a link or a device: keep where it pointed, never what it points at
            target = os.readlink(source) if source.is_symlink() else "（非普通文件）"
            record = f"{refusal.rule}: {source.name} -> {target}\n".encode()
            sha = hashlib.sha256(record).hexdigest()
            path = _write_once(folder / f"{_archive_name(sha, source.name)}.link.txt", record)
        return ArchivedFile(source, path, sha, _manifest(path, sha, source.name), refusal=refusal)
    sha = hashlib.sha256(data).hexdigest()
    path = _write_once(folder / _archive_name(sha, source.name), data)
    return ArchivedFile(source, path, sha, _manifest(path, sha, source.name), data=data)


def _archive_name(sha: str, name: str) -> str:
    """The hash, then the county's name as data: no control characters, never longer than the file system allows."""
    shown = printable_name(name)
    if len(shown.encode()) > NAME_BYTES:
        suffix = Path(shown).suffix[:16]
        shown = shown.encode()[: NAME_BYTES - len(suffix.encode())].decode(errors="ignore") + suffix
    return f"{sha[:16]}-{shown}"


def _write_once(target: Path, data: bytes) -> Path:
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(data)
        partial.replace(target)  # atomic: a crash never leaves a half-written archive file
    return target


def _copy_stream(source: Path, folder: Path) -> tuple[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    partial = folder / f".{os.urandom(8).hex()}.partial"
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle, open(partial, "wb") as out:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
    sha = digest.hexdigest()
    target = folder / _archive_name(sha, source.name)
    if target.exists():
        partial.unlink()
    else:
        partial.replace(target)
    return sha, target


def _manifest(target: Path, sha: str, source_name: str) -> str:
    """The arrival time recorded beside the archived copy; the first one stays."""
    manifest = target.with_name(target.name + ".json")
    if manifest.exists():
        return json.loads(manifest.read_text(encoding="utf-8"))["received_at"]
    received_at = now_local()
    manifest.write_text(
        json.dumps(
            {"sha256": sha, "received_at": received_at, "source_name": source_name}, ensure_ascii=False, indent=1
        ),
        encoding="utf-8",
    )
    return received_at


def quarantine_file(
    archived: ArchivedFile, quarantine_dir: Path, report_date: date, unit_code: str, reasons: list[str]
) -> Path:
    """A rejected file is kept beside its reasons; the inbox and archive copies stay too."""
    target = quarantine_dir / report_date.isoformat() / unit_code / archived.path.name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        shutil.copyfile(archived.path, partial)
        partial.replace(target)
    target.with_name(target.name + ".reasons.txt").write_text("\n".join(reasons) + "\n", encoding="utf-8")
    return target
