"""The 日清日结看板's web app: a FastAPI app the Airflow api-server mounts at /closeout (plugins/closeout_board.py).

Pages are rendered on the server with Jinja2 (autoescaped: unit names, file names and findings come from county
files) and need a few lines of plain JavaScript only to open a unit-day in a dialog and to ask for a re-run. No
build step, no npm: the api-server serves what is in the repo.

Security: a plugin's endpoints are not protected by Airflow, so every route here depends on `board_user`, which
authenticates the caller exactly as Airflow's own API does (the JWT in the Authorization header or the UI's
`_token` cookie) and asks Airflow's auth manager (FAB in production, the simple auth manager locally):
- reading the board needs read access to `daily_closeout`'s task instances (Closeout Viewer and up);
- re-running a unit's load and downloading an archived county file need edit access to them (Closeout Ops). A
  county file is sensitive: figures before publication and the names and phone numbers of county staff.
The re-run is forwarded to Airflow's own REST API (`clearTaskInstances`) with the caller's token, so Airflow
checks and records it as the user who clicked.
- figures before publication: until a day's bulletin has been sent, a Viewer sees each unit's status, arrival and
  files but no figure, finding line or verdict text (`closeout.board.views`, given `user.can_rerun`; the rule is
  written in docs/operations.md, "看板的查看权限 · Who sees what on the board").

Bad input answers one line with 4xx, never 500: a malformed date or one outside 2000-01-01 … a year from today
(Asia/Shanghai) 422, an unknown unit or group 404, a file hash that is not 64 hex digits 404, a re-run body that is
not a JSON object with a date and a unit 422. Links never come from the request's Host header: absolute ones are
built from the configured `CLOSEOUT_UI_BASE_URL`, the board's own are relative to the mount, and the CSRF check
compares a POST's Origin with that configured origin.

Reads go through `closeout.board.views` and `closeout.board.queries` (no pandas, Great Expectations or task code in
the api-server); Airflow is imported inside the handlers, where the api-server has already loaded it.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlencode, urlsplit

import jinja2
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from closeout.core.clock import LOCAL_TZ
from closeout.core.settings import load_settings

DAG_ID = "daily_closeout"
LOAD_TASK = "load_unit_group"
MOUNT = "/closeout"  # where plugins/closeout_board.py mounts this app
# Above this many units the unfiltered board shows one roll-up row per group; a group's units open by filter.
UNIT_ROWS_MAX = 300
# The report dates the board answers for: none before this, none more than a year after today (Asia/Shanghai).
EARLIEST_DAY = date(2000, 1, 1)
LATEST_AHEAD = timedelta(days=366)
RERUN_BODY_MAX = 4096  # bytes: {"date": "YYYY-MM-DD", "unit": "330802"} is some 40
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BoardUser:
    """The authenticated Airflow user and what the auth manager lets them do on the board."""

    def __init__(self, user, can_rerun: bool):
        self.user = user
        self.name = user.get_name() if hasattr(user, "get_name") else str(user)
        self.can_rerun = can_rerun


def _authorized(user, method: str) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return get_auth_manager().is_authorized_dag(
        method=method, access_entity=DagAccessEntity.TASK_INSTANCE, details=DagDetails(id=DAG_ID), user=user
    )


async def board_user(request: Request) -> BoardUser:
    """Airflow's own authentication (raises 401 without a valid token), then read access or 403."""
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.security import HTTPAuthorizationCredentials

    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    bearer = HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials) if credentials else None
    user = await get_user(request, None, bearer)
    if not _authorized(user, "GET"):
        raise HTTPException(403, "需要 daily_closeout 任务实例的查看权限 / read access to daily_closeout needed")
    return BoardUser(user, can_rerun=_authorized(user, "PUT"))


def ops_user(user: Annotated[BoardUser, Depends(board_user)]) -> BoardUser:
    if not user.can_rerun:
        raise HTTPException(403, "仅运维（Closeout Ops）可操作 / Closeout Ops only")
    return user


UserDep = Annotated[BoardUser, Depends(board_user)]
OpsDep = Annotated[BoardUser, Depends(ops_user)]


def reader():
    """The board's reader for the CLOSEOUT_* settings, one per store and registry (one engine, kept)."""
    settings = load_settings()
    return _reader(settings.db_url, str(settings.registry_path), settings.cutoff, str(settings.include_dir))


