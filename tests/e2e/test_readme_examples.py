"""Every HTTP and WebSocket example of our README and of the seed README runs as printed.

The examples are read out of the two files (``tests/e2e/readme_examples.py`` parses them) and run,
in order, against a live platform: daphne, a Celery worker and the scheduler, all real
processes on the test database. Each request gets the token header (the seed README's
examples have none), ``$API`` and the seed's ``http://localhost:8000`` are the live server,
``$TOKEN`` is a staff user's token (``make run``'s development admin is staff too), the seed's
``{job_id}`` is the job its quick start submitted, and the seed's placeholder parents
(``"data_fetch_job_id"``) become real ``data_processing`` jobs submitted for them. A
``sleep`` waits until the jobs submitted so far have finished (a reader's pause, without the
race). Every request must answer 2xx, every WebSocket URL must upgrade, and every job an
example submitted must end as the example means: completed, cancelled where an example
cancels it, failed for ``fail``.

The seed README's quick start and dependency example answered 400 before ``send_email``'s
``body`` became optional and ``report_generation`` took ``report_type``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from jobs.models import Job, JobStatus
from tests.e2e import readme_examples as examples
from tests.harness import ROOT, send, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

OUR_README = ROOT / "README.md"
#: A verbatim copy of /work/shared/seed/draconic-README.md (DRACONIC_SEED_README to use another).
SEED_README = Path(os.environ.get("DRACONIC_SEED_README", ROOT / "docs" / "seed-README.md"))
#: The hosts the two READMEs print, standing for the server under test.
PRINTED_BASES = re.compile(r"(?:http|ws)://(?:localhost|127\.0\.0\.1):8000")
PLACEHOLDER_ID = re.compile(r"\{job_id\}|\{id\}|<job_id>|<id>")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Commands the examples contain that this test does not run, and why: building, installing,
#: starting, and the seed's FastAPI-era development setup (uvicorn, pip, pytest in docker).
# draconic: the client's command, whose README lines tests/e2e/test_sdk_docs.py runs.
NOT_HTTP = {
    *("make", "docker", "docker-compose", "git", "cd", "cat", "pip", "python", "uvicorn"),
    "draconic",
}
FIRST_JOB_TYPE = "## Write your first job type"
TERMINAL = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
#: A stand-in for a parent the seed README names by placeholder.
STAND_IN_PARENT = {"type": "data_processing", "payload": {"data": [3, 1, 4, 1, 5]}}


class Runner:
    """Runs the steps of the READMEs against one live server, remembering what they made."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        self.variables = {"API": base, "TOKEN": token}
        self.jobs: dict[str, str] = {}  # id -> the example that submitted it
        self.cancelled: set[str] = set()
        self.last_job = ""
        self.ran: list[str] = []
        self.not_run: list[str] = []

    def expand(self, text: str) -> str:
        def variable(match: re.Match[str]) -> str:
            name = match[1] or match[2]
            assert name in self.variables, f"${name} is not set before it is used: {text!r}"
            return self.variables[name]

        text = re.sub(r"\$\{(\w+)\}|\$(\w+)", variable, text)
        text = PRINTED_BASES.sub(self.base.replace("http://", "{scheme}://"), text)
        text = text.replace("{scheme}://", "ws://" if text.startswith("ws") else "http://")
        return PLACEHOLDER_ID.sub(lambda _: self.last_job, text)

    def run(self, step: examples.Step) -> None:
        if isinstance(step, examples.Other):
            self.not_run.append(step.command)
        elif isinstance(step, examples.Export):
            if step.name not in {"API", "TOKEN"}:  # those two are "the one make run printed"
                self.variables[step.name] = self.expand(step.value)
        elif isinstance(step, examples.Sleep):
            self.settle()
        elif isinstance(step, examples.WebSocket):
            status = websocket_handshake(self.expand(step.url), self.token)
            assert status == "HTTP/1.1 101 Switching Protocols", f"{step.source}\n-> {status}"
            self.ran.append(step.source)
        else:
            self.request(step)

    def request(self, step: examples.Request) -> None:
        body = step.body
        if step.job is not None:  # a JSON job: its placeholder parents become real jobs
            body = json.dumps({**step.job, "depends_on": self.parents(step.job)})
        url = self.expand(step.url)
        headers = {name: self.expand(value) for name, value in step.headers.items()}
        headers.setdefault("Authorization", f"Token {self.token}")
        status, answer = http(step.method, url, headers, body and self.expand(body))
        assert 200 <= status < 300, f"{step.source}\n-> {status} {answer}"
        self.ran.append(step.source)
        path = urlsplit(url).path
        if step.method == "POST" and path in {"/jobs/", "/jobs/batch/"}:
            for job in answer.get("jobs", [answer]):
                self.jobs[job["id"]] = step.source
                self.last_job = job["id"]
        if step.method == "PATCH" and path.endswith("/cancel"):
            self.cancelled.add(path.split("/")[2])
        if step.capture:
            name, field = step.capture
            self.variables[name] = str(answer[field])

    def parents(self, job: dict[str, Any]) -> list[str]:
        ids = []
        for parent in job.get("depends_on", []):
            if not UUID.fullmatch(str(parent)):
                headers = {"Authorization": f"Token {self.token}"}
                status, made = http("POST", f"{self.base}/jobs/", headers, STAND_IN_PARENT)
                assert status == 201, made
                parent = made["id"]
                self.jobs[parent] = f"stand-in for {job['depends_on']}"
            ids.append(parent)
        return ids

    def settle(self) -> None:
        def finished() -> bool:
            return not Job.objects.filter(id__in=self.jobs).exclude(status__in=TERMINAL).exists()

        wait_until(finished, timeout=180, interval=0.2, message="the examples' jobs to finish")


