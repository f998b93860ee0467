"""One alert per incident: when a shared dependency fails (the store unreachable, or cut mid-load), every task of a
run fails with it — at national scale a thousand tries — and ops need one mail naming the run and the cause, not one
per try. The first failure of a run and cause sends the alert after a short gathering wait and lists every failure
recorded meanwhile; the later ones are only recorded. Kept as files beside the archive (shared by every worker),
because the store is the very thing that is down."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

STORE_OUTAGE = "store_unreachable"
CAUSE_LABELS = {STORE_OUTAGE: "报送数据库无法连接或连接中断 / the reporting store is unreachable or was cut"}


def shared_cause(exception: BaseException | None) -> str | None:
    """The shared cause a task's exception belongs to, following its chain (a GX run or a load wraps the driver's
    error), or None for a failure of its own (a county's data, a bug), which keeps an alert per try."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    seen: set[int] = set()
    while exception is not None and id(exception) not in seen:
        seen.add(id(exception))
        if isinstance(exception, OperationalError | InterfaceError) or (
            isinstance(exception, DBAPIError) and exception.connection_invalidated
        ):
            return STORE_OUTAGE
        exception = exception.__cause__ or exception.__context__
    return None


def incident_file(folder: Path, run_id: str, cause: str) -> Path:
    key = hashlib.sha256("\n".join((run_id, cause)).encode()).hexdigest()[:20]
    return folder / f"{key}.log"


def record_failure(folder: Path, run_id: str, cause: str, line: str) -> bool:
    """Add one failure to the run's incident; True when it is the first (its task sends the alert)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = incident_file(folder, run_id, cause)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o640)
        first = True
    except FileExistsError:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        first = False
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write(" ".join(line.split()) + "\n")  # one line each: O_APPEND keeps concurrent writers' lines whole
    return first


def failures(folder: Path, run_id: str, cause: str) -> list[str]:
    """The failures recorded for the run's incident, first first."""
    path = incident_file(folder, run_id, cause)
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []
