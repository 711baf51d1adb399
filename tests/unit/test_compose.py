"""The deployment files say only true things about this repository.

There is no Docker engine here, so ``docker compose`` cannot run; instead every command that
docker-compose.yml, the Dockerfile and the Procfile would run is checked against the code:
management commands exist and accept their arguments, the Celery app imports and consumes
exactly the priority queues, WSGI/ASGI entry points import. Every environment variable given
to our image is one settings.py reads, and .env.example lists exactly those variables.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands, load_command_class

from draconic.celery import PRIORITY_QUEUES
from tests.harness import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
SETTINGS_SOURCE = (ROOT / "draconic" / "settings.py").read_text()
#: Variables settings.py reads through the typed readers of draconic/env.py.
SETTINGS_VARS = set(re.findall(r"\benv_[a-z]+\(\s*\"([A-Z][A-Z0-9_]*)\"", SETTINGS_SOURCE))
OUR_SERVICES = sorted(
    name
    for name, svc in SERVICES.items()
    if "build" in svc or svc.get("image", "").startswith("draconic")
)
ONE_SHOT = sorted(name for name in OUR_SERVICES if SERVICES[name].get("restart") == "no")


def _option(argv: list[str], *names: str) -> str | None:
    """The value of ``-Q x`` / ``--port=x`` style options, or None."""
    for index, arg in enumerate(argv):
        for name in names:
            if arg == name and index + 1 < len(argv):
                return argv[index + 1]
            if arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


def _check_manage(args: list[str]) -> None:
    name, rest = args[0], args[1:]
    commands = get_commands()
    assert name in commands, f"`manage.py {name}` is not a management command"
    parser = load_command_class(commands[name], name).create_parser("manage.py", name)
    parser.parse_args(rest)  # exits (SystemExit) on an unknown option


def _check_celery(args: list[str]) -> None:
    app_name = _option(args, "-A", "--app")
    assert app_name == "draconic", f"celery must run the draconic app, not {app_name!r}"
    app = importlib.import_module(app_name).celery_app
    assert app.main == "draconic"
    subcommand = next(a for a in args[2:] if not a.startswith("-"))
    assert subcommand in {"worker", "flower", "inspect", "beat"}, subcommand
    if subcommand == "worker":
        queues = _option(args, "-Q", "--queues")
        assert queues is not None, "a worker must name its queues"
        assert tuple(queues.split(",")) == PRIORITY_QUEUES
        assert {q.name for q in app.conf.task_queues} == set(PRIORITY_QUEUES)
    if subcommand == "flower":
        assert importlib.util.find_spec("flower") is not None


def _check_entry_point(program: str, args: list[str]) -> None:
    assert importlib.util.find_spec(program) is not None, f"{program} is not installed"
    targets = [a for a in args if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", a)]
    assert len(targets) == 1, f"{program} needs one module:attribute, got {args}"
    module, attribute = targets[0].split(":")
    assert callable(getattr(importlib.import_module(module), attribute))


def check_command(argv: list[str]) -> None:
    """Assert that ``argv`` runs something real in this repository."""
    program = Path(argv[0]).name
    if program in {"python", "python3"}:
        assert argv[1] == "manage.py", f"unexpected python invocation {argv}"
        _check_manage(argv[2:])
    elif program == "celery":
        _check_celery(argv[1:])
    elif program in {"gunicorn", "daphne"}:
        _check_entry_point(program, argv[1:])
        expected = (
            "draconic.wsgi:application" if program == "gunicorn" else "draconic.asgi:application"
        )
        assert expected in argv
    else:
        pytest.fail(f"unknown program {program!r} in {argv}")


def _argv(command: str | list[str]) -> list[str]:
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    return argv[1:] if argv and argv[0] == "exec" else argv


@pytest.mark.parametrize("service", OUR_SERVICES)
def test_each_service_of_our_image_runs_a_real_command(service):
    check_command(_argv(SERVICES[service]["command"]))


def test_the_services_are_the_processes_of_the_design():
    programs = {name: _argv(SERVICES[name]["command"])[:4] for name in OUR_SERVICES}
    assert programs["migrate"] == ["python", "manage.py", "migrate", "--noinput"]
    assert programs["api"][:2] == ["gunicorn", "draconic.wsgi:application"]
    assert programs["ws"][0] == "daphne"
    assert programs["worker"] == ["celery", "-A", "draconic", "worker"]
    assert "-E" in SERVICES["worker"]["command"]
    assert programs["scheduler"] == ["python", "manage.py", "scheduler"]
    assert programs["flower"] == ["celery", "-A", "draconic", "flower"]
    assert "--port=5555" in SERVICES["flower"]["command"]
    assert SERVICES["postgres"]["image"] == "postgres:15"
    assert SERVICES["redis"]["image"] == "redis:7"


@pytest.mark.parametrize("service", OUR_SERVICES)
def test_every_variable_given_to_our_image_is_read_by_settings(service):
    environment = SERVICES[service].get("environment", {})
    assert isinstance(environment, dict), "write environment as a mapping"
    unknown = sorted(set(environment) - SETTINGS_VARS)
    assert not unknown, f"{service}: settings.py does not read {unknown}"
    for required in (
        "DATABASE_URL",
        "REDIS_URL",
        "SECRET_KEY",
        "DEBUG",
        "ALLOWED_HOSTS",
        "MAX_CPU_UNITS",
        "MAX_MEMORY_MB",
        "LOG_LEVEL",
    ):
        assert required in environment, f"{service} lacks {required}"
    assert environment["DEBUG"] == "false"


def test_every_interpolated_variable_is_documented_in_env_example():
    interpolated = set(
        re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text())
    )
    assert interpolated, "expected ${VAR} interpolation for deployment-specific values"
    assert interpolated <= _env_example_names()


@pytest.mark.parametrize("service", sorted(set(SERVICES) - set(ONE_SHOT)))
def test_each_long_running_service_has_a_health_check(service):
    test = SERVICES[service].get("healthcheck", {}).get("test")
    assert test, f"{service} has no health check"
    if (
        service in OUR_SERVICES
        and test[0] == "CMD"
        and test[1] == "python"
        and test[2] == "manage.py"
    ):
        check_command(test[1:])
    if test[0] == "CMD-SHELL" and "celery" in test[1]:
        check_command(shlex.split(test[1].replace("$$", "$")))


def test_the_api_health_check_calls_healthz():
    assert "/healthz" in " ".join(SERVICES["api"]["healthcheck"]["test"])


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_dependencies_wait_for_health_or_completion(service):
    for target, spec in SERVICES[service].get("depends_on", {}).items():
        assert target in SERVICES, f"{service} depends on unknown {target}"
        condition = spec["condition"]
        if condition == "service_completed_successfully":
            assert target in ONE_SHOT, f"{target} is not a one-shot service"
        else:
            assert condition == "service_healthy", f"{service} -> {target}: {condition}"
            assert SERVICES[target].get("healthcheck"), f"{target} has no health check"


def test_platform_services_start_after_the_database_is_migrated():
    for name in set(OUR_SERVICES) - set(ONE_SHOT):
        depends = SERVICES[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name


def _nginx_blocks(text: str) -> dict[str, str]:
    """``location``/``upstream`` name -> body (the config has no nested blocks inside them)."""
    return {
        f"{kind} {name.strip()}": body
        for kind, name, body in re.findall(r"(location|upstream)\s+([^{]+)\{([^}]*)\}", text)
    }


def test_the_proxy_sends_the_websocket_to_daphne_and_the_rest_to_gunicorn():
    proxy = SERVICES["proxy"]
    assert "8000:8000" in proxy["ports"]
    mount = next(v for v in proxy["volumes"] if v.startswith("./deploy/nginx.conf:"))
    blocks = _nginx_blocks((ROOT / mount.split(":")[0]).read_text())
    stream, rest = blocks["location /jobs/stream"], blocks["location /"]
    assert "proxy_http_version 1.1;" in stream
    assert "proxy_set_header Upgrade $http_upgrade;" in stream
    assert re.search(r"proxy_set_header Connection \$connection_upgrade;", stream)
    ws_port = _option(SERVICES["ws"]["command"], "-p", "--port")
    api_port = _option(SERVICES["api"]["command"], "--bind", "-b").rsplit(":", 1)[1]
    for location, service, port in ((stream, "ws", ws_port), (rest, "api", api_port)):
        upstream = re.search(r"proxy_pass http://(\w+);", location).group(1)
        assert f"server {service}:{port};" in blocks[f"upstream {upstream}"]
    assert "5555:5555" in SERVICES["flower"]["ports"]


def test_the_dockerfile_builds_one_non_root_image_serving_wsgi():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert "requirements.txt" in text and "collectstatic" in text
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in {"root", "0"}
    cmd = re.search(r"^CMD (\[.*?\])$", text.replace("\\\n", ""), re.M | re.S)
    check_command(json.loads(cmd.group(1)))


def test_the_image_collects_the_static_files_it_serves():
    """gunicorn serves /static/ itself (WhiteNoise, from STATIC_ROOT): the build must fill
    STATIC_ROOT, after the code is copied in, with production settings (hashed names)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", "")
    runs = re.findall(r"^RUN (.+)$", text, re.M)
    collect = [r for r in runs if "collectstatic" in r]
    assert len(collect) == 1, runs
    argv = shlex.split(collect[0])
    env = dict(a.split("=", 1) for a in argv if re.fullmatch(r"[A-Z_]+=.*", a))
    command = [a for a in argv if not re.fullmatch(r"[A-Z_]+=.*", a)]
    assert env.get("DEBUG") == "false", "collect with the production storage (hashed names)"
    assert set(env) <= SETTINGS_VARS
    assert command[:3] == ["python", "manage.py", "collectstatic"] and "--noinput" in command
    check_command(command)
    copy_code = text.index("COPY --chown=draconic:draconic . .")
    assert copy_code < text.index(collect[0])
    assert "whitenoise.middleware.WhiteNoiseMiddleware" in settings.MIDDLEWARE
    assert str(settings.STATIC_ROOT).endswith("var/static")


