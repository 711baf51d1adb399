"""The four seed job types, run in-process against the real database: ``handler.run(ctx)``
does the work (an email in the file backend's directory or on a local SMTP server, a file in
the export storage, statistics, a report) and bad payloads are refused at submit with a 400."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import socket
import socketserver
import statistics
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from jobs.models import ExecutionLog, Job
from jobs.types import HandlerError, JobCancelled, JobContext, get_handler

pytestmark = pytest.mark.django_db

FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
#: This helper's port range (see the shared rules); nothing listens on the last one.
PORTS = range(18500, 18590)
CLOSED_PORT = 18599


def run(job: Job, **context: Any) -> Any:
    """Run ``job``'s handler in this process, the way the worker does."""
    handler = get_handler(job.type)
    assert handler is not None
    return handler.run(JobContext(job, **context))


def messages(job: Job) -> list[str]:
    return list(
        ExecutionLog.objects.filter(job=job, to_status="").values_list("message", flat=True)
    )


# --- send_email -------------------------------------------------------------------------------


@pytest.fixture
def mail_dir(settings: Any, tmp_path: Path) -> Path:
    settings.EMAIL_BACKEND = FILE_BACKEND
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    return tmp_path / "mail"


def sent_messages(directory: Path) -> list[Any]:
    return [
        message_from_bytes(path.read_bytes(), policy=policy.default)
        for path in sorted(directory.glob("*.log"))
    ]


def test_send_email_writes_the_message_through_the_file_backend(job_factory, mail_dir):
    job = job_factory(
        type="send_email",
        payload={
            "to": ["ann@example.com", "ben@example.org"],
            "cc": "carol@example.net",
            "bcc": ["dave@example.com"],
            "from_email": "reports@example.com",
            "subject": "Quarterly numbers",
            "body": "Plain text body.",
            "html_body": "<p>HTML body.</p>",
        },
    )
    result = run(job)

    assert result["recipients"] == 4
    assert result["message_id"].startswith(f"<job-{job.id}@")
    assert result["backend"] == FILE_BACKEND
    [sent] = sent_messages(mail_dir)
    assert sent["Subject"] == "Quarterly numbers"
    assert sent["From"] == "reports@example.com"
    assert sent["To"] == "ann@example.com, ben@example.org"
    assert sent["Cc"] == "carol@example.net"
    assert sent["Bcc"] is None  # never in the headers
    assert sent["Message-ID"] == result["message_id"]
    assert sent.get_body(("plain",)).get_content().strip() == "Plain text body."
    assert sent.get_body(("html",)).get_content().strip() == "<p>HTML body.</p>"
    assert messages(job) == ["sending email", "email sent"]


def test_send_email_uses_the_default_sender_and_accepts_a_single_address(
    job_factory, mail_dir, settings
):
    settings.DEFAULT_FROM_EMAIL = "platform@example.com"
    job = job_factory(
        type="send_email", payload={"to": "ann@example.com", "subject": "Hi", "body": "x"}
    )

    assert run(job)["recipients"] == 1
    [sent] = sent_messages(mail_dir)
    assert sent["From"] == "platform@example.com"
    assert sent["To"] == "ann@example.com"


def test_send_email_refuses_an_invalid_stored_payload_permanently(job_factory, mail_dir):
    job = job_factory(
        type="send_email", payload={"to": "not-an-address", "subject": "x", "body": "y"}
    )

    with pytest.raises(HandlerError) as caught:
        run(job)
    assert caught.value.permanent
    assert not mail_dir.exists() or not list(mail_dir.iterdir())


