"""The one place that reads the environment. Every setting has a documented default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from closeout.core.limits import Limits

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_CUTOFF = "21:00"


@dataclass(frozen=True)
class Settings:
    inbox: Path  # CLOSEOUT_INBOX: <inbox>/<YYYY-MM-DD>/<unit>.<csv|xlsx|md>
    archive_root: Path  # CLOSEOUT_ARCHIVE: archive/ and quarantine/ live under it
    outbox: Path  # CLOSEOUT_OUTBOX: rendered bulletins, <outbox>/<YYYY-MM-DD>/
    db_url: str  # CLOSEOUT_DB_URL: any SQLAlchemy URL
    recipients: tuple[str, ...]  # CLOSEOUT_RECIPIENTS: comma-separated distribution list
    sender: str  # CLOSEOUT_SENDER: From address when the SMTP connection names none
    include_dir: Path  # CLOSEOUT_INCLUDE: sql/, templates/, registry/, catalogue/, rules/
    registry_path: Path  # CLOSEOUT_REGISTRY
    cutoff: str  # CLOSEOUT_CUTOFF: HH:MM Asia/Shanghai
    limits: Limits = Limits()  # CLOSEOUT_MAX_*: how much work one county file may cause (closeout.core.limits)
    settle_seconds: float = 5.0  # CLOSEOUT_SETTLE_SECONDS: a file is judged once unchanged this long
    settle_timeout: float = 120.0  # CLOSEOUT_SETTLE_TIMEOUT: still changing after this: the load retries later
    opening: str = "12:00"  # CLOSEOUT_OPEN: HH:MM from which files are judged on arrival (intake)
    reminders: tuple[str, ...] = ("19:00", "20:30")  # CLOSEOUT_REMINDERS: HH:MM,HH:MM before the cutoff
    deadline: str = "23:30"  # CLOSEOUT_DEADLINE: HH:MM by which the day must be closed, else ops are alerted
    ops_emails: tuple[str, ...] = ()  # CLOSEOUT_OPS_EMAIL: comma-separated; copied on reminders, alerted
    ui_base_url: str = "http://localhost:8080"  # CLOSEOUT_UI_BASE_URL: the Airflow UI, for links (alerts, board)
    # CLOSEOUT_ALERT_GATHER_SECONDS: a shared outage's one alert waits this long to list the other failures with it
    alert_gather_seconds: float = 20.0
    signoff: str = "when-incomplete"  # CLOSEOUT_SIGNOFF: off | always | when-incomplete (审核签发 before mailing)
    quorum: float = 0.5  # CLOSEOUT_QUORUM: share of required units cleared below which when-incomplete holds
    correction_batch: float = (
        30.0  # CLOSEOUT_CORRECTION_BATCH: minutes same-day changes gather before a 补报/更正 edition
    )
    # CLOSEOUT_BULLETIN_TABLE_MAX_UNITS: above this many county-level units the bulletin shows the next level down
    # (group roll-ups), the top movers and every unit with a problem, and the per-unit figures travel as an .xlsx
    # and a zipped long CSV; at or below it, one column per unit and a CSV. A dozen columns is what a printed page holds.
    bulletin_table_max_units: int = 12
    bulletin_language: str = "zh"  # CLOSEOUT_BULLETIN_LANGUAGE: zh (工作日报) | en (the same bulletin in English)
    # CLOSEOUT_BULLETIN_MASTHEAD: the head and foot (红头, 报/送/发) as YAML; default include/catalogue/masthead.yaml
    bulletin_masthead: Path | None = None
    # CLOSEOUT_NOTICE_CONFIRM_MINUTES: a receipt, reminder or alert still 'sending' after this long is unconfirmed:
    # `closeout status` lists it with the confirm-notice / retry-notice command that resolves it
    notice_confirm_minutes: float = 10.0

    @property
    def archive_dir(self) -> Path:
        return self.archive_root / "archive"

    @property
    def quarantine_dir(self) -> Path:
        return self.archive_root / "quarantine"

    @property
    def catalogue_path(self) -> Path:
        return self.include_dir / "catalogue" / "metrics.yaml"

    @property
    def bulletin_layout_path(self) -> Path:
        return self.include_dir / "catalogue" / "bulletin.yaml"

    @property
    def bulletin_masthead_path(self) -> Path:
        return self.bulletin_masthead or self.include_dir / "catalogue" / "masthead.yaml"

    @property
    def checks_path(self) -> Path:
        return self.include_dir / "rules" / "checks.yaml"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    data = Path(env.get("CLOSEOUT_DATA", PROJECT_ROOT / "data"))
    include = Path(env.get("CLOSEOUT_INCLUDE", PROJECT_ROOT / "include"))
    recipients = _addresses(env.get("CLOSEOUT_RECIPIENTS", "ops@closeout.invalid"))
    cutoff = cutoff_from_env(env)
    reminders = tuple(
        _clock(env, "CLOSEOUT_REMINDERS", part) for part in env.get("CLOSEOUT_REMINDERS", "19:00,20:30").split(",")
    )
    return Settings(
        inbox=Path(env.get("CLOSEOUT_INBOX", data / "inbox")),
        archive_root=Path(env.get("CLOSEOUT_ARCHIVE", data)),
        outbox=Path(env.get("CLOSEOUT_OUTBOX", data / "outbox")),
        db_url=env.get("CLOSEOUT_DB_URL", f"sqlite:///{data / 'closeout.db'}"),
        recipients=recipients,
        sender=env.get("CLOSEOUT_SENDER", "closeout@closeout.invalid"),
        include_dir=include,
        registry_path=Path(env.get("CLOSEOUT_REGISTRY", include / "registry" / "quzhou.yaml")),
        cutoff=cutoff,
        limits=Limits.from_env(env),
        settle_seconds=_seconds(env, "CLOSEOUT_SETTLE_SECONDS", 5.0),
        settle_timeout=_seconds(env, "CLOSEOUT_SETTLE_TIMEOUT", 120.0),
        opening=_clock(env, "CLOSEOUT_OPEN", env.get("CLOSEOUT_OPEN", "12:00")),
        reminders=tuple(sorted(r for r in reminders if r)),
        deadline=_clock(env, "CLOSEOUT_DEADLINE", env.get("CLOSEOUT_DEADLINE", "23:30")),
        ops_emails=_addresses(env.get("CLOSEOUT_OPS_EMAIL", "")),
        ui_base_url=env.get("CLOSEOUT_UI_BASE_URL", "http://localhost:8080").rstrip("/"),
        alert_gather_seconds=_seconds(env, "CLOSEOUT_ALERT_GATHER_SECONDS", 20.0),
        signoff=_choice(env, "CLOSEOUT_SIGNOFF", SIGNOFF_MODES, "when-incomplete"),
        quorum=_share(env, "CLOSEOUT_QUORUM", 0.5),
        correction_batch=_seconds(env, "CLOSEOUT_CORRECTION_BATCH", 30.0, "minutes"),
        bulletin_table_max_units=_count(env, "CLOSEOUT_BULLETIN_TABLE_MAX_UNITS", 12),
        bulletin_language=_choice(env, "CLOSEOUT_BULLETIN_LANGUAGE", BULLETIN_LANGUAGES, "zh"),
        bulletin_masthead=Path(env["CLOSEOUT_BULLETIN_MASTHEAD"]) if env.get("CLOSEOUT_BULLETIN_MASTHEAD") else None,
        notice_confirm_minutes=_seconds(env, "CLOSEOUT_NOTICE_CONFIRM_MINUTES", 10.0, "minutes"),
    )


SIGNOFF_MODES = ("off", "always", "when-incomplete")
BULLETIN_LANGUAGES = ("zh", "en")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _share(env: Mapping[str, str], name: str, default: float) -> float:
    """A share as 0.5 or 50%."""
    raw = env.get(name, "").strip()
    try:
        value = (float(raw.removesuffix("%")) / 100 if raw.endswith("%") else float(raw)) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a share such as 0.5 or 50%, got {raw!r}") from None
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be between 0 and 1 (or 0% and 100%), got {raw!r}")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if raw and not (raw.isascii() and raw.isdigit()):
        raise ValueError(f"{name} must be a whole number, got {raw!r}")
    return int(raw) if raw else default


def _addresses(raw: str) -> tuple[str, ...]:
    return tuple(r.strip() for r in raw.split(",") if r.strip())


def _clock(env: Mapping[str, str], name: str, raw: str) -> str:
    """HH:MM (Asia/Shanghai) as two-digit hours and minutes; '' for an empty item of a list."""
    value = raw.strip()
    if not value:
        return ""
    hours, _, minutes = value.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
        raise ValueError(f"{name} must be HH:MM (Asia/Shanghai), got {value!r}")
    return f"{int(hours):02d}:{int(minutes):02d}"


def _seconds(env: Mapping[str, str], name: str, default: float, unit: str = "seconds") -> float:
    raw = env.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number of {unit}, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {raw!r}")
    return value


def cutoff_from_env(env: Mapping[str, str] | None = None) -> str:
    """CLOSEOUT_CUTOFF as HH:MM; cheap enough for DAG parse time (no I/O)."""
    env = os.environ if env is None else env
    return _clock(env, "CLOSEOUT_CUTOFF", env.get("CLOSEOUT_CUTOFF", DEFAULT_CUTOFF) or DEFAULT_CUTOFF)


def smtp_retry_policy(env: Mapping[str, str] | None = None) -> tuple[int, timedelta]:
    """How often the bulletin's mail is tried again while the SMTP server refuses or times out, and the first
    wait (it doubles each time, up to 15 minutes): CLOSEOUT_SMTP_RETRIES (default 6) and CLOSEOUT_SMTP_RETRY_DELAY
    (seconds, default 60). Cheap enough for DAG parse time."""
    env = os.environ if env is None else env
    retries = env.get("CLOSEOUT_SMTP_RETRIES", "6").strip() or "6"
    if not retries.isdigit() or int(retries) > 50:
        raise ValueError(f"CLOSEOUT_SMTP_RETRIES must be a whole number from 0 to 50, got {retries!r}")
    return int(retries), timedelta(seconds=_seconds(env, "CLOSEOUT_SMTP_RETRY_DELAY", 60.0))


def intake_cron(env: Mapping[str, str] | None = None) -> str:
    """Every CLOSEOUT_INTAKE_EVERY minutes (default 2) from the opening hour to the deadline's hour; cheap enough
    for DAG parse time. A deadline past midnight adds the early hours of the next day."""
    env = os.environ if env is None else env
    every = env.get("CLOSEOUT_INTAKE_EVERY", "2").strip() or "2"
    if not every.isdigit() or not 1 <= int(every) <= 30:
        raise ValueError(f"CLOSEOUT_INTAKE_EVERY must be minutes from 1 to 30, got {every!r}")
    opening = int(_clock(env, "CLOSEOUT_OPEN", env.get("CLOSEOUT_OPEN", "12:00") or "12:00")[:2])
    deadline = int(_clock(env, "CLOSEOUT_DEADLINE", env.get("CLOSEOUT_DEADLINE", "23:30") or "23:30")[:2])
    hours = f"{opening}-{deadline}" if deadline >= opening else f"0-{deadline},{opening}-23"
    return f"*/{int(every)} {hours} * * *"