SUPERVISE = [".venv/bin/python", "-m", "draconic.supervise"]


def _procfile() -> dict[str, list[str]]:
    """Each Procfile line's command, as its supervisor runs it."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    entries = [line.split(":", 1) for line in lines if line.strip() and not line.startswith("#")]
    commands = {}
    for name, command in entries:
        argv = _argv(command.strip())
        assert argv[:3] == SUPERVISE, f"{name} must run under draconic.supervise"
        assert argv[3] == name.strip(), argv
        commands[name.strip()] = argv[argv.index("--") + 1 :]
    return commands


def test_the_procfile_runs_real_commands_of_this_repo_each_under_its_supervisor():
    procfile = _procfile()
    assert set(procfile) == {"web", "worker", "scheduler", "flower"}
    for name, argv in procfile.items():
        check_command(argv)
        assert argv[0].startswith(".venv/bin/"), f"{name} must use the project's virtualenv"


def _env_example_names() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    names = re.findall(r"^#?([A-Z][A-Z0-9_]*)=", text, re.M)
    assert len(names) == len(set(names)), "a variable is listed twice in .env.example"
    return set(names)


def test_env_example_lists_exactly_the_variables_settings_reads():
    listed = _env_example_names()
    assert sorted(SETTINGS_VARS - listed) == [], "missing from .env.example"
    assert sorted(listed - SETTINGS_VARS) == [], "listed in .env.example but not read"


def test_each_env_example_variable_has_a_comment_above_it():
    lines = (ROOT / ".env.example").read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^#?[A-Z][A-Z0-9_]*=", line):
            assert lines[index - 1].startswith("# "), f"no comment above {line!r}"


def test_docker_compose_stop_gives_the_worker_a_warm_shutdown_longer_than_its_grace():
    """``docker compose stop`` sends stop_signal to the container's first process and SIGKILLs
    after stop_grace_period: celery itself must get SIGTERM (exec form, no shell that would
    swallow it), and the grace the worker gives its jobs must end before Docker's kill."""
    worker = SERVICES["worker"]
    assert isinstance(worker["command"], list) and worker["command"][0] == "celery"
    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"
    docker_grace = float(str(worker["stop_grace_period"]).removesuffix("s"))
    assert docker_grace > settings.DRACONIC_SHUTDOWN_GRACE_SECONDS + 10
    value = COMPOSE["x-draconic"]["environment"]["DRACONIC_SHUTDOWN_GRACE_SECONDS"]
    assert value == "${DRACONIC_SHUTDOWN_GRACE_SECONDS:-30}"
    assert float(value.split(":-")[1].rstrip("}")) == settings.DRACONIC_SHUTDOWN_GRACE_SECONDS


def test_make_runs_web_line_serves_one_port_from_daphne_copies_on_the_supervisors_sockets():
    line = next(
        text
        for name, _, text in (
            ln.partition(":") for ln in (ROOT / "Procfile").read_text().splitlines()
        )
        if name == "web"
    )
    argv = _argv(line.strip())
    options = argv[4 : argv.index("--")]
    assert _option(options, "--listen") == "${BIND_HOST:-127.0.0.1}:$PORT"
    assert _option(options, "--processes") == "${WEB_PROCESSES:-auto}"
    assert _option(_procfile()["web"], "--fd") == "{fd}", "each daphne copy takes its socket"