class FakeSMTPServer(socketserver.ThreadingTCPServer):
    """A local SMTP server standing in for the outside world: it records what it accepts and
    answers with the codes a test sets."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), FakeSMTPSession)
        self.refuse: set[str] = set()
        self.auth_code = 535
        self.data_code = 250
        self.received: list[bytes] = []
        self.envelopes: list[list[str]] = []


class FakeSMTPSession(socketserver.StreamRequestHandler):
    server: FakeSMTPServer

    def reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 fake.example ESMTP")
        recipients: list[str] = []
        while line := self.rfile.readline():
            verb, _, arg = line.decode().strip().partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self.reply("250-fake.example\r\n250-AUTH PLAIN\r\n250 8BITMIME")
            elif verb == "AUTH":
                self.reply(f"{self.server.auth_code} authentication result")
            elif verb == "RCPT":
                address = arg.split(":", 1)[1].strip("<> ")
                if address in self.server.refuse:
                    self.reply("550 5.1.1 no such user")
                else:
                    recipients.append(address)
                    self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go ahead")
                self.server.received.append(self._read_data())
                self.server.envelopes.append(recipients)
                self.reply(f"{self.server.data_code} data result")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:  # MAIL, RSET, NOOP
                self.reply("250 ok")

    def _read_data(self) -> bytes:
        lines = []
        while (line := self.rfile.readline()) not in (b".\r\n", b""):
            lines.append(line)
        return b"".join(lines)


@pytest.fixture
def smtp_server(settings: Any) -> Iterator[FakeSMTPServer]:
    for port in PORTS:
        try:
            server = FakeSMTPServer(port)
            break
        except OSError:
            continue
    else:
        pytest.fail("no free port in this helper's range")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.EMAIL_BACKEND = SMTP_BACKEND
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.server_address[1]
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 30
    yield server
    server.shutdown()
    server.server_close()


EMAIL = {"to": ["ann@example.com", "ben@example.com"], "subject": "Hello", "body": "Body text"}


def test_send_email_delivers_over_smtp(job_factory, smtp_server):
    job = job_factory(type="send_email", payload={**EMAIL, "bcc": "hidden@example.com"})

    result = run(job)

    assert result["recipients"] == 3
    assert smtp_server.envelopes == [["ann@example.com", "ben@example.com", "hidden@example.com"]]
    sent = message_from_bytes(smtp_server.received[0], policy=policy.default)
    assert sent["Subject"] == "Hello"
    assert sent["Message-ID"] == result["message_id"]
    assert "hidden@example.com" not in smtp_server.received[0].decode()


def test_send_email_treats_refused_recipients_as_permanent(job_factory, smtp_server):
    smtp_server.refuse = {"ann@example.com", "ben@example.com"}
    job = job_factory(type="send_email", payload=EMAIL)

    with pytest.raises(HandlerError) as caught:
        run(job)
    assert caught.value.permanent
    assert "ann@example.com" in str(caught.value)


def test_send_email_treats_a_rejected_login_as_permanent(job_factory, smtp_server, settings):
    settings.EMAIL_HOST_USER = "mailer"
    settings.EMAIL_HOST_PASSWORD = "wrong"
    job = job_factory(type="send_email", payload=EMAIL)

    with pytest.raises(HandlerError) as caught:
        run(job)
    assert caught.value.permanent
    assert "login" in str(caught.value)
    assert smtp_server.received == []


@pytest.mark.parametrize(("code", "permanent"), [(451, False), (554, True)])
def test_send_email_retries_a_transient_reply_but_not_a_final_one(
    job_factory, smtp_server, code, permanent
):
    smtp_server.data_code = code
    job = job_factory(type="send_email", payload=EMAIL)

    with pytest.raises(HandlerError) as caught:
        run(job)
    assert caught.value.permanent is permanent


def test_send_email_retries_when_the_server_is_unreachable(job_factory, settings):
    settings.EMAIL_BACKEND = SMTP_BACKEND
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = CLOSED_PORT
    settings.EMAIL_TIMEOUT = 30
    with socket.socket() as probe:  # the test is only meaningful if nothing listens there
        assert probe.connect_ex(("127.0.0.1", CLOSED_PORT)) != 0
    job = job_factory(type="send_email", payload=EMAIL)

    with pytest.raises(HandlerError) as caught:
        run(job)
    assert caught.value.permanent is False
    assert "cannot reach the mail server" in str(caught.value)


# --- data_export ------------------------------------------------------------------------------


@pytest.fixture
def export_dir(settings: Any, tmp_path: Path) -> Path:
    settings.DRACONIC_EXPORT_DIR = tmp_path / "exports"
    return tmp_path / "exports"


ROWS = [
    {"name": "ann", "score": 3.5, "tags": ["a", "b"]},
    {"name": "ben, jr.", "score": 7, "active": True},
    {"name": 'quote "q"\nnewline', "score": None},
]


def test_data_export_writes_rows_as_csv_under_the_owner_directory(job_factory, export_dir, user):
    job = job_factory(
        type="data_export", payload={"format": "csv", "rows": ROWS, "filename": "people"}
    )

    result = run(job)

    path = export_dir / str(user.pk) / "people.csv"
    assert result["path"] == str(path.resolve())
    content = path.read_bytes()
    assert result["bytes"] == len(content)
    assert result["sha256"] == hashlib.sha256(content).hexdigest()
    assert (result["rows"], result["format"], result["filename"]) == (3, "csv", "people.csv")
    assert result["columns"] == ["name", "score", "tags", "active"]
    parsed = list(csv.reader(io.StringIO(content.decode(), newline="")))
    assert parsed == [
        ["name", "score", "tags", "active"],
        ["ann", "3.5", '["a","b"]', ""],
        ["ben, jr.", "7", "", "true"],
        ['quote "q"\nnewline', "", "", ""],
    ]
    assert [p.name for p in path.parent.iterdir()] == ["people.csv"]  # no temporary file left
    assert messages(job) == ["exporting", "export written"]


FORMULAS = [
    {"=cmd": '=HYPERLINK("http://x")', "n": -3, "note": "+1", "at": "@SUM(A1)"},
    {"=cmd": "\tx", "n": 2.5, "note": "-2+3", "at": "plain - text = fine"},
]


def test_data_export_csv_defuses_cells_a_spreadsheet_would_run_as_formulas(
    job_factory, export_dir, user
):
    job = job_factory(type="data_export", payload={"format": "csv", "rows": FORMULAS})

    parsed = list(csv.reader(io.StringIO(Path(run(job)["path"]).read_text(), newline="")))

    assert parsed == [
        ["'=cmd", "n", "note", "at"],
        ['\'=HYPERLINK("http://x")', "-3", "'+1", "'@SUM(A1)"],  # a number stays a number
        ["'\tx", "2.5", "'-2+3", "plain - text = fine"],
    ]


def test_data_export_writes_formulas_verbatim_when_asked_and_json_as_given(
    job_factory, export_dir, user
):
    raw = job_factory(
        type="data_export", payload={"format": "csv", "rows": FORMULAS, "escape_formulas": False}
    )
    as_json = job_factory(type="data_export", payload={"format": "json", "rows": FORMULAS})

    parsed = list(csv.reader(io.StringIO(Path(run(raw)["path"]).read_text(), newline="")))

    assert parsed[0] == ["=cmd", "n", "note", "at"]
    assert parsed[1][0] == '=HYPERLINK("http://x")'
    assert json.loads(Path(run(as_json)["path"]).read_text()) == FORMULAS


def test_data_export_writes_json_with_the_chosen_columns(job_factory, export_dir, user):
    job = job_factory(
        type="data_export", payload={"format": "json", "rows": ROWS, "columns": ["score", "name"]}
    )

    result = run(job)

    path = Path(result["path"])
    assert path == (export_dir / str(user.pk) / f"export-{job.id}.json").resolve()
    assert json.loads(path.read_text()) == [
        {"score": 3.5, "name": "ann"},
        {"score": 7, "name": "ben, jr."},
        {"score": None, "name": 'quote "q"\nnewline'},
    ]
    assert result["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_data_export_replaces_an_earlier_file_of_the_same_name(job_factory, export_dir):
    first = run(
        job_factory(
            type="data_export", payload={"format": "json", "rows": [{"a": 1}], "filename": "x.json"}
        )
    )
    second = run(
        job_factory(
            type="data_export", payload={"format": "json", "rows": [{"a": 2}], "filename": "x.json"}
        )
    )

    assert first["path"] == second["path"]
    assert json.loads(Path(second["path"]).read_text()) == [{"a": 2}]


def test_data_export_query_exports_only_the_owners_jobs(job_factory, export_dir, other_user):
    mine = [job_factory(type="noop"), job_factory(type="fail", priority="high")]
    job_factory(owner=other_user, type="noop")
    job = job_factory(type="data_export", payload={"format": "json", "query": {"source": "jobs"}})

    result = run(job)

    rows = json.loads(Path(result["path"]).read_text())
    assert {r["id"] for r in rows} == {str(j.id) for j in [*mine, job]}
    assert result["columns"] == ["id", "type", "priority", "status", "created_at", "completed_at"]
    fail_row = next(r for r in rows if r["id"] == str(mine[1].id))
    assert fail_row["type"] == "fail"
    assert fail_row["priority"] == "high"
    assert fail_row["status"] == "pending"
    assert fail_row["completed_at"] is None
    assert fail_row["created_at"] == mine[1].created_at.isoformat()


def test_data_export_query_filters_by_type_and_limit(job_factory, export_dir):
    for _ in range(3):
        job_factory(type="noop")
    job_factory(type="fail")
    job = job_factory(
        type="data_export",
        payload={
            "format": "csv",
            "query": {"source": "jobs", "type": "noop", "limit": 2, "status": "pending"},
            "columns": ["type"],
        },
    )

    result = run(job)

    assert result["rows"] == 2
    assert Path(result["path"]).read_text().splitlines() == ["type", "noop", "noop"]


# --- data_processing ----------------------------------------------------------------------------


def test_data_processing_computes_hand_checked_statistics(job_factory):
    job = job_factory(
        type="data_processing",
        payload={"data": [2, 4, 4, 4, 5, 5, 7, 9], "percentiles": [0, 10, 90, 100]},
    )

    result = run(job)

    assert result["count"] == 8
    assert result["sum"] == 40
    assert result["mean"] == 5
    assert (result["min"], result["max"]) == (2, 9)
    assert result["median"] == 4.5
    assert result["pvariance"] == pytest.approx(4.0)  # squared deviations sum to 32; 32 / 8
    assert result["pstdev"] == pytest.approx(2.0)
    assert result["variance"] == pytest.approx(32 / 7)
    assert result["stdev"] == pytest.approx(math.sqrt(32 / 7))
    # h = 7 * p / 100: p10 -> h 0.7 -> 2 + 0.7 * (4 - 2); p90 -> h 6.3 -> 7 + 0.3 * (9 - 7)
    assert result["percentiles"] == {
        "0": 2,
        "10": pytest.approx(3.4),
        "90": pytest.approx(7.6),
        "100": 9,
    }
    assert result["percentile_method"] == "linear"
    assert messages(job) == ["computing statistics", "statistics computed"]


def test_data_processing_agrees_with_the_statistics_module(job_factory):
    data = [((i * 7919) % 1009) / 7 - 50 for i in range(5000)]
    job = job_factory(type="data_processing", payload={"data": data})

    result = run(job)

    assert result["mean"] == pytest.approx(statistics.fmean(data))
    assert result["variance"] == pytest.approx(statistics.variance(data))
    assert result["pstdev"] == pytest.approx(statistics.pstdev(data))
    assert result["median"] == pytest.approx(statistics.median(data))
    quartiles = statistics.quantiles(data, n=4, method="inclusive")
    assert [result["percentiles"][k] for k in ("25", "50", "75")] == pytest.approx(quartiles)


def test_data_processing_keeps_precision_on_a_large_offset(job_factory):
    data = [1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16]  # naive sum-of-squares loses this variance
    result = run(job_factory(type="data_processing", payload={"data": data}))

    assert result["variance"] == pytest.approx(30.0)
    assert result["mean"] == 1e9 + 10


def test_data_processing_of_one_item_has_no_sample_variance(job_factory):
    result = run(
        job_factory(type="data_processing", payload={"data": [3.25], "percentiles": [50, 99.9]})
    )

    assert (result["count"], result["mean"], result["median"]) == (1, 3.25, 3.25)
    assert result["variance"] is None and result["stdev"] is None
    assert result["pvariance"] == 0
    assert result["percentiles"] == {"50": 3.25, "99.9": 3.25}


def test_data_processing_stops_when_the_job_is_cancelled(job_factory):
    job = job_factory(type="data_processing", payload={"data": list(range(10))})
    cancelled = threading.Event()
    cancelled.set()

    with pytest.raises(JobCancelled):
        run(job, cancel_event=cancelled)


# --- report_generation ----------------------------------------------------------------------------


def completed_with(job: Job, result: Any) -> Job:
    """Give a parent a result (the handler reads results, not statuses)."""
    Job.objects.filter(id=job.id).update(result=result)
    return job


def test_report_generation_summarises_each_parent_in_markdown(job_factory):
    stats = completed_with(
        job_factory(type="data_processing"),
        {
            "count": 3,
            "mean": 2.0,
            "min": 1,
            "max": 3,
            "median": 2,
            "percentiles": {"50": 2},
            "sum": 6,
        },
    )
    export = completed_with(
        job_factory(type="data_export"),
        {"format": "csv", "rows": 10, "bytes": 120, "path": "/x/a|b.csv", "sha256": "ab" * 32},
    )
    job = job_factory(
        type="report_generation", payload={"title": "Weekly"}, depends_on=[stats, export]
    )

    report = run(job)

    assert report["title"] == "Weekly"
    assert report["format"] == "markdown"
    assert [(s["type"], s["job_id"]) for s in report["sections"]] == [
        ("data_export", str(export.id)),
        ("data_processing", str(stats.id)),
    ]
    assert report["sections"][0]["summary"] == {
        "format": "csv",
        "rows": 10,
        "bytes": 120,
        "path": "/x/a|b.csv",
        "sha256": "ab" * 32,
    }
    assert report["sections"][1]["summary"] == {
        "count": 3,
        "sum": 6,
        "mean": 2.0,
        "min": 1,
        "max": 3,
        "median": 2,
        "p50": 2,
    }
    markdown = report["markdown"]
    assert markdown.startswith("# Weekly\n")
    assert f"## data_processing {stats.id}" in markdown
    assert "| mean | 2.0 |" in markdown
    assert "| path | /x/a\\|b.csv |" in markdown  # a pipe cannot break the table
    assert "html" not in report
    assert messages(job) == ["building report", "report built"]


def test_report_generation_escapes_every_value_in_html(job_factory):
    evil = "<script>alert('x')</script>"
    parent = completed_with(
        job_factory(type=evil[:60]), {evil: evil, "nested": {"a": 1}, "list": [1, 2]}
    )
    job = job_factory(
        type="report_generation",
        payload={"title": f"{evil} & co", "format": "html", "description": '"quoted" <b>'},
        depends_on=[parent],
    )

    report = run(job)

    html = report["html"]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in html
    assert "<p>&quot;quoted&quot; &lt;b&gt;</p>" in html
    assert report["sections"][0]["summary"] == {evil: evil, "nested": "1 keys", "list": "2 items"}
    assert "markdown" not in report


def test_report_generation_escapes_html_in_markdown_too(job_factory):
    parent = completed_with(job_factory(type="custom"), {"note": "<img src=x onerror=alert(1)>"})
    report = run(job_factory(type="report_generation", depends_on=[parent]))

    assert "<img" not in report["markdown"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in report["markdown"]


def test_report_generation_works_without_parents(job_factory):
    job = job_factory(type="report_generation", payload={"description": "Nothing upstream."})

    report = run(job)

    assert report["title"] == "Job report"
    assert report["sections"] == []
    assert "Nothing upstream." in report["markdown"]
    assert "no parent jobs" in report["markdown"]


# --- validation through the API --------------------------------------------------------------------

BIG = "x" * (100 * 1024 + 1)

INVALID = [
    ("send_email", {"subject": "s", "body": "b"}, "payload.to: is required"),
    (
        "send_email",
        {"to": "nope", "subject": "s", "body": "b"},
        "payload.to: 'nope' is not a valid",
    ),
    ("send_email", {"to": ["a@example.com", 5], "subject": "s", "body": "b"}, "payload.to: item 1"),
    ("send_email", {"to": [], "subject": "s", "body": "b"}, "payload.to: must name at least one"),
    (
        "send_email",
        {"to": [f"u{i}@example.com" for i in range(51)], "subject": "s", "body": "b"},
        "the limit is 50",
    ),
    (
        "send_email",
        {"to": ["a@example.com"] * 30, "cc": ["b@example.com"] * 21, "subject": "s", "body": "b"},
        "to, cc and bcc hold 51",
    ),
    (
        "send_email",
        {"to": "a@example.com", "subject": "a\r\nBcc: x@evil.com", "body": "b"},
        "payload.subject: must not contain line breaks",
    ),
    (
        "send_email",
        {"to": "a@example.com", "subject": "s" * 256, "body": "b"},
        "payload.subject: must be a string of 1 to 255",
    ),
    (
        "send_email",
        {"to": "a@example.com", "subject": "s", "body": 7},
        "payload.body: must be a string",
    ),
    (
        "send_email",
        {"to": "a@example.com", "subject": "s", "body": "b", "from_email": "x"},
        "payload.from_email",
    ),
    (
        "send_email",
        {"to": "a@example.com", "subject": "s", "body": "b", "reply": 1},
        "payload: unknown fields: reply",
    ),
    ("data_export", {"rows": []}, "payload.format: must be one of csv, json"),
    ("data_export", {"format": "xml", "rows": []}, "payload.format"),
    ("data_export", {"format": "csv"}, "payload: give exactly one of rows and query"),
    ("data_export", {"format": "csv", "rows": [], "query": {"source": "jobs"}}, "give exactly one"),
    ("data_export", {"format": "csv", "rows": [1]}, "payload.rows: item 0 is not an object"),
    (
        "data_export",
        {"format": "csv", "rows": [], "escape_formulas": "yes"},
        "payload.escape_formulas: must be true or false",
    ),
    (
        "data_export",
        {"format": "csv", "query": {"source": "users"}},
        'payload.query.source: must be "jobs"',
    ),
    (
        "data_export",
        {"format": "csv", "query": {"source": "jobs", "owner": 2}},
        "payload.query: unknown fields: owner",
    ),
    (
        "data_export",
        {"format": "csv", "query": {"source": "jobs", "limit": 10001}},
        "payload.query.limit",
    ),
    (
        "data_export",
        {"format": "csv", "query": {"source": "jobs", "status": "done"}},
        "payload.query.status",
    ),
    (
        "data_export",
        {"format": "csv", "query": {"source": "jobs"}, "columns": ["payload"]},
        "is not a column of the jobs query",
    ),
    (
        "data_export",
        {"format": "csv", "rows": [], "columns": ["a", "a"]},
        "payload.columns: must not repeat",
    ),
    (
        "data_export",
        {"format": "csv", "rows": [], "filename": "../../etc/passwd"},
        "payload.filename",
    ),
    ("data_export", {"format": "csv", "rows": [], "filename": ".."}, "payload.filename"),
    ("data_export", {"format": "csv", "rows": [], "filename": "a/b.csv"}, "payload.filename"),
    ("data_processing", {}, "payload.data: is required"),
    ("data_processing", {"data": []}, "payload.data: must be a list of 1 to 1000000"),
    ("data_processing", {"data": [1, True]}, "payload.data: item 1 is not a finite number"),
    ("data_processing", {"data": [1, "2"]}, "payload.data: item 1"),
    ("data_processing", {"data": [1e200]}, "payload.data: item 0"),
    (
        "data_processing",
        {"data": [1], "percentiles": [101]},
        "payload.percentiles: item 0 is not a number from 0 to 100",
    ),
    ("data_processing", {"data": [1], "percentiles": 50}, "payload.percentiles: must be a list"),
    ("report_generation", {"format": "pdf"}, "payload.format: must be one of markdown, html"),
    ("report_generation", {"title": ""}, "payload.title: must be a string of 1 to 200"),
    ("report_generation", {"title": "a\nb"}, "payload.title: must not contain line breaks"),
    ("report_generation", {"description": 5}, "payload.description"),
    ("report_generation", {"report_type": "Daily"}, "payload.report_type: must be a snake_case"),
]


@pytest.mark.parametrize(("job_type", "payload", "expected"), INVALID)
def test_a_bad_payload_is_refused_at_submit_naming_the_field(api, job_type, payload, expected):
    response = api.post("/jobs/", {"type": job_type, "payload": payload}, format="json")

    assert response.status_code == 400, response.content
    assert any(expected in message for message in response.json()["payload"]), response.json()
    assert not Job.objects.filter(type=job_type).exists()


@pytest.mark.parametrize(
    ("job_type", "payload"),
    [
        (
            "send_email",
            {"to": "a@example.com", "subject": "s", "body": "b", "cc": [], "html_body": "<p>"},
        ),
        ("data_export", {"format": "json", "rows": [{"a": 1}], "filename": "report-2024_01.v2"}),
        (
            "data_export",
            {
                "format": "csv",
                "query": {"source": "jobs", "status": "completed", "type": "noop", "limit": 5},
            },
        ),
        ("data_processing", {"data": [1, 2.5, -3], "percentiles": [0, 99.9, 100]}),
        ("report_generation", {}),
        ("report_generation", {"report_type": "daily_summary"}),
        ("send_email", {"to": "a@example.com", "subject": "s"}),
        ("report_generation", {"title": "T", "format": "html", "description": "d"}),
    ],
)
def test_a_good_payload_is_accepted_at_submit(api, job_type, payload):
    response = api.post("/jobs/", {"type": job_type, "payload": payload}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["payload"] == payload


@pytest.mark.parametrize(
    ("job_type", "payload", "field"),
    [
        ("send_email", {"to": "a@example.com", "subject": "s", "body": BIG}, "payload.body"),
        (
            "send_email",
            {"to": "a@example.com", "subject": "s", "body": "b", "html_body": BIG},
            "payload.html_body",
        ),
        ("data_export", {"format": "csv", "rows": [{}] * 10_001}, "payload.rows"),
        ("data_processing", {"data": [1] * 1_000_001}, "payload.data"),
        ("data_processing", {"data": [1, math.nan]}, "payload.data"),
        ("data_processing", {"data": [math.inf]}, "payload.data"),
    ],
)
def test_the_handlers_bound_what_the_api_size_limit_may_let_through(job_type, payload, field):
    """Payloads above the API's byte limit never reach a handler over REST, but a deployment may
    raise that limit and jobs can be stored around the API: the handler's own bounds still hold."""
    handler = get_handler(job_type)
    assert handler is not None
    assert field in handler.validate_payload(payload)