@lru_cache(maxsize=4)
def _reader(*settings_key: str):
    from closeout.board.views import BoardReader

    return BoardReader.from_env()


@lru_cache(maxsize=1)
def _templates(folder: str) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(folder), autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["hhmm"] = lambda iso: (iso or "")[11:16]
    env.filters["number"] = _number
    env.filters["ink"] = _ink
    return env


def _ink(colour: str) -> str:
    """Black or white text, whichever reads better on the status colour (WCAG relative luminance)."""
    channels = [int(colour.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return "#000000" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.179 else "#ffffff"


def _number(value) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def render(name: str, **values) -> HTMLResponse:
    folder = load_settings().include_dir / "templates" / "board"
    return HTMLResponse(_templates(str(folder)).get_template(name).render(mount=MOUNT, **values))


def _day(text: str | None, default: date) -> date:
    """A report date from the request: YYYY-MM-DD (nothing else date.fromisoformat would take), from 2000-01-01 to a
    year after today in Asia/Shanghai; else 422."""
    if not text:
        return default
    try:
        if not _ISO_DAY.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise HTTPException(422, f"日期格式应为 YYYY-MM-DD / a date as YYYY-MM-DD: {text[:20]!r}") from None
    latest = datetime.now(LOCAL_TZ).date() + LATEST_AHEAD
    if not EARLIEST_DAY <= day <= latest:
        raise HTTPException(
            422, f"日期应在 {EARLIEST_DAY} 至 {latest} 之间 / a date from {EARLIEST_DAY} to {latest}: {text}"
        )
    return day


def _unit(code: str) -> str:
    """A unit code the registry lists, else 404."""
    try:
        reader().registry.get(code)
    except KeyError:
        raise HTTPException(404, f"名录中没有单位 / no such unit: {code[:20]!r}") from None
    return code


def _group(key: str | None) -> str | None:
    """A group key the registry has (None for all groups), else 404."""
    if not key:
        return None
    if key not in {g.key for g in reader().registry.groups()}:
        raise HTTPException(404, f"名录中没有分组 / no such group: {key[:20]!r}")
    return key


def _range(first: str | None, last: str | None) -> tuple[date, date, datetime]:
    from closeout.board.views import default_range

    now = datetime.now(LOCAL_TZ)
    default_first, default_last = default_range(now.date())
    first_day, last_day = _day(first, default_first), _day(last, default_last)
    if last_day < first_day:
        raise HTTPException(422, "结束日期早于开始日期 / the last date is before the first")
    if (last_day - first_day).days > 366:
        raise HTTPException(422, "一次最多查看 367 天 / at most 367 days at a time")
    return first_day, last_day, now


def create_app() -> FastAPI:
    # redirect_slashes off: Starlette would redirect /board to an absolute URL built from the Host header
    app = FastAPI(
        title="closeout 日清日结看板", docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False
    )

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's own checks (a missing or malformed parameter) as one line, like the board's own 422s."""
        errors = exc.errors()
        first = errors[0] if errors else {}
        name = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body", "header"))
        message = f"参数 {name} 不合法 / invalid parameter {name}: {first.get('msg', '')}"
        return JSONResponse({"detail": message}, status_code=422)

    @app.get("/board", include_in_schema=False)
    def board_slash(user: UserDep, request: Request):
        query = request.url.query
        return RedirectResponse(f"{MOUNT}/board/" + (f"?{query}" if query else ""), status_code=307)

    @app.get("/board/", response_class=HTMLResponse)
    def board(
        user: UserDep,
        first: str | None = None,
        last: str | None = None,
        group: str | None = None,
        q: Annotated[str | None, Query(max_length=60)] = None,
    ):
        first_day, last_day, now = _range(first, last)
        view = reader().matrix(
            first_day, last_day, now, group=_group(group), search=q or None, can_see_unpublished=user.can_rerun
        )
        units_shown = sum(len(g["units"]) for g in view["groups"])
        rollup_only = units_shown > UNIT_ROWS_MAX and not (group or q)
        return render(
            "board.html.j2",
            view=view,
            user=user,
            group=group or "",
            q=q or "",
            rollup_only=rollup_only,
            groups=group_choices(),
            query=urlencode({"first": first_day.isoformat(), "last": last_day.isoformat()}),
        )

    @app.get("/board/api/matrix")
    def matrix_json(user: UserDep, first: str | None = None, last: str | None = None, group: str | None = None):
        first_day, last_day, now = _range(first, last)
        view = reader().matrix(first_day, last_day, now, group=_group(group), can_see_unpublished=user.can_rerun)
        # json.dumps, not FastAPI's encoder: a national fortnight is 10 MB of plain dicts
        return Response(json.dumps(view, ensure_ascii=False), media_type="application/json")

    @app.get("/board/unit-day", response_class=HTMLResponse)
    async def unit_day(user: UserDep, request: Request, date: str, unit: str, fragment: bool = False):
        report_date = _day(date, datetime.now(LOCAL_TZ).date())
        detail = reader().unit_day(report_date, _unit(unit), can_see_unpublished=user.can_rerun)
        task = await _load_task(request, report_date, unit)
        return render("unit_day.html.j2", d=detail, user=user, task=task, fragment=fragment, ui=_ui_base())

    @app.get("/board/punctuality", response_class=HTMLResponse)
    def punctuality(user: UserDep, first: str | None = None, last: str | None = None):
        first_day, last_day, _ = _range(first, last)
        rows = reader().punctuality(first_day, last_day)
        query = urlencode({"first": first_day.isoformat(), "last": last_day.isoformat()})
        return render("punctuality.html.j2", rows=rows, first=first_day, last=last_day, query=query, user=user)

    @app.get("/board/punctuality.csv")
    def punctuality_csv(user: UserDep, first: str | None = None, last: str | None = None):
        from closeout.board.export import punctuality_csv as to_csv

        first_day, last_day, _ = _range(first, last)
        body = to_csv(reader().punctuality(first_day, last_day))
        name = f"punctuality-{first_day.isoformat()}-{last_day.isoformat()}.csv"
        return Response(
            body.encode("utf-8") if isinstance(body, str) else body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @app.get("/board/files/{report_date}/{unit}/{sha256}")
    def archived_file(user: OpsDep, report_date: str, unit: str, sha256: str):
        day = _day(report_date, datetime.now(LOCAL_TZ).date())
        if not _SHA256.fullmatch(sha256.lower()):
            raise HTTPException(404, "文件哈希应为 64 位十六进制 / a file's SHA-256 is 64 hex digits")
        files = {f["sha256"]: f for f in reader().unit_day(day, _unit(unit))["files"]}
        sha256 = sha256.lower()
        if sha256 not in files or not files[sha256]["archived_path"]:
            raise HTTPException(404, "没有这个文件 / no such file")
        archive = load_settings().archive_root.resolve()
        path = Path(files[sha256]["archived_path"]).resolve()
        if not path.is_relative_to(archive) or not path.is_file():
            raise HTTPException(404, "归档中找不到该文件 / the file is not in the archive")
        return FileResponse(path, filename=files[sha256]["file_name"])

    @app.post("/board/rerun")
    async def rerun(user: OpsDep, request: Request):
        _same_origin(request)
        report_date, unit = _rerun_target(await request.body())
        task = await _load_task(request, report_date, unit)
        if task is None:
            raise HTTPException(409, f"{report_date} 没有找到 {unit} 的入库任务 / no load task for this unit-day")
        response = await _airflow_api(
            request,
            "POST",
            f"/dags/{DAG_ID}/clearTaskInstances",
            json={
                "dry_run": False,
                "dag_run_id": task["run_id"],
                "task_ids": [[LOAD_TASK, task["map_index"]]],
                "include_downstream": True,
                "include_upstream": False,
                "only_failed": False,
                "reset_dag_runs": True,
            },
        )
        if response.status_code != 200:
            raise HTTPException(
                response.status_code, f"Airflow 拒绝了清除请求 / Airflow refused: {response.text[:300]}"
            )
        cleared = [
            {"task_id": ti["task_id"], "map_index": ti.get("map_index", -1)}
            for ti in response.json().get("task_instances", [])
        ]
        return {"run_id": task["run_id"], "map_index": task["map_index"], "cleared": cleared, "by": user.name}

    return app


def _rerun_target(body: bytes) -> tuple[date, str]:
    """The re-run's {"date": "YYYY-MM-DD", "unit": "<code>"}: 422 unless a JSON object with both as text (and a
    date in range), 404 for a unit the registry does not list."""
    if len(body) > RERUN_BODY_MAX:
        raise HTTPException(413, "请求体过大 / the body is too large")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        payload = None
    if not isinstance(payload, dict):
        raise HTTPException(
            422, '请求体应为 JSON 对象 {"date", "unit"} / the body must be a JSON object {"date", "unit"}'
        )
    day, unit = payload.get("date"), payload.get("unit")
    if not isinstance(day, str) or not day:
        raise HTTPException(422, "需要日期 date，格式 YYYY-MM-DD / a date is needed, as YYYY-MM-DD")
    if not isinstance(unit, str) or not unit:
        raise HTTPException(422, "需要单位代码 unit / a unit code is needed")
    return _day(day, EARLIEST_DAY), _unit(unit)


def _same_origin(request: Request) -> None:
    """Cookies travel with cross-site requests: a state-changing call must carry the board's header (a cross-site
    form cannot set it) and, when the browser names its Origin, come from the configured UI's origin. The Host
    header is the caller's to choose, so it decides nothing."""
    origin = request.headers.get("origin")
    if request.headers.get("x-closeout-board") != "1" or (
        origin is not None and origin.rstrip("/").lower() != _ui_origin()
    ):
        raise HTTPException(403, "跨站请求被拒绝 / cross-site request refused")


