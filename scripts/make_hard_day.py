"""Writes sample/afternoon/2022-03-20/: the hard day `make demo` plays after the sample week.

Figures carry on from the 19th's closed stocks (pending and central isolation balance). Files arrive in
steps named by local time: at 15-00 five units send, 衢江's file with an approximation in a hard metric
(rejected); at 17-30 衢江 sends the fixed file; 开化 sends nothing until 22-00, after the cutoff (缺报, then a
late report). New confirmed cases: 4 without 衢江 and 开化, 15 once both are in (domain.md, 3月20日).
Run: .venv/bin/python scripts/make_hard_day.py
"""

from datetime import date
from pathlib import Path

from closeout.checks.validate import collapse
from closeout.core.settings import load_settings
from closeout.intake.discovery import discover
from closeout.intake.rows import parse_submission
from closeout.store.context import Context

ROOT = Path(__file__).resolve().parents[1]
DAY, PREVIOUS = "2022-03-20", date(2022, 3, 19)
NEW_CONFIRMED = {"330802": 3, "330803": 9, "330822": 1, "330824": 2, "330825": 0, "330881": 0}
FILE_NAMES = {"330802": "330802.csv", "330803": "330803.csv", "330822": "changshan.csv", "330824": "开化县.csv",
              "330825": "龙游县.csv", "330881": "jiangshan.csv"}  # fmt: skip


def figures_of_the_19th(ctx: Context) -> dict[str, dict[str, int]]:
    inbox = discover(ROOT / "sample" / "inbox", PREVIOUS, ctx.registry)
    result = {}
    for code, (path,) in inbox.figure_files.items():
        sub = parse_submission(path, ctx.registry.get(code), PREVIOUS, ctx.catalogue, ctx.registry)
        result[code] = {f.metric: f.value for f in collapse(sub)}
    return result


def next_day(code: str, before: dict[str, int]) -> dict[str, int]:
    today = dict(before)
    today["sampled"] = int(before["sampled"] * 0.96)
    today["tested"] = (
        int(before["pending"] + today["sampled"] * 0.9) if before["pending"] else int(today["sampled"] * 0.97)
    )
    today["tested"] = min(today["tested"], before["pending"] + today["sampled"])
    today["positive"] = NEW_CONFIRMED[code] + (1 if code in ("330802", "330803") else 0)
    today["negative"] = today["tested"] - today["positive"]
    today["pending"] = before["pending"] + today["sampled"] - today["tested"]
    today["new_confirmed"] = NEW_CONFIRMED[code]
    today["asymptomatic_to_confirmed"] = min(1, NEW_CONFIRMED[code])
    today["new_asymptomatic"] = 1 if code in ("330802", "330803") else 0
    today["isolation_new"] = max(0, int(before["isolation_new"] * 0.8))
    today["isolation_released"] = before["isolation_released"] + 3
    today["isolation_transferred"] = NEW_CONFIRMED[code]
    today["isolation_central"] = (
        before["isolation_central"]
        + today["isolation_new"]
        - today["isolation_released"]
        - today["isolation_transferred"]
    )
    for flow in ("close_contacts_new", "secondary_contacts_new", "needs_resolved", "counseling_sessions"):
        today[flow] = int(before[flow] * 0.9) + 1
    return {k: int(v) for k, v in today.items() if k != "confirmed_cumulative"}


def write(path: Path, code: str, figures: dict[str, int], replace: dict[str, str] | None = None) -> None:
    rows = ["metric,value,unit_code,report_date,note"]
    for metric, value in figures.items():
        shown = (replace or {}).get(metric, str(value))
        rows.append(f"{metric},{shown},{code},{DAY},")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def main() -> None:
    ctx = Context(load_settings({}))
    out = ROOT / "sample" / "afternoon" / DAY
    for code, before in figures_of_the_19th(ctx).items():
        today = next_day(code, before)
        if code == "330803":
            write(
                out / "15-00" / FILE_NAMES[code],
                code,
                today,
                {"sampled": f"约{round(today['sampled'], -4) // 10000}万"},
            )
            write(out / "17-30" / FILE_NAMES[code], code, today)
        elif code == "330824":
            write(out / "22-00" / FILE_NAMES[code], code, today)
        else:
            write(out / "15-00" / FILE_NAMES[code], code, today)
    print(f"wrote {sorted(str(p.relative_to(ROOT)) for p in out.rglob('*.csv'))}")


if __name__ == "__main__":
    main()
