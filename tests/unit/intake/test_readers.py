"""Reading an inbox file: never through a link, never half-written, never beyond the limits."""

import os
import time

import pytest

from closeout.core.limits import Limits
from closeout.intake.files import FileRefused, read_inbox_file, settled
from closeout.intake.spreadsheets import read_workbook


def test_a_file_still_being_written_is_waited_for_until_it_settles(tmp_path):
    path = tmp_path / "330802.csv"
    path.write_bytes(b"metric,value\nvolunteers,47")
    naps = []

    def sleep(seconds):  # the copy goes on while the loader waits
        naps.append(seconds)
        if len(naps) == 1:
            with open(path, "ab") as handle:
                handle.write(b"00\n")
        time.sleep(min(seconds, 0.2))

    assert settled(path, quiet_seconds=0.3, timeout_seconds=10, sleep=sleep)
    assert len(naps) >= 2  # it looked again after the file changed
    assert path.read_bytes().endswith(b"4700\n")


def test_a_file_that_never_settles_is_not_judged(tmp_path):
    path = tmp_path / "330802.csv"
    path.write_bytes(b"metric,value\n")

    def sleep(seconds):
        with open(path, "ab") as handle:
            handle.write(b"x")
        time.sleep(0.05)

    assert not settled(path, quiet_seconds=5, timeout_seconds=0.5, sleep=sleep)


def test_an_old_file_is_judged_at_once(tmp_path):
    path = tmp_path / "330802.csv"
    path.write_bytes(b"metric,value\n")
    os.utime(path, (time.time() - 60, time.time() - 60))
    assert settled(path, quiet_seconds=5, timeout_seconds=0, sleep=pytest.fail)


def test_a_link_is_never_followed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2\n")
    link = tmp_path / "330802.csv"
    link.symlink_to(secret)
    with pytest.raises(FileRefused) as refused:
        read_inbox_file(link, Limits())
    assert refused.value.rule == "symlink_refused" and "hunter2" not in str(refused.value)


def test_size_is_refused_before_reading(tmp_path):
    path = tmp_path / "330802.csv"
    path.write_bytes(b"x" * 101)
    with pytest.raises(FileRefused) as refused:
        read_inbox_file(path, Limits(max_file_bytes=100))
    assert refused.value.rule == "file_too_large"


def test_a_stray_cell_at_the_far_corner_costs_nothing(tmp_path):
    import io

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["指标", "数值"])
    sheet.append(["志愿者", 4700])
    sheet["XFD1048576"] = "x"
    buffer = io.BytesIO()
    book.save(buffer)
    with pytest.raises(FileRefused) as refused:  # refused by name, never a MemoryError from a 10^10-cell grid
        read_workbook(buffer.getvalue(), ".xlsx", Limits(max_parse_memory_mb=64))
    assert refused.value.rule == "cell_far_outside" and "XFD1048576" in refused.value.message