def _ui_base() -> str:
    """The Airflow UI's address as configured (CLOSEOUT_UI_BASE_URL), for every absolute link the board writes."""
    return load_settings().ui_base_url.rstrip("/")


def _ui_origin() -> str:
    """scheme://host[:port] of the configured UI address, lower-cased."""
    parts = urlsplit(_ui_base())
    return f"{parts.scheme}://{parts.netloc}".lower()


async def _airflow_api(request: Request, method: str, path: str, **kwargs):
    """Airflow's REST API, in process and as the caller: their token goes with the call, so Airflow decides."""
    import httpx
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.main import app as airflow_app

    token = request.headers.get("authorization", "").partition(" ")[2] or request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    transport = httpx.ASGITransport(app=airflow_app)
    async with httpx.AsyncClient(transport=transport, base_url=_ui_origin(), timeout=30) as client:
        return await client.request(method, f"/api/v2{path}", headers={"Authorization": f"Bearer {token}"}, **kwargs)


async def _load_task(request: Request, report_date: date, unit_code: str) -> dict | None:
    """The unit's mapped load task in the latest run that closed out `report_date`, read through the REST API as
    the caller: {run_id, map_index, state, url}, or None when no run has loaded that unit."""
    from closeout.core.clock import report_date_for

    around = datetime.combine(report_date, datetime.min.time(), LOCAL_TZ)
    runs = await _airflow_api(
        request,
        "GET",
        f"/dags/{DAG_ID}/dagRuns",
        params={
            "run_after_gte": (around - timedelta(days=2)).isoformat(),
            "order_by": "-run_after",
            "limit": 100,
        },
    )
    if runs.status_code != 200:
        return None
    unit_name = _unit_name(unit_code)
    for run in runs.json().get("dag_runs", []):
        conf = run.get("conf") or {}
        logical = run.get("logical_date")
        day = (
            conf.get("report_date")
            or report_date_for(
                datetime.fromisoformat(logical) if logical else None, datetime.fromisoformat(run["run_after"])
            ).isoformat()
        )
        if day != report_date.isoformat():
            continue
        tis = await _airflow_api(
            request, "GET", f"/dags/{DAG_ID}/dagRuns/{quote(run['dag_run_id'], safe='')}/taskInstances",
            params={"task_id": LOAD_TASK, "limit": 1000},
        )  # fmt: skip
        for ti in tis.json().get("task_instances", []) if tis.status_code == 200 else []:
            if ti["task_id"] == LOAD_TASK and unit_name in (ti.get("rendered_map_index") or "").split("、"):
                run_id, index = ti["dag_run_id"], ti["map_index"]
                path = f"/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/tasks/{LOAD_TASK}/mapped/{index}"
                return {"run_id": run_id, "map_index": index, "state": ti.get("state"), "url": path}
    return None


def _unit_name(code: str) -> str:
    try:
        return reader().registry.get(code).name
    except KeyError:
        return ""


def group_choices() -> list[tuple[str, str]]:
    """The registry's groups of several units, for the filter and the roll-up rows; none at city scale, where
    each county loads alone."""
    registry = reader().registry
    return [(g.key, registry.group_name(g.key)) for g in registry.groups() if len(g.codes) > 1]