def http(
    method: str, url: str, headers: dict[str, str], body: str | dict[str, Any] | None
) -> tuple[int, Any]:
    data = (json.dumps(body) if isinstance(body, dict) else body or "").encode() or None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    if isinstance(body, dict):
        request.add_header("Content-Type", "application/json")
    return send(request)


def websocket_handshake(url: str, token: str) -> str:
    """The status line the server answers a WebSocket upgrade of ``url`` with."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(
            (
                f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Authorization: Token {token}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            ).encode()
        )
        return conn.recv(4096).decode(errors="replace").split("\r\n", 1)[0]


@pytest.fixture
def live(platform: Any, settings: Any, tmp_path: Path) -> Runner:
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")  # the processes inherit these
    settings.DRACONIC_EXPORT_DIR = tmp_path / "exports"
    user = get_user_model().objects.create_user("admin", is_staff=True, is_superuser=True)
    platform.start_worker(EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend")
    platform.start_scheduler()
    base = platform.start_web()
    token = Token.objects.create(user=user).key
    # The READMEs' examples start once the platform is up ("wait for healthy"): a worker has
    # beaten and the scheduler has built the ledger.
    auth = {"Authorization": f"Token {token}"}
    wait_until(
        lambda: http("GET", f"{base}/admin/health", auth, None)[0] == 200,
        timeout=180,
        interval=0.3,
        message=f"the platform to be healthy\n{platform.logs()}",
    )
    return Runner(base, token)


def test_the_examples_of_both_readmes_run_as_printed(live, platform):
    # The first-job-type section needs its own type loaded: test_first_job_type.py runs it.
    ours = examples.steps(examples.without_section(OUR_README.read_text(), FIRST_JOB_TYPE))
    seed = examples.steps(SEED_README.read_text())

    for step in [*seed, *ours]:
        try:
            live.run(step)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{platform.logs()}") from None
    live.settle()

    # Not vacuous: every request and WebSocket of both files ran (counted when this test was
    # written: a new example raises the count, a parser that finds fewer fails).
    sends = (examples.Request, examples.WebSocket)
    counts = [len([s for s in steps if isinstance(s, sends)]) for steps in (seed, ours)]
    assert (counts, len(live.ran)) == ([9, 36], 45)
    assert set(live.not_run) <= NOT_HTTP, live.not_run
    jobs = {str(job.id): job for job in Job.objects.filter(id__in=live.jobs)}
    assert len(jobs) == len(live.jobs) >= 10
    for job_id, job in jobs.items():
        expected = JobStatus.COMPLETED
        if job.type == "fail":
            expected = JobStatus.FAILED
        elif job_id in live.cancelled:
            expected = JobStatus.CANCELLED
        assert job.status == expected, f"{live.jobs[job_id]}\n-> {job.status}: {job.error}"
    [report] = [j for j in jobs.values() if j.payload.get("report_type") == "daily_summary"]
    assert (report.result["title"], len(report.result["sections"])) == ("Daily summary", 2)
    emails = [j for j in jobs.values() if j.type == "send_email"]
    assert sorted("body" in j.payload for j in emails) == [False, True]  # seed's, and ours
    assert all(j.result["recipients"] == 1 for j in emails)


# --- the parser, without a platform -------------------------------------------------------


def test_the_parser_reads_a_captured_multi_line_curl_and_refuses_what_it_does_not_know():
    readme = """
```bash
JOB=$(curl -s -X POST $API/jobs/ -H "Authorization: Token $TOKEN" \\
  -d '{"type": "noop",
       "payload": {}}' | jq -r .id)   # a comment
sleep 2
make run
```
"""
    request, pause, other = examples.steps(readme)

    assert isinstance(request, examples.Request)
    assert (request.method, request.url, request.capture) == ("POST", "$API/jobs/", ("JOB", "id"))
    assert json.loads(request.body or "") == {"type": "noop", "payload": {}}
    assert request.headers == {"Authorization": "Token $TOKEN"}
    assert (pause, other) == (examples.Sleep(2, "sleep 2"), examples.Other("make", "make run"))
    with pytest.raises(ValueError, match="not supported"):
        examples.steps("```bash\ncurl -k https://example.com\n```\n")
    with pytest.raises(ValueError, match=r"jq -r \.field"):
        examples.steps("```bash\nX=$(curl $API/jobs/ | jq .id)\n```\n")
