"""docker-compose.yaml, the Dockerfile and .env.example, checked without a Docker engine (none on these machines):
the compose file, interpolated from .env.example as `docker compose config` would, must validate against the
Compose Specification's JSON Schema (tests/schemas/), and carry the production shape the README promises."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import tomllib

import pytest
import yaml
from conftest import PG_ADMIN_URL, ROOT
from jsonschema import Draft7Validator

COMPOSE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA = json.loads((ROOT / "tests" / "schemas" / "compose-spec.json").read_text())
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)
REQUIRED_SECRETS = (
    "POSTGRES_PASSWORD",
    "CLOSEOUT_DB_PASSWORD",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "_AIRFLOW_WWW_USER_PASSWORD",
    "AIRFLOW__CORE__FERNET_KEY",
)
_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>\w+))")


class MissingVariable(Exception):
    pass


def env_example() -> dict[str, str]:
    """The settings a newcomer's .env holds after `cp .env.example .env` (commented lines are unset)."""
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def interpolate(node, env: dict[str, str]):
    """Compose's variable substitution: ${X}, ${X:-default}, ${X-default}, ${X:?error}, ${X?error}, $$."""

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        value, op, arg = env.get(name), match.group("op"), match.group("arg")
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-") and unset:
            return arg
        if op in (":?", "?") and unset:
            raise MissingVariable(f"{name}: {arg}")
        return value or ""

    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, env) for value in node]
    if isinstance(node, str):
        return _VARIABLE.sub(substitute, node)
    return node


def compose_file(**overrides: str) -> dict:
    raw = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    env = {**env_example(), **{name: f"test-{name.lower()}" for name in REQUIRED_SECRETS}, **overrides}
    return _coerce_numbers(interpolate(raw, env))


def _coerce_numbers(node):
    """What compose does after interpolation: a field like replicas: "${N:-2}" becomes the integer 2."""
    if isinstance(node, dict):
        return {k: (int(v) if k == "replicas" and isinstance(v, str) else _coerce_numbers(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_coerce_numbers(v) for v in node]
    return node


def schema_errors(document: dict) -> list[str]:
    validator = Draft7Validator(SCHEMA)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


# ---- the compose file against the specification --------------------------------------------------------------


def test_compose_file_validates_against_the_compose_specification():
    Draft7Validator.check_schema(SCHEMA)
    assert schema_errors(compose_file()) == []


def test_the_validation_rejects_a_broken_compose_file():
    """The check above can fail: a misspelt key, a wrong type and an unknown condition are all caught."""
    broken = copy.deepcopy(compose_file())
    broken["services"]["airflow-worker"]["comand"] = "celery worker"
    broken["services"]["redis"]["healthcheck"] = "pg_isready"
    broken["services"]["airflow-apiserver"]["depends_on"]["airflow-init"]["condition"] = "service_done"
    errors = "\n".join(schema_errors(broken))
    assert "comand" in errors and "pg_isready" in errors and "service_done" in errors


def test_compose_refuses_to_start_without_the_secrets():
    for name in REQUIRED_SECRETS:
        with pytest.raises(MissingVariable, match=name):
            compose_file(**{name: ""})


# ---- the production shape ------------------------------------------------------------------------------------


def test_compose_has_the_production_services_on_the_closeout_image():
    compose = compose_file()
    services = compose["services"]
    assert set(services) >= {"postgres", "redis", "mailpit", "airflow-init", *AIRFLOW_SERVICES}
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        service = services[name]
        env = service["environment"]
        assert service["build"] == "." and service["image"], name
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("fab_auth_manager.FabAuthManager")
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres/airflow")
        assert env["CLOSEOUT_DB_URL"].endswith("@postgres/closeout"), "the reporting store is its own database"
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert (
            env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] == "closeout.orchestration.worker.CELERY_CONFIG"
        )  # warm workers
        mounts = {volume.split(":")[1] for volume in service["volumes"]}
        assert {env["CLOSEOUT_INBOX"], env["CLOSEOUT_ARCHIVE"]} <= mounts, "inbox and data shared by every worker"
        assert env["CLOSEOUT_INCLUDE"] == "/opt/closeout/include"
    for name in AIRFLOW_SERVICES:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in services[name]
    assert services["airflow-worker"]["deploy"]["replicas"] >= 2
    assert services["airflow-worker"]["deploy"]["resources"]["limits"]["memory"], "a runaway load can't take the host"
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    assert "scripts/airflow-init.sh" in " ".join(services["airflow-init"]["command"])
    assert (
        services["mailpit"]["ports"]
        and "mailpit:1025" in services["airflow-worker"]["environment"]["AIRFLOW_CONN_SMTP_DEFAULT"]
    )
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in COMPOSE.read_text(encoding="utf-8")


def test_every_setting_is_documented_in_env_example():
    documented = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(encoding="utf-8"), re.M))
    in_compose = {
        m.group("name") or m.group("bare") for m in _VARIABLE.finditer(COMPOSE.read_text()) if m.group(0) != "$$"
    }
    in_compose -= {"HOSTNAME"}  # the container's own, escaped as $${HOSTNAME}
    read_by_code = {
        name
        for module in ("core/settings.py", "core/limits.py")
        for name in re.findall(r"\"(CLOSEOUT_[A-Z_]+)\"", (ROOT / "src" / "closeout" / module).read_text())
    }
    read_by_init = set(re.findall(r"\$\{?(CLOSEOUT_[A-Z_]+)", (ROOT / "scripts" / "airflow-init.sh").read_text()))
    assert read_by_code and in_compose
    assert in_compose - documented == set()
    assert read_by_code - documented == set()
    assert read_by_init - documented == set()
    assert "AIRFLOW_CONN_SMTP_DEFAULT" in documented


