"""The inbox file itself: its bytes read once, never through a link, never past the size limit — or refused
with a reason; and the wait for a file still being copied to settle.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from closeout.core.limits import Limits


class FileRefused(Exception):
    """The file cannot be read as a whole; `rule` names why, `message` says it in the clerk's terms."""

    def __init__(self, rule: str, message: str, row: int | None = None, value: str = ""):
        super().__init__(f"{message} [rule: {rule}]")
        self.rule, self.message, self.row, self.value = rule, message, row, value


class FileStillChanging(Exception):
    """Infrastructure, not data: the file changed while it was read (still being copied). Retry later."""


def read_inbox_file(path: Path, limits: Limits) -> bytes:
    """The file's bytes, read once, never through a link, never beyond the size limit."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise FileStillChanging(f"{path.name} disappeared before it was read") from None
    if stat.S_ISLNK(info.st_mode):
        raise FileRefused(
            "symlink_refused",
            "收件目录中的这个文件是一个链接（快捷方式），不是文件本身：为安全起见不读取、不跟随；请把文件本身放入收件目录后重报",
        )
    if not stat.S_ISREG(info.st_mode):
        raise FileRefused("not_a_regular_file", "这不是普通文件（可能是目录或设备），不读取；请放入 .csv 或 .xlsx 文件")
    if info.st_size > limits.max_file_bytes:
        raise FileRefused(
            "file_too_large",
            f"文件大小 {info.st_size} 字节，超过上限 {limits.max_file_bytes} 字节：日报只需一张表，请删去图片、多余工作表后重报",
        )
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise FileRefused("not_a_regular_file", "这不是普通文件，不读取；请放入 .csv 或 .xlsx 文件")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limits.max_file_bytes + 1)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if len(data) > limits.max_file_bytes:
        raise FileRefused(
            "file_too_large", f"文件大小超过上限 {limits.max_file_bytes} 字节：请删去图片、多余工作表后重报"
        )
    if after.st_size != len(data) or after.st_mtime_ns != opened.st_mtime_ns:
        raise FileStillChanging(f"{path.name} changed while it was read")
    return data


def settled(path: Path, quiet_seconds: float, timeout_seconds: float, sleep=time.sleep) -> bool:
    """Wait until the file's size and mtime have not changed for quiet_seconds; False if still changing at the timeout.

    A file still being copied into the inbox must not be judged: a truncated CSV reads as valid figures."""
    if quiet_seconds <= 0:
        return True
    give_up = time.time() + timeout_seconds
    try:
        last = os.lstat(path)
    except FileNotFoundError:
        return False
    while True:
        age = time.time() - last.st_mtime
        if age >= quiet_seconds:
            return True
        if time.time() >= give_up:
            return False
        sleep(min(quiet_seconds - age, max(give_up - time.time(), 0.05)))
        try:
            now = os.lstat(path)
        except FileNotFoundError:
            return False
        if (now.st_size, now.st_mtime_ns) != (last.st_size, last.st_mtime_ns):
            last = now
