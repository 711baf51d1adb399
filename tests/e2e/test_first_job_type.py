"""The README's "Write your first job type", followed as written against real processes.

The test reads the section's code blocks out of README.md: it writes the module block to the
file its first line names, starts the web server, a worker and the scheduler with the
environment the ``make run`` line sets (the printed directory standing for a temporary one),
runs the section's curl commands and checks each answer against the comment printed beside
it, runs the client block as a program and compares what it prints, and checks the
``/job-types/`` listing. The ``pyproject.toml`` block's entry point is installed as a tiny
distribution and loaded by a new process without ``DRACONIC_HANDLER_MODULES``."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from jobs.models import Job, JobStatus
from tests.distributions import start_django, write_distribution
from tests.e2e import readme_examples as examples
from tests.harness import ROOT, SDK_SRC, Supervisor, process_env, send, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

HEADING = "## Write your first job type"
MODULE_LINE = re.compile(r"^# (?P<file>\w+\.py), in (?P<dir>\S+)")
PRINTED_ANSWER = re.compile(r"^# (?P<status>\d{3}) (?P<body>\{.*\})$", re.M)


def section_blocks() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for lang, body in examples.blocks(examples.section((ROOT / "README.md").read_text(), HEADING)):
        found.setdefault(lang, []).append(body)
    return found


BLOCKS = section_blocks()


def write_module(into: Path) -> tuple[str, str]:
    """Write the section's module where its first line says (``into`` standing for the
    printed directory); the file and the printed directory."""
    module = BLOCKS["python"][0]
    named = MODULE_LINE.match(module)
    assert named, module.splitlines()[0]
    into.mkdir(parents=True, exist_ok=True)
    (into / named["file"]).write_text(module)
    return named["file"], named["dir"]


def run_line_env(printed_dir: str, real_dir: Path) -> dict[str, str]:
    """The variables the section's ``... make run`` line sets, for the real directory."""
    [line] = [c for c in examples.shell_commands(BLOCKS["bash"][0]) if c.endswith("make run")]
    words = shlex.split(line)
    assert words[-2:] == ["make", "run"]
    env = dict(word.split("=", 1) for word in words[:-2])
    assert set(env) == {"PYTHONPATH", "DRACONIC_HANDLER_MODULES"}
    env["PYTHONPATH"] = env["PYTHONPATH"].replace(printed_dir, str(real_dir))
    return env


def call(
    base: str, token: str, step: examples.Request, variables: dict[str, str]
) -> tuple[int, Any]:
    def expand(text: str) -> str:
        return re.sub(r"\$(\w+)", lambda m: variables[m[1]], text)

    headers = {k: expand(v) for k, v in step.headers.items()}
    body = expand(step.body).encode() if step.body is not None else None
    url = expand(step.url).replace("$API", base)
    request = urllib.request.Request(url, body, headers, method=step.method)  # noqa: S310
    return send(request)


@pytest.fixture
def platform_with_acme(platform: Supervisor, tmp_path: Path) -> tuple[str, str]:
    """daphne, a worker and the scheduler, started with the section's module and setting."""
    _, printed_dir = write_module(tmp_path / "acme")
    env = run_line_env(printed_dir, tmp_path / "acme")
    platform.start_worker(**env)
    platform.start_scheduler(**env)
    base = platform.start_web(**env)
    user = get_user_model().objects.create_user("ada")
    return base, Token.objects.create(user=user).key


def test_the_first_job_type_section_works_as_written(platform_with_acme, platform) -> None:
    base, token = platform_with_acme
    variables = {"API": base, "TOKEN": token}
    submit, read, refused = [
        s
        for s in examples.steps("```bash\n" + BLOCKS["bash"][1] + "```\n")
        if isinstance(s, examples.Request)
    ]

    status, job = call(base, token, submit, variables)
    assert status == 201, f"{job}\n{platform.logs()}"
    variables["JOB"] = job["id"]
    assert job["priority"] == "high" and job["max_attempts"] == 5  # the type's defaults
    wait_until(
        lambda: Job.objects.get(id=job["id"]).status == JobStatus.COMPLETED,
        timeout=120,
        message=f"acme.greet to complete\n{platform.logs()}",
    )
    status, answer = call(base, token, read, variables)
    result = re.search(r'# "result": (\{.*\})$', read.source)
    assert result and status == 200
    assert answer["result"] == json.loads(result[1])

    status, answer = call(base, token, refused, variables)
    [(printed_status, printed_body)] = PRINTED_ANSWER.findall(BLOCKS["bash"][1])
    assert (status, answer) == (int(printed_status), json.loads(printed_body))

    # The client block, run as a program with the client's settings.
    done = subprocess.run(
        [sys.executable, "-c", BLOCKS["python"][1]],
        env={
            **process_env(),
            "DRACONIC_URL": base,
            "DRACONIC_TOKEN": token,
            "PYTHONPATH": str(SDK_SRC),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    printed = re.findall(r"^\s*print\(.*\)\s+# (.*)$", BLOCKS["python"][1], re.M)
    assert len(printed) == 2 and done.stdout.splitlines() == printed

    # GET /job-types/, as the section's last command sends it.
    [listing] = examples.steps("```bash\n" + BLOCKS["bash"][2] + "```\n")
    assert isinstance(listing, examples.Request)

    def acme_served() -> Any:
        status, types = call(base, token, listing, variables)
        assert status == 200, types
        [greet] = [t for t in types if t["name"] == "acme.greet"]
        return greet if greet["served"] else None

    greet = wait_until(acme_served, timeout=60, message="a live worker to serve acme.greet")
    assert greet["pool"] == "built-in"
    assert greet["description"] == "Greets someone by name."
    assert greet["payload_schema"]["required"] == ["name"]
    assert greet["defaults"] == {"priority": "high", "max_attempts": 5}
    assert greet["retry"]["give_up_on"] == ["acme_jobs.NoSuchPerson"]


def test_a_give_up_on_exception_fails_the_first_job_type_at_once(
    platform_with_acme, platform
) -> None:
    base, token = platform_with_acme
    body = json.dumps({"type": "acme.greet", "payload": {"name": "nobody"}}).encode()
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(f"{base}/jobs/", body, headers, method="POST")  # noqa: S310
    status, job = send(request)
    assert status == 201, job
    failed = wait_until(
        lambda: Job.objects.filter(id=job["id"], status=JobStatus.FAILED).first(),
        timeout=120,
        message=f"acme.greet(nobody) to fail\n{platform.logs()}",
    )
    assert (failed.attempt, failed.max_attempts) == (1, 5)
    assert failed.error.startswith("NoSuchPerson")


def test_the_sections_entry_point_loads_the_type_without_a_setting(tmp_path: Path) -> None:
    file, _ = write_module(tmp_path / "site")
    declared = tomllib.loads(BLOCKS["toml"][0])["project"]["entry-points"]["draconic.job_types"]
    points = "[draconic.job_types]\n" + "".join(f"{k} = {v}\n" for k, v in declared.items())
    write_distribution(tmp_path / "site", "acme", "1.0", points, {})
    done = start_django(tmp_path / "site", DRACONIC_HANDLER_MODULES="")
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "acme.greet" in loaded["types"]
    assert loaded["entry_points"] == [f"acme 1.0: acme = {file.removesuffix('.py')}"]