def test_dockerfile_builds_on_the_official_image_with_the_locked_dependencies_and_cjk_fonts():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    airflow_pin = next(
        d for d in project["dependencies"] if d.startswith("apache-airflow[") or d.startswith("apache-airflow==")
    )
    version = airflow_pin.split("==")[1]
    python = project["requires-python"].strip("=.*")
    assert f"FROM apache/airflow:{version}-python{python}" in dockerfile
    assert "uv export --frozen" in dockerfile and "uv.lock" in dockerfile
    assert "fonts-noto-cjk" in dockerfile
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in dockerfile


def test_the_load_pool_the_dag_uses_is_the_one_airflow_init_creates():
    dag_source = (ROOT / "dags" / "daily_closeout.py").read_text(encoding="utf-8")
    pool = re.search(r'LOAD_POOL = "(\w+)"', dag_source).group(1)
    assert f"airflow pools set {pool} " in (ROOT / "scripts" / "airflow-init.sh").read_text(encoding="utf-8")


@pytest.mark.services
def test_postgres_first_start_script_creates_the_store_database_and_role():
    """Run include/sql/docker-init/ against the machine's PostgreSQL, as the postgres image's entrypoint does."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = 'closeout'")).first()
        exists = exists or conn.execute(text("SELECT 1 FROM pg_database WHERE datname = 'closeout'")).first()
    if exists:
        pytest.fail("a role or database 'closeout' already exists on the test server; drop it to run this test")
    url = admin.url
    env = {"POSTGRES_USER": url.username or "postgres", "POSTGRES_DB": url.database, "CLOSEOUT_DB_PASSWORD": "it's-secret",
           "PGHOST": url.host or "127.0.0.1", "PGPORT": str(url.port or 5432), "PGPASSWORD": url.password or "",
           "PATH": "/usr/bin:/bin"}  # fmt: skip
    try:
        subprocess.run(["bash", str(ROOT / "include/sql/docker-init/10-closeout-store.sh")], env=env, check=True)
        with admin.connect() as conn:
            owner = conn.execute(
                text("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'closeout'")
            ).scalar_one()
        assert owner == "closeout"
    finally:
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS closeout WITH (FORCE)"))
            conn.execute(text("DROP ROLE IF EXISTS closeout"))
        admin.dispose()
